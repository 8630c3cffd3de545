// What the probe bench's files share (bench_probe.cpp: the command line, the refused variant, the cap sweep and
// the JSON; bench_probe_black_hole.cpp: the black-hole variant; bench_probe_measure.cpp: the measurements): one
// timed prober call with the CPU tgtd and this process spent meanwhile, and the portal layout a run probes.
#pragma once

#include "bench_common.hpp"

#include "iscsi/iscsi_probe.hpp"
#include "tgtd_lab.hpp"

#include <sys/types.h>

#include <chrono>
#include <map>
#include <string>
#include <vector>

namespace ivd::bench::probe {

// The command line (see run_probe).
struct Config {
    int targets = 0;
    int portals_per_target = 0;
    int dead_every = 0;
    int rounds = 0;
    int black_hole_singles = 0;  // black holes probed one at a time per round
    std::vector<int> cap_sweep;
    iscsi::ProbeOptions options;             // refused variant
    iscsi::ProbeOptions black_hole_options;  // the same with the black-hole timeout
    bool black_hole() const { return black_hole_options.timeout.count() > 0; }
};

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

// The portal list a run probes: targets x portals of the lab, the bad entries on the dead portal (refused variant)
// or on black-hole listeners.
struct Layout {
    std::vector<request::Target> targets;
    std::vector<bool> bad;  // per entry: the refused / black-hole one
    int bad_count = 0;
};

// Counts outcomes that are not the expected one: with any, the timings mean nothing and the bench fails.
struct OutcomeCheck {
    int wrong = 0;
    // Expected: `bad_outcome` on the layout's bad entries, healthy elsewhere; the first few wrong go to stderr.
    void check(const Layout &layout, const Run &run, iscsi::ProbeOutcome bad_outcome);
};

// A layout's portals one at a time, each its own timed prober call; CPU sampled around the whole series.
struct Sequential {
    double total_ms = 0;
    double slowest_ms = 0;
    double tgtd_cpu_ms = 0;
    double self_cpu_ms = 0;
    int healthy = 0;
    std::vector<double> singles;
};

// `with_bad` false skips the bad entries (black holes: each takes the whole timeout, so they are sampled apart).
Sequential one_at_a_time(const Layout &layout, const iscsi::ProbeOptions &options, bool with_bad,
                         iscsi::ProbeOutcome bad_outcome, pid_t tgtd, OutcomeCheck &checks);

// Black-hole variant (bench_probe_black_hole.cpp).

// `refused` with its bad entries on black-hole listeners.
Layout black_hole_layout(testing::TgtdLab &lab, const Layout &refused);

struct BlackHoleRound {
    Run concurrent;
    double live_total_ms = 0;       // the live portals one at a time
    double slowest_single_ms = 0;   // of the live ones and the sampled black holes
    std::vector<double> holes_ms;   // the sampled black holes one at a time
};

BlackHoleRound black_hole_round(testing::TgtdLab &lab, const Layout &refused, const Config &config,
                                bool concurrent_first, OutcomeCheck &checks);

// Per round, what the black-hole JSON summarises.
struct BlackHoleSeries {
    std::vector<double> concurrent_ms, tgtd_cpu_ms, live_total_ms, slowest_single_ms, hole_single_ms;
    std::vector<double> ratio, sequential_extrapolated_ms;
    Json::Value outcomes{Json::objectValue};  // of the last concurrent run
    void add(const BlackHoleRound &round, int black_holes);
};

Json::Value black_hole_json(const BlackHoleSeries &series, const Config &config, int black_holes);

}  // namespace ivd::bench::probe
