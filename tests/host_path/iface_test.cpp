// iscsi_ifaces on the simulated host with real tgtd logins: two ifaces x two portals are four paths in one map,
// each session carrying its iface; a missing iface is a config error naming the key with nothing left behind;
// "default" alone runs exactly the iscsiadm commands of before.
#include "host_path_fixture.hpp"

#include <set>
#include <sstream>

namespace {

using namespace ivd::testing::hostpath;
namespace hostpath = ivd::testing::hostpath;

std::vector<std::string> lines_of(const std::string &text) {
    std::vector<std::string> lines;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    return lines;
}

// A sysfs attribute as the kernel shows it (one line).
std::string attribute(const fs::path &p) {
    std::string text = slurp(p);
    while (!text.empty() && text.back() == '\n') text.pop_back();
    return text;
}

std::string record_value(const fs::path &record, const std::string &key) {
    for (const auto &line : lines_of(slurp(record))) {
        if (line.rfind(key + " = ", 0) == 0) return line.substr(key.size() + 3);
    }
    return {};
}

TEST_F(HostPathTest, TwoIfacesTimesTwoPortalsAreFourPathsInOneMap) {
    const std::string iqn = lab_.make_iqn("ifaces");
    const int tid = lab_.create_target(iqn);
    lab_.add_lun(tid, 1);
    const auto ps = portals(2);
    const Json::Value ci = lists(ps, {iqn, iqn}, {1, 1});
    driver({{"iscsi_ifaces", "ivd0:lo,ivd1:lo"}});

    auto info = connect(ci);
    ASSERT_TRUE(info.ok()) << info.error().message;
    // The ifaces were made from their netdevs before any login.
    for (const char *name : {"ivd0", "ivd1"}) {
        EXPECT_EQ(record_value(dir_ / "etc/iscsi/ifaces" / name, "iface.net_ifacename"), "lo") << name;
    }
    const std::string path = (*info)["path"].asString();
    ASSERT_EQ(fs::path(path).filename().string().rfind("dm-", 0), 0u) << hostpath::write(*info);
    ASSERT_EQ((*info)["paths"].size(), 4u) << hostpath::write(*info);
    std::multiset<std::string> pairs;
    for (const auto &p : (*info)["paths"]) {
        EXPECT_EQ(p["state"].asString(), "active") << hostpath::write(p);
        pairs.insert(p["portal"].asString() + " " + p["iface"].asString());
    }
    EXPECT_EQ(pairs, (std::multiset<std::string>{ps[0].to_string() + " ivd0", ps[0].to_string() + " ivd1",
                                                  ps[1].to_string() + " ivd0", ps[1].to_string() + " ivd1"}));
    EXPECT_EQ(count_entries(dir_ / "sys/block" / fs::path(path).filename() / "slaves"), 4u);
    EXPECT_EQ(lab_.session_count(tid), 4);
    ASSERT_EQ(sessions(), 4u);
    std::multiset<std::string> session_ifaces;
    for (const auto &s : fs::directory_iterator(dir_ / "sys/class/iscsi_session")) {
        session_ifaces.insert(attribute(s.path() / "ifacename"));
    }
    EXPECT_EQ(session_ifaces, (std::multiset<std::string>{"ivd0", "ivd0", "ivd1", "ivd1"}));
    // Each (portal, iface) has its own node record, made with the TPGT SendTargets reported (tgtd's 1).
    for (const auto &p : ps) {
        for (const char *name : {"ivd0", "ivd1"}) {
            const fs::path record = dir_ / "etc/iscsi/nodes" / iqn / (p.host + "," + std::to_string(p.port) + ",1") / name;
            EXPECT_EQ(record_value(record, "iface.iscsi_ifacename"), name) << record;
            EXPECT_EQ(record_value(record, "node.session.scan"), "manual") << record;
        }
    }
    const std::string log = argv_log();
    EXPECT_NE(log.find("iscsiadm -m iface -I ivd0 -o new"), std::string::npos) << log;
    EXPECT_NE(log.find("iscsiadm -m iface -I ivd0 -o update -n iface.net_ifacename -v lo"), std::string::npos) << log;
    EXPECT_NE(log.find("-p " + ps[1].to_string() + ",1 --interface ivd1 --op new"), std::string::npos) << log;
    EXPECT_NE(log.find("-p " + ps[1].to_string() + " --interface ivd1 --login"), std::string::npos) << log;

    // Connect again: the ifaces are there now, and the answer is the same with no new session.
    auto again = connect(ci);
    ASSERT_TRUE(again.ok()) << again.error().message;
    EXPECT_EQ((*again)["paths"], (*info)["paths"]);
    EXPECT_EQ(lab_.session_count(tid), 4);

    auto d = disconnect(ci, *info);
    ASSERT_TRUE(d.ok()) << d.error().message;
    EXPECT_EQ(sessions(), 0u);
    EXPECT_EQ(lab_.session_count(tid), 0);
    EXPECT_FALSE(fs::exists(dir_ / "etc/iscsi/nodes" / iqn));
    EXPECT_FALSE(fs::exists(path));
}

// Another host user's session through the default iface to the same portal and LUN is not ours: it stays.
TEST_F(HostPathTest, DisconnectThroughIfacesLeavesTheDefaultIfacesSession) {
    const std::string iqn = lab_.make_iqn("ifaceother");
    const int tid = lab_.create_target(iqn);
    lab_.add_lun(tid, 1);
    const auto ps = portals(1);
    const Json::Value ci = lists(ps, {iqn}, {1});
    driver();
    auto other = connect(ci);  // through "default"
    ASSERT_TRUE(other.ok()) << other.error().message;
    driver({{"iscsi_ifaces", "ivd0:lo"}});
    auto info = connect(ci);
    ASSERT_TRUE(info.ok()) << info.error().message;
    EXPECT_EQ(lab_.session_count(tid), 2);
    ASSERT_TRUE(disconnect(ci, *info).ok());
    ASSERT_EQ(sessions(), 1u);
    EXPECT_EQ(lab_.session_count(tid), 1);
    for (const auto &s : fs::directory_iterator(dir_ / "sys/class/iscsi_session")) {
        EXPECT_EQ(attribute(s.path() / "ifacename"), "default");
    }
    driver();
    ASSERT_TRUE(disconnect(ci, *other).ok());
    EXPECT_EQ(sessions(), 0u);
}

TEST_F(HostPathTest, AMissingIfaceWithoutNetdevIsAConfigErrorAndNothingIsLeft) {
    const std::string iqn = lab_.make_iqn("ifacegone");
    const int tid = lab_.create_target(iqn);
    lab_.add_lun(tid, 1);
    const auto ps = portals(2);
    driver({{"iscsi_ifaces", "ivd0:lo,gone"}});
    auto info = connect(lists(ps, {iqn, iqn}, {1, 1}));
    ASSERT_FALSE(info.ok());
    EXPECT_EQ(info.error().status, ivd::Status::config);
    EXPECT_NE(info.error().message.find("iscsi_ifaces"), std::string::npos) << info.error().message;
    EXPECT_NE(info.error().message.find("\"gone\" does not exist"), std::string::npos) << info.error().message;
    EXPECT_EQ(sessions(), 0u);
    EXPECT_EQ(node_records(), 0u);
    EXPECT_EQ(lab_.session_count(tid), 0);
    EXPECT_FALSE(fs::exists(dir_ / "etc/iscsi/ifaces/gone"));
    for (const auto &line : lines_of(argv_log())) EXPECT_NE(line.find("-m iface"), std::string::npos) << line;
}

// A new iface whose binding fails is removed again: nothing half made stays.
TEST_F(HostPathTest, AnIfaceWhoseBindingFailsIsRemovedAgain) {
    const std::string iqn = lab_.make_iqn("ifacebind");
    const int tid = lab_.create_target(iqn);
    lab_.add_lun(tid, 1);
    driver({{"iscsi_ifaces", "ivd0:lo"}});
    set_fault("iface_update_fail");
    auto info = connect(lists(portals(1), {iqn}, {1}));
    ASSERT_FALSE(info.ok());
    EXPECT_EQ(info.error().status, ivd::Status::config);
    EXPECT_NE(info.error().message.find("iscsi_ifaces: binding iface \"ivd0\" to \"lo\" failed"), std::string::npos)
        << info.error().message;
    EXPECT_FALSE(fs::exists(dir_ / "etc/iscsi/ifaces/ivd0"));
    EXPECT_EQ(sessions(), 0u);
}

// "default" alone (the default): the argv of one path is exactly what it was before iscsi_ifaces.
TEST_F(HostPathTest, TheDefaultIfaceRunsTheSameIscsiadmCommandsAsBefore) {
    const std::string iqn = lab_.make_iqn("ifacedefault");
    const int tid = lab_.create_target(iqn);
    lab_.add_lun(tid, 1);
    const auto ps = portals(1);
    driver({{"iscsi_ifaces", "default"}});
    const Json::Value ci = lists(ps, {iqn}, {1});
    auto info = connect(ci);
    ASSERT_TRUE(info.ok()) << info.error().message;
    EXPECT_FALSE((*info)["paths"][0].isMember("iface"));
    ASSERT_TRUE(disconnect(ci, *info).ok());
    std::vector<std::string> iscsiadm;
    for (const auto &line : lines_of(argv_log())) {
        if (line.rfind("iscsiadm ", 0) == 0) iscsiadm.push_back(line);
    }
    const std::string p = ps[0].to_string();
    EXPECT_EQ(iscsiadm, (std::vector<std::string>{
                            "iscsiadm -m node -T " + iqn + " -p " + p + " --interface default --op new",
                            "iscsiadm -m node -T " + iqn + " -p " + p + " --interface default --login",
                            "iscsiadm -m node -T " + iqn + " -p " + p + " --interface default --logout",
                            "iscsiadm -m node -T " + iqn + " -p " + p + " --interface default --op delete",
                        }));
    // The static record, as before.
    EXPECT_FALSE(fs::exists(dir_ / "etc/iscsi/nodes" / iqn));
}

}  // namespace
