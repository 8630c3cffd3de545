// Clean removal on the real host (RealHostOps' part): multipathd asked which paths it still monitors, stale ones
// deleted from it, and a map whose flush failed deleted through multipathd until sysfs no longer shows it, or,
// held open, left to the kernel's deferred removal.
#pragma once

#include "core/error.hpp"
#include "host_path/host_ops.hpp"
#include "host_path/host_tools.hpp"
#include "host_path/sysfs.hpp"

#include <chrono>
#include <string>
#include <vector>

namespace ivd::host_path {

// Polls `multipathd show paths` until it lists none of `devices` or `timeout`; the ones still listed then.
Result<std::vector<std::string>> wait_paths_unlisted(const HostTools &tools, const std::vector<std::string> &devices,
                                                     std::chrono::milliseconds timeout);
// `multipathd del path DEV`; a refusal counts as success when multipathd no longer lists the path.
Result<void> del_path_until_unlisted(const HostTools &tools, const std::string &device);
// `multipathd del map NAME` (again while refused) until the map is gone from sysfs; still there (held open): an
// error table and deferred removal through dmsetup. All within `timeout`.
Result<MapRemoval> del_map_until_gone(const HostTools &tools, const Sysfs &sys, const MultipathMap &map,
                                std::chrono::milliseconds timeout);

}  // namespace ivd::host_path
