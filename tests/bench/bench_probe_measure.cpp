// The probe bench's measurements: CPU of tgtd and of this process from /proc, one timed prober call, a layout's
// portals one at a time, and the check that every outcome is the expected one.
#include "bench_probe.hpp"

#include <unistd.h>

#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <sstream>

namespace ivd::bench::probe {

Sched sched_of(pid_t pid) {
    Sched s;
    {
        std::ifstream in(fmt::format("/proc/{}/task/{}/schedstat", pid, pid));
        double cpu_ns = 0, wait_ns = 0;
        if (in >> cpu_ns >> wait_ns) {
            s.cpu_ms = cpu_ns / 1e6;
            s.wait_ms = wait_ns / 1e6;
        }
    }
    std::ifstream in(fmt::format("/proc/{}/stat", pid));
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const auto close = text.rfind(')');
    if (close != std::string::npos) {
        std::stringstream rest(text.substr(close + 2));
        std::string field;
        double utime = 0, stime = 0;
        for (int i = 3; i <= 15 && rest >> field; ++i) {  // field 3 is the state; utime is 14, stime 15
            if (i == 14) utime = std::stod(field);
            if (i == 15) stime = std::stod(field);
        }
        s.process_cpu_ms = (utime + stime) * 1000.0 / static_cast<double>(::sysconf(_SC_CLK_TCK));
    }
    return s;
}

std::string loadavg() {
    std::ifstream in("/proc/loadavg");
    std::string a, b, c;
    in >> a >> b >> c;
    return a + " " + b + " " + c;
}

Run timed_probe(const std::vector<request::Target> &targets, iscsi::ProbeOptions options, pid_t tgtd) {
    Run run;
    options.stats = &run.stats;
    const Sched t0 = tgtd > 0 ? sched_of(tgtd) : Sched{}, s0 = tgtd > 0 ? sched_of(::getpid()) : Sched{};
    const auto start = Clock::now();
    run.results = iscsi::probe_targets(targets, options);
    run.wall_ms = micros_since(start) / 1000.0;
    if (tgtd > 0) {
        run.tgtd = sched_of(tgtd) - t0;
        run.self = sched_of(::getpid()) - s0;
    }
    for (const auto &r : run.results) ++run.outcomes[iscsi::probe_outcome_name(r.outcome)];
    return run;
}

Json::Value outcome_json(const std::map<std::string, int> &counts) {
    Json::Value o(Json::objectValue);
    for (const auto &[name, n] : counts) o[name] = n;
    return o;
}

void OutcomeCheck::check(const Layout &layout, const Run &run, iscsi::ProbeOutcome bad_outcome) {
    for (std::size_t i = 0; i < run.results.size(); ++i) {
        const auto want = layout.bad[i] ? bad_outcome : iscsi::ProbeOutcome::healthy;
        if (run.results[i].outcome != want) {
            if (++wrong <= 5) {
                std::fprintf(stderr, "unexpected outcome for %s: %s (%s)\n",
                             layout.targets[i].portal.to_string().c_str(),
                             iscsi::probe_outcome_name(run.results[i].outcome), run.results[i].detail.c_str());
            }
        }
    }
}

Sequential one_at_a_time(const Layout &layout, const iscsi::ProbeOptions &options, bool with_bad,
                         iscsi::ProbeOutcome bad_outcome, pid_t tgtd, OutcomeCheck &checks) {
    Sequential seq;
    const Sched t0 = sched_of(tgtd), s0 = sched_of(::getpid());
    for (std::size_t i = 0; i < layout.targets.size(); ++i) {
        if (!with_bad && layout.bad[i]) continue;
        const Run run = timed_probe({layout.targets[i]}, options, 0);
        seq.singles.push_back(run.wall_ms);
        seq.slowest_ms = std::max(seq.slowest_ms, run.wall_ms);
        seq.total_ms += run.wall_ms;
        const auto outcome = run.results.at(0).outcome;
        seq.healthy += outcome == iscsi::ProbeOutcome::healthy ? 1 : 0;
        if (outcome != (layout.bad[i] ? bad_outcome : iscsi::ProbeOutcome::healthy)) ++checks.wrong;
    }
    seq.tgtd_cpu_ms = (sched_of(tgtd) - t0).cpu_ms;
    seq.self_cpu_ms = (sched_of(::getpid()) - s0).cpu_ms;
    return seq;
}

}  // namespace ivd::bench::probe
