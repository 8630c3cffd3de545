#include "host_path/real_host_ops.hpp"

#include "core/private_dir.hpp"
#include "core/secret.hpp"
#include "host_path/node_record.hpp"
#include "host_path/process.hpp"

#include <fcntl.h>
#include <linux/fs.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <system_error>
#include <thread>

namespace ivd::host_path {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

// open-iscsi exit codes (include/iscsi_err.h).
constexpr int iscsi_err_trans_timeout = 8;
constexpr int iscsi_err_sess_exists = 15;
constexpr int iscsi_err_no_objs_found = 21;
constexpr int iscsi_err_login_auth_failed = 24;

std::string read_text(const fs::path &p) {
    std::ifstream in(p);
    if (!in) return {};
    std::stringstream ss;
    ss << in.rdbuf();
    std::string s = ss.str();
    while (!s.empty() && (s.back() == '\n' || s.back() == ' ' || s.back() == '\0' || s.back() == '\r')) s.pop_back();
    return s;
}

std::vector<std::string> list_dir(const fs::path &p) {
    std::vector<std::string> names;
    std::error_code ec;
    for (fs::directory_iterator it(p, ec), end; !ec && it != end; it.increment(ec)) {
        names.push_back(it->path().filename().string());
    }
    std::sort(names.begin(), names.end());
    return names;
}

bool starts_with(const std::string &s, std::string_view prefix) { return s.rfind(prefix, 0) == 0; }

// "targetH:C:T" / "H:C:T:L" split at ':'.
std::vector<std::string> split_colon(const std::string &s) {
    std::vector<std::string> parts;
    std::string cur;
    for (char c : s) {
        if (c == ':') {
            parts.push_back(cur);
            cur.clear();
        } else {
            cur += c;
        }
    }
    parts.push_back(cur);
    return parts;
}

// Sleeps between checks: `first`, doubling up to `cap`.
struct Backoff {
    std::chrono::milliseconds first;
    std::chrono::milliseconds cap;
};
constexpr Backoff slow_backoff{10ms, 500ms};  // other processes' work (locks, daemons, sessions)
// Things that usually happen within milliseconds (a scanned LUN's device, a map multipathd just built): short
// first sleeps so a fast host is not held up by the poll interval itself.
constexpr Backoff quick_backoff{2ms, 100ms};

// Wakes waiters when an entry is created in one directory. One inotify instance per RealHostOps with one reader
// thread, started at the first use: closing an inotify instance that had a watch waits for an RCU grace period
// (about 10 ms on the test VM), too slow to pay per wait. Where inotify cannot be used a wait is a plain sleep,
// so events only ever make a poll more responsive; they are never required.
class DirEvents {
public:
    explicit DirEvents(std::string dir) : dir_(std::move(dir)) {}
    ~DirEvents() {
        if (reader_.joinable()) {
            if (::getpid() != owner_) {
                reader_.detach();  // a forked child: the reader thread stayed in the parent, there is none to join
            } else {
                const std::uint64_t one = 1;
                [[maybe_unused]] auto n = ::write(stop_fd_, &one, sizeof one);
                reader_.join();
            }
        }
        if (inotify_fd_ >= 0) ::close(inotify_fd_);
        if (stop_fd_ >= 0) ::close(stop_fd_);
    }
    DirEvents(const DirEvents &) = delete;
    DirEvents &operator=(const DirEvents &) = delete;

    // Take this before checking the state, and hand it to wait(): an event during the check is not lost.
    std::uint64_t generation() {
        std::call_once(started_, [this] { start(); });
        std::lock_guard guard(mutex_);
        return generation_;
    }
    // Up to `d`, less when an entry was created since `seen`.
    void wait(std::uint64_t seen, std::chrono::nanoseconds d) {
        std::unique_lock lock(mutex_);
        if (!running_) {
            lock.unlock();
            std::this_thread::sleep_for(d);
            return;
        }
        changed_.wait_for(lock, d, [&] { return generation_ != seen || !running_; });
    }

private:
    void start() {
        inotify_fd_ = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
        stop_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (inotify_fd_ < 0 || stop_fd_ < 0 || ::inotify_add_watch(inotify_fd_, dir_.c_str(), IN_CREATE | IN_MOVED_TO) < 0) {
            return;
        }
        std::lock_guard guard(mutex_);
        owner_ = ::getpid();
        try {
            reader_ = std::thread([this] { run(); });
            running_ = true;
        } catch (const std::system_error &) {
            // No thread: waits stay plain sleeps.
        }
    }
    void run() {
        while (true) {
            std::array<pollfd, 2> fds{pollfd{inotify_fd_, POLLIN, 0}, pollfd{stop_fd_, POLLIN, 0}};
            if (::poll(fds.data(), fds.size(), -1) < 0) {
                if (errno == EINTR) continue;
                break;
            }
            if (fds[1].revents != 0) break;
            alignas(inotify_event) char buf[4096];
            while (::read(inotify_fd_, buf, sizeof buf) > 0) {
            }
            {
                std::lock_guard guard(mutex_);
                ++generation_;
            }
            changed_.notify_all();
        }
        {
            std::lock_guard guard(mutex_);
            running_ = false;
        }
        changed_.notify_all();
    }

    std::string dir_;
    std::once_flag started_;
    std::mutex mutex_;
    std::condition_variable changed_;
    std::uint64_t generation_ = 0;
    bool running_ = false;
    int inotify_fd_ = -1;
    int stop_fd_ = -1;
    pid_t owner_ = -1;
    std::thread reader_;
};

// Bounded backoff until `done` or the deadline; with events, one in their directory cuts a sleep short.
template <class F>
bool poll_until(std::chrono::steady_clock::time_point deadline, F done, Backoff backoff = slow_backoff,
                DirEvents *events = nullptr) {
    std::chrono::nanoseconds step = backoff.first;
    while (true) {
        const std::uint64_t seen = events != nullptr ? events->generation() : 0;
        if (done()) return true;
        const auto now = std::chrono::steady_clock::now();
        if (now >= deadline) return false;
        const auto d = std::min<std::chrono::nanoseconds>(step, deadline - now);
        if (events != nullptr) {
            events->wait(seen, d);
        } else {
            std::this_thread::sleep_for(d);
        }
        step = std::min<std::chrono::nanoseconds>(step * 2, backoff.cap);
    }
}

template <class F>
bool poll_until(std::chrono::milliseconds timeout, F done, Backoff backoff = slow_backoff, DirEvents *events = nullptr) {
    return poll_until(std::chrono::steady_clock::now() + timeout, done, backoff, events);
}

Status status_for_login_exit(const ProcessResult &r) {
    if (r.timed_out || r.exit_code == iscsi_err_trans_timeout) return Status::timeout;
    if (r.exit_code == iscsi_err_login_auth_failed) return Status::auth;
    return Status::unreachable;
}

class FlockLock final : public TargetLock {
public:
    explicit FlockLock(UniqueFd fd) : fd_(std::move(fd)) {}
    ~FlockLock() override { ::flock(fd_.get(), LOCK_UN); }

private:
    UniqueFd fd_;
};

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
        std::string name = portal.to_string() + "_" + iqn;
        for (char &ch : name) {
            if (!std::isalnum(static_cast<unsigned char>(ch)) && ch != '.' && ch != '-') ch = '_';
        }
        if (name.size() > 200) name = name.substr(0, 180) + fmt::format("_{:x}", std::hash<std::string>{}(name));
        name += ".lock";
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

    Result<LoginResult> login(const request::Portal &portal, const std::string &iqn,
                              const request::ChapCredentials *chap) override {
        if (auto existing = find_session(portal, iqn)) {
            // The session may be one whose login was interrupted before the password was removed again (a crash):
            // the record is held to the policy on every connect, not only after a login of our own.
            enforce_record_policy(portal, iqn, chap);
            return LoginResult{*existing, false};
        }

        const std::string p = portal.to_string();
        auto before = find_node_record(c_.iscsi_node_dir, portal, iqn);  // also refuses an unsafe record
        if (!before) return std::move(before).error();
        if (!*before) {
            auto r = iscsiadm({"-m", "node", "-T", iqn, "-p", p, "--interface", "default", "--op", "new"});
            if (!r) return std::move(r).error();
        }
        // Non-secret settings go through iscsiadm; LUNs are scanned one by one, never all at login. One update
        // carries every -n/-v pair (iscsiadm applies them all; os-brick spends one process per setting).
        std::vector<std::string> update = {"-m", "node", "-T", iqn, "-p", p, "--interface", "default", "--op", "update"};
        auto set = [&](const char *name, const std::string &value) {
            update.insert(update.end(), {"-n", name, "-v", value});
        };
        set("node.startup", "manual");
        set("node.session.scan", "manual");
        set("node.session.auth.authmethod", chap ? "CHAP" : "None");
        if (chap) set("node.session.auth.username", chap->username);
        if (auto r = iscsiadm(std::move(update)); !r) return std::move(r).error();
        auto record = find_node_record(c_.iscsi_node_dir, portal, iqn);
        if (!record) return std::move(record).error();
        if (chap) {
            if (!*record) {
                return make_error(Status::backend, fmt::format("no node record for {} {} under {} after iscsiadm "
                                                               "created it", p, iqn, c_.iscsi_node_dir));
            }
            if (auto r = set_record_password(**record, &chap->password); !r) return std::move(r).error();
        } else if (*record) {
            if (auto r = set_record_password(**record, nullptr); !r) return std::move(r).error();
        }

        const std::vector<std::string> argv = {c_.iscsiadm_path, "-m", "node", "-T", iqn, "-p", p,
                                               "--interface", "default", "--login"};
        log_.debug("host_path", "run {}", describe_argv(argv));
        const ProcessResult r = run_process(argv, c_.login_timeout);
        if (chap && !c_.keep_chap_in_node_record && *record) {
            // The session holds the credentials now; the file on disk does not need them any more.
            if (auto s = set_record_password(**record, nullptr); !s) {
                log_.warning("host_path", "{} {}: could not remove the CHAP password from the node record: {}", p,
                             iqn, s.error().message);
            }
        }
        if (!r.started || r.timed_out || (r.exit_code != 0 && r.exit_code != iscsi_err_sess_exists)) {
            return make_error(r.started ? status_for_login_exit(r) : Status::backend,
                              fmt::format("login to {} {} failed: {}", p, iqn, tool_message(r)));
        }
        std::optional<Session> session;
        poll_until(c_.command_timeout, [&] { return (session = find_session(portal, iqn)).has_value(); });
        if (!session) {
            return make_error(Status::backend,
                              fmt::format("iscsiadm logged in to {} {} but no session appeared in {}/class/iscsi_session",
                                          p, iqn, c_.sysfs_root));
        }
        return LoginResult{*session, r.exit_code == 0};
    }

    std::optional<Session> find_session(const request::Portal &portal, const std::string &iqn) override {
        for (const auto &s : sessions()) {
            if (s.iqn == iqn && same_address(s.address, portal) && s.port == portal.port) return s.session;
        }
        return std::nullopt;
    }

    std::vector<request::Portal> session_portals(const std::string &iqn) override {
        std::vector<request::Portal> out;
        for (const auto &s : sessions()) {
            if (s.iqn != iqn) continue;
            request::Portal p;
            p.host = s.address;
            p.port = s.port;
            p.ipv6 = s.address.find(':') != std::string::npos;
            out.push_back(p);
        }
        return out;
    }

    Result<void> scan_lun(const Session &session, std::int64_t lun) override {
        const std::string path = fmt::format("{}/class/scsi_host/host{}/scan", c_.sysfs_root, session.host);
        const std::string line = fmt::format("{} {} {}", session.channel, session.target_id, lun);
        log_.debug("host_path", "echo '{}' > {}", line, path);
        return write_sysfs(path, line);
    }

    std::string find_device(const request::Target &target) override {
        auto session = find_session(target.portal, target.iqn);
        if (!session) return {};
        const fs::path dev = session_dir(*session) / "device";
        for (const auto &t : list_dir(dev)) {
            if (!starts_with(t, "target")) continue;
            for (const auto &lu : list_dir(dev / t)) {
                const auto parts = split_colon(lu);
                if (parts.size() != 4 || parts[3] != std::to_string(target.lun)) continue;
                const auto blocks = list_dir(dev / t / lu / "block");
                if (!blocks.empty()) return blocks.front();
            }
        }
        return {};
    }

    Result<std::string> wait_for_device(const request::Target &target, std::chrono::milliseconds timeout) override {
        // The device node is the last thing to appear (sysfs first, then devtmpfs or udev makes the node), and
        // node creation is what inotify can see: a scanned LUN is picked up the moment it is there. sysfs itself
        // cannot be watched, so the backoff stays as the fallback.
        std::string device;
        const bool ok = poll_until(
            timeout,
            [&] {
                device = find_device(target);
                std::error_code ec;
                return !device.empty() && fs::exists(device_path(device), ec);
            },
            quick_backoff, &dev_events_);
        if (!ok) {
            return make_error(Status::timeout, fmt::format("LUN {} of {} {} did not appear as a block device within {} ms",
                                                           target.lun, target.portal.to_string(), target.iqn,
                                                           timeout.count()));
        }
        return device;
    }

    std::string by_path_link(const request::Target &t) const override {
        return fmt::format("{}/disk/by-path/ip-{}-iscsi-{}-lun-{}", c_.dev_root, t.portal.to_string(), t.iqn, t.lun);
    }

    std::string device_path(const std::string &device) const override { return c_.dev_root + "/" + device; }

    Result<std::string> read_wwid(const std::string &device) override {
        const std::string path = fmt::format("{}/block/{}/device/wwid", c_.sysfs_root, device);
        std::string wwid = wwid_from_sysfs(read_text(path));
        if (wwid.empty()) return make_error(Status::not_found, fmt::format("{} has no WWID ({} is missing or empty)", device, path));
        return wwid;
    }

    std::vector<std::int64_t> session_luns(const Session &session) override {
        std::vector<std::int64_t> luns;
        const fs::path dev = session_dir(session) / "device";
        for (const auto &t : list_dir(dev)) {
            if (!starts_with(t, "target")) continue;
            for (const auto &lu : list_dir(dev / t)) {
                const auto parts = split_colon(lu);
                if (parts.size() != 4 || list_dir(dev / t / lu / "block").empty()) continue;
                luns.push_back(std::strtoll(parts[3].c_str(), nullptr, 10));
            }
        }
        return luns;
    }

    Result<void> multipath_whitelist(const std::string &wwid) override { return tool({c_.multipath_path, "-a", wwid}); }

    Result<void> multipath_add_path(const std::string &device, std::chrono::steady_clock::time_point deadline) override {
        // multipathd takes a path only once udev has processed it (it reads the WWID from udev's ID_SERIAL): on a
        // real kernel a freshly scanned sdX is in sysfs well before that, and `multipathd add path` answers "fail"
        // ("no ID_SERIAL attribute ... orphan path"). So a refused path is offered again, with backoff, until it is
        // taken or the deadline; a path udev handed over itself (its WWID is whitelisted) needs no offer.
        std::string error;
        const bool taken = poll_until(deadline, [&] {
            if (find_multipath(device)) return true;
            auto r = tool({c_.multipathd_path, "add", "path", device_path(device)});
            if (r) return true;
            error = r.error().message;
            return false;
        });
        if (taken) return {};
        return make_error(Status::backend, error.empty() ? fmt::format("multipathd did not take {}", device) : error);
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

    std::optional<MultipathMap> find_multipath(const std::string &device) override {
        for (const auto &h : list_dir(fmt::format("{}/block/{}/holders", c_.sysfs_root, device))) {
            if (auto m = map_of(h)) return m;
        }
        return std::nullopt;
    }

    std::optional<MultipathMap> find_multipath_by_name(const std::string &name) override {
        for (const auto &b : list_dir(c_.sysfs_root + "/block")) {
            if (!starts_with(b, "dm-")) continue;
            auto m = map_of(b);
            if (m && m->name == name) return m;
        }
        return std::nullopt;
    }

    std::vector<std::string> multipath_paths(const MultipathMap &map) override {
        return list_dir(fmt::format("{}/block/{}/slaves", c_.sysfs_root, map.dm));
    }

    Result<void> flush_multipath(const MultipathMap &map) override {
        return tool({c_.multipath_path, "-f", map.name});
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
        if (auto r = write_sysfs(block + "/device/delete", "1"); !r) return r;
        if (!poll_until(c_.device_wait_timeout, [&] { return !fs::exists(block, ec); })) {
            return make_error(Status::timeout, fmt::format("{} was not removed within {} ms", device, c_.device_wait_timeout.count()));
        }
        return {};
    }

    Result<void> logout(const request::Portal &portal, const std::string &iqn) override {
        auto r = iscsiadm({"-m", "node", "-T", iqn, "-p", portal.to_string(), "--interface", "default", "--logout"},
                          {iscsi_err_no_objs_found});
        if (!r) return r;
        if (!poll_until(c_.command_timeout, [&] { return !find_session(portal, iqn); })) {
            return make_error(Status::timeout, fmt::format("the session to {} {} is still there after logout",
                                                           portal.to_string(), iqn));
        }
        return {};
    }

    Result<void> delete_node(const request::Portal &portal, const std::string &iqn) override {
        // iscsiadm follows symlinks: a record find_node_record refuses is left for root to look at.
        if (auto record = find_node_record(c_.iscsi_node_dir, portal, iqn); !record) return std::move(record).error();
        return iscsiadm({"-m", "node", "-T", iqn, "-p", portal.to_string(), "--interface", "default", "--op", "delete"},
                        {iscsi_err_no_objs_found});
    }

    Result<std::vector<Leftover>> find_leftovers() override {
        std::vector<Leftover> found;
        if (c_.keep_chap_in_node_record) return found;  // the policy lets records keep their password
        auto records = list_node_records(c_.iscsi_node_dir);
        if (!records) return std::move(records).error().context("cleanup: scanning the node records");
        for (const FoundRecord &f : *records) {
            Leftover item;
            item.kind = "node_record_password";
            item.name = f.relative;
            item.detail["record"] = c_.iscsi_node_dir + "/" + f.relative;
            item.detail["iqn"] = f.iqn;
            if (!f.portal.host.empty()) item.detail["portal"] = f.portal.to_string();
            auto has = f.record ? record_has_password(*f.record) : Result<bool>(f.record.error());
            if (!has) {
                item.kind = "node_record";  // unsafe or unreadable: never read or written, only reported
                item.removable = false;
                item.reason = has.error().message;
                found.push_back(std::move(item));
                continue;
            }
            if (!*has) continue;
            item.reason = "keep_chap_in_node_record is false but the record holds a CHAP password (a login was "
                          "interrupted before the password was removed again)";
            found.push_back(std::move(item));
        }
        return found;
    }

    Result<void> remove_leftover(const Leftover &leftover) override {
        const json::Value &portal_text = leftover.detail["portal"];
        const json::Value &iqn = leftover.detail["iqn"];
        request::Portal portal;
        if (leftover.kind != "node_record_password" || !portal_text.is_string() || !iqn.is_string() ||
            !request::parse_portal(portal_text.as_string(), &portal).empty()) {
            return make_error(Status::internal, "cleanup: not a node record password of this host path: " + leftover.name);
        }
        // Under the target's lock: a login in progress may need the password in the record until it is done.
        auto lock = lock_target(portal, iqn.as_string());
        if (!lock) return std::move(lock).error();
        auto record = open_node_record(c_.iscsi_node_dir, leftover.name);
        if (!record) return std::move(record).error();
        if (!*record) return {};  // gone since the scan
        return set_record_password(**record, nullptr);
    }

private:
    struct SessionRow {
        Session session;
        std::string iqn;
        std::string address;
        std::uint16_t port = 0;
    };

    fs::path session_dir(const Session &s) const { return fs::path(c_.sysfs_root) / "class/iscsi_session" / s.name; }

    static bool same_address(const std::string &address, const request::Portal &portal) {
        return address == portal.host || address == "[" + portal.host + "]";
    }

    std::vector<SessionRow> sessions() {
        std::vector<SessionRow> rows;
        const fs::path cls = fs::path(c_.sysfs_root) / "class/iscsi_session";
        for (const auto &name : list_dir(cls)) {
            if (!starts_with(name, "session")) continue;
            SessionRow row;
            row.session.name = name;
            row.iqn = read_text(cls / name / "targetname");
            const std::string sid = name.substr(std::strlen("session"));
            for (const auto &conn : list_dir(fs::path(c_.sysfs_root) / "class/iscsi_connection")) {
                if (!starts_with(conn, "connection" + sid + ":")) continue;
                const fs::path cd = fs::path(c_.sysfs_root) / "class/iscsi_connection" / conn;
                row.address = read_text(cd / "persistent_address");
                if (row.address.empty()) row.address = read_text(cd / "address");
                std::string port = read_text(cd / "persistent_port");
                if (port.empty()) port = read_text(cd / "port");
                row.port = static_cast<std::uint16_t>(std::strtoul(port.c_str(), nullptr, 10));
                break;
            }
            // The SCSI host is in the session's device path: .../hostH/sessionN/...
            std::error_code ec;
            const std::string real = fs::canonical(cls / name, ec).string();
            const auto at = real.rfind("/host");
            if (at != std::string::npos) row.session.host = std::atoi(real.c_str() + at + 5);
            row.session.channel = "-";
            row.session.target_id = "-";
            for (const auto &t : list_dir(cls / name / "device")) {
                const auto parts = split_colon(t);
                if (starts_with(t, "target") && parts.size() == 3) {
                    row.session.channel = parts[1];
                    row.session.target_id = parts[2];
                    break;
                }
            }
            rows.push_back(std::move(row));
        }
        return rows;
    }

    std::optional<MultipathMap> map_of(const std::string &dm) {
        const fs::path d = fs::path(c_.sysfs_root) / "block" / dm / "dm";
        const std::string uuid = read_text(d / "uuid");
        if (!starts_with(uuid, "mpath-")) return std::nullopt;
        return MultipathMap{dm, read_text(d / "name"), device_path(dm)};
    }

    Result<void> write_sysfs(const std::string &path, const std::string &value) {
        const int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
        if (fd < 0) return make_error(Status::backend, fmt::format("cannot open {}: {}", path, std::strerror(errno)));
        const ssize_t n = ::write(fd, value.data(), value.size());
        const int saved = errno;
        ::close(fd);
        if (n != static_cast<ssize_t>(value.size())) {
            return make_error(Status::backend, fmt::format("cannot write {}: {}", path, std::strerror(saved)));
        }
        return {};
    }

    Result<void> tool(const std::vector<std::string> &argv, std::initializer_list<int> also_ok = {}) {
        log_.debug("host_path", "run {}", describe_argv(argv));
        const ProcessResult r = run_process(argv, c_.command_timeout);
        if (r.started && !r.timed_out &&
            (r.exit_code == 0 || std::find(also_ok.begin(), also_ok.end(), r.exit_code) != also_ok.end())) {
            return {};
        }
        return make_error(r.timed_out ? Status::timeout : Status::backend,
                          fmt::format("{}: {}", describe_argv(argv), tool_message(r)));
    }

    Result<void> iscsiadm(std::vector<std::string> args, std::initializer_list<int> also_ok = {}) {
        args.insert(args.begin(), c_.iscsiadm_path);
        return tool(args, also_ok);
    }

    // What the policy says about the record of a session that already exists: no password unless
    // keep_chap_in_node_record, and then the current one. A failure is a warning: the session is there.
    void enforce_record_policy(const request::Portal &portal, const std::string &iqn, const request::ChapCredentials *chap) {
        const SecretString *want = nullptr;
        if (c_.keep_chap_in_node_record) {
            if (chap == nullptr) return;  // no credentials given: whatever the session logged in with stays
            want = &chap->password;
        }
        auto record = find_node_record(c_.iscsi_node_dir, portal, iqn);
        if (record && *record) {
            auto r = set_record_password(**record, want);
            if (!r) record = std::move(r).error();
        }
        if (!record) {
            log_.warning("host_path", "{} {}: the node record could not be held to keep_chap_in_node_record: {}",
                         portal.to_string(), iqn, record.error().message);
        }
    }

    // lock_dir, opened once and checked (PrivateDir); opened again only when it was removed (by root) meanwhile,
    // or this process would lock files other processes no longer see.
    Result<std::shared_ptr<const PrivateDir>> lock_dir() {
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

    request::HostPathConfig c_;
    Logger log_;
    std::mutex lock_dir_mutex_;
    std::shared_ptr<const PrivateDir> lock_dir_;
    DirEvents dev_events_{c_.dev_root};  // device nodes appearing (wait_for_device)
};

}  // namespace

std::string wwid_from_sysfs(std::string text) {
    while (!text.empty() && (std::isspace(static_cast<unsigned char>(text.back())) || text.back() == '\0')) text.pop_back();
    // As os-brick (linuxscsi.get_sysfs_wwid) and udev's scsi_id name them.
    if (starts_with(text, "naa.")) return "3" + text.substr(4);
    if (starts_with(text, "eui.")) return "2" + text.substr(4);
    if (starts_with(text, "t10.")) return "1" + text.substr(4);
    return text;
}

std::unique_ptr<HostOps> make_real_host_ops(const request::HostPathConfig &config, const Logger &log) {
    return std::make_unique<RealHostOps>(config, log);
}

}  // namespace ivd::host_path
