// A volume's CHAP secret on real parts (tgtd, libvirtd, QEMU, volume-host processes): it lives until the last
// attachment of the volume is gone, whatever order connects, failed attaches and disconnects come in. A
// persistent domain is restarted to prove QEMU can still open the disk (it fetches the secret at start).
#include "test_support.hpp"
#include "libvirt/connection.hpp"
#include "libvirt/secret_store.hpp"
#include "libvirt_lab.hpp"
#include "tgtd_lab.hpp"

#include <json/json.h>

#include <gtest/gtest.h>

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <memory>
#include <random>
#include <thread>

namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

const std::string chap_user = "life-user";
const std::string chap_password = "Pw-life-5e0b7d";  // searched for in every output and state file
const std::string initiator = "iqn.1993-08.org.debian:01:life";

struct CliRun {
    int exit_code = -1;
    std::string out;
    std::string err;
};

class SecretLifetimeEndToEnd : public ::testing::Test {
protected:
    static void SetUpTestSuite() {
        tgtd = std::make_unique<ivd::testing::TgtdLab>();
        tid = tgtd->create_target(tgtd->make_iqn("life"));
        lun = tgtd->add_lun(tid, 1);
        tgtd->add_account(chap_user, chap_password);
        tgtd->bind_account(tid, chap_user);
        dom_a = std::make_unique<ivd::testing::LibvirtLab>(ivd::testing::LibvirtLabOptions{.persistent = true});
        dom_b = std::make_unique<ivd::testing::LibvirtLab>(ivd::testing::LibvirtLabOptions{.persistent = true});
        dir = fs::temp_directory_path() / ("ivd-secret-life-" + std::to_string(::getpid()));
        fs::create_directories(dir);
        write_config("volume-host.conf", (dir / "state").string());
        std::ofstream(dir / "connector.json") << R"({"initiator":")" << initiator << R"(","multipath":false})";
        Json::Value data;
        data["target_portal"] = tgtd->portal().to_string();
        data["target_iqn"] = tgtd->make_iqn("life");
        data["target_lun"] = 1;
        data["volume_id"] = "life-" + std::to_string(::getpid());
        data["auth_method"] = "CHAP";
        data["auth_username"] = chap_user;
        data["auth_password"] = chap_password;
        Json::Value ci;
        ci["driver_volume_type"] = "iscsi";
        ci["data"] = data;
        std::ofstream(dir / "ci.json") << ivd::testing::write_json(ci);
    }
    static void TearDownTestSuite() {
        dom_a.reset();
        dom_b.reset();
        tgtd.reset();
        fs::remove_all(dir);
    }
    static void write_config(const std::string &name, const std::string &state_dir) {
        std::ofstream(dir / name) << "[DEFAULT]\nvolume_drivers = iscsi=" << IVD_MODULE_PATH
                                  << "\n\n[libvirt]\nconnection_uri = qemu:///system\n\n[iscsi]\npath = network\n"
                                  << "state_dir = " << state_dir << "\n";
    }

    // One volume-host process; output files are per call, so threads can run it side by side.
    static CliRun volume_host(const std::string &args, const std::string &config = "volume-host.conf") {
        static std::atomic<unsigned> serial{0};
        const unsigned n = serial++;
        const fs::path out = dir / ("out." + std::to_string(n));
        const fs::path err = dir / ("err." + std::to_string(n));
        const std::string cmd = std::string(VOLUME_HOST_PATH) + " --config " + (dir / config).string() + " " + args +
                                " >" + out.string() + " 2>" + err.string() + " </dev/null";
        const int status = std::system(cmd.c_str());
        CliRun r{WIFEXITED(status) ? WEXITSTATUS(status) : -1, ivd::testing::slurp(out), ivd::testing::slurp(err)};
        EXPECT_EQ((r.out + r.err).find(chap_password), std::string::npos) << "the password reached volume-host output";
        fs::remove(out);
        fs::remove(err);
        return r;
    }
    static CliRun connect(const std::string &dev, const ivd::testing::LibvirtLab *lab) {
        std::string args = "connect " + (dir / "ci.json").string() + " " + (dir / "connector.json").string() +
                           " --disk-info '{\"dev\":\"" + dev + "\"}'";
        if (lab != nullptr) args += " --attach " + lab->domain_name();
        return volume_host(args);
    }
    static CliRun disconnect(const std::string &device_info, const ivd::testing::LibvirtLab *lab) {
        static std::atomic<unsigned> serial{0};
        const fs::path file = dir / ("device." + std::to_string(serial++) + ".json");
        std::ofstream(file) << device_info;
        std::string args = "disconnect " + (dir / "ci.json").string() + " " + file.string();
        if (lab != nullptr) args += " --detach " + lab->domain_name();
        return volume_host(args);
    }
    static bool secret_exists() {
        auto connection = std::make_shared<ivd::libvirt::Connection>("qemu:///system");
        ivd::libvirt::LibvirtSecretStore store(connection);
        auto found = store.find_iscsi_secret("iscsi-volume-driver:life-" + std::to_string(::getpid()));
        EXPECT_TRUE(found.ok()) << found.error().message;
        return found.ok() && found->has_value();
    }
    static std::string head(std::size_t n) { return std::string(lun.head.begin(), lun.head.begin() + static_cast<std::ptrdiff_t>(n)); }

    // No file under the state dir holds the password, and every file there is root's, 0600.
    static void expect_clean_state_dir() {
        if (!fs::exists(dir / "state")) return;
        for (const auto &e : fs::recursive_directory_iterator(dir / "state")) {
            if (!e.is_regular_file()) continue;
            EXPECT_EQ(ivd::testing::slurp(e.path()).find(chap_password), std::string::npos) << e.path();
            struct stat st {};
            ASSERT_EQ(::stat(e.path().c_str(), &st), 0);
            EXPECT_EQ(st.st_mode & 077, 0u) << e.path();
        }
    }

    static inline std::unique_ptr<ivd::testing::TgtdLab> tgtd;
    static inline std::unique_ptr<ivd::testing::LibvirtLab> dom_a;
    static inline std::unique_ptr<ivd::testing::LibvirtLab> dom_b;
    static inline int tid = 0;
    static inline ivd::testing::TgtdLun lun;
    static inline fs::path dir;
};

// Reported: the second connect's attach fails ("target sda already exists"), its rollback removed the secret
// the first attachment needs, and the domain's next start failed with "Secret not found".
TEST_F(SecretLifetimeEndToEnd, FailedSecondAttachKeepsTheFirstAttachmentsSecret) {
    auto first = connect("sda", dom_a.get());
    ASSERT_EQ(first.exit_code, 0) << first.err;
    auto second = connect("sda", dom_a.get());
    ASSERT_NE(second.exit_code, 0) << "attaching a second disk sda must fail";
    std::cout << "second attach: " << second.err.substr(second.err.rfind("{\"error\"") == std::string::npos ? 0 : second.err.rfind("{\"error\"")) << "\n";
    EXPECT_TRUE(secret_exists()) << "the failed connect's rollback removed the live attachment's secret";
    ASSERT_NO_THROW(dom_a->restart_domain()) << "QEMU cannot open the disk again";
    EXPECT_EQ(dom_a->read_disk_bytes("sda", 0, 16), head(16));
    auto off = disconnect(first.out, dom_a.get());
    ASSERT_EQ(off.exit_code, 0) << off.err;
    EXPECT_FALSE(secret_exists()) << "the last attachment's disconnect removes the secret";
    expect_clean_state_dir();
}

TEST_F(SecretLifetimeEndToEnd, MultiattachDetachFromOneDomainKeepsTheOthersSecret) {
    auto on_a = connect("sdb", dom_a.get());
    ASSERT_EQ(on_a.exit_code, 0) << on_a.err;
    auto on_b = connect("sdb", dom_b.get());
    ASSERT_EQ(on_b.exit_code, 0) << on_b.err;
    expect_clean_state_dir();
    auto off_a = disconnect(on_a.out, dom_a.get());
    ASSERT_EQ(off_a.exit_code, 0) << off_a.err;
    EXPECT_TRUE(secret_exists()) << "detaching from one domain removed the other's secret";
    ASSERT_NO_THROW(dom_b->restart_domain());
    EXPECT_EQ(dom_b->read_disk_bytes("sdb", 0, 16), head(16));
    auto off_b = disconnect(on_b.out, dom_b.get());
    ASSERT_EQ(off_b.exit_code, 0) << off_b.err;
    EXPECT_FALSE(secret_exists());
}

// 20 volume-host processes attach the volume to one domain at once (each asking for its own dev), check it, and
// detach. volume-host attaches a volume once per domain: the others are refused with already_attached and undo
// only their own connect. No other failure, no secret vanishes while an attachment is outstanding, none is left.
TEST_F(SecretLifetimeEndToEnd, ParallelAttachAndDetachOfOneVolume) {
    constexpr int n = 20;
    std::atomic<int> attached{0}, refused{0}, vanished{0};
    std::vector<std::string> errors(n);
    std::vector<std::thread> threads;
    for (int i = 0; i < n; ++i) {
        threads.emplace_back([&, i] {
            const std::string dev = std::string("sd") + static_cast<char>('c' + i);
            auto on = connect(dev, dom_a.get());
            if (on.exit_code != 0) {
                if (on.err.find("\"already_attached\"") != std::string::npos) {
                    ++refused;
                } else {
                    errors[i] = on.err;
                }
                return;
            }
            ++attached;
            std::mt19937 rng(static_cast<unsigned>(i));
            std::this_thread::sleep_for(std::chrono::milliseconds(rng() % 300));
            if (!secret_exists()) ++vanished;
            auto off = disconnect(on.out, dom_a.get());
            if (off.exit_code != 0) errors[i] = off.err;
        });
    }
    for (auto &t : threads) t.join();
    for (const auto &e : errors) {
        if (!e.empty()) ADD_FAILURE() << e;
    }
    EXPECT_GE(attached.load(), 1);
    EXPECT_EQ(attached.load() + refused.load(), n);
    EXPECT_EQ(vanished.load(), 0) << "a secret vanished while an attachment was outstanding";
    EXPECT_FALSE(secret_exists());
    expect_clean_state_dir();
}

TEST_F(SecretLifetimeEndToEnd, UnsafeStateDirIsRefusedNamingStateDir) {
    fs::create_directories(dir / "elsewhere");
    fs::create_directory_symlink(dir / "elsewhere", dir / "linked-state");
    fs::create_directories(dir / "open-state");
    fs::permissions(dir / "open-state", fs::perms::all);
    for (const char *state : {"linked-state", "open-state"}) {
        write_config("unsafe.conf", (dir / state).string());
        auto r = volume_host("connect " + (dir / "ci.json").string() + " " + (dir / "connector.json").string() +
                                 " --disk-info '{\"dev\":\"sdy\"}'",
                             "unsafe.conf");
        EXPECT_EQ(r.exit_code, 5) << r.err;
        const auto at = r.err.rfind("{\"error\"");
        ASSERT_NE(at, std::string::npos) << r.err;
        const Json::Value error = ivd::testing::parse_json(r.err.substr(at))["error"];
        EXPECT_EQ(error["code"].asString(), "invalid_config") << r.err;
        EXPECT_EQ(error["field"].asString(), "state_dir") << r.err;
        EXPECT_FALSE(secret_exists());
    }
}

}  // namespace
