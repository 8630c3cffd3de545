// One path's attempt on the host (lock .. WWID check, then the offer to multipathd), as HostPath runs it.
#pragma once

#include "core/error.hpp"
#include "host_path/step_times.hpp"
#include "request/volume_request.hpp"

#include <chrono>
#include <string>

namespace ivd::host_path {

class JournalEntry;

struct PathAttempt {
    request::Target target;
    std::string iface = "default";  // the open-iscsi iface it logs in through: (target, iface) is the path
    int tpgt = -1;                  // non-default iface: the portal's TPGT (SendTargets), for its node record
    bool ok = false;
    bool session_created = false;
    bool owned = false;  // no session existed before: whatever this attempt left (node record, session) is ours
    // The LUN's device was there before this attempt's scan (another connect of the same volume): not ours to remove.
    bool device_existed = false;
    // The step running or last run (lock, login, scan, device, wwid): a failure row names the step that failed.
    const char *stage = "lock";
    std::string device;  // "sdc"
    std::string wwid;
    Error error;
    // Multipath only: when the path was ready (its offer to multipathd is bounded from then), and the offer.
    std::chrono::steady_clock::time_point ready;
    bool taken = false;
    std::string multipath_error;
    StepTimes times;  // its steps' durations, for the connect's "steps:" log line
    JournalEntry *journal = nullptr;  // the connect's crash journal record (steps are written before they run)
};

}  // namespace ivd::host_path
