// Host capability detection against the real libvirtd and QEMU on this machine, and with QEMU's iSCSI module
// or the host tools hidden through the config: the connector and the path decision each host gets.
#include "driver/driver.hpp"
#include "host_facts/host_facts.hpp"
#include "libvirt_lab.hpp"
#include "host_facts_support.hpp"
#include "test_support.hpp"

#include "request/json_input.hpp"

#include <json/json.h>

#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <map>
#include <thread>

namespace {

using namespace ivd;
using namespace std::chrono_literals;
using ivd::testing::Listener;
using ivd::testing::TempDir;
namespace fs = std::filesystem;

constexpr const char *initiator = "iqn.1993-08.org.debian:01:hostfacts";
constexpr const char *real_module = "/usr/lib/x86_64-linux-gnu/qemu/block-iscsi.so";

bool has(const std::string &text, const std::string &part) { return text.find(part) != std::string::npos; }

constexpr auto &parse = ivd::testing::parse_json;

constexpr auto &write = ivd::testing::write_json;

// Records which path the driver dispatched to, and with what decision.
class RecordingPath final : public AttachPathImpl {
public:
    RecordingPath(const char *type, std::vector<PathDecision> &log) : type_(type), log_(log) {}
    Result<request::DeviceInfo> connect(const ConnectContext &context) override {
        log_.push_back(context.decision);
        request::DeviceInfo info;
        if (std::string_view(type_) == "block") info.device.emplace<request::BlockDevice>();
        return info;
    }
    Result<void> disconnect(const request::VolumeRequest &, const request::DeviceInfo *, DisconnectOptions) override { return {}; }

private:
    const char *type_;
    std::vector<PathDecision> &log_;
};

// One real libvirtd for the whole suite; every test builds the host it wants out of config keys.
class RealHost : public ::testing::Test {
protected:
    static void SetUpTestSuite() { lab_ = new ivd::testing::LibvirtLab(ivd::testing::LibvirtLabOptions{.start_domain = false}); }
    static void TearDownTestSuite() {
        delete lab_;
        lab_ = nullptr;
    }

    void SetUp() override {
        std::ofstream(dir_ / "initiatorname.iscsi") << "## generated\nInitiatorName=" << initiator << "\n";
        // Nothing listens here until a test starts a Listener: "daemon not running", whatever this host runs.
        config_["libvirt_uri"] = lab_->uri();
        config_["initiator_name_file"] = dir_ / "initiatorname.iscsi";
        config_["iscsid_socket"] = dir_ / "iscsid.sock";
        config_["multipathd_socket"] = dir_ / "multipathd.sock";
        config_["iscsiadm_path"] = dir_ / "no-iscsiadm";
        config_["multipath_path"] = dir_ / "no-multipath";
        config_["multipathd_path"] = dir_ / "no-multipathd";
    }

    // The module hidden: an empty directory stands in for QEMU's module dir.
    void hide_qemu_module() { config_["qemu_module_dir"] = dir_.subdir("empty-moddir"); }
    // iscsiadm installed and iscsid running.
    void give_host_iscsi() {
        config_["iscsiadm_path"] = dir_.fake_tool("iscsiadm");
        iscsid_ = std::make_unique<Listener>(dir_ / "iscsid.sock");
    }
    // multipath-tools installed and (unless told otherwise) multipathd running.
    void give_multipath(bool running = true) {
        config_["multipath_path"] = dir_.fake_tool("multipath");
        config_["multipathd_path"] = dir_.fake_tool("multipathd");
        if (running) start_multipathd();
    }
    void start_multipathd() { multipathd_ = std::make_unique<Listener>(dir_ / "multipathd.sock"); }

    request::DriverConfig config() {
        auto doc = request::parse_object(write(config_).c_str(), "config");
        EXPECT_TRUE(doc.ok()) << doc.error().message;
        if (!doc.ok()) return request::DriverConfig{};
        auto c = request::parse_driver_config(*doc);
        EXPECT_TRUE(c.ok()) << c.error().message;
        return c.ok() ? *c : request::DriverConfig{};
    }

    Driver &driver() {
        DriverParts parts;
        parts.network = std::make_unique<RecordingPath>("network", decisions_);
        parts.host = std::make_unique<RecordingPath>("block", decisions_);
        parts.detect = [this](const request::HostFactsConfig &c, const Logger &l) {
            ++detections_;
            return detect_host_facts(c, l);
        };
        auto d = Driver::create(write(config_).c_str(), {}, std::move(parts));
        EXPECT_TRUE(d.ok()) << d.error().message;
        driver_ = std::move(d).value();
        return *driver_;
    }

    Json::Value connector() {
        auto out = driver_->connector_properties(0);
        EXPECT_TRUE(out.ok()) << out.error().message;
        return out.ok() ? parse(*out) : Json::Value();
    }

    Result<std::string> connect(bool multipath) {
        Json::Value ci;
        ci["driver_volume_type"] = "iscsi";
        ci["data"]["target_portal"] = "127.0.0.1:3260";
        ci["data"]["target_iqn"] = "iqn.2010-10.org.openstack:volume-hostfacts";
        ci["data"]["target_lun"] = 1;
        Json::Value conn;
        conn["initiator"] = initiator;
        conn["host"] = "compute-1";
        conn["multipath"] = multipath;
        return driver_->connect_volume(write(ci).c_str(), write(conn).c_str(), R"({"dev":"sdb","bus":"scsi"})", 0);
    }

    // Decision taken by the last successful connect: "network", "host" or "host+multipath".
    std::string last_decision() const {
        if (decisions_.empty()) return "none";
        const PathDecision &d = decisions_.back();
        return d.path == AttachPath::network ? "network" : d.multipath ? "host+multipath" : "host";
    }

    static ivd::testing::LibvirtLab *lab_;
    TempDir dir_;
    Json::Value config_{Json::objectValue};
    std::unique_ptr<Listener> iscsid_;
    std::unique_ptr<Listener> multipathd_;
    std::unique_ptr<Driver> driver_;
    std::vector<PathDecision> decisions_;
    std::atomic<int> detections_{0};
};

ivd::testing::LibvirtLab *RealHost::lab_ = nullptr;

TEST_F(RealHost, RealLibvirtAndQemu) {
    const ivd::HostFacts f = detect_host_facts(config().host_facts(), {});
    EXPECT_TRUE(f.complete) << f.libvirt_problem;
    EXPECT_TRUE(f.libvirt_problem.empty()) << f.libvirt_problem;
    EXPECT_EQ(f.emulator, "/usr/bin/qemu-system-x86_64");
    EXPECT_TRUE(has(f.emulator_source, "libvirt domain capabilities")) << f.emulator_source;
    EXPECT_TRUE(f.capabilities.qemu_iscsi) << f.capabilities.qemu_iscsi_reason;
    EXPECT_EQ(f.qemu_module, real_module);
    EXPECT_GE(f.libvirt_daemon_version, 9000000u);
    EXPECT_GE(f.libvirt_library_version, 9000000u);
    EXPECT_GE(f.qemu_version, 7002000u);
    EXPECT_TRUE(f.xml.auth_in_source);
    EXPECT_TRUE(f.xml.initiator);
    EXPECT_EQ(f.initiator, initiator);
    EXPECT_FALSE(f.host_name.empty());
    EXPECT_FALSE(f.ip.empty());
}

TEST_F(RealHost, ConnectorOnThisHost) {
    driver();
    const Json::Value c = connector();
    EXPECT_EQ(c["initiator"].asString(), initiator);
    EXPECT_FALSE(c["ip"].asString().empty());
    EXPECT_FALSE(c["host"].asString().empty());
    EXPECT_FALSE(c["multipath"].asBool());  // no iscsid, no multipathd
    const Json::Value &o = c["iscsi_volume_driver"];
    EXPECT_TRUE(o["qemu_iscsi"].asBool()) << o["qemu_iscsi_reason"].asString();
    EXPECT_TRUE(has(o["qemu_iscsi_reason"].asString(), "block-iscsi.so"));
    EXPECT_EQ(o["emulator"].asString(), "/usr/bin/qemu-system-x86_64");
    EXPECT_EQ(o["qemu_iscsi_module"].asString(), real_module);
    EXPECT_TRUE(has(o["emulator_source"].asString(), "libvirt"));
    EXPECT_EQ(o["libvirt_daemon_version"].asString().substr(0, 2), "9.");
    EXPECT_EQ(o["libvirt_library_version"].asString().substr(0, 2), "9.");
    EXPECT_EQ(o["qemu_version"].asString().substr(0, 2), "7.");
    EXPECT_FALSE(o.isMember("libvirt_problem"));
    EXPECT_TRUE(o["libvirt_xml"]["auth_in_source"].asBool());
    EXPECT_TRUE(o["libvirt_xml"]["initiator"].asBool());
    EXPECT_FALSE(o["host_iscsi"].asBool());
    EXPECT_TRUE(has(o["host_iscsi_reason"].asString(), "iscsiadm not found")) << o["host_iscsi_reason"];
    EXPECT_FALSE(o["multipath"].asBool());
    EXPECT_EQ(o["initiator_source"].asString(), dir_ / "initiatorname.iscsi");

    ASSERT_TRUE(connect(false).ok());
    EXPECT_EQ(last_decision(), "network");
    // The connector asks for multipath but the host cannot: QEMU's initiator, with the reason said.
    ASSERT_TRUE(connect(true).ok());
    EXPECT_EQ(last_decision(), "network");
    EXPECT_TRUE(has(decisions_.back().reason, "host cannot")) << decisions_.back().reason;
    EXPECT_EQ(detections_, 1);  // cached per handle
}

TEST_F(RealHost, ModuleHiddenAndNoHostPath) {
    hide_qemu_module();
    driver();
    const Json::Value c = connector();
    const Json::Value &o = c["iscsi_volume_driver"];
    EXPECT_FALSE(o["qemu_iscsi"].asBool());
    EXPECT_TRUE(has(o["qemu_iscsi_reason"].asString(), "no block-iscsi.so in " + config_["qemu_module_dir"].asString()))
        << o["qemu_iscsi_reason"];
    EXPECT_EQ(o["emulator"].asString(), "/usr/bin/qemu-system-x86_64");  // still reported
    EXPECT_FALSE(c["multipath"].asBool());

    auto r = connect(false);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().status, Status::unsupported);
    EXPECT_TRUE(has(r.error().message, "no block-iscsi.so")) << r.error().message;
    EXPECT_TRUE(has(r.error().message, "qemu-block-extra")) << r.error().message;
    EXPECT_TRUE(has(r.error().message, "iscsiadm not found")) << r.error().message;
    EXPECT_TRUE(has(r.error().message, "open-iscsi")) << r.error().message;
    EXPECT_TRUE(decisions_.empty());
}

TEST_F(RealHost, ModuleHiddenHostPathSinglePath) {
    hide_qemu_module();
    give_host_iscsi();
    driver();
    const Json::Value c = connector();
    EXPECT_FALSE(c["multipath"].asBool());  // iscsid yes, multipathd no
    EXPECT_TRUE(c["iscsi_volume_driver"]["host_iscsi"].asBool()) << c["iscsi_volume_driver"]["host_iscsi_reason"];
    EXPECT_TRUE(c["iscsi_volume_driver"]["iscsid"].asBool());
    EXPECT_EQ(c["iscsi_volume_driver"]["iscsiadm"].asString(), dir_ / "iscsiadm");
    EXPECT_TRUE(has(c["iscsi_volume_driver"]["multipath_reason"].asString(), "multipath tools not found"));

    ASSERT_TRUE(connect(true).ok());
    EXPECT_EQ(last_decision(), "host");
    EXPECT_TRUE(has(decisions_.back().reason, "QEMU cannot open iSCSI volumes")) << decisions_.back().reason;
}

TEST_F(RealHost, MultipathHost) {
    give_host_iscsi();
    give_multipath();
    driver();
    const Json::Value c = connector();
    EXPECT_TRUE(c["multipath"].asBool());
    EXPECT_TRUE(c["iscsi_volume_driver"]["multipathd"].asBool());
    EXPECT_EQ(c["iscsi_volume_driver"]["multipath_reason"].asString(), "multipathd answers");
    ASSERT_TRUE(connect(true).ok());
    EXPECT_EQ(last_decision(), "host+multipath");
    ASSERT_TRUE(connect(false).ok());
    EXPECT_EQ(last_decision(), "network");  // QEMU's initiator when multipath is not asked for
}

// multipathd runs but iscsid does not: the connector must not promise multipath.
TEST_F(RealHost, MultipathdWithoutIscsid) {
    give_multipath();
    driver();
    const Json::Value c = connector();
    EXPECT_FALSE(c["multipath"].asBool());
    EXPECT_TRUE(c["iscsi_volume_driver"]["multipath"].asBool());
    EXPECT_FALSE(c["iscsi_volume_driver"]["host_iscsi"].asBool());
}

TEST_F(RealHost, EnforceMultipathWithoutMultipathd) {
    config_["enforce_multipath"] = true;
    give_host_iscsi();
    give_multipath(/*running=*/false);
    driver();
    EXPECT_FALSE(connector()["multipath"].asBool());
    auto r = connect(true);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().status, Status::unsupported);
    EXPECT_TRUE(has(r.error().message, "enforce_multipath")) << r.error().message;
    EXPECT_TRUE(has(r.error().message, "multipath-tools")) << r.error().message;

    EXPECT_TRUE(has(r.error().message, "multipathd is not running")) << r.error().message;

    // multipathd started later: the failed decision triggers a fresh detection, and the next attach succeeds.
    start_multipathd();
    std::this_thread::sleep_for(1100ms);
    ASSERT_TRUE(connect(true).ok());
    EXPECT_EQ(last_decision(), "host+multipath");
}

TEST_F(RealHost, ForcedPathTheHostCannotDo) {
    config_["path"] = "host";
    driver();
    auto r = connect(false);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().status, Status::unsupported);
    EXPECT_TRUE(has(r.error().message, "path is \"host\"")) << r.error().message;
    EXPECT_TRUE(has(r.error().message, "iscsiadm not found at " + dir_ / "no-iscsiadm")) << r.error().message;

    config_["path"] = "network";
    hide_qemu_module();
    give_host_iscsi();
    driver();
    r = connect(false);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().status, Status::unsupported);
    EXPECT_TRUE(has(r.error().message, "path is \"network\"")) << r.error().message;
    EXPECT_TRUE(has(r.error().message, "qemu-block-extra")) << r.error().message;
}

// qemu-block-extra installed while the driver runs: the next attach re-detects instead of failing until restart.
TEST_F(RealHost, RefreshAfterCapabilityFailure) {
    config_["host_facts_ttl_s"] = 0;  // only failures refresh
    hide_qemu_module();
    driver();
    ASSERT_FALSE(connect(false).ok());
    EXPECT_EQ(detections_, 1);  // too young to re-probe: a burst of failures does not re-detect each time
    fs::create_symlink(real_module, fs::path(config_["qemu_module_dir"].asString()) / "block-iscsi.so");
    std::this_thread::sleep_for(1100ms);
    auto r = connect(false);
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_EQ(last_decision(), "network");
    EXPECT_EQ(detections_, 2);
    EXPECT_TRUE(connector()["iscsi_volume_driver"]["qemu_iscsi"].asBool());
    ASSERT_TRUE(connect(false).ok());
    EXPECT_EQ(detections_, 2);  // successes never re-detect
}

TEST_F(RealHost, TtlExpiry) {
    config_["host_facts_ttl_s"] = 1;
    config_["iscsiadm_path"] = dir_.fake_tool("iscsiadm");
    give_multipath(/*running=*/false);
    driver();
    EXPECT_FALSE(connector()["multipath"].asBool());
    iscsid_ = std::make_unique<Listener>(dir_ / "iscsid.sock");
    start_multipathd();
    EXPECT_FALSE(connector()["multipath"].asBool());  // cached
    EXPECT_EQ(detections_, 1);
    std::this_thread::sleep_for(1100ms);
    EXPECT_TRUE(connector()["multipath"].asBool());  // expired: multipathd seen
    EXPECT_EQ(detections_, 2);
}

TEST_F(RealHost, ConfigOverridesDetection) {
    hide_qemu_module();
    config_["qemu_iscsi"] = "true";
    config_["host_iscsi"] = "true";
    config_["host_multipath"] = "true";
    driver();
    const Json::Value c = connector();
    EXPECT_TRUE(c["multipath"].asBool());
    EXPECT_EQ(c["iscsi_volume_driver"]["qemu_iscsi_reason"].asString(), "set by config qemu_iscsi");
    EXPECT_EQ(c["iscsi_volume_driver"]["host_iscsi_reason"].asString(), "set by config host_iscsi");
    EXPECT_FALSE(c["iscsi_volume_driver"]["iscsid"].asBool());  // the raw fact stays visible
}

// The emulator can be named in the config; a libvirt that does not answer leaves the facts partial and says why.
TEST_F(RealHost, LibvirtUnreachable) {
    config_["libvirt_uri"] = "qemu+unix:///system?socket=" + dir_ / "no-libvirt-sock";
    ivd::HostFacts f = detect_host_facts(config().host_facts(), {});
    EXPECT_FALSE(f.complete);
    EXPECT_FALSE(f.libvirt_problem.empty());
    EXPECT_FALSE(f.capabilities.qemu_iscsi);
    EXPECT_TRUE(has(f.capabilities.qemu_iscsi_reason, "cannot tell which emulator")) << f.capabilities.qemu_iscsi_reason;
    EXPECT_TRUE(has(f.capabilities.libvirt_problem, config_["libvirt_uri"].asString())) << f.capabilities.libvirt_problem;
    EXPECT_EQ(f.capabilities.libvirt_status, Status::unreachable);
    EXPECT_EQ(f.libvirt_daemon_version, 0u);
    EXPECT_GE(f.libvirt_library_version, 9000000u);
    EXPECT_TRUE(f.xml.auth_in_source && f.xml.initiator);

    config_["qemu_emulator"] = "/usr/bin/qemu-system-x86_64";
    f = detect_host_facts(config().host_facts(), {});
    EXPECT_TRUE(f.capabilities.qemu_iscsi) << f.capabilities.qemu_iscsi_reason;
    EXPECT_EQ(f.emulator_source, "config qemu_emulator");

    driver();
    const Json::Value c = connector();
    EXPECT_FALSE(c["iscsi_volume_driver"]["libvirt_problem"].asString().empty());
    EXPECT_EQ(c["iscsi_volume_driver"]["libvirt_daemon_version"].asString(), "unknown");
    // Partial facts are re-detected on the next use after a short while, not kept for the whole TTL.
    std::this_thread::sleep_for(1100ms);
    connector();
    EXPECT_EQ(detections_, 2);
}

// Was: unsupported, "install ... qemu-block-extra", when libvirt simply did not answer.
TEST_F(RealHost, NetworkPathWithLibvirtUnreachableSaysSo) {
    config_["libvirt_uri"] = "qemu+unix:///system?socket=" + dir_ / "no-libvirt-sock";
    config_["path"] = "network";
    driver();
    auto r = connect(false);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().status, Status::unreachable) << r.error().message;
    EXPECT_TRUE(has(r.error().message, config_["libvirt_uri"].asString())) << r.error().message;
    EXPECT_TRUE(has(r.error().message, "libvirt is unreachable")) << r.error().message;
    EXPECT_FALSE(has(r.error().message, "qemu-block-extra")) << r.error().message;
}

// The abstract-namespace form the real daemons use.
TEST_F(RealHost, AbstractSocketName) {
    const std::string name = fmt::format("ivd-host-facts-test-{}", ::getpid());
    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path + 1, name.data(), name.size());
    const auto len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name.size());
    ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr *>(&addr), len), 0);
    ASSERT_EQ(::listen(fd, 4), 0);
    config_["iscsiadm_path"] = dir_.fake_tool("iscsiadm");
    config_["iscsid_socket"] = "@" + name;
    EXPECT_TRUE(detect_host_facts(config().host_facts(), {}).iscsid);
    ::close(fd);
    EXPECT_FALSE(detect_host_facts(config().host_facts(), {}).iscsid);
}

}  // namespace
