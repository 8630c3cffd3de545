// The driver a volume-host command talks to: the config read (which also sets what of the driver's log is
// shown), the module mapped to the volume's type loaded and instantiated, and its errors printed.
#pragma once

#include "driver_loader.hpp"
#include "host_commands.hpp"
#include "ini_config.hpp"
#include "shim_error.hpp"

#include <json/json.h>

#include <cstdint>
#include <memory>
#include <string>

namespace volume_host {

// A driver loaded per the config, with its instance.
struct ActiveDriver {
    DriverMapping mapping;
    std::string path;
    std::shared_ptr<LoadedModule> module;
    std::unique_ptr<DriverInstance> instance;
};

// The config (--config, then VOLUME_HOST_EXTRA_CONFIG); driver log lines up to --log-level go to stderr.
Outcome<HostConfig> load_config(const GlobalOptions &global);
// Loads the module of `mapping` and creates its instance with the mapping's config section.
Outcome<ActiveDriver> open_driver(const HostConfig &config, const DriverMapping &mapping);
// The driver [DEFAULT] volume_drivers maps to `volume_type`, or no_driver.
Outcome<ActiveDriver> open_driver_for(const HostConfig &config, const std::string &volume_type);
// Prints the driver's last error (with the call and status) on stderr and returns the driver exit code.
int driver_failed(const ActiveDriver &driver, const char *call, std::int32_t status);

// JSON as volume-host prints it: one line (stdout results, stderr errors) or indented (reports).
std::string compact(const Json::Value &v);
std::string pretty(const Json::Value &v);

}  // namespace volume_host
