// Benchmark 6: real-kernel multipath attach, ours versus os-brick 6.1. One guest of the real-kernel lab (the bench
// image: the lab image plus python3-os-brick, tests/vm_lab/build_bench_image.sh) against one tgtd here with two
// portals, CHAP on, one LUN. In the guest, tests/vm_lab/guest_bench.py alternates connect + disconnect through
// volume-host and the module with os-brick's ISCSIConnector(use_multipath=True), checks that both end with the same
// dm device (WWID) over the same paths and that nothing is left after each disconnect, and prints one console
// line per cycle (with each variant's time per step, steps_ms); this side collects them into one JSON document on
// stdout (progress and console on stderr), with per-step medians of both side by side.
#include "bench_common.hpp"
#include "bench_guest.hpp"
#include "bench_main.hpp"
#include "vm_lab_runner.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <iostream>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

namespace ivd::bench {

namespace {

namespace fs = std::filesystem;

Json::Value stats_ms(const Json::Value &cycles, const std::string &variant, const char *key) {
    std::vector<double> v;
    for (const auto &c : cycles) {
        if (c["variant"].asString() == variant && !c["warmup"].asBool() && !c["failed"].asBool()) {
            v.push_back(c[key].asDouble() * 1000.0);
        }
    }
    return summary(v);
}

// Leftover categories of a counted cycle that were still there 10 s after disconnect returned (empty: clean).
Json::Value persistent_leftovers(const Json::Value &cycles, const std::string &variant) {
    Json::Value out(Json::objectValue);
    for (const auto &c : cycles) {
        if (c["variant"].asString() != variant || c["warmup"].asBool()) continue;
        const Json::Value &left = c["left_after_10s"];
        for (const auto &k : left.getMemberNames()) out[k] = out.get(k, 0).asInt() + 1;
        if (c["failed"].asBool()) out["failed_cycles"] = out.get("failed_cycles", 0).asInt() + 1;
    }
    return out;
}

// Per step, both variants' medians over the counted cycles (guest_bench.py's steps_ms: the same step names for ours
// and os-brick, documented there), connect then disconnect: [{phase, step, ours_ms, osbrick_ms, ratio}, ...].
Json::Value step_medians(const Json::Value &cycles) {
    static const std::map<std::string, std::vector<std::string>> order{
        {"connect", {"prepare", "login", "scan", "device", "wwid", "mp_add", "paths", "map", "ready", "total", "call",
                     "sleep", "sleep_all"}},
        {"disconnect", {"find", "flush", "remove", "remove_wait", "logout", "rest", "total", "call", "sleep",
                        "sleep_all"}}};
    Json::Value out(Json::arrayValue);
    for (const char *phase : {"connect", "disconnect"}) {
        std::vector<std::string> names = order.at(phase);
        for (const auto &c : cycles) {  // a step the list does not know yet goes last, not lost
            for (const auto &n : c["steps_ms"][phase].getMemberNames()) {
                if (std::find(names.begin(), names.end(), n) == names.end()) names.push_back(n);
            }
        }
        for (const auto &name : names) {
            Json::Value row(Json::objectValue);
            row["phase"] = phase;
            row["step"] = name;
            for (const char *variant : {"ours", "osbrick"}) {
                std::vector<double> v;
                for (const auto &c : cycles) {
                    const Json::Value &ms = c["steps_ms"][phase][name];
                    if (c["variant"].asString() == variant && !c["warmup"].asBool() && !c["failed"].asBool() &&
                        ms.isNumeric()) {
                        v.push_back(ms.asDouble());
                    }
                }
                row[std::string(variant) + "_n"] = static_cast<Json::UInt64>(v.size());
                row[std::string(variant) + "_ms"] = v.empty() ? Json::Value() : Json::Value(median(v));
            }
            if (row["ours_ms"].isNumeric() && row["osbrick_ms"].isNumeric() && row["ours_ms"].asDouble() > 0) {
                row["ratio"] = row["osbrick_ms"].asDouble() / row["ours_ms"].asDouble();
            }
            if (row["ours_n"].asUInt64() + row["osbrick_n"].asUInt64() > 0) out.append(row);
        }
    }
    return out;
}

Json::Value at_return_leftovers(const Json::Value &cycles, const std::string &variant) {
    Json::Value out(Json::objectValue);
    for (const auto &c : cycles) {
        if (c["variant"].asString() != variant || c["warmup"].asBool()) continue;
        for (const auto &k : c["left_at_return"].getMemberNames()) out[k] = out.get(k, 0).asInt() + 1;
    }
    return out;
}

}  // namespace

// --rounds N (5) --warmup N (1) --accel tcg|kvm (tcg, as the lab: a stock guest kernel does not run under every
// /dev/kvm, e.g. not under a PVM host) --deadline-s N --console FILE (the redacted guest console)
int run_osbrick(const Args &args) {
    using namespace ivd::vmlab;
    const int rounds = static_cast<int>(args.number("rounds", 5));
    const int warmup = static_cast<int>(args.number("warmup", 1));
    const std::string accel = args.get("accel", "tcg");
    // Boot plus, per cycle under TCG, up to a minute (os-brick alone waits up to 10 s for a dm).
    const int deadline_s = static_cast<int>(args.number("deadline-s", 240 + (rounds + warmup) * 2 * 90));
    const BenchImage image = bench_image("osbrick");

    // tgtd on 127.0.0.1 (the guest's 10.0.2.2): two portals, one CHAP target, LUN 1.
    testing::TgtdLab lab(testing::TgtdLabOptions{.address = "127.0.0.1"});
    const auto p1 = lab.portal();
    const auto p2 = lab.add_portal();
    const std::string iqn = lab.make_iqn("osbrick");
    const int tid = lab.create_target(iqn);
    lab.add_lun(tid, 1);
    const std::string user = "bench-user";
    std::string password = random_password();
    lab.add_account(user, password);
    lab.bind_account(tid, user);

    Stage stage;
    stage_guest_bench(stage.dir);
    write_file(stage.dir / "lab.env",
               fmt::format("PORTAL1=10.0.2.2:{}\nPORTAL2=10.0.2.2:{}\nIQN={}\n"
                           "INITIATOR=iqn.2003-01.org.ivd-lab:osbrick-guest\nROUNDS={}\nWARMUP={}\n",
                           p1.port, p2.port, iqn, rounds, warmup));
    write_file(stage.dir / "ci-lun1.json", connection_info(p1, p2, iqn, 1, user, password));

    BenchLines lines(password);
    const GuestOptions options{.image = image.dir, .stage = stage.dir, .deadline_s = deadline_s, .accel = accel,
                         .secret = password, .echo = &std::cerr};
    const GuestRun run = run_bench_guest(options, lines, args.get("console", ""));
    const Json::Value cycles = lines.all("cycle"), guest_summary = lines.last("summary");
    Json::Value out = guest_run_fields(options, image, run);
    out["rounds"] = rounds;
    out["warmup"] = warmup;
    out["setup"] = lines.last("setup");
    out["cycles"] = cycles;
    out["guest_summary"] = guest_summary;
    out["ours_debug_log"] = lines.last("diag");  // one extra untimed cycle of ours at debug level, lines stamped in seconds
    out["errors"] = lines.errors();
    for (const char *variant : {"ours", "osbrick"}) {
        Json::Value &v = out[variant];
        v["connect_ms"] = stats_ms(cycles, variant, "connect_s");
        v["disconnect_ms"] = stats_ms(cycles, variant, "disconnect_s");
        v["cycle_ms"] = stats_ms(cycles, variant, "cycle_s");
        v["left_at_return"] = at_return_leftovers(cycles, variant);
        v["left_after_10s"] = persistent_leftovers(cycles, variant);
    }
    // Paired ratio: os-brick's cycle over ours in the same round (the order alternates per round).
    std::map<int, std::map<std::string, double>> by_round;
    for (const auto &c : cycles) {
        if (!c["warmup"].asBool() && !c["failed"].asBool()) by_round[c["round"].asInt()][c["variant"].asString()] = c["cycle_s"].asDouble();
    }
    std::vector<double> ratios;
    Json::Value per_round(Json::arrayValue);
    for (const auto &[r, m] : by_round) {
        if (m.contains("ours") && m.contains("osbrick") && m.at("ours") > 0) {
            ratios.push_back(m.at("osbrick") / m.at("ours"));
            per_round.append(ratios.back());
        }
    }
    // Where each variant's connect and disconnect spend their time, step by step, in the same cycles.
    out["steps_ms"] = step_medians(cycles);
    out["ratio_osbrick_to_ours_per_round"] = per_round;
    out["ratio_osbrick_to_ours"] = summary(ratios);
    out["target_ratio"] = 3.0;
    const bool complete = run.done && !guest_summary.isNull() && static_cast<int>(ratios.size()) == rounds;
    out["complete"] = complete;
    out["same_device_and_paths"] = guest_summary.get("same_device_and_paths", false);
    out["clean"] = out["ours"]["left_after_10s"].empty() && out["osbrick"]["left_after_10s"].empty();
    out["met"] = complete && !ratios.empty() && median(ratios) >= 3.0 && out["same_device_and_paths"].asBool() &&
                 out["clean"].asBool();
    std::cout << to_json(out, true) << "\n";
    ::explicit_bzero(password.data(), password.size());
    return complete ? 0 : 1;
}

}  // namespace ivd::bench
