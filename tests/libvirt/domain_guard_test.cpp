// volume-host's guards around attach and detach, without libvirt: which disk is "this volume's"
// (disk_source), and the per-domain lock file's checks (domain_lock).
#include "disk_source.hpp"
#include "domain_lock.hpp"
#include "libvirt_domain.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <sys/stat.h>
#include <unistd.h>

using namespace volume_host;
namespace fs = std::filesystem;

namespace {

const char *network_disk = "<disk type='network' device='disk'><source protocol='iscsi' name='iqn.2010-10.org.x:v/1'>"
                           "<host name='127.0.0.1' port='3260'/></source><target dev='sda' bus='scsi'/>"
                           "<serial>vol-1</serial></disk>";

TEST(DiskSource, NetworkDisksCompareProtocolNameAndFirstHost) {
    auto recorded = parse_disk_source(network_disk, "DEVICE_INFO");
    ASSERT_TRUE(recorded) << recorded.error().message;
    EXPECT_EQ(recorded->host, "127.0.0.1:3260");
    // libvirt's live XML of the same disk, port omitted (the iSCSI default) and extra elements.
    const std::string live = "<domain><devices><disk type='network' device='disk'><driver name='qemu'/>"
                             "<source protocol='iscsi' name='iqn.2010-10.org.x:v/1'><host name='127.0.0.1'/></source>"
                             "<target dev='sda' bus='scsi'/><serial>vol-1</serial><alias name='scsi0-0-0-0'/></disk>"
                             "<disk type='network' device='disk'><source protocol='iscsi' name='iqn.2010-10.org.x:v/2'>"
                             "<host name='127.0.0.1' port='3260'/></source><target dev='sdb' bus='scsi'/></disk>"
                             "</devices></domain>";
    const auto disks = disks_in_domain_xml(live);
    ASSERT_EQ(disks.size(), 2u);
    EXPECT_TRUE(disks[0].source.matches_recorded(*recorded));
    EXPECT_FALSE(disks[1].source.same_storage(*recorded)) << "another LUN";
    DiskSource other_serial = disks[0].source;
    other_serial.serial = "vol-2";
    EXPECT_TRUE(other_serial.same_storage(*recorded));
    EXPECT_FALSE(other_serial.matches_recorded(*recorded)) << "a recorded serial must match too";
    DiskSource other_host = disks[0].source;
    other_host.host = "127.0.0.2:3260";
    EXPECT_FALSE(other_host.same_storage(*recorded));
}

TEST(DiskSource, BlockDisksCompareTheDevicePath) {
    auto a = parse_disk_source("<disk type='block'><source dev='/dev/dm-3'/><target dev='sda'/></disk>", "x");
    auto b = parse_disk_source("<disk type='block'><source dev='/dev/dm-4'/><target dev='sda'/></disk>", "x");
    ASSERT_TRUE(a && b);
    EXPECT_TRUE(a->same_storage(*a));
    EXPECT_FALSE(a->same_storage(*b));
    EXPECT_NE(b->describe().find("/dev/dm-4"), std::string::npos);
    EXPECT_FALSE(parse_disk_source("<disk type='block'><target dev='sda'/></disk>", "x")) << "no source";
    EXPECT_FALSE(parse_disk_source("not xml", "x"));
}

class DomainLockTest : public ::testing::Test {
protected:
    void SetUp() override {
        base_ = fs::temp_directory_path() / ("ivd-domain-lock-" + std::to_string(::getpid()));
        fs::remove_all(base_);
        fs::create_directories(base_);
    }
    void TearDown() override { fs::remove_all(base_); }
    fs::path base_;
};

TEST_F(DomainLockTest, CreatesARootOnlyDirectoryAndSerialises) {
    if (::geteuid() != 0) GTEST_SKIP() << "the lock directory must be owned by root";
    const std::string dir = (base_ / "run").string();
    auto first = DomainLock::acquire(dir, "0000-uuid");
    ASSERT_TRUE(first) << first.error().message;
    struct stat st{};
    ASSERT_EQ(::stat(dir.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0700u);
    // flock is per open file description: a second acquire in this process waits like another process would.
    auto second = DomainLock::acquire(dir, "0000-uuid", std::chrono::milliseconds(100));
    ASSERT_FALSE(second);
    EXPECT_EQ(second.error().code, "timeout");
    EXPECT_NE(second.error().message.find("domain-0000-uuid.lock"), std::string::npos);
    auto other_domain = DomainLock::acquire(dir, "1111-uuid", std::chrono::milliseconds(100));
    EXPECT_TRUE(other_domain);
}

TEST_F(DomainLockTest, RefusesAnOpenDirectoryAndASymlinkedLockFile) {
    const std::string open_dir = (base_ / "open").string();
    ASSERT_EQ(::mkdir(open_dir.c_str(), 0777), 0);
    ASSERT_EQ(::chmod(open_dir.c_str(), 0777), 0);
    auto refused = DomainLock::acquire(open_dir, "u");
    ASSERT_FALSE(refused);
    EXPECT_EQ(refused.error().code, "lock_error");
    EXPECT_NE(refused.error().message.find("writable by root only"), std::string::npos) << refused.error().message;

    const std::string dir = (base_ / "run").string();
    ASSERT_EQ(::mkdir(dir.c_str(), 0700), 0);
    fs::create_symlink(base_ / "elsewhere", fs::path(dir) / "domain-u.lock");
    auto symlinked = DomainLock::acquire(dir, "u");
    ASSERT_FALSE(symlinked);
    EXPECT_NE(symlinked.error().message.find("domain-u.lock"), std::string::npos) << symlinked.error().message;
    EXPECT_FALSE(fs::exists(base_ / "elsewhere")) << "the symlink was followed";

    const std::string link_dir = (base_ / "linked").string();
    fs::create_directory_symlink(dir, link_dir);
    EXPECT_FALSE(DomainLock::acquire(link_dir, "v")) << "a symlinked directory";
}

}  // namespace
