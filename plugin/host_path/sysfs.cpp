#include "host_path/sysfs.hpp"
#include "host_path/real_host_ops.hpp"
#include "host_path/sysfs_text.hpp"

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
#include <functional>
#include <sstream>
#include <string_view>
#include <unordered_set>
#include <utility>

namespace ivd::host_path {

namespace fs = std::filesystem;

using namespace sysfs_detail;

std::string by_path_lun(std::int64_t lun) {
    if (lun < 256) return fmt::format("lun-{}", lun);
    return fmt::format("lun-0x{:04x}{:04x}00000000", lun & 0xffff, (lun >> 16) & 0xffff);
}

fs::path Sysfs::session_dir(const Session &s) const { return fs::path(root_) / "class/iscsi_session" / s.name; }

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

std::string Sysfs::find_device(const request::Target &target, const std::string &iface, bool list) const {
    auto session = find_session(target.portal, target.iqn, iface, list);
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

std::string Sysfs::devnum(const std::string &device) const {
    return read_text(fs::path(root_) / "block" / device / "dev");
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
    // In place: `"3" + text.substr(4)` trips GCC 12's -Wrestrict false positive at -O3 (a Release -Werror build).
    for (const auto &[prefix, type] : {std::pair{"naa.", '3'}, std::pair{"eui.", '2'}, std::pair{"t10.", '1'}}) {
        if (starts_with(text, prefix)) return std::move(text.replace(0, 4, 1, type));
    }
    return text;
}

}  // namespace ivd::host_path
