// The host attach path: targets (lists or SendTargets discovery), LU identity before login, parallel logins
// through HostOps, the multipath map, and the block disk XML; disconnect undoes it from device_info.
#pragma once

#include "core/log.hpp"
#include "driver/attach_path.hpp"
#include "host_path/host_ops.hpp"
#include "iscsi/iscsi_probe.hpp"
#include "request/driver_config.hpp"

#include <functional>
#include <memory>

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

class HostPath final : public AttachPathImpl {
public:
    HostPath(request::DriverConfig config, Logger log, std::unique_ptr<HostOps> ops, StorageQueries queries = {});

    Result<request::DeviceInfo> connect(const ConnectContext &context) override;
    Result<std::string> disk_config(const request::VolumeRequest &volume, const request::DeviceInfo &device_info,
                                    const request::DiskTarget &disk) override;
    Result<void> disconnect(const request::VolumeRequest &volume, const request::DeviceInfo *device_info,
                            std::uint32_t flags) override;
    Result<std::vector<Leftover>> find_leftovers() override { return ops_->find_leftovers(); }
    Result<void> remove_leftover(const Leftover &leftover) override { return ops_->remove_leftover(leftover); }

private:
    // Waits for the LUN's block device, scanning again now and then within device_wait_timeout.
    Result<std::string> wait_with_rescans(const request::Target &target);
    // One path from its (portal, IQN) lock to the WWID check; `attempt.stage` names the step reached.
    Result<void> attach_path(PathAttempt &attempt, const request::ChapCredentials *chap, const std::string &expected_wwid);
    // Undoes what a failed (or unwanted) attempt left: its device, and its session and node record if it made them.
    void undo_path(const PathAttempt &attempt);
    // The failed_portals row for a path that failed at `stage` (logged too).
    json::Value fail_path(const PathAttempt &attempt, const char *stage, const Error &error);

    request::DriverConfig config_;
    Logger log_;
    std::unique_ptr<HostOps> ops_;
    StorageQueries queries_;
};

}  // namespace ivd::host_path
