// data.addressing_mode on the simulated host with a real tgtd: which SCSI LUN the kernel is asked to scan, which
// H:C:T:L entry in sysfs is the volume, and its by-path link. tgtd reports LUNs of 256 and above in flat-space
// addressing (SAM-2's method 01b) and answers a LUN as the first level of the 8-byte LUN says, as a real array
// does; the simulated kernel addresses the target with the scanned number through libiscsi, whose first level is
// the kernel's (int_to_scsilun). So LUN 256 is reachable as SCSI LUN 16640 only, and SAM3-flat addresses LUN 1
// as 16385.
#include "test_support.hpp"
#include "driver/driver.hpp"
#include "setup.hpp"
#include "tgtd_lab.hpp"

#include <gtest/gtest.h>
#include <json/json.h>

#include <algorithm>
#include <filesystem>
#include <set>

namespace {

namespace fs = std::filesystem;
using ivd::testing::TgtdLab;

constexpr const char *initiator = "iqn.2004-10.org.example:lun-addressing-test";
constexpr auto &parse = ivd::testing::parse_json;
constexpr auto &write = ivd::testing::write_json;

class LunAddressingTest : public ::testing::Test {
protected:
    void SetUp() override {
        std::string templ = (fs::temp_directory_path() / "ivd-lun-addressing-XXXXXX").string();
        ASSERT_NE(::mkdtemp(templ.data()), nullptr);
        dir_ = templ;
        Json::Value config(Json::objectValue);
        for (const auto &[k, v] : ivd::simhost::prepare_simulated_host(dir_, initiator)) config[k] = v;
        config["device_wait_timeout_ms"] = "3000";
        config["multipath_wait_timeout_ms"] = "3000";
        iqn_ = lab_.make_iqn("addressing");
        tid_ = lab_.create_target(iqn_);
        lab_.add_lun(tid_, 1);
        lab_.add_lun(tid_, 256);
        while (lab_.portals().size() < 2) lab_.add_portal();
        ivd::DriverParts parts;
        ivd::HostFacts facts;
        facts.capabilities.host_iscsi = true;
        facts.capabilities.multipath = true;
        facts.initiator = initiator;
        parts.facts = facts;
        auto d = ivd::Driver::create(write(config).c_str(), {}, std::move(parts));
        ASSERT_TRUE(d.ok()) << d.error().message;
        driver_ = std::move(d).value();
    }
    void TearDown() override {
        driver_.reset();
        ivd::simhost::stop_simulated_sessions(dir_);
        std::error_code ec;
        fs::remove_all(dir_, ec);
    }

    // Both portals, one LUN; mode nullptr: no addressing_mode key.
    Json::Value ci(int lun, const char *mode) const {
        Json::Value c(Json::objectValue);
        c["driver_volume_type"] = "iscsi";
        Json::Value &d = c["data"];
        for (std::size_t i = 0; i < 2; ++i) {
            d["target_portals"].append(lab_.portals()[i].to_string());
            d["target_iqns"].append(iqn_);
        }
        d["target_lun"] = lun;
        d["volume_id"] = "vol-addressing";
        if (mode != nullptr) d["addressing_mode"] = mode;
        return c;
    }
    ivd::Result<Json::Value> connect(const Json::Value &c) {
        const std::string connector = std::string(R"({"initiator":")") + initiator + R"(","multipath":true})";
        auto r = driver_->connect_volume(write(c).c_str(), connector.c_str(), R"({"bus":"scsi","dev":"sdb"})", 0);
        if (!r) return r.error();
        return parse(*r);
    }
    // Every H:C:T:L entry of the simulated sessions that has a block device, by its L.
    std::multiset<std::int64_t> scsi_luns() const {
        std::multiset<std::int64_t> out;
        std::error_code ec;
        for (fs::recursive_directory_iterator it(dir_ / "sys/devices/platform", ec), end; !ec && it != end; it.increment(ec)) {
            const std::string name = it->path().filename().string();
            if (std::count(name.begin(), name.end(), ':') == 3 && fs::exists(it->path() / "block")) {
                out.insert(std::stoll(name.substr(name.rfind(':') + 1)));
            }
        }
        return out;
    }
    std::size_t sessions() const {
        std::size_t n = 0;
        std::error_code ec;
        for (fs::directory_iterator it(dir_ / "sys/class/iscsi_session", ec), end; !ec && it != end; it.increment(ec)) ++n;
        return n;
    }
    fs::path by_path(std::size_t portal, const std::string &lun_part) const {
        return dir_ / "dev/disk/by-path" / ("ip-" + lab_.portals()[portal].to_string() + "-iscsi-" + iqn_ + "-" + lun_part);
    }

    TgtdLab lab_;
    fs::path dir_;
    std::string iqn_;
    int tid_ = 0;
    std::unique_ptr<ivd::Driver> driver_;
};

// LUN 256 in SAM2 and SAM3-flat: scanned and matched as 16640 on every path, one map, device_info keeps LUN 256
// and the mode; a disconnect whose connection_info has no addressing_mode still finds everything by device_info.
TEST_F(LunAddressingTest, Lun256IsScannedAndMatchedAsFlatSpaceInSam2AndSam3Flat) {
    for (const char *mode : {"SAM2", "SAM3-flat"}) {
        SCOPED_TRACE(mode);
        auto info = connect(ci(256, mode));
        ASSERT_TRUE(info.ok()) << info.error().message;
        ASSERT_EQ((*info)["paths"].size(), 2u) << write(*info);
        EXPECT_TRUE((*info)["failed_portals"].empty()) << write(*info);
        EXPECT_EQ((*info)["addressing_mode"].asString(), mode);
        EXPECT_EQ((*info)["device_info_version"].asInt(), 4);
        for (const auto &p : (*info)["paths"]) EXPECT_EQ(p["lun"].asInt(), 256) << write(*info);
        EXPECT_EQ(scsi_luns(), (std::multiset<std::int64_t>{16640, 16640}));
        EXPECT_TRUE((*info)["multipath"].asBool()) << write(*info);
        EXPECT_TRUE(fs::is_symlink(by_path(0, "lun-0x4100000000000000"))) << "udev's name for SCSI LUN 16640";
        ASSERT_TRUE(driver_->disconnect_volume(write(ci(256, nullptr)).c_str(), write(*info).c_str(), 0).ok());
        EXPECT_TRUE(scsi_luns().empty());
        EXPECT_EQ(sessions(), 0u);
        EXPECT_EQ(lab_.session_count(tid_), 0);
    }
}

// SAM3-flat addresses every LUN in flat space: LUN 1 is SCSI LUN 16385, and it is the same LU as LUN 1 unaddressed.
TEST_F(LunAddressingTest, Sam3FlatAddressesLun1As16385) {
    auto plain = connect(ci(1, nullptr));
    ASSERT_TRUE(plain.ok()) << plain.error().message;
    EXPECT_FALSE(plain->isMember("addressing_mode")) << "SAM (the default) is not written";
    EXPECT_EQ(scsi_luns(), (std::multiset<std::int64_t>{1, 1}));
    const std::string wwid = (*plain)["scsi_wwn"].asString();
    ASSERT_TRUE(driver_->disconnect_volume(write(ci(1, nullptr)).c_str(), write(*plain).c_str(), 0).ok());

    auto flat = connect(ci(1, "SAM3-flat"));
    ASSERT_TRUE(flat.ok()) << flat.error().message;
    ASSERT_EQ((*flat)["paths"].size(), 2u) << write(*flat);
    EXPECT_EQ(scsi_luns(), (std::multiset<std::int64_t>{16385, 16385}));
    EXPECT_EQ((*flat)["scsi_wwn"].asString(), wwid) << "the same LU";
    EXPECT_TRUE(fs::is_symlink(by_path(1, "lun-0x4001000000000000")));
    ASSERT_TRUE(driver_->disconnect_volume(write(ci(1, "SAM3-flat")).c_str(), write(*flat).c_str(), 0).ok());
    EXPECT_TRUE(scsi_luns().empty());
    EXPECT_EQ(sessions(), 0u);
}

// The default stays as it was: LUN 256 without addressing_mode (or with SAM) is asked for as SCSI LUN 256, which
// this target does not serve (its LUN 256 is flat-addressed): the connect fails and leaves nothing behind.
TEST_F(LunAddressingTest, Lun256InSamIsAddressedAsItIsAndThisTargetDoesNotServeIt) {
    for (const char *mode : {static_cast<const char *>(nullptr), "SAM"}) {
        SCOPED_TRACE(mode ? mode : "absent");
        auto info = connect(ci(256, mode));
        ASSERT_FALSE(info.ok()) << write(*info);
        // tgtd reads SCSI LUN 256 (first level 01 00h, peripheral method, bus 1) as its LUN 0, the controller.
        EXPECT_NE(info.error().message.find(R"("stage":"probe")"), std::string::npos) << info.error().message;
        EXPECT_TRUE(scsi_luns().empty());
        EXPECT_EQ(sessions(), 0u);
        EXPECT_EQ(lab_.session_count(tid_), 0);
    }
}

// An unknown mode is refused before anything is done, naming data.addressing_mode.
TEST_F(LunAddressingTest, UnknownModeIsAnInvalidArgumentNamingTheField) {
    auto info = connect(ci(256, "SAM3_flat"));
    ASSERT_FALSE(info.ok());
    EXPECT_EQ(info.error().status, ivd::Status::invalid_argument);
    EXPECT_EQ(info.error().field, "data.addressing_mode") << info.error().message;
    EXPECT_FALSE(fs::exists(dir_ / "argv.log")) << "nothing may run";
}

}  // namespace
