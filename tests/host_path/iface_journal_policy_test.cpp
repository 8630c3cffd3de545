// The crash journal with iscsi_ifaces: each path's record names its iface ("iface", written only when not
// "default"), and cleanup logs out of and deletes the node records of that iface, not the default one.
#include "policy_fixture.hpp"

namespace {

using namespace ivd::testing::policy;
using ivd::host_path::JournalPath;
using ivd::host_path::JournalRecord;

class HostPathIfaceJournal : public HostPathPolicy {
protected:
    HostPathIfaceJournal() {
        volume_.targets.resize(2);  // two portals
        config_.iscsi_ifaces = {{"ivd0", "eth1"}, {"ivd1", "eth2"}};
    }
    std::vector<std::pair<std::string, std::string>> recorded_paths() {
        auto rec = journal_->read(volume_.volume_key());
        EXPECT_TRUE(rec.ok() && rec->has_value());
        std::vector<std::pair<std::string, std::string>> out;
        if (!rec.ok() || !rec->has_value()) return out;
        for (const JournalPath &p : (*rec)->paths) out.emplace_back(p.target.portal.to_string(), p.iface);
        return out;
    }
    // Cleanup as `volume-host cleanup` runs it, no domain using any device: the journal's attachments undone.
    void cleanup() {
        ivd::CleanupContext ctx;
        ctx.domain_block_devices = std::vector<std::string>{};
        auto found = path().find_leftovers(ctx);
        ASSERT_TRUE(found.ok()) << found.error().message;
        std::size_t attachments = 0;
        for (const ivd::Leftover &l : *found) {
            if (l.kind != "host_attachment") continue;
            ++attachments;
            ASSERT_TRUE(l.removable && !l.in_use) << l.reason;
            auto r = path().remove_leftover(l);
            ASSERT_TRUE(r.ok()) << r.error().message;
        }
        EXPECT_EQ(attachments, 1U);
    }
};

TEST_F(HostPathIfaceJournal, EachPathIsRecordedWithItsIface) {
    auto info = connect();
    ASSERT_TRUE(info.ok()) << info.error().message;
    EXPECT_EQ(recorded_paths(), (std::vector<std::pair<std::string, std::string>>{
                                    {portals[0], "ivd0"}, {portals[0], "ivd1"}, {portals[1], "ivd0"}, {portals[1], "ivd1"}}));
    ASSERT_TRUE(disconnect(*info).ok());
    auto rec = journal_->read(volume_.volume_key());
    ASSERT_TRUE(rec.ok());
    EXPECT_FALSE(rec->has_value());
}

// A connected attachment nobody uses (its disconnect never came: the host crashed): cleanup takes down the sessions
// and node records of ivd0 and ivd1; another volume's session through iface "other" stays.
TEST_F(HostPathIfaceJournal, CleanupLogsOutAndDeletesNodesOfEachPathsIface) {
    host_setup_.push_back([](FakeHostOps &h) {
        h.add_iface("other");
        h.add_foreign_lun(portal(portals[0]), iqn, 7, "other");
    });
    auto info = connect();
    ASSERT_TRUE(info.ok()) << info.error().message;
    EXPECT_EQ(host().sessions_via("ivd0"), 2U);
    EXPECT_EQ(host().sessions_via("ivd1"), 2U);
    cleanup();
    EXPECT_EQ(host().sessions_via("ivd0"), 0U);
    EXPECT_EQ(host().sessions_via("ivd1"), 0U);
    EXPECT_EQ(host().sessions_via("other"), 1U);
    EXPECT_EQ(host().node_records(), 1U);  // the other volume's
    EXPECT_EQ(host().devices(), 1U);
    for (const char *iface : {"ivd0", "ivd1"}) {
        for (const std::string &p : {std::string(portals[0]), std::string(portals[1])}) {
            EXPECT_EQ(host().count("logout " + p + " via " + iface), 1U) << p << " " << iface;
        }
    }
    EXPECT_EQ(host().count("logout " + std::string(portals[0]) + " via other"), 0U);
    auto rec = journal_->read(volume_.volume_key());
    ASSERT_TRUE(rec.ok());
    EXPECT_FALSE(rec->has_value());
}

// A connect whose repair adds paths journals them with their iface (the kept ones are in the record already).
TEST_F(HostPathIfaceJournal, RepairJournalsTheAddedPathsWithTheirIface) {
    auto info = connect();
    ASSERT_TRUE(info.ok()) << info.error().message;
    host().lose_session(portals[1]);
    auto again = connect();
    ASSERT_TRUE(again.ok()) << again.error().message;
    EXPECT_EQ(recorded_paths().size(), 4U);
    cleanup();
    EXPECT_EQ(host().sessions(), 0U);
    EXPECT_EQ(host().node_records(), 0U);
}

TEST(JournalIface, WrittenOnlyWhenNotDefaultAndAMissingOneReadsAsDefault) {
    JournalRecord rec;
    rec.volume = "v";
    rec.state = "connected";
    rec.step = "connected";
    JournalPath a;
    a.target.portal = *ivd::request::parse_portal("127.0.0.1:3260");
    a.target.iqn = "iqn.2024-01.org.example:t";
    a.target.lun = 1;
    a.step = "attached";
    JournalPath b = a;
    b.iface = "ivd0";
    rec.paths = {a, b};
    ivd::json::Value v = ivd::host_path::record_to_json(rec);
    EXPECT_EQ(v["paths"][0].find("iface"), nullptr);
    EXPECT_EQ(v["paths"][1]["iface"].as_string(), "ivd0");
    auto back = ivd::host_path::record_from_json(v, "v.json");
    ASSERT_TRUE(back.ok()) << back.error().message;
    ASSERT_EQ(back->paths.size(), 2U);
    EXPECT_EQ(back->paths[0].iface, "default");
    EXPECT_EQ(back->paths[1].iface, "ivd0");
    EXPECT_TRUE(back->has_path(a.target, "ivd0"));
    EXPECT_TRUE(back->has_path(a.target, "default"));
    EXPECT_FALSE(back->has_path(a.target, "ivd1"));

    // The name goes into iscsiadm's argv and node record paths: one iscsi_ifaces would refuse is refused.
    v["paths"].items()[1]["iface"] = ivd::json::Value("../x");
    auto bad = ivd::host_path::record_from_json(v, "v.json");
    ASSERT_FALSE(bad.ok());
    EXPECT_NE(bad.error().message.find("iface"), std::string::npos) << bad.error().message;
    EXPECT_NE(bad.error().message.find("v.json"), std::string::npos) << bad.error().message;
}

}  // namespace
