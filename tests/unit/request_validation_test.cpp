// The validation table: every input either parses into the expected value or fails naming the exact field.
#include "request/json_input.hpp"
#include "request/volume_request.hpp"

#include <gtest/gtest.h>

#include <string>

namespace {

using ivd::Status;
using namespace ivd::request;

struct Case {
    const char *name;
    std::string data;         // the "data" object of connection_info
    const char *field;        // expected field, or nullptr for success
};

std::string ci(const std::string &data) { return R"({"driver_volume_type":"iscsi","data":)" + data + "}"; }

ivd::Result<VolumeRequest> parse_tree(const std::string &text) {
    auto doc = parse_object(text.c_str(), "connection_info");
    if (!doc) return std::move(doc).error();
    return parse_connection_info(*doc);
}

// Every case runs through both readers: the text one the driver calls, and parse_object + the tree one. They
// must agree on the outcome and on every error's message and field.
ivd::Result<VolumeRequest> parse(const std::string &text) {
    auto from_text = parse_connection_info_text(text.c_str());
    auto from_tree = parse_tree(text);
    EXPECT_EQ(from_text.ok(), from_tree.ok()) << text;
    if (!from_text.ok() && !from_tree.ok()) {
        EXPECT_EQ(from_text.error().message, from_tree.error().message) << text;
        EXPECT_EQ(from_text.error().field, from_tree.error().field) << text;
        EXPECT_EQ(from_text.error().argument, from_tree.error().argument) << text;
    }
    if (from_text.ok() && from_tree.ok()) {
        EXPECT_EQ(from_text->targets, from_tree->targets) << text;
        EXPECT_EQ(from_text->volume_id, from_tree->volume_id) << text;
        EXPECT_EQ(from_text->qos, from_tree->qos) << text;
        EXPECT_EQ(from_text->chap.has_value(), from_tree->chap.has_value()) << text;
    }
    return from_text;
}

const std::string P = R"("target_portal":"127.0.0.1:3260")";
const std::string Q = R"("target_iqn":"iqn.2010-10.org.openstack:volume-1")";

class ConnectionInfoTable : public ::testing::TestWithParam<Case> {};

TEST_P(ConnectionInfoTable, FieldNamedOrAccepted) {
    const Case &c = GetParam();
    auto r = parse(ci(c.data));
    if (c.field == nullptr) {
        ASSERT_TRUE(r.ok()) << r.error().message;
    } else {
        ASSERT_FALSE(r.ok()) << "accepted: " << c.data;
        EXPECT_EQ(r.error().status, Status::invalid_argument);
        EXPECT_EQ(r.error().argument, "connection_info");
        EXPECT_EQ(r.error().field, c.field) << r.error().message;
        EXPECT_NE(r.error().message.find(c.field), std::string::npos) << r.error().message;
    }
}

INSTANTIATE_TEST_SUITE_P(
    Inputs, ConnectionInfoTable,
    ::testing::Values(
        Case{"single", "{" + P + "," + Q + "}", nullptr},
        Case{"single_lun", "{" + P + "," + Q + R"(,"target_lun":7})", nullptr},
        Case{"bare_host", R"({"target_portal":"storage.example.com",)" + Q + "}", nullptr},
        Case{"ipv6", R"({"target_portal":"[fd00::1]:3261",)" + Q + "}", nullptr},
        Case{"ipv6_bare", R"({"target_portal":"fd00::1",)" + Q + "}", nullptr},
        Case{"eui", "{" + P + R"(,"target_iqn":"eui.02004567A425678D"})", nullptr},
        Case{"naa16", "{" + P + R"(,"target_iqn":"naa.52004567BA64678D"})", nullptr},
        Case{"naa32", "{" + P + R"(,"target_iqn":"naa.62004567BA64678D0123456789ABCDEF"})", nullptr},
        Case{"lists", R"({"target_portals":["10.0.1.2:3260","10.0.2.2:3260"],"target_iqns":["iqn.2014-02.org.example:vol1-1","iqn.2014-02.org.example:vol1-2"],"target_luns":[1,2]})", nullptr},
        Case{"lists_one_lun", R"({"target_portals":["10.0.1.2:3260","10.0.2.2:3260"],"target_iqns":["iqn.2014-02.org.example:v","iqn.2014-02.org.example:v"],"target_lun":3})", nullptr},
        Case{"null_optional", "{" + P + "," + Q + R"(,"auth_method":null,"volume_id":null,"qos_specs":null})", nullptr},
        Case{"chap", "{" + P + "," + Q + R"(,"auth_method":"CHAP","auth_username":"u","auth_password":"p"})", nullptr},
        Case{"qos_strings", "{" + P + "," + Q + R"(,"qos_specs":{"read_bytes_sec":"1000","write_iops_sec":50}})", nullptr},
        Case{"unknown_keys_ignored", "{" + P + "," + Q + R"(,"target_discovered":false,"something":[1,2]})", nullptr},
        // Errors, each naming its field.
        Case{"no_portal", "{" + Q + "}", "data.target_portal"},
        Case{"no_iqn", "{" + P + "}", "data.target_iqn"},
        Case{"portal_number", R"({"target_portal":3260,)" + Q + "}", "data.target_portal"},
        Case{"portal_port_0", R"({"target_portal":"1.2.3.4:0",)" + Q + "}", "data.target_portal"},
        Case{"portal_port_65536", R"({"target_portal":"1.2.3.4:65536",)" + Q + "}", "data.target_portal"},
        Case{"portal_bad_ipv4", R"({"target_portal":"1.2.3.999:3260",)" + Q + "}", "data.target_portal"},
        Case{"portal_ipv6_port_unbracketed", R"({"target_portal":"fd00::1:3260:x",)" + Q + "}", "data.target_portal"},
        Case{"portal_markup", R"({"target_portal":"<host/>",)" + Q + "}", "data.target_portal"},
        Case{"portal_empty", R"({"target_portal":"",)" + Q + "}", "data.target_portal"},
        Case{"iqn_bad_prefix", "{" + P + R"(,"target_iqn":"foo.2010-10.org:x"})", "data.target_iqn"},
        Case{"iqn_bad_date", "{" + P + R"(,"target_iqn":"iqn.2010-13.org.x:y"})", "data.target_iqn"},
        Case{"iqn_slash", "{" + P + R"(,"target_iqn":"iqn.2010-10.org.x:a/b"})", "data.target_iqn"},
        Case{"iqn_quote", "{" + P + R"(,"target_iqn":"iqn.2010-10.org.x:a'b"})", "data.target_iqn"},
        Case{"iqn_nul", "{" + P + R"(,"target_iqn":"iqn.2010-10.org.x:a\u0000b"})", "data.target_iqn"},
        Case{"iqn_too_long", "{" + P + R"(,"target_iqn":"iqn.2010-10.org.x:)" + std::string(300, 'a') + "\"}", "data.target_iqn"},
        Case{"eui_short", "{" + P + R"(,"target_iqn":"eui.0200"})", "data.target_iqn"},
        Case{"lun_negative", "{" + P + "," + Q + R"(,"target_lun":-1})", "data.target_lun"},
        Case{"lun_huge", "{" + P + "," + Q + R"(,"target_lun":99999999999})", "data.target_lun"},
        Case{"lun_fraction", "{" + P + "," + Q + R"(,"target_lun":1.5})", "data.target_lun"},
        Case{"lun_exponent", "{" + P + "," + Q + R"(,"target_lun":1e2})", "data.target_lun"},
        Case{"lun_string", "{" + P + "," + Q + R"(,"target_lun":"1"})", "data.target_lun"},
        Case{"lists_length_mismatch", R"({"target_portals":["10.0.1.2:3260","10.0.2.2:3260"],"target_iqns":["iqn.2014-02.org.example:v"],"target_luns":[1,1]})", "data.target_iqns"},
        Case{"luns_length_mismatch", R"({"target_portals":["10.0.1.2:3260","10.0.2.2:3260"],"target_iqns":["iqn.2014-02.org.example:v","iqn.2014-02.org.example:v"],"target_luns":[1]})", "data.target_luns"},
        Case{"empty_portals", R"({"target_portals":[],"target_iqns":[]})", "data.target_portals"},
        Case{"portals_not_list", R"({"target_portals":"10.0.1.2:3260","target_iqns":["iqn.2014-02.org.example:v"]})", "data.target_portals"},
        Case{"bad_second_iqn", R"({"target_portals":["10.0.1.2:3260","10.0.2.2:3260"],"target_iqns":["iqn.2014-02.org.example:v","bad"],"target_luns":[1,1]})", "data.target_iqns[1]"},
        Case{"bad_second_lun", R"({"target_portals":["10.0.1.2:3260","10.0.2.2:3260"],"target_iqns":["iqn.2014-02.org.example:v","iqn.2014-02.org.example:v"],"target_luns":[1,-4]})", "data.target_luns[1]"},
        Case{"duplicate_target", R"({"target_portals":["10.0.1.2:3260","10.0.1.2:3260"],"target_iqns":["iqn.2014-02.org.example:v","iqn.2014-02.org.example:v"],"target_luns":[1,1]})", "data.target_portals[1]"},
        Case{"iqns_without_portals", "{" + P + R"(,"target_iqns":["iqn.2014-02.org.example:v"]})", "data.target_portals"},
        Case{"chap_no_password", "{" + P + "," + Q + R"(,"auth_method":"CHAP","auth_username":"u"})", "data.auth_password"},
        Case{"chap_no_user", "{" + P + "," + Q + R"(,"auth_method":"CHAP","auth_password":"p"})", "data.auth_username"},
        Case{"chap_method_unknown", "{" + P + "," + Q + R"(,"auth_method":"kerberos"})", "data.auth_method"},
        Case{"creds_without_method", "{" + P + "," + Q + R"(,"auth_username":"u","auth_password":"p"})", "data.auth_username"},
        Case{"password_number", "{" + P + "," + Q + R"(,"auth_method":"CHAP","auth_username":"u","auth_password":1234})", "data.auth_password"},
        Case{"discovery_no_password", "{" + P + "," + Q + R"(,"discovery_auth_method":"CHAP","discovery_auth_username":"u"})", "data.discovery_auth_password"},
        Case{"volume_id_markup", "{" + P + "," + Q + R"(,"volume_id":"a<b"})", "data.volume_id"},
        Case{"access_mode_bad", "{" + P + "," + Q + R"(,"access_mode":"rwx"})", "data.access_mode"},
        Case{"encrypted_string", "{" + P + "," + Q + R"(,"encrypted":"false"})", "data.encrypted"},
        Case{"discard_number", "{" + P + "," + Q + R"(,"discard":1})", "data.discard"},
        Case{"qos_negative", "{" + P + "," + Q + R"(,"qos_specs":{"total_iops_sec":-5}})", "data.qos_specs.total_iops_sec"},
        Case{"qos_conflict", "{" + P + "," + Q + R"(,"qos_specs":{"total_bytes_sec":10,"read_bytes_sec":5}})", "data.qos_specs.read_bytes_sec"},
        // 19 digits above INT64_MAX as a string: was internal_error "stoll" with no field.
        Case{"qos_string_over_int64", "{" + P + "," + Q + R"(,"qos_specs":{"total_bytes_sec":"9999999999999999999"}})", "data.qos_specs.total_bytes_sec"},
        Case{"qos_string_int64_max", "{" + P + "," + Q + R"(,"qos_specs":{"total_bytes_sec":"9223372036854775807"}})", nullptr},
        // IPv6 zone ids: refused with a message that says so (was "bracket the address").
        Case{"portal_ipv6_zone", R"({"target_portal":"fe80::1%eth0",)" + Q + "}", "data.target_portal"},
        Case{"portal_ipv6_zone_bracketed", R"({"target_portal":"[fe80::1%eth0]:3260",)" + Q + "}", "data.target_portal"},
        Case{"qos_not_object", "{" + P + "," + Q + R"(,"qos_specs":[1]})", "data.qos_specs"},
        // data.addressing_mode: os-brick's values, spelled as Cinder sends them (os_brick.constants).
        Case{"addressing_sam", "{" + P + "," + Q + R"(,"addressing_mode":"SAM"})", nullptr},
        Case{"addressing_transparent", "{" + P + "," + Q + R"(,"addressing_mode":"transparent"})", nullptr},
        Case{"addressing_sam2", "{" + P + "," + Q + R"(,"addressing_mode":"SAM2","target_lun":256})", nullptr},
        Case{"addressing_sam3_flat", "{" + P + "," + Q + R"(,"addressing_mode":"SAM3-flat","target_lun":16383})", nullptr},
        Case{"addressing_null", "{" + P + "," + Q + R"(,"addressing_mode":null})", nullptr},
        Case{"addressing_empty", "{" + P + "," + Q + R"(,"addressing_mode":""})", nullptr},
        Case{"addressing_underscore", "{" + P + "," + Q + R"(,"addressing_mode":"SAM3_flat"})", "data.addressing_mode"},
        Case{"addressing_lowercase", "{" + P + "," + Q + R"(,"addressing_mode":"sam2"})", "data.addressing_mode"},
        Case{"addressing_unknown", "{" + P + "," + Q + R"(,"addressing_mode":"flat"})", "data.addressing_mode"},
        Case{"addressing_number", "{" + P + "," + Q + R"(,"addressing_mode":2})", "data.addressing_mode"}),
    [](const ::testing::TestParamInfo<Case> &p) { return std::string(p.param.name); });

TEST(ConnectionInfo, Ipv6ZoneIdIsRefusedAsSuch) {
    for (const char *portal : {"fe80::1%eth0", "[fe80::1%eth0]:3260", "[fe80::1%25eth0]"}) {
        auto r = parse(ci(std::string(R"({"target_portal":")") + portal + "\"," + Q + "}"));
        ASSERT_FALSE(r.ok()) << portal;
        EXPECT_EQ(r.error().field, "data.target_portal");
        EXPECT_NE(r.error().message.find("zone ids"), std::string::npos) << r.error().message;
        EXPECT_EQ(r.error().message.find("bracket"), std::string::npos) << r.error().message;
    }
}

TEST(ConnectionInfo, ListsExpandInOrderWithSingleLunRepeated) {
    auto r = parse(ci(R"({"target_portals":["10.0.1.2:3260","[fd00::2]:3261"],"target_iqns":["iqn.2014-02.org.example:a","iqn.2014-02.org.example:b"],"target_lun":4})"));
    ASSERT_TRUE(r.ok()) << r.error().message;
    ASSERT_EQ(r->targets.size(), 2u);
    EXPECT_TRUE(r->targets_from_lists);
    EXPECT_EQ(r->targets[0].portal.to_string(), "10.0.1.2:3260");
    EXPECT_EQ(r->targets[1].portal.host, "fd00::2");
    EXPECT_EQ(r->targets[1].portal.port, 3261);
    EXPECT_TRUE(r->targets[1].portal.ipv6);
    EXPECT_EQ(r->targets[1].iqn, "iqn.2014-02.org.example:b");
    EXPECT_EQ(r->targets[0].lun, 4);
    EXPECT_EQ(r->targets[1].lun, 4);
}

// How each mode turns a LUN into the kernel's (os-brick's lun_for_addressing), and every target carries the mode.
TEST(ConnectionInfo, AddressingModeGivesTheScsiLunOfEveryTarget) {
    struct {
        const char *mode;  // nullptr: key absent
        std::int64_t lun, scsi;
    } cases[] = {
        {nullptr, 1, 1},       {nullptr, 256, 256},     {"SAM", 300, 300},        {"transparent", 300, 300},
        {"SAM2", 0, 0},        {"SAM2", 255, 255},      {"SAM2", 256, 16640},     {"SAM2", 16383, 32767},
        {"SAM3-flat", 0, 16384}, {"SAM3-flat", 1, 16385}, {"SAM3-flat", 256, 16640},
    };
    for (const auto &c : cases) {
        std::string data = R"({"target_portals":["10.0.1.2:3260","10.0.2.2:3260"],"target_iqns":["iqn.2014-02.org.example:v","iqn.2014-02.org.example:v"],"target_lun":)" +
                           std::to_string(c.lun);
        if (c.mode != nullptr) data += std::string(R"(,"addressing_mode":")") + c.mode + "\"";
        auto r = parse(ci(data + "}"));
        ASSERT_TRUE(r.ok()) << data << ": " << r.error().message;
        ASSERT_EQ(r->targets.size(), 2u);
        for (const Target &t : r->targets) {
            EXPECT_EQ(t.lun, c.lun) << data;
            EXPECT_EQ(t.scsi_lun(), c.scsi) << data;
            EXPECT_EQ(t.addressing, r->addressing) << data;
        }
        EXPECT_STREQ(addressing_mode_name(r->addressing), c.mode != nullptr ? c.mode : "SAM");
    }
    auto bad = parse(ci("{" + P + "," + Q + R"(,"addressing_mode":"SAM3_flat"})"));
    ASSERT_FALSE(bad.ok());
    EXPECT_NE(bad.error().message.find("\"SAM3-flat\""), std::string::npos) << "lists the valid values: " << bad.error().message;
}

TEST(ConnectionInfo, DefaultsAndOptionalFields) {
    auto r = parse(ci("{" + P + "," + Q + R"(,"auth_method":"CHAP","auth_username":"user","auth_password":"pw","access_mode":"ro","discard":true,"volume_id":"0f2c-1","qos_specs":{"read_iops_sec":"100","total_bytes_sec":0}})"));
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_EQ(r->targets[0].lun, 0);
    EXPECT_EQ(r->targets[0].portal.port, 3260);
    ASSERT_TRUE(r->chap.has_value());
    EXPECT_EQ(r->chap->username, "user");
    EXPECT_EQ(r->chap->password.reveal(), "pw");
    EXPECT_EQ(r->access_mode, AccessMode::read_only);
    EXPECT_TRUE(r->discard);
    ASSERT_EQ(r->qos.size(), 1u);  // zero means "no limit" and is dropped
    EXPECT_EQ(r->qos[0].first, "read_iops_sec");
    EXPECT_EQ(r->qos[0].second, 100u);
    EXPECT_EQ(r->volume_key(), "volume:0f2c-1");
}

TEST(ConnectionInfo, PasswordNeverInErrorMessages) {
    // A bad value next to a password: the message must not echo the password anywhere.
    auto r = parse(ci("{" + P + "," + Q + R"(,"auth_method":"CHAP","auth_username":"u","auth_password":"S3cr3t-Value\u0000"})"));
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().field, "data.auth_password");
    EXPECT_EQ(r.error().message.find("S3cr3t"), std::string::npos);
}

TEST(ConnectionInfo, WrongDriverTypeAndMissingData) {
    auto doc = parse_object(R"({"driver_volume_type":"rbd","data":{}})", "connection_info");
    ASSERT_TRUE(doc.ok());
    auto r = parse_connection_info(*doc);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().field, "driver_volume_type");
    auto doc2 = parse_object(R"({"driver_volume_type":"iscsi"})", "connection_info");
    auto r2 = parse_connection_info(*doc2);
    ASSERT_FALSE(r2.ok());
    EXPECT_EQ(r2.error().field, "data");
}

TEST(JsonInput, StrictDocumentRules) {
    EXPECT_FALSE(parse_object(R"({"a":1,"a":2})", "x").ok()) << "duplicate keys";
    EXPECT_FALSE(parse_object(R"({"a":1} trailing)", "x").ok());
    EXPECT_FALSE(parse_object(R"([1,2])", "x").ok()) << "not an object";
    EXPECT_FALSE(parse_object(R"({"a":1 /* c */})", "x").ok()) << "comments";
    EXPECT_FALSE(parse_object(nullptr, "x").ok());
    EXPECT_TRUE(parse_object(nullptr, "x", true).ok());
    std::string deep(100000, '[');
    auto r = parse_object(("{\"a\":" + deep).c_str(), "x");
    EXPECT_FALSE(r.ok());
    std::string big = "{\"a\":\"" + std::string(2 << 20, 'x') + "\"}";
    EXPECT_FALSE(parse_object(big.c_str(), "x").ok());
    EXPECT_FALSE(parse_object("{\"a\":\"\xff\xfe\"}", "x").ok()) << "non-UTF-8";
    EXPECT_FALSE(parse_object("{\"a\":\"\xc0\xaf\"}", "x").ok()) << "overlong UTF-8";
}

TEST(Connector, FieldsAndErrors) {
    auto good = parse_object(R"({"initiator":"iqn.1993-08.org.debian:01:abc","host":"c1","ip":"10.0.0.5","multipath":true,"platform":"x86_64"})", "connector");
    auto c = parse_connector(*good);
    ASSERT_TRUE(c.ok());
    EXPECT_TRUE(c->multipath);
    EXPECT_EQ(c->initiator, "iqn.1993-08.org.debian:01:abc");
    auto bad = parse_object(R"({"initiator":"iqn.1993-08.org.debian:01:abc","multipath":"true"})", "connector");
    auto e = parse_connector(*bad);
    ASSERT_FALSE(e.ok());
    EXPECT_EQ(e.error().argument, "connector");
    EXPECT_EQ(e.error().field, "multipath");
    auto bad_iqn = parse_object(R"({"initiator":"me"})", "connector");
    EXPECT_EQ(parse_connector(*bad_iqn).error().field, "initiator");
}

TEST(DiskInfo, DevAndBus) {
    auto d = parse_disk_info(*parse_object(R"({"dev":"sdb"})", "disk_info"));
    ASSERT_TRUE(d.ok());
    EXPECT_EQ(d->bus, DiskBus::scsi);
    auto v = parse_disk_info(*parse_object(R"({"dev":"vdc"})", "disk_info"));
    EXPECT_EQ(v->bus, DiskBus::virtio);
    auto s = parse_disk_info(*parse_object(R"({"dev":"sdaa","bus":"sata","type":"disk"})", "disk_info"));
    EXPECT_EQ(s->bus, DiskBus::sata);
    EXPECT_EQ(parse_disk_info(*parse_object(R"({})", "disk_info")).error().field, "dev");
    EXPECT_EQ(parse_disk_info(*parse_object(R"({"dev":"sdb'/>"})", "disk_info")).error().field, "dev");
    EXPECT_EQ(parse_disk_info(*parse_object(R"({"dev":"sdb","bus":"floppy"})", "disk_info")).error().field, "bus");
    EXPECT_EQ(parse_disk_info(*parse_object(R"({"dev":"sdb","type":"cdrom"})", "disk_info")).error().field, "type");
}

}  // namespace
