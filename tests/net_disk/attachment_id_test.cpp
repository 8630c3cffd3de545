// Attachment ids are unique: across calls, threads and a forked child (which inherits its parent's id state).
#include "net_disk/attachment_ledger.hpp"

#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <set>
#include <string>
#include <thread>
#include <vector>

namespace ivd {
namespace {

std::vector<std::string> take_ids(int n) {
    std::vector<std::string> ids;
    for (int i = 0; i < n; ++i) {
        auto id = net_disk::new_attachment_id();
        if (!id) {
            ADD_FAILURE() << id.error().message;
            break;
        }
        ids.push_back(*id);
    }
    return ids;
}

TEST(AttachmentId, IdsHaveTheirFormAndNeverRepeatOrTakeTheReservedId) {
    std::set<std::string> seen;
    for (const std::string &id : take_ids(10000)) {
        EXPECT_TRUE(net_disk::valid_attachment_id(id)) << id;
        EXPECT_NE(id, net_disk::unrecorded_users_id);
        EXPECT_TRUE(seen.insert(id).second) << "repeated " << id;
    }
}

TEST(AttachmentId, ThreadsNeverShareAnId) {
    std::vector<std::vector<std::string>> per_thread(4);
    std::vector<std::thread> threads;
    for (auto &ids : per_thread) threads.emplace_back([&ids] { ids = take_ids(2000); });
    for (auto &t : threads) t.join();
    std::set<std::string> seen;
    for (const auto &ids : per_thread) {
        ASSERT_EQ(ids.size(), 2000u);
        for (const std::string &id : ids) EXPECT_TRUE(seen.insert(id).second) << "repeated " << id;
    }
}

TEST(AttachmentId, AForkedChildDoesNotRepeatItsParentsIds) {
    take_ids(1);  // the parent's id state exists before the fork
    int pipe_fds[2];
    ASSERT_EQ(::pipe(pipe_fds), 0);
    const pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
        ::close(pipe_fds[0]);
        std::string all;
        for (const std::string &id : take_ids(100)) all += id + "\n";
        const bool written = ::write(pipe_fds[1], all.data(), all.size()) == static_cast<ssize_t>(all.size());
        ::_exit(written ? 0 : 1);
    }
    ::close(pipe_fds[1]);
    std::string text;
    char buffer[4096];
    for (ssize_t n; (n = ::read(pipe_fds[0], buffer, sizeof buffer)) > 0;) text.append(buffer, static_cast<std::size_t>(n));
    ::close(pipe_fds[0]);
    int status = 0;
    ASSERT_EQ(::waitpid(child, &status, 0), child);
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    std::set<std::string> childs;
    for (std::size_t start = 0, nl; (nl = text.find('\n', start)) != std::string::npos; start = nl + 1) {
        childs.insert(text.substr(start, nl - start));
    }
    ASSERT_EQ(childs.size(), 100u);
    for (const std::string &id : take_ids(100)) EXPECT_EQ(childs.count(id), 0u) << "the child repeated " << id;
}

}  // namespace
}  // namespace ivd
