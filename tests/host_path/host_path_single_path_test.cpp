// Single path (multipath: false) on the simulated host with a real tgtd: the portals tried in turn until one
// serves, each failed attempt undone and reported in device_info; every login failing leaves nothing.
#include "host_path_fixture.hpp"
#include "core/error.hpp"

#include <gtest/gtest.h>
#include <json/json.h>

#include <filesystem>
#include <string>

namespace {

namespace fs = std::filesystem;
using ivd::testing::hostpath::count_entries;
using ivd::testing::hostpath::HostPathTest;
using ivd::testing::hostpath::rows_in;
using ivd::testing::hostpath::write;

// Single path (multipath: false) tries the portals in turn, as os-brick's _connect_single_volume does: a login
// failure on the first portal is undone (no session, no node record) and the second serves; device_info says which
// portal served and why the first was skipped.
TEST_F(HostPathTest, SinglePathTriesTheNextPortalWhenALoginFails) {
    const std::string iqn = lab_.make_iqn("single-next");
    const int tid = lab_.create_target(iqn);
    lab_.add_lun(tid, 1);
    const auto ps = portals(2);
    set_fault("login_fail_" + ps[0].host + "_" + std::to_string(ps[0].port));
    driver();
    const Json::Value ci = lists(ps, {iqn, iqn}, {1, 1});
    auto info = connect(ci, /*multipath=*/false);
    ASSERT_TRUE(info.ok()) << info.error().message;
    EXPECT_EQ((*info)["served_by"]["portal"].asString(), ps[1].to_string()) << write(*info);
    ASSERT_EQ((*info)["paths"].size(), 1u);
    EXPECT_EQ((*info)["paths"][0]["portal"].asString(), ps[1].to_string());
    EXPECT_NE((*info)["path"].asString().find("/disk/by-path/ip-" + ps[1].to_string()), std::string::npos)
        << (*info)["path"].asString();
    ASSERT_EQ((*info)["failed_portals"].size(), 1u) << write(*info);
    const Json::Value &skipped = (*info)["failed_portals"][0];
    EXPECT_EQ(skipped["portal"].asString(), ps[0].to_string());
    EXPECT_EQ(skipped["stage"].asString(), "login");
    EXPECT_EQ(skipped["reason"].asString(), ivd::status_code_name(ivd::Status::timeout));
    EXPECT_FALSE(skipped["detail"].asString().empty());
    // The failed attempt was undone completely before the next portal: no session, no node record.
    EXPECT_EQ(sessions(), 1u);
    EXPECT_EQ(lab_.session_count(tid), 1);
    EXPECT_FALSE(fs::exists(dir_ / "etc/iscsi/nodes" / iqn / (ps[0].host + "," + std::to_string(ps[0].port))));
    EXPECT_NE(argv_log().find("-p " + ps[0].to_string() + " --interface default --op delete"), std::string::npos)
        << argv_log();

    ASSERT_TRUE(disconnect(ci, *info).ok());
    EXPECT_EQ(sessions(), 0u);
    EXPECT_EQ(count_entries(dir_ / "etc/iscsi/nodes" / iqn), 0u);
}

TEST_F(HostPathTest, SinglePathWithEveryLoginFailingTriesEachPortalAndLeavesNothing) {
    const std::string iqn = lab_.make_iqn("single-none");
    lab_.add_lun(lab_.create_target(iqn), 1);
    const auto ps = portals(2);
    for (const auto &p : ps) set_fault("login_fail_" + p.host + "_" + std::to_string(p.port));
    driver();
    auto info = connect(lists(ps, {iqn, iqn}, {1, 1}), /*multipath=*/false);
    ASSERT_FALSE(info.ok());
    EXPECT_EQ(info.error().status, ivd::Status::timeout) << info.error().message;
    const Json::Value rows = rows_in(info.error().message);
    ASSERT_EQ(rows.size(), 2u) << info.error().message;
    for (Json::ArrayIndex i = 0; i < 2; ++i) {
        EXPECT_EQ(rows[i]["portal"].asString(), ps[i].to_string());
        EXPECT_EQ(rows[i]["stage"].asString(), "login");
    }
    EXPECT_EQ(sessions(), 0u);
    EXPECT_EQ(count_entries(dir_ / "etc/iscsi/nodes" / iqn), 0u);
}

}  // namespace
