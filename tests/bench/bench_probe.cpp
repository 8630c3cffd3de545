// Portal probing at scale: many portals (targets x loopback portals of one tgtd, some dead) probed at once by
// the async prober versus one at a time, interleaved, in the same process.
#include "bench_common.hpp"
#include "bench_main.hpp"

#include "iscsi/iscsi_probe.hpp"
#include "tgtd_lab.hpp"

#include <cstdio>
#include <stdexcept>

namespace ivd::bench {

// --targets N (250) --portals-per-target N (4) --dead-every N (10: every 10th portal entry is dead) --rounds N (3)
int run_probe(const Args &args) {
    const std::uint64_t fd_limit = raise_fd_limit();
    const int n_targets = static_cast<int>(args.number("targets", 250));
    const int per = static_cast<int>(args.number("portals-per-target", 4));
    const int dead_every = static_cast<int>(args.number("dead-every", 10));
    const int rounds = static_cast<int>(args.number("rounds", 3));

    testing::TgtdLab lab;
    while (static_cast<int>(lab.portals().size()) < per) lab.add_portal();
    const testing::TgtdPortal dead = lab.dead_portal();
    std::vector<request::Target> targets;
    int dead_count = 0;
    const auto setup_start = Clock::now();
    for (int t = 0; t < n_targets; ++t) {
        const std::string iqn = lab.make_iqn(fmt::format("probe{}", t));
        const int tid = lab.create_target(iqn);
        lab.add_lun(tid, 1, 1ull << 20);
        for (int p = 0; p < per; ++p) {
            const int index = t * per + p;
            const bool is_dead = dead_every > 0 && index % dead_every == dead_every - 1;
            const testing::TgtdPortal &tp = is_dead ? dead : lab.portals()[static_cast<std::size_t>(p)];
            dead_count += is_dead ? 1 : 0;
            targets.push_back(request::Target{request::Portal{tp.host, tp.port, false}, iqn, 1});
        }
    }
    const double setup_s = micros_since(setup_start) / 1e6;
    iscsi::ProbeOptions options;
    options.initiator = "iqn.1993-08.org.debian:01:bench-probe";
    options.timeout = std::chrono::milliseconds(args.number("timeout-ms", 3000));

    std::vector<double> concurrent_ms, sequential_total_ms, slowest_single_ms;
    std::vector<double> singles_all;  // every single probe of every round, ms
    Json::Value outcomes(Json::objectValue);
    auto run_concurrent = [&] {
        const auto t0 = Clock::now();
        const auto results = iscsi::probe_targets(targets, options);
        concurrent_ms.push_back(micros_since(t0) / 1000.0);
        int healthy = 0;
        for (const auto &r : results) healthy += r.outcome == iscsi::ProbeOutcome::healthy ? 1 : 0;
        outcomes["concurrent_healthy"] = healthy;
    };
    auto run_sequential = [&] {
        double slowest = 0;
        int healthy = 0;
        const auto t0 = Clock::now();
        for (const auto &t : targets) {
            const auto s0 = Clock::now();
            const auto results = iscsi::probe_targets({t}, options);
            const double ms = micros_since(s0) / 1000.0;
            singles_all.push_back(ms);
            slowest = std::max(slowest, ms);
            healthy += results.at(0).outcome == iscsi::ProbeOutcome::healthy ? 1 : 0;
        }
        sequential_total_ms.push_back(micros_since(t0) / 1000.0);
        slowest_single_ms.push_back(slowest);
        outcomes["sequential_healthy"] = healthy;
    };
    for (int r = 0; r < rounds; ++r) {
        if (r % 2 == 0) {
            run_concurrent();
            run_sequential();
        } else {
            run_sequential();
            run_concurrent();
        }
    }
    std::vector<double> ratio_slowest, ratio_sequential;
    for (int r = 0; r < rounds; ++r) {
        ratio_slowest.push_back(concurrent_ms[r] / slowest_single_ms[r]);
        ratio_sequential.push_back(sequential_total_ms[r] / concurrent_ms[r]);
    }
    Json::Value out(Json::objectValue);
    out["bench"] = "probe";
    out["portals"] = static_cast<Json::UInt64>(targets.size());
    out["targets"] = n_targets;
    out["dead_portals"] = dead_count;
    out["fd_limit"] = static_cast<Json::UInt64>(fd_limit);
    out["setup_s"] = setup_s;
    out["rounds"] = rounds;
    out["concurrent_ms"] = summary(concurrent_ms);
    out["sequential_total_ms"] = summary(sequential_total_ms);
    out["slowest_single_ms"] = summary(slowest_single_ms);
    out["single_ms"] = summary(singles_all);
    out["ratio_concurrent_to_slowest_single"] = summary(ratio_slowest);
    out["speedup_sequential_to_concurrent"] = summary(ratio_sequential);
    out["outcomes"] = outcomes;
    std::printf("%s\n", to_json(out).c_str());
    return 0;
}

}  // namespace ivd::bench
