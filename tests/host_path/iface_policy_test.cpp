// iscsi_ifaces in the host path's policy: every (portal, iface) pair is a path, missing ifaces are made from
// their netdev or refused before anything is done, and disconnect touches only the sessions of our ifaces.
#include "policy_fixture.hpp"

namespace {

using namespace ivd::testing::policy;

class HostPathIfaces : public HostPathPolicy {
protected:
    HostPathIfaces() {
        volume_.targets.resize(2);  // two portals
        config_.iscsi_ifaces = {{"ivd0", "eth1"}, {"ivd1", "eth2"}};
    }
};

TEST_F(HostPathIfaces, TwoIfacesTimesTwoPortalsAreFourPathsInOneMap) {
    auto info = connect();
    ASSERT_TRUE(info.ok()) << info.error().message;
    // Both ifaces were missing: made from their netdevs before any login.
    EXPECT_EQ(host().ifaces(), (std::map<std::string, std::string>{{"ivd0", "eth1"}, {"ivd1", "eth2"}}));
    const auto j = host().journal();
    ASSERT_GE(j.size(), 3U);
    EXPECT_EQ(j[0], "iface_new ivd0 eth1");
    EXPECT_EQ(j[1], "iface_new ivd1 eth2");
    EXPECT_EQ(host().sessions_via("ivd0"), 2U);
    EXPECT_EQ(host().sessions_via("ivd1"), 2U);
    EXPECT_EQ(host().sessions_via("default"), 0U);
    EXPECT_EQ((*info)["path"].as_string(), "/dev/dm-0");
    EXPECT_EQ(column((*info)["paths"], "state"), (std::vector<std::string>(4, "active")));
    EXPECT_EQ(column((*info)["paths"], "iface"), (std::vector<std::string>{"ivd0", "ivd1", "ivd0", "ivd1"}));
    EXPECT_EQ(column((*info)["paths"], "portal"), (std::vector<std::string>{portals[0], portals[0], portals[1], portals[1]}));

    // device_info reads back with each path's iface, and disconnect takes every path down.
    auto typed = request::parse_device_info(*info);
    ASSERT_TRUE(typed.ok()) << typed.error().message;
    EXPECT_EQ(typed->block().paths[1].iface, "ivd1");
    ASSERT_TRUE(disconnect(*info).ok());
    EXPECT_EQ(host().sessions(), 0U);
    EXPECT_EQ(host().devices(), 0U);
    EXPECT_EQ(host().node_records(), 0U);
    EXPECT_EQ(host().count("logout " + portals[0] + " via ivd1"), 1U);
}

TEST_F(HostPathIfaces, AMissingIfaceWithoutNetdevIsAConfigErrorBeforeAnything) {
    config_.iscsi_ifaces = {{"ivd0", "eth1"}, {"gone", ""}};
    auto info = connect();
    ASSERT_FALSE(info.ok());
    EXPECT_EQ(info.error().status, Status::config);
    EXPECT_EQ(info.error().field, "iscsi_ifaces");
    EXPECT_NE(info.error().message.find("iscsi_ifaces"), std::string::npos) << info.error().message;
    EXPECT_NE(info.error().message.find("gone"), std::string::npos) << info.error().message;
    EXPECT_EQ(probes_, 0);
    EXPECT_EQ(host().sessions(), 0U);
    EXPECT_EQ(host().node_records(), 0U);
    EXPECT_EQ(host().count("login "), 0U);
}

TEST_F(HostPathIfaces, AnExistingIfaceBoundElsewhereIsRefused) {
    host_setup_.push_back([](FakeHostOps &h) { h.add_iface("ivd0", "eth9"); });
    auto info = connect();
    ASSERT_FALSE(info.ok());
    EXPECT_EQ(info.error().field, "iscsi_ifaces");
    EXPECT_EQ(host().count("login "), 0U);
}

// Another volume's session to the same portal and LUN through an iface that is not ours stays.
TEST_F(HostPathIfaces, DisconnectLeavesSessionsOfOtherIfaces) {
    config_.iscsi_ifaces = {{"ivd0", ""}};
    host_setup_.push_back([](FakeHostOps &h) {
        h.add_iface("ivd0");
        h.add_foreign_lun(portal(portals[0]), iqn, 1, "other");
    });
    auto info = connect();
    ASSERT_TRUE(info.ok()) << info.error().message;
    EXPECT_EQ(column((*info)["paths"], "iface"), (std::vector<std::string>{"ivd0", "ivd0"}));
    ASSERT_TRUE(disconnect(*info).ok());
    EXPECT_EQ(host().sessions_via("other"), 1U);
    EXPECT_EQ(host().sessions_via("ivd0"), 0U);
    EXPECT_EQ(host().devices(), 1U);
    EXPECT_EQ(host().count("logout " + portals[0] + " via ivd0"), 1U);
    EXPECT_EQ(host().count("logout " + portals[0] + " via other"), 0U);
}

TEST_F(HostPathIfaces, SinglePathTriesEachPortalThroughEachIfaceInTurn) {
    decision_.multipath = false;
    host_setup_.push_back([](FakeHostOps &h) { h.fail("login", portals[0]); });
    auto info = connect();
    ASSERT_TRUE(info.ok()) << info.error().message;
    std::vector<std::string> logins;
    for (const auto &e : host().journal()) {
        if (e.rfind("login ", 0) == 0) logins.push_back(e);
    }
    EXPECT_EQ(logins, (std::vector<std::string>{"login " + portals[0] + " via ivd0", "login " + portals[0] + " via ivd1",
                                                "login " + portals[1] + " via ivd0"}));
    EXPECT_EQ(column((*info)["failed_portals"], "iface"), (std::vector<std::string>{"ivd0", "ivd1"}));
    EXPECT_EQ(column((*info)["paths"], "iface"), (std::vector<std::string>{"ivd0"}));
}

// Connect again after a portal's sessions were lost: only its (portal, iface) paths log in again; same map.
TEST_F(HostPathIfaces, ConnectAgainRepairsTheMissingPortalIfacePathsOnly) {
    auto info = connect();
    ASSERT_TRUE(info.ok()) << info.error().message;
    host().lose_session(portals[1]);
    EXPECT_EQ(host().sessions(), 2U);
    const std::size_t logins_before = host().count("login ");
    auto again = connect();
    ASSERT_TRUE(again.ok()) << again.error().message;
    EXPECT_EQ((*again)["path"], (*info)["path"]);
    EXPECT_EQ(column((*again)["paths"], "iface"), (std::vector<std::string>{"ivd0", "ivd1", "ivd0", "ivd1"}));
    EXPECT_EQ(column((*again)["paths"], "state"), (std::vector<std::string>(4, "active")));
    EXPECT_TRUE((*again)["failed_portals"].items().empty());
    EXPECT_EQ(host().sessions(), 4U);
    // The kept paths: the record policy only (a login call that finds the session); the lost ones log in.
    EXPECT_EQ(host().count("login ") - logins_before, 4U);
    EXPECT_EQ(host().count("scan " + portals[0]), 2U);  // from the first connect only
    ASSERT_TRUE(disconnect(*again).ok());
    EXPECT_EQ(host().sessions(), 0U);
}

// "default" alone: no iface key anywhere, the fake's journal as before ifaces.
TEST_F(HostPathPolicy, TheDefaultIfaceWritesNoIfaceKey) {
    auto info = connect();
    ASSERT_TRUE(info.ok()) << info.error().message;
    for (const auto &p : (*info)["paths"].items()) EXPECT_EQ(p.find("iface"), nullptr);
    EXPECT_EQ(host().count("iface_new"), 0U);
    EXPECT_EQ(host().count("login " + portals[0]), 1U);
}

TEST(DeviceInfoIface, AbsentIsDefaultAndABadNameIsRefused) {
    auto doc = ivd::json::parse(std::string(R"({"type":"block","path":"/dev/dm-0","paths":[
        {"portal":"127.0.0.1:3260","iqn":"iqn.2024-01.org.example:t","lun":1,"device":"/dev/sda","state":"active"},
        {"portal":"127.0.0.1:3260","iqn":"iqn.2024-01.org.example:t","lun":1,"device":"/dev/sdb","state":"active","iface":"ivd0"}]})"));
    ASSERT_TRUE(doc.ok);
    auto info = request::parse_device_info(doc.value);
    ASSERT_TRUE(info.ok()) << info.error().message;
    EXPECT_EQ(info->block().paths[0].iface, "default");
    EXPECT_EQ(info->block().paths[1].iface, "ivd0");
    EXPECT_EQ(info->to_json_text(), ivd::json::write(info->to_json()));
    EXPECT_NE(info->to_json_text().find(R"("iface":"ivd0")"), std::string::npos);

    auto bad = ivd::json::parse(std::string(R"({"type":"block","path":"/dev/dm-0","paths":[
        {"portal":"127.0.0.1:3260","iqn":"iqn.2024-01.org.example:t","lun":1,"device":"/dev/sda","state":"active","iface":"../x"}]})"));
    ASSERT_TRUE(bad.ok);
    auto refused = request::parse_device_info(bad.value);
    ASSERT_FALSE(refused.ok());
    EXPECT_NE(refused.error().message.find("iface"), std::string::npos) << refused.error().message;
}

}  // namespace
