// The host attach path end to end: the real HostOps implementation driving the simulated host's stand-in tools,
// which log in to a real tgtd with libiscsi. Nothing here is faked above the tools.
#include "host_path_fixture.hpp"
#include "driver/driver.hpp"
#include "host_path/host_path.hpp"
#include "host_path/process.hpp"
#include "host_path/real_host_ops.hpp"
#include "request/device_info.hpp"
#include "request/driver_config.hpp"
#include "request/json_input.hpp"
#include "setup.hpp"
#include "tgtd_lab.hpp"

#include <volume_driver/volume_driver.h>

#include <gtest/gtest.h>
#include <json/json.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

namespace {

namespace fs = std::filesystem;
using ivd::testing::TgtdLab;
using ivd::testing::TgtdPortal;
using ivd::testing::slurp;
using ivd::testing::hostpath::chap_password;
using ivd::testing::hostpath::chap_user;
using ivd::testing::hostpath::count_entries;
using ivd::testing::hostpath::HostPathTest;
using ivd::testing::hostpath::initiator;
using ivd::testing::hostpath::parse;
using ivd::testing::hostpath::write;

TEST_F(HostPathTest, FourPortalListsMakeOneMapWithFourPathsAndDisconnectLeavesNothing) {
    const std::string iqn = lab_.make_iqn("four");
    const int tid = lab_.create_target(iqn);
    lab_.add_lun(tid, 1);
    lab_.add_account(chap_user, chap_password);
    lab_.bind_account(tid, chap_user);
    const auto ps = portals(4);
    const Json::Value ci = lists(ps, {iqn, iqn, iqn, iqn}, {1, 1, 1, 1}, /*chap=*/true);
    driver();

    auto info = connect(ci);
    ASSERT_TRUE(info.ok()) << info.error().message;
    EXPECT_EQ((*info)["type"].asString(), "block");
    const std::string path = (*info)["path"].asString();
    EXPECT_EQ(fs::path(path).parent_path(), dir_ / "dev");
    EXPECT_EQ(fs::path(path).filename().string().rfind("dm-", 0), 0u) << path;
    EXPECT_FALSE((*info)["scsi_wwn"].asString().empty());
    EXPECT_EQ((*info)["multipath_id"].asString(), (*info)["scsi_wwn"].asString());
    ASSERT_EQ((*info)["paths"].size(), 4u) << write(*info);
    for (const auto &p : (*info)["paths"]) EXPECT_EQ(p["state"].asString(), "active") << write(p);
    EXPECT_EQ((*info)["failed_portals"].size(), 0u);
    EXPECT_EQ((*info)["targets"].size(), 4u);
    EXPECT_NE((*info)["disk_xml"].asString().find(path), std::string::npos);
    EXPECT_EQ(count_entries(dir_ / "sys/block" / fs::path(path).filename() / "slaves"), 4u);
    EXPECT_EQ(lab_.session_count(tid), 4);
    EXPECT_EQ(sessions(), 4u);

    // Connect again: the same answer, no second set of sessions.
    auto again = connect(ci);
    ASSERT_TRUE(again.ok()) << again.error().message;
    EXPECT_EQ((*again)["path"], (*info)["path"]);
    EXPECT_EQ((*again)["paths"], (*info)["paths"]);
    EXPECT_EQ(lab_.session_count(tid), 4);

    auto d = disconnect(ci, *info);
    ASSERT_TRUE(d.ok()) << d.error().message;
    EXPECT_EQ(sessions(), 0u);
    EXPECT_EQ(lab_.session_count(tid), 0);
    EXPECT_EQ(count_entries(dir_ / "etc/iscsi/nodes" / iqn), 0u);
    EXPECT_FALSE(fs::exists(path));

    const std::string log = argv_log();
    EXPECT_NE(log.find("--login"), std::string::npos);
    EXPECT_NE(log.find("node.session.auth.username -v hpuser"), std::string::npos);
    EXPECT_EQ(log.find(chap_password), std::string::npos) << "the CHAP password reached an argv";
    // Nothing on disk keeps it either.
    for (const auto &e : fs::recursive_directory_iterator(dir_)) {
        if (e.is_regular_file()) {
            EXPECT_EQ(slurp(e.path()).find(chap_password), std::string::npos) << e.path();
        }
    }
}

TEST_F(HostPathTest, LoginsRunInParallel) {
    const std::string iqn = lab_.make_iqn("latency");
    const int tid = lab_.create_target(iqn);
    lab_.add_lun(tid, 1);
    const auto ps = portals(4);
    // Long enough that four serial logins (4 s) cannot be mistaken for parallel ones (about 1 s plus overhead),
    // even with sanitizers and a loaded machine.
    set_fault("login_latency_ms", "1000");
    driver();
    const auto start = std::chrono::steady_clock::now();
    auto info = connect(lists(ps, {iqn, iqn, iqn, iqn}, {1, 1, 1, 1}));
    const auto elapsed = std::chrono::steady_clock::now() - start;
    ASSERT_TRUE(info.ok()) << info.error().message;
    EXPECT_EQ((*info)["paths"].size(), 4u);
    EXPECT_LT(std::chrono::duration_cast<std::chrono::milliseconds>(elapsed).count(), 3000)
        << "4 logins of 1000 ms each did not overlap";
}

// Everything after the login (scan, device wait, WWID check, the offer to multipathd) runs per path too: with the
// simulated kernel taking 1 s to create each path's device, four paths take about one path's time.
TEST_F(HostPathTest, PerPathStepsAfterLoginRunInParallel) {
    const std::string iqn = lab_.make_iqn("device-delay");
    const int tid = lab_.create_target(iqn);
    lab_.add_lun(tid, 1);
    const auto ps = portals(4);
    set_fault("device_delay_ms", "1000");
    driver();
    const auto start = std::chrono::steady_clock::now();
    auto info = connect(lists(ps, {iqn, iqn, iqn, iqn}, {1, 1, 1, 1}));
    const auto elapsed = std::chrono::steady_clock::now() - start;
    ASSERT_TRUE(info.ok()) << info.error().message;
    ASSERT_EQ((*info)["paths"].size(), 4u);
    for (const auto &p : (*info)["paths"]) EXPECT_EQ(p["state"].asString(), "active") << write(p);
    EXPECT_TRUE((*info)["multipath"].asBool());
    EXPECT_LT(std::chrono::duration_cast<std::chrono::milliseconds>(elapsed).count(), 3000)
        << "4 device appearances of 1000 ms each did not overlap";
    ASSERT_TRUE(disconnect(lists(ps, {iqn, iqn, iqn, iqn}, {1, 1, 1, 1}), *info).ok());
    EXPECT_EQ(sessions(), 0u);
}

// A lost scan request (the kernel's answer to a session being replaced under it) is not the end of the attach:
// the device wait scans again, as os-brick does, within the same device_wait_timeout.
TEST_F(HostPathTest, LostScanIsRepeatedWhileWaitingForTheDevice) {
    const std::string iqn = lab_.make_iqn("lost-scan");
    const int tid = lab_.create_target(iqn);
    lab_.add_lun(tid, 1);
    const auto ps = portals(1);
    set_fault("drop_scans", "1");
    driver();
    auto info = connect(lists(ps, {iqn}, {1}));
    ASSERT_TRUE(info.ok()) << info.error().message;
    EXPECT_EQ(std::stoi(slurp(dir_ / "faults" / "drop_scans")), 0) << "no scan was dropped: nothing was tested";
    EXPECT_EQ((*info)["paths"].size(), 1u);
    ASSERT_TRUE(disconnect(lists(ps, {iqn}, {1}), *info).ok());
    EXPECT_EQ(sessions(), 0u);
}

// What one connect runs per path: the node record is created and set up with ONE iscsiadm update carrying every
// setting (not one process per setting), then one login and one multipathd offer; `multipath -a` runs once.
TEST_F(HostPathTest, EachPathSpawnsOneNodeUpdateCarryingEverySetting) {
    const std::string iqn = lab_.make_iqn("spawns");
    const int tid = lab_.create_target(iqn);
    lab_.add_lun(tid, 1);
    lab_.add_account(chap_user, chap_password);
    lab_.bind_account(tid, chap_user);
    const auto ps = portals(2);
    driver();
    const Json::Value ci = lists(ps, {iqn, iqn}, {1, 1}, /*chap=*/true);
    auto info = connect(ci);
    ASSERT_TRUE(info.ok()) << info.error().message;
    ASSERT_EQ((*info)["paths"].size(), 2u);

    std::vector<std::string> lines;
    {
        std::istringstream in(argv_log());
        for (std::string line; std::getline(in, line);) lines.push_back(line);
    }
    auto count = [&](const std::string &needle) {
        return std::count_if(lines.begin(), lines.end(), [&](const std::string &l) { return l.find(needle) != std::string::npos; });
    };
    for (const auto &p : ps) {
        const std::string where = "-p " + p.to_string() + " ";
        std::vector<std::string> mine;
        for (const auto &l : lines) {
            if (l.find(where) != std::string::npos) mine.push_back(l);
        }
        ASSERT_EQ(mine.size(), 3u) << "node new, node update, login for " << p.to_string() << ":\n" << argv_log();
        EXPECT_NE(mine[0].find("--op new"), std::string::npos) << mine[0];
        EXPECT_NE(mine[1].find("--op update"), std::string::npos) << mine[1];
        for (const char *setting : {"-n node.startup -v manual", "-n node.session.scan -v manual",
                                    "-n node.session.auth.authmethod -v CHAP", "-n node.session.auth.username -v hpuser"}) {
            EXPECT_NE(mine[1].find(setting), std::string::npos) << setting << " missing in " << mine[1];
        }
        EXPECT_NE(mine[2].find("--login"), std::string::npos) << mine[2];
        // The record holds every setting (the update applied all pairs), and the password, which the default keeps
        // there (written into the file, never through argv) so iscsid can log in again after its own restart.
        const std::string record = slurp(dir_ / "etc/iscsi/nodes" / iqn / (p.host + "," + std::to_string(p.port)));
        for (const char *line : {"node.startup = manual", "node.session.scan = manual",
                                 "node.session.auth.authmethod = CHAP", "node.session.auth.username = hpuser"}) {
            EXPECT_NE(record.find(line), std::string::npos) << line << " missing in the record:\n" << record;
        }
        EXPECT_NE(record.find(std::string("node.session.auth.password = ") + chap_password), std::string::npos) << record;
    }
    EXPECT_EQ(count("multipath -a "), 1);
    EXPECT_EQ(count("multipathd add path "), 2);
    EXPECT_EQ(lines.size(), 2u * 3u + 1u + 2u) << argv_log();
    ASSERT_TRUE(disconnect(ci, *info).ok());
}

TEST_F(HostPathTest, OnePortalDownGivesThreeDegradedPaths) {
    const std::string iqn = lab_.make_iqn("degraded");
    const int tid = lab_.create_target(iqn);
    lab_.add_lun(tid, 1);
    auto ps = portals(3);
    const TgtdPortal dead = lab_.dead_portal();
    ps.insert(ps.begin() + 1, dead);
    driver();
    auto info = connect(lists(ps, {iqn, iqn, iqn, iqn}, {1, 1, 1, 1}));
    ASSERT_TRUE(info.ok()) << info.error().message;
    EXPECT_EQ((*info)["paths"].size(), 3u);
    ASSERT_EQ((*info)["failed_portals"].size(), 1u);
    EXPECT_EQ((*info)["failed_portals"][0]["portal"].asString(), dead.to_string());
    EXPECT_FALSE((*info)["failed_portals"][0]["reason"].asString().empty());
    EXPECT_EQ(lab_.session_count(tid), 3);
    ASSERT_TRUE(disconnect(lists(ps, {iqn, iqn, iqn, iqn}, {1, 1, 1, 1}), *info).ok());
    EXPECT_EQ(sessions(), 0u);
}

TEST_F(HostPathTest, LoginFailureOnOnePortalIsDegradedAndUndone) {
    const std::string iqn = lab_.make_iqn("loginfail");
    const int tid = lab_.create_target(iqn);
    lab_.add_lun(tid, 1);
    const auto ps = portals(3);
    set_fault("login_fail_" + ps[2].host + "_" + std::to_string(ps[2].port));
    driver();
    auto info = connect(lists(ps, {iqn, iqn, iqn}, {1, 1, 1}));
    ASSERT_TRUE(info.ok()) << info.error().message;
    EXPECT_EQ((*info)["paths"].size(), 2u);
    ASSERT_EQ((*info)["failed_portals"].size(), 1u);
    EXPECT_EQ((*info)["failed_portals"][0]["stage"].asString(), "login");
    EXPECT_FALSE(fs::exists(dir_ / "etc/iscsi/nodes" / iqn / (ps[2].host + "," + std::to_string(ps[2].port))));
}

TEST_F(HostPathTest, AllPortalsDownFailsClearlyAndLeavesNothing) {
    const std::string iqn = lab_.make_iqn("down");
    lab_.add_lun(lab_.create_target(iqn), 1);
    const std::vector<TgtdPortal> ps = {lab_.dead_portal(), lab_.dead_portal()};
    driver();
    auto info = connect(lists(ps, {iqn, iqn}, {1, 1}));
    ASSERT_FALSE(info.ok());
    EXPECT_EQ(info.error().status, ivd::Status::unreachable) << info.error().message;
    EXPECT_NE(info.error().message.find(ps[0].to_string()), std::string::npos) << info.error().message;
    EXPECT_EQ(sessions(), 0u);
    EXPECT_EQ(node_records(), 0u);
    EXPECT_EQ(count_entries(dir_ / "sys/block"), 0u);
    EXPECT_FALSE(fs::exists(dir_ / "argv.log")) << argv_log();
}

TEST_F(HostPathTest, PortalLeadingToAnotherLuIsRefusedBeforeAnyLogin) {
    const std::string a = lab_.make_iqn("lu-a"), b = lab_.make_iqn("lu-b");
    lab_.add_lun(lab_.create_target(a), 1);
    lab_.add_lun(lab_.create_target(b), 1);
    const auto ps = portals(2);
    driver();
    auto info = connect(lists(ps, {a, b}, {1, 1}));
    ASSERT_FALSE(info.ok());
    EXPECT_EQ(info.error().status, ivd::Status::inconsistent);
    EXPECT_NE(info.error().message.find(ps[1].to_string()), std::string::npos) << info.error().message;
    EXPECT_EQ(argv_log().find("--login"), std::string::npos);
    EXPECT_EQ(sessions(), 0u);
}

TEST_F(HostPathTest, OneIqnPerPortal) {
    // tgtd cannot serve one LU under two IQNs (a second target over the same file is a second LU, refused by
    // the identity check above), so this checks the per-portal IQN list form: each path logs in to its own IQN.
    const std::string iqn = lab_.make_iqn("per-portal");
    lab_.add_lun(lab_.create_target(iqn), 1);
    const auto ps = portals(2);
    driver();
    auto info = connect(lists(ps, {iqn, iqn}, {1, 1}));
    ASSERT_TRUE(info.ok()) << info.error().message;
    for (const auto &p : (*info)["paths"]) EXPECT_EQ(p["iqn"].asString(), iqn);
}

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

}  // namespace

namespace {

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

namespace {

// The failed_portals rows inside an error message ("...: [{...}, ...]").
Json::Value rows_in(const std::string &message) {
    const auto at = message.find('[');
    if (at == std::string::npos) return Json::Value(Json::arrayValue);
    return parse(message.substr(at));
}

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

namespace {

// A version-1 device_info captured from a real connect (tests/device_info/v1), with the capture's portals, IQN
// and simulated-host directory swapped for this test's.
Json::Value v1_fixture(const std::string &name, const std::vector<TgtdPortal> &ps, const std::string &iqn,
                       const fs::path &dir) {
    std::string text = slurp(fs::path(IVD_DEVICE_INFO_FIXTURES) / "v1" / (name + ".json"));
    auto swap = [&text](const std::string &from, const std::string &to) {
        for (auto at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size())) {
            text.replace(at, from.size(), to);
        }
    };
    swap("127.0.0.1:3291", ps[0].to_string());
    if (ps.size() > 1) swap("127.0.0.2:3291", ps[1].to_string());
    swap("iqn.2026-11.test:cap-plain", iqn);
    swap("/tmp/abi-v2-cap/sim1", dir.string());
    swap("/tmp/abi-v2-cap/sim2", dir.string());
    return parse(text);
}

TEST_F(HostPathTest, V1DeviceInfoFixturesStillDisconnect) {
    const std::string iqn = lab_.make_iqn("v1fix");
    const int tid = lab_.create_target(iqn);
    lab_.add_lun(tid, 1);
    const auto ps = portals(2);
    driver();
    for (const bool multipath : {false, true}) {
        SCOPED_TRACE(multipath ? "block_mp" : "block_single");
        const Json::Value ci = multipath ? lists(ps, {iqn, iqn}, {1, 1}) : lists({ps[0]}, {iqn}, {1});
        auto info = connect(ci, multipath);
        ASSERT_TRUE(info.ok()) << info.error().message;
        EXPECT_EQ((*info)["device_info_version"].asInt(), ivd::request::device_info_version);
        EXPECT_EQ(sessions(), multipath ? 2u : 1u);
        const Json::Value fixture = v1_fixture(multipath ? "block_mp" : "block_single", ps, iqn, dir_);
        auto d = disconnect(ci, fixture);
        ASSERT_TRUE(d.ok()) << d.error().message;
        EXPECT_EQ(sessions(), 0u);
        EXPECT_EQ(lab_.session_count(tid), 0);
        EXPECT_TRUE(fs::is_empty(dir_ / "sys" / "block")) << "no path or dm device left";
    }
}

}  // namespace

namespace {

// ABI v2 on the host path: connect with no guest, then the <disk> on demand for two guest devices (what a
// migration does); extend answers not_implemented (never a wrong size).
TEST_F(HostPathTest, V2ConnectWithoutGuestThenDiskConfigForTwoDevices) {
    const std::string iqn = lab_.make_iqn("v2noguest");
    const int tid = lab_.create_target(iqn);
    lab_.add_lun(tid, 1);
    const auto ps = portals(2);
    driver().set_abi_version(2);
    const Json::Value ci = lists(ps, {iqn, iqn}, {1, 1});
    auto text = driver_->connect_volume(write(ci).c_str(), connector(true).c_str(), nullptr, 0);
    ASSERT_TRUE(text.ok()) << text.error().message;
    const Json::Value info = parse(*text);
    EXPECT_FALSE(info.isMember("disk_xml")) << *text;
    EXPECT_FALSE(info.isMember("dev")) << *text;
    EXPECT_EQ(info["device_info_version"].asInt(), ivd::request::device_info_version);
    const std::string path = info["path"].asString();
    ASSERT_FALSE(path.empty());
    for (const char *dev : {"sdb", "sdc"}) {
        const std::string disk_info = std::string(R"({"dev":")") + dev + R"(","unit":2,"type":"lun"})";
        auto xml = driver_->disk_config(write(ci).c_str(), text->c_str(), disk_info.c_str(), 0);
        ASSERT_TRUE(xml.ok()) << xml.error().message;
        EXPECT_NE(xml->find("<source dev='" + path + "'/>"), std::string::npos) << *xml;
        EXPECT_NE(xml->find(std::string("<target dev='") + dev + "' bus='scsi'/>"), std::string::npos) << *xml;
        EXPECT_NE(xml->find("device='lun'"), std::string::npos) << *xml;
        EXPECT_NE(xml->find("unit='2'"), std::string::npos) << *xml;
    }
    auto size = driver_->extend_volume(write(ci).c_str(), text->c_str(), 0);
    ASSERT_TRUE(size.ok()) << size.error().message;
    EXPECT_EQ(parse(*size)["size_bytes"].asUInt64(), 16ull << 20);  // host_path_extend_test.cpp grows one
    auto d = disconnect(ci, info);
    ASSERT_TRUE(d.ok()) << d.error().message;
    EXPECT_EQ(sessions(), 0u);
}

}  // namespace
