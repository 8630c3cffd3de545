// The connection_info forms on the simulated host with a real tgtd: one portal and discovery (its CHAP, portals it
// reveals), multipath off, bad lists, the broadcast LUN as os-brick reads it; and a flush failure on disconnect.
#include "host_path_fixture.hpp"
#include "driver/driver.hpp"
#include "host_path/host_path.hpp"
#include "host_path/real_host_ops.hpp"
#include "request/driver_config.hpp"
#include "request/json_input.hpp"

#include <volume_driver/volume_driver.h>

#include <gtest/gtest.h>
#include <json/json.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

namespace {

namespace fs = std::filesystem;
using ivd::testing::hostpath::HostPathTest;
using ivd::testing::hostpath::initiator;
using ivd::testing::hostpath::parse;
using ivd::testing::hostpath::write;

TEST_F(HostPathTest, SinglePortalUsesDiscoveryWithDiscoveryChap) {
    const std::string iqn = lab_.make_iqn("disc");
    const int tid = lab_.create_target(iqn);
    lab_.add_lun(tid, 1);
    lab_.add_account("discuser", "Disc-Secret-77");
    lab_.bind_discovery_account("discuser");
    driver();
    Json::Value ci(Json::objectValue);
    ci["driver_volume_type"] = "iscsi";
    ci["data"]["target_portal"] = lab_.portal().to_string();
    ci["data"]["target_iqn"] = iqn;
    ci["data"]["target_lun"] = 1;
    ci["data"]["discovery_auth_method"] = "CHAP";
    ci["data"]["discovery_auth_username"] = "discuser";
    ci["data"]["discovery_auth_password"] = "Disc-Secret-77";
    auto info = connect(ci);
    ASSERT_TRUE(info.ok()) << info.error().message;
    // tgtd answers SendTargets with the portal the discovery came through only.
    EXPECT_FALSE((*info)["discovery"].isMember("error")) << write((*info)["discovery"]);
    EXPECT_EQ((*info)["paths"].size(), 1u);
    EXPECT_EQ(argv_log().find("Disc-Secret-77"), std::string::npos);
    ASSERT_TRUE(disconnect(ci, *info).ok());
    EXPECT_EQ(sessions(), 0u) << write(*info) << "\n" << argv_log();
}

TEST_F(HostPathTest, WithoutMultipathThePathIsTheByPathDevice) {
    const std::string iqn = lab_.make_iqn("single");
    lab_.add_lun(lab_.create_target(iqn), 1);
    const auto ps = portals(2);
    driver();
    auto info = connect(lists(ps, {iqn, iqn}, {1, 1}), /*multipath=*/false);
    ASSERT_TRUE(info.ok()) << info.error().message;
    EXPECT_NE((*info)["path"].asString().find("/disk/by-path/ip-" + ps[0].to_string()), std::string::npos)
        << (*info)["path"].asString();
    EXPECT_EQ((*info)["paths"].size(), 1u);
    EXPECT_FALSE((*info).isMember("multipath_id"));
}

TEST_F(HostPathTest, BadListsFailBeforeAnySpawn) {
    driver();
    Json::Value ci = lists({lab_.portal()}, {"iqn.2000-01.org.example:a", "iqn.2000-01.org.example:b"}, {1});
    auto info = connect(ci);
    ASSERT_FALSE(info.ok());
    EXPECT_EQ(info.error().status, ivd::Status::invalid_argument);
    EXPECT_FALSE(fs::exists(dir_ / "argv.log"));
}

TEST_F(HostPathTest, FlushFailureStopsWithoutForceAndIsReportedWithIt) {
    const std::string iqn = lab_.make_iqn("flush");
    const int tid = lab_.create_target(iqn);
    lab_.add_lun(tid, 1);
    const auto ps = portals(2);
    const Json::Value ci = lists(ps, {iqn, iqn}, {1, 1});
    driver();
    auto info = connect(ci);
    ASSERT_TRUE(info.ok()) << info.error().message;
    set_fault("flush_fail");
    auto d = disconnect(ci, *info);
    ASSERT_FALSE(d.ok());
    EXPECT_EQ(lab_.session_count(tid), 2) << "nothing may be removed after a failed flush without force";
    auto forced = disconnect(ci, *info, VD_DISCONNECT_FORCE);
    ASSERT_FALSE(forced.ok());
    EXPECT_NE(forced.error().message.find("flush_multipath"), std::string::npos) << forced.error().message;
    EXPECT_EQ(lab_.session_count(tid), 0);
    auto ignored = disconnect(ci, *info, VD_DISCONNECT_FORCE | VD_DISCONNECT_IGNORE_ERRORS);
    EXPECT_TRUE(ignored.ok());
}

// Also the single-LUN broadcast form: target_portals + target_iqns with one target_lun for all.
TEST_F(HostPathTest, BroadcastLunTargetsMatchOsBricksGetAllTargets) {
    const std::string iqn = lab_.make_iqn("brick");
    lab_.add_lun(lab_.create_target(iqn), 2);
    const auto ps = portals(3);
    driver();
    Json::Value ci = lists(ps, {iqn, iqn, iqn}, {});
    ci["data"]["target_lun"] = 2;
    auto info = connect(ci);
    ASSERT_TRUE(info.ok()) << info.error().message;
    EXPECT_EQ((*info)["paths"].size(), 3u);
    const fs::path script = dir_ / "brick.py";
    std::ofstream(script) << "import json, sys\n"
                             "import types\n"
                             "from os_brick.initiator.connectors.base_iscsi import BaseISCSIConnector as B\n"
                             "props = json.load(sys.stdin)['data']\n"
                             "me = types.SimpleNamespace(_get_luns=B._get_luns)\n"
                             "print(json.dumps([list(t) for t in B._get_all_targets(me, props)]))\n";
    const fs::path in = dir_ / "ci.json";
    std::ofstream(in) << write(ci);
    const std::string cmd = "/usr/bin/python3 " + script.string() + " < " + in.string();
    FILE *p = ::popen(cmd.c_str(), "r");
    ASSERT_NE(p, nullptr);
    std::string out;
    char buf[4096];
    while (std::fgets(buf, sizeof buf, p)) out += buf;
    ASSERT_EQ(::pclose(p), 0) << out;
    const Json::Value brick = parse(out);
    ASSERT_EQ(brick.size(), (*info)["targets"].size());
    for (Json::ArrayIndex i = 0; i < brick.size(); ++i) {
        EXPECT_EQ(brick[i][0].asString(), (*info)["targets"][i]["portal"].asString());
        EXPECT_EQ(brick[i][1].asString(), (*info)["targets"][i]["iqn"].asString());
        EXPECT_EQ(brick[i][2].asInt64(), (*info)["targets"][i]["lun"].asInt64());
    }
}

// Arrays that answer SendTargets with every portal (tgtd answers with one): the discovery seam reports the
// volume's IQN on three real portals and an unrelated IQN; the host path must log in to exactly those three.
TEST_F(HostPathTest, DiscoveryRevealingSeveralPortalsLogsInToEveryPortalOfTheSameIqn) {
    const auto all = portals(3);
    const std::string iqn = lab_.make_iqn("discovered");
    const int tid = lab_.create_target(iqn);
    lab_.add_lun(tid, 1);
    const std::string other = lab_.make_iqn("unrelated");
    lab_.add_lun(lab_.create_target(other), 1);

    Json::Value config(Json::objectValue);
    for (const auto &[k, v] : sim_config_) config[k] = v;
    auto doc = ivd::request::parse_object(write(config).c_str(), "config");
    ASSERT_TRUE(doc.ok());
    auto parsed = ivd::request::parse_driver_config(*doc);
    ASSERT_TRUE(parsed.ok()) << parsed.error().message;
    int discoveries = 0;
    ivd::host_path::StorageQueries queries;
    queries.discover = [&](const ivd::request::Portal &portal, const std::string &, const ivd::request::ChapCredentials *,
                           std::chrono::milliseconds) -> ivd::Result<std::vector<ivd::iscsi::DiscoveredTarget>> {
        ++discoveries;
        EXPECT_EQ(portal.to_string(), all[0].to_string());
        std::vector<ivd::iscsi::DiscoveredTarget> found(2);
        found[0].iqn = iqn;
        for (const auto &p : all) {
            auto rp = ivd::request::parse_portal(p.to_string());
            EXPECT_TRUE(rp.ok()) << p.to_string();
            if (rp) found[0].portals.push_back(*rp);
        }
        found[1].iqn = other;
        found[1].portals = {found[0].portals[0]};
        return found;
    };
    ivd::DriverParts parts;
    ivd::HostFacts facts;
    facts.capabilities.host_iscsi = true;
    facts.capabilities.multipath = true;
    facts.initiator = initiator;
    parts.facts = facts;
    parts.host = std::make_unique<ivd::host_path::HostPath>(parsed->host_path(), ivd::Logger{},
                                                            ivd::host_path::make_real_host_ops(parsed->host_path(), ivd::Logger{}),
                                                            queries);
    auto d = ivd::Driver::create(write(config).c_str(), {}, std::move(parts));
    ASSERT_TRUE(d.ok()) << d.error().message;
    driver_ = std::move(d).value();

    Json::Value ci(Json::objectValue);
    ci["driver_volume_type"] = "iscsi";
    ci["data"]["target_portal"] = all[0].to_string();
    ci["data"]["target_iqn"] = iqn;
    ci["data"]["target_lun"] = 1;
    ci["data"]["volume_id"] = "vol-discovered";
    auto info = connect(ci);
    ASSERT_TRUE(info.ok()) << info.error().message;
    EXPECT_EQ(discoveries, 1);
    ASSERT_EQ((*info)["paths"].size(), 3u);
    for (const auto &path : (*info)["paths"]) EXPECT_EQ(path["iqn"].asString(), iqn);
    EXPECT_EQ(lab_.session_count(tid), 3);
    EXPECT_EQ(argv_log().find(other), std::string::npos) << "never logs in to another IQN";
    ASSERT_TRUE(disconnect(ci, *info).ok());
    EXPECT_EQ(sessions(), 0u);
}

}  // namespace
