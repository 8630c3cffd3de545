// The crash journal's part of connect and disconnect: the record is written before the host changes and updated
// as steps start (attachment_journal.hpp); cleanup reads it back (host_path_cleanup.cpp).
#include "host_path/host_path.hpp"
#include "host_path/path_attempt.hpp"

#include <algorithm>

namespace ivd::host_path {

Result<std::unique_ptr<JournalEntry>> HostPath::journal_connect(const request::VolumeRequest &volume,
                                                                 UsablePaths &usable, bool whitelists) {
    const std::string key = volume.volume_key();
    auto lock = journal_->lock(key);
    if (!lock) return std::move(lock).error().context("the host attachment journal (state_dir); nothing was done");
    auto before = journal_->read(key);
    if (!before) return std::move(before).error().context("the host attachment journal (state_dir); nothing was done");
    JournalRecord record = *before ? **before : JournalRecord{};
    record.volume = key;
    record.state = "connecting";
    record.step = "begin";
    bool lu_present = false;
    for (const PathAttempt &a : path_attempts(usable)) {  // the (target, iface) pairs this connect will attempt
        // Not a listing of every session per path: one logged in elsewhere since the last listing may be missed.
        lu_present = lu_present || !ops_->find_device_to_login(a.target, a.iface).empty();
        if (record.path(a.target, a.iface) != nullptr) continue;
        JournalPath p;
        p.target = a.target;
        p.iface = a.iface;
        p.step = "planned";
        record.paths.push_back(std::move(p));
    }
    if (whitelists && !usable.expected_wwid.empty()) {
        usable.expected_wwid_listed = ops_->multipath_wwid_listed(usable.expected_wwid);
    }
    if (!*before) {
        // The wwids entry multipath -a adds is ours to remove only when this LU had no device on the host before
        // and the file did not list it already (an earlier attach's entry, which a disconnect leaves). The answer
        // is the one `multipath -a` is run on (read once); unread (no multipath, no probed WWID): not ours.
        record.wwid = usable.expected_wwid;
        record.wwid_added = !lu_present && usable.expected_wwid_listed == false;
    }
    auto entry = std::make_unique<JournalEntry>(*journal_, log_, std::move(lock).value(), std::move(record),
                                                std::move(before).value());
    if (auto w = entry->update([](JournalRecord &) {}); !w) {
        return std::move(w).error().context("writing the host attachment journal (state_dir); nothing was done");
    }
    return entry;
}

void HostPath::journal_connected(JournalEntry &entry, const std::vector<const PathAttempt *> &good,
                                 const MapOutcome &map) {
    const std::optional<JournalRecord> &before = entry.before();
    auto r = entry.update([&](JournalRecord &rec) {
        rec.state = "connected";
        rec.step = "connected";
        rec.was_connected = true;
        if (map.map) rec.map_name = map.map->name;
        // Paths this connect tried and undid are not part of the attachment (unless an earlier connect made them).
        std::erase_if(rec.paths, [&](const JournalPath &p) {
            const bool attached = std::any_of(good.begin(), good.end(), [&](const PathAttempt *a) {
                return a->target == p.target && a->iface == p.iface;
            });
            return !attached && !(before && before->has_path(p.target, p.iface));
        });
        for (const PathAttempt *a : good) {
            if (JournalPath *p = rec.path(a->target, a->iface)) {
                p->step = "attached";
                p->device = a->device;
            }
        }
        if (rec.wwid.empty() && !good.empty()) rec.wwid = good.front()->wwid;
    });
    if (!r) log_.warning("host_path", "journal {}: {}", entry.current().volume, r.error().message);
}

std::unique_ptr<JournalEntry> HostPath::journal_disconnect(const request::VolumeRequest &volume,
                                                          const std::vector<request::Target> &targets,
                                                          const std::vector<std::string> &ifaces,
                                                          const std::string &map_name) {
    // A disconnect goes on without its journal (the volume must be able to go even when state_dir is broken);
    // without one, a crash in it leaves what disconnect without device_info or a second disconnect can remove.
    const std::string key = volume.volume_key();
    auto warn = [&](const Error &e) { log_.warning("host_path", "disconnect {}: no journal record: {}", key, e.message); };
    auto lock = journal_->lock(key);
    if (!lock) return warn(lock.error()), nullptr;
    auto before = journal_->read(key);
    if (!before) return warn(before.error()), nullptr;
    JournalRecord record = *before ? **before : JournalRecord{};
    record.volume = key;
    record.state = "disconnecting";
    record.step = "begin";
    record.was_connected = true;
    if (record.map_name.empty()) record.map_name = map_name;
    for (const request::Target &t : targets) {
        for (const std::string &iface : ifaces) {  // disconnect looks at each target through each of our ifaces
            if (record.path(t, iface) != nullptr) continue;
            // What disconnect would remove: the session's node record goes with the session.
            JournalPath p;
            p.target = t;
            p.iface = iface;
            p.step = "planned";
            p.owned = ops_->find_session(t.portal, t.iqn, iface).has_value();
            record.paths.push_back(std::move(p));
        }
    }
    auto entry = std::make_unique<JournalEntry>(*journal_, log_, std::move(lock).value(), std::move(record),
                                                std::move(before).value());
    if (auto w = entry->update([](JournalRecord &) {}); !w) return warn(w.error()), nullptr;
    return entry;
}

}  // namespace ivd::host_path
