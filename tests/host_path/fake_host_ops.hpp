// A HostOps in memory, for unit tests of the host path's policy (no root, tgtd or simulated host): sessions,
// node records, SCSI devices, WWIDs and one dm map, failures scripted per step and portal, and a journal of every
// call that changes the host, in order. Thread-safe: multipath attaches run one thread per path.
#pragma once

#include "host_path/host_ops.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <vector>

namespace ivd::testing {

class FakeHostOps final : public host_path::HostOps {
public:
    // Makes `step` fail on `portal` ("" = every portal). Steps: prepare, lock, login, scan, device (the LUN never
    // appears), wwid, multipath_add, flush, remove_device, logout, delete_node, ready (the map never reads),
    // rescan, resize, show_paths (multipathd does not answer), del_path, del_map (the map stays: held open).
    void fail(const std::string &step, const std::string &portal = "", Status status = Status::backend) {
        std::lock_guard g(m_);
        failures_[{step, portal}] = status;
    }
    // The steps fail() made fail work again.
    void clear_failures() {
        std::lock_guard g(m_);
        failures_.clear();
    }
    // Every scripted failure of `step` ends.
    void heal(const std::string &step) {
        std::lock_guard g(m_);
        std::erase_if(failures_, [&](const auto &kv) { return kv.first.first == step; });
    }
    // The WWID the device reached through `portal` reports (default: the probe's, 3600fake0001).
    void set_wwid(const std::string &portal, const std::string &wwid) {
        std::lock_guard g(m_);
        wwids_[portal] = wwid;
    }
    void set_map_forms(bool forms) { map_forms_ = forms; }          // false: multipathd takes paths, no map forms
    void set_by_path_links(bool links) { by_path_links_ = links; }  // false: udev makes no by-path link
    // iscsi_ifaces: an iface the host has (with its netdev; "default" is always there).
    void add_iface(const std::string &name, const std::string &netdev = "") {
        std::lock_guard g(m_);
        ifaces_[name] = netdev;
    }
    std::map<std::string, std::string> ifaces() const {
        std::lock_guard g(m_);
        return ifaces_;
    }
    // The TPGT each (portal, iface) login carried for its node record (-1 entries are not kept).
    std::map<std::string, int> tpgts() const {
        std::lock_guard g(m_);
        return tpgts_;
    }
    // Sessions through one iface.
    std::size_t sessions_via(const std::string &iface) const {
        std::lock_guard g(m_);
        return static_cast<std::size_t>(std::count_if(sessions_.begin(), sessions_.end(),
                                                      [&](const auto &s) { return s.second.iface == iface; }));
    }
    // true: multipathd keeps listing a path after its device is removed (a missed uevent) until `del path`.
    void set_keeps_removed_paths(bool keeps) { keeps_removed_paths_ = keeps; }
    // Paths multipathd lists now; whether the map exists (its dm device, with or without paths).
    std::set<std::string> listed_paths() const {
        std::lock_guard g(m_);
        return listed_;
    }
    bool map_present() const {
        std::lock_guard g(m_);
        return map_present_;
    }
    // A holder keeps the map open: del_map can only defer its removal; releasing it ends a deferred map.
    void set_map_held_open(bool held) {
        std::lock_guard g(m_);
        map_held_open_ = held;
        if (!held && removal_deferred_) map_present_ = false;
    }
    bool removal_deferred() const {
        std::lock_guard g(m_);
        return removal_deferred_;
    }

    // Another volume's session on (portal, iqn) through `iface`, with its LUN's device: not ours to log out.
    // `name`: the device name the kernel gives it ("": the next one; a removed device's: a reused name).
    void add_foreign_lun(const request::Portal &portal, const std::string &iqn, std::int64_t lun,
                         const std::string &iface = host_path::default_iface_name, std::string name = "") {
        std::lock_guard g(m_);
        SessionState &s = session_locked(portal, iqn, iface);
        nodes_.insert(key(portal, iqn, iface));
        if (name.empty()) name = next_device_locked();
        devices_[target_key(portal, iqn, lun, iface)] = Device{name, portal.to_string(), s.name, lun};
    }

    // The session to `portal` ends behind the driver's back (an admin's logout, a session iscsid gave up on): its
    // devices leave the map and go, the node record stays. Not journaled: the driver did not do it.
    void lose_session(const std::string &portal) {
        std::lock_guard g(m_);
        for (auto it = devices_.begin(); it != devices_.end();) {
            if (it->second.portal != portal) {
                ++it;
                continue;
            }
            in_map_.erase(it->second.name);
            if (!keeps_removed_paths_) listed_.erase(it->second.name);
            it = devices_.erase(it);
        }
        std::erase_if(sessions_, [&](const auto &kv) { return kv.second.portal.to_string() == portal; });
    }

    // Extend: the LU grows (devices see it after their rescan, the map after its resize); a path's SCSI state.
    void grow_lu(std::uint64_t bytes) {
        std::lock_guard g(m_);
        lu_size_ = bytes;
    }
    void set_device_state(const std::string &device, const std::string &state) {
        std::lock_guard g(m_);
        states_[device] = state;
    }
    static constexpr std::uint64_t initial_size = 1ull << 30;

    std::vector<std::string> journal() const {
        std::lock_guard g(m_);
        return journal_;
    }
    // The journal entries about one portal (or device), in order.
    std::vector<std::string> journal_of(const std::string &what) const {
        std::vector<std::string> out;
        for (const auto &e : journal()) {
            if (e.find(" " + what) != std::string::npos) out.push_back(e);
        }
        return out;
    }
    std::size_t count(const std::string &entry_prefix) const {
        const auto j = journal();
        return static_cast<std::size_t>(
            std::count_if(j.begin(), j.end(), [&](const std::string &e) { return e.rfind(entry_prefix, 0) == 0; }));
    }
    bool has_session(const std::string &portal) const {
        std::lock_guard g(m_);
        return std::any_of(sessions_.begin(), sessions_.end(), [&](const auto &s) { return s.second.portal.to_string() == portal; });
    }
    std::size_t sessions() const {
        std::lock_guard g(m_);
        return sessions_.size();
    }
    std::size_t devices() const {
        std::lock_guard g(m_);
        return devices_.size();
    }
    std::size_t node_records() const {
        std::lock_guard g(m_);
        return nodes_.size();
    }

    // HostOps (the longer calls in fake_host_ops.cpp) --------------------------------------------------------
    Result<void> prepare() override { return failure("prepare", ""); }

    Result<void> ensure_iface(const request::IscsiIface &iface) override;
    Result<std::unique_ptr<host_path::TargetLock>> lock_target(const request::Portal &portal, const std::string &) override;
    Result<host_path::LoginResult> login(const request::Portal &portal, const std::string &iqn,
                                         const request::ChapCredentials *, const std::string &iface, int tpgt,
                                         const std::optional<host_path::Session> * = nullptr) override;
    std::optional<host_path::Session> find_session(const request::Portal &portal, const std::string &iqn,
                                                   const std::string &iface) override;
    std::vector<request::Portal> session_portals(const std::string &iqn) override;
    Result<void> scan_lun(const host_path::Session &session, std::int64_t lun) override;
    Result<std::string> wait_for_device(const request::Target &target, std::chrono::milliseconds timeout,
                                        const std::string &iface) override;
    std::string find_device(const request::Target &target, const std::string &iface) override;

    std::optional<std::string> wait_for_by_path_link(const request::Target &t, std::chrono::milliseconds) override {
        if (!by_path_links_) return std::nullopt;
        return fmt::format("/dev/disk/by-path/ip-{}-iscsi-{}-lun-{}", t.portal.to_string(), t.iqn, t.scsi_lun());
    }

    std::string device_path(const std::string &device) const override { return "/dev/" + device; }

    Result<std::string> read_wwid(const std::string &device) override;
    std::vector<std::int64_t> session_luns(const host_path::Session &session) override;

    // The wwids file's answers to multipath_wwid_listed, in turn (the last one repeats; none: never listed), as
    // when another process edits the file between two reads.
    void set_wwid_listed_answers(std::vector<bool> answers) {
        std::lock_guard g(m_);
        listed_answers_ = std::move(answers);
    }
    std::size_t wwid_listed_reads() const {
        std::lock_guard g(m_);
        return listed_reads_;
    }
    bool multipath_wwid_listed(const std::string &) override;
    Result<void> multipath_whitelist(const std::string &wwid) override;
    Result<void> multipath_forget_wwid(const std::string &wwid) override;
    Result<void> multipath_add_path(const std::string &device, std::chrono::steady_clock::time_point) override;
    std::optional<host_path::MultipathMap> multipath_wait(const std::vector<std::string> &devices,
                                                          std::chrono::steady_clock::time_point) override;
    std::optional<host_path::MultipathMap> find_multipath(const std::string &device) override;
    std::optional<host_path::MultipathMap> find_multipath_by_name(const std::string &name) override;

    std::vector<std::string> multipath_paths(const host_path::MultipathMap &) override {
        std::lock_guard g(m_);
        return {in_map_.begin(), in_map_.end()};
    }

    Result<void> flush_multipath(const host_path::MultipathMap &map) override;
    Result<void> wait_map_ready(const host_path::MultipathMap &map, std::chrono::milliseconds) override;
    std::string device_state(const std::string &device) override;
    Result<void> rescan_device(const std::string &device) override;
    Result<std::uint64_t> device_size(const std::string &device) override;
    Result<void> multipath_resize(const host_path::MultipathMap &map, std::chrono::steady_clock::time_point) override;
    Result<void> remove_device(const std::string &device) override;
    Result<std::vector<std::string>> wait_paths_unlisted(const std::vector<std::string> &devices,
                                                         std::chrono::milliseconds) override;
    Result<void> multipathd_del_path(const std::string &device) override;
    Result<host_path::MapRemoval> multipathd_del_map(const host_path::MultipathMap &map, std::chrono::milliseconds) override;
    Result<void> logout(const request::Portal &portal, const std::string &iqn, const std::string &iface) override;
    Result<void> delete_node(const request::Portal &portal, const std::string &iqn, const std::string &iface) override;

    Result<std::vector<Leftover>> find_leftovers() override { return std::vector<Leftover>{}; }
    Result<void> remove_leftover(const Leftover &) override { return {}; }

    static constexpr const char *default_wwid = "3600fake0001";

private:
    struct SessionState {
        std::string name;
        request::Portal portal;
        std::string iqn;
        int host = 0;
        std::string iface;
        host_path::Session session() const { return host_path::Session{name, host, "0", "0"}; }
    };
    struct Device {
        std::string name;
        std::string portal;
        std::string session;
        std::int64_t lun = 0;
    };

    // Journal suffix: nothing for the default iface (entries as before ifaces).
    static std::string via(const std::string &iface) { return iface == request::default_iface ? "" : " via " + iface; }
    static std::string key(const request::Portal &portal, const std::string &iqn, const std::string &iface) {
        return portal.to_string() + " " + iqn + " " + iface;
    }
    static std::string target_key(const request::Portal &portal, const std::string &iqn, std::int64_t lun,
                                  const std::string &iface) {
        return fmt::format("{} {} {} {}", portal.to_string(), iqn, lun, iface);
    }

    SessionState &session_locked(const request::Portal &portal, const std::string &iqn, const std::string &iface) {
        auto [it, made] = sessions_.try_emplace(key(portal, iqn, iface));
        if (made) it->second = SessionState{fmt::format("session{}", ++session_count_), portal, iqn, session_count_, iface};
        return it->second;
    }
    const SessionState *by_name_locked(const std::string &name) const {
        for (const auto &[k, s] : sessions_) {
            if (s.name == name) return &s;
        }
        return nullptr;
    }
    const Device *device_locked(const std::string &name) const {
        for (const auto &[k, d] : devices_) {
            if (d.name == name) return &d;
        }
        return nullptr;
    }
    std::string next_device_locked() { return fmt::format("sd{}", static_cast<char>('a' + device_count_++)); }
    host_path::MultipathMap map_locked() const { return {"dm-0", default_wwid, "/dev/dm-0"}; }

    bool failing_locked(const std::string &step, const std::string &portal) const {
        return failures_.count({step, portal}) > 0 || failures_.count({step, ""}) > 0;
    }
    std::optional<Error> failure_locked(const std::string &step, const std::string &portal) const {
        auto it = failures_.find({step, portal});
        if (it == failures_.end()) it = failures_.find({step, ""});
        if (it == failures_.end()) return std::nullopt;
        return make_error(it->second, fmt::format("fake: {} fails on {}", step, portal.empty() ? "every portal" : portal));
    }
    Result<void> failure(const std::string &step, const std::string &portal) const {
        std::lock_guard g(m_);
        if (auto e = failure_locked(step, portal)) return std::move(*e);
        return {};
    }
    void note_locked(std::string entry) { journal_.push_back(std::move(entry)); }

    mutable std::mutex m_;
    std::map<std::pair<std::string, std::string>, Status> failures_;
    std::map<std::string, std::string> wwids_;
    std::map<std::string, SessionState> sessions_;
    std::set<std::string> nodes_;
    std::map<std::string, Device> devices_;
    std::set<std::string> in_map_;
    std::vector<std::string> journal_;
    std::vector<bool> listed_answers_;
    std::size_t listed_reads_ = 0;
    int session_count_ = 0;
    int device_count_ = 0;
    std::map<std::string, std::string> states_;
    std::map<std::string, std::string> ifaces_;  // name -> netdev
    std::map<std::string, int> tpgts_;           // "PORTAL IFACE" -> TPGT given at login
    void note_tpgt(const request::Portal &portal, const std::string &iface, int tpgt) {
        std::lock_guard g(m_);
        tpgts_[portal.to_string() + " " + iface] = tpgt;
    }
    std::map<std::string, std::uint64_t> sizes_;
    std::uint64_t lu_size_ = initial_size;
    std::uint64_t map_size_ = initial_size;
    bool map_forms_ = true;
    bool by_path_links_ = true;
    bool keeps_removed_paths_ = false;
    bool map_present_ = false;
    bool map_held_open_ = false;
    bool removal_deferred_ = false;
    std::set<std::string> listed_;
};

}  // namespace ivd::testing
