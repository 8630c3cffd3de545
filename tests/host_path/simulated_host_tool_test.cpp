// simulated-host DIR volume-host ...: the whole host path through the CLI and the built module, against a real
// tgtd, on the simulated kernel and daemons.
#include "setup.hpp"
#include "test_support.hpp"
#include "tgtd_lab.hpp"

#include <json/json.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <signal.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

namespace fs = std::filesystem;

namespace {

using ivd::testing::slurp;

TEST(SimulatedHostTool, ConnectAndDisconnectThroughVolumeHost) {
    ivd::testing::TgtdLab lab;
    const auto second = lab.add_portal();
    const std::string iqn = lab.make_iqn("cli");
    const int tid = lab.create_target(iqn);
    lab.add_lun(tid, 1);
    const std::string password = "Cli-sim-pw-5e8b2d";
    lab.add_account("cliuser", password);
    lab.bind_account(tid, "cliuser");

    const fs::path dir = fs::temp_directory_path() / ("ivd-simhost-cli-" + std::to_string(::getpid()));
    fs::create_directories(dir);
    std::ofstream(dir / "vh.conf") << "[DEFAULT]\nvolume_drivers = iscsi=" << IVD_MODULE_PATH << "\n[iscsi]\n";
    Json::Value ci;
    ci["driver_volume_type"] = "iscsi";
    for (const auto &p : {lab.portal(), second}) {
        ci["data"]["target_portals"].append(p.to_string());
        ci["data"]["target_iqns"].append(iqn);
    }
    ci["data"]["target_lun"] = 1;
    ci["data"]["volume_id"] = "cli-sim-1";
    ci["data"]["auth_method"] = "CHAP";
    ci["data"]["auth_username"] = "cliuser";
    ci["data"]["auth_password"] = password;
    std::ofstream(dir / "ci.json") << Json::writeString(Json::StreamWriterBuilder(), ci);
    std::ofstream(dir / "connector.json") << R"({"initiator":"iqn.1993-08.org.debian:01:simcli","multipath":true})";

    ivd::simhost::own_sessions_of_simulated_host_tool();
    const std::string base = std::string(SIMULATED_HOST_PATH) + " " + (dir / "sim").string() + " " +
                             VOLUME_HOST_PATH + " --config " + (dir / "vh.conf").string() + " ";
    const std::string connect = base + "connect " + (dir / "ci.json").string() + " " + (dir / "connector.json").string() +
                                " --disk-info '{\"dev\":\"sdb\"}' >" + (dir / "device.json").string() + " 2>" +
                                (dir / "connect.err").string();
    ASSERT_EQ(WEXITSTATUS(std::system(connect.c_str())), 0) << slurp(dir / "connect.err");
    Json::Value info;
    std::istringstream(slurp(dir / "device.json")) >> info;
    EXPECT_EQ(info["type"].asString(), "block");
    EXPECT_EQ(info["attach_path"].asString(), "host");
    EXPECT_TRUE(info["multipath"].asBool());
    EXPECT_EQ(info["paths"].size(), 2u);
    EXPECT_NE(info["path"].asString().find("/dev/dm-"), std::string::npos);
    EXPECT_EQ(lab.session_count(tid), 2);

    // The LU grows on the storage; extend makes the host see it and reports the map's new size.
    ivd::simhost::grow_simulated_lu((dir / "sim").string(), info["scsi_wwn"].asString(), 40ull << 20);
    const std::string extend = base + "extend " + (dir / "ci.json").string() + " " + (dir / "device.json").string() +
                               " >" + (dir / "extend.out").string() + " 2>&1";
    ASSERT_EQ(WEXITSTATUS(std::system(extend.c_str())), 0) << slurp(dir / "extend.out");
    Json::Value extended;
    std::istringstream(slurp(dir / "extend.out")) >> extended;
    EXPECT_EQ(extended["size_bytes"].asUInt64(), 40ull << 20) << slurp(dir / "extend.out");

    const std::string disconnect = base + "disconnect " + (dir / "ci.json").string() + " " +
                                   (dir / "device.json").string() + " >" + (dir / "disconnect.out").string() + " 2>&1";
    ASSERT_EQ(WEXITSTATUS(std::system(disconnect.c_str())), 0) << slurp(dir / "disconnect.out");
    int sessions = lab.session_count(tid);
    for (int i = 0; i < 40 && sessions != 0; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        sessions = lab.session_count(tid);
    }
    EXPECT_EQ(sessions, 0);
    EXPECT_TRUE(fs::is_empty(dir / "sim" / "sys" / "block")) << "no path or dm device left";
    const std::string argv_log = slurp(dir / "sim" / "argv.log");
    EXPECT_NE(argv_log.find("--login"), std::string::npos);
    EXPECT_EQ(argv_log.find(password), std::string::npos);
    EXPECT_EQ((slurp(dir / "connect.err") + slurp(dir / "extend.out") + slurp(dir / "disconnect.out")).find(password), std::string::npos);
    fs::remove_all(dir);
}

// A test that dies halfway leaves no simulated session behind: the sessions end with the process the simulated
// host belongs to (IVD_SIM_OWNER_PID here, a stand-in test process), and the target sees them go.
TEST(SimulatedHostTool, SessionsEndWithTheProcessTheHostBelongsTo) {
    ivd::testing::TgtdLab lab;
    const std::string iqn = lab.make_iqn("owner");
    const int tid = lab.create_target(iqn);
    lab.add_lun(tid, 1);
    const fs::path dir = fs::temp_directory_path() / ("ivd-simhost-owner-" + std::to_string(::getpid()));
    fs::create_directories(dir);
    std::ofstream(dir / "vh.conf") << "[DEFAULT]\nvolume_drivers = iscsi=" << IVD_MODULE_PATH << "\n[iscsi]\n";
    Json::Value ci;
    ci["driver_volume_type"] = "iscsi";
    ci["data"]["target_portals"].append(lab.portal().to_string());
    ci["data"]["target_iqns"].append(iqn);
    ci["data"]["target_lun"] = 1;
    ci["data"]["volume_id"] = "owner-1";
    std::ofstream(dir / "ci.json") << Json::writeString(Json::StreamWriterBuilder(), ci);
    std::ofstream(dir / "connector.json") << R"({"initiator":"iqn.1993-08.org.debian:01:simowner","multipath":true})";

    const pid_t owner = ::fork();
    ASSERT_GE(owner, 0);
    if (owner == 0) {
        ::pause();
        ::_exit(0);
    }
    ivd::simhost::own_sessions_of_simulated_host_tool(owner);
    const std::string connect = std::string(SIMULATED_HOST_PATH) + " " + (dir / "sim").string() + " " +
                                VOLUME_HOST_PATH + " --config " + (dir / "vh.conf").string() + " connect " +
                                (dir / "ci.json").string() + " " + (dir / "connector.json").string() + " >" +
                                (dir / "device.json").string() + " 2>" + (dir / "connect.err").string();
    const int status = std::system(connect.c_str());
    ivd::simhost::own_sessions_of_simulated_host_tool();
    ::kill(owner, SIGKILL);
    ::waitpid(owner, nullptr, 0);
    ASSERT_EQ(WEXITSTATUS(status), 0) << slurp(dir / "connect.err");
    EXPECT_EQ(slurp(dir / "sim/state/owner").rfind(std::to_string(owner) + " ", 0), 0u);

    int sessions = lab.session_count(tid);
    for (int i = 0; i < 100 && sessions != 0; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        sessions = lab.session_count(tid);
    }
    EXPECT_EQ(sessions, 0) << "the simulated session outlived the process its host belongs to";
    fs::remove_all(dir);
}

// The tool itself: prepares DIR, hands COMMAND the extra config, and passes COMMAND's exit code on.
TEST(SimulatedHostTool, PreparesDirAndRunsTheCommand) {
    const fs::path dir = fs::temp_directory_path() / ("ivd-simhost-tool-" + std::to_string(::getpid()));
    fs::create_directories(dir);
    ivd::simhost::own_sessions_of_simulated_host_tool();
    const std::string tool = std::string(SIMULATED_HOST_PATH) + " " + (dir / "sim").string() + " ";
    const std::string shown = (dir / "shown.conf").string();
    ASSERT_EQ(WEXITSTATUS(std::system((tool + "sh -c 'cat \"$VOLUME_HOST_EXTRA_CONFIG\"' >" + shown).c_str())), 0);
    const std::string conf = slurp(shown);
    EXPECT_NE(conf.find("[iscsi]"), std::string::npos) << conf;
    EXPECT_NE(conf.find("iscsiadm_path = " + (dir / "sim/bin/iscsiadm").string() + "\n"), std::string::npos) << conf;
    EXPECT_NE(conf.find("sysfs_root = " + (dir / "sim/sys").string() + "\n"), std::string::npos) << conf;
    EXPECT_EQ(conf, slurp(dir / "sim/volume-host.conf"));
    EXPECT_TRUE(fs::exists(dir / "sim/bin/multipathd"));
    EXPECT_TRUE(fs::is_directory(dir / "sim/faults"));
    EXPECT_EQ(WEXITSTATUS(std::system((tool + "sh -c 'exit 7'").c_str())), 7) << "reusing DIR, passing the code on";
    EXPECT_EQ(WEXITSTATUS(std::system((tool + "/nonexistent/command 2>/dev/null").c_str())), 127);
    EXPECT_EQ(WEXITSTATUS(std::system((std::string(SIMULATED_HOST_PATH) + " 2>/dev/null").c_str())), 2);
    fs::remove_all(dir);
}

}  // namespace
