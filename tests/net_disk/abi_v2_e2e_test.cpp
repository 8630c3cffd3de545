// ABI v2 on real parts: connect without a guest, then disk_config for sdb on one domain and sdc on a second
// one at once (multiattach, <shareable/>), bytes read through QEMU on each; extend after the LU grew; a
// device='lun' disk that QEMU opens as scsi-block.
#include "test_support.hpp"
#include "libvirt_lab.hpp"
#include "tgtd_lab.hpp"

#include <json/json.h>

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sys/wait.h>
#include <unistd.h>

namespace fs = std::filesystem;

namespace {

using ivd::testing::slurp;
constexpr auto &parse = ivd::testing::parse_json;
constexpr auto &compact = ivd::testing::write_json;
const std::string initiator = "iqn.1993-08.org.debian:01:abi-v2-e2e";

struct CliRun {
    int exit_code = -1;
    std::string out, err;
};

class AbiV2EndToEnd : public ::testing::Test {
protected:
    void SetUp() override {
        dir_ = fs::temp_directory_path() / ("ivd-abi-v2-e2e-" + std::to_string(::getpid()));
        fs::create_directories(dir_);
        std::ofstream(dir_ / "vh.conf") << "[DEFAULT]\nvolume_drivers = iscsi=" << IVD_MODULE_PATH << "\nrun_dir = "
                                        << (dir_ / "run").string() << "\n\n[libvirt]\nconnection_uri = " << one_.uri()
                                        << "\n\n[iscsi]\npath = network\nprobe_timeout_ms = 2000\nstate_dir = "
                                        << (dir_ / "state").string() << "\n";
        std::ofstream(dir_ / "connector.json") << R"({"initiator":")" << initiator << R"(","multipath":false})";
    }
    void TearDown() override { fs::remove_all(dir_); }

    CliRun vh(const std::string &args) {
        const std::string cmd = std::string(VOLUME_HOST_PATH) + " --config " + (dir_ / "vh.conf").string() + " " + args +
                                " >" + (dir_ / "out").string() + " 2>" + (dir_ / "err").string() + " </dev/null";
        const int status = std::system(cmd.c_str());
        return CliRun{WIFEXITED(status) ? WEXITSTATUS(status) : -1, slurp(dir_ / "out"), slurp(dir_ / "err")};
    }
    fs::path file(const std::string &name, const std::string &text) {
        std::ofstream(dir_ / name) << text;
        return dir_ / name;
    }
    static int sh(const std::string &cmd) { return WEXITSTATUS(std::system(cmd.c_str())); }

    ivd::testing::TgtdLab tgtd_;
    ivd::testing::LibvirtLab one_;
    ivd::testing::LibvirtLab two_;
    fs::path dir_;
};

TEST_F(AbiV2EndToEnd, ConnectWithoutGuestThenSharedDiskOnTwoDomainsThenExtend) {
    const std::string iqn = tgtd_.make_iqn("v2");
    const int tid = tgtd_.create_target(iqn);
    const auto lun = tgtd_.add_lun(tid, 1);
    Json::Value ci;
    ci["driver_volume_type"] = "iscsi";
    ci["multiattach"] = true;
    ci["data"]["target_portal"] = tgtd_.portal().to_string();
    ci["data"]["target_iqn"] = iqn;
    ci["data"]["target_lun"] = 1;
    ci["data"]["volume_id"] = "abi-v2-e2e-" + std::to_string(::getpid());
    const fs::path ci_file = file("ci.json", compact(ci));

    auto connected = vh("connect " + ci_file.string() + " " + (dir_ / "connector.json").string());
    ASSERT_EQ(connected.exit_code, 0) << connected.err;
    const Json::Value info = parse(connected.out);
    EXPECT_FALSE(info.isMember("disk_xml")) << connected.out;
    const fs::path info_file = file("device.json", connected.out);

    const std::string head(lun.head.begin(), lun.head.begin() + 16);
    struct Guest {
        ivd::testing::LibvirtLab &lab;
        const char *dev;
    };
    for (const Guest &g : {Guest{one_, "sdb"}, Guest{two_, "sdc"}}) {
        auto xml = vh("disk-config " + ci_file.string() + " " + info_file.string() + " --disk-info '{\"dev\":\"" +
                      g.dev + "\",\"bus\":\"scsi\"}'");
        ASSERT_EQ(xml.exit_code, 0) << xml.err;
        EXPECT_NE(xml.out.find("<shareable/>"), std::string::npos) << xml.out;
        const fs::path disk = file(std::string(g.dev) + ".xml", xml.out);
        ASSERT_EQ(sh("virsh -q -c " + g.lab.uri() + " attach-device " + g.lab.domain_name() + " " + disk.string() +
                     " --live >/dev/null"), 0);
    }
    // Both domains have the volume at once, each read through its own QEMU.
    EXPECT_EQ(one_.read_disk_bytes("sdb", 0, 16), head);
    EXPECT_EQ(two_.read_disk_bytes("sdc", 0, 16), head);

    // The LU grows on the storage (re-created over a larger backing file); extend reports the new size.
    const std::uint64_t bigger = lun.size_bytes * 2;
    tgtd_.tgtadm({"--lld", "iscsi", "--op", "delete", "--mode", "logicalunit", "--tid", std::to_string(tid), "--lun", "1"});
    fs::resize_file(lun.backing_file, bigger);
    tgtd_.tgtadm({"--lld", "iscsi", "--op", "new", "--mode", "logicalunit", "--tid", std::to_string(tid), "--lun", "1",
                  "-b", lun.backing_file});
    auto extended = vh("extend " + ci_file.string() + " " + info_file.string());
    ASSERT_EQ(extended.exit_code, 0) << extended.err;
    EXPECT_EQ(parse(extended.out)["size_bytes"].asUInt64(), bigger) << extended.out;
    // The host resizes the guest's view with it, as Nova does (virDomainBlockResize).
    EXPECT_EQ(sh("virsh -q -c " + one_.uri() + " blockresize " + one_.domain_name() + " sdb " + std::to_string(bigger) +
                 "B >/dev/null"), 0);
    EXPECT_EQ(sh("virsh -q -c " + one_.uri() + " domblkinfo " + one_.domain_name() + " sdb | grep -q 'Capacity: *" +
                 std::to_string(bigger) + "$'"), 0);

    // device='lun' (disk_info.type "lun"): QEMU hands the guest the LU itself (SCSI passthrough, scsi-block).
    auto lun_xml = vh("disk-config " + ci_file.string() + " " + info_file.string() +
                      " --disk-info '{\"dev\":\"sdd\",\"type\":\"lun\",\"unit\":3}'");
    ASSERT_EQ(lun_xml.exit_code, 0) << lun_xml.err;
    EXPECT_NE(lun_xml.out.find("device='lun'"), std::string::npos) << lun_xml.out;
    const fs::path lun_disk = file("sdd.xml", lun_xml.out);
    ASSERT_EQ(sh("virsh -q -c " + one_.uri() + " attach-device " + one_.domain_name() + " " + lun_disk.string() +
                 " --live >/dev/null"), 0);
    const fs::path qtree = dir_ / "qtree";
    ASSERT_EQ(sh("virsh -q -c " + one_.uri() + " qemu-monitor-command " + one_.domain_name() + " --hmp 'info qtree' >" +
                 qtree.string()), 0);
    EXPECT_NE(slurp(qtree).find("scsi-block"), std::string::npos) << "QEMU did not open the LU as scsi-block";
    EXPECT_EQ(sh("virsh -q -c " + one_.uri() + " detach-disk " + one_.domain_name() + " sdd --live >/dev/null"), 0);

    for (const Guest &g : {Guest{one_, "sdb"}, Guest{two_, "sdc"}}) {
        EXPECT_EQ(sh("virsh -q -c " + g.lab.uri() + " detach-disk " + g.lab.domain_name() + " " + g.dev + " --live >/dev/null"), 0);
    }
    auto gone = vh("disconnect " + ci_file.string() + " " + info_file.string());
    EXPECT_EQ(gone.exit_code, 0) << gone.err;
}

}  // namespace
