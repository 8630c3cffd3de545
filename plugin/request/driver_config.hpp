// The driver's own configuration: the JSON object given to create(), usually an INI section of strings.
#pragma once

#include "core/error.hpp"

#include <json/value.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace ivd::request {

enum class PathChoice { automatic, network, host };
enum class Tristate { automatic, yes, no };

struct DriverConfig {
    PathChoice path = PathChoice::automatic;
    bool enforce_multipath = false;
    std::string libvirt_uri = "qemu:///system";

    // Net-disk path.
    bool probe_portals = true;
    std::chrono::milliseconds probe_timeout{3000};
    std::string disk_cache = "none";
    std::string disk_io = "native";

    // Host facts; "automatic" means detect.
    std::string initiator_name;  // overrides the file below
    std::string initiator_name_file = "/etc/iscsi/initiatorname.iscsi";
    Tristate host_multipath = Tristate::automatic;  // can this host multipath (multipathd)?
    Tristate qemu_iscsi = Tristate::automatic;      // does QEMU have its iSCSI block driver?

    std::vector<std::string> unknown_keys;  // reported in the log, not an error
};

Result<DriverConfig> parse_driver_config(const Json::Value &document);

}  // namespace ivd::request
