// Concurrency on the network path: 64 threads connect and disconnect 1,000 volumes through one loaded module,
// with real libvirt secrets and a real tgtd (probing on, a dead portal first for a third of the volumes).
#include "concurrency_support.hpp"
#include "libvirt_lab.hpp"

#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

namespace {

using namespace ivd::concurrency;

// ---- The network path ----

struct NetVolume {
    std::string id;        // "conc-<pid>-<i>[-late]"
    std::string iqn;
    int lun = 0;
    bool chap = false;
    bool hot = false;
    std::vector<std::string> portals;
    std::string expected_portal;
    std::string ci;        // connection_info JSON
};

TEST(Concurrency, NetworkPathManyThreadsOneModule) {
    const int volumes = env_int("IVD_CONC_VOLUMES", 1000);
    const int threads = env_int("IVD_CONC_THREADS", 64);
    const int luns_per_target = env_int("IVD_CONC_LUNS", 32);
    constexpr int targets = 4;  // two open, two with CHAP
    constexpr int hot_repeats = 4;
    auto is_hot = [](int i) { return i % 25 == 0; };

    const auto setup_start = Clock::now();
    ivd::testing::LibvirtLab libvirt(ivd::testing::LibvirtLabOptions{.start_domain = false});
    TgtdLab tgtd;
    const TgtdPortal p0 = tgtd.portal();
    const TgtdPortal p1 = tgtd.add_portal();
    const TgtdPortal p2 = tgtd.add_portal();
    const TgtdPortal dead = tgtd.dead_portal();
    tgtd.add_account(chap_user, chap_password);
    std::vector<int> tids;
    std::vector<std::string> iqns;
    for (int t = 0; t < targets; ++t) {
        iqns.push_back(tgtd.make_iqn(target_name(t)));
        tids.push_back(tgtd.create_target(iqns.back()));
        if (t >= 2) tgtd.bind_account(tids.back(), chap_user);
        for (int l = 1; l <= luns_per_target; ++l) tgtd.add_lun(tids.back(), l, 1ull << 20);
    }
    const double setup_s = std::chrono::duration<double>(Clock::now() - setup_start).count();

    // Volumes: target i%4, LUN from i/4 (so several volumes share each LU, target and portal); a third single
    // portal (no probing), a third three healthy portals, a third a dead portal first (the probe skips it). Hot
    // volumes are all of the last kind and use CHAP targets, so their calls share a real libvirt secret.
    const std::string run = "conc-" + std::to_string(::getpid()) + "-";
    const std::vector<TgtdPortal> live{p0, p1, p2};
    std::vector<NetVolume> vols(static_cast<std::size_t>(volumes));
    for (int i = 0; i < volumes; ++i) {
        NetVolume &v = vols[static_cast<std::size_t>(i)];
        v.hot = is_hot(i);
        const int target = v.hot ? 2 + (i / 25) % 2 : i % targets;
        const int kind = v.hot ? 2 : i % 3;
        v.iqn = iqns[static_cast<std::size_t>(target)];
        v.lun = 1 + (i / targets) % luns_per_target;
        v.chap = target >= 2;
        v.id = run + std::to_string(i) + (kind == 2 ? "-late" : "");
        if (kind == 0) {
            v.portals = {live[static_cast<std::size_t>(i % 3)].to_string()};
        } else {
            for (int k = 0; k < 3; ++k) v.portals.push_back(live[static_cast<std::size_t>((i + k) % 3)].to_string());
            if (kind == 2) v.portals[0] = dead.to_string();
        }
        v.expected_portal = kind == 2 ? v.portals[1] : v.portals[0];
        Json::Value ci(Json::objectValue);
        ci["driver_volume_type"] = "iscsi";
        Json::Value &d = ci["data"];
        for (const auto &p : v.portals) {
            d["target_portals"].append(p);
            d["target_iqns"].append(v.iqn);
            d["target_luns"].append(v.lun);
        }
        d["volume_id"] = v.id;
        if (v.chap) {
            d["auth_method"] = "CHAP";
            d["auth_username"] = chap_user;
            d["auth_password"] = chap_password;
        }
        v.ci = compact(ci);
    }

    // The test's own libvirt connection checks the secrets the driver made (libvirt connections are thread-safe).
    virSetErrorFunc(nullptr, ignore_libvirt_error);
    std::unique_ptr<virConnect, int (*)(virConnectPtr)> conn(virConnectOpen(libvirt.uri().c_str()), virConnectClose);
    ASSERT_NE(conn, nullptr);

    HostLog log;
    Failures failures;
    {
        Module module(log);
        Json::Value config(Json::objectValue);
        config["path"] = "network";
        config["qemu_iscsi"] = "true";  // nothing is attached here: QEMU's iSCSI driver is not needed
        config["libvirt_uri"] = libvirt.uri();
        config["probe_portals"] = "true";
        config["probe_timeout_ms"] = "15000";  // the dead portal refuses at once; a live one must not time out
        module.create(config);
        const std::string connector = std::string(R"({"initiator":")") + initiator + R"(","multipath":false})";
        const std::string disk = R"({"bus":"scsi","dev":"sdb"})";

        auto job = [&](int i, Slot &slot, Timings &timings) {
            const NetVolume &v = vols[static_cast<std::size_t>(i)];
            std::string info_text;
            const int32_t rc =
                timed(slot, i, 1, timings.connect_ms, [&] { return module.connect(v.ci, connector, disk, &info_text); });
            settle_late_mark(log, log.exclusion, rc == VD_OK, failures, v.id);
            if (rc != VD_OK) return failures.add(v.id + ": connect failed: " + info_text);
            if (info_text.find(chap_password) != std::string::npos) failures.add(v.id + ": device_info holds the password");
            const Json::Value info = parse(info_text);
            auto expect = [&](bool ok, const std::string &what) {
                if (!ok) failures.add(v.id + ": " + what + " in " + (info_text.find(chap_password) == std::string::npos ? info_text : ""));
            };
            expect(info["type"].asString() == "network" && info["attach_path"].asString() == "network", "wrong path");
            expect(info["volume_id"].asString() == v.id, "wrong volume_id");
            expect(info["target_iqn"].asString() == v.iqn && info["target_lun"].asInt() == v.lun, "wrong target/LUN");
            expect(info["portal"].asString() == v.expected_portal, "wrong portal (expected " + v.expected_portal + ")");
            expect(info["targets"].size() == v.portals.size(), "wrong targets");
            const std::string xml = info["disk_xml"].asString();
            expect(xml.find(v.iqn + "/" + std::to_string(v.lun)) != std::string::npos, "disk_xml names another LU");
            const std::string usage = "iscsi-volume-driver:" + v.id;
            if (v.chap) {
                expect(info["secret_usage"].asString() == usage && xml.find(usage) != std::string::npos,
                       "wrong secret usage");
                // Only this thread touches a volume that is not hot: its secret must be there, with this UUID.
                if (!v.hot) {
                    virSecretPtr s = virSecretLookupByUUIDString(conn.get(), info["secret_uuid"].asCString());
                    const char *u = s != nullptr ? virSecretGetUsageID(s) : nullptr;
                    expect(u != nullptr && usage == u, "the libvirt secret of secret_uuid is missing or not this volume's");
                    if (s != nullptr) virSecretFree(s);
                }
            } else {
                expect(!info.isMember("secret_usage") && xml.find("<auth") == std::string::npos, "a secret without CHAP");
            }

            std::string error;
            const int32_t drc =
                timed(slot, i, 2, timings.disconnect_ms, [&] { return module.disconnect(v.ci, info_text, &error); });
            if (drc != VD_OK) return failures.add(v.id + ": disconnect failed: " + error);
            if (v.chap && !v.hot) {
                virSecretPtr s = virSecretLookupByUsage(conn.get(), VIR_SECRET_USAGE_TYPE_ISCSI, usage.c_str());
                if (s != nullptr) {
                    failures.add(v.id + ": secret still defined after disconnect");
                    virSecretFree(s);
                }
            }
        };

        const std::vector<int> jobs = job_list(volumes, is_hot, hot_repeats);
        const auto start = Clock::now();
        const Timings timings = run_jobs(jobs, threads, job);
        const double total_s = std::chrono::duration<double>(Clock::now() - start).count();
        const int hot = static_cast<int>(std::count_if(vols.begin(), vols.end(), [](const NetVolume &v) { return v.hot; }));
        std::cout << "[concurrency] network path: " << volumes << " volumes (" << hot << " hot x" << hot_repeats << "), "
                  << threads << " threads, tgtd " << targets << " targets x " << luns_per_target << " LUNs, 3 portals"
                  << " (setup " << setup_s << " s)\n"
                  << "[concurrency]   " << jobs.size() << " connect+disconnect pairs in " << total_s << " s ("
                  << static_cast<double>(2 * jobs.size()) / total_s << " calls/s)\n"
                  << "[concurrency]   connect:    " << percentiles(timings.connect_ms) << "\n"
                  << "[concurrency]   disconnect: " << percentiles(timings.disconnect_ms) << std::endl;
        EXPECT_EQ(timings.connect_ms.size(), jobs.size()) << "every connect returned";
    }  // destroy() and dlclose() before the end state is judged

    EXPECT_EQ(failures.count(), 0) << failures.report();
    EXPECT_EQ(log.exclusion.violations(), 0) << [&] {
        std::string s;
        for (const auto &e : log.exclusion.examples()) s += "  " + e + "\n";
        return s;
    }();
    EXPECT_GE(log.exclusion.entries(), 2u * static_cast<std::uint64_t>(volumes)) << "the detector saw the calls";
    const int late_volumes = static_cast<int>(
        std::count_if(vols.begin(), vols.end(), [](const NetVolume &v) { return v.id.ends_with("-late"); }));
    EXPECT_GE(log.late_markers.load(), late_volumes) << "every dead-first connect was judged over its probe";
    EXPECT_EQ(log.errors.load(), 0) << [&] {
        std::string s;
        for (const auto &e : log.error_lines) s += "  " + e + "\n";
        return s;
    }();
    EXPECT_EQ(log.secret_leaks.load(), 0) << "a log message carried the CHAP password";

    std::string error;
    EXPECT_EQ(count_secrets_with_prefix(conn.get(), "iscsi-volume-driver:" + run, &error), 0) << error;
    EXPECT_EQ(sessions_after_settling(tgtd, tids), 0) << "probe sessions left on tgtd";
}

}  // namespace
