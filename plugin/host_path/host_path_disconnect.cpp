// HostPath::disconnect in steps: the paths to take down (device_info, else the request and the host's sessions),
// what the host shows for them now, then flush the maps -> remove the devices -> make multipathd forget them (bounded
// wait, then `del path`) -> log out of the sessions nobody else uses -> `multipathd del map` for a map whose flush
// failed. Without force or ignore_errors a failed step stops it; with them it goes on and reports the steps.
#include "host_path/host_path.hpp"

#include "core/json_output.hpp"
#include "host_path/step_times.hpp"

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
    std::vector<std::string> recorded_devices;  // device_info's path devices ("sdc"), possibly gone already
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

    // A map still open at the end: the kernel removes it at its last close (reported, not a failed step).
    void deferred(const MultipathMap &m) {
        json::Value d = json::Value::object();
        d["map"] = m.name;
        d["dm"] = m.dm;
        d["state"] = "removal deferred until closed";
        deferred_.append(d);
        log_.warning("host_path", "disconnect {}: multipath map {} ({}) is held open: removal deferred until closed "
                     "(its table now fails all I/O)", volume_key_, m.name, m.dm);
    }

    bool none() const { return steps_.empty(); }

    Result<void> finish() const {
        if (steps_.empty()) return {};
        if (ignore_) {
            log_.warning("host_path", "disconnect {}: {} failed step(s) ignored", volume_key_, steps_.size());
            return {};
        }
        json::Value detail = json::Value::object();
        detail["failed_steps"] = steps_;
        if (!deferred_.empty()) detail["deferred_removal"] = deferred_;
        return make_error(Status::backend, fmt::format("disconnect left {} step(s) undone: {}", steps_.size(), to_json(detail)));
    }

private:
    const Logger &log_;
    std::string volume_key_;
    bool ignore_;
    bool go_on_;  // os-brick: force keeps going past failures
    json::Value steps_ = json::Value::array();
    json::Value deferred_ = json::Value::array();
};

// The paths device_info recorded ("paths", then "targets") and its map name; request/ parsed and checked them.
void read_device_info(const request::DeviceInfo &device_info, TeardownTargets &out) {
    const request::BlockDevice &block = device_info.block();
    for (const auto &p : block.paths) {
        out.add(p.target);
        out.add_iface(p.iface);
        if (!p.device.empty()) out.recorded_devices.push_back(p.device.substr(p.device.find_last_of('/') + 1));
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

// Without force, a failed flush stops here with everything still in place; going on, the maps not flushed are
// collected in `unflushed` (deleted through multipathd at the end).
Result<void> flush_maps(HostOps &ops, const OnHost &on_host, Skipped &skipped, std::vector<MultipathMap> &unflushed) {
    for (const auto &m : on_host.maps) {
        if (auto r = ops.flush_multipath(m); !r) {
            auto stop = skipped.failed("flush_multipath", m.name, std::move(r).error(),
                                       fmt::format("flushing multipath map {} ({}) failed; nothing was removed "
                                                   "(VD_DISCONNECT_FORCE goes on)", m.name, m.dm));
            if (stop) return std::move(*stop);
            unflushed.push_back(m);
        }
    }
    return {};
}

// device_info's path devices that have no block device now (an earlier disconnect or a crash removed them, and
// the kernel has not given the name to another LUN yet): multipathd must not list them either.
std::vector<std::string> recorded_but_gone(HostOps &ops, const TeardownTargets &wanted) {
    std::vector<std::string> out;
    for (const auto &d : wanted.recorded_devices) {
        if (ops.device_state(d).empty() && std::find(out.begin(), out.end(), d) == out.end()) out.push_back(d);
    }
    return out;
}

// The devices removed go to `removed` (what multipathd must stop listing).
Result<void> remove_devices(HostOps &ops, const OnHost &on_host, Skipped &skipped, std::vector<std::string> &removed) {
    for (const auto &[t, d] : on_host.devices) {
        if (auto r = ops.remove_device(d); !r) {
            if (auto stop = skipped.failed("remove_device", d, std::move(r).error(), "removing " + d)) return std::move(*stop);
            continue;
        }
        if (std::find(removed.begin(), removed.end(), d) == removed.end()) removed.push_back(d);
    }
    return {};
}

// multipathd drops a path on the kernel's remove uevent; one it still lists after path_removal_timeout (a late or
// missed uevent: os-brick bugs 1924652, 2136842) is deleted from it. A multipathd that does not answer (not
// running, not installed) keeps no paths: logged only.
Result<void> forget_removed_paths(HostOps &ops, const Logger &log, const std::vector<std::string> &removed,
                                  std::chrono::milliseconds timeout, Skipped &skipped, StepTimes &steps) {
    if (removed.empty()) return {};
    auto left = ops.wait_paths_unlisted(removed, timeout);
    steps.lap("unlisted");
    if (!left) {
        log.info("host_path", "multipathd was not asked to forget {}: {}", fmt::format("{}", fmt::join(removed, ",")),
                 left.error().message);
        return {};
    }
    for (const auto &d : *left) {
        // The kernel reuses sdX names: one that is a block device again belongs to a new LUN now, not to us.
        if (!ops.device_state(d).empty()) {
            log.info("host_path", "multipathd lists {}, but that name is a new device now: kept", d);
            continue;
        }
        log.warning("host_path", "multipathd still lists removed path {} after {} ms (path_removal_timeout_ms): "
                    "multipathd del path", d, timeout.count());
        if (auto r = ops.multipathd_del_path(d); !r) {
            if (auto stop = skipped.failed("multipathd_del_path", d, std::move(r).error())) return std::move(*stop);
        }
        steps.lap("mp_del");
    }
    return {};
}

// A map whose flush failed (only a disconnect that goes on gets here) has lost its paths by now: deleted through
// multipathd, so a forced disconnect does not leave it behind (os-brick bug 2012251); one a holder keeps open is
// left to the kernel's deferred removal (at its last close).
Result<void> delete_unflushed_maps(HostOps &ops, const Logger &log, const std::vector<MultipathMap> &unflushed,
                                   std::chrono::milliseconds timeout, Skipped &skipped) {
    for (const auto &m : unflushed) {
        auto r = ops.multipathd_del_map(m, timeout);
        if (!r) {
            if (auto stop = skipped.failed("multipathd_del_map", m.name, std::move(r).error())) return std::move(*stop);
            continue;
        }
        if (*r == MapRemoval::deferred) {
            skipped.deferred(m);
            continue;
        }
        log.warning("host_path", "multipath map {} ({}) removed after its flush failed", m.name, m.dm);
    }
    return {};
}

// Logs out of the sessions no other LUN still uses and deletes their node records, each under its target's lock.
Result<void> logout_sessions(HostOps &ops, const Logger &log, const TeardownTargets &wanted, Skipped &skipped,
                             StepTimes &steps) {
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
        steps.lap("sessions");
        if (auto r = ops.logout(portal, iqn, iface); !r) {
            if (auto stop = skipped.failed("logout", what, std::move(r).error())) return std::move(*stop);
            continue;
        }
        steps.lap("logout");
        if (auto r = ops.delete_node(portal, iqn, iface); !r) {
            if (auto stop = skipped.failed("delete_node", what, std::move(r).error())) return std::move(*stop);
        }
        steps.lap("node");
    }
    return {};
}

}  // namespace

Result<void> HostPath::disconnect(const request::VolumeRequest &volume, const request::DeviceInfo *device_info,
                                  DisconnectOptions options) {
    StepReport report(log_, "disconnect", volume.volume_key());
    StepTimes &steps = report.times;
    Skipped skipped(log_, volume.volume_key(), options);
    const TeardownTargets wanted = teardown_targets(*ops_, volume, device_info, config_.iscsi_ifaces);
    const OnHost on_host = find_on_host(*ops_, wanted);
    steps.lap("find");
    // The crash journal: "disconnecting" before the first change; removed when everything went, put back when a
    // failed flush stopped it before anything changed, else left for cleanup to finish.
    const auto journal = journal_disconnect(volume, wanted.targets, wanted.ifaces, wanted.map_name);
    auto step = [&](const char *name) {
        if (journal) journal->update_step(name);
    };
    std::vector<MultipathMap> unflushed;
    std::vector<std::string> removed = recorded_but_gone(*ops_, wanted);
    step("flush_multipath");
    steps.lap("journal");
    if (auto r = flush_maps(*ops_, on_host, skipped, unflushed); !r) {
        if (journal) journal->restore();
        return r;
    }
    steps.lap("flush");
    step("remove_devices");
    if (auto r = remove_devices(*ops_, on_host, skipped, removed); !r) return r;
    steps.lap("remove");
    if (auto r = forget_removed_paths(*ops_, log_, removed, config_.path_removal_timeout, skipped, steps); !r) return r;
    step("logout");
    steps.restart();
    if (auto r = logout_sessions(*ops_, log_, wanted, skipped, steps); !r) return r;
    steps.lap("sessions");
    if (!unflushed.empty()) step("delete_maps");
    if (auto r = delete_unflushed_maps(*ops_, log_, unflushed, config_.map_removal_timeout, skipped); !r) return r;
    if (!unflushed.empty()) steps.lap("mp_del_map");
    if (journal && skipped.none()) journal->remove();
    steps.lap("journal_end");
    auto finished = skipped.finish();
    if (finished) report.succeeded();
    return finished;
}

}  // namespace ivd::host_path
