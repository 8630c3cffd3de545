#include "driver_loader.hpp"

#include <dlfcn.h>
#include <sys/stat.h>

#include <fmt/format.h>

namespace volume_host {

Outcome<std::shared_ptr<LoadedModule>> LoadedModule::load(const std::string &path, const vd_host_table &host,
                                                           std::uint32_t offered_version) {
    struct stat st{};
    if (::stat(path.c_str(), &st) != 0) {
        return ShimError{"driver_not_found", fmt::format("driver module {} does not exist", path), exit_load};
    }
    ::dlerror();
    void *handle = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (handle == nullptr) {
        const char *why = ::dlerror();
        return ShimError{"dlopen_failed", fmt::format("cannot load driver module {}: {}", path, why ? why : "unknown"),
                         exit_load};
    }
    ::dlerror();
    void *symbol = ::dlsym(handle, VOLUME_DRIVER_ENTRY_NAME);
    if (symbol == nullptr) {
        const char *why = ::dlerror();
        ShimError e{"not_a_driver",
                    fmt::format("{} is not a volume driver: it has no {} entry point ({})", path,
                                VOLUME_DRIVER_ENTRY_NAME, why ? why : "symbol missing"),
                    exit_load};
        ::dlclose(handle);
        return e;
    }
    auto negotiate = reinterpret_cast<vd_negotiate_fn>(symbol);
    std::uint32_t version = offered_version;
    const vd_driver_table *table = nullptr;
    const std::int32_t rc = negotiate(&version, &host, &table);
    if (rc == VD_E_VERSION_REFUSED) {
        ::dlclose(handle);
        return ShimError{"version_refused",
                         fmt::format("driver {} refused ABI version {}: the driver speaks up to version {}, this host "
                                     "offers up to {}",
                                     path, offered_version, version, offered_version),
                         exit_load};
    }
    if (rc != VD_OK || table == nullptr) {
        ::dlclose(handle);
        return ShimError{"negotiation_failed", fmt::format("driver {} failed ABI negotiation (status {})", path, rc),
                         exit_load};
    }
    if (version > offered_version || version == 0 || table->struct_size < sizeof(vd_driver_table) ||
        table->abi_version != version) {
        ::dlclose(handle);
        return ShimError{"negotiation_failed",
                         fmt::format("driver {} answered ABI version {} (table version {}, size {}) to an offer of {}",
                                     path, version, table->abi_version, table->struct_size, offered_version),
                         exit_load};
    }
    return std::shared_ptr<LoadedModule>(new LoadedModule(path, handle, table, version));
}

LoadedModule::~LoadedModule() {
    if (handle_ != nullptr) ::dlclose(handle_);
}

Outcome<std::unique_ptr<DriverInstance>> DriverInstance::create(std::shared_ptr<LoadedModule> module,
                                                                const std::string &config_json) {
    vd_driver *handle = nullptr;
    const std::int32_t rc = module->table().create(config_json.c_str(), &handle);
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
