// HostPath::extend: after the storage grew a volume, make this host see the new size. As os-brick's
// extend_volume, with its later fixes: refuse when a path is not active (bug 2032177: a path that misses the
// rescan keeps the old size and multipathd cannot resize a map whose paths disagree), rescan every path, then
// `multipathd resize map` (bugs 1609753, 1611659: the map keeps its old size otherwise), then read the new size.
#include "host_path/host_path.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <thread>

namespace ivd::host_path {

namespace {

std::string path_label(const request::BlockPath &p) {
    const request::Target &t = p.target;
    return fmt::format("{} {} lun {}{}", t.portal.to_string(), t.iqn, t.lun,
                       p.iface == request::default_iface ? "" : " iface " + p.iface);
}

}  // namespace

Result<std::vector<HostPath::ExtendPath>> HostPath::active_paths(const request::BlockDevice &block,
                                                                 const std::optional<MultipathMap> &map) {
    std::vector<ExtendPath> paths;
    // device_info's paths, found again on the host (a name may have changed since connect).
    for (const request::BlockPath &p : block.paths) {
        paths.push_back({path_label(p), ops_->find_device(p.target, p.iface)});
    }
    std::vector<std::string> in_map = map ? ops_->multipath_paths(*map) : std::vector<std::string>{};
    // A path the map holds that device_info does not name (added since) is rescanned too.
    for (const std::string &d : in_map) {
        if (std::none_of(paths.begin(), paths.end(), [&](const ExtendPath &p) { return p.device == d; })) {
            paths.push_back({d, d});
        }
    }
    std::vector<std::string> inactive;
    for (const ExtendPath &p : paths) {
        const std::string state = p.device.empty() ? std::string() : ops_->device_state(p.device);
        if (p.device.empty()) {
            inactive.push_back(p.label + " (no device)");
        } else if (state != "running") {
            inactive.push_back(fmt::format("{} ({}: {})", p.label, p.device, state.empty() ? "gone" : state));
        } else if (map && std::find(in_map.begin(), in_map.end(), p.device) == in_map.end()) {
            inactive.push_back(fmt::format("{} ({}: not in map {})", p.label, p.device, map->name));
        }
    }
    if (!inactive.empty()) {
        return make_error(Status::unreachable,
                          fmt::format("extend refused: every path must be active to resize the volume, and these are "
                                      "not: {}; nothing was changed", fmt::join(inactive, "; ")));
    }
    if (paths.empty()) {
        return make_error(Status::invalid_argument, "device_info paths: no path to rescan", "device_info", "paths");
    }
    return paths;
}

Result<std::uint64_t> HostPath::wait_for_map_size(const MultipathMap &map, const std::vector<ExtendPath> &paths,
                                                  std::chrono::steady_clock::time_point deadline) {
    // The map takes the paths' size once multipathd has resized it; the paths must agree on that size.
    std::string seen;
    while (true) {
        auto map_size = ops_->device_size(map.dm);
        if (!map_size) return std::move(map_size).error().context("extend: the map's size");
        bool all_equal = true;
        seen = fmt::format("{} {}", map.dm, *map_size);
        for (const ExtendPath &p : paths) {
            auto size = ops_->device_size(p.device);
            if (!size) return std::move(size).error().context("extend: " + p.label);
            all_equal = all_equal && *size == *map_size;
            seen += fmt::format(", {} {}", p.device, *size);
        }
        if (all_equal) return *map_size;
        if (std::chrono::steady_clock::now() >= deadline) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return make_error(Status::timeout, fmt::format("extend: map {} and its paths did not agree on one size within {} ms "
                                                   "(bytes: {})", map.name, config_.extend_timeout.count(), seen));
}

Result<std::uint64_t> HostPath::extend(const request::VolumeRequest &volume, const request::DeviceInfo &info) {
    if (info.is_network()) {
        return make_error(Status::invalid_argument, "device_info type: the host path extends block devices only",
                          "device_info", "type");
    }
    const request::BlockDevice &block = info.block();
    const auto deadline = std::chrono::steady_clock::now() + config_.extend_timeout;
    std::optional<MultipathMap> map;
    if (!block.multipath_id.empty()) {
        map = ops_->find_multipath_by_name(block.multipath_id);
        if (!map) {
            return make_error(Status::not_found, fmt::format("device_info multipath_id: no multipath map {} on this "
                                                             "host", block.multipath_id), "device_info", "multipath_id");
        }
    }
    auto paths = active_paths(block, map);
    if (!paths) return std::move(paths).error();
    for (const ExtendPath &p : *paths) {
        if (auto r = ops_->rescan_device(p.device); !r) return std::move(r).error().context("extend: rescan of " + p.label);
    }
    if (!map) {
        auto size = ops_->device_size(paths->front().device);
        if (!size) return std::move(size).error().context("extend: " + paths->front().label);
        log_.info("host_path", "{}: extended, {} is {} bytes", volume.volume_key(), paths->front().device, *size);
        return size;
    }
    if (auto r = ops_->multipath_resize(*map, deadline); !r) return std::move(r).error().context("extend: resize of the map");
    auto size = wait_for_map_size(*map, *paths, deadline);
    if (size) log_.info("host_path", "{}: extended, map {} is {} bytes", volume.volume_key(), map->name, *size);
    return size;
}

}  // namespace ivd::host_path
