// Clean removal on the fake host (issue 17 item 3): after the devices go, multipathd must stop listing them
// (`del path` for what it keeps), and a disconnect that went past a failed flush ends with `multipathd del map`.
#include "policy_fixture.hpp"

#include <algorithm>
#include <cstring>

namespace {

using namespace ivd::testing::policy;

std::ptrdiff_t at(const std::vector<std::string> &journal, const std::string &entry) {
    return std::find(journal.begin(), journal.end(), entry) - journal.begin();
}

TEST_F(HostPathPolicy, APlainDisconnectLeavesMultipathdListingNoRemovedPathAndNeedsNoDelete) {
    auto info = connect();
    ASSERT_TRUE(info.ok()) << info.error().message;
    EXPECT_EQ(host().listed_paths().size(), 3U);
    ASSERT_TRUE(disconnect(*info).ok());
    EXPECT_TRUE(host().listed_paths().empty());
    EXPECT_EQ(host().count("del_path "), 0U);
    EXPECT_EQ(host().count("del_map "), 0U);
    EXPECT_FALSE(host().map_present());
}

TEST_F(HostPathPolicy, PathsMultipathdKeepsListingAfterRemovalAreDeletedFromIt) {
    auto info = connect();
    ASSERT_TRUE(info.ok()) << info.error().message;
    host().set_keeps_removed_paths(true);
    ASSERT_TRUE(disconnect(*info).ok());
    EXPECT_TRUE(host().listed_paths().empty());
    EXPECT_EQ(host().count("del_path "), 3U);
    const auto j = host().journal();
    EXPECT_LT(at(j, "remove_device sda"), at(j, "del_path sda"));  // only once the device is gone
    EXPECT_LT(at(j, "del_path sdc"), at(j, "logout 127.0.0.1:3260"));
}

TEST_F(HostPathPolicy, AFailedDelPathStopsAPlainDisconnectAndIsReportedWithForce) {
    auto info = connect();
    ASSERT_TRUE(info.ok()) << info.error().message;
    host().set_keeps_removed_paths(true);
    host().fail("del_path");
    auto plain = disconnect(*info);
    ASSERT_FALSE(plain.ok());
    EXPECT_EQ(host().count("logout "), 0U);
    auto forced = disconnect(*info, VD_DISCONNECT_FORCE);
    ASSERT_FALSE(forced.ok());
    EXPECT_NE(forced.error().message.find("multipathd_del_path"), std::string::npos) << forced.error().message;
    EXPECT_EQ(host().sessions(), 0U);
}

// A retried disconnect (the first stopped at a failed `del path`) finds the devices gone and still cleans
// multipathd's list from device_info's device names; a name the kernel gave to a new device is left alone.
TEST_F(HostPathPolicy, ARetriedDisconnectForgetsTheRecordedPathsButNotANameReused) {
    auto info = connect();
    ASSERT_TRUE(info.ok()) << info.error().message;
    host().set_keeps_removed_paths(true);
    host().fail("del_path");
    ASSERT_FALSE(disconnect(*info).ok());
    EXPECT_EQ(host().listed_paths().size(), 3U);
    ASSERT_EQ(host().count("del_path "), 1U);  // stopped at the first
    // Which device that was depends on the order the parallel path threads got their names: read it.
    std::string first;
    for (const std::string &e : host().journal()) {
        if (e.rfind("del_path ", 0) == 0) first = e.substr(std::strlen("del_path "));
    }
    ASSERT_FALSE(first.empty());
    host().heal("del_path");
    host().add_foreign_lun(portal("127.0.0.9:3260"), "iqn.2024-01.org.example:other", 5, ivd::host_path::default_iface_name, first);  // reuses its name
    ASSERT_TRUE(disconnect(*info).ok());
    EXPECT_EQ(host().listed_paths(), (std::set<std::string>{first}));  // stale, but its name is taken: left alone
    EXPECT_EQ(host().count("del_path " + first), 1U);
    EXPECT_EQ(host().count("del_path "), 3U);
    EXPECT_EQ(host().sessions(), 1U);  // the other volume's
}

TEST_F(HostPathPolicy, MultipathdNotAnsweringIsNoFailure) {
    auto info = connect();
    ASSERT_TRUE(info.ok()) << info.error().message;
    host().fail("show_paths");
    ASSERT_TRUE(disconnect(*info).ok());
    EXPECT_EQ(host().sessions(), 0U);
    EXPECT_EQ(host().count("del_path "), 0U);
}

TEST_F(HostPathPolicy, AFailedFlushLeavesTheMapAndEverythingElseWithoutForce) {
    auto info = connect();
    ASSERT_TRUE(info.ok()) << info.error().message;
    host().fail("flush");
    ASSERT_FALSE(disconnect(*info).ok());
    EXPECT_TRUE(host().map_present());
    EXPECT_EQ(host().devices(), 3U);
    EXPECT_EQ(host().sessions(), 3U);
    EXPECT_EQ(host().listed_paths().size(), 3U);
    EXPECT_EQ(host().count("del_map "), 0U);
}

TEST_F(HostPathPolicy, AForcedDisconnectWhoseFlushFailedEndsWithTheMapDeleted) {
    auto info = connect();
    ASSERT_TRUE(info.ok()) << info.error().message;
    host().fail("flush");
    auto forced = disconnect(*info, VD_DISCONNECT_FORCE);
    ASSERT_FALSE(forced.ok());  // the failed flush is still reported: data in flight may be lost
    EXPECT_NE(forced.error().message.find("1 step(s) undone"), std::string::npos) << forced.error().message;
    EXPECT_FALSE(host().map_present());
    EXPECT_EQ(host().devices(), 0U);
    EXPECT_EQ(host().sessions(), 0U);
    const auto j = host().journal();
    EXPECT_EQ(host().count("del_map dm-0"), 1U);
    EXPECT_LT(at(j, "logout 127.0.0.3:3260"), at(j, "del_map dm-0"));
}

TEST_F(HostPathPolicy, ForceWithIgnoreErrorsSucceedsAndLeavesNothingOfTheVolume) {
    auto info = connect();
    ASSERT_TRUE(info.ok()) << info.error().message;
    host().fail("flush");
    host().set_keeps_removed_paths(true);
    ASSERT_TRUE(disconnect(*info, VD_DISCONNECT_FORCE | VD_DISCONNECT_IGNORE_ERRORS).ok());
    EXPECT_FALSE(host().map_present());
    EXPECT_EQ(host().devices(), 0U);
    EXPECT_EQ(host().sessions(), 0U);
    EXPECT_EQ(host().node_records(), 0U);
    EXPECT_TRUE(host().listed_paths().empty());
}

TEST_F(HostPathPolicy, AMapThatCannotBeDeletedIsReportedAndIgnoredOnlyWithIgnoreErrors) {
    auto info = connect();
    ASSERT_TRUE(info.ok()) << info.error().message;
    host().fail("flush");
    host().fail("del_map");
    auto forced = disconnect(*info, VD_DISCONNECT_FORCE);
    ASSERT_FALSE(forced.ok());
    EXPECT_NE(forced.error().message.find("multipathd_del_map"), std::string::npos) << forced.error().message;
    EXPECT_TRUE(host().map_present());
    EXPECT_EQ(host().sessions(), 0U);
    EXPECT_TRUE(disconnect(*info, VD_DISCONNECT_FORCE | VD_DISCONNECT_IGNORE_ERRORS).ok());
}

// A holder keeps the map open through the forced disconnect: the map's removal is deferred to its last close and
// reported as such (not as a failed step); everything else of the volume goes, and the map goes with the holder.
TEST_F(HostPathPolicy, AMapHeldOpenThroughAForcedDisconnectHasItsRemovalDeferredUntilClosed) {
    auto info = connect();
    ASSERT_TRUE(info.ok()) << info.error().message;
    host().fail("flush");
    host().set_map_held_open(true);
    auto forced = disconnect(*info, VD_DISCONNECT_FORCE);
    ASSERT_FALSE(forced.ok());  // the failed flush
    EXPECT_NE(forced.error().message.find("1 step(s) undone"), std::string::npos) << forced.error().message;
    EXPECT_NE(forced.error().message.find("removal deferred until closed"), std::string::npos) << forced.error().message;
    EXPECT_EQ(forced.error().message.find("multipathd_del_map"), std::string::npos) << forced.error().message;
    EXPECT_TRUE(host().removal_deferred());
    EXPECT_TRUE(host().map_present());
    EXPECT_EQ(host().devices(), 0U);
    EXPECT_EQ(host().sessions(), 0U);
    host().set_map_held_open(false);
    EXPECT_FALSE(host().map_present());
}

}  // namespace
