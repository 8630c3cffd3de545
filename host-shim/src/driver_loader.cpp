#include "driver_loader.hpp"

#include <dlfcn.h>
#include <sys/stat.h>

#include <fmt/format.h>

#include <cstddef>
#include <optional>
#include <utility>

namespace volume_host {

namespace {

// Closes a dlopen() handle unless released: every early return unloads the module, and only after the
// error message was formatted from the module's table.
struct ModuleHandle {
    void *handle = nullptr;
    ~ModuleHandle() {
        if (handle != nullptr) ::dlclose(handle);
    }
    void *release() { return std::exchange(handle, nullptr); }
};

// The smallest table a version-1 driver may hand out: `cleanup` was appended within version 1.
constexpr std::size_t min_v1_table_size = offsetof(vd_driver_table, cleanup);

ShimError not_a_driver(const std::string &path, const std::string &why) {
    return ShimError{"not_a_driver", fmt::format("{} is not a usable volume driver: {}", path, why), exit_load};
}

// The mandatory slots; the host calls them without further checks.
std::optional<std::string> missing_mandatory_slot(const vd_driver_table &t) {
    if (t.create == nullptr) return "create";
    if (t.destroy == nullptr) return "destroy";
    if (t.connector_properties == nullptr) return "connector_properties";
    if (t.connect_volume == nullptr) return "connect_volume";
    if (t.disconnect_volume == nullptr) return "disconnect_volume";
    if (t.free_string == nullptr) return "free_string";
    if (t.last_error == nullptr) return "last_error";
    return std::nullopt;
}

// Checks the answer of volume_driver_negotiate before anything else reads the table.
std::optional<ShimError> check_answer(const std::string &path, std::uint32_t offered, std::uint32_t version,
                                      const vd_driver_table *table) {
    if (version == 0 || version > offered) {
        return ShimError{"version_refused",
                         fmt::format("driver {} answered ABI version {} to an offer of {} (must be 1..{})", path,
                                     version, offered, offered),
                         exit_load};
    }
    if (table == nullptr) return not_a_driver(path, "its negotiation succeeded without a driver table");
    if (table->struct_size < min_v1_table_size) {
        return not_a_driver(path, fmt::format("its driver table is {} bytes, a version-1 table has at least {}",
                                              table->struct_size, min_v1_table_size));
    }
    if (table->abi_version != version) {
        return not_a_driver(path, fmt::format("its driver table says ABI version {} but negotiation answered {}",
                                              table->abi_version, version));
    }
    if (auto slot = missing_mandatory_slot(*table)) {
        return not_a_driver(path, fmt::format("its driver table has no {} function (NULL)", *slot));
    }
    return std::nullopt;
}

}  // namespace

Outcome<std::shared_ptr<LoadedModule>> LoadedModule::load(const std::string &path, const vd_host_table &host,
                                                           std::uint32_t offered_version) {
    struct stat st{};
    if (::stat(path.c_str(), &st) != 0) {
        return ShimError{"driver_not_found", fmt::format("driver module {} does not exist", path), exit_load};
    }
    ::dlerror();
    ModuleHandle module{::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL)};
    if (module.handle == nullptr) {
        const char *why = ::dlerror();
        return ShimError{"dlopen_failed", fmt::format("cannot load driver module {}: {}", path, why ? why : "unknown"),
                         exit_load};
    }
    ::dlerror();
    void *symbol = ::dlsym(module.handle, VOLUME_DRIVER_ENTRY_NAME);
    if (symbol == nullptr) {
        const char *why = ::dlerror();
        return ShimError{"not_a_driver",
                         fmt::format("{} is not a volume driver: it has no {} entry point ({})", path,
                                     VOLUME_DRIVER_ENTRY_NAME, why ? why : "symbol missing"),
                         exit_load};
    }
    auto negotiate = reinterpret_cast<vd_negotiate_fn>(symbol);
    std::uint32_t version = offered_version;
    const vd_driver_table *table = nullptr;
    const std::int32_t rc = negotiate(&version, &host, &table);
    if (rc == VD_E_VERSION_REFUSED) {
        return ShimError{"version_refused",
                         fmt::format("driver {} refused ABI version {}: the driver speaks up to version {}, this host "
                                     "offers up to {}",
                                     path, offered_version, version, offered_version),
                         exit_load};
    }
    if (rc != VD_OK) {
        return ShimError{"negotiation_failed", fmt::format("driver {} failed ABI negotiation (status {})", path, rc),
                         exit_load};
    }
    if (auto bad = check_answer(path, offered_version, version, table)) return *bad;
    if (version >= VD_ABI_VERSION_2 && (!VD_TABLE_HAS(table, vd_driver_table, disk_config) ||
                                        table->create_for_host == nullptr || table->disk_config == nullptr)) {
        return not_a_driver(path, "it answered ABI version 2 without the version 2 slots (create_for_host, disk_config)");
    }
    return std::shared_ptr<LoadedModule>(new LoadedModule(path, module.release(), table, version, host));
}

LoadedModule::~LoadedModule() {
    if (handle_ != nullptr) ::dlclose(handle_);
}

bool LoadedModule::has_v2() const {
    return version_ >= VD_ABI_VERSION_2 && VD_TABLE_HAS(table_, vd_driver_table, disk_config) &&
           table_->create_for_host != nullptr && table_->disk_config != nullptr;
}

bool LoadedModule::has_cleanup() const { return VD_TABLE_HAS(table_, vd_driver_table, cleanup) && table_->cleanup; }

Outcome<std::unique_ptr<DriverInstance>> DriverInstance::create(std::shared_ptr<LoadedModule> module,
                                                                const std::string &config_json) {
    vd_driver *handle = nullptr;
    // Version 2: this host's table goes with the handle (its own log callback); version 1: create().
    const std::int32_t rc = module->has_v2() ? module->table().create_for_host(&module->host(), config_json.c_str(), &handle)
                                             : module->table().create(config_json.c_str(), &handle);
    if (rc != VD_OK || handle == nullptr) {
        const char *error = module->table().last_error();
        return ShimError{"create_failed",
                         fmt::format("driver {} refused its configuration: {}", module->path(), error ? error : "{}"),
                         exit_load};
    }
    return std::unique_ptr<DriverInstance>(new DriverInstance(std::move(module), handle));
}

DriverInstance::~DriverInstance() { module_->table().destroy(handle_); }

std::string DriverInstance::last_error() const {
    const char *e = table().last_error();
    return e != nullptr ? e : "{}";
}

std::string take_driver_string(const vd_driver_table &table, char *s) {
    if (s == nullptr) return {};
    std::string out(s);
    table.free_string(s);
    return out;
}

}  // namespace volume_host
