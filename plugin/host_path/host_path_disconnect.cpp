// HostPath::disconnect in steps: the paths to take down (device_info, else the request and the host's sessions),
// what the host shows for them now, then flush the maps -> remove the devices -> log out of the sessions nobody
// else uses. Without force or ignore_errors a failed step stops it; with them it goes on and reports the steps.
#include "host_path/host_path.hpp"

#include "core/json_output.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <tuple>

namespace ivd::host_path {

namespace {

// What device_info (or the request) says to take down.
struct TeardownTargets {
    std::vector<request::Target> targets;
    std::string map_name;  // device_info's multipath_id
    // Our ifaces: the configured ones and those device_info's paths name; every target is looked at through each
    // (sessions through other ifaces are not ours).
    std::vector<std::string> ifaces;
    void add(const request::Target &t) {
        if (std::find(targets.begin(), targets.end(), t) == targets.end()) targets.push_back(t);
    }
    void add_iface(const std::string &iface) {
        if (std::find(ifaces.begin(), ifaces.end(), iface) == ifaces.end()) ifaces.push_back(iface);
    }
};

// What the host shows now for those targets (names in device_info may be stale).
struct OnHost {
    std::vector<std::pair<request::Target, std::string>> devices;
    std::vector<MultipathMap> maps;
    void add_map(const MultipathMap &m) {
        if (std::none_of(maps.begin(), maps.end(), [&](const MultipathMap &x) { return x.dm == m.dm; })) maps.push_back(m);
    }
};

// The steps a disconnect went past (force, ignore_errors), reported at the end.
class Skipped {
public:
    Skipped(const Logger &log, std::string volume_key, DisconnectOptions options)
        : log_(log), volume_key_(std::move(volume_key)), ignore_(options.ignore_errors),
          go_on_(options.force || options.ignore_errors) {}

    // A step failed: the error to stop with (no force), or nothing once it is recorded and the disconnect goes on.
    std::optional<Error> failed(const char *step, const std::string &what, Error error, const std::string &context = {}) {
        if (!go_on_) return context.empty() ? std::move(error) : std::move(error).context(context);
        json::Value s = json::Value::object();
        s["step"] = step;
        s["object"] = what;
        s["code"] = status_code_name(error.status);
        s["error"] = error.message;
        steps_.append(s);
        log_.warning("host_path", "disconnect {}: {} {}: {}", volume_key_, step, what, error.message);
        return std::nullopt;
    }

    Result<void> finish() const {
        if (steps_.empty()) return {};
        if (ignore_) {
            log_.warning("host_path", "disconnect {}: {} failed step(s) ignored", volume_key_, steps_.size());
            return {};
        }
        json::Value detail = json::Value::object();
        detail["failed_steps"] = steps_;
        return make_error(Status::backend, fmt::format("disconnect left {} step(s) undone: {}", steps_.size(), to_json(detail)));
    }

private:
    const Logger &log_;
    std::string volume_key_;
    bool ignore_;
    bool go_on_;  // os-brick: force keeps going past failures
    json::Value steps_ = json::Value::array();
};

// The paths device_info recorded ("paths", then "targets") and its map name; request/ parsed and checked them.
void read_device_info(const request::DeviceInfo &device_info, TeardownTargets &out) {
    const request::BlockDevice &block = device_info.block();
    for (const auto &p : block.paths) {
        out.add(p.target);
        out.add_iface(p.iface);
    }
    for (const auto &t : device_info.targets) out.add(t);
    out.map_name = block.multipath_id;
}

// device_info's paths, the request's targets, and (single target) every session to its IQN. The LUNs are matched
// as connect scanned them: device_info's addressing_mode (absent: SAM) wins over the request's.
TeardownTargets teardown_targets(HostOps &ops, const request::VolumeRequest &volume,
                                 const request::DeviceInfo *device_info, const std::vector<request::IscsiIface> &ifaces) {
    TeardownTargets out;
    for (const auto &iface : ifaces) out.add_iface(iface.name);
    if (device_info != nullptr) read_device_info(*device_info, out);
    const request::LunAddressing addressing = device_info != nullptr ? device_info->block().addressing : volume.addressing;
    auto add = [&](request::Target t) {
        t.addressing = addressing;
        out.add(t);
    };
    for (const auto &t : volume.targets) add(t);
    if (!volume.targets_from_lists) {
        request::Target t = volume.targets.front();
        for (const auto &p : ops.session_portals(t.iqn)) {
            t.portal = p;
            add(t);
        }
    }
    return out;
}

OnHost find_on_host(HostOps &ops, const TeardownTargets &wanted) {
    OnHost on_host;
    for (const auto &t : wanted.targets) {
        for (const auto &iface : wanted.ifaces) {
            const std::string d = ops.find_device(t, iface);
            if (d.empty()) continue;
            on_host.devices.emplace_back(t, d);
            if (auto m = ops.find_multipath(d)) on_host.add_map(*m);
        }
    }
    if (!wanted.map_name.empty()) {
        if (auto m = ops.find_multipath_by_name(wanted.map_name)) on_host.add_map(*m);
    }
    return on_host;
}

// Without force, a failed flush stops here with everything still in place.
Result<void> flush_maps(HostOps &ops, const OnHost &on_host, Skipped &skipped) {
    for (const auto &m : on_host.maps) {
        if (auto r = ops.flush_multipath(m); !r) {
            auto stop = skipped.failed("flush_multipath", m.name, std::move(r).error(),
                                       fmt::format("flushing multipath map {} ({}) failed; nothing was removed "
                                                   "(VD_DISCONNECT_FORCE goes on)", m.name, m.dm));
            if (stop) return std::move(*stop);
        }
    }
    return {};
}

Result<void> remove_devices(HostOps &ops, const OnHost &on_host, Skipped &skipped) {
    for (const auto &[t, d] : on_host.devices) {
        if (auto r = ops.remove_device(d); !r) {
            if (auto stop = skipped.failed("remove_device", d, std::move(r).error(), "removing " + d)) return std::move(*stop);
        }
    }
    return {};
}

// Logs out of the sessions no other LUN still uses and deletes their node records, each under its target's lock.
Result<void> logout_sessions(HostOps &ops, const Logger &log, const TeardownTargets &wanted, Skipped &skipped) {
    std::vector<std::tuple<request::Portal, std::string, std::string>> sessions;
    for (const auto &t : wanted.targets) {
        for (const auto &iface : wanted.ifaces) {
            const auto key = std::make_tuple(t.portal, t.iqn, iface);
            if (std::find(sessions.begin(), sessions.end(), key) == sessions.end()) sessions.push_back(key);
        }
    }
    for (const auto &[portal, iqn, iface] : sessions) {
        const std::string what = portal.to_string() + " " + iqn + (iface == request::default_iface ? "" : " iface " + iface);
        auto lock = ops.lock_target(portal, iqn);
        if (!lock) {
            if (auto stop = skipped.failed("lock", what, std::move(lock).error())) return std::move(*stop);
            continue;
        }
        auto session = ops.find_session(portal, iqn, iface);
        if (!session) continue;
        if (const auto others = ops.session_luns(*session); !others.empty()) {
            log.info("host_path", "session {} to {} stays: LUN(s) {} still use it", session->name, what,
                     fmt::format("{}", fmt::join(others, ",")));
            continue;
        }
        if (auto r = ops.logout(portal, iqn, iface); !r) {
            if (auto stop = skipped.failed("logout", what, std::move(r).error())) return std::move(*stop);
            continue;
        }
        if (auto r = ops.delete_node(portal, iqn, iface); !r) {
            if (auto stop = skipped.failed("delete_node", what, std::move(r).error())) return std::move(*stop);
        }
    }
    return {};
}

}  // namespace

Result<void> HostPath::disconnect(const request::VolumeRequest &volume, const request::DeviceInfo *device_info,
                                  DisconnectOptions options) {
    Skipped skipped(log_, volume.volume_key(), options);
    const TeardownTargets wanted = teardown_targets(*ops_, volume, device_info, config_.iscsi_ifaces);
    const OnHost on_host = find_on_host(*ops_, wanted);
    if (auto r = flush_maps(*ops_, on_host, skipped); !r) return r;
    if (auto r = remove_devices(*ops_, on_host, skipped); !r) return r;
    if (auto r = logout_sessions(*ops_, log_, wanted, skipped); !r) return r;
    return skipped.finish();
}

}  // namespace ivd::host_path
