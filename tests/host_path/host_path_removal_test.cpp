// Clean removal on the simulated host with real tgtd logins (issue 17 item 3): multipathd's path list after a
// disconnect, `multipathd del path` for a path it keeps listing, a held-open map (plain disconnect fails with
// everything intact; forced, the map is deleted through multipathd once its holder lets go).
#include "host_path_fixture.hpp"

#include <volume_driver/volume_driver.h>

#include <algorithm>

namespace {

using namespace ivd::testing::hostpath;

class HostPathRemovalTest : public HostPathTest {
protected:
    // Two paths of one LUN; the driver with short removal bounds.
    Json::Value attach() {
        const std::string iqn = lab_.make_iqn("removal");
        tid_ = lab_.create_target(iqn);
        lab_.add_lun(tid_, 1);
        ci_ = lists(portals(2), {iqn, iqn}, {1, 1});
        driver({{"path_removal_timeout_ms", "300"}, {"map_removal_timeout_ms", "1500"}});
        auto info = connect(ci_);
        EXPECT_TRUE(info.ok()) << (info.ok() ? "" : info.error().message);
        return info.ok() ? *info : Json::Value();
    }
    std::vector<std::string> devices(const Json::Value &info) const {
        std::vector<std::string> out;
        for (const auto &p : info["paths"]) out.push_back(fs::path(p["device"].asString()).filename().string());
        return out;
    }
    std::string listed() const { return slurp(dir_ / "state/multipathd_paths"); }
    bool map_there(const Json::Value &info) const { return fs::exists(dir_ / "dev/mapper" / info["multipath_id"].asString()); }
    std::size_t count(const std::string &argv_prefix) const {
        const std::string log = argv_log();
        std::size_t n = 0;
        for (std::size_t at = log.find(argv_prefix); at != std::string::npos; at = log.find(argv_prefix, at + 1)) ++n;
        return n;
    }

    int tid_ = 0;
    Json::Value ci_;
};

TEST_F(HostPathRemovalTest, MultipathdListsNoRemovedPathAfterAPlainDisconnect) {
    const Json::Value info = attach();
    ASSERT_EQ(info["paths"].size(), 2u);
    for (const auto &d : devices(info)) EXPECT_NE(listed().find(d), std::string::npos) << listed();
    ASSERT_TRUE(disconnect(ci_, info).ok());
    EXPECT_EQ(listed(), "");
    EXPECT_EQ(count("multipathd show paths raw format %d"), 1u) << argv_log();
    EXPECT_EQ(count("multipathd del "), 0u) << argv_log();
    EXPECT_EQ(sessions(), 0u);
}

TEST_F(HostPathRemovalTest, APathMultipathdKeepsListingIsDeletedFromIt) {
    const Json::Value info = attach();
    ASSERT_EQ(info["paths"].size(), 2u);
    set_fault("keep_removed_paths");  // multipathd misses the remove uevents
    ASSERT_TRUE(disconnect(ci_, info).ok());
    for (const auto &d : devices(info)) EXPECT_EQ(count("multipathd del path " + d + "\n"), 1u) << argv_log();
    EXPECT_EQ(listed(), "");
    EXPECT_EQ(sessions(), 0u);
    EXPECT_EQ(count_entries(dir_ / "sys/block"), 0u);
}

TEST_F(HostPathRemovalTest, AMultipathdThatDoesNotAnswerIsNoFailure) {
    const Json::Value info = attach();
    set_fault("multipathd_down");
    ASSERT_TRUE(disconnect(ci_, info).ok());
    EXPECT_EQ(sessions(), 0u);
    EXPECT_EQ(count("multipathd del "), 0u) << argv_log();
}

// The holder (a guest's QEMU, a process with the map open) lets go during the forced disconnect: its 3 refusals
// are the plain flush, the forced flush and the first `del map`; the second `del map` removes the map.
TEST_F(HostPathRemovalTest, AHeldOpenMapFailsAPlainDisconnectIntactAndForceIgnoreErrorsLeavesNothing) {
    const Json::Value info = attach();
    ASSERT_EQ(info["paths"].size(), 2u);
    const std::size_t records = node_records();
    set_fault("map_held_open", "3");
    auto plain = disconnect(ci_, info);
    ASSERT_FALSE(plain.ok());
    EXPECT_NE(plain.error().message.find("map in use"), std::string::npos) << plain.error().message;
    EXPECT_TRUE(map_there(info));
    EXPECT_EQ(count_entries(dir_ / "sys/block" / fs::path(info["path"].asString()).filename() / "slaves"), 2u);
    EXPECT_EQ(lab_.session_count(tid_), 2);
    EXPECT_EQ(node_records(), records);
    for (const auto &d : devices(info)) EXPECT_TRUE(fs::exists(dir_ / "sys/block" / d)) << d;
    EXPECT_EQ(count("multipathd del "), 0u) << argv_log();

    ASSERT_TRUE(disconnect(ci_, info, VD_DISCONNECT_FORCE | VD_DISCONNECT_IGNORE_ERRORS).ok());
    EXPECT_FALSE(map_there(info));
    EXPECT_EQ(count_entries(dir_ / "sys/block"), 0u);  // no path device and no dm-N
    EXPECT_EQ(lab_.session_count(tid_), 0);
    EXPECT_EQ(sessions(), 0u);
    EXPECT_EQ(node_records(), 0u);
    EXPECT_EQ(listed(), "");
    EXPECT_EQ(count("multipathd del map " + info["multipath_id"].asString()), 2u) << argv_log();
}

// A holder that never lets go during the disconnect: the kernel refuses to remove an open map, so the forced
// disconnect gives it an error table and deferred removal (dmsetup), reports "removal deferred until closed", and
// the map goes when the holder closes it. Everything else of the volume goes at once.
TEST_F(HostPathRemovalTest, AMapHeldOpenThroughoutHasItsRemovalDeferredUntilTheHolderCloses) {
    const Json::Value info = attach();
    const std::string name = info["multipath_id"].asString();
    const fs::path dm = dir_ / "sys/block" / fs::path(info["path"].asString()).filename();
    set_fault("map_held_open");
    auto plain = disconnect(ci_, info);
    ASSERT_FALSE(plain.ok());
    EXPECT_EQ(count("dmsetup "), 0u) << "a plain disconnect changes nothing: " << argv_log();
    EXPECT_EQ(lab_.session_count(tid_), 2);

    auto forced = disconnect(ci_, info, VD_DISCONNECT_FORCE);
    ASSERT_FALSE(forced.ok());  // the failed flush is reported (data in flight may be lost)
    EXPECT_NE(forced.error().message.find("flush_multipath"), std::string::npos) << forced.error().message;
    EXPECT_NE(forced.error().message.find("removal deferred until closed"), std::string::npos) << forced.error().message;
    EXPECT_NE(forced.error().message.find(name), std::string::npos) << forced.error().message;
    EXPECT_EQ(forced.error().message.find("multipathd_del_map"), std::string::npos) << forced.error().message;
    EXPECT_EQ(count("dmsetup remove --deferred " + name + "\n"), 1u) << argv_log();
    EXPECT_EQ(count("dmsetup wipe_table " + name + "\n"), 1u) << argv_log();
    EXPECT_LT(argv_log().find("dmsetup remove --deferred"), argv_log().find("dmsetup wipe_table")) << argv_log();
    EXPECT_NE(log_text().find("multipath map " + name), std::string::npos) << log_text();
    EXPECT_NE(log_text().find("removal deferred until closed"), std::string::npos) << log_text();
    EXPECT_TRUE(map_there(info));
    EXPECT_EQ(slurp(dir_ / "dev" / dm.filename()), "") << "the error table: nothing reads through the map";
    EXPECT_EQ(lab_.session_count(tid_), 0);
    EXPECT_EQ(sessions(), 0u);
    for (const auto &d : devices(info)) EXPECT_FALSE(fs::exists(dir_ / "sys/block" / d)) << d;

    ivd::simhost::release_simulated_map_holder(dir_.string());  // the last close
    EXPECT_FALSE(map_there(info));
    EXPECT_EQ(count_entries(dir_ / "sys/block"), 0u);
    EXPECT_EQ(listed(), "");
}

// --force --ignore-errors (os-brick's forced detach) with the holder still open: success, the deferral logged.
TEST_F(HostPathRemovalTest, ForceIgnoreErrorsOnAMapHeldOpenSucceedsAndTheMapGoesAtTheLastClose) {
    const Json::Value info = attach();
    set_fault("map_held_open");
    ASSERT_TRUE(disconnect(ci_, info, VD_DISCONNECT_FORCE | VD_DISCONNECT_IGNORE_ERRORS).ok());
    EXPECT_NE(log_text().find("removal deferred until closed"), std::string::npos) << log_text();
    EXPECT_TRUE(map_there(info));
    EXPECT_EQ(sessions(), 0u);
    EXPECT_EQ(node_records(), 0u);
    ivd::simhost::release_simulated_map_holder(dir_.string());
    EXPECT_FALSE(map_there(info));
    EXPECT_EQ(count_entries(dir_ / "sys/block"), 0u);
}

}  // namespace
