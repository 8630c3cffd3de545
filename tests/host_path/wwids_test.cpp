// `multipath -a` on the simulated host: a connect runs it only for a WWID multipath's wwids file does not list
// (multipath_wwids_file); the stand-in multipath keeps that file as multipath-tools does.
#include "host_path_fixture.hpp"

#include <gtest/gtest.h>
#include <json/json.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace {

namespace fs = std::filesystem;
using ivd::testing::slurp;
using ivd::testing::hostpath::HostPathTest;
using ivd::testing::hostpath::write;

class WwidsTest : public HostPathTest {
protected:
    std::size_t runs(const std::string &needle) const {
        std::istringstream in(argv_log());
        std::size_t n = 0;
        for (std::string line; std::getline(in, line);) n += line.find(needle) != std::string::npos ? 1 : 0;
        return n;
    }
    std::string wwids() const { return slurp(dir_ / "etc/multipath/wwids"); }
    // One target with LUN 1 on two portals; the connect's device_info.
    Json::Value attach(const std::string &iqn) {
        auto info = connect(lists(portals(2), {iqn, iqn}, {1, 1}));
        EXPECT_TRUE(info.ok()) << info.error().message;
        if (!info.ok()) return {};
        EXPECT_EQ((*info)["paths"].size(), 2u) << write(*info);
        return *info;
    }
    void detach(const std::string &iqn, const Json::Value &info) {
        auto d = disconnect(lists(portals(2), {iqn, iqn}, {1, 1}), info);
        EXPECT_TRUE(d.ok()) << d.error().message;
    }
};

// Fails before the wwids file was read: every connect ran `multipath -a` (the real one rewrites the file, ~2 s
// per connect on a guest).
TEST_F(WwidsTest, SecondConnectOfAVolumeRunsNoMultipathA) {
    const std::string iqn = lab_.make_iqn("wwids-again");
    lab_.add_lun(lab_.create_target(iqn), 1);
    driver();
    const Json::Value first = attach(iqn);
    const std::string wwid = first["scsi_wwn"].asString();
    ASSERT_FALSE(wwid.empty()) << write(first);
    EXPECT_EQ(runs("multipath -a "), 1u) << argv_log();
    EXPECT_NE(wwids().find("\n/" + wwid + "/"), std::string::npos) << wwids();
    detach(iqn, first);

    const Json::Value second = attach(iqn);
    EXPECT_EQ(second["multipath_id"].asString(), wwid) << write(second);
    EXPECT_EQ(runs("multipath -a "), 1u) << "the wwids file lists the WWID: no second run\n" << argv_log();
    EXPECT_EQ(runs("multipathd add path "), 4u) << argv_log();
    detach(iqn, second);
}

// A WWID the file does not list (another volume's, one only in a comment, or no file at all) still runs it.
TEST_F(WwidsTest, AWwidNotListedStillRunsMultipathA) {
    const std::string a = lab_.make_iqn("wwids-a");
    const std::string b = lab_.make_iqn("wwids-b");
    lab_.add_lun(lab_.create_target(a), 1);
    lab_.add_lun(lab_.create_target(b), 1);
    driver();
    const Json::Value info_a = attach(a);
    const Json::Value info_b = attach(b);
    ASSERT_NE(info_a["scsi_wwn"], info_b["scsi_wwn"]);
    EXPECT_EQ(runs("multipath -a "), 2u) << argv_log();
    EXPECT_EQ(runs("multipath -a " + info_b["scsi_wwn"].asString()), 1u) << argv_log();
    detach(b, info_b);

    // Only in a comment: not listed.
    const std::string wwid_b = info_b["scsi_wwn"].asString();
    std::string text = wwids();
    text.replace(text.find("/" + wwid_b + "/"), wwid_b.size() + 2, "# /" + wwid_b + "/");
    std::ofstream(dir_ / "etc/multipath/wwids", std::ios::trunc) << text << "\n";
    const Json::Value again_b = attach(b);
    EXPECT_EQ(runs("multipath -a " + wwid_b), 2u) << argv_log();
    detach(b, again_b);

    // No file (multipath never ran on this host): run.
    detach(a, info_a);
    fs::remove(dir_ / "etc/multipath/wwids");
    const Json::Value again_a = attach(a);
    EXPECT_EQ(runs("multipath -a " + info_a["scsi_wwn"].asString()), 2u) << argv_log();
    EXPECT_NE(wwids().find("# Multipath wwids"), std::string::npos) << "the stand-in writes the header: " << wwids();
    detach(a, again_a);
}

}  // namespace
