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

Result<void> del_map_until_gone(const HostTools &tools, const Sysfs &sys, const MultipathMap &map,
                                std::chrono::milliseconds timeout) {
    auto gone = [&] { return !sys.find_multipath_by_name(map.name).has_value(); };
    Result<void> last;
    const bool ok = poll_until(timeout, [&] {
        if (gone()) return true;
        last = tools.multipathd_del_map(map.name);
        return gone();
    });
    if (ok) return {};
    const std::string why = last ? "it is still in sysfs" : last.error().message;
    return make_error(Status::backend, fmt::format("multipath map {} ({}) is still there after `multipathd del map` "
                                                   "for {} ms (held open?): {}", map.name, map.dm, timeout.count(), why));
}

}  // namespace ivd::host_path
