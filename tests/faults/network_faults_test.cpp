// Network path faults on real parts: tgtd or libvirtd going away mid-attach, a destroyed domain, idempotent
// connect/disconnect, and `volume-host cleanup` after a crashed host or without libvirt.
#include "driver_loader.hpp"
#include "fault_fixtures.hpp"
#include "libvirt_domain.hpp"

#include <gtest/gtest.h>

#include <sys/wait.h>

#include <cstdlib>
#include <iostream>

namespace {

using namespace ivd::faults;

// tgtd goes away after the driver defined the secret and before QEMU opened the LUN (one portal: no probe, so
// the driver's part succeeds and QEMU's login is what fails): volume-host's undo disconnects, nothing stays.
// With two portals the probe sees tgtd gone first and refuses before anything is defined.
TEST_F(NetworkFaults, TgtdStoppedInTheMiddleOfAnAttach) {
    TgtdLab doomed;
    const std::string iqn = doomed.make_iqn("doomed");
    const int tid = doomed.create_target(iqn);
    doomed.add_lun(tid, 1);
    doomed.add_account(chap_user, chap_password);
    doomed.bind_account(tid, chap_user);
    const std::string p1 = doomed.portal().to_string();
    const std::string p2 = doomed.add_portal().to_string();

    // In process, with the module: connect succeeds and defines the secret, then tgtd stops, then the attach.
    LogSink sink;
    const vd_host_table host{sizeof(vd_host_table), &sink, LogSink::callback};
    auto module = volume_host::LoadedModule::load(IVD_MODULE_PATH, host);
    ASSERT_TRUE(module) << module.error().message;
    auto driver = volume_host::DriverInstance::create(*module, R"({"path":"network","libvirt_uri":")" + libvirt->uri() + "\"}");
    ASSERT_TRUE(driver) << driver.error().message;
    const auto &t = (*driver)->table();
    const std::string one = compact(ci_for({p1}, iqn, "doomed-inproc"));
    char *out = nullptr;
    ASSERT_EQ(t.connect_volume((*driver)->handle(), one.c_str(), (R"({"initiator":")" + initiator + "\"}").c_str(),
                               R"({"bus":"scsi","dev":"sdt"})", 0, &out), VD_OK) << (*driver)->last_error();
    const std::string device_info = volume_host::take_driver_string(t, out);
    EXPECT_EQ(our_secrets().size(), 1u);
    doomed.stop();
    auto session = volume_host::DomainSession::open(libvirt->uri(), libvirt->domain_name());
    ASSERT_TRUE(session) << session.error().message;
    const auto disks_before = domain_disks();
    auto attach_error = (*session)->attach_disk(parse(device_info)["disk_xml"].asString());
    ASSERT_TRUE(attach_error.has_value()) << "QEMU cannot open a LUN whose target is gone";
    std::cout << "attach with tgtd gone: " << attach_error->message << "\n";
    EXPECT_EQ(domain_disks(), disks_before);
    EXPECT_EQ(t.disconnect_volume((*driver)->handle(), one.c_str(), device_info.c_str(), 0), VD_OK) << (*driver)->last_error();
    EXPECT_TRUE(our_secrets().empty());

    // Through volume-host --attach, one portal: the driver probes a single portal too, so the dead target is a
    // clear unreachable error before anything reaches QEMU, and nothing is defined.
    auto r = connect(ci_for({p1}, iqn, "doomed-one"), "doomed-one", "--attach " + libvirt->domain_name());
    EXPECT_EQ(r.exit_code, 5) << r.err;
    EXPECT_EQ(r.error()["code"].asString(), "unreachable") << r.err;
    EXPECT_TRUE(our_secrets().empty()) << "volume-host's undo must remove the secret";
    EXPECT_EQ(domain_disks(), disks_before);

    // Two portals: probing finds both dead, a clear unreachable error, nothing defined.
    r = connect(ci_for({p1, p2}, iqn, "doomed-two"), "doomed-two", "--attach " + libvirt->domain_name());
    EXPECT_EQ(r.exit_code, 5) << r.err;
    EXPECT_EQ(r.error()["code"].asString(), "unreachable") << r.err;
    EXPECT_NE(r.error()["message"].asString().find("no portal of the volume is usable"), std::string::npos) << r.err;
    EXPECT_EQ(domain_disks(), disks_before);
    EXPECT_EQ(sink.all().find(chap_password), std::string::npos);
}

// libvirtd restarts while a volume is attached: the plugin's Connection notices the dead link and reopens, so
// the disconnect still removes the secret.
TEST_F(NetworkFaults, LibvirtdRestartedBetweenConnectAndDisconnect) {
    LogSink sink;
    const vd_host_table host{sizeof(vd_host_table), &sink, LogSink::callback};
    auto module = volume_host::LoadedModule::load(IVD_MODULE_PATH, host);
    ASSERT_TRUE(module) << module.error().message;
    auto driver = volume_host::DriverInstance::create(*module, R"({"path":"network","libvirt_uri":")" + libvirt->uri() + "\"}");
    ASSERT_TRUE(driver) << driver.error().message;
    const auto &t = (*driver)->table();
    const std::string info = compact(ci("restart"));
    char *out = nullptr;
    ASSERT_EQ(t.connect_volume((*driver)->handle(), info.c_str(), (R"({"initiator":")" + initiator + "\"}").c_str(),
                               R"({"bus":"scsi","dev":"sdu"})", 0, &out), VD_OK) << (*driver)->last_error();
    const std::string device_info = volume_host::take_driver_string(t, out);
    {
        auto session = volume_host::DomainSession::open(libvirt->uri(), libvirt->domain_name());
        ASSERT_TRUE(session) << session.error().message;
        ASSERT_FALSE((*session)->attach_disk(parse(device_info)["disk_xml"].asString()).has_value());
    }
    EXPECT_GE(tgtd->session_count(chap_tid), 1);

    libvirt->restart_libvirtd();

    {
        auto session = volume_host::DomainSession::open(libvirt->uri(), libvirt->domain_name());
        ASSERT_TRUE(session) << session.error().message;
        auto detached = (*session)->detach_disk("sdu");
        ASSERT_TRUE(detached) << detached.error().message;
    }
    ASSERT_EQ(t.disconnect_volume((*driver)->handle(), info.c_str(), device_info.c_str(), 0), VD_OK) << (*driver)->last_error();
    EXPECT_TRUE(our_secrets().empty());
    EXPECT_NE(sink.all().find("reopening"), std::string::npos) << "the connection should have been reopened:\n" << sink.all();
}

// The domain is destroyed (a transient domain: gone entirely) before the host detaches: disconnect --detach
// must notice there is nothing to detach and still disconnect the volume.
TEST_F(NetworkFaults, DomainDestroyedBeforeDetach) {
    auto victim = std::make_unique<LibvirtLab>();
    auto r = connect(ci("destroyed"), "destroyed", "--attach " + victim->domain_name());
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(our_secrets().size(), 1u);
    EXPECT_GE(tgtd->session_count(chap_tid), 1);
    const auto destroyed = ivd::testing::run_command({"virsh", "-c", libvirt->uri(), "destroy", victim->domain_name()});
    ASSERT_EQ(destroyed.status, 0) << destroyed.err;

    auto d = disconnect("destroyed", r.out, "--detach " + victim->domain_name());
    EXPECT_EQ(d.exit_code, 0) << d.err;
    EXPECT_NE(d.err.find("no longer exists"), std::string::npos) << d.err;
    EXPECT_TRUE(our_secrets().empty());
    victim.reset();
}

// Connecting twice returns the same device_info and keeps one secret; disconnecting twice, or a volume that
// was never connected, succeeds.
TEST_F(NetworkFaults, ConnectAndDisconnectAreIdempotent) {
    const std::string disk = "--disk-info '{\"bus\":\"scsi\",\"dev\":\"sdv\"}'";
    auto first = connect(ci("twice"), "twice", disk);
    ASSERT_EQ(first.exit_code, 0) << first.err;
    auto second = connect(ci("twice"), "twice", disk);
    ASSERT_EQ(second.exit_code, 0) << second.err;
    Json::Value a = parse(first.out), b = parse(second.out);
    EXPECT_NE(a["attachment_id"], b["attachment_id"]) << "two connects are two attachments";
    for (const char *differs : {"attachment_id", "portal_choice"}) {  // the probe's elapsed_ms differ too
        a.removeMember(differs);
        b.removeMember(differs);
    }
    EXPECT_EQ(a, b) << "otherwise the same result again";
    EXPECT_EQ(our_secrets().size(), 1u) << "one secret for one volume";
    EXPECT_FALSE(a["secret_uuid"].asString().empty());

    EXPECT_EQ(disconnect("twice", first.out).exit_code, 0);
    EXPECT_EQ(our_secrets().size(), 1u) << "the second connect is still outstanding";
    EXPECT_EQ(disconnect("twice", second.out).exit_code, 0);
    EXPECT_TRUE(our_secrets().empty());
    auto again = disconnect("twice", first.out);
    EXPECT_EQ(again.exit_code, 0) << "already disconnected: success. " << again.err;

    // Never connected, with and without device_info.
    file("never.ci.json", compact(ci("never")));
    EXPECT_EQ(disconnect("never", "{}").exit_code, 0);
    EXPECT_EQ(disconnect("never", first.out).exit_code, 0);
}

// A host process that dies after connect defined the secret (a child that _exit()s right after connect_volume)
// leaves an unreferenced secret; `volume-host cleanup` removes it, and keeps the secrets of volumes a domain
// still uses: one attached live, one only in a shut-off persistent domain's config.
TEST_F(NetworkFaults, CleanupRemovesWhatACrashedHostLeftAndKeepsWhatDomainsUse) {
    // 1. The crash: a fresh process loads the module, connects, and dies without disconnecting.
    const std::string crashed_ci = file("crashed.ci.json", compact(ci("crashed"))).string();
    const std::string cmd = std::string("/proc/") + pid_tag() + "/exe --crash-after-connect " + crashed_ci + " " + libvirt->uri();
    const int status = std::system(cmd.c_str());
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 42) << "the child must reach its _exit(42) after connect";
    const std::string crashed_usage = "iscsi-volume-driver:" + volume_prefix() + "crashed";

    // 2. A volume attached live, and one referenced only by a persistent domain's config (not running).
    auto attached = connect(ci("attached"), "attached", "--attach " + libvirt->domain_name());
    ASSERT_EQ(attached.exit_code, 0) << attached.err;
    auto cfg = connect(ci("configonly"), "configonly", "--disk-info '{\"bus\":\"scsi\",\"dev\":\"sda\"}'");
    ASSERT_EQ(cfg.exit_code, 0) << cfg.err;
    persistent_domain = "ivd-flt-" + pid_tag() + "-cfg";
    const fs::path xml = file("persistent.xml",
                              "<domain type='qemu'><name>" + persistent_domain + "</name><memory unit='MiB'>64</memory>"
                              "<os><type arch='x86_64'>hvm</type></os><devices>"
                              "<controller type='scsi' model='virtio-scsi'/>" + parse(cfg.out)["disk_xml"].asString() +
                              "</devices></domain>");
    const auto defined = ivd::testing::run_command({"virsh", "-c", libvirt->uri(), "define", xml.string()});
    ASSERT_EQ(defined.status, 0) << defined.err;
    ASSERT_EQ(our_secrets().size(), 3u);

    auto row_for = [](const Json::Value &report, const std::string &usage) {
        for (const auto &row : report["items"]) {
            if (row["name"].asString() == usage) return row;
        }
        return Json::Value();
    };
    const std::string attached_usage = "iscsi-volume-driver:" + volume_prefix() + "attached";
    const std::string cfg_usage = "iscsi-volume-driver:" + volume_prefix() + "configonly";

    // 3. Dry run: reports, removes nothing.
    auto dry = vh("cleanup --dry-run");
    ASSERT_EQ(dry.exit_code, 0) << dry.err;
    Json::Value report = parse(dry.out);
    std::cout << "dry run report: " << dry.out;
    EXPECT_TRUE(report["dry_run"].asBool());
    EXPECT_EQ(report["found"].asInt(), 3);
    EXPECT_EQ(row_for(report, crashed_usage)["action"].asString(), "would_remove");
    EXPECT_EQ(row_for(report, attached_usage)["action"].asString(), "kept");
    EXPECT_EQ(row_for(report, attached_usage)["referenced_by"][0]["view"].asString(), "live");
    EXPECT_EQ(row_for(report, cfg_usage)["action"].asString(), "kept");
    EXPECT_EQ(row_for(report, cfg_usage)["referenced_by"][0]["view"].asString(), "config");
    EXPECT_EQ(row_for(report, cfg_usage)["referenced_by"][0]["domain"].asString(), persistent_domain);
    EXPECT_EQ(our_secrets().size(), 3u);

    // 4. The real run: only the crashed volume's secret goes.
    auto run = vh("cleanup");
    ASSERT_EQ(run.exit_code, 0) << run.err;
    report = parse(run.out);
    EXPECT_EQ(report["removed"].asInt(), 1);
    EXPECT_EQ(report["kept"].asInt(), 2);
    EXPECT_EQ(report["failed"].asInt(), 0);
    EXPECT_EQ(row_for(report, crashed_usage)["action"].asString(), "removed");
    EXPECT_EQ(our_secrets(), (std::vector<std::string>{attached_usage, cfg_usage}));
    EXPECT_EQ(report["paths"]["network"].asString(), "scanned");
    // The attached volume still works through QEMU after the cleanup (its secret is intact).
    EXPECT_FALSE(libvirt->read_disk_bytes(parse(attached.out)["dev"].asString(), 0, 16).empty());

    // 5. Idempotent: nothing more to remove.
    auto again = vh("cleanup");
    ASSERT_EQ(again.exit_code, 0) << again.err;
    EXPECT_EQ(parse(again.out)["removed"].asInt(), 0);

    // 6. Undo the rest the normal way.
    ASSERT_EQ(ivd::testing::run_command({"virsh", "-c", libvirt->uri(), "undefine", persistent_domain}).status, 0);
    persistent_domain.clear();
    EXPECT_EQ(disconnect("configonly", cfg.out).exit_code, 0);
    EXPECT_EQ(disconnect("attached", attached.out, "--detach " + libvirt->domain_name()).exit_code, 0);
}

// libvirt unreachable: the network path cannot scan and is reported as not scanned, naming why, and nothing of it
// is touched; the host path still scans (its own empty state here); volume-host exits 7 (partial), nothing failed.
// (Until each path's scan stood alone, the whole cleanup failed here and the host path was never looked at.)
TEST_F(NetworkFaults, CleanupWithoutLibvirtIsPartialWithTheNetworkPathNotScanned) {
    const fs::path host_state = dir / "unreachable-host";
    fs::create_directories(host_state / "nodes");
    spit(dir / "unreachable.conf", "[DEFAULT]\nvolume_drivers = iscsi=" IVD_MODULE_PATH
                                   "\n\n[libvirt]\nconnection_uri = qemu+unix:///system?socket=/nonexistent/sock\n"
                                   "\n[iscsi]\nstate_dir = " + (host_state / "state").string() +
                                   "\niscsi_node_dir = " + (host_state / "nodes").string() +
                                   "\nlock_dir = " + (host_state / "locks").string() + "\n");
    auto r = run_volume_host(dir, "--config " + (dir / "unreachable.conf").string(), "cleanup", &transcript);
    EXPECT_EQ(r.exit_code, 7) << r.out << r.err;
    EXPECT_EQ(r.error()["code"].asString(), "cleanup_partial") << r.err;
    EXPECT_NE(r.error()["message"].asString().find("network path"), std::string::npos) << r.err;
    const Json::Value report = parse(r.out);
    EXPECT_TRUE(report["partial"].asBool()) << r.out;
    ASSERT_EQ(report["not_scanned"].size(), 1u) << r.out;
    EXPECT_EQ(report["not_scanned"][0]["path"].asString(), "network");
    EXPECT_NE(report["not_scanned"][0]["reason"].asString().find("/nonexistent/sock"), std::string::npos) << r.out;
    EXPECT_EQ(report["paths"]["network"].asString().rfind("not scanned: ", 0), 0u) << r.out;
    EXPECT_EQ(report["paths"]["host"].asString(), "scanned") << r.out;
    EXPECT_EQ(report["failed"].asInt(), 0);
    EXPECT_EQ(report["removed"].asInt(), 0);
}

}  // namespace
