// HostPath's per-path steps: attach one path (lock .. WWID check), undo one path, and the failure row that says
// at which step a path failed.
#include "host_path/host_path.hpp"
#include "host_path/path_attempt.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace ivd::host_path {

Result<void> HostPath::ensure_ifaces() {
    for (const request::IscsiIface &iface : config_.iscsi_ifaces) {
        if (auto r = ops_->ensure_iface(iface); !r) return r;
    }
    return {};
}

void HostPath::learn_tpgts(UsablePaths &usable, const request::VolumeRequest &volume, const std::string &initiator) {
    if (std::all_of(config_.iscsi_ifaces.begin(), config_.iscsi_ifaces.end(),
                    [](const request::IscsiIface &i) { return i.name == request::default_iface; })) {
        return;  // the default iface keeps its static records, as before ifaces
    }
    const request::ChapCredentials *dchap = volume.discovery_chap ? &*volume.discovery_chap : nullptr;
    for (const request::Target &t : usable.targets) {
        const std::string key = t.portal.to_string();
        if (usable.tpgts.count(key)) continue;
        auto found = queries_.discover(t.portal, initiator, dchap, config_.probe_timeout);
        if (found) {
            for (const auto &dt : *found) {
                for (std::size_t i = 0; dt.iqn == t.iqn && i < dt.portals.size() && i < dt.tpgts.size(); ++i) {
                    if (dt.portals[i] == t.portal && dt.tpgts[i] >= 0) usable.tpgts[key] = dt.tpgts[i];
                }
            }
        }
        if (!usable.tpgts.count(key)) {
            log_.warning("host_path", "{} {}: no TPGT from SendTargets ({}); the ifaces' node records are made without "
                         "one (open-iscsi then keeps one static record for the portal)", key, t.iqn,
                         found ? "not listed" : found.error().message);
        }
    }
}

std::vector<PathAttempt> HostPath::path_attempts(const UsablePaths &usable) const {
    std::vector<PathAttempt> attempts;
    attempts.reserve(usable.targets.size() * config_.iscsi_ifaces.size());
    for (const request::Target &target : usable.targets) {
        for (const request::IscsiIface &iface : config_.iscsi_ifaces) {
            if (!usable.only.empty() &&
                std::find(usable.only.begin(), usable.only.end(), std::make_pair(target, iface.name)) == usable.only.end()) {
                continue;
            }
            PathAttempt &a = attempts.emplace_back();
            a.target = target;
            a.iface = iface.name;
            a.journal = usable.journal;
            if (iface.name != request::default_iface) {
                if (auto it = usable.tpgts.find(target.portal.to_string()); it != usable.tpgts.end()) a.tpgt = it->second;
            }
        }
    }
    return attempts;
}

Result<std::string> HostPath::wait_with_rescans(const request::Target &t, const std::string &iface) {
    // A scan request can be lost (the session under it was being replaced, or the target was busy); os-brick
    // rescans while it waits, and so does this: again after 2 s, 4 s, 8 s ... within the same overall timeout.
    using namespace std::chrono;
    const auto deadline = steady_clock::now() + config_.device_wait_timeout;
    milliseconds slice{2000};
    int scans = 1;
    while (true) {
        const auto left = duration_cast<milliseconds>(deadline - steady_clock::now());
        auto dev = ops_->wait_for_device(t, std::max(milliseconds{0}, std::min(slice, left)), iface);
        if (dev || dev.error().status != Status::timeout) return dev;
        if (left <= slice) {
            return make_error(Status::timeout,
                              fmt::format("LUN {} of {} {} did not appear as a block device within {} ms{}", t.lun,
                                          t.portal.to_string(), t.iqn, config_.device_wait_timeout.count(),
                                          scans > 1 ? fmt::format(" ({} scans)", scans) : ""));
        }
        if (auto session = ops_->find_session(t.portal, t.iqn, iface)) {
            log_.info("host_path", "LUN {} of {} {} not there after {} scan(s): scanning again", t.lun,
                      t.portal.to_string(), t.iqn, scans);
            if (ops_->scan_lun(*session, t.scsi_lun())) ++scans;
        }
        slice *= 2;
    }
}

Result<void> HostPath::attach_path(PathAttempt &a, const request::ChapCredentials *chap, const std::string &expected_wwid) {
    // The (portal, IQN) lock is held while this changes the host's iSCSI state (login .. WWID check).
    const request::Target &t = a.target;
    a.times.restart();
    a.stage = "lock";
    auto lock = ops_->lock_target(t.portal, t.iqn);
    if (!lock) return std::move(lock).error();
    a.times.lap("lock");
    // One look at the host's sessions per path (login does not look again).
    const std::optional<Session> existing = ops_->find_session_to_login(t.portal, t.iqn, a.iface);
    a.owned = !existing.has_value();
    a.device_existed = !a.owned && !ops_->find_device(t, a.iface).empty();
    if (a.journal) a.journal->path_login(t, a.iface, a.owned, a.device_existed);
    a.stage = "login";
    auto login = ops_->login(t.portal, t.iqn, chap, a.iface, a.tpgt, &existing);
    if (!login) return std::move(login).error();
    a.times.lap(login->created ? "login" : "session");  // "session": one was there, only its record was checked
    a.session_created = login->created;
    if (a.owned && !login->created) {  // there after all (logged in elsewhere since the sessions were listed)
        a.owned = false;
        a.device_existed = !ops_->find_device(t, a.iface).empty();
        if (a.journal) a.journal->path_found_there(t, a.iface, a.device_existed);
    }
    a.stage = "scan";
    if (a.journal) a.journal->path_step(t, a.iface, "scan");
    if (auto s = ops_->scan_lun(login->session, t.scsi_lun()); !s) return s;  // as data.addressing_mode says
    a.times.lap("scan");
    a.stage = "device";
    if (a.journal) a.journal->path_step(t, a.iface, "device");
    auto dev = wait_with_rescans(t, a.iface);
    if (!dev) return std::move(dev).error();
    a.times.lap("device");
    a.device = *dev;
    a.stage = "wwid";
    if (a.journal) a.journal->path_step(t, a.iface, "wwid", a.device);
    auto wwid = ops_->read_wwid(a.device);
    if (!wwid) return std::move(wwid).error();
    a.wwid = *wwid;
    a.times.lap("wwid");
    if (!expected_wwid.empty() && a.wwid != expected_wwid) {
        return make_error(Status::inconsistent, fmt::format("{} reports WWID {} but the LU probed through {} has {}",
                                                            a.device, a.wwid, t.portal.to_string(), expected_wwid));
    }
    return {};
}

void HostPath::undo_path(const PathAttempt &a) {
    // Under the target's lock no other attempt is between its login and its device, so "no LUN left on the
    // session" means nobody uses it, whoever logged it in; disconnect follows the same rule.
    auto lock = ops_->lock_target(a.target.portal, a.target.iqn);
    if (!a.device_existed) {
        const std::string device = a.device.empty() ? ops_->find_device(a.target, a.iface) : a.device;
        if (!device.empty()) {
            if (auto r = ops_->remove_device(device); !r) log_.warning("host_path", "undo: {}", r.error().message);
        }
    }
    auto session = ops_->find_session(a.target.portal, a.target.iqn, a.iface);
    if (session && !ops_->session_luns(*session).empty()) return;
    if (!session && !a.owned) return;  // a failed login next to no session: the node record may be another's
    if (session) {
        if (auto r = ops_->logout(a.target.portal, a.target.iqn, a.iface); !r) {
            log_.warning("host_path", "undo: {}", r.error().message);
            return;
        }
    }
    if (auto r = ops_->delete_node(a.target.portal, a.target.iqn, a.iface); !r) {
        log_.warning("host_path", "undo: {}", r.error().message);
    }
    if (a.journal) a.journal->path_step(a.target, a.iface, "undone");
}

json::Value HostPath::fail_path(const PathAttempt &a, const char *stage, const Error &error) {
    json::Value f = request::target_to_json(a.target);
    if (a.iface != request::default_iface) f["iface"] = a.iface;
    f["stage"] = stage;
    f["reason"] = status_code_name(error.status);
    f["detail"] = error.message;
    log_.warning("host_path", "path {} {} LUN {}{} failed at {}: {}", a.target.portal.to_string(), a.target.iqn,
                 a.target.lun, a.iface == request::default_iface ? "" : " iface " + a.iface, stage, error.message);
    return f;
}

}  // namespace ivd::host_path
