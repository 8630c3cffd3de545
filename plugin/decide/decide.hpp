// The path decision: which attach path serves a volume, from the connector, the config and the host's facts.
// Pure: no I/O, table-tested.
#pragma once

#include "core/error.hpp"
#include "request/driver_config.hpp"
#include "request/volume_request.hpp"

#include <string>

namespace ivd {

// What this host can do, as detected (or forced by config).
struct HostCapabilities {
    bool qemu_iscsi = false;         // QEMU's iSCSI block driver is available to libvirt's emulator
    bool host_iscsi = false;         // the host can log in itself (iscsiadm + iscsid)
    bool multipath = false;          // multipathd is running and usable
    std::string qemu_iscsi_reason;   // why not, when false
    std::string host_iscsi_reason;
    std::string multipath_reason;
};

enum class AttachPath { network, host };
const char *attach_path_name(AttachPath path);

struct PathDecision {
    AttachPath path = AttachPath::network;
    bool multipath = false;  // host path: use multipath (all portals, dm device)
    std::string reason;      // one line, for the log and device_info
};

Result<PathDecision> decide_path(const request::DriverConfig &config, const request::Connector &connector,
                                 const HostCapabilities &host);

}  // namespace ivd
