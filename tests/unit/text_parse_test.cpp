// The text readers (request::parse_*_text: the slots a request reads captured as the parser streams, no tree)
// against the tree readers (parse_object + parse_*): the same values or the same error, on documents that probe
// the capture itself (nesting, nulls, keys that look like known ones in unknown places, long lists, kept report
// values).
#include "request/device_info.hpp"
#include "request/json_input.hpp"
#include "request/volume_request.hpp"

#include <gtest/gtest.h>

#include <string>

namespace {

using namespace ivd::request;

template <class T>
void expect_same(const ivd::Result<T> &text, const ivd::Result<T> &tree, const std::string &doc) {
    ASSERT_EQ(text.ok(), tree.ok()) << doc << "\n text: " << (text ? "ok" : text.error().message)
                                    << "\n tree: " << (tree ? "ok" : tree.error().message);
    if (!text.ok()) {
        EXPECT_EQ(text.error().message, tree.error().message) << doc;
        EXPECT_EQ(text.error().field, tree.error().field) << doc;
        EXPECT_EQ(text.error().argument, tree.error().argument) << doc;
        EXPECT_EQ(text.error().status, tree.error().status) << doc;
    }
}

void connection_info_agrees(const std::string &doc) {
    auto text = parse_connection_info_text(doc.c_str());
    auto parsed = parse_object(doc.c_str(), "connection_info");
    auto tree = parsed ? parse_connection_info(*parsed) : ivd::Result<VolumeRequest>(parsed.error());
    expect_same(text, tree, doc);
    if (text && tree) {
        EXPECT_EQ(text->targets, tree->targets) << doc;
        EXPECT_EQ(text->qos, tree->qos) << doc;
        EXPECT_EQ(text->multiattach, tree->multiattach) << doc;
        EXPECT_EQ(text->addressing, tree->addressing) << doc;
    }
}

void device_info_agrees(const std::string &doc) {
    auto text = parse_device_info_text(doc.c_str(), false);
    auto parsed = parse_object(doc.c_str(), "device_info");
    auto tree = parsed ? parse_device_info(*parsed) : ivd::Result<DeviceInfo>(parsed.error());
    ASSERT_EQ(text.ok(), tree.ok()) << doc << (text ? "" : "\n text: " + text.error().message)
                                    << (tree ? "" : "\n tree: " + tree.error().message);
    if (!text.ok()) {
        EXPECT_EQ(text.error().message, tree.error().message) << doc;
        EXPECT_EQ(text.error().field, tree.error().field) << doc;
        return;
    }
    ASSERT_TRUE(text->has_value());
    EXPECT_EQ(ivd::json::write((**text).to_json()), ivd::json::write(tree->to_json())) << doc;
}

const std::string data_ok = R"("target_portal":"192.0.2.1:3260","target_iqn":"iqn.2010-10.org.openstack:v-1")";

std::string ci(const std::string &data, const std::string &top = "") {
    return R"({"driver_volume_type":"iscsi",)" + top + R"("data":{)" + data + "}}";
}

TEST(TextParse, ConnectionInfoCaptureEdges) {
    std::string many_portals = R"("target_portals":[)";
    for (int i = 0; i < 70; ++i) many_portals += (i ? "," : "") + std::string(R"("192.0.2.)") + std::to_string(i) + R"(:3260")";
    many_portals += "]";
    const std::string docs[] = {
        ci(data_ok),
        ci(data_ok, R"("multiattach":true,)"),
        ci(data_ok + R"(,"multiattach":null,"discard":true)"),
        // known keys inside unknown objects and lists are not the request's
        ci(data_ok + R"(,"extra":{"target_lun":"x","data":{"target_iqn":5}},"more":[{"auth_method":"bad"}])"),
        R"({"driver_volume_type":"iscsi","other":{"data":{"target_portal":1}},"data":{)" + data_ok + "}}",
        // data not an object, lists not lists, list items of every type
        R"({"driver_volume_type":"iscsi","data":[{"target_portal":"192.0.2.1"}]})",
        ci(data_ok + R"(,"target_portals":{"a":1})"),
        ci(R"("target_portals":["192.0.2.1",["192.0.2.2"]],"target_iqns":["iqn.2010-10.a:b","iqn.2010-10.a:c"])"),
        ci(R"("target_portals":["192.0.2.1",null],"target_iqn":"iqn.2010-10.a:b")"),
        ci(R"("target_portals":["192.0.2.1","192.0.2.2"],"target_iqns":["iqn.2010-10.a:b",{}],"target_luns":[1,2])"),
        ci(R"("target_portals":["192.0.2.1"],"target_iqn":"iqn.2010-10.a:b","target_luns":[1e0])"),
        ci(R"("target_portals":["192.0.2.1"],"target_iqn":"iqn.2010-10.a:b","target_luns":[18446744073709551615])"),
        ci(R"("target_portals":["192.0.2.1"],"target_iqn":"iqn.2010-10.a:b","target_luns":[123456789012345678901234])"),
        ci(many_portals + R"(,"target_iqn":"iqn.2010-10.a:b")"),
        // qos_specs: strings, numbers, nulls, nested, not an object
        ci(data_ok + R"(,"qos_specs":{"total_bytes_sec":"100","read_iops_sec":5,"write_iops_sec":null,"x":{"y":[]}})"),
        ci(data_ok + R"(,"qos_specs":[{"total_bytes_sec":"100"}])"),
        ci(data_ok + R"(,"qos_specs":{"total_iops_sec":1,"read_iops_sec":2})"),
        // CHAP: both sets, nulls, wrong types
        ci(data_ok + R"(,"auth_method":"CHAP","auth_username":"u","auth_password":"p4ssw0rd-long-enough")"),
        ci(data_ok + R"(,"auth_method":null,"auth_username":null,"discovery_auth_method":"chap","discovery_auth_username":"d","discovery_auth_password":7)"),
        // the document rules: duplicates at any depth, depth, trailing bytes, root types, NUL escapes
        ci(data_ok + R"(,"x":{"a":1,"a":2})"),
        ci(data_ok + R"(,"target_iqn":"iqn.2010-10.a:b")"),
        std::string(40, '[') + std::string(40, ']'),
        ci(data_ok + R"(,"x":)" + std::string(31, '[') + std::string(31, ']')),
        ci(data_ok) + " x",
        "[]", "null", "\"s\"", "12", "",
        ci(data_ok + R"(,"volume_id":"a\u0000b")"),
        ci(R"("target_portal":"192.0.2.1","target_iqn":"iqn.2010-10.a:b","target_lun":99999999999999999999)"),
        ci(R"("target_portal":"192.0.2.1","target_iqn":"iqn.2010-10.a:b","target_lun":-1)"),
        ci(R"("target_portal":"192.0.2.1","target_iqn":"iqn.2010-10.a:b","logical_block_size":4096.0)"),
        R"({"driver_volume_type":"iscsi"})",
        R"({"driver_volume_type":["iscsi"],"data":{}})",
    };
    for (const std::string &doc : docs) connection_info_agrees(doc);
    EXPECT_EQ(parse_connection_info_text(nullptr).error().message, "connection_info: is required but was NULL");
}

TEST(TextParse, ConnectorAndDiskInfoAgree) {
    for (const char *doc : {R"({"initiator":"iqn.1993-08.org.debian:01:x","multipath":true,"ip":"192.0.2.1"})",
                            R"({"initiator":5})", R"({"host":null,"x":{"multipath":"yes"}})", R"([])", R"({"ip":""})"}) {
        auto text = parse_connector_text(doc);
        auto parsed = parse_object(doc, "connector");
        expect_same(text, parsed ? parse_connector(*parsed) : ivd::Result<Connector>(parsed.error()), doc);
    }
    for (const char *doc : {R"({"dev":"sdb","bus":"scsi","type":"lun","unit":"3","boot_index":2})", R"({"dev":"xvdq"})",
                            R"({"bus":"virtio"})", R"({"dev":["sdb"]})", R"({"dev":"sdb","unit":1.5})", "null", "{}"}) {
        for (const bool null_ok : {false, true}) {
            for (const bool dev_required : {false, true}) {
                auto text = parse_disk_info_text(doc, null_ok, dev_required);
                auto parsed = parse_object(doc, "disk_info", null_ok);
                expect_same(text, parsed ? parse_disk_info(*parsed, dev_required) : ivd::Result<DiskTarget>(parsed.error()),
                            doc);
            }
        }
    }
}

TEST(TextParse, DeviceInfoAgrees) {
    const std::string net = R"("type":"network","device_info_version":3,"protocol":"iscsi","portal":"192.0.2.1:3260",)"
                            R"("target_iqn":"iqn.2010-10.a:b","target_lun":1,)";
    const std::string targets = R"("targets":[{"portal":"192.0.2.1:3260","iqn":"iqn.2010-10.a:b","lun":1}])";
    std::string many = R"("targets":[)";
    for (int i = 0; i < 80; ++i) many += (i ? "," : "") + std::string(R"({"portal":"192.0.2.1","iqn":"x","lun":)") + std::to_string(i) + "}";
    const std::string docs[] = {
        "{" + net + targets + "}",
        "{" + net + targets + R"(,"portal_choice":[{"portal":"192.0.2.1:3260","outcome":"healthy","chosen":true}],"dev":"sdb","bus":"scsi","disk_xml":"<disk/>"})",
        "{" + net + targets + R"(,"portal_choice":"text","driver":"iscsi","volume_id":"v"})",
        "{" + net + many + R"(,"targets_extra":[{"portal":1}]})",
        "{" + net + R"("targets":[{"portal":"192.0.2.1","iqn":"x"},{"lun":1}]})",
        "{" + net + R"("targets":[{"portal":"192.0.2.1","iqn":"x","lun":1,"portal":"y"}]})",
        "{" + net + R"("targets":["x"]})",
        "{" + net + R"("targets":{"portal":"x"}})",
        "{" + net + targets + R"(,"dev":5})",
        "{" + net + targets + R"(,"dev":"sdb","bus":"floppy"})",
        "{" + net + targets + R"(,"xml_initiator":"yes"})",
        R"({"type":"block","path":"/dev/dm-0","multipath_id":"3600","dm":"dm-0","addressing_mode":"SAM2",)"
        R"("paths":[{"portal":"192.0.2.1:3260","iqn":"iqn.2010-10.a:b","lun":1,"device":"/dev/sda","state":"active","iface":"ivd-eth1"},)"
        R"({"portal":"192.0.2.2:3260","iqn":"iqn.2010-10.a:b","lun":1,"device":5,"state":null,"iface":null}],)"
        R"("failed_portals":[{"portal":"192.0.2.3:3260","error":"x"}],"served_by":null,"discovery":{"a":[1,2.5,{"b":null}]},)" +
            targets + "}",
        R"({"type":"block","paths":[{"portal":"192.0.2.1","iqn":"x","lun":1,"iface":"bad iface"}]})",
        R"({"type":"block","paths":"x"})",
        R"({"type":"block","failed_portals":null,"discovery":123456789012345678901234})",
        R"({"type":"tape"})", R"({"device_info_version":0,"type":"network"})", "{}", "[]",
    };
    for (const std::string &doc : docs) device_info_agrees(doc);
    for (const char *empty : {static_cast<const char *>(nullptr), "null", "{}"}) {
        auto none = parse_device_info_text(empty, true);
        ASSERT_TRUE(none.ok());
        EXPECT_FALSE(none->has_value());
    }
}

}  // namespace
