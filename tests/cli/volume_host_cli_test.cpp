// volume-host as people and scripts use it: exit codes, JSON on stdout, JSON errors on stderr.
#include "silent_libvirt.hpp"
#include "test_support.hpp"

#include <json/json.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <utility>
#include <sys/wait.h>
#include <unistd.h>

namespace fs = std::filesystem;

namespace {

struct CliRun {
    int exit_code = -1;
    std::string out;
    std::string err;
};

using ivd::testing::slurp;

constexpr auto &parse = ivd::testing::parse_json;

class VolumeHostCli : public ::testing::Test {
protected:
    void SetUp() override {
        dir_ = fs::temp_directory_path() / ("volume-host-cli-" + std::to_string(::getpid()) + "-" +
                                            ::testing::UnitTest::GetInstance()->current_test_info()->name());
        fs::create_directories(dir_);
    }
    void TearDown() override { fs::remove_all(dir_); }

    fs::path write(const std::string &name, const std::string &content) {
        const fs::path p = dir_ / name;
        std::ofstream(p) << content;
        return p;
    }
    fs::path config(const std::string &mapping, const std::string &extra = "") {
        return write("volume-host.conf", "[DEFAULT]\nvolume_drivers = " + mapping + "\n" + extra);
    }
    // `env` (e.g. "VAR=value ") goes before the command.
    CliRun run(const std::string &args, const std::string &env = "") {
        const fs::path out = dir_ / "stdout";
        const fs::path err = dir_ / "stderr";
        const std::string cmd = env + "timeout -s KILL 60 " + std::string(VOLUME_HOST_PATH) + " " + args + " >" + out.string() + " 2>" + err.string() + " </dev/null";
        const int status = std::system(cmd.c_str());
        CliRun r;
        r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
        r.out = slurp(out);
        r.err = slurp(err);
        return r;
    }
    fs::path dir_;
};

const std::string module = IVD_MODULE_PATH;

TEST_F(VolumeHostCli, DriversPrintsNegotiatedVersion) {
    auto r = run("--config " + config("iscsi=" + module).string() + " drivers");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    Json::Value v = parse(r.out);
    ASSERT_TRUE(v.isArray());
    ASSERT_EQ(v.size(), 1u);
    EXPECT_EQ(v[0]["volume_type"].asString(), "iscsi");
    EXPECT_EQ(v[0]["abi_version"].asInt(), 2) << "volume-host and the module both speak version 2";
    EXPECT_EQ(v[0]["driver_name"].asString(), "iscsi");
    EXPECT_EQ(v[0]["path"].asString(), module);
}

TEST_F(VolumeHostCli, BareNameIsLookedUpInDriverDir) {
    const fs::path module_dir = fs::path(module).parent_path();
    auto r = run("--config " + config("iscsi=" + fs::path(module).filename().string(),
                                      "volume_driver_dir = " + module_dir.string() + "\n").string() + " drivers");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(parse(r.out)[0]["path"].asString(), module);
}

TEST_F(VolumeHostCli, LoadFailuresAreDistinct) {
    struct {
        std::string mapping;
        const char *code;
        int exit_code;
        const char *mentions;
    } cases[] = {
        {"iscsi=/nonexistent/driver.so", "driver_not_found", 4, "/nonexistent/driver.so"},
        {"iscsi=" + std::string(IVD_NOT_A_DRIVER_PATH), "not_a_driver", 4, "volume_driver_negotiate"},
        {"iscsi=" + write("text.so", "not an ELF file").string(), "dlopen_failed", 4, "text.so"},
        {"iscsi=" + std::string(IVD_FUTURE_DRIVER_PATH), "version_refused", 4, "up to version 3"},
        {"iscsi=relative/dir/driver.so", "config_error", 3, "absolute path"},
    };
    for (const auto &c : cases) {
        auto r = run("--config " + config(c.mapping).string() + " drivers");
        EXPECT_EQ(r.exit_code, c.exit_code) << c.mapping << "\n" << r.err;
        Json::Value e = parse(r.err)["error"];
        EXPECT_EQ(e["code"].asString(), c.code) << r.err;
        EXPECT_NE(e["message"].asString().find(c.mentions), std::string::npos) << e["message"].asString();
        EXPECT_TRUE(r.out.empty());
    }
    // The refusal names both versions.
    auto r = run("--config " + config("iscsi=" + std::string(IVD_FUTURE_DRIVER_PATH)).string() + " drivers");
    EXPECT_NE(r.err.find("offers up to 2"), std::string::npos) << r.err;
}

// Regression: a table the host refuses was read after dlclose() (SIGSEGV), NULL slots were called, and a valid
// short version-1 table (no appended `cleanup`) was refused.
TEST_F(VolumeHostCli, MalformedDriverTablesAreRefusedClearly) {
    const std::string dir = IVD_BAD_TABLE_DIR;
    struct {
        const char *module;
        const char *code;
        const char *mentions;
    } cases[] = {
        {"too_small", "not_a_driver", "8 bytes"},
        {"bad_version", "version_refused", "answered ABI version 7"},
        {"null_create", "not_a_driver", "no create function"},
        {"null_destroy", "not_a_driver", "no destroy function"},
        {"null_connector_properties", "not_a_driver", "no connector_properties function"},
        {"null_connect_volume", "not_a_driver", "no connect_volume function"},
        {"null_disconnect_volume", "not_a_driver", "no disconnect_volume function"},
        {"null_free_string", "not_a_driver", "no free_string function"},
        {"null_last_error", "not_a_driver", "no last_error function"},
    };
    for (const auto &c : cases) {
        const std::string path = dir + "/bad_table_" + c.module + ".so";
        auto r = run("--config " + config("iscsi=" + path).string() + " drivers");
        EXPECT_EQ(r.exit_code, 4) << c.module << "\n" << r.err;
        Json::Value e = parse(r.err)["error"];
        EXPECT_EQ(e["code"].asString(), c.code) << r.err;
        EXPECT_NE(e["message"].asString().find(c.mentions), std::string::npos) << e["message"].asString();
        EXPECT_NE(e["message"].asString().find(path), std::string::npos) << e["message"].asString();
        EXPECT_TRUE(r.out.empty());
    }
}

TEST_F(VolumeHostCli, ShortVersionOneTableLoadsWithoutCleanup) {
    const std::string path = std::string(IVD_BAD_TABLE_DIR) + "/bad_table_short_v1.so";
    auto cfg = config("iscsi=" + path);
    auto r = run("--config " + cfg.string() + " drivers");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    Json::Value v = parse(r.out);
    EXPECT_EQ(v[0]["abi_version"].asInt(), 1);
    EXPECT_FALSE(v[0]["cleanup"].asBool());
    r = run("--config " + cfg.string() + " connector");
    EXPECT_EQ(r.exit_code, 0) << r.err;
    r = run("--config " + cfg.string() + " cleanup --dry-run");
    EXPECT_EQ(r.exit_code, 5) << r.err;
    EXPECT_EQ(parse(r.err)["error"]["code"].asString(), "cleanup_unsupported") << r.err;
}

TEST_F(VolumeHostCli, DriverConfigErrorsNameTheKey) {
    auto r = run("--config " + config("iscsi=" + module, "[iscsi]\nprobe_timeout_ms = soon\n").string() + " drivers");
    EXPECT_EQ(r.exit_code, 4);
    Json::Value e = parse(r.err)["error"];
    EXPECT_EQ(e["code"].asString(), "create_failed");
    EXPECT_NE(e["message"].asString().find("probe_timeout_ms"), std::string::npos);
}

TEST_F(VolumeHostCli, ConfigFileErrors) {
    EXPECT_EQ(run("--config " + (dir_ / "missing.conf").string() + " drivers").exit_code, 3);
    auto dup = write("dup.conf", "[DEFAULT]\nvolume_drivers = iscsi=/a.so\nvolume_drivers = iscsi=/b.so\n");
    auto r = run("--config " + dup.string() + " drivers");
    EXPECT_EQ(r.exit_code, 3);
    EXPECT_NE(r.err.find("duplicate"), std::string::npos);
    // Too long for the reader: an error naming the line, never a silently split line.
    auto long_line = write("long.conf", "[DEFAULT]\nvolume_drivers = iscsi=/" + std::string(5000, 'a') + ".so\n");
    r = run("--config " + long_line.string() + " drivers");
    EXPECT_EQ(r.exit_code, 3);
    EXPECT_NE(r.err.find("line 2"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("at most 4096"), std::string::npos) << r.err;
    auto bad_map = write("bad.conf", "[DEFAULT]\nvolume_drivers = iscsi\n");
    EXPECT_EQ(run("--config " + bad_map.string() + " drivers").exit_code, 3);
    // A relative driver directory would make dlopen() load code from the working directory.
    for (const char *dir : {"volume_driver_dir = drivers\n", "volume_driver_dir =\n"}) {
        auto relative = write("relative.conf", "[DEFAULT]\nvolume_drivers = iscsi=x.so\n" + std::string(dir));
        r = run("--config " + relative.string() + " drivers");
        EXPECT_EQ(r.exit_code, 3) << dir;
        EXPECT_NE(r.err.find("volume_driver_dir"), std::string::npos) << r.err;
    }
    auto none = write("none.conf", "[DEFAULT]\n");
    EXPECT_EQ(run("--config " + none.string() + " drivers").exit_code, 3);
}

// VOLUME_HOST_EXTRA_CONFIG: read after --config, its keys win (simulated-host points the driver elsewhere so).
TEST_F(VolumeHostCli, ExtraConfigKeysReplaceTheConfigFiles) {
    const auto good = config("iscsi=" + module, "[iscsi]\nprobe_timeout_ms = soon\n");
    auto r = run("--config " + good.string() + " drivers");
    ASSERT_EQ(r.exit_code, 4) << "the base file alone is refused: " << r.err;
    const auto fix = write("extra.conf", "[iscsi]\nprobe_timeout_ms = 2000\n");
    r = run("--config " + good.string() + " drivers", "VOLUME_HOST_EXTRA_CONFIG=" + fix.string() + " ");
    EXPECT_EQ(r.exit_code, 0) << "the extra file's key replaced the base file's: " << r.err;
    const auto bad = write("bad-extra.conf", "[iscsi]\nprobe_timeout_ms = later\n");
    r = run("--config " + config("iscsi=" + module).string() + " drivers",
            "VOLUME_HOST_EXTRA_CONFIG=" + bad.string() + " ");
    EXPECT_EQ(r.exit_code, 4) << "the extra file's key reached the driver";
    EXPECT_NE(r.err.find("probe_timeout_ms"), std::string::npos) << r.err;
    r = run("--config " + good.string() + " drivers", "VOLUME_HOST_EXTRA_CONFIG=" + (dir_ / "nope.conf").string() + " ");
    EXPECT_EQ(r.exit_code, 3);
    EXPECT_NE(r.err.find("nope.conf"), std::string::npos) << r.err;
    const auto relative = write("relative-extra.conf", "[DEFAULT]\nvolume_driver_dir = drivers\n");
    r = run("--config " + good.string() + " drivers", "VOLUME_HOST_EXTRA_CONFIG=" + relative.string() + " ");
    EXPECT_EQ(r.exit_code, 3);
    EXPECT_NE(r.err.find("relative-extra.conf"), std::string::npos) << "the error names both files: " << r.err;
}

// Regression: the README's example config failed ("config path: is 44 bytes long": its inline "# ..." comment
// was part of the value). The block is read from README.md so the two cannot drift; only the module mapping is
// made absolute for the build tree.
TEST_F(VolumeHostCli, ReadmeExampleConfigLoads) {
    const std::string readme = slurp(IVD_README_PATH);
    const auto section = readme.find("## volume-host");
    ASSERT_NE(section, std::string::npos);
    const auto begin = readme.find("```ini\n", section);
    ASSERT_NE(begin, std::string::npos);
    const auto end = readme.find("```", begin + 7);
    std::string block = readme.substr(begin + 7, end - begin - 7);
    ASSERT_NE(block.find("path = auto "), std::string::npos) << "the example lost its inline comment";
    ASSERT_NE(block.find("# auto | network | host"), std::string::npos);
    const std::string mapping = "volume_drivers = iscsi=iscsi_volume_driver.so";
    const auto at = block.find(mapping);
    ASSERT_NE(at, std::string::npos);
    block.replace(at, mapping.size(), "volume_drivers = iscsi=" + module);
    const auto cfg = write("readme.conf", block);
    auto r = run("--config " + cfg.string() + " drivers");
    EXPECT_EQ(r.exit_code, 0) << r.err;
    r = run("--config " + cfg.string() + " connector");
    EXPECT_EQ(r.exit_code, 0) << r.err;
}

// Regression: lines were limited to 198 bytes, so a legal 223-byte IQN (RFC 3720's maximum) could not be set.
TEST_F(VolumeHostCli, LongestInitiatorNameRoundTrips) {
    std::string iqn = "iqn.1993-08.org.debian:01:";
    iqn += std::string(223 - iqn.size(), 'x');
    ASSERT_EQ(iqn.size(), 223u);
    auto r = run("--config " + config("iscsi=" + module, "[iscsi]\ninitiator_name = " + iqn + "   # the longest\n").string() +
                 " connector");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(parse(r.out)["initiator"].asString(), iqn);
    // A 4096-byte line is still accepted.
    auto wide = config("iscsi=" + module, "[iscsi]\ninitiator_name = " + iqn + "\n; " + std::string(4094, 'c') + "\n");
    EXPECT_EQ(run("--config " + wide.string() + " drivers").exit_code, 0);
}

TEST_F(VolumeHostCli, ConnectorPrintsProperties) {
    auto r = run("--config " + config("iscsi=" + module, "[iscsi]\ninitiator_name = iqn.1993-08.org.debian:01:cli\n").string() + " connector");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    Json::Value v = parse(r.out);
    EXPECT_EQ(v["initiator"].asString(), "iqn.1993-08.org.debian:01:cli");
    EXPECT_TRUE(v["multipath"].isBool());
    EXPECT_TRUE(v["iscsi_volume_driver"].isObject());
}

TEST_F(VolumeHostCli, ConnectBadInputNamesFieldAndExits5) {
    auto cfg = config("iscsi=" + module, "[iscsi]\nqemu_iscsi = yes\n");
    auto ci = write("ci.json", R"({"driver_volume_type":"iscsi","data":{"target_portal":"127.0.0.1:99999","target_iqn":"iqn.2010-10.org.openstack:v"}})");
    auto conn = write("connector.json", R"({"initiator":"iqn.1993-08.org.debian:01:cli"})");
    auto r = run("--config " + cfg.string() + " connect " + ci.string() + " " + conn.string() + " --disk-info '{\"dev\":\"sdb\"}'");
    EXPECT_EQ(r.exit_code, 5);
    Json::Value e = parse(r.err)["error"];
    EXPECT_EQ(e["code"].asString(), "invalid_argument");
    EXPECT_EQ(e["field"].asString(), "data.target_portal");
    EXPECT_EQ(e["call"].asString(), "connect_volume");
    EXPECT_TRUE(r.out.empty());
}

// Regression: volume-host pre-parsed inputs with jsoncpp's lenient defaults: deep nesting ended in
// internal_error, a duplicated driver_volume_type was routed by its last value, and a NUL byte followed by junk
// was accepted. Now the driver's rules apply (README "Input validation"), refused as input_error (exit 2).
TEST_F(VolumeHostCli, InputsFollowTheDriversJsonRules) {
    auto cfg = config("iscsi=" + module);
    auto conn = write("connector.json", R"({"initiator":"iqn.1993-08.org.debian:01:cli"})");
    const std::string ok_ci = R"({"driver_volume_type":"iscsi","data":{}})";
    auto nested = [](int depth) {
        return R"({"driver_volume_type":"iscsi","data":)" + std::string(static_cast<std::size_t>(depth - 1), '[') +
               std::string(static_cast<std::size_t>(depth - 1), ']') + "}";
    };
    struct {
        const char *name;
        std::string text;
        const char *mentions;
    } cases[] = {
        {"deep", nested(5000), "deeper than 32"},
        {"depth33", nested(33), "deeper than 32"},
        {"duplicate", R"({"driver_volume_type":"rbd","driver_volume_type":"iscsi","data":{}})", "uplicate"},
        {"nul", ok_ci + std::string(1, '\0') + "junk", "NUL"},
        {"trailing", ok_ci + " junk", "not valid JSON"},
        {"comment", "/* c */" + ok_ci, "not valid JSON"},
        {"utf8", R"({"driver_volume_type":"iscsi","data":{"x":")" + std::string("\xC0\xAF") + "\"}}", "UTF-8"},
        {"surrogate", R"({"driver_volume_type":"iscsi","data":{"x":")" + std::string("\xED\xA0\x80") + "\"}}", "UTF-8"},
        {"huge", R"({"driver_volume_type":"iscsi","data":{"x":")" + std::string(1024 * 1024, 'a') + "\"}}", "1048576 bytes"},
        {"array", "[1]", "not a JSON object"},
    };
    for (const auto &c : cases) {
        const fs::path ci = dir_ / (std::string(c.name) + ".json");
        std::ofstream(ci, std::ios::binary) << c.text;
        auto r = run("--config " + cfg.string() + " connect " + ci.string() + " " + conn.string() +
                     " --disk-info '{\"dev\":\"sdb\"}'");
        EXPECT_EQ(r.exit_code, 2) << c.name << "\n" << r.err;
        Json::Value e = parse(r.err)["error"];
        EXPECT_EQ(e["code"].asString(), "input_error") << c.name << ": " << r.err;
        EXPECT_NE(e["message"].asString().find("CONNECTION_INFO"), std::string::npos) << c.name << ": " << r.err;
        EXPECT_NE(e["message"].asString().find(c.mentions), std::string::npos) << c.name << ": " << r.err;
    }
    // 32 levels is within the limit: the input reaches the driver (which then names the missing fields).
    const fs::path ci = write("depth32.json", nested(32));
    auto r = run("--config " + cfg.string() + " connect " + ci.string() + " " + conn.string() + " --disk-info '{\"dev\":\"sdb\"}'");
    EXPECT_EQ(r.exit_code, 5) << r.err;
    // The connector and device_info follow the same rules.
    const fs::path good_ci = write("good.json", ok_ci);
    const fs::path dup_conn = write("dup-connector.json", R"({"initiator":"a","initiator":"b"})");
    r = run("--config " + cfg.string() + " connect " + good_ci.string() + " " + dup_conn.string());
    EXPECT_EQ(r.exit_code, 2) << r.err;
    EXPECT_NE(parse(r.err)["error"]["message"].asString().find("CONNECTOR"), std::string::npos) << r.err;
    const fs::path dup_device = write("dup-device.json", R"({"type":"network","type":"block"})");
    r = run("--config " + cfg.string() + " disconnect " + good_ci.string() + " " + dup_device.string());
    EXPECT_EQ(r.exit_code, 2) << r.err;
    EXPECT_NE(parse(r.err)["error"]["message"].asString().find("DEVICE_INFO"), std::string::npos) << r.err;
}

// Regression: volume-host's libvirt calls had no bound: a URI whose daemon accepts and never answers hung
// connect --attach and disconnect --detach forever. Now [libvirt] connect_timeout_ms bounds the connect (and
// keepalive the calls after it).
TEST_F(VolumeHostCli, SilentLibvirtIsATimeoutWithinTheBound) {
    auto tcp = ivd::testing::SilentLibvirt::tcp();
    auto unix_listener = ivd::testing::SilentLibvirt::unix_socket(dir_ / "hung-libvirt.sock");
    const std::string uris[] = {tcp.uri(), unix_listener.uri()};
    auto ci = write("ci.json", R"({"driver_volume_type":"iscsi","data":{}})");
    auto conn = write("connector.json", R"({"initiator":"iqn.1993-08.org.debian:01:cli"})");
    auto device = write("device.json", R"({"type":"network","disk_xml":"<disk type='network' device='disk'><source protocol='iscsi' name='iqn.2010-10.org.openstack:v/1'><host name='127.0.0.1' port='3260'/></source><target dev='sdb' bus='scsi'/></disk>"})");
    for (const auto &uri : uris) {
        auto cfg = config("iscsi=" + module, "run_dir = " + (dir_ / "run").string() + "\n[libvirt]\nconnection_uri = " +
                                                 uri + "\nconnect_timeout_ms = 1000\n");
        for (const std::string &command : {"connect " + ci.string() + " " + conn.string() + " --attach ivd-nowhere",
                                           "disconnect " + ci.string() + " " + device.string() + " --detach ivd-nowhere"}) {
            const auto start = std::chrono::steady_clock::now();
            // `timeout` keeps a regression from hanging the suite.
            auto r = run("--config " + cfg.string() + " " + command);
            const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
            EXPECT_EQ(r.exit_code, 6) << uri << " " << command << "\n" << r.err;
            Json::Value e = parse(r.err)["error"];
            EXPECT_EQ(e["code"].asString(), "timeout") << r.err;
            EXPECT_NE(e["message"].asString().find(uri), std::string::npos) << r.err;
            EXPECT_LT(seconds, 5.0) << uri;
            EXPECT_TRUE(r.out.empty());
        }
    }
    // A refused connection is `unreachable`, at once.
    auto refused = config("iscsi=" + module, "[libvirt]\nconnection_uri = qemu+tcp://127.0.0.1:1/system\n");
    auto r = run("--config " + refused.string() + " connect " + ci.string() + " " + conn.string() + " --attach ivd-nowhere");
    EXPECT_EQ(r.exit_code, 6) << r.err;
    EXPECT_EQ(parse(r.err)["error"]["code"].asString(), "unreachable") << r.err;
    // The bounds are checked config values.
    for (const char *bad : {"connect_timeout_ms = soon", "connect_timeout_ms = 0", "keepalive_count = -1"}) {
        auto cfg = config("iscsi=" + module, std::string("[libvirt]\n") + bad + "\n");
        r = run("--config " + cfg.string() + " drivers");
        EXPECT_EQ(r.exit_code, 3) << bad << "\n" << r.err;
        EXPECT_NE(r.err.find("[libvirt]"), std::string::npos) << r.err;
    }
}

TEST_F(VolumeHostCli, UnmappedVolumeTypeAndUsage) {
    auto cfg = config("iscsi=" + module);
    auto ci = write("ci.json", R"({"driver_volume_type":"rbd","data":{}})");
    auto conn = write("connector.json", R"({})");
    auto r = run("--config " + cfg.string() + " connect " + ci.string() + " " + conn.string());
    EXPECT_EQ(r.exit_code, 3);
    EXPECT_EQ(parse(r.err)["error"]["code"].asString(), "no_driver");
    EXPECT_EQ(run("--config " + cfg.string() + " frobnicate").exit_code, 2);
    EXPECT_EQ(run("--config " + cfg.string() + " connect").exit_code, 2);
    EXPECT_EQ(run("--config " + cfg.string() + " connect - -").exit_code, 2);
    for (const char *sub : {"", "drivers", "connector", "connect", "disconnect"}) {
        auto help = run(std::string(sub) + " --help");
        EXPECT_EQ(help.exit_code, 0) << sub;
        EXPECT_NE(help.out.find("--"), std::string::npos) << sub;
    }
}

}  // namespace

namespace {

// disk-config (ABI v2) on a device_info a version 1 connect wrote: the <disk> for another guest device, no I/O;
// extend on the host path, whose path is not on this host, is refused naming it (never a wrong size).
TEST_F(VolumeHostCli, DiskConfigAndExtendOnVersion1DeviceInfo) {
    const fs::path conf = config("iscsi=" + module, "[iscsi]\nlibvirt_uri = test:///default\n");
    const fs::path ci = write("ci.json", R"({"driver_volume_type":"iscsi","data":{"target_portal":"127.0.0.1:3291","target_iqn":"iqn.2026-11.test:cap-chap","target_lun":1,"volume_id":"cap-chap-1","auth_method":"CHAP","auth_username":"capuser","auth_password":"x"}})");
    const std::string fixtures = IVD_DEVICE_INFO_FIXTURES;
    auto r = run("--config " + conf.string() + " disk-config " + ci.string() + " " + fixtures +
                 "/v1/net_chap.json --disk-info '{\"dev\":\"sde\",\"unit\":4}'");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find("<target dev='sde' bus='scsi'/>"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("unit='4'"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("usage='iscsi-volume-driver:cap-chap-1'"), std::string::npos) << r.out;
    auto bad = run("--config " + conf.string() + " disk-config " + ci.string() + " " + fixtures +
                   "/v1/net_chap.json --disk-info '{\"dev\":\"sde\",\"unit\":\"many\"}'");
    EXPECT_EQ(bad.exit_code, 5) << bad.err;
    EXPECT_NE(bad.err.find("\"field\":\"unit\""), std::string::npos) << bad.err;
    auto ext = run("--config " + conf.string() + " extend " + ci.string() + " " + fixtures + "/v1/block_single.json");
    EXPECT_EQ(ext.exit_code, 5) << ext.err;
    EXPECT_NE(ext.err.find("\"code\":\"unreachable\""), std::string::npos) << ext.err;
    EXPECT_NE(ext.err.find("127.0.0.1:3291 iqn.2026-11.test:cap-plain lun 1 (no device)"), std::string::npos) << ext.err;
}

}  // namespace
