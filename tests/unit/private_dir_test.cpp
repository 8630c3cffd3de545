// PrivateDir: the rules for every directory and file the driver writes as root (issue: lock files that followed
// symlinks in a world-writable directory).
#include "core/private_dir.hpp"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

namespace fs = std::filesystem;
using ivd::PrivateDir;
using ivd::Status;

namespace {

class PrivateDirTest : public ::testing::Test {
protected:
    void SetUp() override {
        char tmpl[] = "/tmp/ivd-private-dir-XXXXXX";
        ASSERT_NE(::mkdtemp(tmpl), nullptr);
        base_ = tmpl;
    }
    void TearDown() override { fs::remove_all(base_); }

    std::string base_;
};

std::string slurp(const std::string &path) {
    std::ifstream in(path);
    return {std::istreambuf_iterator<char>(in), {}};
}

TEST_F(PrivateDirTest, CreatesMissingDirectoriesMode0700) {
    auto dir = PrivateDir::open(base_ + "/a/b/locks", "lock_dir");
    ASSERT_TRUE(dir) << dir.error().message;
    struct stat st {};
    ASSERT_EQ(::stat((base_ + "/a/b/locks").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 0700u);
    EXPECT_EQ(st.st_uid, ::geteuid());
}

TEST_F(PrivateDirTest, RefusesASymlinkedDirectory) {
    fs::create_directory(base_ + "/elsewhere");
    fs::create_directory_symlink(base_ + "/elsewhere", base_ + "/locks");
    auto dir = PrivateDir::open(base_ + "/locks", "lock_dir");
    ASSERT_FALSE(dir);
    EXPECT_EQ(dir.error().status, Status::config);
    EXPECT_EQ(dir.error().field, "lock_dir");
    EXPECT_NE(dir.error().message.find("symlink"), std::string::npos) << dir.error().message;
}

TEST_F(PrivateDirTest, RefusesASymlinkedAncestor) {
    fs::create_directory(base_ + "/real");
    fs::create_directory_symlink(base_ + "/real", base_ + "/link");
    EXPECT_FALSE(PrivateDir::open(base_ + "/link/locks", "lock_dir"));
    EXPECT_FALSE(fs::exists(base_ + "/real/locks"));
}

TEST_F(PrivateDirTest, RefusesADirectoryOwnedByAnotherUser) {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root to give a directory to another user";
    fs::create_directory(base_ + "/locks");
    ASSERT_EQ(::chmod((base_ + "/locks").c_str(), 0700), 0);
    ASSERT_EQ(::chown((base_ + "/locks").c_str(), 65534, 65534), 0);
    auto dir = PrivateDir::open(base_ + "/locks", "lock_dir");
    ASSERT_FALSE(dir);
    EXPECT_NE(dir.error().message.find("owned by uid 65534"), std::string::npos) << dir.error().message;
}

TEST_F(PrivateDirTest, RefusesAGroupOrWorldWritableDirectory) {
    fs::create_directory(base_ + "/locks");
    ASSERT_EQ(::chmod((base_ + "/locks").c_str(), 01777), 0);
    auto dir = PrivateDir::open(base_ + "/locks", "lock_dir");
    ASSERT_FALSE(dir);
    EXPECT_NE(dir.error().message.find("writable by group or others"), std::string::npos) << dir.error().message;
}

TEST_F(PrivateDirTest, FilesAreNeverOpenedThroughSymlinksOrHardLinks) {
    auto dir = PrivateDir::open(base_ + "/locks", "lock_dir");
    ASSERT_TRUE(dir);
    { std::ofstream(base_ + "/victim") << "precious"; }
    fs::create_symlink(base_ + "/victim", base_ + "/locks/a.lock");
    auto via_symlink = dir->open_file("a.lock", O_RDWR | O_CREAT);
    ASSERT_FALSE(via_symlink);
    EXPECT_NE(via_symlink.error().message.find("symlink"), std::string::npos) << via_symlink.error().message;

    fs::create_hard_link(base_ + "/victim", base_ + "/locks/b.lock");
    auto via_hardlink = dir->open_file("b.lock", O_RDWR | O_CREAT);
    ASSERT_FALSE(via_hardlink);
    EXPECT_NE(via_hardlink.error().message.find("hard links"), std::string::npos) << via_hardlink.error().message;
    EXPECT_EQ(slurp(base_ + "/victim"), "precious");
}

TEST_F(PrivateDirTest, RefusesAFifoWithoutBlocking) {
    auto dir = PrivateDir::open(base_ + "/locks", "lock_dir");
    ASSERT_TRUE(dir);
    ASSERT_EQ(::mkfifo((base_ + "/locks/c.lock").c_str(), 0600), 0);
    auto fifo = dir->open_file("c.lock", O_RDWR | O_CREAT);
    ASSERT_FALSE(fifo);
    EXPECT_NE(fifo.error().message.find("not a regular file"), std::string::npos) << fifo.error().message;
}

TEST_F(PrivateDirTest, WritesReadsAndRemovesFilesMode0600) {
    auto dir = PrivateDir::open(base_ + "/state", "state_dir");
    ASSERT_TRUE(dir);
    ASSERT_TRUE(dir->write_file("record", "one"));
    ASSERT_TRUE(dir->write_file("record", "two"));  // replaced atomically
    auto text = dir->read_file("record");
    ASSERT_TRUE(text);
    EXPECT_EQ(*text, "two");
    struct stat st {};
    ASSERT_EQ(::stat((base_ + "/state/record").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 0600u);
    EXPECT_FALSE(fs::exists(base_ + "/state/.record.tmp"));
    ASSERT_TRUE(dir->remove_file("record"));
    ASSERT_TRUE(dir->remove_file("record"));  // already gone: fine
    EXPECT_EQ(dir->read_file("record").error().status, Status::not_found);
    EXPECT_FALSE(dir->open_file("../escape", O_RDWR | O_CREAT));
}

TEST_F(PrivateDirTest, SubdirectoriesFollowTheSameRules) {
    auto dir = PrivateDir::open(base_ + "/state", "state_dir");
    ASSERT_TRUE(dir);
    auto sub = dir->subdir("secrets");
    ASSERT_TRUE(sub);
    fs::create_directory_symlink("/etc", base_ + "/state/evil");
    EXPECT_FALSE(dir->subdir("evil"));
    EXPECT_FALSE(dir->subdir(".."));
}

TEST_F(PrivateDirTest, RelativePathsAreRefused) {
    auto dir = PrivateDir::open("relative/locks", "lock_dir");
    ASSERT_FALSE(dir);
    EXPECT_NE(dir.error().message.find("absolute"), std::string::npos);
    EXPECT_FALSE(PrivateDir::open(base_ + "/../x", "lock_dir"));
}

}  // namespace
