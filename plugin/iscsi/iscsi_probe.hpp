// libiscsi in the plugin: concurrent portal probing (login, TEST UNIT READY, READ CAPACITY, LU identity from VPD
// page 0x83) and SendTargets discovery, each under a hard deadline (libiscsi has none by default).
#pragma once

#include "core/error.hpp"
#include "request/portal.hpp"
#include "request/volume_request.hpp"

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace ivd::iscsi {

struct ProbeOptions {
    std::string initiator;                                // initiator IQN to log in as (required)
    const request::ChapCredentials *chap = nullptr;       // target CHAP, applied to every portal; may be null
    std::chrono::milliseconds timeout{3000};              // hard per-portal deadline (connect + login + commands)
    bool read_identity = false;                           // also read VPD 0x83 (LU identity)
};

enum class ProbeOutcome { healthy, unreachable, timeout, auth_failed, target_not_found, lun_unavailable, error };
const char *probe_outcome_name(ProbeOutcome outcome);

// The identity of a logical unit from VPD page 0x83, in the form Linux's scsi_id/udev gives as WWID.
struct LuIdentity {
    std::string wwid;                      // e.g. "360000000000000000e00000000290007"; empty if none usable
    std::vector<std::string> designators;  // every designator as "<type>:<hex>", sorted, for comparison
    friend bool operator==(const LuIdentity &, const LuIdentity &) = default;
};

struct ProbeResult {
    ProbeOutcome outcome = ProbeOutcome::error;
    std::string detail;               // why, when not healthy (never contains a secret)
    std::uint64_t size_bytes = 0;     // from READ CAPACITY when healthy
    std::uint32_t block_size = 0;
    std::optional<LuIdentity> identity;  // when read_identity and healthy
    std::chrono::microseconds elapsed{0};
};

// Probes every target at once in one event loop; results are in the order of `targets`. Returns within about
// options.timeout even when a portal accepts TCP but never answers.
std::vector<ProbeResult> probe_targets(const std::vector<request::Target> &targets, const ProbeOptions &options);

struct DiscoveredTarget {
    std::string iqn;
    std::vector<request::Portal> portals;  // as the target reports them (",tpgt" removed)
};

// SendTargets discovery on one portal, with discovery CHAP when given.
Result<std::vector<DiscoveredTarget>> send_targets(const request::Portal &portal, const std::string &initiator,
                                                   const request::ChapCredentials *discovery_chap,
                                                   std::chrono::milliseconds timeout);

}  // namespace ivd::iscsi
