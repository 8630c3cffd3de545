// What the kernel shows of iSCSI sessions, SCSI devices and dm maps in sysfs (under a configurable root), and
// the device nodes under dev_root. Reads only, plus the one write helper for sysfs attribute files.
#pragma once

#include "core/error.hpp"
#include "host_path/host_ops.hpp"
#include "request/volume_request.hpp"

#include <cstdint>
#include <filesystem>
#include <mutex>
#include <functional>
#include <optional>
#include <unordered_map>
#include <string>
#include <vector>

namespace ivd::host_path {

// What this process has read of sysfs so far (attribute files, and directory entries listed), for benchmarks:
// a host's load must not make one attach read more.
struct SysfsReads {
    std::uint64_t files = 0;
    std::uint64_t dir_entries = 0;
};
SysfsReads sysfs_reads();

// The LUN part of udev's by-path name (path_id's format_lun_number): decimal below 256, else the first level's
// two bytes as 16 hex digits.
std::string by_path_lun(std::int64_t lun);

class Sysfs {
public:
    Sysfs(std::string sysfs_root, std::string dev_root) : root_(std::move(sysfs_root)), dev_root_(std::move(dev_root)) {}

    const std::string &root() const { return root_; }
    std::string device_path(const std::string &device) const { return dev_root_ + "/" + device; }  // "sdc" -> /dev/sdc

    // The session to (portal, IQN) through `iface` (the session's ifacename; a kernel without it: "default").
    // With `list` false, once the sessions have been listed, a miss is answered without listing them again: the
    // sessions known and those numbered above them are looked at, and one logged in elsewhere under a lower or
    // distant number is missed (for a look a login corrects: iscsiadm then says the session is there).
    std::optional<Session> find_session(const request::Portal &portal, const std::string &iqn,
                                        const std::string &iface = default_iface_name, bool list = true) const;
    std::vector<request::Portal> session_portals(const std::string &iqn) const;
    // Whether the session of this name ("session3") is still there (a gone one is forgotten).
    bool session_exists(const std::string &name) const;
    // Forgets every session read so far: the next lookup reads them all again. For when the host says a session
    // is there that a lookup missed (a name given to another session behind our back).
    void forget_identities() const;
    // The LUN's block device name ("sdc") if it is there now; empty otherwise.
    std::string find_device(const request::Target &target, const std::string &iface = default_iface_name,
                            bool list = true) const;  // `list`: as find_session's
    std::vector<std::int64_t> session_luns(const Session &session) const;
    Result<std::string> read_wwid(const std::string &device) const;

    std::optional<MultipathMap> find_multipath(const std::string &device) const;
    std::optional<MultipathMap> find_multipath_by_name(const std::string &name) const;
    std::vector<std::string> multipath_paths(const MultipathMap &map) const;

    // The block device's "MAJOR:MINOR" (/sys/block/NAME/dev); "" when it is gone.
    std::string devnum(const std::string &device) const;
    // The SCSI device state of a path device ("running", "offline", ...); "" when it is gone.
    std::string device_state(const std::string &device) const;
    // /sys/block/NAME/size (512-byte sectors) in bytes.
    Result<std::uint64_t> size_bytes(const std::string &device) const;
    // Whether a dm map is suspended (dm/suspended is "1").
    bool map_suspended(const MultipathMap &map) const;

    // Writes `value` to a sysfs attribute file (scan, delete).
    static Result<void> write(const std::string &path, const std::string &value);

private:
    struct SessionRow {
        Session session;
        std::string iqn;
        std::string address;
        std::uint16_t port = 0;
        std::string iface;
    };
    struct SessionIdentity {
        std::string iqn;
        std::string address;
        std::uint16_t port = 0;
        std::string iface;
        std::uint64_t listed = 0;  // the last listing that saw it (candidate_sessions)
    };
    std::vector<std::string> session_names() const;
    std::vector<std::string> candidate_sessions(const request::Portal &portal, const std::string &iqn,
                                                const std::string &iface) const;
    std::optional<std::string> newer_session(const request::Portal &portal, const std::string &iqn,
                                             const std::string &iface) const;
    SessionIdentity identity(const std::string &name, bool *cached = nullptr) const;
    bool listed_once() const;
    SessionIdentity read_identity(const std::string &name) const;
    void remember(const std::string &name, const SessionIdentity &id) const;
    void forget_locked(const std::string &name) const;  // identities_mutex_ held
    void forget_if_locked(const std::function<bool(const std::string &, const SessionIdentity &)> &gone) const;
    std::optional<Session> session_of(const std::string &name, const request::Portal &portal, const std::string &iqn,
                                      const std::string &iface) const;
    static std::string target_key(const std::string &iqn, const std::string &address, std::uint16_t port,
                                  const std::string &iface);
    std::optional<std::string> known_session(const request::Portal &portal, const std::string &iqn,
                                             const std::string &iface) const;
    void forget_gone_sessions(const std::vector<std::string> &listed) const;
    std::filesystem::path connection_dir(const std::string &session_name) const;
    std::optional<SessionRow> read_session(const std::string &name, const std::string *iqn) const;
    std::filesystem::path session_dir(const Session &s) const;
    std::optional<MultipathMap> map_of(const std::string &dm) const;

    std::string root_;
    std::string dev_root_;
    // Sessions already read, by name (see identity()); calls come from many threads at once.
    mutable std::mutex identities_mutex_;
    mutable std::unordered_map<std::string, SessionIdentity> identities_;
    mutable std::unordered_map<std::string, std::string> by_target_;  // target_key -> session name
    mutable std::uint64_t listing_ = 0;
    mutable long max_listed_ = 0;  // the highest session number seen by a listing, or read above it
};

}  // namespace ivd::host_path
