// A new volume's CHAP secret is defined while its portals are probed (both wait on other daemons); an existing
// secret keeps its value until the probe has accepted the new password, and a failed probe leaves nothing.
#include "net_disk/network_disk_path.hpp"
#include "request/json_input.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace ivd;
using iscsi::ProbeOutcome;
using iscsi::ProbeResult;

constexpr const char *usage = "iscsi-volume-driver:vol-1";

std::string connection_data(const std::string &password) {
    return R"({"driver_volume_type":"iscsi","data":{"target_portal":"127.0.0.1:3260",)"
           R"("target_iqn":"iqn.2010-10.org.openstack:v","target_lun":1,"volume_id":"vol-1",)"
           R"("auth_method":"CHAP","auth_username":"user","auth_password":")" + password + R"("}})";
}

request::VolumeRequest volume(const std::string &password) {
    auto doc = request::parse_object(connection_data(password).c_str(), "connection_info");
    EXPECT_TRUE(doc.ok());
    auto r = request::parse_connection_info(*doc);
    EXPECT_TRUE(r.ok()) << r.error().message;
    return std::move(r).value();
}

// The prober waits (boundedly) for the secret to be defined, then says what it saw and answers `outcome`.
struct Fixture {
    std::shared_ptr<libvirt::MemorySecretStore> secrets = std::make_shared<libvirt::MemorySecretStore>();
    std::shared_ptr<net_disk::AttachmentLedger> ledger = std::make_shared<net_disk::MemoryLedger>();
    ProbeOutcome outcome = ProbeOutcome::healthy;
    std::chrono::milliseconds wait_for_secret{0};
    std::optional<std::string> value_during_probe;

    std::unique_ptr<net_disk::NetworkDiskPath> path(request::NetDiskConfig config = {}) {
        auto prober = [this](const std::vector<request::Target> &targets, const iscsi::ProbeOptions &) {
            const auto deadline = std::chrono::steady_clock::now() + wait_for_secret;
            while (!secrets->value_of(usage) && std::chrono::steady_clock::now() < deadline) {
                std::this_thread::sleep_for(std::chrono::milliseconds(1));
            }
            const auto value = secrets->value_of(usage);
            value_during_probe = value ? std::optional<std::string>(std::string(value->reveal())) : std::nullopt;
            std::vector<ProbeResult> results(targets.size());
            for (auto &r : results) r.outcome = outcome;
            return results;
        };
        return std::make_unique<net_disk::NetworkDiskPath>(config, Logger{}, secrets, prober, nullptr, ledger);
    }
};

Result<request::DeviceInfo> connect(net_disk::NetworkDiskPath &path, const request::VolumeRequest &v) {
    request::Connector connector;
    connector.initiator = "iqn.1993-08.org.debian:01:host";
    request::DiskTarget disk{request::DiskBus::virtio, "vdb"};
    PathDecision decision;
    static const HostFacts facts;
    return path.connect(ConnectContext{v, connector, disk, decision, facts});
}

std::size_t records(net_disk::AttachmentLedger &ledger) {
    auto ids = ledger.attachments(usage);
    return ids ? ids->size() : 999;
}

TEST(SecretDuringProbe, ANewVolumesSecretIsDefinedWhileItsPortalsAreProbed) {
    Fixture f;
    f.wait_for_secret = std::chrono::seconds(10);  // sequential steps would make the prober wait all of it
    auto path = f.path();
    const auto start = std::chrono::steady_clock::now();
    auto info = connect(*path, volume("pass-1"));
    ASSERT_TRUE(info.ok()) << info.error().message;
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10));
    EXPECT_EQ(f.value_during_probe, "pass-1") << "the secret was not there while the portal was probed";
    EXPECT_EQ(f.secrets->value_of(usage)->reveal(), "pass-1");
    EXPECT_EQ(info->network().secret_usage, usage);
    EXPECT_EQ(records(*f.ledger), 1u);
}

TEST(SecretDuringProbe, ANewVolumesSecretAndRecordGoWhenTheProbeFails) {
    for (const ProbeOutcome outcome : {ProbeOutcome::auth_failed, ProbeOutcome::timeout, ProbeOutcome::unreachable}) {
        Fixture f;
        f.wait_for_secret = std::chrono::seconds(10);
        f.outcome = outcome;
        auto path = f.path();
        auto info = connect(*path, volume("pass-1"));
        ASSERT_FALSE(info.ok());
        EXPECT_EQ(f.value_during_probe, "pass-1") << "defined during the probe";
        EXPECT_EQ(f.secrets->size(), 0u) << "a failed connect leaves no secret";
        EXPECT_EQ(records(*f.ledger), 0u) << "and no record";
        EXPECT_EQ(info.error().message.find("pass-1"), std::string::npos);
    }
}

// Another attachment of the volume holds the secret: a connect with a rotated password must not set it before
// the target has accepted that password (a wrong one would break the other attachment's reconnects).
TEST(SecretDuringProbe, AnExistingSecretKeepsItsValueUntilTheProbeAcceptsTheNewPassword) {
    Fixture f;
    auto path = f.path();
    ASSERT_TRUE(connect(*path, volume("pass-1")).ok());
    f.outcome = ProbeOutcome::auth_failed;
    ASSERT_FALSE(connect(*path, volume("wrong")).ok());
    EXPECT_EQ(f.value_during_probe, "pass-1");
    EXPECT_EQ(f.secrets->value_of(usage)->reveal(), "pass-1") << "a refused password never reaches the secret";
    EXPECT_EQ(records(*f.ledger), 1u) << "the first attachment's record only";
    f.outcome = ProbeOutcome::healthy;
    ASSERT_TRUE(connect(*path, volume("pass-2")).ok());
    EXPECT_EQ(f.value_during_probe, "pass-1");
    EXPECT_EQ(f.secrets->value_of(usage)->reveal(), "pass-2") << "accepted: the rotated password is set";
    EXPECT_EQ(records(*f.ledger), 2u);
}

// Records with no secret (libvirtd lost an ephemeral one) belong to other attachments: the secret is defined
// only after the probe, as for an existing one, and a failed probe leaves their records alone.
TEST(SecretDuringProbe, RecordsWithoutASecretWaitForTheProbe) {
    Fixture f;
    ASSERT_TRUE(f.ledger->add(usage, "0123456789abcdef0123456789abcdef").ok());
    f.outcome = ProbeOutcome::timeout;
    auto path = f.path();
    ASSERT_FALSE(connect(*path, volume("pass-1")).ok());
    EXPECT_EQ(f.value_during_probe, std::nullopt);
    EXPECT_EQ(f.secrets->size(), 0u);
    EXPECT_EQ(records(*f.ledger), 1u);
    f.outcome = ProbeOutcome::healthy;
    ASSERT_TRUE(connect(*path, volume("pass-1")).ok());
    EXPECT_EQ(f.value_during_probe, std::nullopt);
    EXPECT_EQ(f.secrets->value_of(usage)->reveal(), "pass-1");
    EXPECT_EQ(records(*f.ledger), 2u);
}

// Probing off: nothing to overlap, the secret step runs on the calling thread as before.
TEST(SecretDuringProbe, ProbingOffDefinesTheSecretAfterThePortalChoice) {
    Fixture f;
    request::NetDiskConfig config;
    config.probe_portals = false;
    auto path = f.path(config);
    auto info = connect(*path, volume("pass-1"));
    ASSERT_TRUE(info.ok()) << info.error().message;
    EXPECT_EQ(f.value_during_probe, std::nullopt) << "not probed";
    EXPECT_EQ(f.secrets->value_of(usage)->reveal(), "pass-1");
}

}  // namespace
