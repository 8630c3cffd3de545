// Concurrency on the host (multipath) path, on the simulated host: volumes share targets, so sessions are
// shared, kept and logged out while other volumes of the same target come and go.
#include "concurrency_support.hpp"
#include "setup.hpp"

#include <gtest/gtest.h>

#include <stdlib.h>
#include <unistd.h>

#include <iostream>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace {

using namespace ivd::concurrency;

// ---- The host path on the simulated host ----

TEST(Concurrency, HostPathSimulatedHostSharedTargets) {
    const int volumes = env_int("IVD_CONC_HOST_VOLUMES", 96);
    const int threads = env_int("IVD_CONC_HOST_THREADS", 24);
    constexpr int targets = 3;  // the last one with CHAP
    constexpr int hot_repeats = 3;
    auto is_hot = [](int i) { return i % 8 == 0; };

    const auto setup_start = Clock::now();
    TgtdLab tgtd;
    const TgtdPortal p0 = tgtd.portal();
    const TgtdPortal p1 = tgtd.add_portal();
    const TgtdPortal dead = tgtd.dead_portal();
    tgtd.add_account(chap_user, chap_password);
    std::vector<int> tids;
    std::vector<std::string> iqns;
    const int luns_per_target = (volumes + targets - 1) / targets;
    for (int t = 0; t < targets; ++t) {
        iqns.push_back(tgtd.make_iqn(target_name(t)));
        tids.push_back(tgtd.create_target(iqns.back()));
        if (t == targets - 1) tgtd.bind_account(tids.back(), chap_user);
        for (int l = 1; l <= luns_per_target; ++l) tgtd.add_lun(tids.back(), l, 1ull << 20);
    }
    std::string templ = (fs::temp_directory_path() / "ivd-concurrency-XXXXXX").string();
    ASSERT_NE(::mkdtemp(templ.data()), nullptr);
    const fs::path dir = templ;
    const auto sim = ivd::simhost::prepare_simulated_host(dir.string(), initiator);
    const double setup_s = std::chrono::duration<double>(Clock::now() - setup_start).count();

    // One LU per volume (a host path volume owns its block device); volumes of a target share its sessions.
    // Odd and hot volumes list a dead third portal, so their connect logs "attached with 2 of 3 paths" under
    // the volume lock after the map is built.
    struct HostVolume {
        std::string id;
        bool hot = false;
        bool degraded = false;
        std::string ci;
    };
    const std::string run = "conc-host-" + std::to_string(::getpid()) + "-";
    std::vector<HostVolume> vols(static_cast<std::size_t>(volumes));
    for (int i = 0; i < volumes; ++i) {
        HostVolume &v = vols[static_cast<std::size_t>(i)];
        v.hot = is_hot(i);
        v.degraded = v.hot || i % 2 == 1;
        v.id = run + std::to_string(i) + (v.degraded ? "-late" : "");
        const int target = i % targets;
        const int lun = 1 + i / targets;
        Json::Value ci(Json::objectValue);
        ci["driver_volume_type"] = "iscsi";
        Json::Value &d = ci["data"];
        std::vector<TgtdPortal> ps{p0, p1};
        if (v.degraded) ps.push_back(dead);
        for (const auto &p : ps) {
            d["target_portals"].append(p.to_string());
            d["target_iqns"].append(iqns[static_cast<std::size_t>(target)]);
            d["target_luns"].append(lun);
        }
        d["volume_id"] = v.id;
        if (target == targets - 1) {
            d["auth_method"] = "CHAP";
            d["auth_username"] = chap_user;
            d["auth_password"] = chap_password;
        }
        v.ci = compact(ci);
    }

    HostLog log;
    Failures failures;
    // Which non-hot volume holds each multipath device now: two volumes must never get the same one.
    std::mutex held_mutex;
    std::map<std::string, int> held;
    {
        Module module(log);
        Json::Value config(Json::objectValue);
        for (const auto &[k, v] : sim) config[k] = v;
        module.create(config);
        const std::string connector =
            std::string(R"({"initiator":")") + initiator + R"(","host":"compute-1","ip":"127.0.0.1","multipath":true})";
        const std::string disk = R"({"bus":"virtio","dev":"vdb"})";

        auto job = [&](int i, Slot &slot, Timings &timings) {
            const HostVolume &v = vols[static_cast<std::size_t>(i)];
            std::string info_text;
            const int32_t rc =
                timed(slot, i, 1, timings.connect_ms, [&] { return module.connect(v.ci, connector, disk, &info_text); });
            settle_late_mark(log, log.exclusion, rc == VD_OK, failures, v.id);
            if (rc != VD_OK) return failures.add(v.id + ": connect failed: " + info_text);
            if (info_text.find(chap_password) != std::string::npos) failures.add(v.id + ": device_info holds the password");
            const Json::Value info = parse(info_text);
            const std::string path = info["path"].asString();
            auto expect = [&](bool ok, const std::string &what) {
                if (!ok) failures.add(v.id + ": " + what + " in " + (info_text.find(chap_password) == std::string::npos ? info_text : ""));
            };
            expect(info["type"].asString() == "block" && info["volume_id"].asString() == v.id, "wrong type or volume");
            expect(fs::path(path).parent_path() == dir / "dev" && fs::path(path).filename().string().starts_with("dm-"),
                   "not a multipath device of the simulated host");
            expect(info["paths"].size() == 2u, "not two paths");
            expect(info["failed_portals"].size() == (v.degraded ? 1u : 0u), "wrong failed portals");
            expect(info["disk_xml"].asString().find(path) != std::string::npos, "disk_xml names another device");
            if (!v.hot) {
                const std::lock_guard<std::mutex> lock(held_mutex);
                auto [it, fresh] = held.try_emplace(path, i);
                if (!fresh) failures.add(v.id + ": got " + path + ", which volume " + std::to_string(it->second) + " holds");
            }

            if (!v.hot) {
                const std::lock_guard<std::mutex> lock(held_mutex);
                if (auto it = held.find(path); it != held.end() && it->second == i) held.erase(it);
            }
            std::string error;
            const int32_t drc =
                timed(slot, i, 2, timings.disconnect_ms, [&] { return module.disconnect(v.ci, info_text, &error); });
            if (drc != VD_OK) failures.add(v.id + ": disconnect failed: " + error);
        };

        const std::vector<int> jobs = job_list(volumes, is_hot, hot_repeats);
        const auto start = Clock::now();
        const Timings timings = run_jobs(jobs, threads, job);
        const double total_s = std::chrono::duration<double>(Clock::now() - start).count();
        std::cout << "[concurrency] host path (simulated host): " << volumes << " volumes on " << targets
                  << " targets x 2 portals, " << threads << " threads (setup " << setup_s << " s)\n"
                  << "[concurrency]   " << jobs.size() << " connect+disconnect pairs in " << total_s << " s\n"
                  << "[concurrency]   connect:    " << percentiles(timings.connect_ms) << "\n"
                  << "[concurrency]   disconnect: " << percentiles(timings.disconnect_ms) << std::endl;
    }

    EXPECT_EQ(failures.count(), 0) << failures.report();
    EXPECT_EQ(log.exclusion.violations(), 0) << [&] {
        std::string s;
        for (const auto &e : log.exclusion.examples()) s += "  " + e + "\n";
        return s;
    }();
    EXPECT_GE(log.exclusion.entries(), 2u * static_cast<std::uint64_t>(volumes));
    EXPECT_EQ(log.secret_leaks.load(), 0) << "a log message carried the CHAP password";
    EXPECT_EQ(count_entries(dir / "sys/class/iscsi_session"), 0u) << "simulated sessions left";
    EXPECT_EQ(count_entries(dir / "etc/iscsi/nodes"), 0u) << "node records left";
    std::size_t maps = 0;
    for (const auto &e : fs::directory_iterator(dir / "dev")) maps += e.path().filename().string().starts_with("dm-");
    EXPECT_EQ(maps, 0u) << "multipath maps left";
    EXPECT_EQ(sessions_after_settling(tgtd, tids), 0) << "sessions left on tgtd";

    ivd::simhost::stop_simulated_sessions(dir.string());
    std::error_code ec;
    fs::remove_all(dir, ec);
}

}  // namespace
