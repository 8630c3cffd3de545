// Benchmark 6b (guestscale): in the real-kernel lab's guest, the attach of the next volume with N volumes attached
// already, ours and os-brick 6.1 in turn in the same guest run (issue #18 item 1, its real-kernel half). One tgtd
// here with two portals and one CHAP target per volume (LUN 1): every attached volume adds two sessions, two
// SCSI disks and a dm map in the guest. tests/vm_lab/guest_scale.py attaches the volumes level by level (ours),
// and at each level alternates both variants' connect + disconnect of the measured volume; this side collects
// the console lines into one JSON document on stdout (progress and console on stderr).
#include "bench_common.hpp"
#include "bench_guest.hpp"
#include "bench_main.hpp"
#include "vm_lab_runner.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cstring>
#include <iostream>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

namespace ivd::bench {

namespace {

std::vector<int> parse_levels(const std::string &text) {
    std::vector<int> levels;
    std::istringstream in(text);
    for (std::string item; std::getline(in, item, ',');) levels.push_back(std::stoi(item));
    if (levels.empty() || std::any_of(levels.begin(), levels.end(), [](int n) { return n < 0 || n > 200; })) {
        throw std::runtime_error("--levels: comma-separated volume counts from 0 to 200, e.g. 0,10,30");
    }
    std::sort(levels.begin(), levels.end());
    return levels;
}

// Per level, both variants' connect and disconnect medians over the counted cycles, milliseconds.
Json::Value level_medians(const Json::Value &cycles, const std::vector<int> &levels) {
    Json::Value out(Json::arrayValue);
    for (const int level : levels) {
        Json::Value row(Json::objectValue);
        row["level"] = level;
        for (const char *variant : {"ours", "osbrick"}) {
            for (const char *key : {"connect_s", "disconnect_s"}) {
                std::vector<double> v;
                for (const auto &c : cycles) {
                    if (c["level"].asInt() == level && c["variant"].asString() == variant && !c["failed"].asBool()) {
                        v.push_back(c[key].asDouble() * 1000.0);
                    }
                }
                row[fmt::format("{}_{}", variant, key)] = summary(v);
            }
        }
        out.append(row);
    }
    return out;
}

double median_of(const Json::Value &row, const char *key) { return row[key]["median"].asDouble(); }

// Each variant's connect at the last level over its connect at the first, and os-brick's over ours per level.
void add_growth(Json::Value &out) {
    const Json::Value &first = out["per_level_ms"][0], &last = out["per_level_ms"][out["per_level_ms"].size() - 1];
    for (const char *variant : {"ours", "osbrick"}) {
        const std::string key = fmt::format("{}_connect_s", variant);
        if (median_of(first, key.c_str()) > 0) {
            out["connect_growth"][variant] = median_of(last, key.c_str()) / median_of(first, key.c_str());
        }
    }
    for (const Json::Value &row : out["per_level_ms"]) {
        if (median_of(row, "ours_connect_s") > 0) {
            out["connect_osbrick_to_ours"].append(median_of(row, "osbrick_connect_s") / median_of(row, "ours_connect_s"));
        }
    }
}

// The counted cycles that did not fail, and the cycles that left or removed anything of the host's (guest_scale.py
// records what differs from the state before the cycle as left_* / gone_* keys).
std::pair<int, int> count_cycles(const Json::Value &cycles) {
    int counted = 0, changed_host = 0;
    for (const auto &c : cycles) {
        counted += c["level"].asInt() >= 0 && !c["failed"].asBool() ? 1 : 0;
        const auto keys = c.getMemberNames();
        changed_host += std::any_of(keys.begin(), keys.end(), [](const std::string &k) {
            return k.rfind("left_", 0) == 0 || k.rfind("gone_", 0) == 0;
        }) ? 1 : 0;
    }
    return {counted, changed_host};
}

// Targets 0..volumes (one 4 MiB LUN each, CHAP bound) and their connection_info files in the stage.
void stage_volumes(testing::TgtdLab &lab, const std::filesystem::path &stage, int volumes, const std::string &user,
                   const std::string &password) {
    const auto p1 = lab.portal();
    const auto p2 = lab.add_portal();
    for (int i = 0; i <= volumes; ++i) {
        const std::string iqn = lab.make_iqn(fmt::format("scale{}", i));
        const int tid = lab.create_target(iqn);
        lab.add_lun(tid, 1, 4ull << 20);
        lab.bind_account(tid, user);
        vmlab::write_file(stage / fmt::format("ci-vol{}.json", i),
                          vmlab::connection_info(p1, p2, iqn, 1, user, password, "", fmt::format("scale-vol{}", i)));
    }
}

}  // namespace

// --levels 0,10,30 (volumes attached before the measured cycles) --rounds N (3 per level) --accel tcg|kvm
// --deadline-s N --console FILE (the redacted guest console)
int run_guest_scale(const Args &args) {
    using namespace ivd::vmlab;
    const std::vector<int> levels = parse_levels(args.get("levels", "0,10,30"));
    const int rounds = static_cast<int>(args.number("rounds", 3));
    const std::string accel = args.get("accel", "tcg");
    const int volumes = levels.back();
    // Boot, each attached volume's attach and detach (~4 s under TCG), each measured cycle (up to a minute).
    const int deadline_s = static_cast<int>(
        args.number("deadline-s", 300 + volumes * 12 + static_cast<int>(levels.size() + 1) * rounds * 2 * 60));
    const BenchImage image = bench_image("guestscale");

    // tgtd on 127.0.0.1 (the guest's 10.0.2.2): two portals; target i holds volume i (0: the measured one).
    testing::TgtdLab lab(testing::TgtdLabOptions{.address = "127.0.0.1"});
    const std::string user = "bench-user";
    std::string password = random_password();
    lab.add_account(user, password);
    Stage stage;
    stage_guest_bench(stage.dir, {"guest_scale.py"});
    stage_volumes(lab, stage.dir, volumes, user, password);
    write_file(stage.dir / "lab.env",
               fmt::format("INITIATOR=iqn.2003-01.org.ivd-lab:scale-guest\nLEVELS={}\nROUNDS={}\n",
                           fmt::join(levels, " "), rounds));

    BenchLines lines(password);
    const GuestOptions options{.image = image.dir, .stage = stage.dir, .deadline_s = deadline_s, .accel = accel,
                               .memory_mb = 1536, .secret = password, .echo = &std::cerr};
    const GuestRun run = run_bench_guest(options, lines, args.get("console", ""));
    const Json::Value cycles = lines.all("cycle"), guest_summary = lines.last("summary");
    Json::Value out = guest_run_fields(options, image, run);
    out["rounds"] = rounds;
    out["setup"] = lines.last("setup");
    out["levels"] = lines.all("level");
    out["cycles"] = cycles;
    out["guest_summary"] = guest_summary;
    out["errors"] = lines.errors();
    out["per_level_ms"] = level_medians(cycles, levels);
    add_growth(out);
    out["target_growth"] = 1.2;
    const int expected = static_cast<int>(levels.size()) * rounds * 2;
    const auto [counted, changed_others] = count_cycles(cycles);
    out["cycles_that_changed_the_host"] = changed_others;
    out["complete"] = run.done && !guest_summary.isNull() && counted == expected;
    out["met"] = out["complete"].asBool() && changed_others == 0 && !out["password_on_console"].asBool() &&
                 out["connect_growth"]["ours"].asDouble() <= 1.2;
    std::cout << to_json(out, true) << "\n";
    ::explicit_bzero(password.data(), password.size());
    return out["complete"].asBool() ? 0 : 1;
}

}  // namespace ivd::bench
