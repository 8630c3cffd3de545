// Fault scenarios on real parts: tgtd, libvirtd, a TCG domain, volume-host and the built module for the network
// path; the simulated host (its stand-in tools log in to the real tgtd) for the host path. Every scenario ends
// with none of our libvirt secrets, no iSCSI session on tgtd, no simulated session, device or node record, and
// either a clear error or a correct degraded result.
#include "driver_loader.hpp"
#include "fault_support.hpp"
#include "libvirt_domain.hpp"
#include "libvirt_lab.hpp"
#include "setup.hpp"
#include "tgtd_lab.hpp"

#include <volume_driver/volume_driver.h>

#include <gtest/gtest.h>

#include <mutex>

namespace {

using namespace ivd::faults;
using namespace std::chrono_literals;
using ivd::testing::LibvirtLab;
using ivd::testing::TgtdLab;

const std::string chap_user = "flt-user";
const std::string chap_password = "Flt-Chap-Pw-5e2a91c3d7";
const std::string initiator = "iqn.1993-08.org.debian:01:faults";

std::string pid_tag() { return std::to_string(::getpid()); }

// Captures the driver's log lines (thread-safe: the driver may log from its probe threads).
struct LogSink {
    std::mutex mutex;
    std::vector<std::string> lines;
    static void callback(void *user, std::int32_t level, const char *component, const char *message) {
        auto *self = static_cast<LogSink *>(user);
        const std::lock_guard<std::mutex> lock(self->mutex);
        self->lines.push_back(std::to_string(level) + " " + (component ? component : "-") + ": " + (message ? message : ""));
    }
    std::string all() {
        const std::lock_guard<std::mutex> lock(mutex);
        std::string s;
        for (const auto &l : lines) s += l + "\n";
        return s;
    }
};

// ---------------------------------------------------------------------------------------------------------------
// Network path: volume-host + module + libvirtd + QEMU + tgtd.

class NetworkFaults : public ::testing::Test {
protected:
    static void SetUpTestSuite() {
        tgtd = std::make_unique<TgtdLab>();
        chap_iqn = tgtd->make_iqn("chap");
        chap_tid = tgtd->create_target(chap_iqn);
        tgtd->add_lun(chap_tid, 1);
        tgtd->add_account(chap_user, chap_password);
        tgtd->bind_account(chap_tid, chap_user);
        libvirt = std::make_unique<LibvirtLab>();
        dir = fs::temp_directory_path() / ("ivd-faults-net-" + pid_tag());
        fs::create_directories(dir);
        // cleanup_volume_prefix keeps `volume-host cleanup` to this process's volumes: libvirtd is shared with
        // every other test process on the machine.
        spit(dir / "volume-host.conf", "[DEFAULT]\nvolume_drivers = iscsi=" IVD_MODULE_PATH "\n\n[libvirt]\nconnection_uri = " +
                                           libvirt->uri() + "\n\n[iscsi]\npath = network\nprobe_timeout_ms = 1000\n" +
                                           "cleanup_volume_prefix = " + volume_prefix() + "\n");
        spit(dir / "connector.json", R"({"initiator":")" + initiator + R"(","multipath":false})");
    }
    static void TearDownTestSuite() {
        if (!persistent_domain.empty()) ivd::testing::run_command({"virsh", "-c", libvirt->uri(), "undefine", persistent_domain});
        libvirt.reset();
        tgtd.reset();
        std::error_code ec;
        fs::remove_all(dir, ec);
    }

    void TearDown() override {
        // The end state every scenario promises.
        EXPECT_TRUE(eventually([] { return our_secrets().empty(); }, 2s)) << "leaked secrets: " << our_secrets().size();
        EXPECT_TRUE(eventually([] { return tgtd->session_count(chap_tid) == 0; })) << "iSCSI sessions left on tgtd";
        EXPECT_EQ(transcript.find(chap_password), std::string::npos) << "the CHAP password reached volume-host output";
    }

    static std::string volume_prefix() { return "flt-" + pid_tag() + "-"; }
    static std::vector<std::string> our_secrets() {
        return secrets_with_prefix(libvirt->uri(), "iscsi-volume-driver:" + volume_prefix());
    }

    static Json::Value ci_for(const std::vector<std::string> &portals, const std::string &iqn, const std::string &name,
                              const std::string *password = &chap_password) {
        Json::Value ci;
        ci["driver_volume_type"] = "iscsi";
        Json::Value &d = ci["data"];
        for (const auto &p : portals) {
            d["target_portals"].append(p);
            d["target_iqns"].append(iqn);
        }
        d["target_lun"] = 1;
        d["volume_id"] = volume_prefix() + name;
        if (password != nullptr) {
            d["auth_method"] = "CHAP";
            d["auth_username"] = chap_user;
            d["auth_password"] = *password;
        }
        return ci;
    }
    static Json::Value ci(const std::string &name) { return ci_for({tgtd->portal().to_string()}, chap_iqn, name); }

    fs::path file(const std::string &name, const std::string &text) {
        spit(dir / name, text);
        return dir / name;
    }
    CliRun vh(const std::string &args) {
        return run_volume_host(dir, "--config " + (dir / "volume-host.conf").string() + " --log-level debug", args, &transcript);
    }
    CliRun connect(const Json::Value &info, const std::string &name, const std::string &extra) {
        return vh("connect " + file(name + ".ci.json", compact(info)).string() + " " + (dir / "connector.json").string() +
                  " " + extra);
    }
    CliRun disconnect(const std::string &name, const std::string &device_info_text, const std::string &extra = "") {
        return vh("disconnect " + (dir / (name + ".ci.json")).string() + " " +
                  file(name + ".device.json", device_info_text).string() + " " + extra);
    }
    std::size_t domain_disks() { return libvirt->list_disks().size(); }

    static inline std::unique_ptr<TgtdLab> tgtd;
    static inline std::unique_ptr<LibvirtLab> libvirt;
    static inline std::string chap_iqn;
    static inline int chap_tid = 0;
    static inline fs::path dir;
    static inline std::string persistent_domain;
    std::string transcript;
};

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

// ---------------------------------------------------------------------------------------------------------------
// Host path: volume-host run by the simulated-host tool; the stand-in iscsiadm logs in to a real tgtd with libiscsi.

class HostPathFaults : public ::testing::Test {
protected:
    void SetUp() override {
        std::string templ = (fs::temp_directory_path() / "ivd-faults-host-XXXXXX").string();
        ASSERT_NE(::mkdtemp(templ.data()), nullptr);
        dir_ = templ;
        sim_ = dir_ / "sim";
        iqn_ = lab_.make_iqn("hp");
        tid_ = lab_.create_target(iqn_);
        lab_.add_lun(tid_, 1);
        lab_.add_account(chap_user, chap_password);
        lab_.bind_account(tid_, chap_user);
        write_config("");
    }
    void TearDown() override {
        ivd::simhost::stop_simulated_sessions(sim_.string());
        EXPECT_EQ(transcript_.find(chap_password), std::string::npos) << "the CHAP password reached volume-host output";
        EXPECT_EQ(slurp(sim_ / "argv.log").find(chap_password), std::string::npos) << "the CHAP password reached an argv";
        std::error_code ec;
        fs::remove_all(dir_, ec);
    }

    void write_config(const std::string &extra, int device_wait_ms = 5000) {
        spit(dir_ / "volume-host.conf", "[DEFAULT]\nvolume_drivers = iscsi=" IVD_MODULE_PATH
                                        "\n\n[iscsi]\nprobe_timeout_ms = 2000\nmultipath_wait_timeout_ms = 2000\n"
                                        "device_wait_timeout_ms = " + std::to_string(device_wait_ms) + "\n" + extra);
    }
    void fault(const std::string &name, const std::string &value = "") { spit(sim_ / "faults" / name, value); }

    Json::Value lists(std::size_t n, const std::string &volume = "hp-vol") {
        while (lab_.portals().size() < n) lab_.add_portal();
        Json::Value ci;
        ci["driver_volume_type"] = "iscsi";
        Json::Value &d = ci["data"];
        for (std::size_t i = 0; i < n; ++i) {
            d["target_portals"].append(lab_.portals()[i].to_string());
            d["target_iqns"].append(iqn_);
            d["target_luns"].append(1);
        }
        d["volume_id"] = volume;
        d["auth_method"] = "CHAP";
        d["auth_username"] = chap_user;
        d["auth_password"] = chap_password;
        return ci;
    }

    CliRun vh(const std::string &args) {
        ivd::simhost::own_sessions_of_simulated_host_tool();
        return run_volume_host(dir_, "--config " + (dir_ / "volume-host.conf").string() + " --log-level debug", args,
                               &transcript_, std::string(SIMULATED_HOST_PATH) + " " + sim_.string());
    }
    CliRun connect(const Json::Value &ci, bool multipath = true) {
        spit(dir_ / "ci.json", compact(ci));
        spit(dir_ / "connector.json", std::string(R"({"initiator":")") + initiator + R"(","multipath":)" +
                                          (multipath ? "true" : "false") + "}");
        return vh("connect " + (dir_ / "ci.json").string() + " " + (dir_ / "connector.json").string() +
                  " --disk-info '{\"bus\":\"scsi\",\"dev\":\"sdb\"}'");
    }
    CliRun disconnect(const std::string &device_info) {
        spit(dir_ / "device.json", device_info);
        return vh("disconnect " + (dir_ / "ci.json").string() + " " + (dir_ / "device.json").string());
    }
    // Nothing left on the simulated host or the target (the simulated kernel lets go asynchronously).
    void expect_nothing_left() {
        EXPECT_TRUE(eventually([&] { return sim_state(sim_).empty(); })) << sim_state(sim_).describe();
        EXPECT_TRUE(eventually([&] { return lab_.session_count(tid_) == 0; })) << "sessions on tgtd";
    }

    TgtdLab lab_;
    fs::path dir_, sim_;
    std::string iqn_;
    int tid_ = 0;
    std::string transcript_;
};

// One of three paths fails to log in: the volume is attached degraded on two paths, the failure is reported,
// and the failed path's node record is gone.
TEST_F(HostPathFaults, MultipathPathFailsDuringConnect) {
    const Json::Value ci = lists(3);
    const auto &bad = lab_.portals()[2];
    fault("login_fail_" + bad.host + "_" + std::to_string(bad.port));
    auto r = connect(ci);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const Json::Value info = parse(r.out);
    EXPECT_TRUE(info["multipath"].asBool());
    EXPECT_EQ(info["paths"].size(), 2u) << r.out;
    ASSERT_EQ(info["failed_portals"].size(), 1u) << r.out;
    EXPECT_EQ(info["failed_portals"][0]["portal"].asString(), bad.to_string());
    EXPECT_EQ(info["failed_portals"][0]["stage"].asString(), "login");
    EXPECT_NE(r.err.find("attached with 2 of 3 paths"), std::string::npos) << r.err;
    const SimState mid = sim_state(sim_);
    EXPECT_EQ(mid.sessions, 2u);
    EXPECT_EQ(mid.node_records, 2u) << "the failed path's node record is undone";
    EXPECT_EQ(lab_.session_count(tid_), 2);

    auto d = disconnect(r.out);
    EXPECT_EQ(d.exit_code, 0) << d.err;
    expect_nothing_left();
}

// multipathd is down: without enforce_multipath the volume degrades to one path (and says why); with it, a
// clear error and every path undone.
TEST_F(HostPathFaults, MultipathdDownDegradesOrFailsCleanly) {
    fault("multipathd_down");
    const Json::Value ci = lists(2);
    auto r = connect(ci);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const Json::Value info = parse(r.out);
    EXPECT_FALSE(info["multipath"].asBool());
    EXPECT_FALSE(info["multipath_error"].asString().empty()) << r.out;
    EXPECT_EQ(disconnect(r.out).exit_code, 0);
    expect_nothing_left();

    write_config("enforce_multipath = true\n");
    r = connect(ci);
    EXPECT_EQ(r.exit_code, 5) << r.err;
    EXPECT_NE(r.error()["message"].asString().find("enforce_multipath"), std::string::npos) << r.err;
    expect_nothing_left();
}

// The LUN's device shows up only after device_wait_timeout_ms: a timeout error that says so, and the late
// device does not stay (the session it belongs to is logged out).
TEST_F(HostPathFaults, DeviceAppearingAfterTheDeadlineTimesOutAndLeavesNothing) {
    write_config("", 600);
    fault("device_delay_ms", "2000");
    const auto start = std::chrono::steady_clock::now();
    auto r = connect(lists(1), /*multipath=*/false);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    EXPECT_EQ(r.exit_code, 5) << r.err;
    EXPECT_EQ(r.error()["code"].asString(), "timeout") << r.err;
    EXPECT_NE(r.error()["message"].asString().find("did not appear as a block device within 600 ms"), std::string::npos)
        << r.err;
    std::cout << "timed-out connect returned after " << seconds << " s\n";
    // Give the simulated kernel time to create the late device: it must be removed with its session.
    std::this_thread::sleep_for(2s);
    expect_nothing_left();
}

// tgtd stops while the host is logging in (the stand-in iscsiadm waits 1.5 s before it connects): the login
// fails, the node record is undone, the error says which portal.
TEST_F(HostPathFaults, TgtdStoppedDuringLogin) {
    fault("login_latency_ms", "1500");
    const Json::Value ci = lists(1);
    std::thread stopper([&] {
        std::this_thread::sleep_for(700ms);
        lab_.stop();
    });
    auto r = connect(ci, /*multipath=*/false);
    stopper.join();
    EXPECT_NE(r.exit_code, 0) << r.out;
    EXPECT_EQ(r.exit_code, 5) << r.err;
    EXPECT_NE(r.error()["message"].asString().find("login to"), std::string::npos) << r.err;
    EXPECT_TRUE(eventually([&] { return sim_state(sim_).empty(); })) << sim_state(sim_).describe();
}

// Disconnecting a volume the host never connected, or one already disconnected, succeeds and runs no logout.
TEST_F(HostPathFaults, DisconnectOfUnknownOrDisconnectedVolumeSucceeds) {
    const Json::Value ci = lists(2);
    spit(dir_ / "ci.json", compact(ci));
    auto never = disconnect("{}");
    EXPECT_EQ(never.exit_code, 0) << never.err;
    EXPECT_EQ(slurp(sim_ / "argv.log").find("--logout"), std::string::npos) << "no session: nothing to log out";

    auto r = connect(ci);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(disconnect(r.out).exit_code, 0);
    auto again = disconnect(r.out);
    EXPECT_EQ(again.exit_code, 0) << again.err;
    expect_nothing_left();
}

}  // namespace

// The crash child: loads the module in a fresh process, connects, and dies at once (no disconnect, no destroy,
// no dlclose), as a host killed right after connect_volume returned would.
int crash_after_connect(const char *ci_path, const char *uri) {
    const vd_host_table host{sizeof(vd_host_table), nullptr, nullptr};
    auto module = volume_host::LoadedModule::load(IVD_MODULE_PATH, host);
    if (!module) return 3;
    auto driver = volume_host::DriverInstance::create(*module, std::string(R"({"path":"network","libvirt_uri":")") + uri + "\"}");
    if (!driver) return 4;
    const std::string ci = slurp(ci_path);
    char *out = nullptr;
    const auto rc = (*driver)->table().connect_volume((*driver)->handle(), ci.c_str(),
                                                      (R"({"initiator":")" + initiator + "\"}").c_str(),
                                                      R"({"bus":"scsi","dev":"sdw"})", 0, &out);
    ::_exit(rc == VD_OK ? 42 : 5);
}

int main(int argc, char **argv) {
    if (argc == 4 && std::string(argv[1]) == "--crash-after-connect") return crash_after_connect(argv[2], argv[3]);
    ::testing::InitGoogleTest(&argc, argv);
    return RUN_ALL_TESTS();
}
