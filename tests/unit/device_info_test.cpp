// device_info as one type: documents written by version 1 of the driver (tests/device_info/v1, captured from
// real connects) still parse, keep every key they had, and version 2 documents read back as they were written.
#include "request/device_info.hpp"

#include "request/json_input.hpp"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>

namespace {

using namespace ivd;

json::Value load(const std::string &name, const char *version = "v1") {
    std::ifstream in(std::string(IVD_DEVICE_INFO_FIXTURES) + "/" + version + "/" + name + ".json");
    std::stringstream text;
    text << in.rdbuf();
    auto doc = request::parse_object(text.str().c_str(), "device_info");
    EXPECT_TRUE(doc.ok()) << name;
    return doc.ok() ? *doc : json::Value::object();
}

class V1Fixture : public ::testing::TestWithParam<const char *> {};

TEST_P(V1Fixture, ParsesAndKeepsEveryKey) {
    const json::Value v1 = load(GetParam());
    auto info = request::parse_device_info(v1);
    ASSERT_TRUE(info.ok()) << info.error().message;
    EXPECT_EQ(info->version, 1);
    const json::Value again = info->to_json();
    for (const json::Member &m : v1.members()) {
        const json::Value *now = again.find(m.key);
        ASSERT_NE(now, nullptr) << GetParam() << ": key " << m.key << " lost";
        EXPECT_EQ(*now, m.value) << GetParam() << ": key " << m.key << " changed";
    }
    EXPECT_EQ(again["device_info_version"].as_int64(), 1) << "written back as the version it was read as";
    auto reparsed = request::parse_device_info(again);
    ASSERT_TRUE(reparsed.ok()) << reparsed.error().message;
    EXPECT_EQ(reparsed->to_json(), again) << "version 2 reads back as written";
    // The text connect returns is written without the tree, byte for byte what writing the tree gives.
    EXPECT_EQ(info->to_json_text(), json::write(again)) << GetParam();
    EXPECT_EQ(reparsed->to_json_text(), json::write(again)) << GetParam();
}

INSTANTIATE_TEST_SUITE_P(DeviceInfo, V1Fixture,
                         ::testing::Values("net_plain", "net_chap", "block_single", "block_mp"));

TEST(DeviceInfo, V1FieldsThatDisconnectUses) {
    auto chap = request::parse_device_info(load("net_chap"));
    ASSERT_TRUE(chap.ok());
    ASSERT_TRUE(chap->is_network());
    EXPECT_EQ(chap->network().secret_usage, "iscsi-volume-driver:cap-chap-1");
    EXPECT_EQ(chap->network().attachment_id, "025de290787f3601c9ef0a4886f78521");
    EXPECT_EQ(chap->network().target.portal.to_string(), "127.0.0.1:3291");
    ASSERT_TRUE(chap->guest.has_value());
    EXPECT_EQ(chap->guest->disk.dev, "sdc");
    auto mp = request::parse_device_info(load("block_mp"));
    ASSERT_TRUE(mp.ok());
    ASSERT_FALSE(mp->is_network());
    EXPECT_EQ(mp->block().multipath_id, "360000000000000000e00000000010001");
    EXPECT_EQ(mp->block().paths.size(), 2u);
    EXPECT_TRUE(mp->block().multipath);
    ASSERT_TRUE(mp->guest.has_value()) << "v1 block device_info has disk_xml without dev";
    EXPECT_TRUE(mp->guest->disk.dev.empty());
}

TEST(DeviceInfo, BadValuesNameTheField) {
    struct Case {
        const char *doc;
        const char *field;
    };
    for (const Case &c : {Case{R"({"type":"evil"})", "type"}, Case{R"({"disk_xml":"<disk/>"})", "type"},
                          Case{R"({"type":"network","attachment_id":"XYZ"})", "attachment_id"},
                          Case{R"({"type":"network","target_lun":-1})", "target_lun"},
                          Case{R"({"type":"block","paths":[{"portal":"a:1"}]})", "paths[0]"},
                          Case{R"({"type":"block","device_info_version":0})", "device_info_version"},
                          Case{R"({"type":"network","dev":"nonsense"})", "dev"},
                          Case{R"({"type":"block","addressing_mode":"SAM3_flat"})", "addressing_mode"},
                          Case{R"({"type":"block","addressing_mode":3})", "addressing_mode"}}) {
        auto doc = request::parse_object(c.doc, "device_info");
        ASSERT_TRUE(doc.ok()) << c.doc;
        auto info = request::parse_device_info(*doc);
        ASSERT_FALSE(info.ok()) << c.doc;
        EXPECT_EQ(info.error().argument, "device_info") << c.doc;
        EXPECT_EQ(info.error().field, c.field) << c.doc;
    }
}

// Version 3: a block device_info records a non-default addressing_mode, and reading it gives every target (paths
// and targets) that mode, so disconnect matches the LUNs the kernel was asked for; versions 1 and 2 mean SAM.
TEST(DeviceInfo, AddressingModeIsWrittenWhenNotSamAndReachesEveryTarget) {
    EXPECT_GE(request::device_info_version, 3);
    for (const char *fixture : {"block_single", "block_mp"}) {
        auto v1 = request::parse_device_info(load(fixture));
        ASSERT_TRUE(v1.ok());
        EXPECT_EQ(v1->block().addressing, request::LunAddressing::sam) << fixture;
        EXPECT_EQ(v1->to_json().find("addressing_mode"), nullptr) << "SAM is not written: " << fixture;
        for (const auto &p : v1->block().paths) EXPECT_EQ(p.target.scsi_lun(), p.target.lun) << fixture;
    }
    // A version 2 document (no guest part) of LUN 300: written when every LUN was scanned as it is.
    const json::Value v2 = load("block_mp_lun300", "v2");
    auto old = request::parse_device_info(v2);
    ASSERT_TRUE(old.ok()) << old.error().message;
    EXPECT_EQ(old->version, 2);
    EXPECT_EQ(old->block().addressing, request::LunAddressing::sam);
    ASSERT_EQ(old->block().paths.size(), 2u);
    EXPECT_EQ(old->block().paths[1].target.scsi_lun(), 300);
    EXPECT_EQ(old->targets[0].scsi_lun(), 300);
    EXPECT_EQ(old->to_json(), v2) << "read back exactly as written";
    auto doc = request::parse_object(
        R"({"type":"block","device_info_version":3,"path":"/dev/dm-0","addressing_mode":"SAM2",)"
        R"("targets":[{"portal":"127.0.0.1:3260","iqn":"iqn.2010-10.org.x:y","lun":256}],)"
        R"("paths":[{"portal":"127.0.0.1:3260","iqn":"iqn.2010-10.org.x:y","lun":256,"device":"/dev/sda","state":"active"}]})",
        "device_info");
    ASSERT_TRUE(doc.ok());
    auto info = request::parse_device_info(*doc);
    ASSERT_TRUE(info.ok()) << info.error().message;
    EXPECT_EQ(info->block().addressing, request::LunAddressing::sam2);
    ASSERT_EQ(info->targets.size(), 1u);
    EXPECT_EQ(info->targets[0].scsi_lun(), 16640);
    ASSERT_EQ(info->block().paths.size(), 1u);
    EXPECT_EQ(info->block().paths[0].target.scsi_lun(), 16640);
    const json::Value again = info->to_json();
    EXPECT_EQ(again["addressing_mode"].as_string(), "SAM2");
    EXPECT_EQ(again["paths"][0]["lun"].as_int64(), 256) << "the storage's LUN, not the addressed one";
}

// Version 4: a network device_info records a non-default addressing_mode too (the disk's LUN and extend's probe
// follow it); without it (versions 1-3) the LUN is used as it is.
TEST(DeviceInfo, NetworkAddressingModeIsWrittenWhenNotSamAndRead) {
    EXPECT_EQ(request::device_info_version, 4);
    auto doc = request::parse_object(
        R"({"type":"network","device_info_version":4,"protocol":"iscsi","portal":"127.0.0.1:3260",)"
        R"("target_iqn":"iqn.2010-10.org.x:y","target_lun":300,"addressing_mode":"SAM3-flat",)"
        R"("targets":[{"portal":"127.0.0.1:3260","iqn":"iqn.2010-10.org.x:y","lun":300}]})",
        "device_info");
    ASSERT_TRUE(doc.ok());
    auto info = request::parse_device_info(*doc);
    ASSERT_TRUE(info.ok()) << info.error().message;
    EXPECT_EQ(info->network().target.scsi_lun(), 16684);
    ASSERT_EQ(info->targets.size(), 1u);
    EXPECT_EQ(info->targets[0].scsi_lun(), 16684);
    const json::Value again = info->to_json();
    EXPECT_EQ(again["addressing_mode"].as_string(), "SAM3-flat");
    EXPECT_EQ(again["target_lun"].as_int64(), 300) << "the storage's LUN, not the addressed one";
    auto v3 = request::parse_object(
        R"({"type":"network","device_info_version":3,"protocol":"iscsi","portal":"127.0.0.1:3260",)"
        R"("target_iqn":"iqn.2010-10.org.x:y","target_lun":300})",
        "device_info");
    ASSERT_TRUE(v3.ok());
    auto old = request::parse_device_info(*v3);
    ASSERT_TRUE(old.ok()) << old.error().message;
    EXPECT_EQ(old->network().target.scsi_lun(), 300);
    EXPECT_EQ(old->to_json().find("addressing_mode"), nullptr) << "SAM is not written";
    auto bad = request::parse_object(
        R"({"type":"network","portal":"127.0.0.1:3260","target_iqn":"iqn.2010-10.org.x:y","addressing_mode":"SAM4"})",
        "device_info");
    ASSERT_TRUE(bad.ok());
    auto refused = request::parse_device_info(*bad);
    ASSERT_FALSE(refused.ok());
    EXPECT_EQ(refused.error().field, "addressing_mode");
}

TEST(DeviceInfo, UnknownKeysAndNewerVersionsAreRead) {
    auto doc = request::parse_object(R"({"type":"block","device_info_version":7,"path":"/dev/dm-1","later":1})",
                                     "device_info");
    ASSERT_TRUE(doc.ok());
    auto info = request::parse_device_info(*doc);
    ASSERT_TRUE(info.ok()) << info.error().message;
    EXPECT_EQ(info->block().path, "/dev/dm-1");
    EXPECT_FALSE(info->guest.has_value());
}

}  // namespace

namespace {

// Every network key of version 2 set (and a block device with every report), text against the tree.
TEST(DeviceInfo, TextMatchesTreeForEveryKey) {
    using namespace ivd;
    request::DeviceInfo net;
    request::NetworkDevice &n = net.device.emplace<request::NetworkDevice>();
    n.target = request::Target{request::Portal{"fe80::1", 3261, true}, "iqn.2010-10.org.openstack:v\"1\\", 7};
    n.initiator = "iqn.1993-08.org.debian:01:\xc3\xa9";
    n.auth_in_source = false;
    n.emit_initiator = true;
    n.secret_uuid = "00000000-0000-4000-8000-000000000001";
    n.secret_usage = "iscsi-volume-driver:v1";
    n.attachment_id = "0123456789abcdef0123456789abcdef";
    n.auth_username = "user\x01";
    n.portal_choice = json::Value::array();
    n.portal_choice.append(json::Value::object()).add("outcome", "healthy");
    n.portal_choice_reason = "first listed portal is healthy";
    net.targets = {n.target, request::Target{request::Portal{"192.0.2.1", 3260, false}, "iqn.x:y", 0}};
    net.guest = request::DeviceGuest{request::DiskTarget{request::DiskBus::virtio, "vdb"}, "<disk type='network'/>"};
    net.driver = "iscsi";
    net.attach_path = "network";
    net.path_reason = "config";
    net.volume_id = "v1";
    EXPECT_EQ(net.to_json_text(), json::write(net.to_json()));
    n.secret_usage.clear();
    n.portal_choice = json::Value();
    net.guest.reset();
    EXPECT_EQ(net.to_json_text(), json::write(net.to_json()));

    request::DeviceInfo block;
    request::BlockDevice &b = block.device.emplace<request::BlockDevice>();
    b.path = "/dev/dm-3";
    b.scsi_wwn = "360000000000000000e00000000010001";
    b.multipath_id = b.scsi_wwn;
    b.dm = "dm-3";
    b.multipath = true;
    b.paths = {request::BlockPath{net.targets[0], "/dev/sda", "active", ""},
               request::BlockPath{net.targets[1], "/dev/sdb", "not_in_map", "refused"}};
    b.failed_portals.append("192.0.2.9:3260");
    b.served_by = "x";
    b.discovery = json::Value::object();
    b.multipath_error = "e";
    block.targets = net.targets;
    block.guest = request::DeviceGuest{request::DiskTarget{request::DiskBus::scsi, "sdc"}, "<disk type='block'/>"};
    EXPECT_EQ(block.to_json_text(), json::write(block.to_json()));
    block.guest.reset();
    EXPECT_EQ(block.to_json_text(), json::write(block.to_json()));
}

}  // namespace
