// The network path end-to-end suite's fixture: tgtd serves the LUNs, volume-host loads the built module, the
// plugin defines libvirt secrets, libvirtd hot-plugs the disk into a TCG domain (set up once for the suite).
#pragma once

#include "test_support.hpp"
#include "driver_loader.hpp"
#include "libvirt/connection.hpp"
#include "libvirt/secret_store.hpp"
#include "libvirt_domain.hpp"
#include "libvirt_lab.hpp"
#include "tgtd_lab.hpp"

#include <json/json.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <vector>
#include <sstream>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

namespace ivd::net_disk_e2e {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

inline const std::string chap_user = "e2e-user";
inline const std::string chap_password = "Pw-e2e-7c1f9a";  // recognisable: searched for in every output
inline const std::string initiator = "iqn.1993-08.org.debian:01:e2e";

using ivd::testing::slurp;

inline constexpr auto &parse = ivd::testing::parse_json;

inline constexpr auto &compact = ivd::testing::write_json;

inline std::string hex(const std::string &bytes) {
    static const char *digits = "0123456789abcdef";
    std::string out;
    for (unsigned char c : bytes) {
        out += digits[c >> 4];
        out += digits[c & 15];
    }
    return out;
}

inline std::string head_of(const ivd::testing::TgtdLun &lun, std::size_t n) {
    return std::string(lun.head.begin(), lun.head.begin() + static_cast<std::ptrdiff_t>(std::min(n, lun.head.size())));
}

struct CliRun {
    int exit_code = -1;
    std::string out;
    std::string err;
    double seconds = 0;
};

class NetworkDiskEndToEnd : public ::testing::Test {
protected:
    static void SetUpTestSuite() {
        tgtd = std::make_unique<ivd::testing::TgtdLab>();
        second_portal = tgtd->add_portal();
        open_tid = tgtd->create_target(tgtd->make_iqn("open"));
        open_lun = tgtd->add_lun(open_tid, 1);
        high_lun = tgtd->add_lun(open_tid, 300);
        chap_tid = tgtd->create_target(tgtd->make_iqn("chap"));
        chap_lun = tgtd->add_lun(chap_tid, 1);
        tgtd->add_account(chap_user, chap_password);
        tgtd->bind_account(chap_tid, chap_user);
        libvirt = std::make_unique<ivd::testing::LibvirtLab>();
        dir = fs::temp_directory_path() / ("ivd-net-disk-e2e-" + std::to_string(::getpid()));
        fs::create_directories(dir);
        std::ofstream(dir / "volume-host.conf") << "[DEFAULT]\nvolume_drivers = iscsi=" << IVD_MODULE_PATH
                                                << "\nrun_dir = " << (dir / "run").string()
                                                << "\n\n[libvirt]\nconnection_uri = " << libvirt->uri()
                                                << "\n\n[iscsi]\npath = network\nprobe_timeout_ms = 1000\n";
        // The same with libvirt_ephemeral_secrets (a test switches `config` to it).
        std::ofstream(dir / "volume-host-ephemeral.conf")
            << slurp(dir / "volume-host.conf") << "libvirt_ephemeral_secrets = true\n";
        std::ofstream(dir / "connector.json") << R"({"initiator":")" << initiator << R"(","multipath":false})";
    }
    static void TearDownTestSuite() {
        libvirt.reset();
        tgtd.reset();
        fs::remove_all(dir);
    }

    static std::string volume_id(const std::string &name) { return "e2e-" + std::to_string(::getpid()) + "-" + name; }

    static Json::Value connection_info(const std::vector<std::string> &portals, int tid, const std::string &name,
                                       const std::string *password = nullptr) {
        Json::Value data;
        for (const auto &p : portals) {
            data["target_portals"].append(p);
            data["target_iqns"].append(tgtd->make_iqn(tid == chap_tid ? "chap" : "open"));
        }
        data["target_lun"] = 1;
        data["volume_id"] = volume_id(name);
        if (password != nullptr) {
            data["auth_method"] = "CHAP";
            data["auth_username"] = chap_user;
            data["auth_password"] = *password;
        }
        Json::Value ci;
        ci["driver_volume_type"] = "iscsi";
        ci["data"] = data;
        return ci;
    }

    CliRun volume_host(const std::string &args, const std::string &tag = "") {
        const fs::path out = dir / ("stdout" + tag);
        const fs::path err = dir / ("stderr" + tag);
        const std::string cmd = std::string(VOLUME_HOST_PATH) + " --config " + (dir / config).string() +
                                " --log-level info " + args + " >" + out.string() + " 2>" + err.string() + " </dev/null";
        const auto start = std::chrono::steady_clock::now();
        const int status = std::system(cmd.c_str());
        CliRun r;
        r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
        r.out = slurp(out);
        r.err = slurp(err);
        std::lock_guard lock(output_mutex);
        all_output += r.out + r.err;
        return r;
    }

    fs::path write(const std::string &name, const std::string &text) {
        std::ofstream(dir / name) << text;
        return dir / name;
    }

    // connect --attach; returns device_info.
    Json::Value attach(const Json::Value &ci, const std::string &name) {
        const fs::path ci_file = write(name + ".ci.json", compact(ci));
        auto r = volume_host("connect " + ci_file.string() + " " + (dir / "connector.json").string() + " --attach " +
                             libvirt->domain_name());
        EXPECT_EQ(r.exit_code, 0) << r.err;
        write(name + ".device.json", r.out);
        return parse(r.out);
    }

    void detach(const std::string &name) {
        auto r = volume_host("disconnect " + (dir / (name + ".ci.json")).string() + " " +
                             (dir / (name + ".device.json")).string() + " --detach " + libvirt->domain_name());
        EXPECT_EQ(r.exit_code, 0) << r.err;
    }

    static std::vector<std::string> our_secrets() {
        auto connection = std::make_shared<ivd::libvirt::Connection>(libvirt->uri());
        ivd::libvirt::LibvirtSecretStore store(connection);
        auto list = store.list_iscsi_secret_usages("iscsi-volume-driver:e2e-" + std::to_string(::getpid()));
        EXPECT_TRUE(list.ok());
        return list.ok() ? *list : std::vector<std::string>{};
    }

    // QEMU logs out asynchronously after the device is gone.
    static int sessions_after_settling(int tid) {
        int n = tgtd->session_count(tid);
        for (int i = 0; i < 100 && n != 0; ++i) {
            std::this_thread::sleep_for(50ms);
            n = tgtd->session_count(tid);
        }
        return n;
    }

    void TearDown() override {
        EXPECT_EQ(all_output.find(chap_password), std::string::npos) << "the CHAP password reached volume-host output";
    }

    static inline std::unique_ptr<ivd::testing::TgtdLab> tgtd;
    static inline std::unique_ptr<ivd::testing::LibvirtLab> libvirt;
    static inline ivd::testing::TgtdPortal second_portal;
    static inline int open_tid = 0;
    static inline int chap_tid = 0;
    static inline ivd::testing::TgtdLun open_lun;
    static inline ivd::testing::TgtdLun high_lun;  // tgtd serves it in flat space only (0x412c)
    static inline ivd::testing::TgtdLun chap_lun;
    static inline fs::path dir;
    std::string all_output;
    std::mutex output_mutex;
    std::string config = "volume-host.conf";  // in `dir`
};

// The last {"error": ...} object volume-host printed on stderr (after its log lines), or null.
inline Json::Value error_of(const std::string &err) {
    const auto at = err.rfind("{\"error\"");
    return at == std::string::npos ? Json::Value() : parse(err.substr(at))["error"];
}

// Disks in the domain's live XML backed by this target's LUN 1.
inline std::vector<volume_host::DomainDisk> disks_of_target(const std::string &domain_xml, const std::string &iqn) {
    std::vector<volume_host::DomainDisk> out;
    for (auto &d : volume_host::disks_in_domain_xml(domain_xml)) {
        if (d.source.name == iqn + "/1") out.push_back(std::move(d));
    }
    return out;
}

}  // namespace ivd::net_disk_e2e
