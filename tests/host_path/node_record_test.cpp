// Node records in the layouts open-iscsi writes (static HOST,PORT and discovered HOST,PORT,TPGT/IFACE), found,
// written and scanned by the PrivateDir rules. The simulated host writes static records only, hence these.
#include "test_support.hpp"
#include "host_path/node_record.hpp"
#include "host_path/node_record_cleanup.hpp"

#include <fcntl.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace {

namespace fs = std::filesystem;
using ivd::testing::slurp;
using namespace ivd::host_path;

constexpr const char *iqn = "iqn.2000-01.org.example:rec";
constexpr const char *text = "# BEGIN RECORD 2.1.8\nnode.name = iqn.2000-01.org.example:rec\n# END RECORD\n";

class NodeRecordTest : public ::testing::Test {
protected:
    void SetUp() override {
        std::string templ = (fs::temp_directory_path() / "ivd-node-record-XXXXXX").string();
        ASSERT_NE(::mkdtemp(templ.data()), nullptr);
        base_ = templ;
        nodes_ = base_ / "nodes";
        fs::create_directories(nodes_ / iqn / "127.0.0.1,3260,1");
        std::ofstream(nodes_ / iqn / "127.0.0.1,3260,1" / "default") << text;
        fs::create_directories(nodes_ / iqn);
        std::ofstream(nodes_ / iqn / "[fd00::1],3260") << text;
    }
    void TearDown() override {
        std::error_code ec;
        fs::remove_all(base_, ec);
    }
    static ivd::request::Portal portal(const std::string &host, bool ipv6 = false) {
        ivd::request::Portal p;
        p.host = host;
        p.ipv6 = ipv6;
        return p;
    }
    fs::path base_, nodes_;
};

TEST_F(NodeRecordTest, DiscoveredRecordIsFoundAndWrittenAtomicallyWith0600) {
    auto found = find_node_record(nodes_.string(), portal("127.0.0.1"), iqn);
    ASSERT_TRUE(found.ok()) << found.error().message;
    ASSERT_TRUE(found->has_value());
    const fs::path file = nodes_ / iqn / "127.0.0.1,3260,1" / "default";
    EXPECT_EQ((*found)->path(), file.string());
    const ivd::SecretString password("Nr-Secret-1");
    ASSERT_TRUE(set_record_password(**found, &password).ok());
    EXPECT_NE(slurp(file).find("node.session.auth.password = Nr-Secret-1\n# END RECORD"), std::string::npos) << slurp(file);
    EXPECT_EQ(fs::status(file).permissions() & fs::perms::mask, fs::perms::owner_read | fs::perms::owner_write);
    EXPECT_TRUE(record_has_password(**found).value());
    ASSERT_TRUE(set_record_password(**found, nullptr).ok());
    EXPECT_EQ(slurp(file), text);
    EXPECT_FALSE(record_has_password(**found).value());
}

// The login's settings as iscsiadm's `--op update` would leave them: each line replaced where it stood (an extra
// copy dropped, a line only starting with the name kept), a missing one added before the end mark, the password
// last; written again with the same values, the file is not rewritten.
TEST_F(NodeRecordTest, SettingsReplaceTheirLinesInPlaceAndMissingOnesGoBeforeTheEnd) {
    const fs::path file = nodes_ / iqn / "[fd00::1],3260";
    std::ofstream(file) << "# BEGIN RECORD 2.1.8\nnode.name = " << iqn << "\nnode.startup = automatic\n"
                        << "node.session.auth.authmethod = None\nnode.session.auth.password_in = keep\n"
                        << "  node.startup=onboot\nnode.session.auth.password = Old-Secret\n# END RECORD\n";
    auto found = find_node_record(nodes_.string(), portal("fd00::1", true), iqn);
    ASSERT_TRUE(found.ok() && found->has_value());
    const std::vector<RecordSetting> settings = {{"node.startup", "manual"},
                                                 {"node.session.auth.authmethod", "CHAP"},
                                                 {"node.session.auth.username", "nr-user"}};
    const ivd::SecretString password("Nr-Secret-4");
    ASSERT_TRUE(write_record_settings(**found, settings, &password).ok());
    const std::string expected = std::string("# BEGIN RECORD 2.1.8\nnode.name = ") + iqn +
                                 "\nnode.startup = manual\nnode.session.auth.authmethod = CHAP\n"
                                 "node.session.auth.password_in = keep\nnode.session.auth.username = nr-user\n"
                                 "node.session.auth.password = Nr-Secret-4\n# END RECORD\n";
    EXPECT_EQ(slurp(file), expected);
    struct stat before {};
    ASSERT_EQ(::stat(file.c_str(), &before), 0);
    ASSERT_TRUE(write_record_settings(**found, settings, &password).ok());
    struct stat after {};
    ASSERT_EQ(::stat(file.c_str(), &after), 0);
    EXPECT_EQ(before.st_ino, after.st_ino) << "an unchanged record was rewritten";
    EXPECT_EQ(slurp(file), expected);
}

// open-iscsi strips the white space around a value and reads a line per setting: a value that would not come
// back the same (or would add a line of its own) is refused and the record left as it was.
TEST_F(NodeRecordTest, AValueARecordCannotHoldIsRefusedAndNothingIsWritten) {
    for (const char *value : {"", " lead", "trail\t", "two\nlines", "cr\rhere"}) {
        EXPECT_FALSE(fits_node_record(value)) << value;
    }
    EXPECT_TRUE(fits_node_record("in side\tspaces # and = signs"));
    auto found = find_node_record(nodes_.string(), portal("127.0.0.1"), iqn);
    ASSERT_TRUE(found.ok() && found->has_value());
    const std::vector<RecordSetting> bad_setting = {{"node.startup", "manual"},
                                                    {"node.session.auth.username", "x\nnode.startup = automatic"}};
    auto r = write_record_settings(**found, bad_setting, nullptr);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().status, ivd::Status::invalid_argument);
    EXPECT_NE(r.error().message.find("node.session.auth.username"), std::string::npos) << r.error().message;
    const ivd::SecretString bad_password("Nr-Secret-5\nnode.startup = automatic");
    auto p = write_record_settings(**found, {}, &bad_password);
    ASSERT_FALSE(p.ok());
    EXPECT_EQ(p.error().message.find("Nr-Secret-5"), std::string::npos) << "the password was echoed";
    EXPECT_EQ(slurp(nodes_ / iqn / "127.0.0.1,3260,1" / "default"), text);
}

// iscsiadm reads every record of every target on each node command; a temporary file it lists and that is renamed
// away before it opens it fails the command ("encountered iSCSI database failure", seen when two paths of one
// volume log in at once). So a rewrite's temporary file is written outside the tree: only the rename shows there.
TEST_F(NodeRecordTest, ARewriteCreatesNoFileInsideTheNodeTree) {
    const int watch = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    ASSERT_GE(watch, 0);
    for (const fs::path &dir : {nodes_, nodes_ / iqn, nodes_ / iqn / "127.0.0.1,3260,1"}) {
        ASSERT_GE(::inotify_add_watch(watch, dir.c_str(), IN_CREATE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE), 0);
    }
    const ivd::SecretString password("Nr-Secret-2");
    for (const auto &[host, ipv6] : {std::pair{"127.0.0.1", false}, std::pair{"fd00::1", true}}) {
        auto found = find_node_record(nodes_.string(), portal(host, ipv6), iqn);
        ASSERT_TRUE(found.ok() && found->has_value()) << host;
        ASSERT_TRUE(set_record_password(**found, &password).ok());
        ASSERT_TRUE(set_record_password(**found, nullptr).ok());
    }
    std::vector<std::string> seen;
    alignas(inotify_event) char buffer[8192];
    for (ssize_t n; (n = ::read(watch, buffer, sizeof buffer)) > 0;) {
        for (char *at = buffer; at < buffer + n;) {
            const auto *event = reinterpret_cast<const inotify_event *>(at);
            seen.push_back(std::string(event->mask & IN_MOVED_TO ? "moved in " : "other ") + event->name);
            at += sizeof(inotify_event) + event->len;
        }
    }
    ::close(watch);
    // (inotify merges an event with an unread identical one: each record shows once or twice.)
    seen.erase(std::unique(seen.begin(), seen.end()), seen.end());
    const std::vector<std::string> expected{"moved in default", "moved in [fd00::1],3260"};
    EXPECT_EQ(seen, expected);
    for (const auto &entry : fs::directory_iterator(base_)) {
        EXPECT_EQ(entry.path().filename(), "nodes") << "a temporary file was left in the staging directory";
    }
}

// A crash between a staged rewrite and its rename leaves a copy of the record (maybe with its password) beside
// the node tree: cleanup reports and removes it once nothing has written it for a minute, never a fresh one.
TEST_F(NodeRecordTest, CleanupRemovesAStagedRewriteACrashLeftButNotOneInProgress) {
    const fs::path old_file = base_ / ".ivd-node-00000000000000aa.tmp", fresh = base_ / ".ivd-node-00000000000000bb.tmp";
    const fs::path foreign = base_ / ".other.tmp";
    for (const fs::path &f : {old_file, fresh, foreign}) std::ofstream(f) << "node.session.auth.password = Nr-Secret-3\n";
    for (const fs::path &f : {old_file, foreign}) {
        const timespec two_minutes_ago[2] = {{::time(nullptr) - 120, 0}, {::time(nullptr) - 120, 0}};
        ASSERT_EQ(::utimensat(AT_FDCWD, f.c_str(), two_minutes_ago, 0), 0);
    }
    auto found = node_record_leftovers(nodes_.string(), false);
    ASSERT_TRUE(found.ok()) << found.error().message;
    ASSERT_EQ(found->size(), 1u);
    EXPECT_EQ((*found)[0].kind, "node_record_staging");
    EXPECT_EQ((*found)[0].name, old_file.filename());
    EXPECT_TRUE((*found)[0].removable);
    EXPECT_EQ(ivd::json::write((*found)[0].detail).find("Nr-Secret-3"), std::string::npos);
    ASSERT_TRUE(remove_staged_rewrite(nodes_.string(), (*found)[0].name).ok());
    EXPECT_FALSE(fs::exists(old_file));
    EXPECT_TRUE(remove_staged_rewrite(nodes_.string(), fresh.filename()).ok());
    EXPECT_TRUE(fs::exists(fresh)) << "a rewrite in progress is never taken";
    EXPECT_FALSE(remove_staged_rewrite(nodes_.string(), foreign.filename()).ok()) << "not ours";
    EXPECT_TRUE(fs::exists(foreign));
}

TEST_F(NodeRecordTest, MissingRecordsAndDirectoriesAreNoneAndNothingIsCreated) {
    auto other = find_node_record(nodes_.string(), portal("127.0.0.9"), iqn);
    ASSERT_TRUE(other.ok());
    EXPECT_FALSE(other->has_value());
    auto unknown = find_node_record(nodes_.string(), portal("127.0.0.1"), "iqn.2000-01.org.example:none");
    ASSERT_TRUE(unknown.ok());
    EXPECT_FALSE(unknown->has_value());
    EXPECT_FALSE(fs::exists(nodes_ / "iqn.2000-01.org.example:none"));
    auto no_dir = list_node_records((base_ / "absent").string());
    ASSERT_TRUE(no_dir.ok());
    EXPECT_TRUE(no_dir->empty());
    EXPECT_FALSE(fs::exists(base_ / "absent"));
}

TEST_F(NodeRecordTest, SymlinkedIfaceFileOrTpgtDirectoryIsRefused) {
    const fs::path victim = base_ / "victim";
    std::ofstream(victim) << text;
    fs::remove(nodes_ / iqn / "127.0.0.1,3260,1" / "default");
    fs::create_symlink(victim, nodes_ / iqn / "127.0.0.1,3260,1" / "default");
    auto found = find_node_record(nodes_.string(), portal("127.0.0.1"), iqn);
    ASSERT_FALSE(found.ok());
    EXPECT_NE(found.error().message.find("symlink"), std::string::npos) << found.error().message;

    fs::remove_all(nodes_ / iqn / "127.0.0.1,3260,1");
    fs::create_directories(base_ / "elsewhere");
    fs::create_directory_symlink(base_ / "elsewhere", nodes_ / iqn / "127.0.0.1,3260,1");
    found = find_node_record(nodes_.string(), portal("127.0.0.1"), iqn);
    ASSERT_FALSE(found.ok());
    EXPECT_NE(found.error().message.find("symlink"), std::string::npos) << found.error().message;
    EXPECT_EQ(slurp(victim), text);
}

TEST_F(NodeRecordTest, GroupWritableRecordOrDirectoryIsRefused) {
    ASSERT_EQ(::chmod((nodes_ / iqn / "127.0.0.1,3260,1" / "default").c_str(), 0620), 0);
    auto found = find_node_record(nodes_.string(), portal("127.0.0.1"), iqn);
    ASSERT_FALSE(found.ok());
    EXPECT_NE(found.error().message.find("writable by group or others"), std::string::npos) << found.error().message;
    ASSERT_EQ(::chmod((nodes_ / iqn / "127.0.0.1,3260,1" / "default").c_str(), 0600), 0);
    ASSERT_EQ(::chmod((nodes_ / iqn).c_str(), 0777), 0);
    found = find_node_record(nodes_.string(), portal("127.0.0.1"), iqn);
    ASSERT_FALSE(found.ok());
    EXPECT_EQ(found.error().field, "iscsi_node_dir") << found.error().message;
}

TEST_F(NodeRecordTest, ScanNamesEveryRecordWithItsPortal) {
    auto all = list_node_records(nodes_.string());
    ASSERT_TRUE(all.ok()) << all.error().message;
    ASSERT_EQ(all->size(), 2u);
    const FoundRecord &v4 = (*all)[0];
    EXPECT_EQ(v4.relative, std::string(iqn) + "/127.0.0.1,3260,1/default");
    EXPECT_EQ(v4.portal.to_string(), "127.0.0.1:3260");
    EXPECT_TRUE(v4.record.ok());
    const FoundRecord &v6 = (*all)[1];
    EXPECT_EQ(v6.relative, std::string(iqn) + "/[fd00::1],3260");
    EXPECT_EQ(v6.portal.host, "fd00::1");
    EXPECT_TRUE(v6.portal.ipv6);
    auto again = open_node_record(nodes_.string(), v4.relative);
    ASSERT_TRUE(again.ok()) << again.error().message;
    ASSERT_TRUE(again->has_value());
    EXPECT_EQ((*again)->path(), (nodes_ / v4.relative).string());
    auto v6_found = find_node_record(nodes_.string(), portal("fd00::1", true), iqn);
    ASSERT_TRUE(v6_found.ok() && v6_found->has_value());
    EXPECT_FALSE(open_node_record(nodes_.string(), "../etc/passwd").ok());
    EXPECT_FALSE(open_node_record(nodes_.string(), std::string(iqn) + "/.x").ok());
}

}  // namespace
