// The host path's extend and ready-for-I/O steps on a fake HostOps: the order (every path checked, every path
// rescanned, then the map resized), the refusals (a path not active, named; nothing changed), and a map that
// never becomes ready (the connect fails and is undone). host_path_extend_test.cpp runs them on the simulated host.
#include "policy_fixture.hpp"

#include <algorithm>

namespace {

using namespace ivd::testing::policy;

constexpr std::uint64_t grown = 3ull << 30;

// The device ("sdb") device_info lists for `portal_text`.
std::string device_of(const Value &info, const std::string &portal_text) {
    for (const auto &p : info["paths"].items()) {
        if (p["portal"].as_string() == portal_text) return p["device"].as_string().substr(5);  // "/dev/"
    }
    return {};
}

TEST_F(HostPathPolicy, ConnectWaitsForTheMapToBeReadyAfterItAppears) {
    auto info = connect();
    ASSERT_TRUE(info.ok()) << info.error().message;
    const auto j = host().journal();
    const auto ready = std::find(j.begin(), j.end(), "ready dm-0");
    ASSERT_NE(ready, j.end());
    // After every path was offered to multipathd.
    EXPECT_EQ(std::count_if(ready, j.end(), [](const std::string &e) { return e.rfind("add_path ", 0) == 0; }), 0);
}

TEST_F(HostPathPolicy, AMapThatNeverBecomesReadyFailsTheConnectAndUndoesEverything) {
    host_setup_.push_back([](FakeHostOps &h) { h.fail("ready", "", Status::timeout); });
    auto info = connect();
    ASSERT_FALSE(info.ok());
    EXPECT_EQ(info.error().status, Status::timeout);
    EXPECT_NE(info.error().message.find("map_ready_timeout_ms"), std::string::npos) << info.error().message;
    EXPECT_EQ(host().count("flush dm-0"), 1U);
    EXPECT_EQ(host().sessions(), 0U);
    EXPECT_EQ(host().devices(), 0U);
    EXPECT_EQ(host().node_records(), 0U);
}

TEST_F(HostPathPolicy, AMapNotReadyThatWasThereBeforeThisConnectIsKept) {
    // Another attachment of the volume has the LUN's devices already (so the map is its): only this connect's
    // own changes are undone, and the map is not flushed under it.
    host_setup_.push_back([](FakeHostOps &h) {
        for (const auto &p : portals) h.add_foreign_lun(portal(p), iqn, 1);
        h.fail("ready", "", Status::timeout);
    });
    auto info = connect();
    ASSERT_FALSE(info.ok());
    EXPECT_EQ(host().count("flush "), 0U);
    EXPECT_EQ(host().count("remove_device "), 0U);
    EXPECT_EQ(host().devices(), 3U);
    EXPECT_EQ(host().sessions(), 3U);
}

TEST_F(HostPathPolicy, ExtendRescansEveryPathThenResizesTheMapAndReturnsItsNewSize) {
    auto info = connect();
    ASSERT_TRUE(info.ok()) << info.error().message;
    host().grow_lu(grown);
    auto size = extend(*info);
    ASSERT_TRUE(size.ok()) << size.error().message;
    EXPECT_EQ(*size, grown);
    const auto j = host().journal();
    const auto resize = std::find(j.begin(), j.end(), "resize dm-0");
    ASSERT_NE(resize, j.end());
    EXPECT_EQ(std::count_if(j.begin(), resize, [](const std::string &e) { return e.rfind("rescan ", 0) == 0; }), 3);
    EXPECT_EQ(std::count_if(resize, j.end(), [](const std::string &e) { return e.rfind("rescan ", 0) == 0; }), 0);
}

TEST_F(HostPathPolicy, ExtendRefusesWhenAPathIsNotActiveNamingItAndChangesNothing) {
    auto info = connect();
    ASSERT_TRUE(info.ok()) << info.error().message;
    host().grow_lu(grown);
    const std::string down = device_of(*info, portals[1]);
    ASSERT_FALSE(down.empty());
    host().set_device_state(down, "transport-offline");
    auto size = extend(*info);
    ASSERT_FALSE(size.ok());
    EXPECT_EQ(size.error().status, Status::unreachable);
    const std::string &m = size.error().message;
    EXPECT_NE(m.find(portals[1]), std::string::npos) << m;
    EXPECT_NE(m.find(down + ": transport-offline"), std::string::npos) << m;
    EXPECT_EQ(m.find(portals[0]), std::string::npos) << m;  // only the paths that are not active
    EXPECT_EQ(host().count("rescan "), 0U);
    EXPECT_EQ(host().count("resize "), 0U);
}

TEST_F(HostPathPolicy, ExtendRefusesAPathOutsideTheMap) {
    host_setup_.push_back([](FakeHostOps &h) { h.fail("multipath_add", portals[2]); });
    auto info = connect();
    ASSERT_TRUE(info.ok()) << info.error().message;
    auto size = extend(*info);
    ASSERT_FALSE(size.ok());
    EXPECT_NE(size.error().message.find(portals[2]), std::string::npos) << size.error().message;
    EXPECT_NE(size.error().message.find("not in map"), std::string::npos) << size.error().message;
    EXPECT_EQ(host().count("rescan "), 0U);
}

TEST_F(HostPathPolicy, ExtendStopsWhenMultipathdCannotResize) {
    auto info = connect();
    ASSERT_TRUE(info.ok()) << info.error().message;
    host().fail("resize");
    auto size = extend(*info);
    ASSERT_FALSE(size.ok());
    EXPECT_NE(size.error().message.find("resize of the map"), std::string::npos) << size.error().message;
}

TEST_F(HostPathPolicy, ExtendOfASinglePathReadsItsDeviceAfterTheRescan) {
    decision_.multipath = false;
    auto info = connect();
    ASSERT_TRUE(info.ok()) << info.error().message;
    host().grow_lu(grown);
    auto size = extend(*info);
    ASSERT_TRUE(size.ok()) << size.error().message;
    EXPECT_EQ(*size, grown);
    EXPECT_EQ(host().count("rescan "), 1U);
    EXPECT_EQ(host().count("resize "), 0U);
    EXPECT_EQ(host().count("ready "), 0U);
}

TEST_F(HostPathPolicy, ExtendOfAMapThatIsGoneIsNotFound) {
    auto info = connect();
    ASSERT_TRUE(info.ok()) << info.error().message;
    Value changed = *info;
    changed["multipath_id"] = "3600gone";
    auto size = extend(changed);
    ASSERT_FALSE(size.ok());
    EXPECT_EQ(size.error().status, Status::not_found);
    EXPECT_EQ(size.error().field, "multipath_id");
}

}  // namespace
