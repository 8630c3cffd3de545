// Sysfs's session lookups: (portal, IQN, iface) to "sessionN", with what was read of each session kept so a
// lookup does not grow with the host's sessions (see identity()).
#include "host_path/sysfs.hpp"
#include "host_path/sysfs_text.hpp"

#include <dirent.h>

#include <algorithm>
#include <cstring>
#include <string_view>
#include <unordered_set>

namespace ivd::host_path {

namespace fs = std::filesystem;
using namespace sysfs_detail;

// "sessionN" names, newest (highest N) first: a session just logged in is found after a read or two, however
// many sessions the host has; only the directory listing grows with them.
// Plain readdir: this runs on lookups that miss, and a host may have thousands of sessions.
std::vector<std::string> Sysfs::session_names() const {
    std::vector<std::pair<long, std::string>> numbered;
    const std::string dir = root_ + "/class/iscsi_session";
    if (DIR *d = ::opendir(dir.c_str())) {
        while (const dirent *e = ::readdir(d)) {
            count_entry_listed();
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

// Linux names sessions from a counter (scsi_transport_iscsi.c: iscsi_session_nr), so a name is not reused while
// the host runs; still, a name outlives its session in this cache when the session is logged out behind our back,
// and other initiators (or a kernel that reuses ids) may give it to another session. So a cached identity may
// rule a session out (another target's: no file read), but a session is returned only after its identity was
// read again (read_session). `cached` tells which it was.
Sysfs::SessionIdentity Sysfs::identity(const std::string &name, bool *cached) const {
    {
        std::lock_guard lock(identities_mutex_);
        if (auto it = identities_.find(name); it != identities_.end()) {
            if (cached != nullptr) *cached = true;
            return it->second;
        }
    }
    SessionIdentity id = read_identity(name);
    remember(name, id);
    return id;
}

// What sysfs says now: an empty IQN when the session is gone, an empty address while it is being set up.
Sysfs::SessionIdentity Sysfs::read_identity(const std::string &name) const {
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
    return id;
}

// `id` becomes what is known of `name`, replacing what was; a gone session, or one still being set up (read
// again next time), is not kept.
void Sysfs::remember(const std::string &name, const SessionIdentity &id) const {
    std::lock_guard lock(identities_mutex_);
    forget_locked(name);
    if (id.iqn.empty() || id.address.empty()) return;
    SessionIdentity &kept = identities_.emplace(name, id).first->second;
    kept.listed = listing_;
    by_target_[target_key(id.iqn, id.address, id.port, id.iface)] = name;
}

void Sysfs::forget_locked(const std::string &name) const {
    auto it = identities_.find(name);
    if (it == identities_.end()) return;
    const std::string key = target_key(it->second.iqn, it->second.address, it->second.port, it->second.iface);
    if (auto t = by_target_.find(key); t != by_target_.end() && t->second == name) by_target_.erase(t);
    identities_.erase(it);
}

void Sysfs::forget_identities() const {
    std::lock_guard lock(identities_mutex_);
    identities_.clear();
    by_target_.clear();
}

std::string Sysfs::target_key(const std::string &iqn, const std::string &address, std::uint16_t port,
                              const std::string &iface) {
    std::string host = address;
    if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
    return iqn + '\n' + host + '\n' + std::to_string(port) + '\n' + iface;
}

void Sysfs::forget_gone_sessions(const std::vector<std::string> &listed) const {
    const std::unordered_set<std::string_view> live(listed.begin(), listed.end());
    std::lock_guard lock(identities_mutex_);
    forget_if_locked([&](const std::string &name, const SessionIdentity &) { return !live.contains(name); });
}

void Sysfs::forget_if_locked(const std::function<bool(const std::string &, const SessionIdentity &)> &gone) const {
    std::vector<std::string> names;
    for (const auto &[name, id] : identities_) {
        if (gone(name, id)) names.push_back(name);
    }
    for (const auto &name : names) forget_locked(name);
}

// The session last seen for this portal, IQN and iface (read_session checks it is still theirs): a lookup that
// does not list the host's sessions.
std::optional<std::string> Sysfs::known_session(const request::Portal &portal, const std::string &iqn,
                                                const std::string &iface) const {
    std::string name;
    {
        std::lock_guard lock(identities_mutex_);
        auto it = by_target_.find(target_key(iqn, portal.host, portal.port, iface));
        if (it == by_target_.end()) return std::nullopt;
        name = it->second;
    }
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
    bool cached = false;
    SessionIdentity id = identity(name, &cached);
    if (iqn != nullptr && id.iqn != *iqn) return std::nullopt;
    if (cached) {  // about to be returned: its identity read again (see identity())
        id = read_identity(name);
        remember(name, id);
        if (id.iqn.empty() || (iqn != nullptr && id.iqn != *iqn)) return std::nullopt;
    }
    SessionRow row;
    row.session.name = name;
    row.iqn = std::move(id.iqn);
    row.address = std::move(id.address);
    row.port = id.port;
    row.iface = std::move(id.iface);
    // The SCSI host is in the session's device path: .../hostH/sessionN/...
    std::error_code ec;
    const std::string real = fs::canonical(dir, ec).string();
    if (ec) {  // gone since
        std::lock_guard lock(identities_mutex_);
        forget_locked(name);
        return std::nullopt;
    }
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
            count_entry_listed();
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
        forget_if_locked([&](const std::string &, const SessionIdentity &id) { return id.listed != listing_; });
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
    // Names are tried until `gap` in a row are not there: logins in flight at once (one per path), failed ones.
    // Those read in full are known from now on: the next lookup starts above them (it stays a few reads however
    // many sessions were logged in since the last listing).
    constexpr long gap = 8;
    std::optional<std::string> match;
    long settled = from;
    bool unsettled = false;
    for (long n = from + 1, last = from; n <= last + gap; ++n) {
        const std::string name = "session" + std::to_string(n);
        const SessionIdentity id = identity(name);
        if (id.iqn.empty()) continue;
        last = n;
        unsettled = unsettled || id.address.empty();  // still being set up: read again next time
        if (!unsettled) settled = n;
        if (!match && id.iqn == iqn && id.port == portal.port && id.iface == iface && same_address(id.address, portal)) {
            match = name;
        }
    }
    std::lock_guard lock(identities_mutex_);
    max_listed_ = std::max(max_listed_, settled);
    return match;
}

// The session `name` if it is (portal, IQN, iface)'s, as read now.
std::optional<Session> Sysfs::session_of(const std::string &name, const request::Portal &portal, const std::string &iqn,
                                         const std::string &iface) const {
    auto row = read_session(name, &iqn);
    if (!row || !same_address(row->address, portal) || row->port != portal.port || row->iface != iface) return {};
    return row->session;
}

std::optional<Session> Sysfs::find_session(const request::Portal &portal, const std::string &iqn,
                                           const std::string &iface, bool list) const {
    if (auto known = known_session(portal, iqn, iface)) {
        if (auto found = session_of(*known, portal, iqn, iface)) return found;
    }
    if (auto newer = newer_session(portal, iqn, iface)) {
        if (auto found = session_of(*newer, portal, iqn, iface)) return found;
    }
    if (!list && listed_once()) return std::nullopt;
    for (const auto &name : candidate_sessions(portal, iqn, iface)) {
        if (auto found = session_of(name, portal, iqn, iface)) return found;
    }
    return std::nullopt;
}

bool Sysfs::listed_once() const {
    std::lock_guard lock(identities_mutex_);
    return listing_ > 0;
}

bool Sysfs::session_exists(const std::string &name) const {
    if (!read_text(fs::path(root_) / "class/iscsi_session" / name / "targetname").empty()) return true;
    // Gone: forgotten now, as a listing would, in case the kernel gives the name to another session.
    std::lock_guard lock(identities_mutex_);
    forget_locked(name);
    return false;
}

}  // namespace ivd::host_path
