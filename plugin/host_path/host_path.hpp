// The host attach path, in named steps: resolve the targets (lists or SendTargets discovery), check LU identity
// before any login, attach each path through HostOps (in turn, or all at once for multipath), wait for the
// multipath map, build device_info with the block disk XML; disconnect undoes it from device_info.
#pragma once

#include "core/log.hpp"
#include "driver/attach_path.hpp"
#include "host_path/attachment_journal.hpp"
#include "host_path/host_ops.hpp"
#include "iscsi/iscsi_probe.hpp"
#include "iscsi/send_targets.hpp"
#include "request/driver_config.hpp"

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace ivd::host_path {

struct PathAttempt;

// The libiscsi calls the path makes before touching the host; replaceable in unit tests.
struct StorageQueries {
    std::function<std::vector<iscsi::ProbeResult>(const std::vector<request::Target> &, const iscsi::ProbeOptions &)>
        probe = iscsi::probe_targets;
    std::function<Result<std::vector<iscsi::DiscoveredTarget>>(const request::Portal &, const std::string &,
                                                               const request::ChapCredentials *,
                                                               std::chrono::milliseconds)>
        discover = iscsi::send_targets;
};

// The targets connect will try: the lists as given, or the single target plus what SendTargets reports.
struct ResolvedTargets {
    std::vector<request::Target> targets;
    json::Value discovery = json::Value::object();  // what discovery did; empty when none ran
};

// The paths the LU identity check let through, and the WWID every one of them must show once attached.
struct UsablePaths {
    std::vector<request::Target> targets;
    std::string expected_wwid;  // empty: the probe read no WWID (each path's own is used)
    // Whether multipath's wwids file listed expected_wwid, read once per multipath connect (journal_connect) so
    // that the journal (whose entry is it?) and `multipath -a` (run it?) act on the same answer; unset: not read.
    std::optional<bool> expected_wwid_listed;
    std::map<std::string, int> tpgts;  // portal -> TPGT, learned for non-default ifaces (learn_tpgts)
    // Repair: only these (target, iface) paths are attempted (the others are attached already); empty: all.
    std::vector<std::pair<request::Target, std::string>> only;
    JournalEntry *journal = nullptr;  // the connect's crash journal record, handed to each attempt
};

// What the multipath map step left: the map (if one formed) and why not (when enforce_multipath is off).
struct MapOutcome {
    std::optional<MultipathMap> map;
    std::string error;  // "no multipath map ..." when a map was wanted and none appeared
};

// Everything device_info records about one connect.
struct Attached {
    const std::vector<request::Target> &targets;  // every target resolved (tried or not)
    const json::Value &discovery;
    const std::vector<const PathAttempt *> &good;  // the attached paths, the first one serving a single path
    const MapOutcome &map;
    const std::set<std::string> &in_map;  // path devices the map holds
    const std::string &device_path;       // what the guest gets
    const json::Value &failed;            // failed_portals rows
};

class HostPath final : public AttachPathImpl {
public:
    // journal: where each attachment is recorded for cleanup after a crash (attachment_journal.hpp); null: in memory.
    HostPath(request::HostPathConfig config, Logger log, std::unique_ptr<HostOps> ops, StorageQueries queries = {},
             std::shared_ptr<AttachmentJournal> journal = nullptr);

    // resolve targets -> check LU identity -> attach each path -> wait for the map -> build device_info.
    Result<request::DeviceInfo> connect(const ConnectContext &context) override;
    Result<std::string> disk_config(const request::VolumeRequest &volume, const request::DeviceInfo &device_info,
                                    const request::DiskTarget &disk) override;
    // Flush the maps -> remove the devices -> wait until multipathd no longer lists them (`del path` past
    // path_removal_timeout) -> log out of the sessions nobody else uses -> `multipathd del map` for a map whose
    // flush failed (map_removal_timeout); force and ignore_errors decide whether a failed step stops it.
    Result<void> disconnect(const request::VolumeRequest &volume, const request::DeviceInfo *device_info,
                            DisconnectOptions options) override;
    // Every path active (else refused, naming the paths; nothing changed) -> rescan each path's device -> resize
    // the map -> the map's (or the single device's) new size in bytes (host_path_extend.cpp).
    Result<std::uint64_t> extend(const request::VolumeRequest &volume, const request::DeviceInfo &device_info) override;
    // Cleanup (host_path_cleanup.cpp): node records the CHAP policy forbids (HostOps), and the journal's
    // attachments: kept while an operation on them runs or a domain uses their devices, else undone (map,
    // devices, sessions and node records no other attachment uses, the wwids entry it added).
    Result<std::vector<Leftover>> find_leftovers(const CleanupContext &context) override;
    Result<void> remove_leftover(const Leftover &leftover) override;

private:
    // The journal's part of connect and disconnect (host_path_journal.cpp): the record written before the host
    // changes (an error then stops the connect; nothing is done yet), and how it ends.
    // `whitelists`: the paths will run `multipath -a` (attach_all); then the wwids file is read here, once, into
    // usable.expected_wwid_listed.
    Result<std::unique_ptr<JournalEntry>> journal_connect(const request::VolumeRequest &volume, UsablePaths &usable,
                                                          bool whitelists);
    void journal_connected(JournalEntry &entry, const std::vector<const PathAttempt *> &good, const MapOutcome &map);
    std::unique_ptr<JournalEntry> journal_disconnect(const request::VolumeRequest &volume,
                                                     const std::vector<request::Target> &targets,
                                                     const std::vector<std::string> &ifaces,
                                                     const std::string &map_name);
    // Cleanup's undo of one recorded attachment (host_path_cleanup.cpp).
    Result<void> undo_attachment(JournalEntry &entry, const std::vector<JournalRecord> &others);

    // Connect, step by step (host_path.cpp).
    // What must hold before anything on the host changes: an initiator name, credentials a node record can
    // keep, a safe lock_dir, the configured ifaces.
    Result<void> ready_to_connect(const request::VolumeRequest &volume, const std::string &initiator);
    ResolvedTargets resolve_targets(const request::VolumeRequest &volume, const std::string &initiator, bool multipath);
    // VPD 0x83 on every path before any login: an error when two paths lead to different LUs or none is usable;
    // the paths left out get a failure row in `failed`.
    Result<UsablePaths> check_lu_identity(const std::vector<request::Target> &targets,
                                          const request::VolumeRequest &volume, const std::string &initiator,
                                          json::Value &failed);
    // Single path: the usable paths in turn until one attaches; each failed attempt is undone before the next.
    std::vector<PathAttempt> attach_in_turn(const UsablePaths &usable, const request::ChapCredentials *chap,
                                            json::Value &failed);
    // Multipath: every usable path at once, each in its own thread from login to multipathd; failures undone.
    std::vector<PathAttempt> attach_all(const UsablePaths &usable, const request::ChapCredentials *chap,
                                        json::Value &failed);

    // One path (host_path_attempt.cpp): from its (portal, IQN) lock to the WWID check; `attempt.stage` names
    // the step reached.
    Result<void> attach_path(PathAttempt &attempt, const request::ChapCredentials *chap, const std::string &expected_wwid);
    // Waits for the LUN's block device, scanning again now and then within device_wait_timeout.
    Result<std::string> wait_with_rescans(const request::Target &target, const std::string &iface);
    // Every configured iface there (created from its netdev when missing) before any login (iscsi_ifaces).
    Result<void> ensure_ifaces();
    // With a non-default iface: each usable portal's TPGT from SendTargets on it (its node records need it).
    void learn_tpgts(UsablePaths &usable, const request::VolumeRequest &volume, const std::string &initiator);
    // The paths to attach: each usable target through each configured iface, in that order.
    std::vector<PathAttempt> path_attempts(const UsablePaths &usable) const;
    // Undoes what a failed (or unwanted) attempt left: its device, and its session and node record if it made them.
    void undo_path(const PathAttempt &attempt);
    // The failed_portals row for a path that failed at `stage` (logged too).
    json::Value fail_path(const PathAttempt &attempt, const char *stage, const Error &error);

    // Reconnect (host_path_repair.cpp): connect of a volume whose paths are on the host already (Nova connects again
    // on hard reboot and host start). The paths there now are kept untouched (no login, scan or multipathd call;
    // only their node record is held to the CHAP policy); with multipath the missing ones are probed, attached and
    // added to the same map, each undone on its own when it fails; device_info describes the result.
    std::vector<PathAttempt> find_attached(const std::vector<request::Target> &targets, bool multipath,
                                           const request::ChapCredentials *chap);
    Result<request::DeviceInfo> reconnect(const ConnectContext &context, const ResolvedTargets &resolved,
                                          const std::vector<PathAttempt> &present);
    // The missing paths: probed (each must lead to the attached LU, `wwid`) and attached all at once.
    // `paths`: the missing (target, iface) pairs; `missing`: their targets, probed first. The crash journal's
    // record gains them before any login (`journal`: set when paths are attached).
    std::vector<PathAttempt> repair_paths(const ConnectContext &context, const std::vector<request::Target> &missing,
                                          const std::string &wwid, json::Value &failed,
                                          const std::vector<std::pair<request::Target, std::string>> &paths,
                                          std::unique_ptr<JournalEntry> &journal);
    // Waits (multipath_wait_timeout_ms) until the added paths are in `map`; one that is not is undone (with a second
    // map only its own devices made) and gets a failure row.
    void join_map(const MultipathMap &map, std::vector<PathAttempt> &added, json::Value &failed);

    // The result (host_path_result.cpp): the dm map over the good paths; with enforce_multipath a missing map is
    // an error after every path was undone (rows added to `failed`).
    Result<MapOutcome> wait_for_map(const std::vector<const PathAttempt *> &good, bool enforce, json::Value &failed);
    // Ready for I/O: the map reads a block within map_ready_timeout; else every path this connect attached is undone
    // (and the map flushed when this connect made it) and the connect fails.
    Result<void> check_map_ready(const MultipathMap &map, const std::vector<const PathAttempt *> &good);
    // The path devices `map` holds now (a warning when it holds fewer than the good paths).
    std::set<std::string> paths_in_map(const MultipathMap &map, const std::vector<const PathAttempt *> &good);
    // The device the guest gets: the map, else the first path's by-path link (or its node).
    std::string guest_device(const std::optional<MultipathMap> &map, const PathAttempt &first);
    // device_info: the one place the host path writes it (disconnect reads it back in host_path_disconnect.cpp).
    Result<request::DeviceInfo> build_device_info(const ConnectContext &context, const Attached &attached);

    // Extend's steps (host_path_extend.cpp): the paths' devices as the host shows them now, each checked active.
    struct ExtendPath {
        std::string label;   // "PORTAL IQN lun N", for errors
        std::string device;  // "sdc"; "" when the LUN has no device now
    };
    Result<std::vector<ExtendPath>> active_paths(const request::BlockDevice &block, const std::optional<MultipathMap> &map);
    Result<std::uint64_t> wait_for_map_size(const MultipathMap &map, const std::vector<ExtendPath> &paths,
                                            std::chrono::steady_clock::time_point deadline);

    request::HostPathConfig config_;
    Logger log_;
    std::unique_ptr<HostOps> ops_;
    StorageQueries queries_;
    std::shared_ptr<AttachmentJournal> journal_;
};

}  // namespace ivd::host_path
