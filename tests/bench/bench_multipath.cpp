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
constexpr const char *initiator = "iqn.2004-10.org.example:bench-multipath";
}  // namespace

// --reps N (10) --latency-ms N (50) --sim-base DIR (a tmpfs: /dev/shm when it is one, else the temp directory)
int run_multipath(const Args &args) {
    namespace fs = std::filesystem;
    const int reps = static_cast<int>(args.number("reps", 10));
    const long latency = args.number("latency-ms", 50);
    // The simulated sysfs and /dev stand in for in-memory filesystems, so they live in memory too: on a disk
    // filesystem each of the stand-ins' many file operations costs about 0.5 ms here, under the simulated host's
    // one tree lock, which makes concurrent paths queue behind each other for a reason no real host has.
    const SimulatedHost sim(args.get("sim-base", ""), "ivd-bench-mp", initiator);
    const fs::path &dir = sim.dir;
    std::ofstream(dir / "faults" / "login_latency_ms") << latency;

    testing::TgtdLab lab;
    while (lab.portals().size() < 4) lab.add_portal();
    const std::string iqn = lab.make_iqn("mp");
    const int tid = lab.create_target(iqn);
    lab.add_lun(tid, 1);

    auto driver = sim.make_driver(5000, 3000);

    auto ci_for = [&](std::size_t n) {
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
    };
    const std::string connector = R"({"initiator":"iqn.2004-10.org.example:bench-multipath","host":"c1","ip":"127.0.0.1","multipath":true})";
    const std::string ci1 = ci_for(1), ci4 = ci_for(4);
    std::vector<double> one_ms, four_ms;
    std::size_t four_paths = 0;
    // Processes one connect starts: every stand-in tool appends its argv to argv.log.
    auto tool_runs = [&] {
        std::ifstream in(dir / "argv.log");
        std::size_t n = 0;
        for (std::string line; std::getline(in, line);) ++n;
        return n;
    };
    std::size_t spawns_one = 0, spawns_four = 0;
    auto cycle = [&](const std::string &ci, std::vector<double> &into, bool count_paths) {
        const std::size_t runs_before = tool_runs();
        const auto t0 = Clock::now();
        auto r = driver->connect_volume(ci.c_str(), connector.c_str(), R"({"bus":"scsi","dev":"sdb"})", 0);
        const double ms = micros_since(t0) / 1000.0;
        if (!r) throw std::runtime_error("connect: " + r.error().message);
        into.push_back(ms);
        (count_paths ? spawns_four : spawns_one) = tool_runs() - runs_before;
        if (count_paths) four_paths = parse_json(*r)["paths"].size();
        auto d = driver->disconnect_volume(ci.c_str(), r->c_str(), 0);
        if (!d) throw std::runtime_error("disconnect: " + d.error().message);
    };
    cycle(ci1, one_ms, false);  // warm-up, discarded
    one_ms.clear();
    for (int i = 0; i < reps; ++i) {
        if (i % 2 == 0) {
            cycle(ci1, one_ms, false);
            cycle(ci4, four_ms, true);
        } else {
            cycle(ci4, four_ms, true);
            cycle(ci1, one_ms, false);
        }
    }
    std::vector<double> ratios;
    for (std::size_t i = 0; i < one_ms.size(); ++i) ratios.push_back(four_ms[i] / one_ms[i]);
    Json::Value out(Json::objectValue);
    out["bench"] = "multipath";
    out["login_latency_ms"] = static_cast<Json::Int64>(latency);
    out["reps"] = reps;
    out["paths_in_map"] = static_cast<Json::UInt64>(four_paths);
    out["sim_base"] = sim.base;
    out["sim_base_tmpfs"] = sim.tmpfs;
    out["tool_runs_per_connect_1_portal"] = static_cast<Json::UInt64>(spawns_one);
    out["tool_runs_per_connect_4_portals"] = static_cast<Json::UInt64>(spawns_four);
    out["connect_1_portal_ms"] = summary(one_ms);
    out["connect_4_portals_ms"] = summary(four_ms);
    out["ratio_4_to_1"] = summary(ratios);
    out["ratio_4_to_injected_login"] = median(four_ms) / static_cast<double>(latency);
    std::printf("%s\n", to_json(out).c_str());
    return 0;
}

}  // namespace ivd::bench
