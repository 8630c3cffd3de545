// Detection of what this host can do (QEMU iSCSI support, host-side iSCSI, multipathd) and who it is.
#pragma once

#include "core/log.hpp"
#include "decide/decide.hpp"
#include "request/driver_config.hpp"

#include <string>

namespace ivd {

struct HostFacts {
    HostCapabilities capabilities;
    std::string initiator;  // this host's iSCSI initiator name; empty when unknown
    std::string initiator_source;
    std::string host_name;
    std::string ip;
};

// Probes the system (files, daemon sockets); cheap enough to run once per driver handle.
HostFacts detect_host_facts(const request::DriverConfig &config, const Logger &log);

// Reads "InitiatorName=..." from an open-iscsi initiatorname file; empty when absent or invalid.
std::string read_initiator_name_file(const std::string &path);

}  // namespace ivd
