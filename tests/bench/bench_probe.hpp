// What the probe bench's files share (bench_probe.cpp: the refused variant, the cap sweep and the JSON;
// bench_probe_black_hole.cpp: the black-hole variant): one timed prober call with the CPU tgtd and this process
// spent meanwhile, and the portal layout a run probes.
#pragma once

#include "bench_common.hpp"

#include "iscsi/iscsi_probe.hpp"

#include <sys/types.h>

#include <map>
#include <string>
#include <vector>

namespace ivd::bench::probe {

// On-CPU and run-queue wait time of one thread from /proc/PID/task/TID/schedstat (ns precision), and the whole
// process's CPU from /proc/PID/stat (all threads, in clock ticks). tgtd's main thread does the iSCSI work; its
// backing-store threads (16 per LU) only serve READ/WRITE, which a probe does not send.
struct Sched {
    double cpu_ms = 0;
    double wait_ms = 0;
    double process_cpu_ms = 0;
    Sched operator-(const Sched &o) const {
        return Sched{cpu_ms - o.cpu_ms, wait_ms - o.wait_ms, process_cpu_ms - o.process_cpu_ms};
    }
};

Sched sched_of(pid_t pid);

// The load average's three values, as /proc/loadavg writes them.
std::string loadavg();

// One timed prober call with what tgtd and this process spent meanwhile.
struct Run {
    double wall_ms = 0;
    Sched tgtd;
    Sched self;
    iscsi::ProbeStats stats;
    std::map<std::string, int> outcomes;
    std::vector<iscsi::ProbeResult> results;
};

// tgtd <= 0: no CPU sampling (single probes: the caller samples around the whole series).
Run timed_probe(const std::vector<request::Target> &targets, iscsi::ProbeOptions options, pid_t tgtd);

Json::Value outcome_json(const std::map<std::string, int> &counts);

// The portal list: targets x per portals of the lab, every `dead_every`th entry replaced by `bad(index)`.
struct Layout {
    std::vector<request::Target> targets;
    std::vector<bool> bad;  // per entry: the refused / black-hole one
    int bad_count = 0;
};

}  // namespace ivd::bench::probe
