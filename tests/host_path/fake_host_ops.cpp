// The in-memory HostOps of the host path's policy tests (fake_host_ops.hpp): its HostOps calls, each on the
// fake's state under its mutex, journaled and failing as scripted.
#include "fake_host_ops.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <mutex>
#include <set>
#include <string>
#include <vector>

namespace ivd::testing {

Result<void> FakeHostOps::ensure_iface(const request::IscsiIface &iface) {
    std::lock_guard g(m_);
    if (iface.name == request::default_iface) return {};
    auto it = ifaces_.find(iface.name);
    if (it == ifaces_.end()) {
        if (iface.netdev.empty()) {
            return make_error(Status::config, fmt::format("iscsi_ifaces: iface \"{}\" does not exist", iface.name),
                              "config", "iscsi_ifaces");
        }
        note_locked("iface_new " + iface.name + " " + iface.netdev);
        ifaces_[iface.name] = iface.netdev;
        return {};
    }
    if (!iface.netdev.empty() && it->second != iface.netdev) {
        return make_error(Status::config, fmt::format("iscsi_ifaces: iface \"{}\" is bound to \"{}\"", iface.name,
                                                      it->second), "config", "iscsi_ifaces");
    }
    return {};
}

Result<std::unique_ptr<host_path::TargetLock>> FakeHostOps::lock_target(const request::Portal &portal,
                                                                        const std::string &) {
    std::lock_guard g(m_);
    if (auto e = failure_locked("lock", portal.to_string())) return std::move(*e);
    return std::unique_ptr<host_path::TargetLock>(std::make_unique<host_path::TargetLock>());
}

Result<host_path::LoginResult> FakeHostOps::login(const request::Portal &portal, const std::string &iqn,
                                                  const request::ChapCredentials *, const std::string &iface, int tpgt,
                                                  const std::optional<host_path::Session> *) {
    if (tpgt >= 0) note_tpgt(portal, iface, tpgt);
    std::lock_guard g(m_);
    note_locked("login " + portal.to_string() + via(iface));
    if (iface != request::default_iface && !ifaces_.count(iface)) {
        return make_error(Status::backend, "fake: login through an iface the host does not have: " + iface);
    }
    if (auto it = sessions_.find(key(portal, iqn, iface)); it != sessions_.end()) {
        return host_path::LoginResult{it->second.session(), false};
    }
    nodes_.insert(key(portal, iqn, iface));  // iscsiadm writes the record before it logs in
    if (auto e = failure_locked("login", portal.to_string())) return std::move(*e);
    return host_path::LoginResult{session_locked(portal, iqn, iface).session(), true};
}

std::optional<host_path::Session> FakeHostOps::find_session(const request::Portal &portal, const std::string &iqn,
                                                            const std::string &iface) {
    std::lock_guard g(m_);
    if (auto it = sessions_.find(key(portal, iqn, iface)); it != sessions_.end()) return it->second.session();
    return std::nullopt;
}

std::vector<request::Portal> FakeHostOps::session_portals(const std::string &iqn) {
    std::lock_guard g(m_);
    std::vector<request::Portal> out;
    for (const auto &[k, s] : sessions_) {
        if (s.iqn == iqn) out.push_back(s.portal);
    }
    return out;
}

Result<void> FakeHostOps::scan_lun(const host_path::Session &session, std::int64_t lun) {
    std::lock_guard g(m_);
    const SessionState *s = by_name_locked(session.name);
    if (s == nullptr) return make_error(Status::internal, "fake: scan of an unknown session " + session.name);
    const std::string portal = s->portal.to_string();
    note_locked(fmt::format("scan {} lun {}", portal, lun));
    if (auto e = failure_locked("scan", portal)) return std::move(*e);
    const std::string k = target_key(s->portal, s->iqn, lun, s->iface);
    if (!devices_.count(k) && !failing_locked("device", portal)) {
        devices_[k] = Device{next_device_locked(), portal, s->name, lun};
    }
    return {};
}

Result<std::string> FakeHostOps::wait_for_device(const request::Target &target, std::chrono::milliseconds timeout,
                                                 const std::string &iface) {
    if (auto d = find_device(target, iface); !d.empty()) return d;
    return make_error(Status::timeout, fmt::format("fake: LUN {} of {} did not appear within {} ms", target.lun,
                                                   target.portal.to_string(), timeout.count()));
}

std::string FakeHostOps::find_device(const request::Target &target, const std::string &iface) {
    std::lock_guard g(m_);
    // As the kernel: a device is known by the LUN it was scanned with (data.addressing_mode applied).
    auto it = devices_.find(target_key(target.portal, target.iqn, target.scsi_lun(), iface));
    return it == devices_.end() ? std::string() : it->second.name;
}

Result<std::string> FakeHostOps::read_wwid(const std::string &device) {
    std::lock_guard g(m_);
    const Device *d = device_locked(device);
    if (d == nullptr) return make_error(Status::not_found, "fake: no device " + device);
    if (auto e = failure_locked("wwid", d->portal)) return std::move(*e);
    auto it = wwids_.find(d->portal);
    return it == wwids_.end() ? std::string(default_wwid) : it->second;
}

std::vector<std::int64_t> FakeHostOps::session_luns(const host_path::Session &session) {
    std::lock_guard g(m_);
    std::vector<std::int64_t> luns;
    for (const auto &[k, d] : devices_) {
        if (d.session == session.name) luns.push_back(d.lun);
    }
    return luns;
}

bool FakeHostOps::multipath_wwid_listed(const std::string &) {
    std::lock_guard g(m_);
    ++listed_reads_;
    if (listed_answers_.empty()) return false;
    const bool listed = listed_answers_.front();
    if (listed_answers_.size() > 1) listed_answers_.erase(listed_answers_.begin());
    return listed;
}

Result<void> FakeHostOps::multipath_whitelist(const std::string &wwid) {
    std::lock_guard g(m_);
    note_locked("whitelist " + wwid);
    return {};
}

Result<void> FakeHostOps::multipath_forget_wwid(const std::string &wwid) {
    std::lock_guard g(m_);
    note_locked("forget_wwid " + wwid);
    return {};
}

Result<void> FakeHostOps::multipath_add_path(const std::string &device, std::chrono::steady_clock::time_point) {
    std::lock_guard g(m_);
    note_locked("add_path " + device);
    const Device *d = device_locked(device);
    if (d == nullptr) return make_error(Status::internal, "fake: no device " + device);
    if (auto e = failure_locked("multipath_add", d->portal)) return std::move(*e);
    listed_.insert(device);
    if (map_forms_) {
        in_map_.insert(device);
        map_present_ = true;
    }
    return {};
}

std::optional<host_path::MultipathMap> FakeHostOps::multipath_wait(const std::vector<std::string> &devices,
                                                                   std::chrono::steady_clock::time_point) {
    std::lock_guard g(m_);
    if (std::none_of(devices.begin(), devices.end(), [&](const std::string &d) { return in_map_.count(d) > 0; })) {
        return std::nullopt;
    }
    return map_locked();
}

std::optional<host_path::MultipathMap> FakeHostOps::find_multipath(const std::string &device) {
    std::lock_guard g(m_);
    if (!in_map_.count(device)) return std::nullopt;
    return map_locked();
}

std::optional<host_path::MultipathMap> FakeHostOps::find_multipath_by_name(const std::string &name) {
    std::lock_guard g(m_);
    if (!map_present_ || name != default_wwid) return std::nullopt;  // a map can outlive its paths
    return map_locked();
}

Result<void> FakeHostOps::flush_multipath(const host_path::MultipathMap &map) {
    std::lock_guard g(m_);
    note_locked("flush " + map.dm);
    if (auto e = failure_locked("flush", "")) return std::move(*e);
    in_map_.clear();
    map_present_ = false;
    return {};
}

Result<void> FakeHostOps::wait_map_ready(const host_path::MultipathMap &map, std::chrono::milliseconds) {
    std::lock_guard g(m_);
    note_locked("ready " + map.dm);
    if (auto e = failure_locked("ready", "")) return std::move(*e);
    return {};
}

std::string FakeHostOps::device_state(const std::string &device) {
    std::lock_guard g(m_);
    if (device_locked(device) == nullptr) return {};
    auto it = states_.find(device);
    return it == states_.end() ? "running" : it->second;
}

Result<void> FakeHostOps::rescan_device(const std::string &device) {
    std::lock_guard g(m_);
    note_locked("rescan " + device);
    const Device *d = device_locked(device);
    if (d == nullptr) return make_error(Status::not_found, "fake: no device " + device);
    if (auto e = failure_locked("rescan", d->portal)) return std::move(*e);
    sizes_[device] = lu_size_;
    return {};
}

Result<std::uint64_t> FakeHostOps::device_size(const std::string &device) {
    std::lock_guard g(m_);
    if (device == map_locked().dm) return map_size_;
    if (device_locked(device) == nullptr) return make_error(Status::not_found, "fake: no device " + device);
    auto it = sizes_.find(device);
    return it == sizes_.end() ? initial_size : it->second;
}

Result<void> FakeHostOps::multipath_resize(const host_path::MultipathMap &map, std::chrono::steady_clock::time_point) {
    std::lock_guard g(m_);
    note_locked("resize " + map.dm);
    if (auto e = failure_locked("resize", "")) return std::move(*e);
    std::set<std::uint64_t> seen;
    for (const auto &d : in_map_) seen.insert(sizes_.count(d) ? sizes_[d] : initial_size);
    if (seen.size() != 1) return make_error(Status::backend, "fake: multipathd resize map: fail (paths differ)");
    map_size_ = *seen.begin();
    return {};
}

Result<void> FakeHostOps::remove_device(const std::string &device) {
    std::lock_guard g(m_);
    note_locked("remove_device " + device);
    const Device *d = device_locked(device);
    if (d == nullptr) return {};
    if (auto e = failure_locked("remove_device", d->portal)) return std::move(*e);
    in_map_.erase(device);
    if (!keeps_removed_paths_) listed_.erase(device);
    std::erase_if(devices_, [&](const auto &kv) { return kv.second.name == device; });
    return {};
}

Result<std::vector<std::string>> FakeHostOps::wait_paths_unlisted(const std::vector<std::string> &devices,
                                                                  std::chrono::milliseconds) {
    std::lock_guard g(m_);
    if (auto e = failure_locked("show_paths", "")) return std::move(*e);
    std::vector<std::string> left;
    for (const auto &d : devices) {
        if (listed_.count(d)) left.push_back(d);
    }
    return left;
}

Result<void> FakeHostOps::multipathd_del_path(const std::string &device) {
    std::lock_guard g(m_);
    note_locked("del_path " + device);
    if (auto e = failure_locked("del_path", "")) return std::move(*e);
    listed_.erase(device);
    in_map_.erase(device);
    return {};
}

Result<host_path::MapRemoval> FakeHostOps::multipathd_del_map(const host_path::MultipathMap &map,
                                                              std::chrono::milliseconds) {
    std::lock_guard g(m_);
    note_locked("del_map " + map.dm);
    if (auto e = failure_locked("del_map", "")) return std::move(*e);
    in_map_.clear();
    if (map_held_open_) {
        removal_deferred_ = true;  // the real one: an error table and dmsetup's deferred removal
        return host_path::MapRemoval::deferred;
    }
    map_present_ = false;
    return host_path::MapRemoval::removed;
}

Result<void> FakeHostOps::logout(const request::Portal &portal, const std::string &iqn, const std::string &iface) {
    std::lock_guard g(m_);
    note_locked("logout " + portal.to_string() + via(iface));
    if (auto e = failure_locked("logout", portal.to_string())) return std::move(*e);
    sessions_.erase(key(portal, iqn, iface));
    return {};
}

Result<void> FakeHostOps::delete_node(const request::Portal &portal, const std::string &iqn, const std::string &iface) {
    std::lock_guard g(m_);
    note_locked("delete_node " + portal.to_string() + via(iface));
    if (auto e = failure_locked("delete_node", portal.to_string())) return std::move(*e);
    nodes_.erase(key(portal, iqn, iface));
    return {};
}

}  // namespace ivd::testing
