// The host path's steps on the simulated host with a real tgtd: failure rows name the stage that failed (wwid,
// device, multipath_add), multipathd is offered a path only once udev has it, node record writes survive a delete.
#include "host_path_fixture.hpp"
#include "host_path/process.hpp"

#include <gtest/gtest.h>
#include <json/json.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

namespace {

namespace fs = std::filesystem;
using ivd::testing::slurp;
using ivd::testing::hostpath::count_entries;
using ivd::testing::hostpath::HostPathTest;
using ivd::testing::hostpath::rows_in;

// A failure row names the step that failed, not "login" for all of them.
TEST_F(HostPathTest, FailureRowsNameTheWwidStage) {
    const std::string iqn = lab_.make_iqn("stage-wwid");
    lab_.add_lun(lab_.create_target(iqn), 1);
    const auto ps = portals(2);
    set_fault("no_wwid");  // the simulated kernel's device has no wwid in sysfs
    driver();
    for (const bool multipath : {true, false}) {
        auto info = connect(lists(ps, {iqn, iqn}, {1, 1}), multipath);
        ASSERT_FALSE(info.ok()) << "multipath " << multipath;
        const Json::Value rows = rows_in(info.error().message);
        ASSERT_FALSE(rows.empty()) << info.error().message;
        for (const auto &row : rows) EXPECT_EQ(row["stage"].asString(), "wwid") << info.error().message;
        EXPECT_EQ(sessions(), 0u);
        EXPECT_EQ(count_entries(dir_ / "sys/block"), 0u);
    }
}

TEST_F(HostPathTest, FailureRowsNameTheDeviceStage) {
    const std::string iqn = lab_.make_iqn("stage-device");
    lab_.add_lun(lab_.create_target(iqn), 1);
    const auto ps = portals(2);
    set_fault("device_delay_ms", "1500");  // longer than the device wait below
    driver({{"device_wait_timeout_ms", "300"}});
    auto info = connect(lists(ps, {iqn, iqn}, {1, 1}));
    ASSERT_FALSE(info.ok());
    EXPECT_EQ(info.error().status, ivd::Status::timeout) << info.error().message;
    const Json::Value rows = rows_in(info.error().message);
    ASSERT_EQ(rows.size(), 2u) << info.error().message;
    for (const auto &row : rows) EXPECT_EQ(row["stage"].asString(), "device") << info.error().message;
    EXPECT_EQ(sessions(), 0u);
}

// multipathd refuses a path udev has not processed yet (no ID_SERIAL): the connect offers a path only once udev's
// database has its entry (udev_data_dir/bMAJ:MIN), not in a retry loop of refused offers before that. Here a
// "udev" thread writes the entries 400 ms after the devices appear and notes whether any offer came earlier.
TEST_F(HostPathTest, MultipathdIsOfferedAPathOnlyOnceUdevHasProcessedIt) {
    const std::string iqn = lab_.make_iqn("udev-gate");
    lab_.add_lun(lab_.create_target(iqn), 1);
    const auto ps = portals(2);
    const fs::path udev = dir_ / "udev-data";
    fs::create_directories(udev);
    driver({{"udev_data_dir", udev.string()}});
    std::atomic<bool> stop{false};
    std::atomic<int> early_offers{-1};
    std::thread udevd([&] {
        std::vector<std::string> devnums;
        const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(20);
        while (devnums.size() < 2 && !stop && std::chrono::steady_clock::now() < until) {
            devnums.clear();
            std::error_code ec;
            for (const auto &e : fs::directory_iterator(dir_ / "sys/block", ec)) {
                if (fs::exists(e.path() / "dev")) devnums.push_back(slurp(e.path() / "dev"));
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(400));
        const std::string log = argv_log();
        int n = 0;
        for (std::size_t at = log.find("multipathd add path"); at != std::string::npos; at = log.find("multipathd add path", at + 1)) ++n;
        early_offers = n;
        for (auto d : devnums) {
            while (!d.empty() && d.back() == '\n') d.pop_back();
            std::ofstream(udev / ("b" + d)) << "E:ID_SERIAL=x\n";
        }
    });
    auto info = connect(lists(ps, {iqn, iqn}, {1, 1}));
    stop = true;
    udevd.join();
    ASSERT_TRUE(info.ok()) << info.error().message;
    EXPECT_EQ(early_offers.load(), 0) << "multipathd was offered a path udev had not processed:\n" << argv_log();
    EXPECT_TRUE((*info)["multipath"].asBool()) << (*info).toStyledString();
    for (const auto &e : fs::directory_iterator(udev)) fs::remove(e.path());  // udev's remove events
    ASSERT_TRUE(disconnect(lists(ps, {iqn, iqn}, {1, 1}), *info).ok());
}

TEST_F(HostPathTest, FailureRowsNameTheMultipathAddStage) {
    const std::string iqn = lab_.make_iqn("stage-mpath");
    lab_.add_lun(lab_.create_target(iqn), 1);
    const auto ps = portals(2);
    set_fault("multipathd_down");  // every `multipathd add path` is refused
    driver({{"enforce_multipath", "true"}, {"multipath_wait_timeout_ms", "500"}});
    auto info = connect(lists(ps, {iqn, iqn}, {1, 1}));
    ASSERT_FALSE(info.ok());
    const Json::Value rows = rows_in(info.error().message);
    ASSERT_EQ(rows.size(), 2u) << info.error().message;
    for (const auto &row : rows) EXPECT_EQ(row["stage"].asString(), "multipath_add") << info.error().message;
    EXPECT_EQ(sessions(), 0u);
    EXPECT_EQ(count_entries(dir_ / "etc/iscsi/nodes" / iqn), 0u);
}

// iscsiadm serialises its node database (open-iscsi's idbm_lock): a record being written for one portal of an
// IQN is never lost to another portal's `--op delete` removing the IQN's directory, which idbm removes only when
// empty. The stand-in's record write is slowed (fault node_write_delay_ms) so the delete lands inside it.
TEST_F(HostPathTest, NodeRecordWriteSurvivesAnotherPortalsDeleteOfTheSameIqn) {
    const std::string iqn = "iqn.2000-01.org.example:node-db";
    const std::string iscsiadm = (dir_ / "bin/iscsiadm").string();
    auto run = [&](const std::string &portal, const std::string &op) {
        return ivd::host_path::run_process({iscsiadm, "-m", "node", "-T", iqn, "-p", portal, "--interface", "default",
                                            "--op", op},
                                           std::chrono::seconds(30));
    };
    const auto made = run("127.0.0.2:3260", "new");
    ASSERT_EQ(made.exit_code, 0) << made.err;
    set_fault("node_write_delay_ms", "1000");
    ivd::host_path::ProcessResult created, deleted;
    {
        std::jthread writer([&] { created = run("127.0.0.1:3260", "new"); });
        std::this_thread::sleep_for(std::chrono::milliseconds(250));  // the writer is inside its slow write now
        deleted = run("127.0.0.2:3260", "delete");
    }
    EXPECT_EQ(created.exit_code, 0) << created.err;
    EXPECT_EQ(deleted.exit_code, 0) << deleted.err;
    EXPECT_TRUE(fs::is_regular_file(dir_ / "etc/iscsi/nodes" / iqn / "127.0.0.1,3260"));
    EXPECT_FALSE(fs::exists(dir_ / "etc/iscsi/nodes" / iqn / "127.0.0.2,3260"));
    // Deleting the last record removes the IQN's directory, as idbm does.
    EXPECT_EQ(run("127.0.0.1:3260", "delete").exit_code, 0);
    EXPECT_FALSE(fs::exists(dir_ / "etc/iscsi/nodes" / iqn));
}

}  // namespace
