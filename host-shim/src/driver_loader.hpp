// Loads a volume driver module with dlopen and negotiates the ABI version through its one entry point.
#pragma once

#include "shim_error.hpp"

#include <volume_driver/volume_driver.h>

#include <cstdint>
#include <memory>
#include <string>

namespace volume_host {

class LoadedModule {
public:
    // Every failure names the path and the reason: missing file, dlopen failure (with dlerror()), no entry
    // symbol (not a driver), version refused (with both versions), a malformed table (not_a_driver: too small,
    // its version differs from the answer, a NULL mandatory slot). A version-1 table without the appended
    // `cleanup` slot is accepted.
    static Outcome<std::shared_ptr<LoadedModule>> load(const std::string &path, const vd_host_table &host,
                                                       std::uint32_t offered_version = VD_ABI_VERSION_CURRENT);
    LoadedModule(const LoadedModule &) = delete;
    LoadedModule &operator=(const LoadedModule &) = delete;
    ~LoadedModule();

    const vd_driver_table &table() const { return *table_; }
    std::uint32_t abi_version() const { return version_; }
    const std::string &path() const { return path_; }
    // The optional, appended `cleanup` slot is present and non-NULL.
    bool has_cleanup() const;

    // The host table this host negotiated with: version 2 hands it to create_for_host per handle.
    const vd_host_table &host() const { return host_; }
    // Version 2 slots (create_for_host, disk_config) are present and non-NULL.
    bool has_v2() const;

private:
    LoadedModule(std::string path, void *handle, const vd_driver_table *table, std::uint32_t version,
                 const vd_host_table &host)
        : path_(std::move(path)), handle_(handle), table_(table), version_(version), host_(host) {}
    std::string path_;
    void *handle_;
    const vd_driver_table *table_;
    std::uint32_t version_;
    vd_host_table host_;
};

// A driver handle; destroyed before its module is closed.
class DriverInstance {
public:
    static Outcome<std::unique_ptr<DriverInstance>> create(std::shared_ptr<LoadedModule> module,
                                                           const std::string &config_json);
    DriverInstance(const DriverInstance &) = delete;
    DriverInstance &operator=(const DriverInstance &) = delete;
    ~DriverInstance();

    const vd_driver_table &table() const { return module_->table(); }
    vd_driver *handle() const { return handle_; }
    // The driver's last error on this thread, as JSON text.
    std::string last_error() const;

private:
    DriverInstance(std::shared_ptr<LoadedModule> module, vd_driver *handle)
        : module_(std::move(module)), handle_(handle) {}
    std::shared_ptr<LoadedModule> module_;
    vd_driver *handle_;
};

// Takes ownership of a driver-allocated string and frees it with the driver's free_string.
std::string take_driver_string(const vd_driver_table &table, char *s);

}  // namespace volume_host
