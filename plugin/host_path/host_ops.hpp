// HostOps: the one narrow seam between the host attach path (policy) and the host's iSCSI and multipath stacks
// (iscsiadm, sysfs, multipathd). The real implementation runs the tools by absolute path; the simulated host
// plugs in underneath it by configuration (other tool paths and roots), never by a branch in the policy code.
#pragma once

#include "core/error.hpp"
#include "driver/attach_path.hpp"
#include "request/driver_config.hpp"
#include "request/volume_request.hpp"

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace ivd::host_path {

// The open-iscsi iface a call is about when the caller names none (iscsiadm's own default, no NIC binding). Every
// (portal, IQN) call takes an iface last: a session, node record and device belong to one (portal, IQN, iface).
inline const std::string default_iface_name{request::default_iface};

// A logged-in iSCSI session as the kernel shows it in sysfs.
struct Session {
    std::string name;     // "session3"
    int host = -1;        // SCSI host number
    std::string channel;  // "0", or "-" (wildcard) before the target is known
    std::string target_id;
};

struct LoginResult {
    Session session;
    bool created = false;  // false: the session already existed (shared with other volumes)
};

struct MultipathMap {
    std::string dm;    // "dm-3"
    std::string name;  // map name (the WWID, or mpathN with user_friendly_names)
    std::string device_path;  // dev_root + "/dm-3"
};

// What became of a map whose flush failed (a disconnect that went on): gone, or still open with the kernel's
// deferred removal set (it goes at its last close).
enum class MapRemoval { removed, deferred };

// Holds a cross-process lock on one (portal, IQN); released on destruction.
class TargetLock {
public:
    virtual ~TargetLock() = default;
};

class HostOps {
public:
    virtual ~HostOps() = default;

    // Opens and checks what the host path writes as root before anything is done: a config error naming
    // lock_dir when that directory is a symlink, not owned by root or writable by group or others.
    virtual Result<void> prepare() = 0;

    // Serialises node-record and session changes for one (portal, IQN) across processes.
    virtual Result<std::unique_ptr<TargetLock>> lock_target(const request::Portal &portal, const std::string &iqn) = 0;

    // The iface exists (iscsiadm -m iface -I NAME), or is created from its netdev (-o new, then iface.net_ifacename);
    // a missing iface without a netdev, or one bound to another netdev, is a config error naming iscsi_ifaces.
    // `default` is iscsiadm's own and is not looked at.
    virtual Result<void> ensure_iface(const request::IscsiIface &iface) = 0;

    // Creates or updates the node record (manual LUN scan, CHAP settings) and logs in through `iface`. CHAP is
    // applied without the password ever reaching a command line. An existing session counts as success
    // (created = false). `tpgt` (>= 0) goes into a new record of a non-default iface: open-iscsi keeps a record
    // made without one in a static file per portal, one for every iface, so a second iface would find none.
    // `looked_up`: what find_session_to_login found just before, under the target's lock (not looked up again).
    virtual Result<LoginResult> login(const request::Portal &portal, const std::string &iqn,
                                      const request::ChapCredentials *chap,
                                      const std::string &iface = default_iface_name, int tpgt = -1,
                                      const std::optional<Session> *looked_up = nullptr) = 0;
    virtual std::optional<Session> find_session(const request::Portal &portal, const std::string &iqn,
                                                const std::string &iface = default_iface_name) = 0;
    // The look before a login (or one a login follows when it misses): it may miss a session logged in elsewhere
    // since the host's sessions were last listed rather than list them all; the login then finds it (iscsiadm says
    // it is there) and answers created = false.
    virtual std::optional<Session> find_session_to_login(const request::Portal &portal, const std::string &iqn,
                                                         const std::string &iface = default_iface_name) {
        return find_session(portal, iqn, iface);
    }
    // Portals of every session to `iqn` (for a disconnect without device_info).
    virtual std::vector<request::Portal> session_portals(const std::string &iqn) = 0;

    // Asks the kernel to scan exactly one LUN of a session.
    virtual Result<void> scan_lun(const Session &session, std::int64_t lun) = 0;
    // Waits (bounded backoff) for the LUN's block device; returns its name ("sdc").
    virtual Result<std::string> wait_for_device(const request::Target &target, std::chrono::milliseconds timeout,
                                                const std::string &iface = default_iface_name) = 0;
    // The LUN's device (on the session through `iface`) if it is there now; empty otherwise.
    virtual std::string find_device(const request::Target &target, const std::string &iface = default_iface_name) = 0;
    // As find_device, its session looked for as find_session_to_login does (for a connect's first look).
    virtual std::string find_device_to_login(const request::Target &target, const std::string &iface = default_iface_name) {
        return find_device(target, iface);
    }
    // The udev by-path link of a LUN once it exists, waiting up to `timeout` (udev makes it a moment after the
    // device node); nothing when it did not appear.
    virtual std::optional<std::string> wait_for_by_path_link(const request::Target &target,
                                                             std::chrono::milliseconds timeout) = 0;
    virtual std::string device_path(const std::string &device) const = 0;  // "sdc" -> dev_root + "/sdc"
    // The WWID Linux gives the device (scsi_id form, e.g. "3600..."), from sysfs.
    virtual Result<std::string> read_wwid(const std::string &device) = 0;
    // LUNs of the session that still have a block device.
    virtual std::vector<std::int64_t> session_luns(const Session &session) = 0;

    // Adds the WWID to multipath's wwids file (multipath -a), as os-brick does, so find_multipaths takes its paths.
    // Connect asks multipath_wwid_listed first and skips it for a listed WWID.
    virtual Result<void> multipath_whitelist(const std::string &wwid) = 0;
    // Whether multipath's wwids file lists the WWID now (multipath_wwids_file; false when it cannot tell): a
    // connect's record then says the entry is not its own, and a cleanup leaves it.
    virtual bool multipath_wwid_listed(const std::string &wwid) {
        static_cast<void>(wwid);
        return false;
    }
    // Removes the WWID from multipath's wwids file again (multipath -w): cleanup, for an entry the journal says
    // its attachment added.
    virtual Result<void> multipath_forget_wwid(const std::string &wwid) = 0;
    // Makes multipathd take one path device; a refusal (udev has not processed the device yet) is retried with
    // backoff until `deadline`. Success: multipathd took it, or it is in a map already.
    virtual Result<void> multipath_add_path(const std::string &device, std::chrono::steady_clock::time_point deadline) = 0;
    // Waits until every device is in one map, or `deadline`; returns the map holding the first device that is in
    // one (possibly not all of them), or nothing.
    virtual std::optional<MultipathMap> multipath_wait(const std::vector<std::string> &devices,
                                                       std::chrono::steady_clock::time_point deadline) = 0;
    // The map holding `device`, if any.
    virtual std::optional<MultipathMap> find_multipath(const std::string &device) = 0;
    virtual std::optional<MultipathMap> find_multipath_by_name(const std::string &name) = 0;
    // Path devices the map holds now ("sdc", ...).
    virtual std::vector<std::string> multipath_paths(const MultipathMap &map) = 0;
    virtual Result<void> flush_multipath(const MultipathMap &map) = 0;
    // Ready for I/O: polls (bounded by `timeout`) until one block can be read through the map with O_DIRECT,
    // trying the read only while the map is not suspended and holds a running path (so it cannot queue).
    virtual Result<void> wait_map_ready(const MultipathMap &map, std::chrono::milliseconds timeout) = 0;

    // Extend. The SCSI device's state as sysfs shows it ("running", "offline", "transport-offline", "blocked");
    // "" when the device is gone.
    virtual std::string device_state(const std::string &device) = 0;
    // Asks the kernel to read the device's capacity again (1 > /sys/block/sdX/device/rescan).
    virtual Result<void> rescan_device(const std::string &device) = 0;
    // A block device's (sdX or dm-N) size in bytes, from sysfs (512-byte sectors).
    virtual Result<std::uint64_t> device_size(const std::string &device) = 0;
    // `multipathd resize map NAME`; its "timeout" answer (a reconfigure in progress) is retried until `deadline`.
    virtual Result<void> multipath_resize(const MultipathMap &map, std::chrono::steady_clock::time_point deadline) = 0;

    // Flushes buffers and deletes the SCSI device; waits until it is gone.
    virtual Result<void> remove_device(const std::string &device) = 0;

    // Clean removal. Waits (bounded by `timeout`) until multipathd no longer lists any of `devices` (removed path
    // devices, "sdc"); returns the ones it still lists then. An error when multipathd did not answer.
    virtual Result<std::vector<std::string>> wait_paths_unlisted(const std::vector<std::string> &devices,
                                                                 std::chrono::milliseconds timeout) = 0;
    // `multipathd del path DEV` for a path multipathd keeps listing after its device was removed; success when it
    // is no longer listed (also when multipathd dropped it meanwhile).
    virtual Result<void> multipathd_del_path(const std::string &device) = 0;
    // A map whose flush failed, after its paths went: `multipathd del map NAME` repeated until the map is gone from
    // sysfs; one still open then (a holder) gets deferred removal and an error table (`dmsetup remove --deferred`,
    // `dmsetup wipe_table`), all bounded by `timeout`. removed / deferred; an error naming the map when neither worked.
    virtual Result<MapRemoval> multipathd_del_map(const MultipathMap &map, std::chrono::milliseconds timeout) = 0;
    // Logs out of the session (no session: success) and deletes its node record (no record: success).
    virtual Result<void> logout(const request::Portal &portal, const std::string &iqn,
                                const std::string &iface = default_iface_name) = 0;
    virtual Result<void> delete_node(const request::Portal &portal, const std::string &iqn,
                                     const std::string &iface = default_iface_name) = 0;

    // Cleanup (AttachPathImpl's two phases): with scrub_chap_from_node_record, node records that still hold a CHAP
    // password (a login interrupted before the password was removed); removing one scrubs the password under the
    // target's lock. By default (records keep the password) there is nothing of this kind to find.
    virtual Result<std::vector<Leftover>> find_leftovers() = 0;
    virtual Result<void> remove_leftover(const Leftover &leftover) = 0;
};

}  // namespace ivd::host_path
