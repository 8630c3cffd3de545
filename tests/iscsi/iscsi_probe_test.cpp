// probe_targets and send_targets against a real tgtd (one lab per test, so ctest -j runs them side by side).
#include "iscsi/iscsi_probe.hpp"
#include "iscsi/send_targets.hpp"
#include "tgtd_lab.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <thread>

namespace ivd::iscsi {
namespace {

using namespace std::chrono_literals;
using ivd::testing::TgtdLab;
using ivd::testing::TgtdPortal;

const std::string initiator = "iqn.2024-01.org.ivd:iscsi-tests";

request::Portal to_portal(const TgtdPortal &p) {
    auto out = request::parse_portal(p.to_string());
    EXPECT_TRUE(out.ok()) << p.to_string();
    return out ? *out : request::Portal{};
}

request::Target target_of(const TgtdPortal &p, const std::string &iqn, std::int64_t lun) {
    return request::Target{to_portal(p), iqn, lun};
}

request::ChapCredentials chap(const std::string &user, std::string_view password) {
    return request::ChapCredentials{user, SecretString(password)};
}

ProbeOptions options(std::chrono::milliseconds timeout = 3000ms, const request::ChapCredentials *c = nullptr) {
    ProbeOptions o;
    o.initiator = initiator;
    o.chap = c;
    o.timeout = timeout;
    return o;
}

ProbeResult probe_one(const request::Target &t, const ProbeOptions &o) {
    auto results = probe_targets({t}, o);
    EXPECT_EQ(results.size(), 1u);
    return results.empty() ? ProbeResult{} : results.front();
}

double ms(std::chrono::microseconds us) { return static_cast<double>(us.count()) / 1000.0; }

// tgtd drops a session a moment after the initiator's logout/close.
int sessions_after_settling(TgtdLab &lab, int tid) {
    int n = lab.session_count(tid);
    for (int i = 0; i < 50 && n != 0; ++i) {
        std::this_thread::sleep_for(20ms);
        n = lab.session_count(tid);
    }
    return n;
}

#define EXPECT_OUTCOME(result, expected)                                                                   \
    EXPECT_EQ(probe_outcome_name((result).outcome), std::string(probe_outcome_name(expected)))              \
        << "detail: " << (result).detail

TEST(IscsiProbe, HealthyLunWithoutChapReportsSizeAndBlockSize) {
    TgtdLab lab;
    const auto iqn = lab.make_iqn("plain");
    const int tid = lab.create_target(iqn);
    lab.add_lun(tid, 1, 16ull << 20);
    const auto r = probe_one(target_of(lab.portal(), iqn, 1), options());
    EXPECT_OUTCOME(r, ProbeOutcome::healthy);
    EXPECT_EQ(r.size_bytes, 16ull << 20);
    EXPECT_EQ(r.block_size, 512u);
    EXPECT_FALSE(r.identity.has_value());
    std::printf("healthy probe took %.2f ms\n", ms(r.elapsed));
    EXPECT_EQ(sessions_after_settling(lab, tid), 0) << "the probe must not leave its session behind";
}

TEST(IscsiProbe, HealthyLunWithChapAndLargeBlocks) {
    TgtdLab lab;
    const auto iqn = lab.make_iqn("chap");
    const int tid = lab.create_target(iqn);
    lab.add_lun(tid, 1, 64ull << 20, 4096);
    lab.add_account("probe-user", "Secret-Pass-1234");
    lab.bind_account(tid, "probe-user");
    const auto c = chap("probe-user", "Secret-Pass-1234");
    const auto r = probe_one(target_of(lab.portal(), iqn, 1), options(3000ms, &c));
    EXPECT_OUTCOME(r, ProbeOutcome::healthy);
    EXPECT_EQ(r.size_bytes, 64ull << 20);
    EXPECT_EQ(r.block_size, 4096u);
}

TEST(IscsiProbe, WrongOrMissingChapIsAuthFailedFastAndNamesNoSecret) {
    TgtdLab lab;
    const auto iqn = lab.make_iqn("auth");
    const int tid = lab.create_target(iqn);
    lab.add_lun(tid, 1);
    lab.add_account("probe-user", "Right-Pass-98765");
    lab.bind_account(tid, "probe-user");
    const auto wrong = chap("probe-user", "Wrong-Pass-12345");
    const auto r = probe_one(target_of(lab.portal(), iqn, 1), options(3000ms, &wrong));
    EXPECT_OUTCOME(r, ProbeOutcome::auth_failed);
    EXPECT_LT(r.elapsed, 1000ms);
    EXPECT_EQ(r.detail.find("Wrong-Pass-12345"), std::string::npos);
    EXPECT_EQ(r.detail.find("Right-Pass-98765"), std::string::npos);
    EXPECT_NE(r.detail.find("probe-user"), std::string::npos) << r.detail;
    std::printf("wrong password: %.2f ms, detail: %s\n", ms(r.elapsed), r.detail.c_str());
    const std::string log = lab.daemon_log();
    EXPECT_EQ(log.find("Right-Pass-98765"), std::string::npos) << "tgtd's log must not hold the password";
    EXPECT_EQ(log.find("Wrong-Pass-12345"), std::string::npos);

    const auto none = probe_one(target_of(lab.portal(), iqn, 1), options());
    EXPECT_OUTCOME(none, ProbeOutcome::auth_failed);
}

TEST(IscsiProbe, ChangedPasswordTakesEffect) {
    TgtdLab lab;
    const auto iqn = lab.make_iqn("rotate");
    const int tid = lab.create_target(iqn);
    lab.add_lun(tid, 1);
    lab.add_account("rot-user", "First-Pass-0001");
    lab.bind_account(tid, "rot-user");
    const auto first = chap("rot-user", "First-Pass-0001");
    const auto second = chap("rot-user", "Second-Pass-0002");
    const auto t = target_of(lab.portal(), iqn, 1);
    EXPECT_OUTCOME(probe_one(t, options(3000ms, &first)), ProbeOutcome::healthy);
    lab.set_account_password("rot-user", "Second-Pass-0002");
    EXPECT_OUTCOME(probe_one(t, options(3000ms, &first)), ProbeOutcome::auth_failed);
    EXPECT_OUTCOME(probe_one(t, options(3000ms, &second)), ProbeOutcome::healthy);
}

TEST(IscsiProbe, UnknownIqnIsTargetNotFound) {
    TgtdLab lab;
    const int tid = lab.create_target(lab.make_iqn("real"));
    lab.add_lun(tid, 1);
    const auto r = probe_one(target_of(lab.portal(), lab.make_iqn("no-such-target"), 1), options());
    EXPECT_OUTCOME(r, ProbeOutcome::target_not_found);
    std::printf("unknown IQN: %s\n", r.detail.c_str());
}

TEST(IscsiProbe, MissingLunAndControllerLunAreLunUnavailable) {
    TgtdLab lab;
    const auto iqn = lab.make_iqn("luns");
    const int tid = lab.create_target(iqn);
    lab.add_lun(tid, 1);
    const auto results =
        probe_targets({target_of(lab.portal(), iqn, 5), target_of(lab.portal(), iqn, 0)}, options());
    ASSERT_EQ(results.size(), 2u);
    EXPECT_OUTCOME(results[0], ProbeOutcome::lun_unavailable);
    EXPECT_OUTCOME(results[1], ProbeOutcome::lun_unavailable);
    std::printf("missing LUN: %s\ncontroller LUN: %s\n", results[0].detail.c_str(), results[1].detail.c_str());
    EXPECT_EQ(sessions_after_settling(lab, tid), 0);
}

TEST(IscsiProbe, DeadPortalIsUnreachable) {
    TgtdLab lab;
    const auto r = probe_one(target_of(lab.dead_portal(), lab.make_iqn("x"), 1), options());
    EXPECT_OUTCOME(r, ProbeOutcome::unreachable);
    EXPECT_LT(r.elapsed, 1000ms);
    std::printf("dead portal: %.2f ms, detail: %s\n", ms(r.elapsed), r.detail.c_str());
}

TEST(IscsiProbe, BlackHolePortalTimesOutOnTime) {
    TgtdLab lab;
    const auto timeout = 700ms;
    const auto start = std::chrono::steady_clock::now();
    const auto r = probe_one(target_of(lab.black_hole_portal(), lab.make_iqn("x"), 1), options(timeout));
    const auto wall = std::chrono::steady_clock::now() - start;
    EXPECT_OUTCOME(r, ProbeOutcome::timeout);
    EXPECT_GE(r.elapsed, timeout);
    EXPECT_LT(wall, timeout + 500ms);
    std::printf("black hole: elapsed %.2f ms, wall %.2f ms, detail: %s\n", ms(r.elapsed),
                ms(std::chrono::duration_cast<std::chrono::microseconds>(wall)), r.detail.c_str());
}

TEST(IscsiProbe, PortalsAreProbedConcurrently) {
    TgtdLab lab;
    const auto iqn = lab.make_iqn("multi");
    const int tid = lab.create_target(iqn);
    lab.add_lun(tid, 1);
    const auto p2 = lab.add_portal();
    const auto p3 = lab.add_portal();
    const auto timeout = 1000ms;
    std::vector<request::Target> targets{target_of(lab.portal(), iqn, 1), target_of(p2, iqn, 1),
                                         target_of(p3, iqn, 1), target_of(lab.dead_portal(), iqn, 1)};
    for (int i = 0; i < 4; ++i) targets.push_back(target_of(lab.black_hole_portal(), iqn, 1));
    const auto start = std::chrono::steady_clock::now();
    const auto results = probe_targets(targets, options(timeout));
    const auto wall = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - start);
    ASSERT_EQ(results.size(), targets.size());
    for (std::size_t i = 0; i < results.size(); ++i) {
        std::printf("  %-24s %-12s %8.2f ms\n", targets[i].portal.to_string().c_str(),
                    probe_outcome_name(results[i].outcome), ms(results[i].elapsed));
    }
    std::printf("8 portals (3 healthy, 1 dead, 4 black holes, timeout %lld ms) took %.2f ms in all\n",
                static_cast<long long>(timeout.count()), ms(wall));
    for (int i = 0; i < 3; ++i) EXPECT_OUTCOME(results[i], ProbeOutcome::healthy);
    EXPECT_OUTCOME(results[3], ProbeOutcome::unreachable);
    for (int i = 4; i < 8; ++i) EXPECT_OUTCOME(results[i], ProbeOutcome::timeout);
    // One timeout's worth, not four: the black holes wait side by side.
    EXPECT_LT(wall, timeout * 2);
}

TEST(IscsiProbe, IdentityIsTheSameThroughEveryPortalAndDiffersBetweenLuns) {
    TgtdLab lab;
    const auto iqn_a = lab.make_iqn("a");
    const auto iqn_b = lab.make_iqn("b");
    const int a = lab.create_target(iqn_a);
    const int b = lab.create_target(iqn_b);
    lab.add_lun(a, 1);
    lab.add_lun(a, 2);
    lab.add_lun(b, 1);
    const auto p2 = lab.add_portal();
    auto o = options();
    o.read_identity = true;
    const auto results = probe_targets({target_of(lab.portal(), iqn_a, 1), target_of(p2, iqn_a, 1),
                                        target_of(lab.portal(), iqn_a, 2), target_of(lab.portal(), iqn_b, 1)},
                                       o);
    ASSERT_EQ(results.size(), 4u);
    for (const auto &r : results) {
        EXPECT_OUTCOME(r, ProbeOutcome::healthy);
        ASSERT_TRUE(r.identity.has_value());
        std::printf("wwid %s designators:", r.identity->wwid.c_str());
        for (const auto &d : r.identity->designators) std::printf(" %s", d.c_str());
        std::printf("\n");
        // The shape Linux showed for a tgtd LUN: "3" + 16 bytes of NAA 6 in hex.
        EXPECT_EQ(r.identity->wwid.size(), 33u);
        EXPECT_EQ(r.identity->wwid.substr(0, 2), "36");
    }
    EXPECT_EQ(*results[0].identity, *results[1].identity);
    EXPECT_NE(results[0].identity->wwid, results[2].identity->wwid);
    EXPECT_NE(results[0].identity->wwid, results[3].identity->wwid);
    EXPECT_NE(results[2].identity->wwid, results[3].identity->wwid);
}

TEST(IscsiDiscovery, ListsTargetsWithoutChap) {
    TgtdLab lab;
    const auto iqn_a = lab.make_iqn("disc-a");
    const auto iqn_b = lab.make_iqn("disc-b");
    lab.add_lun(lab.create_target(iqn_a), 1);
    lab.add_lun(lab.create_target(iqn_b), 1);
    const auto found = send_targets(to_portal(lab.portal()), initiator, nullptr, 3000ms);
    ASSERT_TRUE(found.ok()) << found.error().message;
    ASSERT_EQ(found->size(), 2u);
    for (const auto &t : *found) {
        EXPECT_TRUE(t.iqn == iqn_a || t.iqn == iqn_b) << t.iqn;
        ASSERT_EQ(t.portals.size(), 1u);
        EXPECT_EQ(t.portals[0], to_portal(lab.portal()));
    }
}

TEST(IscsiDiscovery, HonoursDiscoveryChap) {
    TgtdLab lab;
    const auto iqn = lab.make_iqn("disc-chap");
    lab.add_lun(lab.create_target(iqn), 1);
    lab.add_account("disc-user", "Disc-Pass-4242");
    lab.bind_discovery_account("disc-user");
    const auto portal = to_portal(lab.portal());

    const auto none = send_targets(portal, initiator, nullptr, 3000ms);
    ASSERT_FALSE(none.ok());
    EXPECT_EQ(none.error().status, Status::auth) << none.error().message;

    const auto wrong_chap = chap("disc-user", "Not-The-Pass-77");
    const auto wrong = send_targets(portal, initiator, &wrong_chap, 3000ms);
    ASSERT_FALSE(wrong.ok());
    EXPECT_EQ(wrong.error().status, Status::auth) << wrong.error().message;
    EXPECT_EQ(wrong.error().message.find("Not-The-Pass-77"), std::string::npos);
    EXPECT_EQ(wrong.error().message.find("Disc-Pass-4242"), std::string::npos);

    const auto right_chap = chap("disc-user", "Disc-Pass-4242");
    const auto right = send_targets(portal, initiator, &right_chap, 3000ms);
    ASSERT_TRUE(right.ok()) << right.error().message;
    ASSERT_EQ(right->size(), 1u);
    EXPECT_EQ(right->front().iqn, iqn);
}

TEST(IscsiDiscovery, DeadAndBlackHolePortals) {
    TgtdLab lab;
    const auto dead = send_targets(to_portal(lab.dead_portal()), initiator, nullptr, 3000ms);
    ASSERT_FALSE(dead.ok());
    EXPECT_EQ(dead.error().status, Status::unreachable) << dead.error().message;

    const auto start = std::chrono::steady_clock::now();
    const auto hole = send_targets(to_portal(lab.black_hole_portal()), initiator, nullptr, 600ms);
    const auto wall = std::chrono::steady_clock::now() - start;
    ASSERT_FALSE(hole.ok());
    EXPECT_EQ(hole.error().status, Status::timeout) << hole.error().message;
    EXPECT_LT(wall, 600ms + 500ms);
}

TEST(IscsiIpv6, ProbeAndDiscoveryThroughLoopbackV6) {
    TgtdLab lab;
    std::string why;
    const auto v6 = lab.add_ipv6_portal(&why);
    if (!v6) GTEST_SKIP() << "tgtd cannot bind [::1] here: " << why;
    const auto iqn = lab.make_iqn("v6");
    lab.add_lun(lab.create_target(iqn), 1, 8ull << 20);
    const auto r = probe_one(target_of(*v6, iqn, 1), options());
    EXPECT_OUTCOME(r, ProbeOutcome::healthy);
    EXPECT_EQ(r.size_bytes, 8ull << 20);

    const auto found = send_targets(to_portal(*v6), initiator, nullptr, 3000ms);
    ASSERT_TRUE(found.ok()) << found.error().message;
    ASSERT_EQ(found->size(), 1u);
    ASSERT_EQ(found->front().portals.size(), 1u);
    EXPECT_TRUE(found->front().portals[0].ipv6);
    EXPECT_EQ(found->front().portals[0], to_portal(*v6));
}

TEST(IscsiProbe, MissingInitiatorIsAnErrorNotACrash) {
    ProbeOptions o;
    o.timeout = 100ms;
    const auto results = probe_targets({request::Target{request::Portal{"127.0.0.1", 9, false}, "iqn.x:y", 1}}, o);
    ASSERT_EQ(results.size(), 1u);
    EXPECT_OUTCOME(results[0], ProbeOutcome::error);
    EXPECT_TRUE(probe_targets({}, options()).empty());
}

}  // namespace
}  // namespace ivd::iscsi
