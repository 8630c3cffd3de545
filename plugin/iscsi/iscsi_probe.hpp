// libiscsi in the plugin: concurrent portal probing (login, TEST UNIT READY, READ CAPACITY, LU identity from VPD
// page 0x83) under a hard deadline (libiscsi has none by default). SendTargets discovery: send_targets.hpp.
#pragma once

#include "core/error.hpp"
#include "request/portal.hpp"
#include "request/volume_request.hpp"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace ivd::iscsi {

// What one probe_targets call did, for tests and benchmarks.
struct ProbeStats {
    std::size_t max_in_flight = 0;   // the cap applied (after the descriptor limit)
    std::size_t peak_in_flight = 0;  // most sessions open at once
    std::size_t socket_waits = 0;    // starts delayed because the process was out of descriptors
    std::size_t wakeups = 0;         // event loop wake-ups
};

struct ProbeOptions {
    std::string initiator;                                // initiator IQN to log in as (required)
    const request::ChapCredentials *chap = nullptr;       // target CHAP, applied to every portal; may be null
    std::chrono::milliseconds timeout{3000};              // hard per-portal deadline (connect + login + commands)
    bool read_identity = false;                           // also read VPD 0x83 (LU identity)
    // Sessions open at once; 0: 256. Never more than half the soft RLIMIT_NOFILE.
    std::size_t max_in_flight = 0;
    ProbeStats *stats = nullptr;                          // filled in when given
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
    std::chrono::microseconds elapsed{0};  // from this probe's own start (after any wait for a free slot)
};

// Probes the targets concurrently in one event loop, starting them in order with at most max_in_flight sessions
// open; results are in the order of `targets`. Each probe ends within options.timeout of its own start even when
// a portal accepts TCP but never answers, so the call returns within about one timeout when there are no more
// targets than max_in_flight (in the worst case, all black holes, ceil(targets / max_in_flight) timeouts).
std::vector<ProbeResult> probe_targets(const std::vector<request::Target> &targets, const ProbeOptions &options);

}  // namespace ivd::iscsi
