// Sessions shared by two volumes of one target on the simulated host with a real tgtd: they stay until the last
// LUN is detached, and a failed connect on them leaves no LUN that would keep them alive.
#include "host_path_fixture.hpp"

#include <gtest/gtest.h>
#include <json/json.h>

#include <filesystem>
#include <string>

namespace {

namespace fs = std::filesystem;
using ivd::testing::hostpath::count_entries;
using ivd::testing::hostpath::HostPathTest;

TEST_F(HostPathTest, SharedSessionsStayUntilTheLastLunIsDetached) {
    const std::string iqn = lab_.make_iqn("shared");
    const int tid = lab_.create_target(iqn);
    lab_.add_lun(tid, 1);
    lab_.add_lun(tid, 2);
    const auto ps = portals(2);
    driver();
    Json::Value ci1 = lists(ps, {iqn, iqn}, {1, 1});
    Json::Value ci2 = lists(ps, {iqn, iqn}, {2, 2});
    ci2["data"]["volume_id"] = "vol-2";
    auto i1 = connect(ci1);
    ASSERT_TRUE(i1.ok()) << i1.error().message;
    auto i2 = connect(ci2);
    ASSERT_TRUE(i2.ok()) << i2.error().message;
    EXPECT_NE((*i1)["path"], (*i2)["path"]);
    EXPECT_EQ(lab_.session_count(tid), 2);
    ASSERT_TRUE(disconnect(ci1, *i1).ok());
    EXPECT_EQ(lab_.session_count(tid), 2);
    EXPECT_TRUE(fs::exists((*i2)["path"].asString()));
    EXPECT_FALSE(fs::exists((*i1)["path"].asString()));
    ASSERT_TRUE(disconnect(ci2, *i2).ok());
    EXPECT_EQ(lab_.session_count(tid), 0);
    EXPECT_EQ(sessions(), 0u);
}

// A connect that fails on sessions another volume opened removes the device its own scan made, and the session
// then goes with the other volume's disconnect (found by the concurrency test: a failed attempt on a shared session
// left its LUN behind, so the last disconnect saw a LUN in use and kept the session forever).
TEST_F(HostPathTest, FailedAttemptOnSharedSessionsLeavesNoLunThatKeepsThemAlive) {
    const std::string iqn = lab_.make_iqn("shared-fail");
    const int tid = lab_.create_target(iqn);
    lab_.add_lun(tid, 1);
    lab_.add_lun(tid, 2);
    const auto ps = portals(2);
    driver();
    Json::Value ci1 = lists(ps, {iqn, iqn}, {1, 1});
    Json::Value ci2 = lists(ps, {iqn, iqn}, {2, 2});
    ci2["data"]["volume_id"] = "vol-2";
    auto i1 = connect(ci1);
    ASSERT_TRUE(i1.ok()) << i1.error().message;
    set_fault("no_wwid");  // LUN 2's paths fail after their scan made the device
    ASSERT_FALSE(connect(ci2).ok());
    fs::remove(dir_ / "faults" / "no_wwid");
    EXPECT_EQ(lab_.session_count(tid), 2) << "the first volume's sessions must stay";
    EXPECT_TRUE(fs::exists((*i1)["path"].asString()));
    ASSERT_TRUE(disconnect(ci1, *i1).ok());
    EXPECT_EQ(sessions(), 0u) << "a LUN the failed attempt left kept the sessions alive";
    EXPECT_EQ(count_entries(dir_ / "sys/block"), 0u);
    EXPECT_EQ(node_records(), 0u);
    EXPECT_EQ(lab_.session_count(tid), 0);
}

}  // namespace
