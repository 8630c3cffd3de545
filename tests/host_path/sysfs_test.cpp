// Sysfs against a hand-made tree: sessions are found by (portal, IQN) among many, what was read of a session rules
// it out cheaply yet a gone session, or a name given to another session, is never returned, a session still
// being set up is read again, and a map is found by name through /dev/mapper.
#include "host_path/sysfs.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

namespace {

namespace fs = std::filesystem;
using ivd::host_path::Sysfs;

class SysfsTree : public ::testing::Test {
protected:
    void SetUp() override {
        root_ = fs::temp_directory_path() / ("ivd-sysfs-test-" + std::to_string(::getpid()) + "-" +
                                            ::testing::UnitTest::GetInstance()->current_test_info()->name());
        fs::remove_all(root_);
        fs::create_directories(root_ / "sys/class/iscsi_session");
        fs::create_directories(root_ / "sys/class/iscsi_connection");
        fs::create_directories(root_ / "dev/mapper");
    }
    void TearDown() override { fs::remove_all(root_); }

    static void put(const fs::path &file, const std::string &text) {
        fs::create_directories(file.parent_path());
        std::ofstream(file) << text << "\n";
    }
    void session(int n, const std::string &iqn, const std::string &address = "127.0.0.1", int port = 3260,
                 bool with_connection = true) {
        put(root_ / "sys/class/iscsi_session" / ("session" + std::to_string(n)) / "targetname", iqn);
        if (!with_connection) return;
        const fs::path c = root_ / "sys/class/iscsi_connection" / ("connection" + std::to_string(n) + ":0");
        put(c / "persistent_address", address);
        put(c / "persistent_port", std::to_string(port));
    }
    void remove_session(int n) {
        fs::remove_all(root_ / "sys/class/iscsi_session" / ("session" + std::to_string(n)));
        fs::remove_all(root_ / "sys/class/iscsi_connection" / ("connection" + std::to_string(n) + ":0"));
    }
    Sysfs sysfs() const { return Sysfs((root_ / "sys").string(), (root_ / "dev").string()); }
    static ivd::request::Portal portal(const std::string &host, std::uint16_t port = 3260) {
        ivd::request::Portal p;
        p.host = host;
        p.port = port;
        return p;
    }

    fs::path root_;
};

TEST_F(SysfsTree, FindsTheSessionOfAPortalAndIqnAmongMany) {
    for (int n = 1; n <= 200; ++n) session(n, "iqn.2010-10.org.x:t" + std::to_string(n % 50), "127.0.0." + std::to_string(1 + n % 4));
    const Sysfs s = sysfs();
    auto found = s.find_session(portal("127.0.0.3"), "iqn.2010-10.org.x:t6");  // n = 106 (and 6: .3 is 1 + 6 % 4)
    ASSERT_TRUE(found);
    EXPECT_EQ(found->name, "session106");  // the newest first
    EXPECT_FALSE(s.find_session(portal("127.0.0.3", 3261), "iqn.2010-10.org.x:t6"));
    EXPECT_EQ(s.session_portals("iqn.2010-10.org.x:t6").size(), 4u);
}

TEST_F(SysfsTree, AGoneSessionIsNeverReturnedFromWhatWasReadBefore) {
    session(1, "iqn.2010-10.org.x:a");
    const Sysfs s = sysfs();
    ASSERT_TRUE(s.find_session(portal("127.0.0.1"), "iqn.2010-10.org.x:a"));
    remove_session(1);
    session(2, "iqn.2010-10.org.x:b");
    EXPECT_FALSE(s.find_session(portal("127.0.0.1"), "iqn.2010-10.org.x:a"));
    auto b = s.find_session(portal("127.0.0.1"), "iqn.2010-10.org.x:b");
    ASSERT_TRUE(b);
    EXPECT_EQ(b->name, "session2");
    session(3, "iqn.2010-10.org.x:a");  // the same target logged in again: a new session name
    auto again = s.find_session(portal("127.0.0.1"), "iqn.2010-10.org.x:a");
    ASSERT_TRUE(again);
    EXPECT_EQ(again->name, "session3");
}

// Linux numbers sessions from a counter; a name reused (another initiator's kernel, an IDA) is read again before
// it is returned.
TEST_F(SysfsTree, ANameGivenToAnotherSessionIsNeverReturnedForTheOldOne) {
    session(1, "iqn.2010-10.org.x:a");
    const Sysfs s = sysfs();
    ASSERT_TRUE(s.find_session(portal("127.0.0.1"), "iqn.2010-10.org.x:a"));
    remove_session(1);
    session(1, "iqn.2010-10.org.x:b");
    EXPECT_FALSE(s.find_session(portal("127.0.0.1"), "iqn.2010-10.org.x:a"));
    auto b = s.find_session(portal("127.0.0.1"), "iqn.2010-10.org.x:b");
    ASSERT_TRUE(b);
    EXPECT_EQ(b->name, "session1");
    remove_session(1);
    session(1, "iqn.2010-10.org.x:a", "127.0.0.2");  // the old target again, through another portal
    EXPECT_FALSE(s.find_session(portal("127.0.0.1"), "iqn.2010-10.org.x:b"));
    EXPECT_FALSE(s.find_session(portal("127.0.0.1"), "iqn.2010-10.org.x:a"));
}

TEST_F(SysfsTree, ASessionStillBeingSetUpIsReadAgain) {
    session(7, "iqn.2010-10.org.x:c", "127.0.0.1", 3260, /*with_connection=*/false);
    const Sysfs s = sysfs();
    EXPECT_FALSE(s.find_session(portal("127.0.0.1"), "iqn.2010-10.org.x:c"));
    session(7, "iqn.2010-10.org.x:c");  // the kernel added the connection
    auto found = s.find_session(portal("127.0.0.1"), "iqn.2010-10.org.x:c");
    ASSERT_TRUE(found);
    EXPECT_EQ(found->name, "session7");
}

// A login's new session is numbered above the ones listed before it (the kernel's next number): it is found by
// its name, without listing the host's other sessions again. A reused lower number is still found, by a listing.
TEST_F(SysfsTree, ANewSessionAboveTheListedOnesIsFoundWithoutListingThemAll) {
    for (int n = 1; n <= 300; ++n) session(n, "iqn.2010-10.org.x:t" + std::to_string(n));
    const Sysfs s = sysfs();
    EXPECT_FALSE(s.find_session(portal("127.0.0.1"), "iqn.2010-10.org.x:new"));  // before the login: a listing
    session(303, "iqn.2010-10.org.x:new");  // 301 and 302 went to logins still in flight
    const auto before = ivd::host_path::sysfs_reads();
    auto found = s.find_session(portal("127.0.0.1"), "iqn.2010-10.org.x:new");
    const auto after = ivd::host_path::sysfs_reads();
    ASSERT_TRUE(found);
    EXPECT_EQ(found->name, "session303");
    EXPECT_LT(after.dir_entries - before.dir_entries, 10u) << "the 300 other sessions were listed again";
    EXPECT_LT(after.files - before.files, 20u);

    remove_session(12);
    EXPECT_FALSE(s.session_exists("session12"));  // as a logout waits for it
    session(12, "iqn.2010-10.org.x:reused");  // a kernel that reuses free numbers
    auto reused = s.find_session(portal("127.0.0.1"), "iqn.2010-10.org.x:reused");
    ASSERT_TRUE(reused);
    EXPECT_EQ(reused->name, "session12");
}

// Waiting for a logout looks at the session's own entry.
TEST_F(SysfsTree, ASessionIsThereUntilItsEntryGoes) {
    session(4, "iqn.2010-10.org.x:d");
    const Sysfs s = sysfs();
    EXPECT_TRUE(s.session_exists("session4"));
    remove_session(4);
    EXPECT_FALSE(s.session_exists("session4"));
}

TEST_F(SysfsTree, AMapIsFoundByNameThroughDevMapper) {
    put(root_ / "sys/block/dm-4/dm/uuid", "mpath-3600a");
    put(root_ / "sys/block/dm-4/dm/name", "3600a");
    put(root_ / "sys/block/dm-9/dm/uuid", "mpath-3600b");
    put(root_ / "sys/block/dm-9/dm/name", "3600b");
    fs::create_symlink("../dm-9", root_ / "dev/mapper/3600b");
    const Sysfs s = sysfs();
    auto b = s.find_multipath_by_name("3600b");
    ASSERT_TRUE(b);
    EXPECT_EQ(b->dm, "dm-9");
    auto a = s.find_multipath_by_name("3600a");  // no link: found by the scan
    ASSERT_TRUE(a);
    EXPECT_EQ(a->dm, "dm-4");
    fs::create_symlink("../dm-4", root_ / "dev/mapper/stale");  // a link to another map's dm is not trusted
    EXPECT_FALSE(s.find_multipath_by_name("stale"));
}

}  // namespace
