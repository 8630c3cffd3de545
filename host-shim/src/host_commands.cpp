#include "host_commands.hpp"

#include "active_driver.hpp"
#include "disk_source.hpp"
#include "domain_lock.hpp"
#include "driver_loader.hpp"
#include "input_json.hpp"
#include "ini_config.hpp"
#include "libvirt_domain.hpp"

#include <json/json.h>

#include <fmt/format.h>

#include <atomic>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <iterator>
#include <memory>
#include <optional>
#include <sstream>


namespace volume_host {

namespace {

Outcome<Json::Value> parse_json(const std::string &text, const char *what) { return parse_json_object(text, what); }

Outcome<std::string> volume_type_of(const Json::Value &connection_info) {
    const Json::Value &t = connection_info["driver_volume_type"];
    if (!t.isString() || t.asString().empty()) {
        return ShimError{"input_error", "connection_info has no driver_volume_type string", exit_usage};
    }
    return t.asString();
}


// What every volume command reads: CONNECTION_INFO and one more input (CONNECTOR or DEVICE_INFO), both under
// the driver's JSON rules (the driver gets C strings and would not see what follows a NUL byte), and the volume
// type that picks the driver.
struct VolumeInputs {
    std::string ci_text;
    std::string other_text;
    std::string type;
};

Outcome<VolumeInputs> read_volume_inputs(const std::string &ci_path, const std::string &other_path, const char *other) {
    if (ci_path == "-" && other_path == "-") {
        return ShimError{"usage", fmt::format("only one of CONNECTION_INFO and {} can be read from stdin", other), exit_usage};
    }
    VolumeInputs in;
    auto ci_text = read_input(ci_path, "CONNECTION_INFO");
    if (!ci_text) return ci_text.error();
    auto other_text = read_input(other_path, other);
    if (!other_text) return other_text.error();
    auto ci = parse_json(*ci_text, "CONNECTION_INFO");
    if (!ci) return ci.error();
    if (auto parsed = parse_json(*other_text, other); !parsed) return parsed.error();
    auto type = volume_type_of(*ci);
    if (!type) return type.error();
    return VolumeInputs{std::move(*ci_text), std::move(*other_text), std::move(*type)};
}

// A call on a connected volume (disconnect, disk-config, extend): the config, CONNECTION_INFO and DEVICE_INFO,
// and the driver of the volume's type.
struct DeviceCall {
    HostConfig config;
    VolumeInputs in;
    ActiveDriver driver;
};

Outcome<DeviceCall> open_device_call(const GlobalOptions &global, const std::string &ci_path,
                                     const std::string &device_path) {
    auto config = load_config(global);
    if (!config) return config.error();
    auto in = read_volume_inputs(ci_path, device_path, "DEVICE_INFO");
    if (!in) return in.error();
    auto driver = open_driver_for(*config, in->type);
    if (!driver) return driver.error();
    return DeviceCall{std::move(*config), std::move(*in), std::move(*driver)};
}

LibvirtBounds bounds_of(const HostConfig &config) {
    LibvirtBounds b;
    b.uri = config.libvirt_uri;
    b.connect_timeout = std::chrono::milliseconds(config.libvirt_connect_timeout_ms);
    b.keepalive_interval_s = static_cast<int>(config.libvirt_keepalive_interval_s);
    b.keepalive_count = static_cast<unsigned>(config.libvirt_keepalive_count);
    return b;
}

// Under the domain's lock (so parallel volume-host processes cannot both pass): refuses when a disk backed by
// the same storage is already in the domain, else attaches.
std::optional<ShimError> attach_once(const HostConfig &config, DomainSession &session, const std::string &disk_xml) {
    auto source = parse_disk_source(disk_xml, "device_info from the driver:");
    if (!source) return ShimError{"driver_output", source.error().message, exit_driver};
    auto uuid = session.uuid();
    if (!uuid) return uuid.error();
    auto lock = DomainLock::acquire(config.run_dir, *uuid);
    if (!lock) return lock.error();
    auto existing = session.find_same_storage(*source);
    if (!existing) return existing.error();
    if (*existing) {
        return ShimError{"already_attached",
                         fmt::format("domain {} already has this volume ({}) as {}; nothing was attached",
                                     session.domain_name(), source->describe(), (*existing)->target_dev),
                         exit_libvirt};
    }
    return session.attach_disk(disk_xml);
}

// --attach: puts the connected volume's disk into the domain; when that is refused, disconnects what this
// connect did so nothing stays half-attached. Prints device_info with "attached_to" on success.
int attach_connected(const ActiveDriver &driver, const HostConfig &config, DomainSession &session,
                     const std::string &connection_info, const std::string &device_info_text,
                     const std::string &disk_info) {
    const auto &t = driver.module->table();
    auto undo = [&](ShimError error) {
        const std::int32_t rc =
            t.disconnect_volume(driver.instance->handle(), connection_info.c_str(), device_info_text.c_str(), 0);
        if (rc != VD_OK) {
            error.message += fmt::format("; disconnecting the volume again failed too (status {}): {}", rc,
                                         driver.instance->last_error());
        }
        print_error(error);
        return error.exit_code;
    };
    auto device_info = parse_json(device_info_text, "device_info from the driver");
    if (!device_info) return undo(ShimError{"driver_output", device_info.error().message, exit_driver});
    Json::Value disk_xml = (*device_info)["disk_xml"];
    if (driver.module->has_v2()) {
        // ABI v2: the <disk> comes from disk_config, as it will for every later start of the guest.
        char *xml = nullptr;
        const std::int32_t rc = t.disk_config(driver.instance->handle(), connection_info.c_str(),
                                              device_info_text.c_str(), disk_info.c_str(), 0, &xml);
        if (rc != VD_OK) {
            return undo(ShimError{"driver_failed", fmt::format("disk_config failed (status {}): {}", rc,
                                                               driver.instance->last_error()), exit_driver});
        }
        disk_xml = take_driver_string(t, xml);
        (*device_info)["disk_xml"] = disk_xml;  // what --detach finds the disk by
    }
    if (!disk_xml.isString() || disk_xml.asString().empty()) {
        return undo(ShimError{"driver_output", "device_info from the driver has no disk_xml to attach", exit_driver});
    }
    if (auto failed = attach_once(config, session, disk_xml.asString())) return undo(*failed);
    (*device_info)["attached_to"] = session.domain_name();
    std::cout << compact(*device_info) << std::endl;
    return 0;
}

// --detach: takes the disk named by device_info's disk_xml out of the domain and waits until QEMU let it go.
// A disk that is already gone is fine; a disk at that dev backed by other storage is left alone (an error).
std::optional<ShimError> detach_before_disconnect(const HostConfig &config, const std::string &domain,
                                                  const std::string &device_info_text) {
    auto device_info = parse_json(device_info_text, "DEVICE_INFO");
    if (!device_info) return device_info.error();
    const Json::Value &disk_xml = (*device_info)["disk_xml"];
    if (!disk_xml.isString()) return ShimError{"input_error", "--detach: DEVICE_INFO has no disk_xml string", exit_usage};
    auto dev = disk_target_dev(disk_xml.asString());
    if (!dev) return dev.error();
    auto recorded = parse_disk_source(disk_xml.asString(), "DEVICE_INFO");
    if (!recorded) return recorded.error();
    auto session = DomainSession::open(bounds_of(config), domain);
    if (!session) {
        // A destroyed transient domain holds no disk: nothing to detach, and the volume must still be cleaned up.
        if (session.error().code == "domain_not_found") {
            std::fprintf(stderr, "volume-host: warning host: --detach: domain %s no longer exists; disconnecting only\n",
                         domain.c_str());
            return std::nullopt;
        }
        return session.error();
    }
    auto detached = (*session)->detach_disk(*dev, &*recorded);
    if (!detached) {
        ShimError e = detached.error();
        if (e.code == "disk_mismatch") e.message += "; the volume stays connected";
        return e;
    }
    return std::nullopt;
}

}  // namespace

void print_error(const ShimError &error) {
    Json::Value out;
    out["error"]["code"] = error.code;
    out["error"]["message"] = error.message;
    std::cerr << compact(out) << std::endl;
}

int run_drivers(const GlobalOptions &global) {
    auto config = load_config(global);
    if (!config) return print_error(config.error()), config.error().exit_code;
    if (config->drivers.empty()) {
        print_error(ShimError{"config_error", global.config_path + ": [DEFAULT] volume_drivers maps no driver", exit_config});
        return exit_config;
    }
    Json::Value out(Json::arrayValue);
    for (const auto &mapping : config->drivers) {
        auto driver = open_driver(*config, mapping);
        if (!driver) {
            ShimError e = driver.error();
            e.message = fmt::format("{}={}: {}", mapping.volume_type, mapping.location, e.message);
            print_error(e);
            return e.exit_code;
        }
        const vd_driver_table &t = driver->module->table();
        Json::Value row;
        row["volume_type"] = mapping.volume_type;
        row["mapping"] = mapping.location;
        row["path"] = driver->path;
        row["abi_version"] = driver->module->abi_version();
        row["host_abi_version"] = VD_ABI_VERSION_CURRENT;
        row["driver_name"] = t.driver_name ? t.driver_name : "";
        row["driver_version"] = t.driver_version ? t.driver_version : "";
        row["volume_types"] = t.volume_types ? t.volume_types : "";
        row["extend_volume"] = t.extend_volume != nullptr;
        row["cleanup"] = driver->module->has_cleanup();
        out.append(row);
    }
    std::cout << pretty(out) << std::endl;
    return 0;
}

int run_connector(const GlobalOptions &global, const ConnectorOptions &options) {
    auto config = load_config(global);
    if (!config) return print_error(config.error()), config.error().exit_code;
    auto driver = open_driver_for(*config, options.volume_type);
    if (!driver) return print_error(driver.error()), driver.error().exit_code;
    char *json = nullptr;
    const auto &t = driver->module->table();
    const std::int32_t rc = t.connector_properties(driver->instance->handle(), 0, &json);
    if (rc != VD_OK) return driver_failed(*driver, "connector_properties", rc);
    std::cout << take_driver_string(t, json) << std::endl;
    return 0;
}

int run_connect(const GlobalOptions &global, const ConnectOptions &options) {
    auto config = load_config(global);
    if (!config) return print_error(config.error()), config.error().exit_code;
    auto in = read_volume_inputs(options.connection_info, options.connector, "CONNECTOR");
    if (!in) return print_error(in.error()), in.error().exit_code;
    const std::string *ci_text = &in->ci_text, *connector_text = &in->other_text, *type = &in->type;
    // With --attach, find the domain (and a free SCSI target when --disk-info is omitted) before connecting.
    std::unique_ptr<DomainSession> session;
    std::string disk_info = options.disk_info;
    if (!options.attach_domain.empty()) {
        auto opened = DomainSession::open(bounds_of(*config), options.attach_domain);
        if (!opened) return print_error(opened.error()), opened.error().exit_code;
        session = std::move(*opened);
        if (disk_info.empty()) {
            auto dev = session->pick_free_scsi_dev();
            if (!dev) return print_error(dev.error()), dev.error().exit_code;
            disk_info = fmt::format(R"({{"bus":"scsi","dev":"{}"}})", *dev);
        }
    }
    auto driver = open_driver_for(*config, *type);
    if (!driver) return print_error(driver.error()), driver.error().exit_code;

    const auto &t = driver->module->table();
    char *device_info = nullptr;
    const std::int32_t rc = t.connect_volume(driver->instance->handle(), ci_text->c_str(), connector_text->c_str(),
                                             disk_info.empty() ? nullptr : disk_info.c_str(), 0, &device_info);
    if (rc != VD_OK) return driver_failed(*driver, "connect_volume", rc);
    std::string device_info_text = take_driver_string(t, device_info);
    if (session) return attach_connected(*driver, *config, *session, *ci_text, device_info_text, disk_info);
    std::cout << device_info_text << std::endl;
    return 0;
}

// disk-config and extend: ABI version 2 calls on a connected volume; print the driver's answer.
int run_v2_call(const GlobalOptions &global, const V2CallOptions &options) {
    auto call = open_device_call(global, options.connection_info, options.device_info);
    if (!call) return print_error(call.error()), call.error().exit_code;
    const std::string *ci_text = &call->in.ci_text, *device_text = &call->in.other_text;
    ActiveDriver *driver = &call->driver;
    const auto &t = driver->module->table();
    const bool extend = options.disk_info.empty();
    if (!driver->module->has_v2() || (extend && t.extend_volume == nullptr)) {
        ShimError e{"unsupported", fmt::format("driver {} does not implement {} (ABI version {})", driver->path,
                                               extend ? "extend_volume" : "disk_config", driver->module->abi_version()),
                    exit_driver};
        return print_error(e), e.exit_code;
    }
    char *out = nullptr;
    const std::int32_t rc =
        extend ? t.extend_volume(driver->instance->handle(), ci_text->c_str(), device_text->c_str(), 0, &out)
               : t.disk_config(driver->instance->handle(), ci_text->c_str(), device_text->c_str(),
                               options.disk_info.c_str(), 0, &out);
    if (rc != VD_OK) return driver_failed(*driver, extend ? "extend_volume" : "disk_config", rc);
    std::cout << take_driver_string(t, out) << std::endl;
    return 0;
}

int run_cleanup(const GlobalOptions &global, const CleanupOptions &options) {
    auto config = load_config(global);
    if (!config) return print_error(config.error()), config.error().exit_code;
    auto driver = open_driver_for(*config, options.volume_type);
    if (!driver) return print_error(driver.error()), driver.error().exit_code;
    const auto &t = driver->module->table();
    // Appended slot: an older or simpler driver has no cleanup (too small a table, or NULL).
    if (!driver->module->has_cleanup()) {
        ShimError e{"cleanup_unsupported",
                    fmt::format("driver {} ({}) does not implement cleanup", t.driver_name ? t.driver_name : "?",
                                driver->path),
                    exit_driver};
        print_error(e);
        return e.exit_code;
    }
    char *report = nullptr;
    const std::int32_t rc =
        t.cleanup(driver->instance->handle(), options.dry_run ? VD_CLEANUP_DRY_RUN : 0u, &report);
    if (rc != VD_OK) return driver_failed(*driver, "cleanup", rc);
    const std::string text = take_driver_string(t, report);
    std::cout << text << std::endl;
    // The report is printed either way; objects that could not be removed make the run fail (5); a path that could
    // not be scanned (nothing of it touched) makes it partial (7), so automation sees that not everything was looked at.
    auto parsed = parse_json(text, "the cleanup report");
    if (parsed && (*parsed)["failed"].isIntegral() && (*parsed)["failed"].asInt64() > 0) {
        print_error(ShimError{"cleanup_incomplete",
                              fmt::format("{} leftover(s) could not be removed; see the report", (*parsed)["failed"].asInt64()),
                              exit_driver});
        return exit_driver;
    }
    if (parsed && (*parsed)["partial"].isBool() && (*parsed)["partial"].asBool()) {
        std::string which;
        for (const auto &row : (*parsed)["not_scanned"]) {
            which += fmt::format("{}{} path ({})", which.empty() ? "" : "; ", row["path"].asString(), row["reason"].asString());
        }
        print_error(ShimError{"cleanup_partial", fmt::format("cleanup was partial, not scanned: {}; see the report", which),
                              exit_partial});
        return exit_partial;
    }
    return 0;
}

int run_disconnect(const GlobalOptions &global, const DisconnectOptions &options) {
    auto call = open_device_call(global, options.connection_info, options.device_info);
    if (!call) return print_error(call.error()), call.error().exit_code;
    const HostConfig *config = &call->config;
    const std::string *ci_text = &call->in.ci_text, *device_text = &call->in.other_text;
    ActiveDriver *driver = &call->driver;
    // The guest lets go of the disk before the volume goes away; a failed detach leaves the volume connected.
    if (!options.detach_domain.empty()) {
        if (auto failed = detach_before_disconnect(*config, options.detach_domain, *device_text)) {
            return print_error(*failed), failed->exit_code;
        }
    }
    std::uint32_t flags = 0;
    if (options.force) flags |= VD_DISCONNECT_FORCE;
    if (options.ignore_errors) flags |= VD_DISCONNECT_IGNORE_ERRORS;
    const auto &t = driver->module->table();
    const std::int32_t rc = t.disconnect_volume(driver->instance->handle(), ci_text->c_str(), device_text->c_str(), flags);
    if (rc != VD_OK) return driver_failed(*driver, "disconnect_volume", rc);
    std::cout << "{\"disconnected\":true}" << std::endl;
    return 0;
}

}  // namespace volume_host
