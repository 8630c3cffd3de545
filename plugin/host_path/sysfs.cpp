#include "host_path/sysfs.hpp"
#include "host_path/real_host_ops.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

namespace ivd::host_path {

namespace fs = std::filesystem;

namespace {

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

bool same_address(const std::string &address, const request::Portal &portal) {
    return address == portal.host || address == "[" + portal.host + "]";
}

}  // namespace

fs::path Sysfs::session_dir(const Session &s) const { return fs::path(root_) / "class/iscsi_session" / s.name; }

std::vector<Sysfs::SessionRow> Sysfs::sessions() const {
    std::vector<SessionRow> rows;
    const fs::path cls = fs::path(root_) / "class/iscsi_session";
    for (const auto &name : list_dir(cls)) {
        if (!starts_with(name, "session")) continue;
        SessionRow row;
        row.session.name = name;
        row.iqn = read_text(cls / name / "targetname");
        const std::string sid = name.substr(std::strlen("session"));
        for (const auto &conn : list_dir(fs::path(root_) / "class/iscsi_connection")) {
            if (!starts_with(conn, "connection" + sid + ":")) continue;
            const fs::path cd = fs::path(root_) / "class/iscsi_connection" / conn;
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

std::optional<Session> Sysfs::find_session(const request::Portal &portal, const std::string &iqn) const {
    for (const auto &s : sessions()) {
        if (s.iqn == iqn && same_address(s.address, portal) && s.port == portal.port) return s.session;
    }
    return std::nullopt;
}

std::vector<request::Portal> Sysfs::session_portals(const std::string &iqn) const {
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

std::string Sysfs::find_device(const request::Target &target) const {
    auto session = find_session(target.portal, target.iqn);
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
