// device_info and ABI versions on the simulated host with a real tgtd: version-1 device_info captured from a real
// connect still disconnects; ABI v2 connects with no guest and gives the <disk> on demand.
#include "host_path_fixture.hpp"
#include "request/device_info.hpp"

#include <gtest/gtest.h>
#include <json/json.h>

#include <filesystem>
#include <string>
#include <vector>

namespace {

namespace fs = std::filesystem;
using ivd::testing::TgtdPortal;
using ivd::testing::slurp;
using ivd::testing::hostpath::HostPathTest;
using ivd::testing::hostpath::parse;
using ivd::testing::hostpath::write;

// A version-1 device_info captured from a real connect (tests/device_info/v1), with the capture's portals, IQN
// and simulated-host directory swapped for this test's.
Json::Value v1_fixture(const std::string &name, const std::vector<TgtdPortal> &ps, const std::string &iqn,
                       const fs::path &dir) {
    std::string text = slurp(fs::path(IVD_DEVICE_INFO_FIXTURES) / "v1" / (name + ".json"));
    auto swap = [&text](const std::string &from, const std::string &to) {
        for (auto at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size())) {
            text.replace(at, from.size(), to);
        }
    };
    swap("127.0.0.1:3291", ps[0].to_string());
    if (ps.size() > 1) swap("127.0.0.2:3291", ps[1].to_string());
    swap("iqn.2026-11.test:cap-plain", iqn);
    swap("/tmp/abi-v2-cap/sim1", dir.string());
    swap("/tmp/abi-v2-cap/sim2", dir.string());
    return parse(text);
}

TEST_F(HostPathTest, V1DeviceInfoFixturesStillDisconnect) {
    const std::string iqn = lab_.make_iqn("v1fix");
    const int tid = lab_.create_target(iqn);
    lab_.add_lun(tid, 1);
    const auto ps = portals(2);
    driver();
    for (const bool multipath : {false, true}) {
        SCOPED_TRACE(multipath ? "block_mp" : "block_single");
        const Json::Value ci = multipath ? lists(ps, {iqn, iqn}, {1, 1}) : lists({ps[0]}, {iqn}, {1});
        auto info = connect(ci, multipath);
        ASSERT_TRUE(info.ok()) << info.error().message;
        EXPECT_EQ((*info)["device_info_version"].asInt(), ivd::request::device_info_version);
        EXPECT_EQ(sessions(), multipath ? 2u : 1u);
        const Json::Value fixture = v1_fixture(multipath ? "block_mp" : "block_single", ps, iqn, dir_);
        auto d = disconnect(ci, fixture);
        ASSERT_TRUE(d.ok()) << d.error().message;
        EXPECT_EQ(sessions(), 0u);
        EXPECT_EQ(lab_.session_count(tid), 0);
        EXPECT_TRUE(fs::is_empty(dir_ / "sys" / "block")) << "no path or dm device left";
    }
}

// ABI v2 on the host path: connect with no guest, then the <disk> on demand for two guest devices (what a
// migration does); extend answers not_implemented (never a wrong size).
TEST_F(HostPathTest, V2ConnectWithoutGuestThenDiskConfigForTwoDevices) {
    const std::string iqn = lab_.make_iqn("v2noguest");
    const int tid = lab_.create_target(iqn);
    lab_.add_lun(tid, 1);
    const auto ps = portals(2);
    driver().set_abi_version(2);
    const Json::Value ci = lists(ps, {iqn, iqn}, {1, 1});
    auto text = driver_->connect_volume(write(ci).c_str(), connector(true).c_str(), nullptr, 0);
    ASSERT_TRUE(text.ok()) << text.error().message;
    const Json::Value info = parse(*text);
    EXPECT_FALSE(info.isMember("disk_xml")) << *text;
    EXPECT_FALSE(info.isMember("dev")) << *text;
    EXPECT_EQ(info["device_info_version"].asInt(), ivd::request::device_info_version);
    const std::string path = info["path"].asString();
    ASSERT_FALSE(path.empty());
    for (const char *dev : {"sdb", "sdc"}) {
        const std::string disk_info = std::string(R"({"dev":")") + dev + R"(","unit":2,"type":"lun"})";
        auto xml = driver_->disk_config(write(ci).c_str(), text->c_str(), disk_info.c_str(), 0);
        ASSERT_TRUE(xml.ok()) << xml.error().message;
        EXPECT_NE(xml->find("<source dev='" + path + "'/>"), std::string::npos) << *xml;
        EXPECT_NE(xml->find(std::string("<target dev='") + dev + "' bus='scsi'/>"), std::string::npos) << *xml;
        EXPECT_NE(xml->find("device='lun'"), std::string::npos) << *xml;
        EXPECT_NE(xml->find("unit='2'"), std::string::npos) << *xml;
    }
    auto size = driver_->extend_volume(write(ci).c_str(), text->c_str(), 0);
    ASSERT_TRUE(size.ok()) << size.error().message;
    EXPECT_EQ(parse(*size)["size_bytes"].asUInt64(), 16ull << 20);  // host_path_extend_test.cpp grows one
    auto d = disconnect(ci, info);
    ASSERT_TRUE(d.ok()) << d.error().message;
    EXPECT_EQ(sessions(), 0u);
}

}  // namespace
