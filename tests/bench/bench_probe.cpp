// Portal probing at scale: many portals (targets x loopback portals of one tgtd, some not answering) probed at once
// by the async prober versus one at a time, interleaved, in the same process. Two variants:
//   refused:    every Nth portal refuses the connection at once (a port nobody listens on);
//   black hole: every Nth portal accepts TCP and never answers, so it ends only at the probe timeout and the
//               slowest single probe is a timeout.
// tgtd is one single-threaded process doing every login, so its CPU time during a run is reported next to the
// wall time: concurrent wall / tgtd CPU near 1 means tgtd was the bottleneck, not the prober.
#include "bench_main.hpp"
#include "bench_probe.hpp"

#include "tgtd_lab.hpp"

#include <unistd.h>

#include <fmt/format.h>

#include <cstdio>
#include <map>
#include <optional>
#include <sstream>
#include <tuple>

namespace ivd::bench {

namespace {

std::vector<int> parse_list(const std::string &text) {
    std::vector<int> out;
    std::stringstream ss(text);
    for (std::string item; std::getline(ss, item, ',');) {
        if (!item.empty()) out.push_back(std::stoi(item));
    }
    return out;
}

}  // namespace

// --targets N (250) --portals-per-target N (4) --dead-every N (10: every 10th portal entry does not answer)
// --rounds N (3) --timeout-ms N (3000, refused variant) --max-in-flight N (0: the prober's default)
// --black-hole-timeout-ms N (1000; 0 skips the black-hole variant) --black-hole-singles N (2 per round)
// --cap-sweep a,b,c (none): concurrent runs of both variants at these in-flight caps, rounds interleaved
int run_probe(const Args &args) {
    using namespace probe;
    const std::uint64_t fd_limit = raise_fd_limit();
    const int n_targets = static_cast<int>(args.number("targets", 250));
    const int per = static_cast<int>(args.number("portals-per-target", 4));
    const int dead_every = static_cast<int>(args.number("dead-every", 10));
    const int rounds = static_cast<int>(args.number("rounds", 3));
    const auto bh_timeout = std::chrono::milliseconds(args.number("black-hole-timeout-ms", 1000));
    const int bh_singles = static_cast<int>(args.number("black-hole-singles", 2));
    const std::vector<int> sweep = parse_list(args.get("cap-sweep", ""));
    const std::string load_before = loadavg();

    testing::TgtdLab lab;
    while (static_cast<int>(lab.portals().size()) < per) lab.add_portal();
    const testing::TgtdPortal dead = lab.dead_portal();
    Layout refused;
    const auto setup_start = Clock::now();
    for (int t = 0; t < n_targets; ++t) {
        const std::string iqn = lab.make_iqn(fmt::format("probe{}", t));
        const int tid = lab.create_target(iqn);
        lab.add_lun(tid, 1, 1ull << 20);
        for (int p = 0; p < per; ++p) {
            const int index = t * per + p;
            const bool is_dead = dead_every > 0 && index % dead_every == dead_every - 1;
            const testing::TgtdPortal &tp = is_dead ? dead : lab.portals()[static_cast<std::size_t>(p)];
            refused.bad_count += is_dead ? 1 : 0;
            refused.bad.push_back(is_dead);
            refused.targets.push_back(request::Target{request::Portal{tp.host, tp.port, false}, iqn, 1});
        }
    }
    const double setup_s = micros_since(setup_start) / 1e6;
    const int live_count = static_cast<int>(refused.targets.size()) - refused.bad_count;

    // Fresh black-hole listeners for every run: connections a run leaves in a listener's backlog must not turn
    // the next run's black holes from "accepted, silent" into "SYN dropped".
    auto black_hole_layout = [&] {
        Layout l = refused;
        std::optional<testing::TgtdPortal> hole;
        int on_hole = 0;
        for (std::size_t i = 0; i < l.targets.size(); ++i) {
            if (!l.bad[i]) continue;
            if (!hole || on_hole == 16) {
                hole = lab.black_hole_portal();
                on_hole = 0;
            }
            ++on_hole;
            l.targets[i].portal = request::Portal{hole->host, hole->port, false};
        }
        return l;
    };

    iscsi::ProbeOptions options;
    options.initiator = "iqn.1993-08.org.debian:01:bench-probe";
    options.timeout = std::chrono::milliseconds(args.number("timeout-ms", 3000));
    options.max_in_flight = static_cast<std::size_t>(args.number("max-in-flight", 0));
    iscsi::ProbeOptions bh_options = options;
    bh_options.timeout = bh_timeout;

    // Every outcome must be the expected one, or the timings mean nothing.
    int wrong_outcomes = 0;
    auto check = [&](const Layout &l, const Run &run, iscsi::ProbeOutcome bad_outcome) {
        for (std::size_t i = 0; i < run.results.size(); ++i) {
            const auto want = l.bad[i] ? bad_outcome : iscsi::ProbeOutcome::healthy;
            if (run.results[i].outcome != want) {
                if (++wrong_outcomes <= 5) {
                    std::fprintf(stderr, "unexpected outcome for %s: %s (%s)\n",
                                 l.targets[i].portal.to_string().c_str(),
                                 iscsi::probe_outcome_name(run.results[i].outcome), run.results[i].detail.c_str());
                }
            }
        }
    };

    // Refused variant.
    std::vector<double> concurrent_ms, sequential_total_ms, slowest_single_ms, singles_all;
    std::vector<double> tgtd_process_cpu_conc;
    std::vector<double> tgtd_cpu_conc, tgtd_wait_conc, self_cpu_conc, tgtd_cpu_seq, self_cpu_seq, ratio_tgtd;
    std::vector<double> peak_in_flight, wakeups;
    std::size_t applied_cap = 0;
    Json::Value outcomes(Json::objectValue);
    auto run_concurrent = [&] {
        const Run run = timed_probe(refused.targets, options, lab.pid());
        check(refused, run, iscsi::ProbeOutcome::unreachable);
        concurrent_ms.push_back(run.wall_ms);
        tgtd_cpu_conc.push_back(run.tgtd.cpu_ms);
        tgtd_wait_conc.push_back(run.tgtd.wait_ms);
        tgtd_process_cpu_conc.push_back(run.tgtd.process_cpu_ms);
        self_cpu_conc.push_back(run.self.cpu_ms);
        ratio_tgtd.push_back(run.wall_ms / std::max(run.tgtd.cpu_ms, 1e-3));
        peak_in_flight.push_back(static_cast<double>(run.stats.peak_in_flight));
        wakeups.push_back(static_cast<double>(run.stats.wakeups));
        applied_cap = run.stats.max_in_flight;
        outcomes["concurrent"] = outcome_json(run.outcomes);
        outcomes["concurrent_healthy"] = run.outcomes.count("healthy") ? run.outcomes.at("healthy") : 0;
    };
    auto run_sequential = [&](const Layout &l, const iscsi::ProbeOptions &o, bool with_bad,
                              iscsi::ProbeOutcome bad_outcome) {
        double slowest = 0, total = 0;
        int healthy = 0;
        std::vector<double> singles;
        const Sched t0 = sched_of(lab.pid()), s0 = sched_of(::getpid());
        for (std::size_t i = 0; i < l.targets.size(); ++i) {
            if (!with_bad && l.bad[i]) continue;  // black holes: sampled separately
            const Run run = timed_probe({l.targets[i]}, o, 0);
            singles.push_back(run.wall_ms);
            slowest = std::max(slowest, run.wall_ms);
            total += run.wall_ms;
            healthy += run.results.at(0).outcome == iscsi::ProbeOutcome::healthy ? 1 : 0;
            if (run.results.at(0).outcome != (l.bad[i] ? bad_outcome : iscsi::ProbeOutcome::healthy)) ++wrong_outcomes;
        }
        const double tgtd_cpu = (sched_of(lab.pid()) - t0).cpu_ms, self_cpu = (sched_of(::getpid()) - s0).cpu_ms;
        return std::make_tuple(total, slowest, tgtd_cpu, self_cpu, healthy, singles);
    };
    auto run_refused_sequential = [&] {
        auto [total, slowest, tgtd_cpu, self_cpu, healthy, singles] = run_sequential(refused, options, true, iscsi::ProbeOutcome::unreachable);
        sequential_total_ms.push_back(total);
        slowest_single_ms.push_back(slowest);
        tgtd_cpu_seq.push_back(tgtd_cpu);
        self_cpu_seq.push_back(self_cpu);
        singles_all.insert(singles_all.end(), singles.begin(), singles.end());
        outcomes["sequential_healthy"] = healthy;
    };

    // Black-hole variant: concurrent runs, the live portals one at a time, and a few black holes one at a time
    // (each takes the whole timeout, so all of them one at a time would take dead x timeout).
    std::vector<double> bh_concurrent_ms, bh_tgtd_cpu, bh_live_total_ms, bh_slowest_single_ms, bh_hole_single_ms;
    std::vector<double> bh_ratio, bh_seq_extrapolated;
    Json::Value bh_outcomes(Json::objectValue);
    auto run_black_hole_round = [&](bool concurrent_first) {
        double live_total = 0, slowest = 0;
        std::vector<double> holes;
        auto concurrent = [&] {
            const Layout l = black_hole_layout();
            const Run run = timed_probe(l.targets, bh_options, lab.pid());
            check(l, run, iscsi::ProbeOutcome::timeout);
            bh_concurrent_ms.push_back(run.wall_ms);
            bh_tgtd_cpu.push_back(run.tgtd.cpu_ms);
            bh_outcomes = outcome_json(run.outcomes);
        };
        auto sequential = [&] {
            const Layout l = black_hole_layout();
            auto [total, slow, tgtd_cpu, self_cpu, healthy, singles] = run_sequential(l, bh_options, false, iscsi::ProbeOutcome::timeout);
            (void)tgtd_cpu;
            (void)self_cpu;
            (void)healthy;
            (void)singles;
            live_total = total;
            slowest = slow;
            int sampled = 0;
            for (std::size_t i = 0; i < l.targets.size() && sampled < bh_singles; ++i) {
                if (!l.bad[i]) continue;
                const Run run = timed_probe({l.targets[i]}, bh_options, 0);
                if (run.results.at(0).outcome != iscsi::ProbeOutcome::timeout) ++wrong_outcomes;
                holes.push_back(run.wall_ms);
                slowest = std::max(slowest, run.wall_ms);
                ++sampled;
            }
        };
        if (concurrent_first) {
            concurrent();
            sequential();
        } else {
            sequential();
            concurrent();
        }
        bh_live_total_ms.push_back(live_total);
        bh_slowest_single_ms.push_back(slowest);
        bh_hole_single_ms.insert(bh_hole_single_ms.end(), holes.begin(), holes.end());
        bh_ratio.push_back(bh_concurrent_ms.back() / slowest);
        bh_seq_extrapolated.push_back(live_total + median(holes) * refused.bad_count);
    };

    for (int r = 0; r < rounds; ++r) {
        if (r % 2 == 0) {
            run_concurrent();
            run_refused_sequential();
        } else {
            run_refused_sequential();
            run_concurrent();
        }
        if (bh_timeout.count() > 0) run_black_hole_round(r % 2 == 1);
    }

    // In-flight cap sweep: concurrent runs only, caps interleaved within each round.
    Json::Value sweep_out(Json::arrayValue);
    if (!sweep.empty()) {
        std::map<int, std::vector<double>> wall, tgtd_cpu, peak, bh_wall;
        for (int r = 0; r < rounds; ++r) {
            for (std::size_t k = 0; k < sweep.size(); ++k) {
                const int cap = sweep[(k + static_cast<std::size_t>(r)) % sweep.size()];
                iscsi::ProbeOptions o = options;
                o.max_in_flight = static_cast<std::size_t>(cap);
                const Run run = timed_probe(refused.targets, o, lab.pid());
                check(refused, run, iscsi::ProbeOutcome::unreachable);
                wall[cap].push_back(run.wall_ms);
                tgtd_cpu[cap].push_back(run.tgtd.cpu_ms);
                peak[cap].push_back(static_cast<double>(run.stats.peak_in_flight));
                if (bh_timeout.count() > 0) {
                    iscsi::ProbeOptions bo = bh_options;
                    bo.max_in_flight = static_cast<std::size_t>(cap);
                    const Layout l = black_hole_layout();
                    const Run bh = timed_probe(l.targets, bo, lab.pid());
                    check(l, bh, iscsi::ProbeOutcome::timeout);
                    bh_wall[cap].push_back(bh.wall_ms);
                }
            }
        }
        for (const int cap : sweep) {
            Json::Value row(Json::objectValue);
            row["max_in_flight"] = cap;
            row["concurrent_ms"] = summary(wall[cap]);
            row["tgtd_cpu_ms"] = summary(tgtd_cpu[cap]);
            row["peak_in_flight"] = summary(peak[cap]);
            if (!bh_wall[cap].empty()) row["black_hole_concurrent_ms"] = summary(bh_wall[cap]);
            sweep_out.append(row);
        }
    }

    std::vector<double> ratio_slowest, ratio_sequential;
    for (int r = 0; r < rounds; ++r) {
        ratio_slowest.push_back(concurrent_ms[r] / slowest_single_ms[r]);
        ratio_sequential.push_back(sequential_total_ms[r] / concurrent_ms[r]);
    }
    Json::Value out(Json::objectValue);
    out["bench"] = "probe";
    out["portals"] = static_cast<Json::UInt64>(refused.targets.size());
    out["targets"] = n_targets;
    out["dead_portals"] = refused.bad_count;
    out["live_portals"] = live_count;
    out["fd_limit"] = static_cast<Json::UInt64>(fd_limit);
    out["max_in_flight"] = static_cast<Json::UInt64>(applied_cap);
    out["timeout_ms"] = static_cast<Json::Int64>(options.timeout.count());
    out["setup_s"] = setup_s;
    out["rounds"] = rounds;
    out["loadavg_before"] = load_before;
    out["loadavg_after"] = loadavg();
    out["wrong_outcomes"] = wrong_outcomes;
    out["concurrent_ms"] = summary(concurrent_ms);
    out["sequential_total_ms"] = summary(sequential_total_ms);
    out["slowest_single_ms"] = summary(slowest_single_ms);
    out["single_ms"] = summary(singles_all);
    out["ratio_concurrent_to_slowest_single"] = summary(ratio_slowest);
    out["speedup_sequential_to_concurrent"] = summary(ratio_sequential);
    // Where the concurrent time goes: tgtd's main thread CPU (it does every login), its wait for a CPU, ours.
    out["tgtd_cpu_concurrent_ms"] = summary(tgtd_cpu_conc);
    out["tgtd_process_cpu_concurrent_ms"] = summary(tgtd_process_cpu_conc);  // all threads, tick resolution
    out["tgtd_runqueue_wait_concurrent_ms"] = summary(tgtd_wait_conc);
    out["bench_cpu_concurrent_ms"] = summary(self_cpu_conc);
    out["tgtd_cpu_sequential_ms"] = summary(tgtd_cpu_seq);
    out["bench_cpu_sequential_ms"] = summary(self_cpu_seq);
    out["ratio_concurrent_to_tgtd_cpu"] = summary(ratio_tgtd);
    out["peak_in_flight"] = summary(peak_in_flight);
    out["wakeups_concurrent"] = summary(wakeups);
    out["outcomes"] = outcomes;
    if (bh_timeout.count() > 0) {
        Json::Value bh(Json::objectValue);
        bh["black_holes"] = refused.bad_count;
        bh["timeout_ms"] = static_cast<Json::Int64>(bh_timeout.count());
        bh["concurrent_ms"] = summary(bh_concurrent_ms);
        bh["tgtd_cpu_concurrent_ms"] = summary(bh_tgtd_cpu);
        bh["slowest_single_ms"] = summary(bh_slowest_single_ms);
        bh["black_hole_single_ms"] = summary(bh_hole_single_ms);
        bh["live_sequential_total_ms"] = summary(bh_live_total_ms);
        // live portals measured one at a time + every black hole at the measured single black-hole time
        bh["sequential_total_ms_extrapolated"] = summary(bh_seq_extrapolated);
        bh["ratio_concurrent_to_slowest_single"] = summary(bh_ratio);
        bh["outcomes"] = bh_outcomes;
        out["black_hole"] = bh;
    }
    if (!sweep.empty()) out["cap_sweep"] = sweep_out;
    std::printf("%s\n", to_json(out).c_str());
    return wrong_outcomes == 0 ? 0 : 1;
}

}  // namespace ivd::bench
