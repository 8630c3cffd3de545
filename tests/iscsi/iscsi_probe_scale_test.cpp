// probe_targets at scale: hundreds of portals with every kind of outcome under an in-flight cap, a cap of one, and a
// process that runs out of descriptors. Outcomes and the cap are asserted; no timings beyond "a timeout is a
// timeout" (an outcome of timeout can only happen once a probe's own deadline has passed).
#include "iscsi/iscsi_probe.hpp"
#include "tgtd_lab.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <map>
#include <random>
#include <stdexcept>
#include <thread>

namespace ivd::iscsi {
namespace {

using namespace std::chrono_literals;
using ivd::testing::TgtdLab;
using ivd::testing::TgtdPortal;

const std::string initiator = "iqn.2024-01.org.ivd:iscsi-scale-tests";

request::Target target_of(const TgtdPortal &p, const std::string &iqn, std::int64_t lun) {
    auto portal = request::parse_portal(p.to_string());
    EXPECT_TRUE(portal.ok()) << p.to_string();
    return request::Target{portal ? *portal : request::Portal{}, iqn, lun};
}

// A black hole the test can watch: accepts every connection, never sends a byte, and tracks how many are open at
// once. Per wake-up it accepts everything pending first (dropping connections already closed by the peer), then
// drops the ones the peer closed (reading and discarding what they sent), and only then counts: the prober closes a socket before it opens the next, and on
// loopback the FIN is queued before the next SYN, so a count never holds a closed connection next to its successor.
class WatchedBlackHole {
public:
    WatchedBlackHole() {
        listener_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        stop_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        sockaddr_in sa{};
        sa.sin_family = AF_INET;
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t len = sizeof sa;
        if (listener_ < 0 || stop_ < 0 || ::bind(listener_, reinterpret_cast<sockaddr *>(&sa), len) != 0 ||
            ::listen(listener_, 1024) != 0 || ::getsockname(listener_, reinterpret_cast<sockaddr *>(&sa), &len) != 0) {
            throw std::runtime_error("cannot set up the watched black hole");
        }
        portal_ = TgtdPortal{"127.0.0.1", ntohs(sa.sin_port), false};
        thread_ = std::thread([this] { serve(); });
    }
    ~WatchedBlackHole() {
        stop();
        ::close(listener_);
        ::close(stop_);
    }
    WatchedBlackHole(const WatchedBlackHole &) = delete;
    WatchedBlackHole &operator=(const WatchedBlackHole &) = delete;

    const TgtdPortal &portal() const { return portal_; }
    // Ends the watch after accepting what is still queued; the counts are final afterwards.
    void stop() {
        if (!thread_.joinable()) return;
        const std::uint64_t one = 1;
        (void)!::write(stop_, &one, sizeof one);
        thread_.join();
    }
    int max_open() const { return max_open_; }
    int accepted() const { return accepted_; }

private:
    // Reads and drops what the peer sent (its login request: never answered); true at end of stream.
    static bool peer_closed(int fd) {
        char buf[4096];
        while (true) {
            const ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
            if (n == 0) return true;
            if (n < 0) return errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR;
        }
    }

    void accept_all() {
        while (true) {
            const int fd = ::accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
            if (fd < 0) return;
            ++accepted_;
            if (peer_closed(fd)) {
                ::close(fd);
            } else {
                open_.push_back(fd);
            }
        }
    }

    void serve() {
        bool stopping = false;
        while (!stopping) {
            std::vector<pollfd> fds{{stop_, POLLIN, 0}, {listener_, POLLIN, 0}};
            for (const int fd : open_) fds.push_back({fd, POLLIN, 0});
            if (::poll(fds.data(), fds.size(), 1000) < 0 && errno != EINTR) break;
            stopping = (fds[0].revents & POLLIN) != 0;
            accept_all();
            std::erase_if(open_, [](int fd) {
                if (!peer_closed(fd)) return false;
                ::close(fd);
                return true;
            });
            max_open_ = std::max(max_open_, static_cast<int>(open_.size()));
        }
        accept_all();
        for (const int fd : open_) ::close(fd);
        open_.clear();
    }

    int listener_ = -1;
    int stop_ = -1;
    TgtdPortal portal_;
    std::thread thread_;
    std::vector<int> open_;
    int max_open_ = 0;  // read after stop() (the join orders it)
    int accepted_ = 0;
};

#define EXPECT_OUTCOME(result, expected, where)                                                             \
    EXPECT_EQ(probe_outcome_name((result).outcome), std::string(probe_outcome_name(expected)))               \
        << (where) << " detail: " << (result).detail

TEST(IscsiProbeScale, HundredsOfPortalsGetTheirOwnOutcomeUnderTheCap) {
    TgtdLab lab;
    lab.add_portal();
    lab.add_portal();
    const auto &portals = lab.portals();
    const TgtdPortal dead = lab.dead_portal();
    WatchedBlackHole hole;
    lab.add_account("scale-user", "Scale-Right-Pass-31");
    const auto wrong = request::ChapCredentials{"scale-user", SecretString("Scale-Wrong-Pass-47")};

    std::vector<request::Target> targets;
    std::vector<ProbeOutcome> expected;
    auto add = [&](request::Target t, ProbeOutcome o) {
        targets.push_back(std::move(t));
        expected.push_back(o);
    };
    std::vector<int> tids;
    for (int t = 0; t < 40; ++t) {
        const auto iqn = lab.make_iqn(fmt::format("scale{}", t));
        const int tid = lab.create_target(iqn);
        tids.push_back(tid);
        lab.add_lun(tid, 1, 1ull << 20);
        const bool chap_bound = t % 10 == 0;  // the wrong password is offered to every target
        if (chap_bound) lab.bind_account(tid, "scale-user");
        for (const auto &p : portals) {
            add(target_of(p, iqn, 1), chap_bound ? ProbeOutcome::auth_failed : ProbeOutcome::healthy);
        }
        if (t % 4 == 1) add(target_of(portals[t % portals.size()], iqn, 7), ProbeOutcome::lun_unavailable);
    }
    for (int i = 0; i < 10; ++i) {
        add(target_of(portals[i % portals.size()], lab.make_iqn(fmt::format("nobody{}", i)), 1),
            ProbeOutcome::target_not_found);
    }
    const auto any_iqn = lab.make_iqn("scale0");
    for (int i = 0; i < 30; ++i) add(target_of(dead, any_iqn, 1), ProbeOutcome::unreachable);
    const int black_holes = 40;
    for (int i = 0; i < black_holes; ++i) add(target_of(hole.portal(), any_iqn, 1), ProbeOutcome::timeout);
    // Interleave the kinds (fixed seed: the same order every run).
    std::vector<std::size_t> order(targets.size());
    for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::shuffle(order.begin(), order.end(), std::mt19937(20240611));
    std::vector<request::Target> shuffled;
    std::vector<ProbeOutcome> want;
    for (const std::size_t i : order) {
        shuffled.push_back(targets[i]);
        want.push_back(expected[i]);
    }

    ProbeOptions o;
    o.initiator = initiator;
    o.chap = &wrong;
    o.timeout = 800ms;
    o.max_in_flight = 16;  // fewer slots than black holes: they must queue, and the others pass them by
    ProbeStats stats;
    o.stats = &stats;
    const auto results = probe_targets(shuffled, o);
    hole.stop();

    ASSERT_EQ(results.size(), shuffled.size());
    std::map<std::string, int> counts;
    for (std::size_t i = 0; i < results.size(); ++i) {
        const auto &r = results[i];
        ++counts[probe_outcome_name(r.outcome)];
        EXPECT_OUTCOME(r, want[i], shuffled[i].portal.to_string() + " " + shuffled[i].iqn);
        EXPECT_EQ(r.detail.find("Scale-Wrong-Pass-47"), std::string::npos);
        EXPECT_EQ(r.detail.find("Scale-Right-Pass-31"), std::string::npos);
        if (r.outcome == ProbeOutcome::healthy) {
            EXPECT_EQ(r.size_bytes, 1ull << 20);
        }
        if (r.outcome == ProbeOutcome::timeout) {  // a probe that waited for a slot still had its whole timeout
            EXPECT_GE(r.elapsed, o.timeout);
        }
    }
    for (const auto &[name, n] : counts) std::printf("  %-18s %d\n", name.c_str(), n);
    std::printf("%zu portals, cap %zu: peak %zu in flight, %zu wake-ups; black hole saw at most %d open, %d in all\n",
                shuffled.size(), stats.max_in_flight, stats.peak_in_flight, stats.wakeups, hole.max_open(),
                hole.accepted());

    EXPECT_EQ(stats.max_in_flight, 16u);
    EXPECT_EQ(stats.peak_in_flight, 16u) << "more portals than slots: the cap must be reached, never passed";
    EXPECT_EQ(stats.socket_waits, 0u);
    EXPECT_LE(hole.max_open(), 16) << "seen from the other end of the wire, the cap was passed";
    EXPECT_GE(hole.max_open(), 1);
    EXPECT_EQ(hole.accepted(), black_holes) << "every black hole is connected to exactly once";
    // Every healthy or refused login was logged out (tgtd drops sessions a moment after).
    int left = 0;
    for (int i = 0; i < 50; ++i) {
        left = 0;
        for (const int tid : tids) left += lab.session_count(tid);
        if (left == 0) break;
        std::this_thread::sleep_for(20ms);
    }
    EXPECT_EQ(left, 0);
}

TEST(IscsiProbeScale, ACapOfOneRunsThemInOrderEachWithItsWholeTimeout) {
    TgtdLab lab;
    const auto iqn = lab.make_iqn("one");
    lab.add_lun(lab.create_target(iqn), 1);
    const auto t1 = lab.black_hole_portal();
    const auto t2 = lab.black_hole_portal();
    ProbeOptions o;
    o.initiator = initiator;
    o.timeout = 300ms;
    o.max_in_flight = 1;
    ProbeStats stats;
    o.stats = &stats;
    const auto start = std::chrono::steady_clock::now();
    const auto results = probe_targets(
        {target_of(t1, iqn, 1), target_of(lab.portal(), iqn, 1), target_of(t2, iqn, 1), target_of(lab.portal(), iqn, 1)},
        o);
    const auto wall = std::chrono::steady_clock::now() - start;
    ASSERT_EQ(results.size(), 4u);
    EXPECT_OUTCOME(results[0], ProbeOutcome::timeout, "first black hole");
    EXPECT_OUTCOME(results[1], ProbeOutcome::healthy, "portal");
    EXPECT_OUTCOME(results[2], ProbeOutcome::timeout, "second black hole");
    EXPECT_OUTCOME(results[3], ProbeOutcome::healthy, "portal again");
    EXPECT_GE(results[2].elapsed, o.timeout) << "the second black hole's clock starts when it starts";
    EXPECT_GE(wall, 2 * o.timeout) << "one at a time: two black holes cannot overlap";
    EXPECT_EQ(stats.peak_in_flight, 1u);
}

// Leaves `free_fds` descriptors below the soft RLIMIT_NOFILE for the scope, and gives everything back.
class DescriptorSqueeze {
public:
    explicit DescriptorSqueeze(int free_fds) {
        ::getrlimit(RLIMIT_NOFILE, &saved_);
        rlimit low = saved_;
        low.rlim_cur = 128;
        if (::setrlimit(RLIMIT_NOFILE, &low) != 0) throw std::runtime_error("setrlimit failed");
        while (true) {
            const int fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
            if (fd < 0) break;
            held_.push_back(fd);
        }
        for (int i = 0; i < free_fds && !held_.empty(); ++i) {
            ::close(held_.back());
            held_.pop_back();
        }
    }
    ~DescriptorSqueeze() {
        for (const int fd : held_) ::close(fd);
        ::setrlimit(RLIMIT_NOFILE, &saved_);
    }
    DescriptorSqueeze(const DescriptorSqueeze &) = delete;
    DescriptorSqueeze &operator=(const DescriptorSqueeze &) = delete;
    std::size_t held() const { return held_.size(); }

private:
    rlimit saved_{};
    std::vector<int> held_;
};

TEST(IscsiProbeScale, RunningOutOfDescriptorsDelaysProbesInsteadOfFailingThem) {
    TgtdLab lab;
    const auto iqn = lab.make_iqn("fds");
    const int tid = lab.create_target(iqn);
    lab.add_lun(tid, 1, 2ull << 20);
    const auto p2 = lab.add_portal();
    std::vector<request::Target> targets;
    for (int i = 0; i < 30; ++i) targets.push_back(target_of(i % 2 == 0 ? lab.portal() : p2, iqn, 1));
    ProbeOptions o;
    o.initiator = initiator;
    o.timeout = 3000ms;
    ProbeStats stats;
    o.stats = &stats;
    std::vector<ProbeResult> results;
    {
        // The cap (64: half of 128) is above what is left: socket() fails with EMFILE long before the cap.
        DescriptorSqueeze squeeze(6);
        ASSERT_GT(squeeze.held(), 0u);
        results = probe_targets(targets, o);
    }
    ASSERT_EQ(results.size(), targets.size());
    for (std::size_t i = 0; i < results.size(); ++i) {
        EXPECT_OUTCOME(results[i], ProbeOutcome::healthy, targets[i].portal.to_string());
        EXPECT_EQ(results[i].size_bytes, 2ull << 20);
    }
    std::printf("cap %zu, peak %zu in flight, %zu starts waited for a descriptor\n", stats.max_in_flight,
                stats.peak_in_flight, stats.socket_waits);
    EXPECT_EQ(stats.max_in_flight, 64u);
    EXPECT_GE(stats.socket_waits, 1u) << "the squeeze did not bite: the test proves nothing";
    EXPECT_LT(stats.peak_in_flight, 64u);
}

TEST(IscsiProbeScale, NoDescriptorToSpareIsAnErrorNotAHang) {
    // 0 free: not even the event loop's epoll descriptor; 1 free: the loop runs, but no socket can be opened and
    // no other probe will ever give one back.
    ProbeOptions warm;
    warm.initiator = initiator;
    warm.timeout = 500ms;
    // Once with descriptors to spare: UBSan's first type check of a class needs a pipe of its own.
    (void)probe_targets({request::Target{request::Portal{"127.0.0.1", 9, false}, "iqn.x:y", 1}}, warm);
    for (const int free_fds : {0, 1}) {
        std::vector<ProbeResult> results;
        {
            DescriptorSqueeze squeeze(free_fds);
            ProbeOptions o;
            o.initiator = initiator;
            o.timeout = 500ms;
            results = probe_targets({request::Target{request::Portal{"127.0.0.1", 9, false}, "iqn.x:y", 1}}, o);
        }
        ASSERT_EQ(results.size(), 1u);
        EXPECT_OUTCOME(results[0], ProbeOutcome::error, fmt::format("{} free", free_fds));
        EXPECT_NE(results[0].detail.find("Too many open files"), std::string::npos) << results[0].detail;
        std::printf("%d free descriptors: %s\n", free_fds, results[0].detail.c_str());
    }
}

}  // namespace
}  // namespace ivd::iscsi
