// Repair on reconnect on the simulated host, with real logins to tgtd: a connect of a volume that is attached
// already adds the paths that are missing (a portal down at attach and back now, a session logged out behind the
// driver's back) to the same map, and leaves a healthy volume exactly as it is.
#include "host_path_fixture.hpp"

#include <gtest/gtest.h>
#include <json/json.h>

#include <cstdlib>
#include <filesystem>
#include <string>

namespace {

namespace fs = std::filesystem;
using ivd::testing::TgtdPortal;
using ivd::testing::hostpath::count_entries;
using ivd::testing::hostpath::HostPathTest;
using ivd::testing::hostpath::write;
using ivd::testing::slurp;

class HostPathRepairTest : public HostPathTest {
protected:
    std::size_t maps() const {
        std::size_t n = 0;
        for (const auto &e : fs::directory_iterator(dir_ / "sys/block")) n += e.path().filename().string().rfind("dm-", 0) == 0;
        return n;
    }
    std::size_t slaves(const Json::Value &info) const {
        return count_entries(dir_ / "sys/block" / fs::path(info["path"].asString()).filename() / "slaves");
    }
    // An admin's logout of one portal's session, with the simulated host's own iscsiadm (not the driver).
    void logout_behind_the_drivers_back(const std::string &iqn, const TgtdPortal &p) {
        const std::string cmd = "'" + sim_config_.at("iscsiadm_path") + "' -m node -T " + iqn + " -p " + p.to_string() +
                                " --logout >/dev/null";
        ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
    }
    // An admin's login to another target (a node record of the default iface first), not the driver's.
    void login_behind_the_drivers_back(const std::string &iqn, const TgtdPortal &p) {
        const std::string tool = "'" + sim_config_.at("iscsiadm_path") + "' -m node -T " + iqn + " -p " + p.to_string();
        for (const std::string &cmd : {tool + " -o new >/dev/null", tool + " --login >/dev/null"}) {
            ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
        }
    }
    std::string session_target(const std::string &name) const {
        return slurp(dir_ / "sys/class/iscsi_session" / name / "targetname");
    }
    static std::size_t count(const std::string &text, const std::string &what) {
        std::size_t n = 0;
        for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
        return n;
    }
    static void expect_all_active(const Json::Value &info, std::size_t n) {
        ASSERT_EQ(info["paths"].size(), n) << write(info);
        for (const auto &p : info["paths"]) EXPECT_EQ(p["state"].asString(), "active") << write(p);
        EXPECT_EQ(info["failed_portals"].size(), 0u) << write(info);
    }
};

TEST_F(HostPathRepairTest, APortalDownAtAttachJoinsTheSameMapWhenItIsBack) {
    const std::string iqn = lab_.make_iqn("repair-portal");
    const int tid = lab_.create_target(iqn);
    lab_.add_lun(tid, 1);
    const auto ps = portals(3);
    const Json::Value ci = lists(ps, {iqn, iqn, iqn}, {1, 1, 1});
    driver();
    lab_.remove_portal(ps[1]);
    auto info = connect(ci);
    ASSERT_TRUE(info.ok()) << info.error().message;
    ASSERT_EQ((*info)["paths"].size(), 2u) << write(*info);
    ASSERT_EQ((*info)["failed_portals"].size(), 1u);
    EXPECT_EQ((*info)["failed_portals"][0]["portal"].asString(), ps[1].to_string());
    EXPECT_EQ(lab_.session_count(tid), 2);

    lab_.restore_portal(ps[1]);
    const std::size_t logged = argv_log().size();
    auto again = connect(ci);
    ASSERT_TRUE(again.ok()) << again.error().message;
    expect_all_active(*again, 3);
    // Only the missing path was logged in and offered to multipathd.
    const std::string repair_argv = argv_log().substr(logged);
    EXPECT_EQ(count(repair_argv, "--login"), 1u) << repair_argv;
    EXPECT_EQ(count(repair_argv, ps[1].to_string() + " --interface default --login"), 1u) << repair_argv;
    EXPECT_EQ(count(repair_argv, "multipathd add path"), 1u) << repair_argv;
    EXPECT_EQ((*again)["paths"][1]["portal"].asString(), ps[1].to_string());
    EXPECT_EQ((*again)["path"], (*info)["path"]) << "the same dm map";
    EXPECT_EQ((*again)["scsi_wwn"], (*info)["scsi_wwn"]);
    EXPECT_EQ((*again)["multipath_id"], (*info)["multipath_id"]);
    EXPECT_EQ(slaves(*again), 3u);
    EXPECT_EQ(maps(), 1u) << "no second map";
    EXPECT_EQ(lab_.session_count(tid), 3);
    EXPECT_EQ(sessions(), 3u);

    ASSERT_TRUE(disconnect(ci, *again).ok());
    EXPECT_EQ(sessions(), 0u);
    EXPECT_EQ(node_records(), 0u);
    EXPECT_EQ(maps(), 0u);
}

TEST_F(HostPathRepairTest, ASessionLoggedOutBehindOurBackIsLoggedInAgainAndAdded) {
    const std::string iqn = lab_.make_iqn("repair-session");
    const int tid = lab_.create_target(iqn);
    lab_.add_lun(tid, 1);
    lab_.add_account(ivd::testing::hostpath::chap_user, ivd::testing::hostpath::chap_password);
    lab_.bind_account(tid, ivd::testing::hostpath::chap_user);
    const auto ps = portals(2);
    const Json::Value ci = lists(ps, {iqn, iqn}, {1, 1}, /*chap=*/true);
    driver();
    auto info = connect(ci);
    ASSERT_TRUE(info.ok()) << info.error().message;
    expect_all_active(*info, 2);

    logout_behind_the_drivers_back(iqn, ps[0]);
    EXPECT_EQ(sessions(), 1u);
    EXPECT_EQ(slaves(*info), 1u);

    auto again = connect(ci);
    ASSERT_TRUE(again.ok()) << again.error().message;
    expect_all_active(*again, 2);
    EXPECT_EQ((*again)["path"], (*info)["path"]);
    EXPECT_EQ((*again)["scsi_wwn"], (*info)["scsi_wwn"]);
    EXPECT_EQ(slaves(*again), 2u);
    EXPECT_EQ(maps(), 1u);
    EXPECT_EQ(lab_.session_count(tid), 2);
    ASSERT_TRUE(disconnect(ci, *again).ok());
    EXPECT_EQ(sessions(), 0u);
}

TEST_F(HostPathRepairTest, ReconnectOfAHealthyVolumeRunsNoToolAndAnswersTheSame) {
    const std::string iqn = lab_.make_iqn("repair-healthy");
    const int tid = lab_.create_target(iqn);
    lab_.add_lun(tid, 1);
    const auto ps = portals(3);
    const Json::Value ci = lists(ps, {iqn, iqn, iqn}, {1, 1, 1});
    driver();
    auto info = connect(ci);
    ASSERT_TRUE(info.ok()) << info.error().message;
    const std::string log = argv_log();
    // A scan that reached the simulated kernel would use up one of these.
    set_fault("drop_scans", "1000");

    auto again = connect(ci);
    ASSERT_TRUE(again.ok()) << again.error().message;
    EXPECT_EQ(write(*again), write(*info));
    EXPECT_EQ(argv_log(), log) << "no iscsiadm, multipath or multipathd ran";
    EXPECT_EQ(ivd::testing::slurp(dir_ / "faults/drop_scans"), "1000") << "no LUN was scanned";
    EXPECT_EQ(lab_.session_count(tid), 3);
    EXPECT_EQ(maps(), 1u);
    fs::remove(dir_ / "faults/drop_scans");
    ASSERT_TRUE(disconnect(ci, *again).ok());
}

// A portal that takes no new connections while its session goes on (tgtd stopped listening; the connection
// stays): the path works, so a reconnect keeps it and still lists it, rather than reporting it failed at the probe.
TEST_F(HostPathRepairTest, AWorkingPathStaysListedWhenItsPortalTakesNoNewConnections) {
    const std::string iqn = lab_.make_iqn("repair-keep");
    const int tid = lab_.create_target(iqn);
    lab_.add_lun(tid, 1);
    const auto ps = portals(3);
    const Json::Value ci = lists(ps, {iqn, iqn, iqn}, {1, 1, 1});
    driver();
    auto info = connect(ci);
    ASSERT_TRUE(info.ok()) << info.error().message;
    expect_all_active(*info, 3);
    const std::string log = argv_log();

    lab_.remove_portal(ps[0]);
    auto again = connect(ci);
    lab_.restore_portal(ps[0]);
    ASSERT_TRUE(again.ok()) << again.error().message;
    EXPECT_EQ(write(*again), write(*info));
    EXPECT_EQ(argv_log(), log);
    EXPECT_EQ(slaves(*again), 3u);
    EXPECT_EQ(lab_.session_count(tid), 3);
    ASSERT_TRUE(disconnect(ci, *again).ok());
    EXPECT_EQ(sessions(), 0u);
}

TEST_F(HostPathRepairTest, ARepairThatFailsForOnePathLeavesTheOthersAndStaysDegraded) {
    const std::string iqn = lab_.make_iqn("repair-fail");
    const int tid = lab_.create_target(iqn);
    lab_.add_lun(tid, 1);
    const auto ps = portals(3);
    const Json::Value ci = lists(ps, {iqn, iqn, iqn}, {1, 1, 1});
    driver();
    lab_.remove_portal(ps[2]);
    auto info = connect(ci);
    ASSERT_TRUE(info.ok()) << info.error().message;
    ASSERT_EQ((*info)["paths"].size(), 2u);

    // Back for the probe, but its login fails (iscsiadm's error): only that path is undone.
    lab_.restore_portal(ps[2]);
    set_fault("login_fail_" + ps[2].host + "_" + std::to_string(ps[2].port));
    auto again = connect(ci);
    ASSERT_TRUE(again.ok()) << again.error().message;
    EXPECT_EQ((*again)["paths"], (*info)["paths"]);
    EXPECT_EQ((*again)["path"], (*info)["path"]);
    ASSERT_EQ((*again)["failed_portals"].size(), 1u) << write(*again);
    EXPECT_EQ((*again)["failed_portals"][0]["stage"].asString(), "login");
    EXPECT_EQ(slaves(*again), 2u);
    EXPECT_EQ(lab_.session_count(tid), 2);
    EXPECT_EQ(node_records(), 1u);  // the target's directory, with the two kept portals' records
    EXPECT_EQ(count_entries(dir_ / "etc/iscsi/nodes" / iqn), 2u);
    EXPECT_EQ(maps(), 1u);

    fs::remove(dir_ / "faults" / ("login_fail_" + ps[2].host + "_" + std::to_string(ps[2].port)));
    auto healed = connect(ci);
    ASSERT_TRUE(healed.ok()) << healed.error().message;
    expect_all_active(*healed, 3);
    EXPECT_EQ((*healed)["path"], (*info)["path"]);
    ASSERT_TRUE(disconnect(ci, *healed).ok());
    EXPECT_EQ(sessions(), 0u);
}

}  // namespace

// Linux names sessions from a counter, but the driver remembers what it read of a session under its name after
// the session is gone, and a host whose ids are reused (an IDA; here the simulator's reuse_session_ids) gives the
// name to the next login. A remembered name must never be taken for its old target's session, nor hide the new
// target's.
TEST_F(HostPathRepairTest, ASessionNameReusedForAnotherTargetIsNeverTakenForTheOldOne) {
    set_fault("reuse_session_ids");
    const std::string x = lab_.make_iqn("reuse-x"), y = lab_.make_iqn("reuse-y");
    const int tx = lab_.create_target(x), ty = lab_.create_target(y);
    lab_.add_lun(tx, 1);
    lab_.add_lun(ty, 1);
    const auto ps = portals(1);
    const Json::Value a = lists(ps, {x}, {1});
    Json::Value b = lists(ps, {y}, {1});
    b["data"]["volume_id"] = "vol-2";
    driver({{"command_timeout_ms", "5000"}});
    auto info_a = connect(a);
    ASSERT_TRUE(info_a.ok()) << info_a.error().message;
    ASSERT_EQ(session_target("session1").find(x), 0u);

    logout_behind_the_drivers_back(x, ps[0]);
    login_behind_the_drivers_back(y, ps[0]);
    ASSERT_EQ(session_target("session1").find(y), 0u) << "the simulator did not reuse the name";

    auto info_b = connect(b);  // Y's session, under X's old name: found (the driver's login finds it there)
    ASSERT_TRUE(info_b.ok()) << info_b.error().message;
    expect_all_active(*info_b, 1);
    auto again = connect(a);  // X has no session: logged in again, never given Y's session1
    ASSERT_TRUE(again.ok()) << again.error().message;
    expect_all_active(*again, 1);
    EXPECT_EQ((*again)["scsi_wwn"], (*info_a)["scsi_wwn"]);
    EXPECT_NE((*again)["scsi_wwn"], (*info_b)["scsi_wwn"]);
    EXPECT_EQ(session_target("session2").find(x), 0u);
    EXPECT_EQ(lab_.session_count(tx), 1);
    EXPECT_EQ(lab_.session_count(ty), 1);
    EXPECT_EQ(sessions(), 2u);
}
