// The wwids file on a multipath connect: read once, and that one answer decides both whether `multipath -a` runs
// and whether the crash journal calls the entry the attachment's own (a cleanup removes only its own).
#include "policy_fixture.hpp"

namespace {

using namespace ivd::testing::policy;

class WwidsPolicy : public HostPathPolicy {
protected:
    WwidsPolicy() { volume_.targets.resize(2); }
    bool recorded_wwid_added() {
        auto rec = journal_->read(volume_.volume_key());
        EXPECT_TRUE(rec.ok() && rec->has_value());
        return rec.ok() && rec->has_value() && (*rec)->wwid_added;
    }
    std::size_t whitelist_runs() { return host().count(std::string("whitelist ") + FakeHostOps::default_wwid); }
};

// Listed at the read, gone by a second read: no `multipath -a`, and the entry is not the attachment's. Before the
// file was read once, the journal said "not ours" while `multipath -a` ran on its own read.
TEST_F(WwidsPolicy, AListedWwidRunsNoMultipathAAndIsNotTheAttachments) {
    host_setup_.push_back([](FakeHostOps &h) { h.set_wwid_listed_answers({true, false}); });
    auto info = connect();
    ASSERT_TRUE(info.ok()) << info.error().message;
    EXPECT_EQ(host().wwid_listed_reads(), 1U);
    EXPECT_EQ(whitelist_runs(), 0U);
    EXPECT_FALSE(recorded_wwid_added());
}

// Not listed at the read, listed by another process before a second read: `multipath -a` runs, and the entry it
// made is the attachment's (a later cleanup may remove it).
TEST_F(WwidsPolicy, AnUnlistedWwidRunsMultipathAOnceAndIsTheAttachments) {
    host_setup_.push_back([](FakeHostOps &h) { h.set_wwid_listed_answers({false, true}); });
    auto info = connect();
    ASSERT_TRUE(info.ok()) << info.error().message;
    EXPECT_EQ(host().wwid_listed_reads(), 1U);
    EXPECT_EQ(whitelist_runs(), 1U);
    EXPECT_TRUE(recorded_wwid_added());
}

// A single-path connect runs no `multipath -a`: it neither reads the file nor claims an entry.
TEST_F(WwidsPolicy, ASinglePathConnectNeitherReadsNorClaimsTheEntry) {
    decision_.multipath = false;
    auto info = connect();
    ASSERT_TRUE(info.ok()) << info.error().message;
    EXPECT_EQ(host().wwid_listed_reads(), 0U);
    EXPECT_EQ(whitelist_runs(), 0U);
    EXPECT_FALSE(recorded_wwid_added());
}

}  // namespace
