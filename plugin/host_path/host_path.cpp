#include "host_path/host_path.hpp"
#include "host_path/path_attempt.hpp"

#include "core/json_output.hpp"
#include "host_facts/host_facts.hpp"
#include "xml/libvirt_xml.hpp"

#include <volume_driver/volume_driver.h>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <filesystem>
#include <future>
#include <map>
#include <mutex>
#include <set>
#include <thread>

namespace ivd::host_path {

namespace {

std::string compact(const json::Value &v) { return to_json(v); }

// `multipath -a WWID` once per WWID, shared by the path threads; started as soon as the WWID is known (the probe
// reads it before any login), so it runs while the logins do and is done before the first path is offered.
class Whitelist {
public:
    Whitelist(HostOps &ops, const Logger &log) : ops_(ops), log_(log) {}
    ~Whitelist() {
        for (auto &[wwid, run] : runs_) run.wait();
    }
    Whitelist(const Whitelist &) = delete;
    Whitelist &operator=(const Whitelist &) = delete;

    void start(const std::string &wwid) {
        std::lock_guard guard(mutex_);
        start_locked(wwid);
    }
    // Starts it if nobody has; returns once it has run (a failure is only a warning: the map can form without).
    void wait(const std::string &wwid) {
        std::shared_future<void> run;
        {
            std::lock_guard guard(mutex_);
            run = start_locked(wwid);
        }
        run.wait();
    }

private:
    std::shared_future<void> start_locked(const std::string &wwid) {
        if (auto it = runs_.find(wwid); it != runs_.end()) return it->second;
        auto run = std::async(std::launch::async, [this, wwid] {
                       if (auto r = ops_.multipath_whitelist(wwid); !r) {
                           log_.warning("host_path", "multipath -a {}: {}", wwid, r.error().message);
                       }
                   }).share();
        runs_.emplace(wwid, run);
        return run;
    }

    HostOps &ops_;
    const Logger &log_;
    std::mutex mutex_;
    std::map<std::string, std::shared_future<void>> runs_;
};

}  // namespace

HostPath::HostPath(request::DriverConfig config, Logger log, std::unique_ptr<HostOps> ops, StorageQueries queries)
    : config_(std::move(config)), log_(log), ops_(std::move(ops)), queries_(std::move(queries)) {}

Result<request::DeviceInfo> HostPath::connect(const ConnectContext &ctx) {
    const request::VolumeRequest &volume = ctx.volume;
    const bool multipath = ctx.decision.multipath;
    const std::string &initiator = ctx.initiator();
    if (initiator.empty()) return missing_initiator_error(config_.initiator_name_file);
    if (auto r = ops_->prepare(); !r) return std::move(r).error();  // unsafe lock_dir: nothing is done

    // 1. Targets: the lists as given, or the single target plus what SendTargets reports for the same IQN.
    std::vector<request::Target> targets = volume.targets;
    json::Value discovery = json::Value::object();
    if (!volume.targets_from_lists && multipath) {
        const request::Target first = targets.front();
        const request::ChapCredentials *dchap = volume.discovery_chap ? &*volume.discovery_chap : nullptr;
        auto found = queries_.discover(first.portal, initiator, dchap, config_.probe_timeout);
        discovery["portal"] = first.portal.to_string();
        if (!found) {
            // The given target still works without discovery: degrade to it, and say so.
            log_.warning("host_path", "SendTargets on {} failed ({}); using the given target only",
                         first.portal.to_string(), found.error().message);
            discovery["error"] = found.error().message;
        } else {
            for (const auto &dt : *found) {
                if (dt.iqn != first.iqn) continue;
                for (const auto &p : dt.portals) {
                    request::Target t{p, first.iqn, first.lun};
                    if (std::find(targets.begin(), targets.end(), t) == targets.end()) targets.push_back(t);
                }
            }
            discovery["portals_found"] = static_cast<std::uint64_t>(targets.size());
        }
    }

    // 2. LU identity on every path before any login: never combine paths that lead to different LUs.
    iscsi::ProbeOptions options;
    options.initiator = initiator;
    options.chap = volume.chap ? &*volume.chap : nullptr;
    options.timeout = config_.probe_timeout;
    options.read_identity = true;
    const std::vector<iscsi::ProbeResult> probes = queries_.probe(targets, options);
    json::Value failed = json::Value::array();
    std::vector<std::size_t> usable;
    std::optional<std::size_t> reference;
    std::vector<Status> failure_statuses;
    for (std::size_t i = 0; i < targets.size(); ++i) {
        const iscsi::ProbeResult &p = i < probes.size() ? probes[i] : iscsi::ProbeResult{};
        if (p.outcome == iscsi::ProbeOutcome::healthy && p.identity) {
            if (!reference) {
                reference = i;
            } else if (!(*p.identity == *probes[*reference].identity)) {
                return make_error(Status::inconsistent,
                                  fmt::format("portal {} ({} LUN {}) leads to a different logical unit (WWID {}) than "
                                              "portal {} (WWID {}); refusing to combine them, nothing was logged in",
                                              targets[i].portal.to_string(), targets[i].iqn, targets[i].lun,
                                              p.identity->wwid.empty() ? "none" : p.identity->wwid,
                                              targets[*reference].portal.to_string(),
                                              probes[*reference].identity->wwid.empty() ? "none" : probes[*reference].identity->wwid));
            }
            usable.push_back(i);
            continue;
        }
        json::Value f = request::target_to_json(targets[i]);
        f["stage"] = "probe";
        f["reason"] = p.outcome == iscsi::ProbeOutcome::healthy ? "no LU identity (VPD page 0x83)" : iscsi::probe_outcome_name(p.outcome);
        if (!p.detail.empty()) f["detail"] = p.detail;
        failed.append(f);
        failure_statuses.push_back(p.outcome == iscsi::ProbeOutcome::auth_failed ? Status::auth
                                   : p.outcome == iscsi::ProbeOutcome::timeout   ? Status::timeout
                                   : p.outcome == iscsi::ProbeOutcome::target_not_found ||
                                           p.outcome == iscsi::ProbeOutcome::lun_unavailable
                                       ? Status::not_found
                                       : Status::unreachable);
    }
    if (usable.empty()) {
        Status status = failure_statuses.empty() ? Status::unreachable : failure_statuses.front();
        for (Status s : failure_statuses) {
            if (s != status) status = Status::unreachable;
        }
        return make_error(status, fmt::format("no usable path to the volume; nothing was logged in: {}", compact(failed)));
    }
    const std::string expected_wwid = probes[*reference].identity->wwid;
    const request::ChapCredentials *chap = volume.chap ? &*volume.chap : nullptr;
    std::vector<PathAttempt> attempts;
    attempts.reserve(usable.size());  // `good` points into it
    if (!multipath) {
        // 3a. Single path: the healthy targets in turn, as os-brick's _connect_single_volume does; a failed attempt
        //     is undone (device, session, node record) before the next portal is tried.
        for (const std::size_t i : usable) {
            PathAttempt &a = attempts.emplace_back();
            a.target = targets[i];
            auto r = attach_path(a, chap, expected_wwid);
            if (r) {
                a.ok = true;
                break;
            }
            a.error = std::move(r).error();
            failed.append(fail_path(a, a.stage, a.error));
            undo_path(a);
        }
    } else {
        // 3b. Every path at once, each in its own thread from login to multipathd, so the slowest path alone sets
        //     the pace. A thread holds the (portal, IQN) lock while it changes the host's iSCSI state (login .. WWID
        //     check), not while multipathd takes the path.
        Whitelist whitelist(*ops_, log_);
        if (!expected_wwid.empty()) whitelist.start(expected_wwid);
        attempts.resize(usable.size());
        {
            std::vector<std::jthread> threads;  // joined however this block is left
            for (std::size_t k = 0; k < usable.size(); ++k) {
                attempts[k].target = targets[usable[k]];
                threads.emplace_back([this, &attempts, k, chap, &expected_wwid, &whitelist] {
                    PathAttempt &a = attempts[k];
                    if (auto r = attach_path(a, chap, expected_wwid); !r) {
                        a.error = std::move(r).error();
                        return;
                    }
                    a.ok = true;
                    a.ready = std::chrono::steady_clock::now();
                    whitelist.wait(a.wwid);  // the probed WWID's run, or (no WWID from the probe) this path's own
                    auto added = ops_->multipath_add_path(a.device, a.ready + config_.multipath_wait_timeout);
                    a.taken = added.ok();
                    if (!added) a.multipath_error = added.error().message;
                });
            }
        }
        for (const PathAttempt &a : attempts) {
            if (a.ok) continue;
            failed.append(fail_path(a, a.stage, a.error));
            undo_path(a);
        }
    }
    std::vector<const PathAttempt *> good;
    for (const PathAttempt &a : attempts) {
        if (a.ok) good.push_back(&a);
    }
    if (good.empty()) {
        const Status status = attempts.front().error.status;
        return make_error(status, fmt::format("no path could be attached; everything done was undone: {}", compact(failed)));
    }

    // 4. The multipath map over the paths (or the one path device without multipath).
    request::DeviceInfo info;
    request::BlockDevice &block = info.device.emplace<request::BlockDevice>();
    std::string device_path;
    std::optional<MultipathMap> map;
    if (multipath) {
        // Every good path has been offered already (by its thread); wait for the one map holding them all, bounded
        // from when the last path was ready.
        std::vector<std::string> devices;
        auto deadline = good.front()->ready;
        for (const PathAttempt *a : good) {
            devices.push_back(a->device);
            deadline = std::max(deadline, a->ready + config_.multipath_wait_timeout);
        }
        map = ops_->multipath_wait(devices, deadline);
        if (!map) {
            const std::string &wwid = good.front()->wwid;
            std::string refusals;
            bool any_taken = false;
            for (const PathAttempt *a : good) {
                any_taken = any_taken || a->taken;
                if (!a->multipath_error.empty()) refusals += (refusals.empty() ? "" : "; ") + a->multipath_error;
            }
            Error e = make_error(!any_taken && !refusals.empty() ? Status::backend : Status::timeout,
                                 fmt::format("no multipath map for WWID {} appeared within {} ms{}{}", wwid,
                                             config_.multipath_wait_timeout.count(),
                                             refusals.empty() ? ""
                                             : any_taken      ? ": multipathd refused some paths: "
                                                              : ": multipathd took none of the paths: ",
                                             refusals));
            if (config_.enforce_multipath) {
                for (const PathAttempt *a : good) {
                    // multipathd refused the path, or took it and no map formed in time.
                    const bool refused = !a->taken && !a->multipath_error.empty();
                    failed.append(fail_path(*a, refused ? "multipath_add" : "multipath_wait",
                                            refused ? make_error(Status::backend, a->multipath_error) : e));
                    undo_path(*a);
                }
                e.message += fmt::format("; failed paths: {}", compact(failed));
                return std::move(e).context("enforce_multipath is set and the multipath map did not appear; "
                                            "every path was undone");
            }
            log_.warning("host_path", "no multipath map ({}); using the single path {}", e.message, good.front()->device);
            block.multipath_error = e.message;
        }
    }
    std::set<std::string> in_map;
    if (map) {
        for (const auto &d : ops_->multipath_paths(*map)) in_map.insert(d);
        const auto held =
            std::count_if(good.begin(), good.end(), [&](const PathAttempt *a) { return in_map.count(a->device) > 0; });
        if (static_cast<std::size_t>(held) < good.size()) {
            log_.warning("host_path", "map {} holds only {} of the {} paths", map->dm, held, good.size());
        }
        device_path = map->device_path;
    } else {
        // os-brick's answer is the by-path link, which udev makes a moment after the node the wait saw: give it
        // a little time (bounded), else hand over the node itself.
        const std::string link = ops_->by_path_link(good.front()->target);
        const auto until = std::chrono::steady_clock::now() + std::min<std::chrono::milliseconds>(
                                                                  config_.device_wait_timeout, std::chrono::seconds(2));
        std::error_code ec;
        while (!std::filesystem::exists(link, ec) && std::chrono::steady_clock::now() < until) {
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
        }
        device_path = std::filesystem::exists(link, ec) ? link : ops_->device_path(good.front()->device);
    }

    block.path = device_path;
    block.scsi_wwn = good.front()->wwid;
    if (map) {
        block.multipath_id = map->name;
        block.dm = map->dm;
    }
    info.targets = targets;
    for (const PathAttempt *a : good) {
        const char *state = !map ? (a == good.front() ? "active" : "standby") : in_map.count(a->device) ? "active" : "not_in_map";
        block.paths.push_back(request::BlockPath{a->target, ops_->device_path(a->device), state, a->multipath_error});
    }
    block.failed_portals = failed;  // in the order tried, each with the stage it failed at
    // Single path: the portal that served; the portals tried before it are in failed_portals.
    if (!multipath) block.served_by = request::target_to_json(good.front()->target);
    if (!discovery.empty()) block.discovery = discovery;
    block.multipath = map.has_value();

    if (!ctx.disk.dev.empty()) {  // ABI v2 connects without a guest device: no guest part
        auto xml = disk_config(volume, info, ctx.disk);
        if (!xml) return std::move(xml).error();
        info.guest = request::DeviceGuest{ctx.disk, std::move(xml).value()};
    }
    if (!failed.empty()) {
        log_.warning("host_path", "{}: attached with {} of {} paths; failed: {}", volume.volume_key(), good.size(),
                     targets.size(), compact(failed));
    }
    return info;
}

Result<void> HostPath::disconnect(const request::VolumeRequest &volume, const request::DeviceInfo *device_info,
                                  std::uint32_t flags) {
    const bool force = (flags & VD_DISCONNECT_FORCE) != 0;
    const bool ignore = (flags & VD_DISCONNECT_IGNORE_ERRORS) != 0;
    const bool go_on = force || ignore;  // os-brick: force keeps going past failures
    json::Value skipped = json::Value::array();
    auto record = [&](const std::string &step, const std::string &what, const Error &e) {
        json::Value s = json::Value::object();
        s["step"] = step;
        s["object"] = what;
        s["code"] = status_code_name(e.status);
        s["error"] = e.message;
        skipped.append(s);
        log_.warning("host_path", "disconnect {}: {} {}: {}", volume.volume_key(), step, what, e.message);
    };
    auto finish = [&]() -> Result<void> {
        if (skipped.empty()) return {};
        if (ignore) {
            log_.warning("host_path", "disconnect {}: {} failed step(s) ignored", volume.volume_key(), skipped.size());
            return {};
        }
        json::Value detail = json::Value::object();
        detail["failed_steps"] = skipped;
        return make_error(Status::backend, fmt::format("disconnect left {} step(s) undone: {}", skipped.size(), compact(detail)));
    };

    // The paths to take down: device_info's record, else the request's targets plus any session to the IQN.
    std::vector<request::Target> targets;
    auto add = [&](const request::Target &t) {
        if (std::find(targets.begin(), targets.end(), t) == targets.end()) targets.push_back(t);
    };
    std::string map_name;
    if (device_info != nullptr) {
        const request::BlockDevice &block = device_info->block();
        for (const auto &p : block.paths) add(p.target);
        for (const auto &t : device_info->targets) add(t);
        map_name = block.multipath_id;
    }
    for (const auto &t : volume.targets) add(t);
    if (!volume.targets_from_lists) {
        const request::Target first = volume.targets.front();
        for (const auto &p : ops_->session_portals(first.iqn)) add(request::Target{p, first.iqn, first.lun});
    }

    // Devices as sysfs shows them now (names in device_info may be stale).
    std::vector<std::pair<request::Target, std::string>> devices;
    std::vector<MultipathMap> maps;
    auto add_map = [&](const MultipathMap &m) {
        if (std::none_of(maps.begin(), maps.end(), [&](const MultipathMap &x) { return x.dm == m.dm; })) maps.push_back(m);
    };
    for (const auto &t : targets) {
        const std::string d = ops_->find_device(t);
        if (d.empty()) continue;
        devices.emplace_back(t, d);
        if (auto m = ops_->find_multipath(d)) add_map(*m);
    }
    if (!map_name.empty()) {
        if (auto m = ops_->find_multipath_by_name(map_name)) add_map(*m);
    }

    // 1. Flush the map: without force, a failure stops here with everything still in place.
    for (const auto &m : maps) {
        if (auto r = ops_->flush_multipath(m); !r) {
            if (!go_on) {
                return std::move(r).error().context(fmt::format(
                    "flushing multipath map {} ({}) failed; nothing was removed (VD_DISCONNECT_FORCE goes on)", m.name, m.dm));
            }
            record("flush_multipath", m.name, r.error());
        }
    }
    // 2. Remove each path device.
    for (const auto &[t, d] : devices) {
        if (auto r = ops_->remove_device(d); !r) {
            if (!go_on) return std::move(r).error().context("removing " + d);
            record("remove_device", d, r.error());
        }
    }
    // 3. Log out of sessions no other LUN still uses, and delete their node records.
    std::vector<std::pair<request::Portal, std::string>> sessions;
    for (const auto &t : targets) {
        const auto key = std::make_pair(t.portal, t.iqn);
        if (std::find(sessions.begin(), sessions.end(), key) == sessions.end()) sessions.push_back(key);
    }
    for (const auto &[portal, iqn] : sessions) {
        const std::string what = portal.to_string() + " " + iqn;
        auto lock = ops_->lock_target(portal, iqn);
        if (!lock) {
            if (!go_on) return std::move(lock).error();
            record("lock", what, lock.error());
            continue;
        }
        auto session = ops_->find_session(portal, iqn);
        if (!session) continue;
        const auto others = ops_->session_luns(*session);
        if (!others.empty()) {
            log_.info("host_path", "session {} to {} stays: LUN(s) {} still use it", session->name, what,
                      fmt::format("{}", fmt::join(others, ",")));
            continue;
        }
        if (auto r = ops_->logout(portal, iqn); !r) {
            if (!go_on) return std::move(r).error();
            record("logout", what, r.error());
            continue;
        }
        if (auto r = ops_->delete_node(portal, iqn); !r) {
            if (!go_on) return std::move(r).error();
            record("delete_node", what, r.error());
        }
    }
    return finish();
}

}  // namespace ivd::host_path
