// Repair on reconnect: a connect that finds the volume's paths on the host already (Nova connects again on hard
// reboot and host start) keeps them exactly as they are and, with multipath, attaches only the missing ones (a
// portal that failed at attach and is back, a session lost since) and adds them to the same map. A path that
// fails now is undone on its own; the others stay as they were.
#include "host_path/host_path.hpp"
#include "host_path/path_attempt.hpp"

#include "core/json_output.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <set>

namespace ivd::host_path {

namespace {

// A row of failed_portals for a path the repair left out without touching the host.
json::Value repair_row(const request::Target &target, const char *stage, Status status, const std::string &detail) {
    json::Value f = request::target_to_json(target);
    f["stage"] = stage;
    f["reason"] = status_code_name(status);
    f["detail"] = detail;
    return f;
}

const PathAttempt *attempt_for(const request::Target &target, const std::string &iface,
                               const std::vector<PathAttempt> &attempts) {
    for (const PathAttempt &a : attempts) {
        if (a.ok && a.target == target && a.iface == iface) return &a;
    }
    return nullptr;
}

}  // namespace

std::vector<PathAttempt> HostPath::find_attached(const std::vector<request::Target> &targets, bool multipath,
                                                 const request::ChapCredentials *chap) {
    // A path counts as attached when its session, its LUN's device (with a WWID) and, with multipath, the map
    // holding that device are all there; every one must show the first one's WWID and map. Read-only but for the
    // node record policy, which holds on every connect (RealHostOps::login of an existing session).
    std::vector<PathAttempt> present;
    std::string map_dm;
    for (const request::Target &t : targets) {
      for (const request::IscsiIface &via : config_.iscsi_ifaces) {  // each (portal, iface) pair is a path
        const std::string &iface = via.name;
        if (!multipath && !present.empty()) break;  // a single path serves alone
        // A first connect finds no session: it costs a sysfs look per path, no lock.
        if (!ops_->find_session_to_login(t.portal, t.iqn, iface)) continue;  // a miss: attach_path's login decides
        auto lock = ops_->lock_target(t.portal, t.iqn);
        if (!lock || !ops_->find_session(t.portal, t.iqn, iface)) continue;
        PathAttempt a;
        a.target = t;
        a.iface = iface;
        a.device = ops_->find_device(t, iface);
        if (a.device.empty()) continue;
        auto wwid = ops_->read_wwid(a.device);
        if (!wwid || wwid->empty() || (!present.empty() && *wwid != present.front().wwid)) continue;
        a.wwid = *wwid;
        if (multipath) {
            auto map = ops_->find_multipath(a.device);
            if (!map || (!map_dm.empty() && map->dm != map_dm)) continue;
            map_dm = map->dm;
        }
        auto login = ops_->login(t.portal, t.iqn, chap, iface);  // the session exists: the record policy only
        if (!login) continue;
        if (login->created) {
            // The session ended between the look and the login, which made a new one with no LUN: undone (outside
            // the lock, which undo_path takes); the path is a missing one, attached below as any other.
            (*lock).reset();
            PathAttempt made;
            made.target = t;
            made.iface = iface;
            made.owned = true;
            undo_path(made);
            continue;
        }
        a.ok = true;
        a.device_existed = true;  // not this connect's: an undo never removes it, nor its session
        a.taken = true;
        a.stage = "present";
        a.ready = std::chrono::steady_clock::now();
        present.push_back(std::move(a));
      }
    }
    return present;
}

Result<request::DeviceInfo> HostPath::reconnect(const ConnectContext &ctx, const ResolvedTargets &resolved,
                                                const std::vector<PathAttempt> &present) {
    const bool multipath = ctx.decision.multipath;
    json::Value failed = json::Value::array();
    std::vector<PathAttempt> added;
    std::unique_ptr<JournalEntry> journal;  // only when paths are added
    JournalEnd journal_end;
    MapOutcome map;
    if (multipath) {
        map.map = ops_->find_multipath(present.front().device);
        if (!map.map) {
            return make_error(Status::backend, fmt::format("{}: the multipath map over {} went away while connecting "
                                                           "again; nothing was changed",
                                                           ctx.volume.volume_key(), present.front().device));
        }
        std::vector<request::Target> missing;
        std::vector<std::pair<request::Target, std::string>> missing_paths;
        for (const request::Target &t : resolved.targets) {
            for (const request::IscsiIface &iface : config_.iscsi_ifaces) {
                if (attempt_for(t, iface.name, present)) continue;
                missing_paths.emplace_back(t, iface.name);
                if (std::find(missing.begin(), missing.end(), t) == missing.end()) missing.push_back(t);
            }
        }
        if (!missing.empty()) {
            log_.info("host_path", "{}: connected already with {} of {} paths; attaching the missing ones",
                      ctx.volume.volume_key(), present.size(), resolved.targets.size() * config_.iscsi_ifaces.size());
            added = repair_paths(ctx, missing, present.front().wwid, failed, missing_paths, journal);
            journal_end.entry = journal.get();
            join_map(*map.map, added, failed);
        }
    }
    std::vector<const PathAttempt *> good;  // in the order of the targets, as the first connect had them
    for (const request::Target &t : resolved.targets) {
        for (const request::IscsiIface &iface : config_.iscsi_ifaces) {
            if (const PathAttempt *a = attempt_for(t, iface.name, present)) good.push_back(a);
            else if (const PathAttempt *b = attempt_for(t, iface.name, added)) good.push_back(b);
        }
    }
    if (map.map) {
        // The kept paths count as there before: a map that does not read undoes only the paths added now.
        if (auto ready = check_map_ready(*map.map, good); !ready) return std::move(ready).error();
    }
    const std::set<std::string> in_map = map.map ? paths_in_map(*map.map, good) : std::set<std::string>{};
    const std::string device_path = guest_device(map.map, *good.front());
    auto info = build_device_info(ctx, Attached{resolved.targets, resolved.discovery, good, map, in_map, device_path,
                                                failed});
    if (!info) return std::move(info).error();
    if (journal) {
        journal_connected(*journal, good, map);
        journal_end.connected = true;
    }
    const auto repaired = std::count_if(added.begin(), added.end(), [](const PathAttempt &a) { return a.ok; });
    if (!failed.empty()) {  // worded as a first connect's degraded attach
        log_.warning("host_path", "{}: attached with {} of {} paths ({} kept, {} added now); failed: {}",
                     ctx.volume.volume_key(), good.size(), resolved.targets.size(), present.size(), repaired,
                     to_json(failed));
    } else if (repaired > 0) {
        log_.info("host_path", "{}: attached again with all {} paths ({} added now)", ctx.volume.volume_key(),
                  good.size(), repaired);
    }
    return info;
}

std::vector<PathAttempt> HostPath::repair_paths(const ConnectContext &ctx, const std::vector<request::Target> &missing,
                                                const std::string &wwid, json::Value &failed,
                                                const std::vector<std::pair<request::Target, std::string>> &paths,
                                                std::unique_ptr<JournalEntry> &journal) {
    // As a first connect's paths: probed before any login, and each must lead to the LU the kept paths show.
    json::Value probe_failed = json::Value::array();
    auto usable = check_lu_identity(missing, ctx.volume, ctx.initiator(), probe_failed);
    if (!usable) {
        // None usable, or two of them disagree: nothing was logged in; the kept paths serve on (degraded).
        if (probe_failed.size() == missing.size()) {
            for (const json::Value &row : probe_failed.items()) failed.append(row);
        } else {
            for (const request::Target &t : missing) {
                failed.append(repair_row(t, "probe", usable.error().status, usable.error().message));
            }
        }
        return {};
    }
    for (const json::Value &row : probe_failed.items()) failed.append(row);
    if (!usable->expected_wwid.empty() && usable->expected_wwid != wwid) {
        for (const request::Target &t : usable->targets) {
            failed.append(repair_row(t, "probe", Status::inconsistent,
                                     fmt::format("leads to WWID {} but the attached paths show {}; nothing was logged in",
                                                 usable->expected_wwid, wwid)));
        }
        return {};
    }
    usable->expected_wwid = wwid;
    usable->only = paths;  // through the ifaces whose path is missing only
    learn_tpgts(*usable, ctx.volume, ctx.initiator());
    auto entry = journal_connect(ctx.volume, *usable, true);  // attach_all runs multipath -a
    if (!entry) {
        for (const request::Target &t : usable->targets) {
            failed.append(repair_row(t, "journal", entry.error().status, entry.error().message));
        }
        return {};
    }
    journal = std::move(entry).value();
    usable->journal = journal.get();
    return attach_all(*usable, ctx.volume.chap ? &*ctx.volume.chap : nullptr, failed);  // failures undone there
}

void HostPath::join_map(const MultipathMap &map, std::vector<PathAttempt> &added, json::Value &failed) {
    std::vector<std::string> devices;
    std::set<std::string> new_devices;
    auto deadline = std::chrono::steady_clock::now();
    for (const PathAttempt &a : added) {
        if (!a.ok) continue;
        devices.push_back(a.device);
        new_devices.insert(a.device);
        deadline = std::max(deadline, a.ready + config_.multipath_wait_timeout);
    }
    if (devices.empty()) return;
    ops_->multipath_wait(devices, deadline);  // bounded by multipath_wait_timeout_ms from each path's readiness
    for (PathAttempt &a : added) {
        if (!a.ok) continue;
        const auto holder = ops_->find_multipath(a.device);
        if (holder && holder->dm == map.dm) continue;
        if (holder && !a.device_existed) {
            // Never a second map for the volume: one the added paths made alone goes with them.
            const auto paths = ops_->multipath_paths(*holder);
            if (std::all_of(paths.begin(), paths.end(), [&](const std::string &p) { return new_devices.count(p) > 0; })) {
                if (auto f = ops_->flush_multipath(*holder); !f) log_.warning("host_path", "undo: {}", f.error().message);
            }
        }
        const bool refused = !a.taken && !a.multipath_error.empty();
        const std::string why = holder ? fmt::format("{} went to map {}, not to the volume's {}", a.device, holder->dm, map.dm)
                                       : fmt::format("{} did not join map {} within {} ms (multipath_wait_timeout_ms)",
                                                     a.device, map.dm, config_.multipath_wait_timeout.count());
        const Error e = refused ? make_error(Status::backend, a.multipath_error) : make_error(Status::timeout, why);
        failed.append(fail_path(a, refused ? "multipath_add" : "multipath_wait", e));
        undo_path(a);
        a.ok = false;
    }
}

}  // namespace ivd::host_path
