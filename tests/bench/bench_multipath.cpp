// Multipath connect latency on the simulated host (real tgtd, stand-in iscsiadm/multipath) with an injected
// login latency: 4 portals versus 1 portal, interleaved, same process.
#include "bench_common.hpp"
#include "bench_main.hpp"

#include "driver/driver.hpp"
#include "setup.hpp"
#include "tgtd_lab.hpp"

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>

namespace ivd::bench {

namespace {

namespace fs = std::filesystem;

constexpr const char *initiator = "iqn.2004-10.org.example:bench-multipath";
constexpr const char *connector =
    R"({"initiator":"iqn.2004-10.org.example:bench-multipath","host":"c1","ip":"127.0.0.1","multipath":true})";

// The lab's first n portals, all to the one target's LUN 1.
std::string connection_info(const testing::TgtdLab &lab, const std::string &iqn, std::size_t n) {
    Json::Value ci(Json::objectValue);
    ci["driver_volume_type"] = "iscsi";
    Json::Value &d = ci["data"];
    for (std::size_t i = 0; i < n; ++i) {
        d["target_portals"].append(lab.portals()[i].to_string());
        d["target_iqns"].append(iqn);
        d["target_luns"].append(1);
    }
    d["volume_id"] = "bench-mp";
    return to_json(ci);
}

// Processes started so far: every stand-in tool appends its argv to argv.log.
std::size_t tool_runs(const fs::path &dir) {
    std::ifstream in(dir / "argv.log");
    std::size_t n = 0;
    for (std::string line; std::getline(in, line);) ++n;
    return n;
}

// One timed connect, then its disconnect (not timed).
struct Cycle {
    double ms = 0;
    std::size_t tool_runs = 0;  // processes the connect started
    std::size_t paths = 0;      // in the map the connect reports; counted only when asked
};

Cycle cycle(Driver &driver, const fs::path &dir, const std::string &ci, bool count_paths) {
    Cycle c;
    const std::size_t runs_before = tool_runs(dir);
    const auto t0 = Clock::now();
    auto r = driver.connect_volume(ci.c_str(), connector, R"({"bus":"scsi","dev":"sdb"})", 0);
    c.ms = micros_since(t0) / 1000.0;
    if (!r) throw std::runtime_error("connect: " + r.error().message);
    c.tool_runs = tool_runs(dir) - runs_before;
    if (count_paths) c.paths = parse_json(*r)["paths"].size();
    auto d = driver.disconnect_volume(ci.c_str(), r->c_str(), 0);
    if (!d) throw std::runtime_error("disconnect: " + d.error().message);
    return c;
}

struct Connects {
    std::vector<double> one_ms, four_ms;
    std::size_t tool_runs_one = 0, tool_runs_four = 0;  // of the last connect of each
    std::size_t four_paths = 0;
};

// A discarded warm-up, then `reps` pairs of 1-portal and 4-portal connects, the order alternating.
Connects time_connects(Driver &driver, const fs::path &dir, const std::string &ci1, const std::string &ci4, int reps) {
    Connects s;
    auto one = [&] {
        const Cycle c = cycle(driver, dir, ci1, false);
        s.one_ms.push_back(c.ms);
        s.tool_runs_one = c.tool_runs;
    };
    auto four = [&] {
        const Cycle c = cycle(driver, dir, ci4, true);
        s.four_ms.push_back(c.ms);
        s.tool_runs_four = c.tool_runs;
        s.four_paths = c.paths;
    };
    one();
    s.one_ms.clear();
    for (int i = 0; i < reps; ++i) {
        if (i % 2 == 0) {
            one();
            four();
        } else {
            four();
            one();
        }
    }
    return s;
}

Json::Value multipath_json(const Connects &s, const SimulatedHost &sim, long latency, int reps) {
    std::vector<double> ratios;
    for (std::size_t i = 0; i < s.one_ms.size(); ++i) ratios.push_back(s.four_ms[i] / s.one_ms[i]);
    Json::Value out(Json::objectValue);
    out["bench"] = "multipath";
    out["login_latency_ms"] = static_cast<Json::Int64>(latency);
    out["reps"] = reps;
    out["paths_in_map"] = static_cast<Json::UInt64>(s.four_paths);
    out["sim_base"] = sim.base;
    out["sim_base_tmpfs"] = sim.tmpfs;
    out["tool_runs_per_connect_1_portal"] = static_cast<Json::UInt64>(s.tool_runs_one);
    out["tool_runs_per_connect_4_portals"] = static_cast<Json::UInt64>(s.tool_runs_four);
    out["connect_1_portal_ms"] = summary(s.one_ms);
    out["connect_4_portals_ms"] = summary(s.four_ms);
    out["ratio_4_to_1"] = summary(ratios);
    out["ratio_4_to_injected_login"] = median(s.four_ms) / static_cast<double>(latency);
    return out;
}

}  // namespace

// --reps N (10) --latency-ms N (50) --sim-base DIR (a tmpfs: /dev/shm when it is one, else the temp directory)
int run_multipath(const Args &args) {
    const int reps = static_cast<int>(args.number("reps", 10));
    const long latency = args.number("latency-ms", 50);
    // The simulated sysfs and /dev stand in for in-memory filesystems, so they live in memory too: on a disk
    // filesystem each of the stand-ins' many file operations costs about 0.5 ms here, under the simulated host's
    // one tree lock, which makes concurrent paths queue behind each other for a reason no real host has.
    const SimulatedHost sim(args.get("sim-base", ""), "ivd-bench-mp", initiator);
    std::ofstream(sim.dir / "faults" / "login_latency_ms") << latency;

    testing::TgtdLab lab;
    while (lab.portals().size() < 4) lab.add_portal();
    const std::string iqn = lab.make_iqn("mp");
    const int tid = lab.create_target(iqn);
    lab.add_lun(tid, 1);

    auto driver = sim.make_driver(5000, 3000);
    const Connects s =
        time_connects(*driver, sim.dir, connection_info(lab, iqn, 1), connection_info(lab, iqn, 4), reps);
    std::printf("%s\n", to_json(multipath_json(s, sim, latency, reps)).c_str());
    return 0;
}

}  // namespace ivd::bench
