// The network path end to end, the volume's lifecycle: detach next to another volume on the same dev, a second
// or parallel attach of one volume, and 100 attach/detach cycles in one process (nothing left, memory flat).
#include "network_disk_e2e_fixture.hpp"

#include <gtest/gtest.h>

#include <fstream>
#include <thread>
#include <vector>

#include <unistd.h>

namespace {

using namespace ivd::net_disk_e2e;

// Regression: disconnect --detach removed whichever disk had the recorded <target dev>. After the first
// volume's disk was detached by other means and a second volume took that dev, disconnecting the first volume
// detached the second. Now the disk at that dev must be the recorded volume's; otherwise nothing is detached
// and the first volume stays connected.
TEST_F(NetworkDiskEndToEnd, DetachLeavesAnotherVolumeThatTookTheDev) {
    auto first = attach(connection_info({tgtd->portal().to_string()}, chap_tid, "first", &chap_password), "first");
    const std::string dev = first["dev"].asString();
    ASSERT_FALSE(dev.empty());
    ASSERT_EQ(our_secrets().size(), 1u);
    // Someone else detaches the first disk.
    auto r = ivd::testing::run_command({"virsh", "-c", libvirt->uri(), "detach-disk", libvirt->domain_name(), dev, "--live"});
    ASSERT_EQ(r.status, 0) << r.err;
    for (int i = 0; i < 200 && !disks_of_target(libvirt->domain_xml(), tgtd->make_iqn("chap")).empty(); ++i) {
        std::this_thread::sleep_for(20ms);
    }
    ASSERT_TRUE(disks_of_target(libvirt->domain_xml(), tgtd->make_iqn("chap")).empty());
    // Another volume takes the same dev.
    const fs::path second_ci = write("second.ci.json", compact(connection_info({tgtd->portal().to_string()}, open_tid, "second")));
    auto second = volume_host("connect " + second_ci.string() + " " + (dir / "connector.json").string() +
                              " --disk-info '{\"bus\":\"scsi\",\"dev\":\"" + dev + "\"}' --attach " + libvirt->domain_name());
    ASSERT_EQ(second.exit_code, 0) << second.err;
    write("second.device.json", second.out);

    auto refused = volume_host("disconnect " + (dir / "first.ci.json").string() + " " + (dir / "first.device.json").string() +
                               " --detach " + libvirt->domain_name());
    EXPECT_EQ(refused.exit_code, 6) << refused.err;
    const Json::Value error = error_of(refused.err);
    EXPECT_EQ(error["code"].asString(), "disk_mismatch") << refused.err;
    const std::string message = error["message"].asString();
    EXPECT_NE(message.find(dev + " of domain " + libvirt->domain_name()), std::string::npos) << message;
    EXPECT_NE(message.find(tgtd->make_iqn("open")), std::string::npos) << message;
    EXPECT_NE(message.find("nothing was detached"), std::string::npos) << message;
    std::cout << "refused: " << message << "\n";
    // The second volume is still attached and readable; the first is still connected (its secret is there).
    EXPECT_EQ(disks_of_target(libvirt->domain_xml(), tgtd->make_iqn("open")).size(), 1u);
    EXPECT_EQ(hex(libvirt->read_disk_bytes(dev, 0, 16)), hex(head_of(open_lun, 16)));
    EXPECT_EQ(our_secrets().size(), 1u) << "the first volume must stay connected";

    detach("second");
    auto done = volume_host("disconnect " + (dir / "first.ci.json").string() + " " + (dir / "first.device.json").string());
    EXPECT_EQ(done.exit_code, 0) << done.err;
    EXPECT_TRUE(our_secrets().empty());
}

// Regression: connecting and attaching the same volume again (with another dev) attached the same LUN twice
// to one guest. Now the second attach is refused (already_attached, naming the dev that has it), its own
// connect undone, and the first disk stays intact.
TEST_F(NetworkDiskEndToEnd, SecondAttachOfTheSameVolumeIsRefused) {
    auto info = attach(connection_info({tgtd->portal().to_string()}, open_tid, "twice"), "twice");
    const std::string dev = info["dev"].asString();
    ASSERT_FALSE(dev.empty());
    const std::string other_dev = dev == "sdw" ? "sdv" : "sdw";
    auto again = volume_host("connect " + (dir / "twice.ci.json").string() + " " + (dir / "connector.json").string() +
                             " --disk-info '{\"bus\":\"scsi\",\"dev\":\"" + other_dev + "\"}' --attach " +
                             libvirt->domain_name());
    EXPECT_EQ(again.exit_code, 6) << again.err;
    const Json::Value error = error_of(again.err);
    EXPECT_EQ(error["code"].asString(), "already_attached") << again.err;
    EXPECT_NE(error["message"].asString().find(libvirt->domain_name()), std::string::npos) << again.err;
    EXPECT_NE(error["message"].asString().find(" as " + dev), std::string::npos) << again.err;
    EXPECT_TRUE(again.out.empty());
    const auto disks = disks_of_target(libvirt->domain_xml(), tgtd->make_iqn("open"));
    ASSERT_EQ(disks.size(), 1u);
    EXPECT_EQ(disks[0].target_dev, dev);
    EXPECT_EQ(hex(libvirt->read_disk_bytes(dev, 0, 16)), hex(head_of(open_lun, 16)));
    detach("twice");
    EXPECT_TRUE(disks_of_target(libvirt->domain_xml(), tgtd->make_iqn("open")).empty());
}

// Regression: 20 parallel connect --attach of one volume to one domain attached it several times. The check
// and the attach now run under one per-domain lock: exactly one succeeds.
TEST_F(NetworkDiskEndToEnd, ParallelAttachesOfOneVolumeAttachItOnce) {
    const fs::path ci = write("parallel.ci.json", compact(connection_info({tgtd->portal().to_string()}, open_tid, "parallel")));
    constexpr int n = 20;
    std::vector<CliRun> runs(n);
    std::vector<std::thread> threads;
    for (int i = 0; i < n; ++i) {
        threads.emplace_back([&, i] {
            runs[static_cast<std::size_t>(i)] = volume_host("connect " + ci.string() + " " + (dir / "connector.json").string() +
                                                            " --attach " + libvirt->domain_name(), "." + std::to_string(i));
        });
    }
    for (auto &t : threads) t.join();
    int succeeded = 0;
    std::string winner;
    for (const auto &r : runs) {
        if (r.exit_code == 0) {
            ++succeeded;
            winner = r.out;
            continue;
        }
        EXPECT_EQ(r.exit_code, 6) << r.err;
        EXPECT_NE(r.err.find("\"already_attached\""), std::string::npos) << r.err;
    }
    EXPECT_EQ(succeeded, 1);
    const auto disks = disks_of_target(libvirt->domain_xml(), tgtd->make_iqn("open"));
    ASSERT_EQ(disks.size(), 1u);
    EXPECT_EQ(hex(libvirt->read_disk_bytes(disks[0].target_dev, 0, 16)), hex(head_of(open_lun, 16)));
    write("parallel.device.json", winner);
    detach("parallel");
    EXPECT_TRUE(disks_of_target(libvirt->domain_xml(), tgtd->make_iqn("open")).empty());
}

long rss_kib() {
    std::ifstream statm("/proc/self/statm");
    long pages = 0;
    long resident = 0;
    statm >> pages >> resident;
    return resident * (::sysconf(_SC_PAGESIZE) / 1024);
}

// 100 attach/detach cycles through one loaded module, in this process: nothing left, memory flat.
TEST_F(NetworkDiskEndToEnd, HundredCyclesLeaveNothingAndDoNotGrow) {
    const vd_host_table host{sizeof(vd_host_table), nullptr, nullptr};
    auto module = volume_host::LoadedModule::load(IVD_MODULE_PATH, host);
    ASSERT_TRUE(module) << module.error().message;
    auto driver = volume_host::DriverInstance::create(*module, R"({"libvirt_uri":")" + libvirt->uri() + R"(","path":"network"})");
    ASSERT_TRUE(driver) << driver.error().message;
    auto session = volume_host::DomainSession::open(libvirt->uri(), libvirt->domain_name());
    ASSERT_TRUE(session) << session.error().message;
    const auto &t = (*driver)->table();
    const std::string ci = compact(connection_info({tgtd->portal().to_string()}, chap_tid, "cycles", &chap_password));
    const std::string connector = R"({"initiator":")" + initiator + R"("})";
    long rss_after_warmup = 0;
    for (int i = 0; i < 100; ++i) {
        char *out = nullptr;
        ASSERT_EQ(t.connect_volume((*driver)->handle(), ci.c_str(), connector.c_str(), R"({"dev":"sdy"})", 0, &out), VD_OK)
            << (*driver)->last_error();
        const std::string device_info = volume_host::take_driver_string(t, out);
        const Json::Value info = parse(device_info);
        ASSERT_FALSE((*session)->attach_disk(info["disk_xml"].asString()).has_value()) << "cycle " << i;
        auto detached = (*session)->detach_disk("sdy");
        ASSERT_TRUE(detached) << detached.error().message;
        ASSERT_EQ(t.disconnect_volume((*driver)->handle(), ci.c_str(), device_info.c_str(), 0), VD_OK)
            << (*driver)->last_error();
        if (i == 9) rss_after_warmup = rss_kib();
    }
    const long growth = rss_kib() - rss_after_warmup;
    std::cout << "RSS after 10 cycles " << rss_after_warmup << " KiB, growth over the next 90: " << growth << " KiB\n";
#if defined(__SANITIZE_ADDRESS__)
    // ASan keeps freed memory in quarantine, so RSS grows by design; LeakSanitizer checks leaks in that build.
    std::cout << "RSS growth not asserted under AddressSanitizer (quarantine)\n";
#else
    EXPECT_LT(growth, 2048) << "memory grows with attach/detach cycles";
#endif
    EXPECT_TRUE(our_secrets().empty());
    EXPECT_EQ(sessions_after_settling(chap_tid), 0);
}

}  // namespace
