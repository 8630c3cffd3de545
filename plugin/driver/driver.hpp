// One driver instance (one ABI handle): config, host facts, per-volume locks and the two attach paths.
#pragma once

#include "core/error.hpp"
#include "core/log.hpp"
#include "driver/attach_path.hpp"
#include "driver/volume_locks.hpp"
#include "host_facts/host_facts.hpp"
#include "request/driver_config.hpp"


#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace ivd {

// Lets tests replace host detection and the attach paths with in-memory fakes.
struct DriverParts {
    std::optional<HostFacts> facts;              // set: fixed facts, never re-detected; unset: detect on first use
    std::unique_ptr<AttachPathImpl> network;     // unset: the real path for this build
    std::unique_ptr<AttachPathImpl> host;
    // unset: detect_host_facts (tests count or script detections through this)
    std::function<HostFacts(const request::HostFactsConfig &, const Logger &)> detect;
    // unset: list_domain_block_devices (libvirt); tests answer which block devices domains use through this
    std::function<Result<std::vector<std::string>>()> domain_block_devices;
};

class Driver {
public:
    static Result<std::unique_ptr<Driver>> create(const char *config_json, Logger log, DriverParts parts = {});

    Result<std::string> connector_properties(std::uint32_t flags);
    Result<std::string> connect_volume(const char *connection_info, const char *connector, const char *disk_info,
                                       std::uint32_t flags);
    Result<void> disconnect_volume(const char *connection_info, const char *device_info, std::uint32_t flags);
    // ABI v2: the <disk> for a guest device of a connected volume (pure) and the volume's size now.
    Result<std::string> disk_config(const char *connection_info, const char *device_info, const char *disk_info,
                                    std::uint32_t flags);
    Result<std::string> extend_volume(const char *connection_info, const char *device_info, std::uint32_t flags);
    // The ABI version of the handle: 1 keeps version 1's rules (connect needs disk_info.dev).
    void set_abi_version(std::uint32_t version) { abi_version_ = version; }
    // Finds what the paths left behind (see vd_driver_table::cleanup) and removes the unused; returns the report.
    Result<std::string> cleanup(std::uint32_t flags);

    const request::DriverConfig &config() const { return config_; }
    const Logger &log() const { return log_; }

private:
    Driver(request::DriverConfig config, Logger log, DriverParts parts);
    // The cached facts, detected again when missing, older than host_facts_ttl, partial, or (refresh) when a
    // decision just failed for a capability reason. Shared: a refresh never invalidates what a caller holds.
    enum class Freshness { cached, refresh };
    std::shared_ptr<const HostFacts> facts(Freshness want = Freshness::cached);
    AttachPathImpl &path_impl(AttachPath path);

    request::DriverConfig config_;
    Logger log_;
    std::mutex facts_mutex_;
    std::shared_ptr<const HostFacts> facts_;
    std::chrono::steady_clock::time_point facts_time_;
    bool facts_fixed_ = false;
    std::function<HostFacts(const request::HostFactsConfig &, const Logger &)> detect_;
    std::function<Result<std::vector<std::string>>()> domain_block_devices_;
    std::unique_ptr<AttachPathImpl> network_;
    std::unique_ptr<AttachPathImpl> host_;
    VolumeLocks locks_;
    std::uint32_t abi_version_ = 1;
};

}  // namespace ivd
