// Extend and the ready-for-I/O check on the simulated host (real HostOps, stand-in tools, a real tgtd): a LU that
// grows (grow_simulated_lu) reaches the paths by rescan and the map by `multipathd resize map`; a path that is
// not active stops extend before anything changes; a map that does not read yet holds connect back, and one that
// never reads fails it with everything undone.
#include "host_path_fixture.hpp"

#include <chrono>
#include <thread>

namespace {

namespace fs = std::filesystem;
using ivd::testing::slurp;
using ivd::testing::hostpath::count_entries;
using ivd::testing::hostpath::HostPathTest;
using ivd::testing::hostpath::parse;
using ivd::testing::hostpath::write;

constexpr std::uint64_t lu_bytes = 16ull << 20;  // TgtdLab's default LU size
constexpr std::uint64_t grown_bytes = 48ull << 20;

class HostPathExtend : public HostPathTest {
protected:
    // A target with LUN 1 behind two portals, connected through the driver (ABI v2, no guest device).
    Json::Value connect_two_paths(const std::map<std::string, std::string> &config = {}) {
        iqn_ = lab_.make_iqn("extend");
        lab_.add_lun(lab_.create_target(iqn_), 1);
        driver(config).set_abi_version(2);
        ci_ = lists(portals(2), {iqn_, iqn_}, {1, 1});
        auto text = driver_->connect_volume(write(ci_).c_str(), connector(true).c_str(), nullptr, 0);
        if (!text) {
            connect_error_ = text.error();
            return Json::Value();
        }
        return parse(*text);
    }
    ivd::Result<std::uint64_t> extend(const Json::Value &info) {
        auto out = driver_->extend_volume(write(ci_).c_str(), write(info).c_str(), 0);
        if (!out) return out.error();
        return parse(*out)["size_bytes"].asUInt64();
    }
    std::uint64_t size_of(const std::string &device) const {
        return std::stoull(slurp(dir_ / "sys/block" / device / "size")) * 512;
    }
    static std::string device_name(const Json::Value &path) { return fs::path(path["device"].asString()).filename(); }

    std::string iqn_;
    Json::Value ci_;
    ivd::Error connect_error_;
};

TEST_F(HostPathExtend, AGrownLuReachesEveryPathAndTheMap) {
    const Json::Value info = connect_two_paths();
    ASSERT_TRUE(info.isObject()) << connect_error_.message;
    const std::string dm = info["dm"].asString();
    EXPECT_EQ(size_of(dm), lu_bytes);

    auto same = extend(info);  // nothing grew: the size as it was
    ASSERT_TRUE(same.ok()) << same.error().message;
    EXPECT_EQ(*same, lu_bytes);

    ivd::simhost::grow_simulated_lu(dir_, info["scsi_wwn"].asString(), grown_bytes);
    set_fault("resize_timeout", "2");  // multipathd busy twice (a reconfigure): retried within extend_timeout_ms
    auto size = extend(info);
    ASSERT_TRUE(size.ok()) << size.error().message;
    EXPECT_EQ(*size, grown_bytes);
    EXPECT_EQ(size_of(dm), grown_bytes);
    for (const auto &p : info["paths"]) EXPECT_EQ(size_of(device_name(p)), grown_bytes) << write(p);
    const std::string log = argv_log();
    EXPECT_NE(log.find("multipathd resize map " + info["multipath_id"].asString()), std::string::npos) << log;
    EXPECT_TRUE(disconnect(ci_, info).ok());
}

TEST_F(HostPathExtend, APathDownIsNamedAndNothingIsChanged) {
    const Json::Value info = connect_two_paths();
    ASSERT_TRUE(info.isObject()) << connect_error_.message;
    ivd::simhost::grow_simulated_lu(dir_, info["scsi_wwn"].asString(), grown_bytes);
    const Json::Value &down = info["paths"][1];
    std::ofstream(dir_ / "sys/block" / device_name(down) / "device/state") << "offline\n";

    auto size = extend(info);
    ASSERT_FALSE(size.ok());
    EXPECT_EQ(size.error().status, ivd::Status::unreachable);
    const std::string &m = size.error().message;
    EXPECT_NE(m.find(down["portal"].asString()), std::string::npos) << m;
    EXPECT_NE(m.find(device_name(down) + ": offline"), std::string::npos) << m;
    EXPECT_EQ(m.find(info["paths"][0]["portal"].asString()), std::string::npos) << m;
    // No rescan was asked for and the map was not resized: every size is the old one.
    EXPECT_EQ(size_of(info["dm"].asString()), lu_bytes);
    for (const auto &p : info["paths"]) {
        EXPECT_EQ(size_of(device_name(p)), lu_bytes);
        EXPECT_EQ(slurp(dir_ / "sys/block" / device_name(p) / "device/rescan"), "");
    }
    EXPECT_EQ(argv_log().find("resize"), std::string::npos);
    EXPECT_TRUE(disconnect(ci_, info).ok());
}

TEST_F(HostPathExtend, ConnectWaitsUntilTheMapReadsABlock) {
    set_fault("map_not_ready");
    // The map's node appears empty (nothing to read); a while later it reads, as a map whose path came up.
    std::jthread later([this](std::stop_token stop) {
        while (!stop.stop_requested()) {
            for (const auto &e : fs::directory_iterator(dir_ / "dev")) {
                if (e.path().filename().string().rfind("dm-", 0) != 0) continue;
                std::this_thread::sleep_for(std::chrono::milliseconds(300));
                std::ofstream(e.path()) << std::string(4096, 'x');
                return;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
        }
    });
    const auto start = std::chrono::steady_clock::now();
    const Json::Value info = connect_two_paths();
    ASSERT_TRUE(info.isObject()) << connect_error_.message;
    EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(300));
    EXPECT_EQ(info["paths"].size(), 2u);
    EXPECT_TRUE(disconnect(ci_, info).ok());
}

TEST_F(HostPathExtend, AMapThatNeverReadsFailsTheConnectAndLeavesNothing) {
    set_fault("map_not_ready");
    const Json::Value info = connect_two_paths({{"map_ready_timeout_ms", "300"}});
    ASSERT_FALSE(info.isObject()) << write(info);
    EXPECT_EQ(connect_error_.status, ivd::Status::timeout);
    EXPECT_NE(connect_error_.message.find("map_ready_timeout_ms"), std::string::npos) << connect_error_.message;
    EXPECT_NE(connect_error_.message.find("was not ready for I/O within 300 ms"), std::string::npos)
        << connect_error_.message;
    EXPECT_EQ(sessions(), 0u);
    EXPECT_EQ(count_entries(dir_ / "etc/iscsi/nodes" / iqn_), 0u);
    EXPECT_EQ(count_entries(dir_ / "sys/block"), 0u) << "no path or dm device left";
    EXPECT_EQ(count_entries(dir_ / "dev/mapper"), 0u);
    EXPECT_NE(argv_log().find("multipath -f"), std::string::npos);
}

}  // namespace
