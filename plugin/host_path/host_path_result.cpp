// HostPath's last connect steps: wait for the multipath map, choose the guest's device, build device_info.
#include "host_path/host_path.hpp"
#include "host_path/path_attempt.hpp"

#include "core/json_output.hpp"
#include "xml/libvirt_xml.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace ivd::host_path {

Result<MapOutcome> HostPath::wait_for_map(const std::vector<const PathAttempt *> &good, bool enforce,
                                          json::Value &failed) {
    // Every good path has been offered already (by its thread); wait for the one map holding them all, bounded
    // from when the last path was ready.
    std::vector<std::string> devices;
    auto deadline = good.front()->ready;
    for (const PathAttempt *a : good) {
        devices.push_back(a->device);
        deadline = std::max(deadline, a->ready + config_.multipath_wait_timeout);
    }
    MapOutcome out;
    out.map = ops_->multipath_wait(devices, deadline);
    if (out.map) return out;

    std::string refusals;
    bool any_taken = false;
    for (const PathAttempt *a : good) {
        any_taken = any_taken || a->taken;
        if (!a->multipath_error.empty()) refusals += (refusals.empty() ? "" : "; ") + a->multipath_error;
    }
    Error e = make_error(!any_taken && !refusals.empty() ? Status::backend : Status::timeout,
                         fmt::format("no multipath map for WWID {} appeared within {} ms{}{}", good.front()->wwid,
                                     config_.multipath_wait_timeout.count(),
                                     refusals.empty() ? ""
                                     : any_taken      ? ": multipathd refused some paths: "
                                                      : ": multipathd took none of the paths: ",
                                     refusals));
    if (enforce) {
        for (const PathAttempt *a : good) {
            // multipathd refused the path, or took it and no map formed in time.
            const bool refused = !a->taken && !a->multipath_error.empty();
            failed.append(fail_path(*a, refused ? "multipath_add" : "multipath_wait",
                                    refused ? make_error(Status::backend, a->multipath_error) : e));
            undo_path(*a);
        }
        e.message += fmt::format("; failed paths: {}", to_json(failed));
        return std::move(e).context("enforce_multipath is set and the multipath map did not appear; "
                                    "every path was undone");
    }
    log_.warning("host_path", "no multipath map ({}); using the single path {}", e.message, good.front()->device);
    out.error = e.message;
    return out;
}

Result<void> HostPath::check_map_ready(const MultipathMap &map, const std::vector<const PathAttempt *> &good) {
    auto ready = ops_->wait_map_ready(map, config_.map_ready_timeout);
    if (ready) return {};
    // Every device new: this connect made the map, so it goes too. A device that was there before means the
    // map was (another attachment of the volume uses it): it stays, only what this connect added is undone.
    const bool made_here = std::none_of(good.begin(), good.end(), [](const PathAttempt *a) { return a->device_existed; });
    if (made_here) {
        if (auto f = ops_->flush_multipath(map); !f) log_.warning("host_path", "undo: {}", f.error().message);
    }
    for (const PathAttempt *a : good) undo_path(*a);
    return std::move(ready).error().context(
        fmt::format("map_ready_timeout_ms: the multipath map is not ready for I/O; everything this connect did was "
                    "undone{}", made_here ? " (the map flushed)" : " (the map, there before this connect, kept)"));
}

std::set<std::string> HostPath::paths_in_map(const MultipathMap &map, const std::vector<const PathAttempt *> &good) {
    std::set<std::string> in_map;
    for (const auto &d : ops_->multipath_paths(map)) in_map.insert(d);
    const auto held =
        std::count_if(good.begin(), good.end(), [&](const PathAttempt *a) { return in_map.count(a->device) > 0; });
    if (static_cast<std::size_t>(held) < good.size()) {
        log_.warning("host_path", "map {} holds only {} of the {} paths", map.dm, held, good.size());
    }
    return in_map;
}

std::string HostPath::guest_device(const std::optional<MultipathMap> &map, const PathAttempt &first) {
    if (map) return map->device_path;
    // os-brick's answer is the by-path link, which udev makes a moment after the node the wait saw: give it
    // a little time (bounded), else hand over the node itself.
    const auto grace = std::min<std::chrono::milliseconds>(config_.device_wait_timeout, std::chrono::seconds(2));
    if (auto link = ops_->wait_for_by_path_link(first.target, grace)) return *link;
    return ops_->device_path(first.device);
}

Result<request::DeviceInfo> HostPath::build_device_info(const ConnectContext &ctx, const Attached &a) {
    const std::optional<MultipathMap> &map = a.map.map;
    const PathAttempt *first = a.good.front();
    request::DeviceInfo info;
    request::BlockDevice &block = info.device.emplace<request::BlockDevice>();
    block.multipath_error = a.map.error;
    block.path = a.device_path;
    block.scsi_wwn = first->wwid;
    if (map) {
        block.multipath_id = map->name;
        block.dm = map->dm;
    }
    info.targets = a.targets;
    for (const PathAttempt *p : a.good) {
        const char *state = !map ? (p == first ? "active" : "standby") : a.in_map.count(p->device) ? "active" : "not_in_map";
        block.paths.push_back(request::BlockPath{p->target, ops_->device_path(p->device), state, p->multipath_error, p->iface});
    }
    block.failed_portals = a.failed;  // in the order tried, each with the stage it failed at
    // Single path: the portal that served; the portals tried before it are in failed_portals.
    if (!ctx.decision.multipath) block.served_by = request::target_to_json(first->target);
    if (!a.discovery.empty()) block.discovery = a.discovery;
    block.multipath = map.has_value();
    block.addressing = ctx.volume.addressing;  // disconnect matches the kernel's LUNs with it
    if (!ctx.disk.dev.empty()) {  // ABI v2 connects without a guest device: no guest part
        auto xml = disk_config(ctx.volume, info, ctx.disk);
        if (!xml) return std::move(xml).error();
        info.guest = request::DeviceGuest{ctx.disk, std::move(xml).value()};
    }
    return info;
}

}  // namespace ivd::host_path
