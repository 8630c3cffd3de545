#include "host_path/path_removal.hpp"

#include "host_path/wait.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace ivd::host_path {

namespace {

std::vector<std::string> still_listed(const std::vector<std::string> &listed, const std::vector<std::string> &devices) {
    std::vector<std::string> out;
    for (const auto &d : devices) {
        if (std::find(listed.begin(), listed.end(), d) != listed.end()) out.push_back(d);
    }
    return out;
}

}  // namespace

Result<std::vector<std::string>> wait_paths_unlisted(const HostTools &tools, const std::vector<std::string> &devices,
                                                     std::chrono::milliseconds timeout) {
    std::vector<std::string> left;
    std::optional<Error> error;
    // multipathd drops a path on the kernel's remove uevent, usually within milliseconds of the delete.
    poll_until(timeout, [&] {
        auto listed = tools.multipathd_show_paths();
        if (!listed) {
            error = std::move(listed).error();
            return true;  // not answering: nothing to wait for
        }
        left = still_listed(*listed, devices);
        return left.empty();
    }, quick_backoff);
    if (error) return std::move(*error);
    return left;
}

Result<void> del_path_until_unlisted(const HostTools &tools, const std::string &device) {
    auto r = tools.multipathd_del_path(device);
    if (r) return {};
    // "fail" also means "no such path": multipathd may have dropped it between the listing and the delete.
    if (auto listed = tools.multipathd_show_paths(); listed && still_listed(*listed, {device}).empty()) return {};
    return r;
}

Result<MapRemoval> del_map_until_gone(const HostTools &tools, const Sysfs &sys, const MultipathMap &map,
                                      std::chrono::milliseconds timeout) {
    using namespace std::chrono;
    auto gone = [&] { return !sys.find_multipath_by_name(map.name).has_value(); };
    const auto deadline = steady_clock::now() + timeout;
    // Half the bound for multipathd: a holder that lets go by itself (udev's blkid, a short read) is waited for.
    Result<void> last;
    if (poll_until(timeout / 2, [&] {
            if (gone()) return true;
            last = tools.multipathd_del_map(map.name);
            return gone();
        })) {
        return MapRemoval::removed;
    }
    // Still open: the kernel refuses to remove an open dm device, and nothing would remove it once its holder
    // closes it. First the deferred removal (one ioctl): the kernel removes the map at its last close. Then the
    // error table: the paths are gone, so no I/O on the map can reach the storage any more, and with
    // queue_if_no_path a holder's reads and writes would hang forever (and it might never close); with an error
    // target they fail at once. In this order a slow or failed wipe (udev is slow on a loaded host) still leaves
    // the map to go at its last close. Only a disconnect that goes on past a failed flush (force) gets here.
    const auto left = [&] { return std::max(duration_cast<milliseconds>(deadline - steady_clock::now()), milliseconds(100)); };
    auto deferred = tools.dmsetup_remove_deferred(map.name, left());
    if (!deferred) {
        return make_error(Status::backend, fmt::format("multipath map {} ({}) is still there after `multipathd del "
                                                       "map` for {} ms (held open?): {}; and {}", map.name, map.dm,
                                                       timeout.count() / 2, last ? "it is still in sysfs" : last.error().message,
                                                       deferred.error().message));
    }
    if (gone()) return MapRemoval::removed;  // it was not open any more: removed at once
    if (auto wiped = tools.dmsetup_wipe_table(map.name, left()); !wiped && !gone()) {
        return make_error(Status::backend, fmt::format("multipath map {} ({}): removal deferred until closed, but its "
                                                       "table was not replaced with an error target (a holder's I/O "
                                                       "may hang): {}", map.name, map.dm, wiped.error().message));
    }
    return gone() ? MapRemoval::removed : MapRemoval::deferred;
}

}  // namespace ivd::host_path
