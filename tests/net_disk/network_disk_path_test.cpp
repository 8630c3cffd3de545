// The network path with libvirt and libiscsi replaced by in-memory fakes: portal choice, secret lifecycle,
// rollback, and the device_info it returns.
#include "net_disk/network_disk_path.hpp"
#include "path_calls.hpp"
#include "request/json_input.hpp"

#include <volume_driver/volume_driver.h>

#include <gtest/gtest.h>
#include <pugixml.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <chrono>
#include <memory>

namespace {

using namespace ivd;
using iscsi::ProbeOutcome;
using iscsi::ProbeResult;

request::VolumeRequest volume(const std::string &data) {
    auto doc = request::parse_object(("{\"driver_volume_type\":\"iscsi\",\"data\":" + data + "}").c_str(), "connection_info");
    EXPECT_TRUE(doc.ok());
    auto r = request::parse_connection_info(*doc);
    EXPECT_TRUE(r.ok()) << r.error().message;
    return std::move(r).value();
}

const std::string three_portals =
    R"({"target_portals":["127.0.0.1:3260","127.0.0.2:3260","127.0.0.3:3260"],"target_iqns":["iqn.2010-10.org.openstack:v","iqn.2010-10.org.openstack:v","iqn.2010-10.org.openstack:v"],"target_lun":1,"volume_id":"vol-1","auth_method":"CHAP","auth_username":"user","auth_password":"pass-1"})";

struct Fixture {
    std::shared_ptr<libvirt::MemorySecretStore> secrets = std::make_shared<libvirt::MemorySecretStore>();
    std::shared_ptr<net_disk::AttachmentLedger> ledger = std::make_shared<net_disk::MemoryLedger>();
    std::vector<libvirt::SecretReference> refs;  // what the domains' disks reference, as the fake lister says
    std::vector<ProbeOutcome> outcomes;
    int probe_calls = 0;
    std::string seen_initiator;
    std::string seen_password;
    std::unique_ptr<net_disk::NetworkDiskPath> path(request::NetDiskConfig config = {}) {
        auto prober = [this](const std::vector<request::Target> &targets, const iscsi::ProbeOptions &options) {
            ++probe_calls;
            seen_initiator = options.initiator;
            seen_password = options.chap ? std::string(options.chap->password.reveal()) : "";
            std::vector<ProbeResult> results(targets.size());
            for (std::size_t i = 0; i < targets.size(); ++i) {
                results[i].outcome = i < outcomes.size() ? outcomes[i] : ProbeOutcome::healthy;
                if (results[i].outcome != ProbeOutcome::healthy) results[i].detail = "fake says no";
            }
            return results;
        };
        auto lister = [this]() -> Result<std::vector<libvirt::SecretReference>> { return refs; };
        return std::make_unique<net_disk::NetworkDiskPath>(config, Logger{}, secrets, prober, lister, ledger);
    }
};

using ivd::testing::disconnect_json;

Result<json::Value> connect(net_disk::NetworkDiskPath &path, const request::VolumeRequest &v,
                            const std::string &initiator = "iqn.1993-08.org.debian:01:host") {
    request::Connector connector;
    connector.initiator = initiator;
    request::DiskTarget disk{request::DiskBus::scsi, "sdc"};
    PathDecision decision;
    static const HostFacts facts;
    auto info = path.connect(ConnectContext{v, connector, disk, decision, facts});
    if (!info) return std::move(info).error();
    return info->to_json();
}

TEST(NetworkDiskPath, ChapVolumeGetsPrivateSecretAndXmlWithoutPassword) {
    Fixture f;
    auto path = f.path();
    auto v = volume(three_portals);
    auto info = connect(*path, v);
    ASSERT_TRUE(info.ok()) << info.error().message;
    EXPECT_EQ((*info)["type"].as_string(), "network");
    EXPECT_EQ((*info)["portal"].as_string(), "127.0.0.1:3260");
    EXPECT_EQ((*info)["secret_usage"].as_string(), "iscsi-volume-driver:vol-1");
    EXPECT_FALSE((*info)["secret_uuid"].as_string().empty());
    EXPECT_EQ((*info)["targets"].size(), 3u);
    const std::string xml = (*info)["disk_xml"].as_string();
    EXPECT_EQ(xml.find("pass-1"), std::string::npos);
    pugi::xml_document doc;
    ASSERT_TRUE(doc.load_string(xml.c_str()));
    auto source = doc.child("disk").child("source");
    EXPECT_STREQ(source.attribute("name").value(), "iqn.2010-10.org.openstack:v/1");
    EXPECT_STREQ(source.child("auth").attribute("username").value(), "user");
    EXPECT_STREQ(source.child("auth").child("secret").attribute("usage").value(), "iscsi-volume-driver:vol-1");
    EXPECT_STREQ(source.child("initiator").child("iqn").attribute("name").value(), "iqn.1993-08.org.debian:01:host");
    EXPECT_STREQ(doc.child("disk").child("serial").text().get(), "vol-1");
    ASSERT_EQ(f.secrets->size(), 1u);
    EXPECT_EQ(f.secrets->value_of("iscsi-volume-driver:vol-1")->reveal(), "pass-1");
    EXPECT_EQ(f.probe_calls, 1);
    EXPECT_EQ(f.seen_password, "pass-1") << "the probe logs in with the volume's CHAP";
    EXPECT_EQ(f.seen_initiator, "iqn.1993-08.org.debian:01:host");
    for (const auto &m : info->members()) {
        EXPECT_EQ(json::write(m.value).find("pass-1"), std::string::npos) << m.key;
    }
}

TEST(NetworkDiskPath, ReconnectWithNewPasswordUpdatesTheSecret) {
    Fixture f;
    auto path = f.path();
    ASSERT_TRUE(connect(*path, volume(three_portals)).ok());
    std::string changed = three_portals;
    changed.replace(changed.find("pass-1"), 6, "pass-2");
    ASSERT_TRUE(connect(*path, volume(changed)).ok());
    EXPECT_EQ(f.secrets->size(), 1u);
    EXPECT_EQ(f.secrets->value_of("iscsi-volume-driver:vol-1")->reveal(), "pass-2");
}

// Another attachment holds the secret: a rotated password the target refuses must not reach it (the other
// attachment's reconnects read it); once the target accepts the new one, it is set.
TEST(NetworkDiskPath, ARefusedPasswordNeverReachesTheSecret) {
    Fixture f;
    auto path = f.path();
    ASSERT_TRUE(connect(*path, volume(three_portals)).ok());
    std::string rotated = three_portals;
    rotated.replace(rotated.find("pass-1"), 6, "pass-2");
    f.outcomes = {ProbeOutcome::auth_failed, ProbeOutcome::auth_failed, ProbeOutcome::auth_failed};
    auto refused = connect(*path, volume(rotated));
    ASSERT_FALSE(refused.ok());
    EXPECT_EQ(refused.error().status, Status::auth);
    EXPECT_EQ(f.secrets->value_of("iscsi-volume-driver:vol-1")->reveal(), "pass-1");
    auto ids = f.ledger->attachments("iscsi-volume-driver:vol-1");
    ASSERT_TRUE(ids.ok());
    EXPECT_EQ(ids->size(), 1u) << "the refused connect left no record";
    f.outcomes.clear();
    ASSERT_TRUE(connect(*path, volume(rotated)).ok());
    EXPECT_EQ(f.secrets->value_of("iscsi-volume-driver:vol-1")->reveal(), "pass-2");
}

TEST(NetworkDiskPath, SkipsUnhealthyPortalsInListedOrderAndSaysWhy) {
    Fixture f;
    f.outcomes = {ProbeOutcome::unreachable, ProbeOutcome::timeout, ProbeOutcome::healthy};
    auto path = f.path();
    auto info = connect(*path, volume(three_portals));
    ASSERT_TRUE(info.ok()) << info.error().message;
    EXPECT_EQ((*info)["portal"].as_string(), "127.0.0.3:3260");
    const json::Value &report = (*info)["portal_choice"];
    ASSERT_EQ(report.size(), 3u);
    EXPECT_EQ(report[0]["outcome"].as_string(), "unreachable");
    EXPECT_EQ(report[1]["outcome"].as_string(), "timeout");
    EXPECT_TRUE(report[2]["chosen"].as_bool());
    EXPECT_NE((*info)["portal_choice_reason"].as_string().find("127.0.0.1:3260"), std::string::npos);
}

TEST(NetworkDiskPath, AllPortalsFailingLeavesNothingAndListsEachReason) {
    Fixture f;
    f.outcomes = {ProbeOutcome::auth_failed, ProbeOutcome::auth_failed, ProbeOutcome::auth_failed};
    auto path = f.path();
    auto info = connect(*path, volume(three_portals));
    ASSERT_FALSE(info.ok());
    EXPECT_EQ(info.error().status, Status::auth);
    for (const char *p : {"127.0.0.1:3260", "127.0.0.2:3260", "127.0.0.3:3260"}) {
        EXPECT_NE(info.error().message.find(p), std::string::npos) << info.error().message;
    }
    EXPECT_EQ(info.error().message.find("pass-1"), std::string::npos);
    EXPECT_EQ(f.secrets->size(), 0u) << "no secret defined when no portal works";
    f.outcomes = {ProbeOutcome::unreachable, ProbeOutcome::timeout, ProbeOutcome::auth_failed};
    auto mixed = connect(*path, volume(three_portals));
    ASSERT_FALSE(mixed.ok());
    EXPECT_EQ(mixed.error().status, Status::unreachable);
}

TEST(NetworkDiskPath, SinglePortalIsProbedAndAFailureNamesIt) {
    Fixture f;
    auto path = f.path();
    const std::string single_chap =
        R"({"target_portal":"127.0.0.1:3260","target_iqn":"iqn.2010-10.org.openstack:v","target_lun":2,"volume_id":"vol-1","auth_method":"CHAP","auth_username":"user","auth_password":"pass-1"})";
    auto healthy = connect(*path, volume(single_chap));
    ASSERT_TRUE(healthy.ok()) << healthy.error().message;
    EXPECT_EQ(f.probe_calls, 1);
    EXPECT_EQ((*healthy)["portal_choice_reason"].as_string(), "the only portal is healthy");
    f.secrets = std::make_shared<libvirt::MemorySecretStore>();
    auto fresh = f.path();
    f.outcomes = {ProbeOutcome::timeout};
    auto dead = connect(*fresh, volume(single_chap));
    ASSERT_FALSE(dead.ok());
    EXPECT_EQ(dead.error().status, Status::timeout);
    EXPECT_NE(dead.error().message.find("127.0.0.1:3260"), std::string::npos) << dead.error().message;
    EXPECT_EQ(f.secrets->size(), 0u) << "nothing defined for a portal that does not answer";
}

TEST(NetworkDiskPath, ProbingOffIsNotProbed) {
    Fixture f;
    request::NetDiskConfig off;
    off.probe_portals = false;
    auto unprobed = f.path(off);
    f.outcomes = {ProbeOutcome::unreachable};
    auto info = connect(*unprobed, volume(three_portals));
    ASSERT_TRUE(info.ok());
    EXPECT_EQ(f.probe_calls, 0);
    EXPECT_EQ((*info)["portal"].as_string(), "127.0.0.1:3260");
    EXPECT_EQ((*info)["portal_choice_reason"].as_string(), "probing disabled by config");
}

// The real prober against a portal that accepts TCP and never answers: the attach must fail within about
// probe_timeout_ms, naming the portal, before any XML reaches QEMU (it used to hand the portal over unprobed).
TEST(NetworkDiskPath, BlackHoleSinglePortalFailsWithinTheProbeTimeout) {
    const int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ASSERT_GE(listener, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(::bind(listener, reinterpret_cast<sockaddr *>(&addr), sizeof addr), 0);
    ASSERT_EQ(::listen(listener, 8), 0);  // the kernel completes the handshake; nobody ever reads
    socklen_t len = sizeof addr;
    ASSERT_EQ(::getsockname(listener, reinterpret_cast<sockaddr *>(&addr), &len), 0);
    const std::string portal = "127.0.0.1:" + std::to_string(ntohs(addr.sin_port));

    auto secrets = std::make_shared<libvirt::MemorySecretStore>();
    request::NetDiskConfig config;
    config.probe_timeout = std::chrono::milliseconds(300);
    net_disk::NetworkDiskPath path(config, Logger{}, secrets, iscsi::probe_targets);
    const auto start = std::chrono::steady_clock::now();
    auto info = connect(path, volume(R"({"target_portal":")" + portal +
                                     R"(","target_iqn":"iqn.2010-10.org.openstack:v","target_lun":1})"));
    const auto elapsed = std::chrono::steady_clock::now() - start;
    ::close(listener);
    ASSERT_FALSE(info.ok()) << "a black-hole portal was handed to QEMU";
    EXPECT_EQ(info.error().status, Status::timeout) << info.error().message;
    EXPECT_NE(info.error().message.find(portal), std::string::npos) << info.error().message;
    EXPECT_LT(elapsed, std::chrono::seconds(3));
}

TEST(NetworkDiskPath, SecretFailureIsReportedAndNothingLeaks) {
    Fixture f;
    auto path = f.path();
    f.secrets->fail_next_call(make_error(Status::backend, "libvirtd said no"));
    auto info = connect(*path, volume(three_portals));
    ASSERT_FALSE(info.ok());
    EXPECT_EQ(info.error().status, Status::backend);
    EXPECT_NE(info.error().message.find("libvirtd said no"), std::string::npos);
    EXPECT_EQ(f.secrets->size(), 0u);
}

TEST(NetworkDiskPath, InitiatorIsRequired) {
    Fixture f;
    auto path = f.path();
    auto info = connect(*path, volume(three_portals), "");
    ASSERT_FALSE(info.ok());
    EXPECT_EQ(info.error().argument, "connector");
    EXPECT_EQ(info.error().field, "initiator");
}

TEST(NetworkDiskPath, DisconnectRemovesTheSecretIdempotently) {
    Fixture f;
    auto path = f.path();
    auto v = volume(three_portals);
    auto info = connect(*path, v);
    ASSERT_TRUE(info.ok());
    ASSERT_TRUE(disconnect_json(*path, v, &*info, 0).ok());
    EXPECT_EQ(f.secrets->size(), 0u);
    EXPECT_TRUE(disconnect_json(*path, v, &*info, 0).ok()) << "already disconnected is success";
    // Lost device_info: the secret is found from connection_info alone, and goes once no record needs it.
    ASSERT_TRUE(connect(*path, v).ok());
    EXPECT_TRUE(disconnect_json(*path, v, nullptr, 0).ok());
    EXPECT_EQ(f.secrets->size(), 1u) << "the connect above was never disconnected: its record keeps the secret";
    ASSERT_TRUE(f.ledger->clear("iscsi-volume-driver:vol-1").ok());
    EXPECT_TRUE(disconnect_json(*path, v, nullptr, 0).ok());
    EXPECT_EQ(f.secrets->size(), 0u);
    // A backend failure is reported (the record stays, so a retry works), or ignored when asked.
    auto again = connect(*path, v);
    ASSERT_TRUE(again.ok());
    f.secrets->fail_next_call(make_error(Status::backend, "down"));
    EXPECT_FALSE(disconnect_json(*path, v, &*again, 0).ok());
    EXPECT_EQ(f.ledger->attachments("iscsi-volume-driver:vol-1")->size(), 1u);
    f.secrets->fail_next_call(make_error(Status::backend, "down"));
    EXPECT_TRUE(disconnect_json(*path, v, &*again, VD_DISCONNECT_IGNORE_ERRORS).ok());
    EXPECT_TRUE(disconnect_json(*path, v, &*again, 0).ok());
    EXPECT_EQ(f.secrets->size(), 0u);
    json::Value foreign = *info;
    foreign["secret_usage"] = "somebody-elses-secret";
    auto refused = disconnect_json(*path, v, &foreign, 0);
    ASSERT_FALSE(refused.ok());
    EXPECT_EQ(refused.error().field, "secret_usage");
    json::Value bad_id = *info;
    bad_id["attachment_id"] = "../../etc/passwd";
    auto bad = disconnect_json(*path, v, &bad_id, 0);
    ASSERT_FALSE(bad.ok());
    EXPECT_EQ(bad.error().field, "attachment_id");
}

TEST(NetworkDiskPath, OldLibvirtGetsTheXmlFormsItAccepts) {
    Fixture f;
    auto path = f.path();
    auto v = volume(three_portals);
    request::Connector connector;
    connector.initiator = "iqn.1993-08.org.debian:01:host";
    request::DiskTarget disk{request::DiskBus::scsi, "sdc"};
    PathDecision decision;
    HostFacts old;
    old.xml = libvirt_xml_features(3008000);  // 3.8.0: before <auth> in <source> and before <initiator>
    auto info = path->connect(ConnectContext{v, connector, disk, decision, old});
    ASSERT_TRUE(info.ok()) << info.error().message;
    pugi::xml_document doc;
    ASSERT_TRUE(doc.load_string(info->guest->disk_xml.c_str()));
    EXPECT_TRUE(doc.child("disk").child("auth"));
    EXPECT_FALSE(doc.child("disk").child("source").child("auth"));
    EXPECT_FALSE(doc.child("disk").child("source").child("initiator"));
}

}  // namespace

namespace {

// A device_info captured from a real version-1 connect (tests/device_info/v1) still undoes its connect: the
// CHAP secret goes, after the attachment record the fixture names is released.
TEST(NetworkDiskPath, V1DeviceInfoFixtureStillDisconnects) {
    Fixture f;
    auto path = f.path();
    auto v = volume(R"({"target_portal":"127.0.0.1:3291","target_iqn":"iqn.2026-11.test:cap-chap","target_lun":1,"volume_id":"cap-chap-1","auth_method":"CHAP","auth_username":"capuser","auth_password":"pw"})");
    auto info = connect(*path, v);
    ASSERT_TRUE(info.ok()) << info.error().message;
    std::ifstream in(std::string(IVD_DEVICE_INFO_FIXTURES) + "/v1/net_chap.json");
    std::stringstream text;
    text << in.rdbuf();
    // The fixture's record id is the one its own connect made; this connect's record takes its place.
    std::string doc = text.str();
    const std::string old_id = "025de290787f3601c9ef0a4886f78521";
    doc.replace(doc.find(old_id), old_id.size(), (*info)["attachment_id"].as_string());
    auto fixture = request::parse_object(doc.c_str(), "device_info");
    ASSERT_TRUE(fixture.ok());
    EXPECT_EQ(f.secrets->size(), 1u);
    ASSERT_TRUE(disconnect_json(*path, v, &*fixture, 0).ok());
    EXPECT_EQ(f.secrets->size(), 0u);
    EXPECT_EQ(f.ledger->attachments("iscsi-volume-driver:cap-chap-1")->size(), 0u);
}

}  // namespace
