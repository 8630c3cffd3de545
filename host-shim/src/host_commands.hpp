// The commands of volume-host; each returns the process exit code and prints JSON on stdout.
#pragma once

#include "shim_error.hpp"

#include <string>

namespace volume_host {

struct GlobalOptions {
    std::string config_path;
    std::string log_level = "warning";
    std::string extra_config_path;  // VOLUME_HOST_EXTRA_CONFIG: read after config_path, its keys win
};

struct ConnectorOptions {
    std::string volume_type = "iscsi";
};

struct ConnectOptions {
    std::string connection_info;
    std::string connector;
    std::string disk_info;
    std::string attach_domain;
};

struct DisconnectOptions {
    std::string connection_info;
    std::string device_info;
    std::string detach_domain;
    bool force = false;
    bool ignore_errors = false;
};

// disk-config (disk_info set) or extend (disk_info empty).
struct V2CallOptions {
    std::string connection_info;
    std::string device_info;
    std::string disk_info;
};

struct CleanupOptions {
    std::string volume_type = "iscsi";
    bool dry_run = false;
};

// Prints {"error": {...}} on stderr.
void print_error(const ShimError &error);

int run_drivers(const GlobalOptions &global);
int run_connector(const GlobalOptions &global, const ConnectorOptions &options);
int run_connect(const GlobalOptions &global, const ConnectOptions &options);
int run_disconnect(const GlobalOptions &global, const DisconnectOptions &options);
// ABI v2: prints disk_config's <disk> (options.disk_info set) or extend_volume's {"size_bytes": N}.
int run_v2_call(const GlobalOptions &global, const V2CallOptions &options);
// Asks the driver to find and remove what a crashed host left behind; prints its report.
int run_cleanup(const GlobalOptions &global, const CleanupOptions &options);

}  // namespace volume_host
