// RealHostOps: HostOps on the host's own stacks. Its parts: the tools (host_tools), what sysfs shows (sysfs),
// waiting (wait: backoff and inotify), node records (node_record); this file holds the policy between them
// (locks, login with CHAP kept out of argv, device removal, cleanup of node records).
#include "host_path/real_host_ops.hpp"

#include "core/private_dir.hpp"
#include "core/secret.hpp"
#include "host_path/device_io.hpp"
#include "host_path/host_tools.hpp"
#include "host_path/node_record.hpp"
#include "host_path/node_record_cleanup.hpp"
#include "host_path/path_removal.hpp"
#include "host_path/sysfs.hpp"
#include "host_path/udev_gate.hpp"
#include "host_path/wait.hpp"
#include "host_path/wwids_file.hpp"

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

#include <algorithm>
#include <filesystem>
#include <mutex>
#include <optional>
#include <thread>

namespace ivd::host_path {

namespace fs = std::filesystem;

namespace {

class FlockLock final : public TargetLock {
public:
    explicit FlockLock(UniqueFd fd) : fd_(std::move(fd)) {}
    ~FlockLock() override { ::flock(fd_.get(), LOCK_UN); }

private:
    UniqueFd fd_;
};

// "1", or "256 (SCSI LUN 16640, SAM2)" when the addressing mode changed the number the kernel sees.
std::string lun_text(const request::Target &t) {
    if (t.scsi_lun() == t.lun) return std::to_string(t.lun);
    return fmt::format("{} (SCSI LUN {}, {})", t.lun, t.scsi_lun(), request::addressing_mode_name(t.addressing));
}

// The lock file's name for one (portal, IQN): only [A-Za-z0-9.-_], bounded in length.
std::string lock_file_name(const request::Portal &portal, const std::string &iqn) {
    std::string name = portal.to_string() + "_" + iqn;
    for (char &ch : name) {
        if (!std::isalnum(static_cast<unsigned char>(ch)) && ch != '.' && ch != '-') ch = '_';
    }
    if (name.size() > 200) name = name.substr(0, 180) + fmt::format("_{:x}", std::hash<std::string>{}(name));
    return name + ".lock";
}

class RealHostOps final : public HostOps {
public:
    RealHostOps(const request::HostPathConfig &config, const Logger &log) : c_(config), log_(log) {}

    Result<void> prepare() override {
        auto dir = lock_dir();
        if (!dir) return std::move(dir).error();
        return {};
    }

    Result<std::unique_ptr<TargetLock>> lock_target(const request::Portal &portal, const std::string &iqn) override {
        auto dir = lock_dir();
        if (!dir) return std::move(dir).error();
        const std::string name = lock_file_name(portal, iqn);
        // Read-only is enough for flock; O_NOFOLLOW and the owner check are PrivateDir's.
        auto fd = (*dir)->open_file(name, O_RDONLY | O_CREAT);
        if (!fd) return std::move(fd).error().context("lock_dir: lock file");
        // Another process may be logging in or out of the same target right now: wait for it, bounded.
        const bool got = poll_until(c_.login_timeout * 2 + c_.command_timeout,
                                    [&] { return ::flock(fd->get(), LOCK_EX | LOCK_NB) == 0; });
        if (!got) {
            return make_error(Status::timeout, fmt::format("timed out waiting for the lock {}/{}", (*dir)->path(), name));
        }
        return std::unique_ptr<TargetLock>(std::make_unique<FlockLock>(std::move(*fd)));
    }

    Result<void> ensure_iface(const request::IscsiIface &iface) override { return ensure_iscsi_iface(tools_, iface); }

    Result<LoginResult> login(const request::Portal &portal, const std::string &iqn, const request::ChapCredentials *chap,
                              const std::string &iface, int tpgt, const std::optional<Session> *looked_up) override {
        if (auto existing = looked_up ? *looked_up : find_session(portal, iqn, iface)) {
            // Maybe a login interrupted before the password was removed (a crash): the policy holds on every connect.
            enforce_record_policy(portal, iqn, chap, iface);
            return LoginResult{*existing, false};
        }
        auto record = prepare_node_record(portal, iqn, chap, iface, tpgt);
        if (!record) return std::move(record).error();
        const ProcessResult r = tools_.login(portal, iqn, iface);
        if (chap && c_.scrub_chap_from_node_record && *record) {
            // Opt-in: the session holds them now (but iscsid cannot log in again by itself after its restart).
            if (auto s = set_record_password(**record, nullptr); !s) {
                log_.warning("host_path", "{} {}: could not remove the CHAP password from the node record: {}",
                             portal.to_string(), iqn, s.error().message);
            }
        }
        if (auto failure = tools_.login_failure(r, portal, iqn)) return std::move(*failure);
        std::optional<Session> session = find_session(portal, iqn, iface);
        if (!session) sys_.forget_identities();  // iscsiadm says it is there: what was read may be stale (a reused name)
        poll_until(c_.command_timeout, [&] { return session || (session = find_session(portal, iqn, iface)); });
        if (!session) {
            return make_error(Status::backend,
                              fmt::format("iscsiadm logged in to {} {} (iface {}) but no session appeared in "
                                          "{}/class/iscsi_session", portal.to_string(), iqn, iface, c_.sysfs_root));
        }
        return LoginResult{*session, r.exit_code == 0};
    }

    std::optional<Session> find_session(const request::Portal &p, const std::string &iqn, const std::string &iface) override {
        return sys_.find_session(p, iqn, iface);
    }
    std::optional<Session> find_session_to_login(const request::Portal &p, const std::string &iqn, const std::string &iface) override {
        return sys_.find_session(p, iqn, iface, /*list=*/false);
    }
    std::vector<request::Portal> session_portals(const std::string &iqn) override { return sys_.session_portals(iqn); }

    Result<void> scan_lun(const Session &session, std::int64_t lun) override {
        const std::string path = fmt::format("{}/class/scsi_host/host{}/scan", c_.sysfs_root, session.host);
        const std::string line = fmt::format("{} {} {}", session.channel, session.target_id, lun);
        log_.debug("host_path", "echo '{}' > {}", line, path);
        return Sysfs::write(path, line);
    }

    std::string find_device(const request::Target &t, const std::string &iface) override { return sys_.find_device(t, iface); }
    std::string find_device_to_login(const request::Target &t, const std::string &iface) override {
        return sys_.find_device(t, iface, /*list=*/false);
    }

    Result<std::string> wait_for_device(const request::Target &target, std::chrono::milliseconds timeout,
                                        const std::string &iface) override {
        // The device node is the last thing to appear (sysfs first, then devtmpfs or udev makes the node), and
        // node creation is what inotify can see: a scanned LUN is picked up the moment it is there. sysfs itself
        // cannot be watched, so the backoff stays as the fallback.
        std::string device;
        const bool ok = poll_until(
            timeout,
            [&] {
                device = find_device(target, iface);
                std::error_code ec;
                return !device.empty() && fs::exists(device_path(device), ec);
            },
            quick_backoff, &dev_events_);
        if (!ok) {
            return make_error(Status::timeout, fmt::format("LUN {} of {} {} did not appear as a block device within {} ms",
                                                           lun_text(target), target.portal.to_string(), target.iqn,
                                                           timeout.count()));
        }
        return device;
    }

    std::optional<std::string> wait_for_by_path_link(const request::Target &t, std::chrono::milliseconds timeout) override {
        const std::string link = fmt::format("{}/disk/by-path/ip-{}-iscsi-{}-{}", c_.dev_root, t.portal.to_string(), t.iqn,
                                             by_path_lun(t.scsi_lun()));
        const auto until = std::chrono::steady_clock::now() + timeout;
        std::error_code ec;
        while (!fs::exists(link, ec) && std::chrono::steady_clock::now() < until) {
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
        }
        if (fs::exists(link, ec)) return link;
        return std::nullopt;
    }

    std::string device_path(const std::string &device) const override { return sys_.device_path(device); }
    Result<std::string> read_wwid(const std::string &device) override { return sys_.read_wwid(device); }
    std::vector<std::int64_t> session_luns(const Session &session) override { return sys_.session_luns(session); }

    Result<void> multipath_whitelist(const std::string &wwid) override { return tools_.multipath_whitelist(wwid); }
    Result<void> multipath_forget_wwid(const std::string &wwid) override { return tools_.multipath_forget_wwid(wwid); }
    bool multipath_wwid_listed(const std::string &wwid) override { return wwids_file_lists(c_.multipath_wwids_file, wwid); }

    Result<void> multipath_add_path(const std::string &device, std::chrono::steady_clock::time_point deadline) override {
        return udev_.hand_to_multipathd(
            sys_.devnum(device), device, deadline, [&] { return find_multipath(device).has_value(); },
            [&] { return tools_.multipathd_add_path(device_path(device)); });
    }

    std::optional<MultipathMap> multipath_wait(const std::vector<std::string> &devices,
                                               std::chrono::steady_clock::time_point deadline) override {
        std::optional<MultipathMap> map;
        poll_until(
            deadline,
            [&] {
                map.reset();
                std::size_t in_map = 0;
                for (const auto &d : devices) {
                    auto m = find_multipath(d);
                    if (!m) continue;
                    if (map && map->dm != m->dm) continue;
                    map = m;
                    ++in_map;
                }
                return in_map == devices.size();
            },
            quick_backoff);
        return map;
    }

    std::optional<MultipathMap> find_multipath(const std::string &device) override { return sys_.find_multipath(device); }
    std::optional<MultipathMap> find_multipath_by_name(const std::string &name) override {
        return sys_.find_multipath_by_name(name);
    }
    std::vector<std::string> multipath_paths(const MultipathMap &map) override { return sys_.multipath_paths(map); }
    Result<void> flush_multipath(const MultipathMap &map) override { return tools_.multipath_flush(map.name); }

    Result<void> wait_map_ready(const MultipathMap &map, std::chrono::milliseconds timeout) override {
        std::string why = "no path of the map is running";
        const bool ready = poll_until(timeout, [&] {
            if (sys_.map_suspended(map)) return (why = "the map is suspended"), false;
            const auto paths = sys_.multipath_paths(map);
            if (std::none_of(paths.begin(), paths.end(), [&](const auto &p) { return sys_.device_state(p) == "running"; })) {
                return (why = "no path of the map is running"), false;
            }
            auto r = read_first_block(map.device_path);
            if (!r) why = r.error().message;
            return r.ok();
        }, quick_backoff);
        if (ready) return {};
        return make_error(Status::timeout, fmt::format("multipath map {} ({}) was not ready for I/O within {} ms: {}",
                                                       map.name, map.dm, timeout.count(), why));
    }

    std::string device_state(const std::string &device) override { return sys_.device_state(device); }
    Result<void> rescan_device(const std::string &device) override {
        return Sysfs::write(fmt::format("{}/block/{}/device/rescan", c_.sysfs_root, device), "1");
    }
    Result<std::uint64_t> device_size(const std::string &device) override { return sys_.size_bytes(device); }
    Result<void> multipath_resize(const MultipathMap &map, std::chrono::steady_clock::time_point deadline) override {
        Result<void> r;
        poll_until(deadline, [&] {
            r = tools_.multipathd_resize_map(map.name);
            return r.ok() || r.error().status != Status::timeout;  // only "timeout" (busy) is worth another try
        });
        return r;
    }

    Result<void> remove_device(const std::string &device) override {
        const std::string node = device_path(device);
        struct stat st {};
        if (::stat(node.c_str(), &st) == 0 && S_ISBLK(st.st_mode)) {
            // Write back what the page cache still holds before the device goes (blockdev --flushbufs).
            const int fd = ::open(node.c_str(), O_RDONLY | O_CLOEXEC);
            if (fd >= 0) {
                ::ioctl(fd, BLKFLSBUF, 0);
                ::close(fd);
            }
        }
        const std::string block = fmt::format("{}/block/{}", c_.sysfs_root, device);
        std::error_code ec;
        if (!fs::exists(block, ec)) return {};
        udev_.remember_removed(device, sys_.devnum(device));  // for wait_paths_unlisted
        if (auto r = Sysfs::write(block + "/device/delete", "1"); !r) return r;
        if (!poll_until(c_.device_wait_timeout, [&] { return !fs::exists(block, ec); })) {
            return make_error(Status::timeout, fmt::format("{} was not removed within {} ms", device, c_.device_wait_timeout.count()));
        }
        return {};
    }

    Result<std::vector<std::string>> wait_paths_unlisted(const std::vector<std::string> &devices,
                                                         std::chrono::milliseconds timeout) override {
        // multipathd drops a path when it hears udev's remove event: until udev's database has let go of the
        // devices this process removed, asking multipathd (a process per question) cannot succeed. Same deadline.
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        udev_.wait_removed(devices, deadline);
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        return host_path::wait_paths_unlisted(tools_, devices, std::max(left, std::chrono::milliseconds(0)));
    }
    Result<void> multipathd_del_path(const std::string &device) override { return del_path_until_unlisted(tools_, device); }
    Result<MapRemoval> multipathd_del_map(const MultipathMap &map, std::chrono::milliseconds timeout) override {
        return del_map_until_gone(tools_, sys_, map, timeout);
    }
    Result<void> logout(const request::Portal &portal, const std::string &iqn, const std::string &iface) override {
        const std::optional<Session> before = find_session(portal, iqn, iface);
        auto r = tools_.iscsiadm({"-m", "node", "-T", iqn, "-p", portal.to_string(), "--interface", iface, "--logout"},
                                 {iscsi_err_no_objs_found});
        if (!r) return r;
        // Done when the session logged out of is gone: its own entry is looked at (a miss lists every session).
        auto gone = [&] { return before ? !sys_.session_exists(before->name) : !find_session(portal, iqn, iface); };
        if (!poll_until(c_.command_timeout, gone)) {
            return make_error(Status::timeout, fmt::format("the session to {} {} (iface {}) is still there after logout",
                                                           portal.to_string(), iqn, iface));
        }
        return {};
    }

    Result<void> delete_node(const request::Portal &portal, const std::string &iqn, const std::string &iface) override {
        // iscsiadm follows symlinks: a record find_node_record refuses is left for root to look at.
        if (auto record = find_node_record(c_.iscsi_node_dir, portal, iqn, iface); !record) return std::move(record).error();
        return tools_.iscsiadm({"-m", "node", "-T", iqn, "-p", portal.to_string(), "--interface", iface, "--op", "delete"},
                               {iscsi_err_no_objs_found});
    }

    Result<std::vector<Leftover>> find_leftovers() override;
    Result<void> remove_leftover(const Leftover &leftover) override;

private:
    // The node record as the login needs it: created by iscsiadm if missing, then its settings and the CHAP
    // password (or none) written into the file itself in one rewrite (os-brick spends an iscsiadm run per
    // setting). Returns the record (none only without CHAP and a record not found where iscsiadm keeps it).
    Result<std::optional<NodeRecord>> prepare_node_record(const request::Portal &portal, const std::string &iqn,
                                                          const request::ChapCredentials *chap, const std::string &iface,
                                                          int tpgt);
    void enforce_record_policy(const request::Portal &portal, const std::string &iqn, const request::ChapCredentials *chap,
                               const std::string &iface);
    Result<std::shared_ptr<const PrivateDir>> lock_dir();
    request::HostPathConfig c_;
    Logger log_;
    HostTools tools_{c_, log_};
    Sysfs sys_{c_.sysfs_root, c_.dev_root};
    std::mutex lock_dir_mutex_;
    std::shared_ptr<const PrivateDir> lock_dir_;
    DirEvents dev_events_{c_.dev_root};  // device nodes appearing (wait_for_device)
    UdevGate udev_{c_.udev_data_dir};
};

Result<std::optional<NodeRecord>> RealHostOps::prepare_node_record(const request::Portal &portal, const std::string &iqn,
                                                                   const request::ChapCredentials *chap,
                                                                   const std::string &iface, int tpgt) {
    const std::string p = portal.to_string();
    auto before = find_node_record(c_.iscsi_node_dir, portal, iqn, iface);  // also refuses an unsafe record
    if (!before) return std::move(before).error();
    if (!*before) {
        // With the TPGT open-iscsi makes the iface's own record (IQN/HOST,PORT,TPGT/IFACE); the commands after
        // this one match it by portal and iface.
        const std::string where = tpgt >= 0 ? fmt::format("{},{}", p, tpgt) : p;
        auto r = tools_.iscsiadm({"-m", "node", "-T", iqn, "-p", where, "--interface", iface, "--op", "new"});
        if (!r) return std::move(r).error();
    }
    // LUNs are scanned one by one, never all at login; the record is written directly (one rewrite carrying
    // the settings and the password) as iscsiadm reads every record on each node command, so a process per
    // setting grows with the host's records. Through iscsiadm only when its record is not where it is looked for.
    std::vector<RecordSetting> settings = {{"node.startup", "manual"},
                                           {"node.session.scan", "manual"},
                                           {"node.session.auth.authmethod", chap ? "CHAP" : "None"}};
    if (chap) settings.push_back({"node.session.auth.username", chap->username});
    auto record = *before ? std::move(before) : find_node_record(c_.iscsi_node_dir, portal, iqn, iface);
    if (!record) return std::move(record).error();
    if (!*record) {
        if (chap) {
            return make_error(Status::backend, fmt::format("no node record for {} {} under {} after iscsiadm "
                                                           "created it", p, iqn, c_.iscsi_node_dir));
        }
        std::vector<std::string> update = {"-m", "node", "-T", iqn, "-p", p, "--interface", iface, "--op", "update"};
        for (const RecordSetting &s : settings) update.insert(update.end(), {"-n", std::string(s.name), "-v", s.value});
        if (auto r = tools_.iscsiadm(std::move(update)); !r) return std::move(r).error();
        return record;
    }
    if (auto r = write_record_settings(**record, settings, chap ? &chap->password : nullptr); !r) return std::move(r).error();
    return record;
}

// What the policy says about the record of a session that already exists: the current password (default, so
// iscsid can recover the session), or none with scrub_chap_from_node_record. A failure is a warning: the session
// is there.
void RealHostOps::enforce_record_policy(const request::Portal &portal, const std::string &iqn,
                                        const request::ChapCredentials *chap, const std::string &iface) {
    const SecretString *want = nullptr;
    if (!c_.scrub_chap_from_node_record) {
        if (chap == nullptr) return;  // no credentials given: whatever the session logged in with stays
        want = &chap->password;
    }
    auto record = find_node_record(c_.iscsi_node_dir, portal, iqn, iface);
    if (record && *record) {
        auto r = set_record_password(**record, want);
        if (!r) record = std::move(r).error();
    }
    if (!record) {
        log_.warning("host_path", "{} {}: the node record could not be held to the CHAP record policy (scrub_chap_from_node_record): {}",
                     portal.to_string(), iqn, record.error().message);
    }
}

// lock_dir, opened once and checked (PrivateDir); opened again only when it was removed (by root) meanwhile,
// or this process would lock files other processes no longer see.
Result<std::shared_ptr<const PrivateDir>> RealHostOps::lock_dir() {
    std::lock_guard guard(lock_dir_mutex_);
    if (lock_dir_) {
        struct stat st {};
        if (::fstat(lock_dir_->fd(), &st) == 0 && st.st_nlink > 0) return lock_dir_;
        lock_dir_.reset();
    }
    auto dir = PrivateDir::open(c_.lock_dir, "lock_dir");
    if (!dir) return std::move(dir).error();
    lock_dir_ = std::make_shared<const PrivateDir>(std::move(*dir));
    return lock_dir_;
}

Result<std::vector<Leftover>> RealHostOps::find_leftovers() {
    return node_record_leftovers(c_.iscsi_node_dir, c_.scrub_chap_from_node_record);
}

Result<void> RealHostOps::remove_leftover(const Leftover &leftover) {
    if (leftover.kind == "node_record_staging") return remove_staged_rewrite(c_.iscsi_node_dir, leftover.name);
    const json::Value &portal_text = leftover.detail["portal"];
    const json::Value &iqn = leftover.detail["iqn"];
    auto parsed = portal_text.is_string() ? request::parse_portal(portal_text.as_string())
                                          : Result<request::Portal>(make_error(Status::internal, "no portal"));
    if (leftover.kind != "node_record_password" || !parsed || !iqn.is_string()) {
        return make_error(Status::internal, "cleanup: not a node record password of this host path: " + leftover.name);
    }
    const request::Portal &portal = *parsed;
    // Under the target's lock: a login in progress may need the password in the record until it is done.
    auto lock = lock_target(portal, iqn.as_string());
    if (!lock) return std::move(lock).error();
    auto record = open_node_record(c_.iscsi_node_dir, leftover.name);
    if (!record) return std::move(record).error();
    if (!*record) return {};  // gone since the scan
    return set_record_password(**record, nullptr);
}

}  // namespace

std::unique_ptr<HostOps> make_real_host_ops(const request::HostPathConfig &config, const Logger &log) {
    return std::make_unique<RealHostOps>(config, log);
}

}  // namespace ivd::host_path
