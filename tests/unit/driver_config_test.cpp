#include "request/driver_config.hpp"
#include "request/json_input.hpp"

#include <gtest/gtest.h>

namespace {

using namespace ivd::request;

ivd::Result<DriverConfig> parse(const char *text) {
    auto doc = parse_object(text, "config");
    if (!doc) return std::move(doc).error();
    return parse_driver_config(*doc);
}

TEST(DriverConfig, DefaultsFromEmptyObject) {
    auto c = parse("{}");
    ASSERT_TRUE(c.ok());
    EXPECT_EQ(c->path, PathChoice::automatic);
    EXPECT_FALSE(c->enforce_multipath);
    EXPECT_TRUE(c->probe_portals);
    EXPECT_EQ(c->probe_timeout.count(), 3000);
    EXPECT_EQ(c->libvirt_uri, "qemu:///system");
}

TEST(DriverConfig, IniStringsAreAccepted) {
    auto c = parse(R"({"path":"network","probe_portals":"false","probe_timeout_ms":"250","disk_cache":"writeback","disk_io":"threads","host_multipath":"no","extra":"x"})");
    ASSERT_TRUE(c.ok()) << c.error().message;
    EXPECT_EQ(c->path, PathChoice::network);
    EXPECT_FALSE(c->probe_portals);
    EXPECT_EQ(c->probe_timeout.count(), 250);
    EXPECT_EQ(c->host_multipath, Tristate::no);
    ASSERT_EQ(c->unknown_keys.size(), 1u);
    EXPECT_EQ(c->unknown_keys[0], "extra");
}

TEST(DriverConfig, LibvirtDeadlines) {
    auto d = parse("{}");
    ASSERT_TRUE(d.ok());
    EXPECT_EQ(d->libvirt_open_timeout.count(), 10000);
    EXPECT_EQ(d->libvirt_keepalive_interval_s, 5);
    EXPECT_EQ(d->libvirt_keepalive_count, 3);
    auto c = parse(R"({"libvirt_open_timeout_ms":"2500","libvirt_keepalive_interval_s":"0","libvirt_keepalive_count":7})");
    ASSERT_TRUE(c.ok()) << c.error().message;
    EXPECT_EQ(c->libvirt_open_timeout.count(), 2500);
    EXPECT_EQ(c->libvirt_keepalive_interval_s, 0);
    EXPECT_EQ(c->libvirt_keepalive_count, 7);
    EXPECT_TRUE(c->unknown_keys.empty());
}

// Persistent libvirt secrets unless asked otherwise; the network path's part carries the choice.
TEST(DriverConfig, EphemeralSecretsDefaultOffAndReachTheNetworkPath) {
    auto d = parse("{}");
    ASSERT_TRUE(d.ok());
    EXPECT_FALSE(d->libvirt_ephemeral_secrets);
    EXPECT_FALSE(d->net_disk().libvirt_ephemeral_secrets);
    for (const char *text : {R"({"libvirt_ephemeral_secrets":"true"})", R"({"libvirt_ephemeral_secrets":true})",
                             R"({"libvirt_ephemeral_secrets":"yes"})"}) {
        auto c = parse(text);
        ASSERT_TRUE(c.ok()) << text << ": " << c.error().message;
        EXPECT_TRUE(c->libvirt_ephemeral_secrets) << text;
        EXPECT_TRUE(c->net_disk().libvirt_ephemeral_secrets) << text;
        EXPECT_TRUE(c->unknown_keys.empty()) << text;
    }
}

// The node record keeps the CHAP password unless scrubbing is asked for; the old key keeps its meaning.
TEST(DriverConfig, ChapRecordPolicyDefaultsToKeepingAndTheOldKeyKeepsItsMeaning) {
    struct {
        const char *text;
        bool scrub;
    } cases[] = {
        {"{}", false},
        {R"({"scrub_chap_from_node_record":"true"})", true},
        {R"({"scrub_chap_from_node_record":"false"})", false},
        {R"({"keep_chap_in_node_record":"false"})", true},
        {R"({"keep_chap_in_node_record":"true"})", false},
        {R"({"keep_chap_in_node_record":"off","scrub_chap_from_node_record":"on"})", true},
        {R"({"keep_chap_in_node_record":"yes","scrub_chap_from_node_record":"no"})", false},
    };
    for (const auto &c : cases) {
        auto r = parse(c.text);
        ASSERT_TRUE(r.ok()) << c.text << ": " << r.error().message;
        EXPECT_EQ(r->scrub_chap_from_node_record, c.scrub) << c.text;
        EXPECT_EQ(r->host_path().scrub_chap_from_node_record, c.scrub) << c.text;
        EXPECT_TRUE(r->unknown_keys.empty()) << c.text;
    }
    EXPECT_FALSE(HostPathOptions{}.scrub_chap_from_node_record);
}

TEST(DriverConfig, ErrorsNameTheKeyWithConfigStatus) {
    struct {
        const char *text;
        const char *field;
    } cases[] = {
        {R"({"path":"both"})", "path"},
        {R"({"probe_timeout_ms":"soon"})", "probe_timeout_ms"},
        {R"({"probe_timeout_ms":"1"})", "probe_timeout_ms"},
        // 19 digits above INT64_MAX: was internal_error "stoll" with no field.
        {R"({"probe_timeout_ms":"9999999999999999999"})", "probe_timeout_ms"},
        {R"({"host_facts_ttl_s":"9223372036854775808"})", "host_facts_ttl_s"},
        {R"({"login_timeout_ms":"9999999999999999999"})", "login_timeout_ms"},
        {R"({"enforce_multipath":"maybe"})", "enforce_multipath"},
        {R"({"enforce_multipath":"true","path":"network"})", "enforce_multipath"},
        {R"({"disk_cache":"fast"})", "disk_cache"},
        {R"({"disk_cache":"writeback"})", "disk_io"},
        {R"({"qemu_iscsi":"perhaps"})", "qemu_iscsi"},
        {R"({"libvirt_open_timeout_ms":"10"})", "libvirt_open_timeout_ms"},
        {R"({"libvirt_open_timeout_ms":"99999999999999999999"})", "libvirt_open_timeout_ms"},
        {R"({"libvirt_keepalive_interval_s":-1})", "libvirt_keepalive_interval_s"},
        {R"({"libvirt_keepalive_count":"many"})", "libvirt_keepalive_count"},
        {R"({"scrub_chap_from_node_record":"sometimes"})", "scrub_chap_from_node_record"},
        {R"({"libvirt_ephemeral_secrets":"memory"})", "libvirt_ephemeral_secrets"},
        {R"({"libvirt_ephemeral_secrets":2})", "libvirt_ephemeral_secrets"},
        {R"({"keep_chap_in_node_record":"true","scrub_chap_from_node_record":"true"})", "keep_chap_in_node_record"},
        {R"({"keep_chap_in_node_record":"false","scrub_chap_from_node_record":"false"})", "keep_chap_in_node_record"},
    };
    for (const auto &c : cases) {
        auto r = parse(c.text);
        ASSERT_FALSE(r.ok()) << c.text;
        EXPECT_EQ(r.error().status, ivd::Status::config) << c.text;
        EXPECT_EQ(r.error().field, c.field) << c.text;
    }
}

}  // namespace

namespace {

// iscsi_ifaces: "default" by default (today's behaviour), NAME or NAME:NETDEV entries, offload names whole.
TEST(DriverConfig, IscsiIfacesDefaultAndEntries) {
    auto d = parse("{}");
    ASSERT_TRUE(d.ok());
    EXPECT_EQ(d->iscsi_ifaces, (std::vector<IscsiIface>{{"default", ""}}));
    EXPECT_EQ(d->host_path().iscsi_ifaces, d->iscsi_ifaces);
    auto c = parse(R"({"iscsi_ifaces":"default, ivd0:eth1,ivd1:veth-b.2 ,bnx2i.00:0e:1e:04:93:92,iser"})");
    ASSERT_TRUE(c.ok()) << c.error().message;
    EXPECT_EQ(c->iscsi_ifaces, (std::vector<IscsiIface>{{"default", ""},
                                                        {"ivd0", "eth1"},
                                                        {"ivd1", "veth-b.2"},
                                                        {"bnx2i.00:0e:1e:04:93:92", ""},
                                                        {"iser", ""}}));
    EXPECT_EQ(c->host_path().iscsi_ifaces, c->iscsi_ifaces);
    EXPECT_TRUE(c->unknown_keys.empty());
}

// Strict names: each refusal names iscsi_ifaces and says why.
TEST(DriverConfig, IscsiIfacesRefusedEntriesNameTheKeyAndTheReason) {
    struct {
        const char *text;
        const char *reason;
    } cases[] = {
        {R"({"iscsi_ifaces":""})", "empty"},
        {R"({"iscsi_ifaces":"a,,b"})", "an empty iface name"},
        {R"({"iscsi_ifaces":"../etc"})", "starts with '.'"},
        {R"({"iscsi_ifaces":"a/b"})", "has a character other than"},
        {R"({"iscsi_ifaces":"-I"})", "starts with '-'"},
        {R"({"iscsi_ifaces":"x:eth0:1"})", "network interface \"eth0:1\""},
        {R"({"iscsi_ifaces":"x:"})", "an empty network interface"},
        {R"({"iscsi_ifaces":"x:averyveryverylongnic"})", "longer than 15 bytes"},
        {R"({"iscsi_ifaces":"default:eth0"})", "binds no network interface"},
        {R"({"iscsi_ifaces":"a b"})", "has a character other than"},
        {R"({"iscsi_ifaces":"ivd0:eth1,ivd0:eth2"})", "listed twice"},
        {R"({"iscsi_ifaces":"bnx2i.00:0e:1e:04:93"})", "network interface"},
        {R"({"iscsi_ifaces":"0123456789012345678901234567890123456789012345678901234567890123456789"})", "longer than 64"},
        {R"({"iscsi_ifaces":7})", ""},
    };
    for (const auto &c : cases) {
        auto r = parse(c.text);
        ASSERT_FALSE(r.ok()) << c.text;
        EXPECT_EQ(r.error().status, ivd::Status::config) << c.text;
        EXPECT_EQ(r.error().field, "iscsi_ifaces") << c.text;
        EXPECT_NE(r.error().message.find("iscsi_ifaces"), std::string::npos) << r.error().message;
        EXPECT_NE(r.error().message.find(c.reason), std::string::npos) << c.text << ": " << r.error().message;
    }
}

TEST(DriverConfig, IscsiIfaceNameCheckIsTheConfigOne) {
    EXPECT_TRUE(valid_iscsi_iface_name("default"));
    EXPECT_TRUE(valid_iscsi_iface_name("qla4xxx.00:0e:1e:04:93:92"));
    EXPECT_FALSE(valid_iscsi_iface_name(".."));
    EXPECT_FALSE(valid_iscsi_iface_name("a/b"));
    EXPECT_FALSE(valid_iscsi_iface_name(""));
}

}  // namespace
