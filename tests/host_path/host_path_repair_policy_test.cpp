// Repair on reconnect, on the fake HostOps: a connect of a volume that is attached already keeps its paths as they
// are and attaches (multipath) only the missing ones into the same map; a healthy volume is left alone.
#include "policy_fixture.hpp"
#include "core/json_output.hpp"

#include <fmt/format.h>

namespace {

using namespace ivd::testing::policy;

// The journal entries after the first `from`.
std::vector<std::string> since(const std::vector<std::string> &journal, std::size_t from) {
    return {journal.begin() + static_cast<long>(from), journal.end()};
}

std::size_t count_prefix(const std::vector<std::string> &entries, const std::string &prefix) {
    return static_cast<std::size_t>(
        std::count_if(entries.begin(), entries.end(), [&](const std::string &e) { return e.rfind(prefix, 0) == 0; }));
}

void unreachable(ivd::iscsi::ProbeResult &r) {
    r.outcome = ivd::iscsi::ProbeOutcome::unreachable;
    r.identity.reset();
}

TEST_F(HostPathPolicy, ReconnectOfAHealthyVolumeChangesNothingAndAnswersTheSame) {
    auto info = connect();
    ASSERT_TRUE(info.ok()) << info.error().message;
    const std::size_t before = host().journal().size();
    const int probes = probes_;

    auto again = connect();
    ASSERT_TRUE(again.ok()) << again.error().message;
    EXPECT_EQ(*again, *info) << ivd::to_json(*again) << "\n" << ivd::to_json(*info);
    EXPECT_EQ(probes_, probes) << "no probe: every path is there";
    // Only the node record policy (a login call that finds the session) and the read-only readiness check.
    const auto after = since(host().journal(), before);
    for (const auto &e : after) {
        EXPECT_TRUE(e.rfind("login ", 0) == 0 || e.rfind("ready ", 0) == 0) << e;
    }
    EXPECT_EQ(count_prefix(after, "login "), portals.size());
    EXPECT_EQ(host().sessions(), portals.size());
    EXPECT_EQ(host().devices(), portals.size());
    ASSERT_TRUE(disconnect(*again).ok());
    EXPECT_EQ(host().sessions(), 0U);
}

TEST_F(HostPathPolicy, APortalThatFailedAtAttachIsAddedToTheSameMapOnReconnect) {
    probe_[portals[1]] = unreachable;
    auto info = connect();
    ASSERT_TRUE(info.ok()) << info.error().message;
    ASSERT_EQ((*info)["paths"].items().size(), 2U);
    ASSERT_EQ(column((*info)["failed_portals"], "portal"), std::vector<std::string>{portals[1]});
    const std::size_t before = host().journal().size();

    probe_.clear();  // the portal is back
    auto again = connect();
    ASSERT_TRUE(again.ok()) << again.error().message;
    EXPECT_EQ((*again)["path"], (*info)["path"]);
    EXPECT_EQ((*again)["scsi_wwn"], (*info)["scsi_wwn"]);
    EXPECT_EQ(column((*again)["paths"], "portal"), portals) << "in the order of the targets";
    EXPECT_EQ(column((*again)["paths"], "state"), (std::vector<std::string>{"active", "active", "active"}));
    EXPECT_TRUE((*again)["failed_portals"].items().empty()) << ivd::to_json(*again);
    // Only the missing path was logged in, scanned and offered; the kept ones were not touched.
    const auto after = since(host().journal(), before);
    EXPECT_EQ(count_prefix(after, "scan "), 1U);
    EXPECT_EQ(count_prefix(after, "scan " + portals[1]), 1U);
    EXPECT_EQ(count_prefix(after, "add_path "), 1U);
    for (const auto &e : after) {
        EXPECT_TRUE(e.rfind("remove_device", 0) != 0 && e.rfind("logout", 0) != 0 && e.rfind("flush", 0) != 0) << e;
    }
    ASSERT_TRUE(disconnect(*again).ok());
    EXPECT_EQ(host().sessions(), 0U);
    EXPECT_EQ(host().node_records(), 0U);
}

// A kept path is not probed again: a portal refusing new connections while its session goes on stays listed.
TEST_F(HostPathPolicy, AnAttachedPathIsKeptEvenWhenItsPortalNoLongerAnswersAProbe) {
    auto info = connect();
    ASSERT_TRUE(info.ok()) << info.error().message;
    probe_[portals[0]] = unreachable;
    auto again = connect();
    ASSERT_TRUE(again.ok()) << again.error().message;
    EXPECT_EQ(*again, *info);
}

TEST_F(HostPathPolicy, ALostSessionIsLoggedInAgainAndItsPathAdded) {
    auto info = connect();
    ASSERT_TRUE(info.ok()) << info.error().message;
    host().lose_session(portals[2]);
    ASSERT_EQ(host().sessions(), 2U);

    auto again = connect();
    ASSERT_TRUE(again.ok()) << again.error().message;
    EXPECT_EQ(host().sessions(), 3U);
    EXPECT_EQ((*again)["path"], (*info)["path"]);
    EXPECT_EQ(column((*again)["paths"], "state"), (std::vector<std::string>{"active", "active", "active"}));
    EXPECT_TRUE((*again)["failed_portals"].items().empty());
    EXPECT_EQ(host().count("scan " + portals[2]), 2U);  // the first connect's and the repair's
    EXPECT_EQ(host().count("scan " + portals[0]), 1U);
}

TEST_F(HostPathPolicy, ARepairThatFailsLeavesTheKeptPathsAsTheyWereAndStaysDegraded) {
    probe_[portals[1]] = unreachable;
    auto info = connect();
    ASSERT_TRUE(info.ok()) << info.error().message;
    probe_.clear();
    host().fail("device", portals[1], Status::timeout);  // back for the probe, but its LUN never appears
    const std::size_t before = host().journal().size();

    auto again = connect();
    ASSERT_TRUE(again.ok()) << again.error().message;
    EXPECT_EQ((*again)["path"], (*info)["path"]);
    EXPECT_EQ((*again)["paths"], (*info)["paths"]);
    ASSERT_EQ(column((*again)["failed_portals"], "stage"), std::vector<std::string>{"device"});
    EXPECT_EQ((*again)["failed_portals"][0]["portal"].as_string(), portals[1]);
    // The failed path was undone (session, node record); the kept ones were not touched.
    const auto after = since(host().journal(), before);
    for (const auto &e : after) {
        if (e.rfind("logout", 0) == 0 || e.rfind("delete_node", 0) == 0 || e.rfind("remove_device", 0) == 0) {
            EXPECT_NE(e.find(portals[1]), std::string::npos) << e;
        }
        EXPECT_EQ(e.rfind("flush", 0), std::string::npos) << e;
    }
    EXPECT_FALSE(host().has_session(portals[1]));
    EXPECT_EQ(host().sessions(), 2U);
    EXPECT_EQ(host().node_records(), 2U);

    host().clear_failures();  // and a later reconnect heals it
    auto healed = connect();
    ASSERT_TRUE(healed.ok()) << healed.error().message;
    EXPECT_EQ((*healed)["paths"].items().size(), 3U);
    EXPECT_TRUE((*healed)["failed_portals"].items().empty());
}

TEST_F(HostPathPolicy, AnAddedPathThatDoesNotJoinTheMapIsUndoneAlone) {
    probe_[portals[0]] = unreachable;
    auto info = connect();
    ASSERT_TRUE(info.ok()) << info.error().message;
    probe_.clear();
    host().set_map_forms(false);  // multipathd takes the path but it never shows in the map

    auto again = connect();
    ASSERT_TRUE(again.ok()) << again.error().message;
    EXPECT_EQ((*again)["path"], (*info)["path"]);
    EXPECT_EQ((*again)["paths"], (*info)["paths"]);
    ASSERT_EQ(column((*again)["failed_portals"], "stage"), std::vector<std::string>{"multipath_wait"});
    EXPECT_FALSE(host().has_session(portals[0]));
    EXPECT_EQ(host().count("flush "), 0U);
    EXPECT_EQ(host().devices(), 2U);
}

TEST_F(HostPathPolicy, AMissingPortalLeadingToAnotherLuIsNotLoggedIn) {
    probe_[portals[2]] = unreachable;
    auto info = connect();
    ASSERT_TRUE(info.ok()) << info.error().message;
    probe_[portals[2]] = [](ivd::iscsi::ProbeResult &r) { r.identity = ivd::iscsi::LuIdentity{"3600other", {"3:3600other"}}; };

    auto again = connect();
    ASSERT_TRUE(again.ok()) << again.error().message;
    EXPECT_EQ((*again)["paths"], (*info)["paths"]);
    ASSERT_EQ(column((*again)["failed_portals"], "reason"), std::vector<std::string>{"inconsistent_storage"});
    EXPECT_EQ(host().count("login " + portals[2]), 0U);
}

TEST_F(HostPathPolicy, AMapThatDoesNotReadAfterARepairUndoesOnlyTheAddedPath) {
    probe_[portals[1]] = unreachable;
    auto info = connect();
    ASSERT_TRUE(info.ok()) << info.error().message;
    probe_.clear();
    host().fail("ready", "", Status::timeout);

    auto again = connect();
    ASSERT_FALSE(again.ok());
    EXPECT_EQ(again.error().status, Status::timeout);
    EXPECT_EQ(host().count("flush "), 0U) << "the map was there before: it stays";
    EXPECT_FALSE(host().has_session(portals[1]));
    EXPECT_EQ(host().sessions(), 2U);
    EXPECT_EQ(host().devices(), 2U);
}

TEST_F(HostPathPolicy, SinglePathReconnectKeepsTheServingPath) {
    decision_.multipath = false;
    auto info = connect();
    ASSERT_TRUE(info.ok()) << info.error().message;
    const std::size_t scans = host().count("scan ");
    auto again = connect();
    ASSERT_TRUE(again.ok()) << again.error().message;
    EXPECT_EQ(*again, *info);
    EXPECT_EQ(host().count("scan "), scans);
    EXPECT_EQ(host().sessions(), 1U);
}

}  // namespace
