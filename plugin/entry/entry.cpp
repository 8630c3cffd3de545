// The only extern "C" code of the driver: version negotiation, the dispatch table, and the translation of every
// result and exception into a status code plus the per-thread last error.
#include "core/json_output.hpp"
#include "driver/driver.hpp"

#include <volume_driver/volume_driver.h>

#include <atomic>
#include <forward_list>
#include <mutex>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>

#ifndef IVD_VERSION
#define IVD_VERSION "0.0.0"
#endif

struct vd_driver {
    std::unique_ptr<ivd::Driver> impl;
};

namespace {

// The inner rooms' numbers are the ABI's numbers: a status or level crosses the boundary by a plain cast.
constexpr bool same(ivd::Status s, int vd) { return static_cast<int>(s) == vd; }
static_assert(same(ivd::Status::ok, VD_OK) && same(ivd::Status::invalid_argument, VD_E_INVALID_ARGUMENT) &&
              same(ivd::Status::version_refused, VD_E_VERSION_REFUSED) &&
              same(ivd::Status::not_implemented, VD_E_NOT_IMPLEMENTED) &&
              same(ivd::Status::unsupported, VD_E_UNSUPPORTED) && same(ivd::Status::config, VD_E_CONFIG) &&
              same(ivd::Status::auth, VD_E_AUTH) && same(ivd::Status::unreachable, VD_E_UNREACHABLE) &&
              same(ivd::Status::timeout, VD_E_TIMEOUT) && same(ivd::Status::backend, VD_E_BACKEND) &&
              same(ivd::Status::not_found, VD_E_NOT_FOUND) && same(ivd::Status::no_memory, VD_E_NO_MEMORY) &&
              same(ivd::Status::internal, VD_E_INTERNAL) && same(ivd::Status::inconsistent, VD_E_INCONSISTENT),
              "ivd::Status must equal the ABI's VD_E_* numbers");
static_assert(static_cast<int>(ivd::LogLevel::error) == VD_LOG_ERROR &&
                  static_cast<int>(ivd::LogLevel::warning) == VD_LOG_WARNING &&
                  static_cast<int>(ivd::LogLevel::info) == VD_LOG_INFO &&
                  static_cast<int>(ivd::LogLevel::debug) == VD_LOG_DEBUG,
              "ivd::LogLevel must equal the ABI's VD_LOG_* numbers");

constexpr std::uint32_t oldest_supported_version = VD_ABI_VERSION_1;
constexpr std::uint32_t newest_supported_version = VD_ABI_VERSION_2;

thread_local std::string last_error_json = "{}";

// Version 1 only: create() has no host argument, so a v1 handle logs through the latest v1 negotiation's
// sink. One pointer to an immutable (callback, user_data) pair, so a create() never pairs one host's callback
// with another's user_data. The pairs are interned (one per distinct host sink), never freed. Version 2 hosts
// never touch this: create_for_host() copies its own table into the handle.
struct HostSink {
    ivd::LogFn fn;
    void *user;
};
std::atomic<const HostSink *> v1_sink{nullptr};

const HostSink *intern_v1_sink(ivd::LogFn fn, void *user) {
    static std::mutex mutex;
    static std::forward_list<HostSink> sinks;
    const std::lock_guard<std::mutex> lock(mutex);
    for (const HostSink &s : sinks) {
        if (s.fn == fn && s.user == user) return &s;
    }
    return &sinks.emplace_front(HostSink{fn, user});
}

void set_error(const ivd::Error &error) noexcept {
    try {
        last_error_json = ivd::to_json(ivd::error_to_json(error));
    } catch (...) {
        last_error_json = R"({"status":11,"code":"no_memory","message":"out of memory","argument":"","field":""})";
    }
}

void clear_error() noexcept { last_error_json.assign("{}"); }

// Runs `body` (which returns Result<...>) and turns it into a status; nothing escapes.
template <class Body>
std::int32_t guarded(Body &&body) noexcept {
    try {
        auto result = body();
        if (!result) {
            set_error(result.error());
            return static_cast<std::int32_t>(result.error().status);
        }
        clear_error();
        return VD_OK;
    } catch (const std::bad_alloc &) {
        set_error(ivd::make_error(ivd::Status::no_memory, "out of memory"));
        return VD_E_NO_MEMORY;
    } catch (const std::exception &e) {
        set_error(ivd::make_error(ivd::Status::internal, std::string("internal error: ") + e.what()));
        return VD_E_INTERNAL;
    } catch (...) {
        set_error(ivd::make_error(ivd::Status::internal, "internal error: unknown exception"));
        return VD_E_INTERNAL;
    }
}

ivd::Result<void> missing(const char *what) {
    return ivd::make_error(ivd::Status::invalid_argument, std::string(what) + ": must not be NULL", what);
}

char *copy_out(const std::string &s) {
    auto *out = static_cast<char *>(std::malloc(s.size() + 1));
    if (out == nullptr) throw std::bad_alloc();
    std::memcpy(out, s.c_str(), s.size() + 1);
    return out;
}

std::int32_t create_with(ivd::Logger log, std::uint32_t abi_version, const char *config_json, vd_driver **out) {
    if (out != nullptr) *out = nullptr;
    return guarded([&]() -> ivd::Result<void> {
        if (out == nullptr) return missing("out");
        auto driver = ivd::Driver::create(config_json, log);
        if (!driver) return std::move(driver).error();
        (*driver)->set_abi_version(abi_version);
        *out = new vd_driver{std::move(driver).value()};
        return {};
    });
}

std::int32_t create(const char *config_json, vd_driver **out) {
    const HostSink *sink = v1_sink.load();
    return create_with(sink != nullptr ? ivd::Logger(sink->fn, sink->user) : ivd::Logger(), VD_ABI_VERSION_1,
                       config_json, out);
}

// create() in a version 2 table: the handle would not know its host.
std::int32_t create_refused(const char *, vd_driver **out) {
    if (out != nullptr) *out = nullptr;
    return guarded([]() -> ivd::Result<void> {
        return ivd::make_error(ivd::Status::invalid_argument,
                               "create: ABI version 2 handles are made with create_for_host (a host table per handle)");
    });
}

std::int32_t create_for_host(const vd_host_table *host, const char *config_json, vd_driver **out) {
    ivd::Logger log;
    if (host != nullptr) {
        if (host->struct_size < offsetof(vd_host_table, log) + sizeof(host->log)) {
            if (out != nullptr) *out = nullptr;
            return guarded([]() -> ivd::Result<void> {
                return ivd::make_error(ivd::Status::invalid_argument, "host: struct_size too small for a host table",
                                       "host");
            });
        }
        log = ivd::Logger(host->log, host->user_data);
    }
    return create_with(log, VD_ABI_VERSION_2, config_json, out);
}

void destroy(vd_driver *driver) { delete driver; }

std::int32_t connector_properties(vd_driver *driver, std::uint32_t flags, char **out_json) {
    if (out_json != nullptr) *out_json = nullptr;
    return guarded([&]() -> ivd::Result<void> {
        if (driver == nullptr) return missing("driver");
        if (out_json == nullptr) return missing("out_json");
        auto json = driver->impl->connector_properties(flags);
        if (!json) return std::move(json).error();
        *out_json = copy_out(*json);
        return {};
    });
}

std::int32_t connect_volume(vd_driver *driver, const char *connection_info, const char *connector,
                            const char *disk_info, std::uint32_t flags, char **device_info) {
    if (device_info != nullptr) *device_info = nullptr;
    return guarded([&]() -> ivd::Result<void> {
        if (driver == nullptr) return missing("driver");
        if (device_info == nullptr) return missing("device_info");
        auto json = driver->impl->connect_volume(connection_info, connector, disk_info, flags);
        if (!json) return std::move(json).error();
        *device_info = copy_out(*json);
        return {};
    });
}

std::int32_t disconnect_volume(vd_driver *driver, const char *connection_info, const char *device_info,
                               std::uint32_t flags) {
    return guarded([&]() -> ivd::Result<void> {
        if (driver == nullptr) return missing("driver");
        return driver->impl->disconnect_volume(connection_info, device_info, flags);
    });
}

std::int32_t cleanup(vd_driver *driver, std::uint32_t flags, char **report_json) {
    if (report_json != nullptr) *report_json = nullptr;
    return guarded([&]() -> ivd::Result<void> {
        if (driver == nullptr) return missing("driver");
        if (report_json == nullptr) return missing("report_json");
        auto json = driver->impl->cleanup(flags);
        if (!json) return std::move(json).error();
        *report_json = copy_out(*json);
        return {};
    });
}

std::int32_t extend_volume(vd_driver *driver, const char *connection_info, const char *device_info,
                           std::uint32_t flags, char **new_size_json) {
    if (new_size_json != nullptr) *new_size_json = nullptr;
    return guarded([&]() -> ivd::Result<void> {
        if (driver == nullptr) return missing("driver");
        if (new_size_json == nullptr) return missing("new_size_json");
        auto json = driver->impl->extend_volume(connection_info, device_info, flags);
        if (!json) return std::move(json).error();
        *new_size_json = copy_out(*json);
        return {};
    });
}

std::int32_t disk_config(vd_driver *driver, const char *connection_info, const char *device_info,
                         const char *disk_info, std::uint32_t flags, char **disk_xml) {
    if (disk_xml != nullptr) *disk_xml = nullptr;
    return guarded([&]() -> ivd::Result<void> {
        if (driver == nullptr) return missing("driver");
        if (disk_xml == nullptr) return missing("disk_xml");
        auto xml = driver->impl->disk_config(connection_info, device_info, disk_info, flags);
        if (!xml) return std::move(xml).error();
        *disk_xml = copy_out(*xml);
        return {};
    });
}

void free_string(char *str) { std::free(str); }

const char *last_error() { return last_error_json.c_str(); }

// Version 1's table is exactly what a v1 host was compiled against: it ends before create_for_host.
const vd_driver_table driver_table_v1 = {
    static_cast<std::uint32_t>(offsetof(vd_driver_table, create_for_host)),
    VD_ABI_VERSION_1,
    "iscsi",
    IVD_VERSION,
    "iscsi",
    create,
    destroy,
    connector_properties,
    connect_volume,
    disconnect_volume,
    nullptr,  // extend_volume: not in version 1
    free_string,
    last_error,
    cleanup,
    nullptr,
    nullptr,
};

const vd_driver_table driver_table_v2 = {
    sizeof(vd_driver_table),
    VD_ABI_VERSION_2,
    "iscsi",
    IVD_VERSION,
    "iscsi",
    create_refused,
    destroy,
    connector_properties,
    connect_volume,
    disconnect_volume,
    extend_volume,
    free_string,
    last_error,
    cleanup,
    create_for_host,
    disk_config,
};

}  // namespace

extern "C" __attribute__((visibility("default"))) std::int32_t
volume_driver_negotiate(std::uint32_t *in_out_version, const vd_host_table *host, const vd_driver_table **out_table) {
    if (out_table != nullptr) *out_table = nullptr;
    if (in_out_version == nullptr || host == nullptr || out_table == nullptr) return VD_E_INVALID_ARGUMENT;
    if (host->struct_size < offsetof(vd_host_table, log) + sizeof(host->log)) return VD_E_INVALID_ARGUMENT;
    const std::uint32_t offered = *in_out_version;
    if (offered < oldest_supported_version) {
        *in_out_version = newest_supported_version;
        return VD_E_VERSION_REFUSED;
    }
    *in_out_version = offered < newest_supported_version ? offered : newest_supported_version;
    if (*in_out_version == VD_ABI_VERSION_1) {
        v1_sink.store(intern_v1_sink(host->log, host->user_data));
        *out_table = &driver_table_v1;
    } else {
        *out_table = &driver_table_v2;  // the host table goes to create_for_host, per handle
    }
    return VD_OK;
}
