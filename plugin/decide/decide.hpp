// The path decision: which attach path serves a volume, from the connector, the config and the host's facts.
// Pure: no I/O, table-tested.
#pragma once

#include "core/error.hpp"
#include "host_facts/host_facts.hpp"
#include "request/driver_config.hpp"
#include "request/volume_request.hpp"

#include <string>

namespace ivd {

enum class AttachPath { network, host };
const char *attach_path_name(AttachPath path);

struct PathDecision {
    AttachPath path = AttachPath::network;
    bool multipath = false;  // host path: use multipath (all portals, dm device)
    std::string reason;      // one line, for the log and device_info
    bool enforce_multipath = false;  // config or connector: a map that does not form fails the attach
};

Result<PathDecision> decide_path(const request::DecideConfig &config, const request::Connector &connector,
                                 const HostCapabilities &host);

}  // namespace ivd
