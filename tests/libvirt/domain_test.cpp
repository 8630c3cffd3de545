// volume-host's libvirt_domain against a TCG domain: attach a file-backed disk, read its bytes through QEMU,
// detach it and see QEMU let go; free target picking; absent disks.
#include "libvirt_domain.hpp"
#include "libvirt_lab.hpp"
#include "stderr_capture.hpp"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>

using namespace volume_host;
using ivd::testing::LibvirtLab;

namespace {

using clock_type = std::chrono::steady_clock;

long long ms_since(clock_type::time_point start) {
    return static_cast<long long>(
        std::chrono::duration_cast<std::chrono::milliseconds>(clock_type::now() - start).count());
}

std::string file_disk_xml(const std::string &path, const std::string &dev) {
    return fmt::format("<disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='{}'/>"
                       "<target dev='{}' bus='scsi'/></disk>",
                       path, dev);
}

bool has_disk(LibvirtLab &lab, const std::string &dev) {
    const auto disks = lab.list_disks();
    return std::any_of(disks.begin(), disks.end(), [&](const auto &d) { return d.target_dev == dev; });
}

class DomainTest : public ::testing::Test {
protected:
    static void SetUpTestSuite() {
        const auto start = clock_type::now();
        lab_ = new LibvirtLab();
        std::printf("lab with domain ready in %lld ms\n", ms_since(start));
    }
    static void TearDownTestSuite() {
        const auto start = clock_type::now();
        delete lab_;
        lab_ = nullptr;
        std::printf("lab teardown took %lld ms\n", ms_since(start));
    }
    void SetUp() override {
        auto opened = DomainSession::open(lab_->uri(), lab_->domain_name());
        ASSERT_TRUE(opened) << opened.error().message;
        session_ = std::move(*opened);
    }
    void TearDown() override {
        // Each test leaves the domain without disks.
        for (const auto &d : lab_->list_disks()) EXPECT_TRUE(session_->detach_disk(d.target_dev));
    }

    static LibvirtLab *lab_;
    std::unique_ptr<DomainSession> session_;
};

LibvirtLab *DomainTest::lab_ = nullptr;

TEST_F(DomainTest, AttachedFileDiskIsReadableThroughQemuAndDetachWaitsForRemoval) {
    const std::string pattern = "ivd-lab-pattern:0123456789abcdef";
    const std::string image = lab_->make_raw_image("disk.img", 1 << 20, pattern);
    auto dev = session_->pick_free_scsi_dev();
    ASSERT_TRUE(dev) << dev.error().message;
    EXPECT_EQ(*dev, "sda");
    EXPECT_FALSE(session_->persistent());

    auto start = clock_type::now();
    auto failed = session_->attach_disk(file_disk_xml(image, *dev));
    ASSERT_FALSE(failed) << failed->message;
    std::printf("attach: %lld ms\n", ms_since(start));
    ASSERT_TRUE(has_disk(*lab_, *dev));

    start = clock_type::now();
    const std::uint64_t offset = 4096 + 5;
    const std::string bytes = lab_->read_disk_bytes(*dev, offset, 50);
    std::printf("read through QEMU (NBD + qemu-io): %lld ms\n", ms_since(start));
    std::string expected;
    for (std::uint64_t i = offset; i < offset + 50; ++i) expected.push_back(pattern[i % pattern.size()]);
    EXPECT_EQ(bytes, expected);
    // A second read works too: the export was removed and the NBD server stopped after the first.
    EXPECT_EQ(lab_->read_disk_bytes(*dev, 0, 16), pattern.substr(0, 16));

    start = clock_type::now();
    auto detached = session_->detach_disk(*dev);
    ASSERT_TRUE(detached) << detached.error().message;
    std::printf("detach + wait for removal: %lld ms\n", ms_since(start));
    EXPECT_TRUE(detached->was_attached);
    EXPECT_FALSE(has_disk(*lab_, *dev));
}

TEST_F(DomainTest, PicksTheNextFreeTargetDev) {
    const std::string a = lab_->make_raw_image("a.img", 1 << 20, "a");
    const std::string c = lab_->make_raw_image("c.img", 1 << 20, "c");
    ASSERT_FALSE(session_->attach_disk(file_disk_xml(a, "sda")));
    ASSERT_FALSE(session_->attach_disk(file_disk_xml(c, "sdc")));
    auto dev = session_->pick_free_scsi_dev();
    ASSERT_TRUE(dev) << dev.error().message;
    EXPECT_EQ(*dev, "sdb");
}

TEST_F(DomainTest, DetachOfAnAbsentDiskIsOk) {
    auto detached = session_->detach_disk("sdq");
    ASSERT_TRUE(detached) << detached.error().message;
    EXPECT_FALSE(detached->was_attached);
}

TEST_F(DomainTest, FailedAttachIsALibvirtErrorAndPrintsNothing) {
    ivd::testing::StderrCapture capture;
    auto failed = session_->attach_disk(file_disk_xml("/nonexistent/ivd-disk.img", "sdb"));
    const std::string printed = capture.finish();
    ASSERT_TRUE(failed);
    EXPECT_EQ(failed->exit_code, exit_libvirt);
    EXPECT_NE(failed->message.find("/nonexistent/ivd-disk.img"), std::string::npos) << failed->message;
    EXPECT_EQ(printed, "");
    EXPECT_FALSE(has_disk(*lab_, "sdb"));
}

TEST(DomainSession, UnknownDomainIsALibvirtError) {
    LibvirtLab lab(ivd::testing::LibvirtLabOptions{.start_domain = false});
    ivd::testing::StderrCapture capture;
    auto opened = DomainSession::open(lab.uri(), "ivd-no-such-domain");
    const std::string printed = capture.finish();
    ASSERT_FALSE(opened);
    EXPECT_EQ(opened.error().exit_code, exit_libvirt);
    EXPECT_NE(opened.error().message.find("ivd-no-such-domain"), std::string::npos) << opened.error().message;
    EXPECT_EQ(printed, "");
}

TEST(DomainXml, FirstFreeScsiDevSkipsUsedNamesAcrossLiveAndConfig) {
    const std::string live = "<domain><devices><disk><target dev='sda' bus='scsi'/></disk>"
                             "<disk><target dev='sdb' bus='scsi'/></disk></devices></domain>";
    const std::string config = "<domain><devices><disk><target dev='sdc' bus='scsi'/></disk></devices></domain>";
    auto dev = first_free_scsi_dev({live, config});
    ASSERT_TRUE(dev);
    EXPECT_EQ(*dev, "sdd");

    std::string full = "<domain><devices>";
    for (char c = 'a'; c <= 'z'; ++c) full += fmt::format("<disk><target dev='sd{}'/></disk>", c);
    full += "</devices></domain>";
    auto next = first_free_scsi_dev({full});
    ASSERT_TRUE(next);
    EXPECT_EQ(*next, "sdaa");
}

TEST(DomainXml, TargetDevOfDiskXml) {
    auto dev = disk_target_dev("<disk type='network'><target dev='sdf' bus='scsi'/></disk>");
    ASSERT_TRUE(dev);
    EXPECT_EQ(*dev, "sdf");
    EXPECT_FALSE(disk_target_dev("<disk/>"));
    EXPECT_FALSE(disk_target_dev("not xml"));
}

}  // namespace
