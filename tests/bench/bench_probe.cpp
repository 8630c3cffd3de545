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

#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <sstream>

namespace ivd::bench {

namespace probe {
namespace {

std::vector<int> parse_list(const std::string &text) {
    std::vector<int> out;
    std::stringstream ss(text);
    for (std::string item; std::getline(ss, item, ',');) {
        if (!item.empty()) out.push_back(std::stoi(item));
    }
    return out;
}

Config parse_config(const Args &args) {
    Config c;
    c.targets = static_cast<int>(args.number("targets", 250));
    c.portals_per_target = static_cast<int>(args.number("portals-per-target", 4));
    c.dead_every = static_cast<int>(args.number("dead-every", 10));
    c.rounds = static_cast<int>(args.number("rounds", 3));
    c.black_hole_singles = static_cast<int>(args.number("black-hole-singles", 2));
    c.cap_sweep = parse_list(args.get("cap-sweep", ""));
    c.options.initiator = "iqn.1993-08.org.debian:01:bench-probe";
    c.options.timeout = std::chrono::milliseconds(args.number("timeout-ms", 3000));
    c.options.max_in_flight = static_cast<std::size_t>(args.number("max-in-flight", 0));
    c.black_hole_options = c.options;
    c.black_hole_options.timeout = std::chrono::milliseconds(args.number("black-hole-timeout-ms", 1000));
    return c;
}

struct Setup {
    Layout refused;
    double setup_s = 0;  // creating the targets and LUNs
};

// Every `dead_every`th portal entry on the lab's dead portal (a port nobody listens on), the others on the
// lab's portals in turn.
Setup make_targets(testing::TgtdLab &lab, const Config &config) {
    const int per = config.portals_per_target;
    while (static_cast<int>(lab.portals().size()) < per) lab.add_portal();
    const testing::TgtdPortal dead = lab.dead_portal();
    Setup setup;
    Layout &refused = setup.refused;
    const auto start = Clock::now();
    for (int t = 0; t < config.targets; ++t) {
        const std::string iqn = lab.make_iqn(fmt::format("probe{}", t));
        const int tid = lab.create_target(iqn);
        lab.add_lun(tid, 1, 1ull << 20);
        for (int p = 0; p < per; ++p) {
            const int index = t * per + p;
            const bool is_dead = config.dead_every > 0 && index % config.dead_every == config.dead_every - 1;
            const testing::TgtdPortal &tp = is_dead ? dead : lab.portals()[static_cast<std::size_t>(p)];
            refused.bad_count += is_dead ? 1 : 0;
            refused.bad.push_back(is_dead);
            refused.targets.push_back(request::Target{request::Portal{tp.host, tp.port, false}, iqn, 1});
        }
    }
    setup.setup_s = micros_since(start) / 1e6;
    return setup;
}

// Refused variant, one round: every portal at once, then every portal one at a time (or the other way round).
struct RefusedRound {
    Run concurrent;
    Sequential sequential;
};

RefusedRound refused_round(const testing::TgtdLab &lab, const Layout &refused, const Config &config,
                           bool concurrent_first, OutcomeCheck &checks) {
    constexpr auto bad = iscsi::ProbeOutcome::unreachable;
    RefusedRound round;
    auto concurrent = [&] {
        round.concurrent = timed_probe(refused.targets, config.options, lab.pid());
        checks.check(refused, round.concurrent, bad);
    };
    if (concurrent_first) concurrent();
    round.sequential = one_at_a_time(refused, config.options, true, bad, lab.pid(), checks);
    if (!concurrent_first) concurrent();
    return round;
}

// Per round, what the refused variant's JSON summarises.
struct RefusedSeries {
    std::vector<double> concurrent_ms, tgtd_cpu_conc, tgtd_wait_conc, tgtd_process_cpu_conc, self_cpu_conc;
    std::vector<double> ratio_tgtd, peak_in_flight, wakeups;
    std::vector<double> sequential_total_ms, slowest_single_ms, singles_all, tgtd_cpu_seq, self_cpu_seq;
    std::size_t applied_cap = 0;
    Json::Value outcomes{Json::objectValue};  // of the last round

    void add(const RefusedRound &round) {
        const Run &run = round.concurrent;
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
        const Sequential &seq = round.sequential;
        sequential_total_ms.push_back(seq.total_ms);
        slowest_single_ms.push_back(seq.slowest_ms);
        tgtd_cpu_seq.push_back(seq.tgtd_cpu_ms);
        self_cpu_seq.push_back(seq.self_cpu_ms);
        singles_all.insert(singles_all.end(), seq.singles.begin(), seq.singles.end());
        outcomes["sequential_healthy"] = seq.healthy;
    }
};

// One in-flight cap's concurrent runs, both variants.
struct CapSeries {
    std::vector<double> wall, tgtd_cpu, peak, black_hole_wall;
};

void cap_run(testing::TgtdLab &lab, const Layout &refused, const Config &config, int cap, OutcomeCheck &checks,
             CapSeries &series) {
    iscsi::ProbeOptions o = config.options;
    o.max_in_flight = static_cast<std::size_t>(cap);
    const Run run = timed_probe(refused.targets, o, lab.pid());
    checks.check(refused, run, iscsi::ProbeOutcome::unreachable);
    series.wall.push_back(run.wall_ms);
    series.tgtd_cpu.push_back(run.tgtd.cpu_ms);
    series.peak.push_back(static_cast<double>(run.stats.peak_in_flight));
    if (!config.black_hole()) return;
    iscsi::ProbeOptions bo = config.black_hole_options;
    bo.max_in_flight = static_cast<std::size_t>(cap);
    const Layout l = black_hole_layout(lab, refused);
    const Run bh = timed_probe(l.targets, bo, lab.pid());
    checks.check(l, bh, iscsi::ProbeOutcome::timeout);
    series.black_hole_wall.push_back(bh.wall_ms);
}

// In-flight cap sweep: concurrent runs only, each round starting at the next cap so no cap always runs first.
Json::Value cap_sweep(testing::TgtdLab &lab, const Layout &refused, const Config &config, OutcomeCheck &checks) {
    const std::vector<int> &caps = config.cap_sweep;
    std::map<int, CapSeries> by_cap;
    for (int r = 0; r < config.rounds; ++r) {
        for (std::size_t k = 0; k < caps.size(); ++k) {
            const int cap = caps[(k + static_cast<std::size_t>(r)) % caps.size()];
            cap_run(lab, refused, config, cap, checks, by_cap[cap]);
        }
    }
    Json::Value out(Json::arrayValue);
    for (const int cap : caps) {
        const CapSeries &s = by_cap[cap];
        Json::Value row(Json::objectValue);
        row["max_in_flight"] = cap;
        row["concurrent_ms"] = summary(s.wall);
        row["tgtd_cpu_ms"] = summary(s.tgtd_cpu);
        row["peak_in_flight"] = summary(s.peak);
        if (!s.black_hole_wall.empty()) row["black_hole_concurrent_ms"] = summary(s.black_hole_wall);
        out.append(row);
    }
    return out;
}

Json::Value refused_json(const RefusedSeries &s) {
    std::vector<double> ratio_slowest, ratio_sequential;
    for (std::size_t r = 0; r < s.concurrent_ms.size(); ++r) {
        ratio_slowest.push_back(s.concurrent_ms[r] / s.slowest_single_ms[r]);
        ratio_sequential.push_back(s.sequential_total_ms[r] / s.concurrent_ms[r]);
    }
    Json::Value out(Json::objectValue);
    out["max_in_flight"] = static_cast<Json::UInt64>(s.applied_cap);
    out["concurrent_ms"] = summary(s.concurrent_ms);
    out["sequential_total_ms"] = summary(s.sequential_total_ms);
    out["slowest_single_ms"] = summary(s.slowest_single_ms);
    out["single_ms"] = summary(s.singles_all);
    out["ratio_concurrent_to_slowest_single"] = summary(ratio_slowest);
    out["speedup_sequential_to_concurrent"] = summary(ratio_sequential);
    // Where the concurrent time goes: tgtd's main thread CPU (it does every login), its wait for a CPU, ours.
    out["tgtd_cpu_concurrent_ms"] = summary(s.tgtd_cpu_conc);
    out["tgtd_process_cpu_concurrent_ms"] = summary(s.tgtd_process_cpu_conc);  // all threads, tick resolution
    out["tgtd_runqueue_wait_concurrent_ms"] = summary(s.tgtd_wait_conc);
    out["bench_cpu_concurrent_ms"] = summary(s.self_cpu_conc);
    out["tgtd_cpu_sequential_ms"] = summary(s.tgtd_cpu_seq);
    out["bench_cpu_sequential_ms"] = summary(s.self_cpu_seq);
    out["ratio_concurrent_to_tgtd_cpu"] = summary(s.ratio_tgtd);
    out["peak_in_flight"] = summary(s.peak_in_flight);
    out["wakeups_concurrent"] = summary(s.wakeups);
    out["outcomes"] = s.outcomes;
    return out;
}

}  // namespace
}  // namespace probe

// --targets N (250) --portals-per-target N (4) --dead-every N (10: every 10th portal entry does not answer)
// --rounds N (3) --timeout-ms N (3000, refused variant) --max-in-flight N (0: the prober's default)
// --black-hole-timeout-ms N (1000; 0 skips the black-hole variant) --black-hole-singles N (2 per round)
// --cap-sweep a,b,c (none): concurrent runs of both variants at these in-flight caps, rounds interleaved
int run_probe(const Args &args) {
    using namespace probe;
    const std::uint64_t fd_limit = raise_fd_limit();
    const Config config = parse_config(args);
    const std::string load_before = loadavg();

    testing::TgtdLab lab;
    const Setup setup = make_targets(lab, config);
    const Layout &refused = setup.refused;
    OutcomeCheck checks;
    RefusedSeries series;
    BlackHoleSeries black_holes;
    for (int r = 0; r < config.rounds; ++r) {  // the order alternates, each way of probing going first in turn
        series.add(refused_round(lab, refused, config, r % 2 == 0, checks));
        if (config.black_hole()) {
            black_holes.add(black_hole_round(lab, refused, config, r % 2 == 1, checks), refused.bad_count);
        }
    }
    const Json::Value sweep = config.cap_sweep.empty() ? Json::Value() : cap_sweep(lab, refused, config, checks);

    Json::Value out = refused_json(series);
    out["bench"] = "probe";
    out["portals"] = static_cast<Json::UInt64>(refused.targets.size());
    out["targets"] = config.targets;
    out["dead_portals"] = refused.bad_count;
    out["live_portals"] = static_cast<int>(refused.targets.size()) - refused.bad_count;
    out["fd_limit"] = static_cast<Json::UInt64>(fd_limit);
    out["timeout_ms"] = static_cast<Json::Int64>(config.options.timeout.count());
    out["setup_s"] = setup.setup_s;
    out["rounds"] = config.rounds;
    out["loadavg_before"] = load_before;
    out["loadavg_after"] = loadavg();
    out["wrong_outcomes"] = checks.wrong;
    if (config.black_hole()) out["black_hole"] = black_hole_json(black_holes, config, refused.bad_count);
    if (!config.cap_sweep.empty()) out["cap_sweep"] = sweep;
    std::printf("%s\n", to_json(out).c_str());
    return checks.wrong == 0 ? 0 : 1;
}

}  // namespace ivd::bench
