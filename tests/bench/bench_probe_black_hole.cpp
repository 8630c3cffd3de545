// The probe bench's black-hole variant: every bad portal accepts TCP and never answers, so its probe ends only at
// the timeout. Per round: one concurrent run, the live portals one at a time, and a few black holes one at a time
// (each takes the whole timeout, so all of them one at a time would take black holes x timeout).
#include "bench_probe.hpp"

#include <algorithm>
#include <optional>

namespace ivd::bench::probe {

namespace {

Run concurrent_run(testing::TgtdLab &lab, const Layout &refused, const Config &config, OutcomeCheck &checks) {
    const Layout layout = black_hole_layout(lab, refused);
    Run run = timed_probe(layout.targets, config.black_hole_options, lab.pid());
    checks.check(layout, run, iscsi::ProbeOutcome::timeout);
    return run;
}

// Fills the round's one-at-a-time fields.
void singles(testing::TgtdLab &lab, const Layout &refused, const Config &config, OutcomeCheck &checks,
             BlackHoleRound &round) {
    const Layout layout = black_hole_layout(lab, refused);
    const iscsi::ProbeOptions &options = config.black_hole_options;
    const Sequential live = one_at_a_time(layout, options, false, iscsi::ProbeOutcome::timeout, lab.pid(), checks);
    round.live_total_ms = live.total_ms;
    round.slowest_single_ms = live.slowest_ms;
    int sampled = 0;
    for (std::size_t i = 0; i < layout.targets.size() && sampled < config.black_hole_singles; ++i) {
        if (!layout.bad[i]) continue;
        const Run run = timed_probe({layout.targets[i]}, options, 0);
        if (run.results.at(0).outcome != iscsi::ProbeOutcome::timeout) ++checks.wrong;
        round.holes_ms.push_back(run.wall_ms);
        round.slowest_single_ms = std::max(round.slowest_single_ms, run.wall_ms);
        ++sampled;
    }
}

}  // namespace

// Fresh black-hole listeners for every run: connections a run leaves in a listener's backlog must not turn
// the next run's black holes from "accepted, silent" into "SYN dropped".
Layout black_hole_layout(testing::TgtdLab &lab, const Layout &refused) {
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
}

BlackHoleRound black_hole_round(testing::TgtdLab &lab, const Layout &refused, const Config &config,
                                bool concurrent_first, OutcomeCheck &checks) {
    BlackHoleRound round;
    if (concurrent_first) round.concurrent = concurrent_run(lab, refused, config, checks);
    singles(lab, refused, config, checks, round);
    if (!concurrent_first) round.concurrent = concurrent_run(lab, refused, config, checks);
    return round;
}

void BlackHoleSeries::add(const BlackHoleRound &round, int black_holes) {
    concurrent_ms.push_back(round.concurrent.wall_ms);
    tgtd_cpu_ms.push_back(round.concurrent.tgtd.cpu_ms);
    outcomes = outcome_json(round.concurrent.outcomes);
    live_total_ms.push_back(round.live_total_ms);
    slowest_single_ms.push_back(round.slowest_single_ms);
    hole_single_ms.insert(hole_single_ms.end(), round.holes_ms.begin(), round.holes_ms.end());
    ratio.push_back(round.concurrent.wall_ms / round.slowest_single_ms);
    sequential_extrapolated_ms.push_back(round.live_total_ms + median(round.holes_ms) * black_holes);
}

Json::Value black_hole_json(const BlackHoleSeries &series, const Config &config, int black_holes) {
    Json::Value bh(Json::objectValue);
    bh["black_holes"] = black_holes;
    bh["timeout_ms"] = static_cast<Json::Int64>(config.black_hole_options.timeout.count());
    bh["concurrent_ms"] = summary(series.concurrent_ms);
    bh["tgtd_cpu_concurrent_ms"] = summary(series.tgtd_cpu_ms);
    bh["slowest_single_ms"] = summary(series.slowest_single_ms);
    bh["black_hole_single_ms"] = summary(series.hole_single_ms);
    bh["live_sequential_total_ms"] = summary(series.live_total_ms);
    // live portals measured one at a time + every black hole at the measured single black-hole time
    bh["sequential_total_ms_extrapolated"] = summary(series.sequential_extrapolated_ms);
    bh["ratio_concurrent_to_slowest_single"] = summary(series.ratio);
    bh["outcomes"] = series.outcomes;
    return bh;
}

}  // namespace ivd::bench::probe
