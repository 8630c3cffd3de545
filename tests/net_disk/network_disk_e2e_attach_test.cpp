// The network path end to end, attaching: without and with CHAP (stored and ephemeral secrets), LUN above 255,
// a wrong password, dead and silent portals, an IPv6 portal, and a reconnect after a password change.
// read back THROUGH QEMU (NBD export of the QEMU block node).
#include "network_disk_e2e_fixture.hpp"

#include <gtest/gtest.h>

namespace {

using namespace ivd::net_disk_e2e;

TEST_F(NetworkDiskEndToEnd, AttachWithoutChapReadsTheVolumeThroughQemu) {
    auto info = attach(connection_info({tgtd->portal().to_string()}, open_tid, "open"), "open");
    ASSERT_EQ(info["type"].asString(), "network");
    const std::string dev = info["dev"].asString();
    ASSERT_FALSE(dev.empty());
    EXPECT_EQ(hex(libvirt->read_disk_bytes(dev, 0, 16)), hex(head_of(open_lun, 16)));
    EXPECT_GE(tgtd->session_count(open_tid), 1);
    detach("open");
    EXPECT_EQ(sessions_after_settling(open_tid), 0);
    for (const auto &d : libvirt->list_disks()) EXPECT_NE(d.target_dev, dev);
}

// QEMU's libiscsi sends the URL's LUN as the first two bytes of the LUN field, as the kernel does: tgtd's LUN 300
// (flat space, 0x412c) is reached only as 16684, which data.addressing_mode SAM2 gives; as 300 (peripheral,
// bus 1) tgtd would answer with its controller LUN and the probe refuses it.
TEST_F(NetworkDiskEndToEnd, LunAbove255WithSam2ReadsThatLuThroughQemu) {
    Json::Value ci = connection_info({tgtd->portal().to_string()}, open_tid, "lun300");
    ci["data"]["target_lun"] = 300;
    ci["data"]["addressing_mode"] = "SAM2";
    auto info = attach(ci, "lun300");
    ASSERT_EQ(info["type"].asString(), "network");
    EXPECT_EQ(info["target_lun"].asInt(), 300) << "device_info keeps the storage's LUN";
    EXPECT_EQ(info["addressing_mode"].asString(), "SAM2");
    EXPECT_NE(info["disk_xml"].asString().find("/16684"), std::string::npos) << info["disk_xml"].asString();
    const std::string dev = info["dev"].asString();
    ASSERT_FALSE(dev.empty());
    EXPECT_EQ(hex(libvirt->read_disk_bytes(dev, 0, 64)), hex(head_of(high_lun, 64)));
    EXPECT_NE(hex(head_of(high_lun, 64)), hex(head_of(open_lun, 64))) << "the two LUs must differ for this test";
    detach("lun300");
    EXPECT_EQ(sessions_after_settling(open_tid), 0);
}

TEST_F(NetworkDiskEndToEnd, AttachWithChapUsesAPrivateSecretThatDisconnectRemoves) {
    auto info = attach(connection_info({tgtd->portal().to_string()}, chap_tid, "chap", &chap_password), "chap");
    ASSERT_FALSE(info["secret_uuid"].asString().empty());
    EXPECT_EQ(info["disk_xml"].asString().find(chap_password), std::string::npos);
    EXPECT_EQ(our_secrets().size(), 1u);
    // Persistent (the default): libvirt keeps it in its secrets directory (where the ephemeral test looks).
    EXPECT_TRUE(fs::exists(fs::path("/etc/libvirt/secrets") / (info["secret_uuid"].asString() + ".xml")));
    EXPECT_EQ(hex(libvirt->read_disk_bytes(info["dev"].asString(), 0, 16)), hex(head_of(chap_lun, 16)));
    detach("chap");
    EXPECT_TRUE(our_secrets().empty());
    EXPECT_EQ(sessions_after_settling(chap_tid), 0);
}

// libvirt_ephemeral_secrets: the secret lives in libvirtd's memory only (no file under /etc/libvirt/secrets),
// is still private, QEMU still logs in with it, and disconnect removes it.
TEST_F(NetworkDiskEndToEnd, EphemeralSecretIsPrivateServesQemuAndDisconnectRemovesIt) {
    config = "volume-host-ephemeral.conf";
    auto info = attach(connection_info({tgtd->portal().to_string()}, chap_tid, "ephemeral", &chap_password), "ephemeral");
    const std::string uuid = info["secret_uuid"].asString();
    ASSERT_FALSE(uuid.empty());
    ASSERT_EQ(our_secrets().size(), 1u);
    auto xml = ivd::testing::run_command({"virsh", "-c", libvirt->uri(), "secret-dumpxml", uuid});
    ASSERT_EQ(xml.status, 0) << xml.err;
    EXPECT_NE(xml.out.find("ephemeral='yes'"), std::string::npos) << xml.out;
    EXPECT_NE(xml.out.find("private='yes'"), std::string::npos) << xml.out;
    auto value = ivd::testing::run_command({"virsh", "-c", libvirt->uri(), "secret-get-value", uuid});
    EXPECT_NE(value.status, 0) << "a private secret's value cannot be read back";
    EXPECT_EQ(value.out.find(chap_password), std::string::npos);
    EXPECT_FALSE(fs::exists(fs::path("/etc/libvirt/secrets") / (uuid + ".xml"))) << "ephemeral: never on disk";
    EXPECT_FALSE(fs::exists(fs::path("/etc/libvirt/secrets") / (uuid + ".base64"))) << "ephemeral: never on disk";
    EXPECT_EQ(hex(libvirt->read_disk_bytes(info["dev"].asString(), 0, 16)), hex(head_of(chap_lun, 16)));
    detach("ephemeral");
    EXPECT_TRUE(our_secrets().empty());
    auto gone = ivd::testing::run_command({"virsh", "-c", libvirt->uri(), "secret-dumpxml", uuid});
    EXPECT_NE(gone.status, 0) << gone.out;
    EXPECT_EQ(sessions_after_settling(chap_tid), 0);
}

TEST_F(NetworkDiskEndToEnd, WrongPasswordFailsCleanlyAndLeavesNothing) {
    const auto disks_before = libvirt->list_disks().size();
    const std::string wrong = "not-the-password";
    const fs::path ci = write("wrong.ci.json", compact(connection_info({tgtd->portal().to_string()}, chap_tid, "wrong", &wrong)));
    auto r = volume_host("connect " + ci.string() + " " + (dir / "connector.json").string() + " --attach " + libvirt->domain_name());
    EXPECT_NE(r.exit_code, 0);
    auto error = parse(r.err.substr(r.err.rfind("{\"error\"")))["error"];
    EXPECT_FALSE(error["message"].asString().empty());
    std::cout << "wrong password: exit " << r.exit_code << ", " << error["message"].asString() << "\n";
    EXPECT_TRUE(our_secrets().empty()) << "the secret must be removed when the attach fails";
    EXPECT_EQ(libvirt->list_disks().size(), disks_before) << "domain unchanged";
    EXPECT_EQ(r.err.find(wrong), std::string::npos);
    EXPECT_EQ(sessions_after_settling(chap_tid), 0);
}

TEST_F(NetworkDiskEndToEnd, DeadAndSilentPortalsAreSkippedWithinTheProbeTimeout) {
    const auto dead = tgtd->dead_portal().to_string();
    const auto silent = tgtd->black_hole_portal().to_string();
    const auto good = second_portal.to_string();
    const auto start = std::chrono::steady_clock::now();
    auto info = attach(connection_info({dead, silent, good}, chap_tid, "failover", &chap_password), "failover");
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    EXPECT_EQ(info["portal"].asString(), good);
    const Json::Value &report = info["portal_choice"];
    ASSERT_EQ(report.size(), 3u);
    EXPECT_EQ(report[0]["outcome"].asString(), "unreachable");
    EXPECT_EQ(report[1]["outcome"].asString(), "timeout");
    EXPECT_EQ(report[2]["outcome"].asString(), "healthy");
    std::cout << "failover attach took " << seconds << " s (probe timeout 1 s)\n";
    EXPECT_LT(seconds, 1.0 + 3.0) << "bounded by the probe timeout plus attach time";
    EXPECT_EQ(hex(libvirt->read_disk_bytes(info["dev"].asString(), 0, 16)), hex(head_of(chap_lun, 16)));
    detach("failover");
    EXPECT_TRUE(our_secrets().empty());
}

TEST_F(NetworkDiskEndToEnd, Ipv6LoopbackPortal) {
    std::string why;
    auto v6 = tgtd->add_ipv6_portal(&why);
    if (!v6) GTEST_SKIP() << "tgtd cannot bind an IPv6 loopback portal here: " << why;
    auto info = attach(connection_info({v6->to_string()}, open_tid, "ipv6"), "ipv6");
    EXPECT_NE(info["disk_xml"].asString().find("name='::1'"), std::string::npos) << info["disk_xml"].asString();
    EXPECT_EQ(hex(libvirt->read_disk_bytes(info["dev"].asString(), 0, 16)), hex(head_of(open_lun, 16)));
    detach("ipv6");
}

TEST_F(NetworkDiskEndToEnd, ReconnectAfterPasswordChangeUsesTheNewPassword) {
    // Connect (no attach) with the old password: the secret now holds it.
    const fs::path old_ci = write("rotate-old.ci.json", compact(connection_info({tgtd->portal().to_string()}, chap_tid, "rotate", &chap_password)));
    auto first = volume_host("connect " + old_ci.string() + " " + (dir / "connector.json").string() + " --disk-info '{\"dev\":\"sdz\"}'");
    ASSERT_EQ(first.exit_code, 0) << first.err;
    // The array rotates the password; the next connect must not reuse the stale secret value.
    const std::string rotated = "Pw-e2e-rotated-31d4";
    tgtd->set_account_password(chap_user, rotated);
    auto info = attach(connection_info({tgtd->portal().to_string()}, chap_tid, "rotate", &rotated), "rotate");
    EXPECT_EQ(hex(libvirt->read_disk_bytes(info["dev"].asString(), 0, 16)), hex(head_of(chap_lun, 16)));
    detach("rotate");
    EXPECT_EQ(our_secrets().size(), 1u) << "the first connect was not disconnected yet: its secret stays";
    // The host disconnects the first connect too (it never attached it); then nothing needs the secret.
    const fs::path first_info = write("rotate-old.device.json", first.out);
    auto off = volume_host("disconnect " + old_ci.string() + " " + first_info.string());
    EXPECT_EQ(off.exit_code, 0) << off.err;
    tgtd->set_account_password(chap_user, chap_password);
    EXPECT_TRUE(our_secrets().empty());
    EXPECT_EQ(all_output.find(rotated), std::string::npos);
}

}  // namespace
