// HostPath::connect and its first steps: resolve the targets, check LU identity, attach the paths (in turn for a
// single path, all at once for multipath). The result (map, device_info) is in host_path_result.cpp, one path's
// attach and undo in host_path_attempt.cpp, disconnect in host_path_disconnect.cpp.
#include "host_path/host_path.hpp"
#include "host_path/node_record.hpp"
#include "host_path/path_attempt.hpp"
#include "host_path/step_times.hpp"

#include "core/json_output.hpp"
#include "request/json_input.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <future>
#include <map>
#include <mutex>
#include <thread>

namespace ivd::host_path {

namespace {

// `multipath -a WWID` once per WWID the wwids file does not list, shared by the path threads; started as soon as
// the WWID is known (the probe reads it before any login), so it runs while the logins do and is done before the
// first path is offered. For the probed WWID the file was read once already (UsablePaths::expected_wwid_listed).
class Whitelist {
public:
    Whitelist(HostOps &ops, const Logger &log, const UsablePaths &usable) : ops_(ops), log_(log), usable_(usable) {}
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
        const bool read_before = wwid == usable_.expected_wwid && usable_.expected_wwid_listed.has_value();
        if (read_before ? *usable_.expected_wwid_listed : ops_.multipath_wwid_listed(wwid)) {
            log_.debug("host_path", "multipath -a {}: the wwids file lists it already, not run", wwid);
            std::promise<void> done;
            done.set_value();
            return runs_.emplace(wwid, done.get_future().share()).first->second;
        }
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
    const UsablePaths &usable_;
    std::mutex mutex_;
    std::map<std::string, std::shared_future<void>> runs_;
};

Status status_of_probe(iscsi::ProbeOutcome outcome) {
    switch (outcome) {
    case iscsi::ProbeOutcome::auth_failed: return Status::auth;
    case iscsi::ProbeOutcome::timeout: return Status::timeout;
    case iscsi::ProbeOutcome::target_not_found:
    case iscsi::ProbeOutcome::lun_unavailable: return Status::not_found;
    default: return Status::unreachable;
    }
}

// The failed_portals row of a path the probe left out.
json::Value probe_failure_row(const request::Target &target, const iscsi::ProbeResult &p) {
    json::Value f = request::target_to_json(target);
    f["stage"] = "probe";
    f["reason"] = p.outcome == iscsi::ProbeOutcome::healthy ? "no LU identity (VPD page 0x83)" : iscsi::probe_outcome_name(p.outcome);
    if (!p.detail.empty()) f["detail"] = p.detail;
    return f;
}

// One status for "no usable path": the probes' common one, else unreachable.
Status common_status(const std::vector<Status> &statuses) {
    Status status = statuses.empty() ? Status::unreachable : statuses.front();
    for (Status s : statuses) {
        if (s != status) status = Status::unreachable;
    }
    return status;
}

// open-iscsi keeps the CHAP credentials in the node record, one line each, white space around the value
// stripped: what would come back different is refused before anything is done (never echoing it).
Result<void> credentials_fit_node_record(const request::VolumeRequest &volume) {
    if (!volume.chap) return {};
    const request::Where data{"connection_info", "data"};
    constexpr std::string_view why = "cannot be kept in an open-iscsi node record, which the host path logs in "
                                     "through: it holds a line break or a NUL, or begins or ends with white space";
    if (!fits_node_record(volume.chap->username)) return request::invalid(data.key("auth_username"), why);
    if (!fits_node_record(volume.chap->password.reveal())) return request::invalid(data.key("auth_password"), why);
    return {};
}

}  // namespace

HostPath::HostPath(request::HostPathConfig config, Logger log, std::unique_ptr<HostOps> ops, StorageQueries queries,
                   std::shared_ptr<AttachmentJournal> journal)
    : config_(std::move(config)), log_(log), ops_(std::move(ops)), queries_(std::move(queries)),
      journal_(journal ? std::move(journal) : make_memory_journal()) {}

Result<void> HostPath::ready_to_connect(const request::VolumeRequest &volume, const std::string &initiator) {
    if (initiator.empty()) return missing_initiator_error(config_.initiator_name_file);
    if (auto r = credentials_fit_node_record(volume); !r) return r;
    if (auto r = ops_->prepare(); !r) return r;  // unsafe lock_dir: nothing is done
    return ensure_ifaces();                      // a missing iface: nothing is done
}

Result<request::DeviceInfo> HostPath::connect(const ConnectContext &ctx) {
    const request::VolumeRequest &volume = ctx.volume;
    const bool multipath = ctx.decision.multipath;
    const std::string &initiator = ctx.initiator();
    StepReport report(log_, "connect", volume.volume_key());
    StepTimes &steps = report.times;
    if (auto r = ready_to_connect(volume, initiator); !r) return std::move(r).error();
    steps.lap("prepare");

    const ResolvedTargets resolved = resolve_targets(volume, initiator, multipath);
    steps.lap("discovery");
    // Attached already: keep the paths that are there, add the missing ones (host_path_repair.cpp).
    const request::ChapCredentials *chap = volume.chap ? &*volume.chap : nullptr;
    if (auto present = find_attached(resolved.targets, multipath, chap); !present.empty()) {
        steps.lap("find_attached");
        auto info = reconnect(ctx, resolved, present);
        steps.lap("reconnect");
        if (info) report.succeeded();
        return info;
    }
    steps.lap("find_attached");
    json::Value failed = json::Value::array();  // every path left out, in the order tried, with its stage
    auto usable = check_lu_identity(resolved.targets, volume, initiator, failed);
    steps.lap("probe");
    if (!usable) return std::move(usable).error();
    learn_tpgts(*usable, volume, initiator);
    steps.lap("tpgt");

    // The crash journal's record, before anything on the host changes; a failed connect (everything undone) ends
    // it as it was before.
    auto journal = journal_connect(volume, *usable, multipath);
    if (!journal) return std::move(journal).error();
    usable->journal = journal->get();
    JournalEnd journal_end{journal->get()};
    steps.lap("journal");

    const std::vector<PathAttempt> attempts =
        multipath ? attach_all(*usable, chap, failed) : attach_in_turn(*usable, chap, failed);
    steps.lap("paths");
    std::vector<const PathAttempt *> good;
    for (const PathAttempt &a : attempts) {
        steps.group(a.target.portal.to_string(), a.times);
        if (a.ok) good.push_back(&a);
    }
    if (good.empty()) {
        return make_error(attempts.front().error.status,
                          fmt::format("no path could be attached; everything done was undone: {}", to_json(failed)));
    }

    MapOutcome map;
    if (multipath) {
        auto waited = wait_for_map(good, ctx.decision.enforce_multipath || config_.enforce_multipath, failed);
        if (!waited) return std::move(waited).error();
        map = std::move(*waited);
        steps.lap("map");
        // dm-N existing is not the map being usable: wait (bounded) until a block reads through it.
        if (map.map) {
            (*journal)->update_step("ready", map.map->name);
            if (auto ready = check_map_ready(*map.map, good); !ready) return std::move(ready).error();
            steps.lap("ready");
        }
    }
    const std::set<std::string> in_map = map.map ? paths_in_map(*map.map, good) : std::set<std::string>{};
    const std::string device_path = guest_device(map.map, *good.front());
    auto info = build_device_info(ctx, Attached{resolved.targets, resolved.discovery, good, map, in_map, device_path,
                                                failed});
    if (!info) return std::move(info).error();
    journal_connected(**journal, good, map);
    journal_end.connected = true;
    if (!failed.empty()) {
        log_.warning("host_path", "{}: attached with {} of {} paths; failed: {}", volume.volume_key(), good.size(),
                     resolved.targets.size(), to_json(failed));
    }
    steps.lap("result");
    report.succeeded();
    return info;
}

ResolvedTargets HostPath::resolve_targets(const request::VolumeRequest &volume, const std::string &initiator,
                                          bool multipath) {
    ResolvedTargets out{volume.targets};
    if (volume.targets_from_lists || !multipath) return out;
    // The single target plus what SendTargets reports for the same IQN.
    const request::Target first = out.targets.front();
    const request::ChapCredentials *dchap = volume.discovery_chap ? &*volume.discovery_chap : nullptr;
    auto found = queries_.discover(first.portal, initiator, dchap, config_.probe_timeout);
    out.discovery["portal"] = first.portal.to_string();
    if (!found) {
        // The given target still works without discovery: degrade to it, and say so.
        log_.warning("host_path", "SendTargets on {} failed ({}); using the given target only",
                     first.portal.to_string(), found.error().message);
        out.discovery["error"] = found.error().message;
        return out;
    }
    for (const auto &dt : *found) {
        if (dt.iqn != first.iqn) continue;
        for (const auto &p : dt.portals) {
            request::Target t = first;  // same IQN, LUN and addressing
            t.portal = p;
            if (std::find(out.targets.begin(), out.targets.end(), t) == out.targets.end()) out.targets.push_back(t);
        }
    }
    out.discovery["portals_found"] = static_cast<std::uint64_t>(out.targets.size());
    return out;
}

Result<UsablePaths> HostPath::check_lu_identity(const std::vector<request::Target> &targets,
                                                const request::VolumeRequest &volume, const std::string &initiator,
                                                json::Value &failed) {
    // Never combine paths that lead to different LUs: every path is probed before any login.
    iscsi::ProbeOptions options;
    options.initiator = initiator;
    options.chap = volume.chap ? &*volume.chap : nullptr;
    options.timeout = config_.probe_timeout;
    options.read_identity = true;
    // The probe addresses Target::scsi_lun(), the LUN as it is scanned later.
    const std::vector<iscsi::ProbeResult> probes = queries_.probe(targets, options);
    UsablePaths usable;
    std::optional<std::size_t> reference;
    std::vector<Status> failure_statuses;
    for (std::size_t i = 0; i < targets.size(); ++i) {
        const iscsi::ProbeResult &p = i < probes.size() ? probes[i] : iscsi::ProbeResult{};
        if (p.outcome != iscsi::ProbeOutcome::healthy || !p.identity) {
            failed.append(probe_failure_row(targets[i], p));
            failure_statuses.push_back(status_of_probe(p.outcome));
            continue;
        }
        if (!reference) {
            reference = i;
        } else if (!(*p.identity == *probes[*reference].identity)) {
            const std::string &ref_wwid = probes[*reference].identity->wwid;
            return make_error(Status::inconsistent,
                              fmt::format("portal {} ({} LUN {}) leads to a different logical unit (WWID {}) than "
                                          "portal {} (WWID {}); refusing to combine them, nothing was logged in",
                                          targets[i].portal.to_string(), targets[i].iqn, targets[i].lun,
                                          p.identity->wwid.empty() ? "none" : p.identity->wwid,
                                          targets[*reference].portal.to_string(), ref_wwid.empty() ? "none" : ref_wwid));
        }
        usable.targets.push_back(targets[i]);
    }
    if (usable.targets.empty()) {
        return make_error(common_status(failure_statuses),
                          fmt::format("no usable path to the volume; nothing was logged in: {}", to_json(failed)));
    }
    usable.expected_wwid = probes[*reference].identity->wwid;
    return usable;
}

std::vector<PathAttempt> HostPath::attach_in_turn(const UsablePaths &usable, const request::ChapCredentials *chap,
                                                  json::Value &failed) {
    // As os-brick's _connect_single_volume: the healthy paths in turn; a failed attempt is undone (device,
    // session, node record) before the next path is tried.
    std::vector<PathAttempt> attempts = path_attempts(usable);
    std::size_t tried = 0;
    for (PathAttempt &a : attempts) {
        ++tried;
        auto r = attach_path(a, chap, usable.expected_wwid);
        if (r) {
            a.ok = true;
            break;
        }
        a.error = std::move(r).error();
        failed.append(fail_path(a, a.stage, a.error));
        undo_path(a);
    }
    attempts.resize(tried);  // the paths never tried are not attempts
    return attempts;
}

std::vector<PathAttempt> HostPath::attach_all(const UsablePaths &usable, const request::ChapCredentials *chap,
                                              json::Value &failed) {
    // Each path in its own thread from login to multipathd, so the slowest path alone sets the pace. A thread
    // holds the (portal, IQN) lock while it changes the host's iSCSI state (login .. WWID check), not while
    // multipathd takes the path.
    std::vector<PathAttempt> attempts = path_attempts(usable);
    Whitelist whitelist(*ops_, log_, usable);  // waits for its runs when this function returns
    if (!usable.expected_wwid.empty()) whitelist.start(usable.expected_wwid);
    {
        std::vector<std::jthread> threads;  // joined however this block is left
        for (std::size_t k = 0; k < attempts.size(); ++k) {
            threads.emplace_back([this, &a = attempts[k], chap, &usable, &whitelist] {
                if (auto r = attach_path(a, chap, usable.expected_wwid); !r) {
                    a.error = std::move(r).error();
                    return;
                }
                a.ok = true;
                a.ready = std::chrono::steady_clock::now();
                whitelist.wait(a.wwid);  // the probed WWID's run, or (no WWID from the probe) this path's own
                a.times.lap("whitelist");
                if (a.journal) a.journal->path_step(a.target, a.iface, "multipath_add");
                auto added = ops_->multipath_add_path(a.device, a.ready + config_.multipath_wait_timeout);
                a.times.lap("mp_add");
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
    return attempts;
}

}  // namespace ivd::host_path
