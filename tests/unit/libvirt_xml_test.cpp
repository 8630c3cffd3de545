// The XML writer: parse the output back and compare every field, including names XML must escape.
#include "xml/libvirt_xml.hpp"

#include "libvirt_xml_reference.hpp"

#include <gtest/gtest.h>
#include <pugixml.hpp>

#include <string>
#include <vector>

namespace {

using namespace ivd;

pugi::xml_document parse(const std::string &xml) {
    pugi::xml_document doc;
    const auto r = doc.load_string(xml.c_str());
    EXPECT_TRUE(r) << r.description() << ": " << xml;
    return doc;
}

xml::NetworkDiskSpec sample() {
    xml::NetworkDiskSpec s;
    s.target.portal = request::Portal{"127.0.0.1", 3261, false};
    s.target.iqn = "iqn.2010-10.org.openstack:volume-1";
    s.target.lun = 3;
    s.initiator = "iqn.1993-08.org.debian:01:abc";
    s.options.guest = request::DiskTarget{request::DiskBus::scsi, "sdb"};
    s.options.serial = "vol-1";
    return s;
}

TEST(NetworkDiskXml, AllFieldsRoundTrip) {
    auto s = sample();
    s.auth = xml::DiskAuth{"user<&>'\"", "usage'name&<>"};
    s.options.read_only = true;
    s.options.discard = true;
    s.options.qos = {{"read_bytes_sec", 1000}, {"write_iops_sec", 50}};
    const std::string text = xml::network_disk_xml(s);
    auto doc = parse(text);
    auto disk = doc.child("disk");
    EXPECT_STREQ(disk.attribute("type").value(), "network");
    EXPECT_STREQ(disk.attribute("device").value(), "disk");
    EXPECT_STREQ(disk.child("driver").attribute("name").value(), "qemu");
    EXPECT_STREQ(disk.child("driver").attribute("type").value(), "raw");
    EXPECT_STREQ(disk.child("driver").attribute("cache").value(), "none");
    EXPECT_STREQ(disk.child("driver").attribute("io").value(), "native");
    EXPECT_STREQ(disk.child("driver").attribute("discard").value(), "unmap");
    auto source = disk.child("source");
    EXPECT_STREQ(source.attribute("protocol").value(), "iscsi");
    EXPECT_STREQ(source.attribute("name").value(), "iqn.2010-10.org.openstack:volume-1/3");
    EXPECT_STREQ(source.child("host").attribute("name").value(), "127.0.0.1");
    EXPECT_STREQ(source.child("host").attribute("port").value(), "3261");
    EXPECT_STREQ(source.child("auth").attribute("username").value(), "user<&>'\"");
    EXPECT_STREQ(source.child("auth").child("secret").attribute("type").value(), "iscsi");
    EXPECT_STREQ(source.child("auth").child("secret").attribute("usage").value(), "usage'name&<>");
    EXPECT_STREQ(source.child("initiator").child("iqn").attribute("name").value(), "iqn.1993-08.org.debian:01:abc");
    EXPECT_STREQ(disk.child("target").attribute("dev").value(), "sdb");
    EXPECT_STREQ(disk.child("target").attribute("bus").value(), "scsi");
    EXPECT_STREQ(disk.child("serial").text().get(), "vol-1");
    EXPECT_TRUE(disk.child("readonly"));
    EXPECT_STREQ(disk.child("iotune").child("read_bytes_sec").text().get(), "1000");
    EXPECT_STREQ(disk.child("iotune").child("write_iops_sec").text().get(), "50");
    // Exactly one element at the top, nothing injected.
    int top = 0;
    for (auto n = doc.first_child(); n; n = n.next_sibling()) ++top;
    EXPECT_EQ(top, 1);
}

TEST(NetworkDiskXml, OptionalPartsOmitted) {
    auto s = sample();
    s.initiator.clear();
    s.options.serial.clear();
    s.options.cache = "default";
    s.options.io = "default";
    auto doc = parse(xml::network_disk_xml(s));
    auto disk = doc.child("disk");
    EXPECT_FALSE(disk.child("source").child("auth"));
    EXPECT_FALSE(disk.child("source").child("initiator"));
    EXPECT_FALSE(disk.child("serial"));
    EXPECT_FALSE(disk.child("readonly"));
    EXPECT_FALSE(disk.child("iotune"));
    EXPECT_FALSE(disk.child("driver").attribute("cache"));
    EXPECT_FALSE(disk.child("driver").attribute("io"));
    EXPECT_FALSE(disk.child("driver").attribute("discard"));
}

// libvirt < 3.9: <auth> under <disk>, before <source>; nothing of it left inside <source>.
TEST(NetworkDiskXml, AuthUnderDiskForOldLibvirt) {
    auto s = sample();
    s.auth = xml::DiskAuth{"chap-user", "usage-1"};
    s.auth_in_source = false;
    auto doc = parse(xml::network_disk_xml(s));
    auto disk = doc.child("disk");
    EXPECT_FALSE(disk.child("source").child("auth"));
    ASSERT_TRUE(disk.child("auth"));
    EXPECT_STREQ(disk.child("auth").attribute("username").value(), "chap-user");
    EXPECT_STREQ(disk.child("auth").child("secret").attribute("type").value(), "iscsi");
    EXPECT_STREQ(disk.child("auth").child("secret").attribute("usage").value(), "usage-1");
    EXPECT_STREQ(disk.child("auth").next_sibling().name(), "source");
    // The initiator is unaffected by where <auth> goes.
    EXPECT_STREQ(disk.child("source").child("initiator").child("iqn").attribute("name").value(),
                 "iqn.1993-08.org.debian:01:abc");
}

// libvirt < 4.7: no <initiator> even when an initiator name is known; the rest stays.
TEST(NetworkDiskXml, InitiatorOmittedForOldLibvirt) {
    auto s = sample();
    s.auth = xml::DiskAuth{"chap-user", "usage-1"};
    s.emit_initiator = false;
    auto doc = parse(xml::network_disk_xml(s));
    auto source = doc.child("disk").child("source");
    EXPECT_FALSE(source.child("initiator"));
    EXPECT_TRUE(source.child("auth"));
    EXPECT_STREQ(source.attribute("name").value(), "iqn.2010-10.org.openstack:volume-1/3");
}

// Defaults are the current forms, so callers that never set the two fields keep today's XML.
TEST(NetworkDiskXml, DefaultsAreCurrentForms) {
    const xml::NetworkDiskSpec defaults;
    EXPECT_TRUE(defaults.auth_in_source);
    EXPECT_TRUE(defaults.emit_initiator);
    auto s = sample();
    s.auth = xml::DiskAuth{"u", "g"};
    auto doc = parse(xml::network_disk_xml(s));
    EXPECT_TRUE(doc.child("disk").child("source").child("auth"));
    EXPECT_FALSE(doc.child("disk").child("auth"));
    EXPECT_TRUE(doc.child("disk").child("source").child("initiator"));
}

TEST(NetworkDiskXml, Ipv6HostWithoutBrackets) {
    auto s = sample();
    s.target.portal = request::Portal{"::1", 3260, true};
    auto doc = parse(xml::network_disk_xml(s));
    EXPECT_STREQ(doc.child("disk").child("source").child("host").attribute("name").value(), "::1");
}

// QEMU's libiscsi puts the URL's LUN in the first two bytes of the LUN field, as the kernel does with a scanned
// LUN: a target that exports LUN 300 in flat space (tgtd) is reached only as 16684 (0x412c).
TEST(NetworkDiskXml, LunFollowsTheAddressingMode) {
    const std::pair<request::LunAddressing, const char *> cases[] = {
        {request::LunAddressing::sam, "/300"},        {request::LunAddressing::transparent, "/300"},
        {request::LunAddressing::sam2, "/16684"},     {request::LunAddressing::sam3_flat, "/16684"}};
    for (const auto &[mode, suffix] : cases) {
        auto s = sample();
        s.target.lun = 300;
        s.target.addressing = mode;
        auto doc = parse(xml::network_disk_xml(s));
        EXPECT_EQ(std::string(doc.child("disk").child("source").attribute("name").value()),
                  "iqn.2010-10.org.openstack:volume-1" + std::string(suffix))
            << request::addressing_mode_name(mode);
    }
    auto low = sample();
    low.target.addressing = request::LunAddressing::sam2;  // SAM2 addresses LUNs below 256 as they are
    EXPECT_STREQ(parse(xml::network_disk_xml(low)).child("disk").child("source").attribute("name").value(),
                 "iqn.2010-10.org.openstack:volume-1/3");
}

TEST(BlockDiskXml, RoundTrip) {
    xml::BlockDiskSpec s;
    s.device_path = "/dev/dm-3";
    s.options.guest = request::DiskTarget{request::DiskBus::virtio, "vdc"};
    s.options.serial = "v&1";
    auto doc = parse(xml::block_disk_xml(s));
    auto disk = doc.child("disk");
    EXPECT_STREQ(disk.attribute("type").value(), "block");
    EXPECT_STREQ(disk.child("source").attribute("dev").value(), "/dev/dm-3");
    EXPECT_STREQ(disk.child("target").attribute("bus").value(), "virtio");
    EXPECT_STREQ(disk.child("serial").text().get(), "v&1");
}

TEST(SecretXml, PrivateUsageIscsi) {
    auto doc = parse(xml::iscsi_secret_xml("iscsi-volume-driver:v<1>", "CHAP for <v1>"));
    auto secret = doc.child("secret");
    EXPECT_STREQ(secret.attribute("ephemeral").value(), "no");
    EXPECT_STREQ(secret.attribute("private").value(), "yes");
    EXPECT_STREQ(secret.child("usage").attribute("type").value(), "iscsi");
    EXPECT_STREQ(secret.child("usage").child("target").text().get(), "iscsi-volume-driver:v<1>");
    EXPECT_STREQ(secret.child("description").text().get(), "CHAP for <v1>");
}

// The ephemeral form differs in that attribute alone: still private, same usage.
TEST(SecretXml, EphemeralIsStillPrivate) {
    const std::string persistent = xml::iscsi_secret_xml("iscsi-volume-driver:v1", "d", xml::SecretStorage::persistent);
    EXPECT_EQ(persistent, xml::iscsi_secret_xml("iscsi-volume-driver:v1", "d"));
    const std::string ephemeral = xml::iscsi_secret_xml("iscsi-volume-driver:v1", "d", xml::SecretStorage::ephemeral);
    auto doc = parse(ephemeral);
    auto secret = doc.child("secret");
    EXPECT_STREQ(secret.attribute("ephemeral").value(), "yes");
    EXPECT_STREQ(secret.attribute("private").value(), "yes");
    EXPECT_STREQ(secret.child("usage").attribute("type").value(), "iscsi");
    EXPECT_STREQ(secret.child("usage").child("target").text().get(), "iscsi-volume-driver:v1");
    std::string expected = persistent;
    const auto at = expected.find("ephemeral='no'");
    ASSERT_NE(at, std::string::npos) << persistent;
    expected.replace(at, 14, "ephemeral='yes'");
    EXPECT_EQ(ephemeral, expected);
}

// The direct writer gives the bytes pugixml's tree gave, for every shape and for every byte value in every
// field that carries caller text (escapes, quotes, control characters, a NUL ending the value, UTF-8).
std::vector<xml::NetworkDiskSpec> network_shapes() {
    std::vector<xml::NetworkDiskSpec> shapes;
    auto s = sample();
    shapes.push_back(s);
    s.auth = xml::DiskAuth{"chap-user", "iscsi-volume-driver:vol-1"};
    shapes.push_back(s);
    s.auth_in_source = false;
    shapes.push_back(s);
    s.emit_initiator = false;
    s.options.read_only = true;
    s.options.discard = true;
    s.options.shareable = true;
    s.options.cache = "default";
    s.options.io = "threads";
    s.options.qos = {{"total_bytes_sec", 1000}, {"read_iops_sec_max", 18446744073709551615ULL}};
    s.options.logical_block_size = 512;
    s.options.physical_block_size = 4096;
    s.options.guest.boot_index = 2;
    s.options.guest.unit = 7;
    shapes.push_back(s);
    s.options.guest.lun = true;  // no <serial> on device='lun'
    s.options.physical_block_size = 0;
    s.target.portal = request::Portal{"fe80::1", 3261, true};
    s.target.lun = 16383;
    s.initiator.clear();
    shapes.push_back(s);
    return shapes;
}

std::vector<std::string> tricky_values() {
    std::vector<std::string> values = {"", "plain", "a&b<c>d'e\"f", "&amp;", "\xc3\xa9\xe2\x82\xac", "x\t\r\ny"};
    for (int c = 1; c < 256; ++c) values.push_back("v" + std::string(1, static_cast<char>(c)) + "w");
    values.push_back(std::string("before\0after", 12));
    return values;
}

TEST(NetworkDiskXml, SameBytesAsPugixmlTree) {
    for (const auto &shape : network_shapes()) {
        EXPECT_EQ(xml::network_disk_xml(shape), xml::reference::network_disk_xml_pugi(shape));
        for (const std::string &v : tricky_values()) {
            auto s = shape;
            s.target.iqn = v;
            s.target.portal.host = v;
            s.initiator = v.empty() ? s.initiator : v;
            s.auth = xml::DiskAuth{v, v + "u"};
            s.options.serial = v;
            s.options.guest.dev = v;
            s.options.cache = v;
            s.options.io = v;
            ASSERT_EQ(xml::network_disk_xml(s), xml::reference::network_disk_xml_pugi(s)) << "value " << v;
        }
    }
}

TEST(BlockDiskXml, SameBytesAsPugixmlTree) {
    for (const auto &shape : network_shapes()) {
        for (const std::string &v : tricky_values()) {
            xml::BlockDiskSpec s;
            s.options = shape.options;
            s.device_path = "/dev/" + v;
            s.options.serial = v;
            ASSERT_EQ(xml::block_disk_xml(s), xml::reference::block_disk_xml_pugi(s)) << "value " << v;
        }
    }
}

TEST(SecretXml, SameBytesAsPugixmlTree) {
    for (const std::string &v : tricky_values()) {
        ASSERT_EQ(xml::iscsi_secret_xml(v, v), xml::reference::iscsi_secret_xml_pugi(v, v)) << "value " << v;
        ASSERT_EQ(xml::iscsi_secret_xml(v, ""), xml::reference::iscsi_secret_xml_pugi(v, "")) << "value " << v;
    }
}

}  // namespace
