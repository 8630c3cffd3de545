// HostPath's cleanup: node records the CHAP policy forbids (HostOps' own scan), and the crash journal's
// attachments (attachment_journal.hpp). An attachment is kept while a connect, disconnect or cleanup of its volume
// runs (its journal lock is held) or a domain's disk uses one of its devices; else it is undone as disconnect
// would: the map, the devices, the sessions no other LUN or attachment uses and their node records, and the
// multipath wwids entry its connect added. The record goes last, so a cleanup that fails (or dies) is retried.
#include "host_path/host_path.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <filesystem>
#include <set>

namespace ivd::host_path {

namespace {

constexpr const char *attachment_kind = "host_attachment";

std::string canonical(const std::string &path) {
    std::error_code ec;
    const auto p = std::filesystem::weakly_canonical(path, ec);
    return ec ? path : p.string();
}

// What the host shows now for a record: each path's device (by target: a recorded name may belong to another LU
// after a reboot) and the maps holding them or named by the record.
struct RecordOnHost {
    std::vector<std::pair<JournalPath, std::string>> devices;
    std::vector<MultipathMap> maps;
    void add_map(const MultipathMap &m) {
        if (std::none_of(maps.begin(), maps.end(), [&](const MultipathMap &x) { return x.dm == m.dm; })) maps.push_back(m);
    }
};

RecordOnHost record_on_host(HostOps &ops, const JournalRecord &record) {
    RecordOnHost out;
    for (const JournalPath &p : record.paths) {
        const std::string d = ops.find_device(p.target, p.iface);
        if (d.empty()) continue;
        out.devices.emplace_back(p, d);
        if (auto m = ops.find_multipath(d)) out.add_map(*m);
    }
    if (!record.map_name.empty()) {
        if (auto m = ops.find_multipath_by_name(record.map_name)) out.add_map(*m);
    }
    return out;
}

// A session is (portal, IQN, iface): the same target through another iface is another session and node record.
std::string session_name(const JournalPath &p) {
    return p.target.portal.to_string() + " " + p.target.iqn + (p.iface == request::default_iface ? "" : " iface " + p.iface);
}

bool same_session(const JournalPath &a, const JournalPath &b) {
    return a.target.portal == b.target.portal && a.target.iqn == b.target.iqn && a.iface == b.iface;
}

json::Value leftover_detail(const JournalRecord &record, const RecordOnHost &on_host) {
    json::Value d = json::Value::object();
    d["state"] = record.state;
    d["step"] = record.step;
    if (!record.wwid.empty()) d["wwid"] = record.wwid;
    if (!record.map_name.empty()) d["map"] = record.map_name;
    json::Value &devices = d["devices"] = json::Value::array();
    for (const auto &[p, dev] : on_host.devices) devices.append(dev);
    for (const auto &m : on_host.maps) devices.append(m.dm);
    json::Value &sessions = d["sessions"] = json::Value::array();
    std::set<std::string> seen;
    for (const JournalPath &p : record.paths) {
        if (seen.insert(session_name(p)).second) sessions.append(session_name(p));
    }
    d["updated"] = record.updated;
    return d;
}

// The first of the record's devices a domain's disk uses ("" when none), comparing resolved paths.
std::string used_device(HostOps &ops, const RecordOnHost &on_host, const std::set<std::string> &used) {
    for (const auto &m : on_host.maps) {
        if (used.count(canonical(m.device_path))) return m.device_path;
    }
    for (const auto &[p, dev] : on_host.devices) {
        if (used.count(canonical(ops.device_path(dev)))) return ops.device_path(dev);
    }
    return {};
}

bool shares_session(const std::vector<JournalRecord> &others, const JournalPath &path) {
    return std::any_of(others.begin(), others.end(), [&](const JournalRecord &r) {
        return std::any_of(r.paths.begin(), r.paths.end(), [&](const JournalPath &p) { return same_session(p, path); });
    });
}

}  // namespace

Result<std::vector<Leftover>> HostPath::find_leftovers(const CleanupContext &context) {
    auto found = ops_->find_leftovers();
    if (!found) return found;
    auto records = journal_->list();
    if (!records) return std::move(records).error().context("cleanup: reading the host attachment journal (state_dir)");
    std::set<std::string> used;
    if (context.domain_block_devices) {
        for (const std::string &d : *context.domain_block_devices) used.insert(canonical(d));
    }
    for (const JournalRecord &rec : *records) {
        const RecordOnHost on_host = record_on_host(*ops_, rec);
        Leftover item;
        item.kind = attachment_kind;
        item.name = rec.volume;
        item.detail = leftover_detail(rec, on_host);
        auto lock = journal_->try_lock(rec.volume);
        if (!lock) {
            item.removable = false;
            item.reason = lock.error().message;
        } else if (!*lock) {
            item.in_use = true;
            item.reason = "a connect, disconnect or cleanup of the volume is running (it holds the journal lock)";
        } else if (rec.was_connected && rec.state == "connected" && !context.domain_block_devices) {
            // A half-done connect or disconnect is undone without libvirt's answer: a connect that never returned
            // gave no guest its device, and the host lets go of a disk before it disconnects the volume.
            item.removable = false;
            item.reason = "cannot tell whether a domain still uses it: " + context.domains_error;
        } else if (const std::string dev = rec.was_connected ? used_device(*ops_, on_host, used) : ""; !dev.empty()) {
            item.in_use = true;
            item.reason = "a domain's disk uses " + dev;
        } else if (rec.state == "connected") {
            item.reason = "no domain uses its devices any more";
        } else {
            item.reason = fmt::format("half done: a {} stopped at step {} (its process died)",
                                      rec.state == "disconnecting" ? "disconnect" : "connect", rec.step);
        }
        found->push_back(std::move(item));
    }
    return found;
}

Result<void> HostPath::remove_leftover(const Leftover &leftover) {
    if (leftover.kind != attachment_kind) return ops_->remove_leftover(leftover);
    auto lock = journal_->lock(leftover.name);
    if (!lock) return std::move(lock).error();
    auto record = journal_->read(leftover.name);
    if (!record) return std::move(record).error();
    if (!*record) return {};  // gone since the scan (disconnected)
    if ((*record)->updated != leftover.detail["updated"].as_int64()) {
        return make_error(Status::backend, fmt::format("cleanup {}: the attachment changed since the scan (a connect "
                                                       "or disconnect ran); left for the next cleanup", leftover.name));
    }
    auto all = journal_->list();
    if (!all) return std::move(all).error();
    std::erase_if(*all, [&](const JournalRecord &r) { return r.volume == leftover.name; });
    JournalEntry entry(*journal_, log_, std::move(lock).value(), **record, *record);
    return undo_attachment(entry, *all);
}

Result<void> HostPath::undo_attachment(JournalEntry &entry, const std::vector<JournalRecord> &others) {
    const JournalRecord found = entry.current();
    if (auto w = entry.update([](JournalRecord &r) { r.step = "cleanup"; }); !w) return w;
    const JournalRecord rec = entry.current();
    const RecordOnHost on_host = record_on_host(*ops_, rec);
    // A map that does not flush (held open) stops it: its devices are not taken away under it.
    for (const MultipathMap &m : on_host.maps) {
        entry.update_step("cleanup_flush_multipath");
        if (auto r = ops_->flush_multipath(m); !r) {
            return std::move(r).error().context(fmt::format("cleanup {}: flushing map {} ({}); nothing else was removed",
                                                            rec.volume, m.name, m.dm));
        }
    }
    std::vector<std::string> errors;
    entry.update_step("cleanup_remove_devices");
    for (const auto &[p, dev] : on_host.devices) {
        if (p.device_existed) continue;  // there before this attachment: another's
        if (auto r = ops_->remove_device(dev); !r) errors.push_back(r.error().message);
    }
    entry.update_step("cleanup_logout");
    std::set<std::string> done;
    for (const JournalPath &p : rec.paths) {
        if (!done.insert(session_name(p)).second || shares_session(others, p)) continue;
        const bool owned = std::any_of(rec.paths.begin(), rec.paths.end(),
                                       [&](const JournalPath &q) { return q.owned && same_session(q, p); });
        auto lock = ops_->lock_target(p.target.portal, p.target.iqn);
        if (!lock) {
            errors.push_back(lock.error().message);
            continue;
        }
        auto session = ops_->find_session(p.target.portal, p.target.iqn, p.iface);
        if (session && !ops_->session_luns(*session).empty()) continue;  // other LUNs use it
        if (!session && !owned) continue;  // no session of ours: the node record may be another's
        if (session) {
            if (auto r = ops_->logout(p.target.portal, p.target.iqn, p.iface); !r) {
                errors.push_back(r.error().message);
                continue;
            }
        }
        if (auto r = ops_->delete_node(p.target.portal, p.target.iqn, p.iface); !r) errors.push_back(r.error().message);
    }
    const bool wwid_shared = std::any_of(others.begin(), others.end(), [&](const JournalRecord &r) { return r.wwid == rec.wwid; });
    if (rec.wwid_added && !rec.wwid.empty() && !wwid_shared) {
        entry.update_step("cleanup_forget_wwid");
        if (auto r = ops_->multipath_forget_wwid(rec.wwid); !r) errors.push_back(r.error().message);
    }
    if (!errors.empty()) {
        return make_error(Status::backend, fmt::format("cleanup {}: {}; the journal record stays for the next cleanup",
                                                       rec.volume, fmt::join(errors, "; ")));
    }
    entry.remove();
    log_.info("host_path", "cleanup {}: undone ({} at step {})", rec.volume, found.state, found.step);
    return {};
}

}  // namespace ivd::host_path
