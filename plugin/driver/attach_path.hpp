// The seam between the driver (parsing, decision, locking) and the two attach paths.
#pragma once

#include "core/error.hpp"
#include "core/json.hpp"
#include "decide/decide.hpp"
#include "host_facts/host_facts.hpp"
#include "request/device_info.hpp"
#include "request/volume_request.hpp"


#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace ivd {

// Something a path left on the host that a crash may have orphaned (found by cleanup).
struct Leftover {
    std::string kind;       // "libvirt_secret", "iscsi_session", ...
    std::string name;       // what identifies it to the path (secret usage name, "portal iqn", ...)
    bool in_use = false;    // referenced by something live: kept
    bool removable = true;  // false: only reported (the path cannot prove it is safe to remove)
    std::string reason;     // why it is kept, reported or removable
    json::Value detail = json::Value::object();  // extra report fields (never a secret value)
};

// What the driver knows before any path scans for leftovers: which host block devices libvirt's domains use.
struct CleanupContext {
    // <disk type='block'> sources of every domain (live and persistent XML) as written there ("/dev/dm-3",
    // "/dev/disk/by-id/..."); nullopt when they could not be listed (why: domains_error).
    std::optional<std::vector<std::string>> domain_block_devices;
    std::string domains_error;
};

struct ConnectContext {
    const request::VolumeRequest &volume;
    const request::Connector &connector;
    const request::DiskTarget &disk;
    const PathDecision &decision;
    const HostFacts &facts;  // what the host and its libvirt can do (XML features, initiator)

    // The one rule both paths log in with: the connector's initiator, else this host's (config initiator_name,
    // else the initiator name file, as detected into the facts). Empty when neither is known.
    const std::string &initiator() const { return connector.initiator.empty() ? facts.initiator : connector.initiator; }
};

// Both paths need an initiator name: the network path for QEMU's login (the storage exported the volume to
// it), the host path for iscsiadm's.
inline Error missing_initiator_error(const std::string &initiator_name_file) {
    return make_error(Status::invalid_argument,
                      "connector initiator: this host's initiator name is needed (none in the connector, config "
                      "initiator_name or " + initiator_name_file + ")",
                      "connector", "initiator");
}

// How hard a disconnect tries (the host's VD_DISCONNECT_* bits, read once by the driver).
struct DisconnectOptions {
    bool force = false;          // keep going past a failed step (os-brick's force)
    bool ignore_errors = false;  // succeed even when a step failed (the failures are logged)
};

class AttachPathImpl {
public:
    virtual ~AttachPathImpl() = default;
    // Returns device_info. On failure, undoes whatever it did.
    virtual Result<request::DeviceInfo> connect(const ConnectContext &context) = 0;
    // device_info may be null (the host lost it).
    virtual Result<void> disconnect(const request::VolumeRequest &volume, const request::DeviceInfo *device_info,
                                    DisconnectOptions options) = 0;

    // The libvirt <disk> for one guest device of a connected volume, from what connect returned. Pure: no I/O.
    virtual Result<std::string> disk_config(const request::VolumeRequest &volume, const request::DeviceInfo &device_info,
                                            const request::DiskTarget &disk) {
        (void)volume;
        (void)device_info;
        (void)disk;
        return make_error(Status::not_implemented, "disk_config is not implemented on this attach path");
    }
    // The volume's current size in bytes as the storage reports it. Default: this path cannot tell yet.
    virtual Result<std::uint64_t> extend(const request::VolumeRequest &volume, const request::DeviceInfo &device_info) {
        (void)volume;
        (void)device_info;
        return make_error(Status::not_implemented, "extend_volume is not implemented on this attach path");
    }

    // Cleanup in two phases, so a scan that fails removes nothing: find_leftovers reads only; the driver then
    // removes the unused, removable ones. Default: the path cannot recognise leftovers (not_implemented).
    virtual Result<std::vector<Leftover>> find_leftovers(const CleanupContext &context) {
        (void)context;
        return make_error(Status::not_implemented, "this attach path does not support cleanup");
    }
    virtual Result<void> remove_leftover(const Leftover &leftover) {
        return make_error(Status::not_implemented, "this attach path cannot remove " + leftover.kind);
    }
};

}  // namespace ivd
