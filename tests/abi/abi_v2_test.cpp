// ABI version 2 through a real dlopen: a host table per handle, disk_config, and create() refused in v2.
#include <volume_driver/volume_driver.h>

#include <gtest/gtest.h>

#include <dlfcn.h>
#include <sys/utsname.h>

#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace {

struct HostLog {
    std::mutex mutex;
    std::vector<std::string> lines;
};

void record(void *user, std::int32_t, const char *, const char *message) {
    auto *log = static_cast<HostLog *>(user);
    const std::lock_guard<std::mutex> g(log->mutex);
    log->lines.emplace_back(message);
}

class AbiV2 : public ::testing::Test {
protected:
    void SetUp() override {
        module_ = ::dlopen(IVD_MODULE_PATH, RTLD_NOW | RTLD_LOCAL);
        ASSERT_NE(module_, nullptr) << ::dlerror();
        negotiate_ = reinterpret_cast<vd_negotiate_fn>(::dlsym(module_, VOLUME_DRIVER_ENTRY_NAME));
        ASSERT_NE(negotiate_, nullptr);
    }
    void TearDown() override { ::dlclose(module_); }
    const vd_driver_table *table(const vd_host_table &host) {
        std::uint32_t version = VD_ABI_VERSION_2;
        const vd_driver_table *t = nullptr;
        EXPECT_EQ(negotiate_(&version, &host, &t), VD_OK);
        EXPECT_EQ(version, VD_ABI_VERSION_2);
        return t;
    }
    void *module_ = nullptr;
    vd_negotiate_fn negotiate_ = nullptr;
};

TEST_F(AbiV2, TableHasTheVersion2Slots) {
    const vd_host_table host{sizeof(vd_host_table), nullptr, nullptr};
    const vd_driver_table *t = table(host);
    ASSERT_NE(t, nullptr);
    ASSERT_TRUE(VD_TABLE_HAS(t, vd_driver_table, disk_config));
    EXPECT_NE(t->create_for_host, nullptr);
    EXPECT_NE(t->disk_config, nullptr);
    EXPECT_NE(t->extend_volume, nullptr);
    vd_driver *d = reinterpret_cast<vd_driver *>(1);
    EXPECT_EQ(t->create("{}", &d), VD_E_INVALID_ARGUMENT) << "v2 handles are made with create_for_host";
    EXPECT_EQ(d, nullptr);
    EXPECT_NE(std::string(t->last_error()).find("create_for_host"), std::string::npos);
}

// Two hosts in one process, negotiating and creating at once: each handle logs through its own host table only.
TEST_F(AbiV2, TwoHostsConcurrentlyEachSeeOnlyTheirOwnLogLines) {
    HostLog logs[2];
    auto run = [&](int i) {
        const vd_host_table host{sizeof(vd_host_table), &logs[i], record};
        for (int round = 0; round < 50; ++round) {
            const vd_driver_table *t = table(host);
            ASSERT_NE(t, nullptr);
            vd_driver *d = nullptr;
            const std::string config = "{\"host_" + std::to_string(i) + "_only\": 1}";
            ASSERT_EQ(t->create_for_host(&host, config.c_str(), &d), VD_OK) << t->last_error();
            t->destroy(d);
        }
    };
    std::thread a(run, 0), b(run, 1);
    a.join();
    b.join();
    for (int i = 0; i < 2; ++i) {
        ASSERT_EQ(logs[i].lines.size(), 50u) << "host " << i;
        for (const std::string &line : logs[i].lines) {
            EXPECT_NE(line.find("host_" + std::to_string(i) + "_only"), std::string::npos) << "host " << i << ": " << line;
        }
    }
}

TEST_F(AbiV2, DiskConfigIsPureAndWorksOnAVersion1DeviceInfo) {
    const vd_host_table host{sizeof(vd_host_table), nullptr, nullptr};
    const vd_driver_table *t = table(host);
    ASSERT_NE(t, nullptr);
    vd_driver *d = nullptr;
    ASSERT_EQ(t->create_for_host(&host, "{}", &d), VD_OK) << t->last_error();
    const char *ci = R"({"driver_volume_type":"iscsi","multiattach":true,"data":{"target_portal":"127.0.0.1:3291",
        "target_iqn":"iqn.2026-11.test:cap-chap","target_lun":1,"volume_id":"cap-chap-1","auth_method":"CHAP",
        "auth_username":"capuser","auth_password":"never-used","logical_block_size":512,"physical_block_size":4096}})";
    // A version 1 network device_info (the guest part says sdc; the disk is wanted as sdb now).
    const char *v1_info = R"({"type":"network","protocol":"iscsi","secret_uuid":"dd9a9877-eae7-4fe7-967f-f3a246716803",
        "secret_usage":"iscsi-volume-driver:cap-chap-1","attachment_id":"025de290787f3601c9ef0a4886f78521",
        "auth_username":"capuser","disk_xml":"<disk type='network' device='disk'><source protocol='iscsi' name='iqn.2026-11.test:cap-chap/1'><host name='127.0.0.1' port='3291'/><auth username='capuser'><secret type='iscsi' usage='iscsi-volume-driver:cap-chap-1'/></auth><initiator><iqn name='iqn.1993-08.org.debian:01:capture'/></initiator></source><target dev='sdc' bus='scsi'/></disk>",
        "portal":"127.0.0.1:3291","target_iqn":"iqn.2026-11.test:cap-chap","target_lun":1,"dev":"sdc","bus":"scsi"})";
    char *xml = nullptr;
    ASSERT_EQ(t->disk_config(d, ci, v1_info, R"({"dev":"sdb","unit":3,"boot_index":"2","whatever":1})", 0, &xml), VD_OK)
        << t->last_error();
    const std::string disk = xml;
    t->free_string(xml);
    for (const char *part : {"<target dev='sdb' bus='scsi'/>", "unit='3'", "<boot order='2'/>", "<shareable/>",
                             "logical_block_size='512'", "physical_block_size='4096'",
                             "<iqn name='iqn.1993-08.org.debian:01:capture'/>", "usage='iscsi-volume-driver:cap-chap-1'",
                             "<serial>cap-chap-1</serial>"}) {
        EXPECT_NE(disk.find(part), std::string::npos) << part << " in " << disk;
    }
    EXPECT_EQ(disk.find("never-used"), std::string::npos);
    ASSERT_EQ(t->disk_config(d, ci, v1_info, R"({"dev":"sdb","type":"lun"})", 0, &xml), VD_OK) << t->last_error();
    EXPECT_NE(std::string(xml).find("device='lun'"), std::string::npos) << xml;
    t->free_string(xml);
    struct Bad {
        const char *disk_info;
        const char *field;
    };
    for (const Bad &bad : {Bad{R"({"dev":"sdb","unit":99999999})", "unit"}, Bad{R"({"dev":"sdb","unit":"x"})", "unit"},
                           Bad{R"({"dev":"sdb","type":"cdrom"})", "type"}, Bad{R"({"dev":"vdb","type":"lun"})", "type"},
                           Bad{R"({"bus":"scsi"})", "dev"}, Bad{R"({"dev":"sdb","boot_index":0})", "boot_index"}}) {
        xml = reinterpret_cast<char *>(1);
        EXPECT_EQ(t->disk_config(d, ci, v1_info, bad.disk_info, 0, &xml), VD_E_INVALID_ARGUMENT) << bad.disk_info;
        EXPECT_EQ(xml, nullptr);
        EXPECT_NE(std::string(t->last_error()).find(std::string("\"field\":\"") + bad.field + "\""), std::string::npos)
            << bad.disk_info << ": " << t->last_error();
    }
    t->destroy(d);
}

}  // namespace

namespace {

// The connector: "platform" from uname (not a constant), "ip" and "host" from config when set.
TEST_F(AbiV2, ConnectorPlatformFromUnameAndIpHostFromConfig) {
    const vd_host_table host{sizeof(vd_host_table), nullptr, nullptr};
    const vd_driver_table *t = table(host);
    ASSERT_NE(t, nullptr);
    vd_driver *d = nullptr;
    ASSERT_EQ(t->create_for_host(&host, R"({"libvirt_uri":"test:///default","connector_ip":"192.0.2.7","connector_host":"compute-7"})", &d), VD_OK)
        << t->last_error();
    char *out = nullptr;
    ASSERT_EQ(t->connector_properties(d, 0, &out), VD_OK) << t->last_error();
    const std::string json = out;
    t->free_string(out);
    struct utsname u {};
    ASSERT_EQ(::uname(&u), 0);
    EXPECT_NE(json.find(std::string("\"platform\":\"") + u.machine + "\""), std::string::npos) << json;
    EXPECT_NE(json.find("\"ip\":\"192.0.2.7\""), std::string::npos) << json;
    EXPECT_NE(json.find("\"host\":\"compute-7\""), std::string::npos) << json;
    t->destroy(d);
}

}  // namespace
