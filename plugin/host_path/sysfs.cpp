#include "host_path/sysfs.hpp"
#include "host_path/real_host_ops.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string_view>
#include <unordered_set>

namespace ivd::host_path {

namespace fs = std::filesystem;

namespace {

std::atomic<std::uint64_t> files_read{0};
std::atomic<std::uint64_t> entries_listed{0};

std::string read_text(const fs::path &p) {
    files_read.fetch_add(1, std::memory_order_relaxed);
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
    entries_listed.fetch_add(names.size(), std::memory_order_relaxed);
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

bool same_address(const std::string &address, const request::Portal &portal) {
    return address == portal.host || address == "[" + portal.host + "]";
}

}  // namespace

SysfsReads sysfs_reads() {
    return {files_read.load(std::memory_order_relaxed), entries_listed.load(std::memory_order_relaxed)};
}

std::string by_path_lun(std::int64_t lun) {
    if (lun < 256) return fmt::format("lun-{}", lun);
    return fmt::format("lun-0x{:04x}{:04x}00000000", lun & 0xffff, (lun >> 16) & 0xffff);
}

fs::path Sysfs::session_dir(const Session &s) const { return fs::path(root_) / "class/iscsi_session" / s.name; }

// "sessionN" names, newest (highest N) first: a session just logged in is found after a read or two, however
// many sessions the host has; only the directory listing grows with them.
// Plain readdir: this runs on lookups that miss, and a host may have thousands of sessions.
std::vector<std::string> Sysfs::session_names() const {
    std::vector<std::pair<long, std::string>> numbered;
    const std::string dir = root_ + "/class/iscsi_session";
    if (DIR *d = ::opendir(dir.c_str())) {
        while (const dirent *e = ::readdir(d)) {
            entries_listed.fetch_add(1, std::memory_order_relaxed);
            if (std::strncmp(e->d_name, "session", 7) != 0) continue;
            numbered.emplace_back(std::strtol(e->d_name + 7, nullptr, 10), e->d_name);
        }
        ::closedir(d);
    }
    std::sort(numbered.begin(), numbered.end(), [](const auto &a, const auto &b) { return a.first > b.first; });
    std::vector<std::string> names;
    for (auto &[n, name] : numbered) names.push_back(std::move(name));
    forget_gone_sessions(names);
    return names;
}

// A session's name is never reused while the host runs (the kernel numbers sessions from a counter), and its
// target and portal never change: once read, they are known for as long as the name is listed.
Sysfs::SessionIdentity Sysfs::identity(const std::string &name) const {
    {
        std::lock_guard lock(identities_mutex_);
        if (auto it = identities_.find(name); it != identities_.end()) return it->second;
    }
    SessionIdentity id;
    id.iqn = read_text(fs::path(root_) / "class/iscsi_session" / name / "targetname");
    if (id.iqn.empty()) return id;  // gone, or not set up yet: its connection is not looked for (a listing)
    // The iface the session was logged in through (open-iscsi sets it at login); "default" when the kernel
    // has no such attribute.
    id.iface = read_text(fs::path(root_) / "class/iscsi_session" / name / "ifacename");
    if (id.iface.empty() || id.iface == "<NULL>") id.iface = default_iface_name;
    if (const fs::path cd = connection_dir(name); !cd.empty()) {
        id.address = read_text(cd / "persistent_address");
        if (id.address.empty()) id.address = read_text(cd / "address");
        std::string port = read_text(cd / "persistent_port");
        if (port.empty()) port = read_text(cd / "port");
        id.port = static_cast<std::uint16_t>(std::strtoul(port.c_str(), nullptr, 10));
    }
    if (!id.iqn.empty() && !id.address.empty()) {  // a session still being set up is read again next time
        std::lock_guard lock(identities_mutex_);
        identities_.emplace(name, id);
        by_target_[target_key(id.iqn, id.address, id.port, id.iface)] = name;
    }
    return id;
}

std::string Sysfs::target_key(const std::string &iqn, const std::string &address, std::uint16_t port,
                              const std::string &iface) {
    std::string host = address;
    if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
    return iqn + '\n' + host + '\n' + std::to_string(port) + '\n' + iface;
}

void Sysfs::forget_gone_sessions(const std::vector<std::string> &listed) const {
    std::lock_guard lock(identities_mutex_);
    if (identities_.empty()) return;
    const std::unordered_set<std::string_view> live(listed.begin(), listed.end());
    std::erase_if(identities_, [&](const auto &entry) {
        if (live.contains(entry.first)) return false;
        const std::string key = target_key(entry.second.iqn, entry.second.address, entry.second.port, entry.second.iface);
        if (auto it = by_target_.find(key); it != by_target_.end() && it->second == entry.first) by_target_.erase(it);
        return true;
    });
}

// The session already seen for this portal and IQN, if it is still there (its targetname read again): a lookup
// that does not list the host's sessions.
std::optional<std::string> Sysfs::known_session(const request::Portal &portal, const std::string &iqn,
                                                const std::string &iface) const {
    std::string name;
    {
        std::lock_guard lock(identities_mutex_);
        auto it = by_target_.find(target_key(iqn, portal.host, portal.port, iface));
        if (it == by_target_.end()) return std::nullopt;
        name = it->second;
    }
    if (read_text(fs::path(root_) / "class/iscsi_session" / name / "targetname") != iqn) return std::nullopt;
    return name;
}

// The session's connection: open-iscsi makes exactly one, "connectionN:0"; any other id is looked for by listing.
fs::path Sysfs::connection_dir(const std::string &session_name) const {
    const fs::path cls = fs::path(root_) / "class/iscsi_connection";
    const std::string prefix = "connection" + session_name.substr(std::strlen("session")) + ":";
    std::error_code ec;
    if (fs::exists(cls / (prefix + "0"), ec)) return cls / (prefix + "0");
    for (const auto &conn : list_dir(cls)) {
        if (starts_with(conn, prefix)) return cls / conn;
    }
    return {};
}

// One session's row; nothing when `iqn` is given and the session is to another target (read first: cheap).
std::optional<Sysfs::SessionRow> Sysfs::read_session(const std::string &name, const std::string *iqn) const {
    const fs::path dir = fs::path(root_) / "class/iscsi_session" / name;
    SessionIdentity id = identity(name);
    if (iqn != nullptr && id.iqn != *iqn) return std::nullopt;
    SessionRow row;
    row.session.name = name;
    row.iqn = std::move(id.iqn);
    row.address = std::move(id.address);
    row.port = id.port;
    row.iface = std::move(id.iface);
    // The SCSI host is in the session's device path: .../hostH/sessionN/...
    std::error_code ec;
    const std::string real = fs::canonical(dir, ec).string();
    const auto at = real.rfind("/host");
    if (at != std::string::npos) row.session.host = std::atoi(real.c_str() + at + 5);
    row.session.channel = "-";
    row.session.target_id = "-";
    for (const auto &t : list_dir(dir / "device")) {
        const auto parts = split_colon(t);
        if (starts_with(t, "target") && parts.size() == 3) {
            row.session.channel = parts[1];
            row.session.target_id = parts[2];
            break;
        }
    }
    return row;
}

// The sessions a lookup that missed must read: one readdir; a session whose identity is known and is another
// target's costs a hash lookup (no copy, no file read), so a host's thousands of idle sessions add almost nothing
// to a login. Newest first, gone sessions forgotten, as session_names().
std::vector<std::string> Sysfs::candidate_sessions(const request::Portal &portal, const std::string &iqn,
                                                   const std::string &iface) const {
    std::vector<std::pair<long, std::string>> numbered;
    const std::string dir = root_ + "/class/iscsi_session";
    std::lock_guard lock(identities_mutex_);
    ++listing_;
    std::size_t known_listed = 0;
    if (DIR *d = ::opendir(dir.c_str())) {
        while (const dirent *e = ::readdir(d)) {
            entries_listed.fetch_add(1, std::memory_order_relaxed);
            if (std::strncmp(e->d_name, "session", 7) != 0) continue;
            const long number = std::strtol(e->d_name + 7, nullptr, 10);
            max_listed_ = std::max(max_listed_, number);
            std::string name(e->d_name);  // short: no allocation
            if (auto it = identities_.find(name); it != identities_.end()) {
                it->second.listed = listing_;
                ++known_listed;
                const SessionIdentity &id = it->second;
                if (id.iqn != iqn || id.port != portal.port || id.iface != iface || !same_address(id.address, portal)) {
                    continue;
                }
            }
            numbered.emplace_back(number, std::move(name));
        }
        ::closedir(d);
    }
    if (known_listed != identities_.size()) {  // some known session is gone
        std::erase_if(identities_, [&](const auto &entry) {
            if (entry.second.listed == listing_) return false;
            const std::string key = target_key(entry.second.iqn, entry.second.address, entry.second.port, entry.second.iface);
            if (auto it = by_target_.find(key); it != by_target_.end() && it->second == entry.first) by_target_.erase(it);
            return true;
        });
    }
    std::sort(numbered.begin(), numbered.end(), [](const auto &a, const auto &b) { return a.first > b.first; });
    std::vector<std::string> names;
    for (auto &[n, name] : numbered) names.push_back(std::move(name));
    return names;
}

// A session just logged in is usually numbered above every session listed so far (the kernel takes the next
// free number): the next few names are tried before the whole directory is listed again. Where numbers are
// reused this only misses, and the listing decides.
std::optional<std::string> Sysfs::newer_session(const request::Portal &portal, const std::string &iqn,
                                                const std::string &iface) const {
    long from = 0;
    {
        std::lock_guard lock(identities_mutex_);
        if (listing_ == 0) return std::nullopt;  // nothing listed yet: nothing to be newer than
        from = max_listed_;
    }
    constexpr long probe = 8;  // logins in flight at once (one per path) and a few other sessions
    for (long n = from + 1; n <= from + probe; ++n) {
        const std::string name = "session" + std::to_string(n);
        const SessionIdentity id = identity(name);
        if (id.iqn == iqn && id.port == portal.port && id.iface == iface && same_address(id.address, portal)) return name;
    }
    return std::nullopt;
}

std::optional<Session> Sysfs::find_session(const request::Portal &portal, const std::string &iqn,
                                           const std::string &iface) const {
    if (auto known = known_session(portal, iqn, iface)) {
        if (auto row = read_session(*known, &iqn)) return row->session;
    }
    if (auto newer = newer_session(portal, iqn, iface)) {
        if (auto row = read_session(*newer, &iqn)) return row->session;
    }
    for (const auto &name : candidate_sessions(portal, iqn, iface)) {
        auto row = read_session(name, &iqn);
        if (row && same_address(row->address, portal) && row->port == portal.port && row->iface == iface) {
            return row->session;
        }
    }
    return std::nullopt;
}

bool Sysfs::session_exists(const std::string &name) const {
    if (!read_text(fs::path(root_) / "class/iscsi_session" / name / "targetname").empty()) return true;
    // Gone: forgotten now, as a listing would, in case the kernel gives the name to another session.
    std::lock_guard lock(identities_mutex_);
    if (auto it = identities_.find(name); it != identities_.end()) {
        const std::string key = target_key(it->second.iqn, it->second.address, it->second.port, it->second.iface);
        if (auto t = by_target_.find(key); t != by_target_.end() && t->second == name) by_target_.erase(t);
        identities_.erase(it);
    }
    return false;
}

std::vector<request::Portal> Sysfs::session_portals(const std::string &iqn) const {
    std::vector<request::Portal> out;
    for (const auto &name : session_names()) {
        auto found = read_session(name, &iqn);
        if (!found) continue;
        const SessionRow &s = *found;
        request::Portal p;
        p.host = s.address;
        p.port = s.port;
        p.ipv6 = s.address.find(':') != std::string::npos;
        out.push_back(p);
    }
    return out;
}

std::string Sysfs::find_device(const request::Target &target, const std::string &iface) const {
    auto session = find_session(target.portal, target.iqn, iface);
    if (!session) return {};
    const fs::path dev = session_dir(*session) / "device";
    for (const auto &t : list_dir(dev)) {
        if (!starts_with(t, "target")) continue;
        for (const auto &lu : list_dir(dev / t)) {
            const auto parts = split_colon(lu);
            if (parts.size() != 4 || parts[3] != std::to_string(target.scsi_lun())) continue;  // H:C:T:L, L as scanned
            const auto blocks = list_dir(dev / t / lu / "block");
            if (!blocks.empty()) return blocks.front();
        }
    }
    return {};
}

std::vector<std::int64_t> Sysfs::session_luns(const Session &session) const {
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

Result<std::string> Sysfs::read_wwid(const std::string &device) const {
    const std::string path = fmt::format("{}/block/{}/device/wwid", root_, device);
    std::string wwid = wwid_from_sysfs(read_text(path));
    if (wwid.empty()) return make_error(Status::not_found, fmt::format("{} has no WWID ({} is missing or empty)", device, path));
    return wwid;
}

std::optional<MultipathMap> Sysfs::map_of(const std::string &dm) const {
    const fs::path d = fs::path(root_) / "block" / dm / "dm";
    const std::string uuid = read_text(d / "uuid");
    if (!starts_with(uuid, "mpath-")) return std::nullopt;
    return MultipathMap{dm, read_text(d / "name"), device_path(dm)};
}

std::optional<MultipathMap> Sysfs::find_multipath(const std::string &device) const {
    for (const auto &h : list_dir(fmt::format("{}/block/{}/holders", root_, device))) {
        if (auto m = map_of(h)) return m;
    }
    return std::nullopt;
}

std::optional<MultipathMap> Sysfs::find_multipath_by_name(const std::string &name) const {
    // udev's /dev/mapper/<name> link names the dm-N directly; the scan of every block device is the fallback.
    std::error_code ec;
    const fs::path link = fs::read_symlink(fs::path(dev_root_) / "mapper" / name, ec);
    if (!ec && starts_with(link.filename().string(), "dm-")) {
        auto m = map_of(link.filename().string());
        if (m && m->name == name) return m;
    }
    for (const auto &b : list_dir(root_ + "/block")) {
        if (!starts_with(b, "dm-")) continue;
        auto m = map_of(b);
        if (m && m->name == name) return m;
    }
    return std::nullopt;
}

std::vector<std::string> Sysfs::multipath_paths(const MultipathMap &map) const {
    return list_dir(fmt::format("{}/block/{}/slaves", root_, map.dm));
}

std::string Sysfs::device_state(const std::string &device) const {
    return read_text(fs::path(root_) / "block" / device / "device/state");
}

Result<std::uint64_t> Sysfs::size_bytes(const std::string &device) const {
    const fs::path p = fs::path(root_) / "block" / device / "size";
    const std::string text = read_text(p);
    char *end = nullptr;
    errno = 0;
    const unsigned long long sectors = std::strtoull(text.c_str(), &end, 10);
    if (text.empty() || errno != 0 || end == nullptr || *end != '\0' || sectors > (UINT64_MAX >> 9)) {
        return make_error(Status::backend, fmt::format("cannot read the size of {} ({}: '{}')", device, p.string(), text));
    }
    return static_cast<std::uint64_t>(sectors) << 9;
}

bool Sysfs::map_suspended(const MultipathMap &map) const {
    return read_text(fs::path(root_) / "block" / map.dm / "dm/suspended") == "1";
}

Result<void> Sysfs::write(const std::string &path, const std::string &value) {
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

std::string wwid_from_sysfs(std::string text) {
    while (!text.empty() && (std::isspace(static_cast<unsigned char>(text.back())) || text.back() == '\0')) text.pop_back();
    // As os-brick (linuxscsi.get_sysfs_wwid) and udev's scsi_id name them.
    if (starts_with(text, "naa.")) return "3" + text.substr(4);
    if (starts_with(text, "eui.")) return "2" + text.substr(4);
    if (starts_with(text, "t10.")) return "1" + text.substr(4);
    return text;
}

}  // namespace ivd::host_path
