// The fault suites' fixtures: NetworkFaults (tgtd, libvirtd + a TCG domain, volume-host, the module) and
// HostPathFaults (volume-host on the simulated host, whose stand-in tools log in to a real tgtd).
//
// Every scenario ends with none of our libvirt secrets, no iSCSI session on tgtd, no simulated session, device or
// node record, and either a clear error or a correct degraded result.
#pragma once

#include "fault_support.hpp"
#include "libvirt_lab.hpp"
#include "setup.hpp"
#include "tgtd_lab.hpp"

#include <volume_driver/volume_driver.h>

#include <gtest/gtest.h>

#include <stdlib.h>
#include <unistd.h>

#include <mutex>

namespace ivd::faults {

using namespace std::chrono_literals;
using ivd::testing::LibvirtLab;
using ivd::testing::TgtdLab;

inline const std::string chap_user = "flt-user";
inline const std::string chap_password = "Flt-Chap-Pw-5e2a91c3d7";
inline const std::string initiator = "iqn.1993-08.org.debian:01:faults";

inline std::string pid_tag() { return std::to_string(::getpid()); }

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

}  // namespace ivd::faults
