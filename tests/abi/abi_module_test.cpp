// The ABI through a real dlopen of the built module: negotiation, tables, errors, ownership, threads.
#include "test_support.hpp"

#include <volume_driver/volume_driver.h>

#include <dlfcn.h>
#include <fcntl.h>
#include <unistd.h>

#include <json/json.h>

#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace {

std::mutex log_mutex;
std::vector<std::string> log_lines;

void record_log(void *, std::int32_t level, const char *component, const char *message) {
    const std::lock_guard<std::mutex> lock(log_mutex);
    log_lines.push_back(std::to_string(level) + " " + component + ": " + message);
}

const vd_host_table host = {sizeof(vd_host_table), nullptr, record_log};

constexpr auto &parse = ivd::testing::parse_json;

class Module : public ::testing::Test {
protected:
    void SetUp() override {
        handle_ = dlopen(IVD_MODULE_PATH, RTLD_NOW | RTLD_LOCAL);
        ASSERT_NE(handle_, nullptr) << dlerror();
        negotiate_ = reinterpret_cast<vd_negotiate_fn>(dlsym(handle_, VOLUME_DRIVER_ENTRY_NAME));
        ASSERT_NE(negotiate_, nullptr);
        std::uint32_t version = VD_ABI_VERSION_1;
        ASSERT_EQ(negotiate_(&version, &host, &table_), VD_OK);
        ASSERT_EQ(version, VD_ABI_VERSION_1);
    }
    void TearDown() override {
        if (handle_ != nullptr) dlclose(handle_);
    }
    vd_driver *create(const char *config) {
        vd_driver *d = nullptr;
        EXPECT_EQ(table_->create(config, &d), VD_OK) << table_->last_error();
        return d;
    }

    void *handle_ = nullptr;
    vd_negotiate_fn negotiate_ = nullptr;
    const vd_driver_table *table_ = nullptr;
};

const char *good_ci =
    R"({"driver_volume_type":"iscsi","data":{"target_portal":"127.0.0.1:3260","target_iqn":"iqn.2010-10.org.openstack:v1","target_lun":1,"volume_id":"v1"}})";
const char *connector = R"({"initiator":"iqn.1993-08.org.debian:01:test","multipath":false})";
const char *disk = R"({"bus":"scsi","dev":"sdb"})";

TEST_F(Module, NegotiatesDownUpAndRefuses) {
    std::uint32_t v = 7;  // a newer host: the driver answers the version it speaks
    const vd_driver_table *t = nullptr;
    EXPECT_EQ(negotiate_(&v, &host, &t), VD_OK);
    EXPECT_EQ(v, 2u);
    ASSERT_NE(t, nullptr);
    EXPECT_EQ(t->abi_version, 2u);
    v = 1;
    EXPECT_EQ(negotiate_(&v, &host, &t), VD_OK);
    EXPECT_EQ(v, 1u);
    EXPECT_EQ(t, table_) << "the same static table for the same version";
    v = 0;  // older than anything the driver speaks
    EXPECT_EQ(negotiate_(&v, &host, &t), VD_E_VERSION_REFUSED);
    EXPECT_EQ(v, 2u) << "a refusal reports the driver's newest version";
    EXPECT_EQ(t, nullptr);
    v = 1;
    EXPECT_EQ(negotiate_(&v, nullptr, &t), VD_E_INVALID_ARGUMENT);
    EXPECT_EQ(negotiate_(nullptr, &host, &t), VD_E_INVALID_ARGUMENT);
    vd_host_table tiny = host;
    tiny.struct_size = 4;
    EXPECT_EQ(negotiate_(&v, &tiny, &t), VD_E_INVALID_ARGUMENT);
}

TEST_F(Module, TableShape) {
    EXPECT_EQ(table_->struct_size, offsetof(vd_driver_table, create_for_host)) << "exactly version 1's layout";
    EXPECT_EQ(table_->abi_version, 1u);
    EXPECT_STREQ(table_->driver_name, "iscsi");
    EXPECT_STREQ(table_->volume_types, "iscsi");
    EXPECT_NE(table_->driver_version, nullptr);
    EXPECT_TRUE(VD_TABLE_HAS(table_, vd_driver_table, last_error));
    EXPECT_NE(table_->create, nullptr);
    EXPECT_NE(table_->destroy, nullptr);
    EXPECT_NE(table_->connect_volume, nullptr);
    EXPECT_NE(table_->disconnect_volume, nullptr);
    EXPECT_NE(table_->connector_properties, nullptr);
    EXPECT_EQ(table_->extend_volume, nullptr) << "optional slot: unsupported is NULL";
    // cleanup was appended after last_error within version 1: a host must check the size before reading it.
    EXPECT_EQ(offsetof(vd_driver_table, cleanup), offsetof(vd_driver_table, last_error) + sizeof(table_->last_error));
    EXPECT_EQ(offsetof(vd_driver_table, create_for_host), offsetof(vd_driver_table, cleanup) + sizeof(table_->cleanup))
        << "cleanup is version 1's last member; version 2 appends after it";
    EXPECT_EQ(sizeof(vd_driver_table), offsetof(vd_driver_table, disk_config) + sizeof(table_->disk_config))
        << "disk_config is version 2's last member";
    EXPECT_TRUE(VD_TABLE_HAS(table_, vd_driver_table, cleanup));
    EXPECT_NE(table_->cleanup, nullptr) << "this driver implements the optional cleanup slot";
    // A table as a version-1 driver built before the slot existed: VD_TABLE_HAS must say "absent".
    vd_driver_table older = *table_;
    older.struct_size = static_cast<std::uint32_t>(offsetof(vd_driver_table, cleanup));
    EXPECT_FALSE(VD_TABLE_HAS(&older, vd_driver_table, cleanup));
    EXPECT_TRUE(VD_TABLE_HAS(&older, vd_driver_table, last_error));
    table_->free_string(nullptr);
    table_->destroy(nullptr);
}

TEST_F(Module, CleanupRefusesUnknownFlagsAndNullArguments) {
    vd_driver *d = nullptr;
    ASSERT_EQ(table_->create(R"({"libvirt_uri":"test:///default"})", &d), VD_OK) << table_->last_error();
    char *report = reinterpret_cast<char *>(0x1);
    EXPECT_EQ(table_->cleanup(d, 0x80u, &report), VD_E_INVALID_ARGUMENT);
    EXPECT_EQ(report, nullptr) << "the out parameter is cleared on failure";
    EXPECT_NE(std::string(table_->last_error()).find("\"argument\":\"flags\""), std::string::npos) << table_->last_error();
    EXPECT_EQ(table_->cleanup(d, 0, nullptr), VD_E_INVALID_ARGUMENT);
    EXPECT_EQ(table_->cleanup(nullptr, 0, &report), VD_E_INVALID_ARGUMENT);
    table_->destroy(d);
}

TEST_F(Module, CreateRefusesBadConfigNamingTheKey) {
    vd_driver *d = reinterpret_cast<vd_driver *>(0x1);
    EXPECT_EQ(table_->create(R"({"probe_timeout_ms":"soon"})", &d), VD_E_CONFIG);
    EXPECT_EQ(d, nullptr);
    Json::Value e = parse(table_->last_error());
    EXPECT_EQ(e["code"].asString(), "invalid_config");
    EXPECT_EQ(e["argument"].asString(), "config");
    EXPECT_EQ(e["field"].asString(), "probe_timeout_ms");
    EXPECT_EQ(e["status"].asInt(), VD_E_CONFIG);
    EXPECT_EQ(table_->create("{not json", &d), VD_E_CONFIG);
    EXPECT_EQ(table_->create("{}", nullptr), VD_E_INVALID_ARGUMENT);
}

TEST_F(Module, LogsThroughTheHostCallback) {
    {
        const std::lock_guard<std::mutex> lock(log_mutex);
        log_lines.clear();
    }
    vd_driver *d = create(R"({"no_such_key":"1"})");
    table_->destroy(d);
    const std::lock_guard<std::mutex> lock(log_mutex);
    ASSERT_FALSE(log_lines.empty());
    EXPECT_NE(log_lines[0].find("no_such_key"), std::string::npos) << log_lines[0];
}

TEST_F(Module, FlagsMustBeZeroOrKnown) {
    vd_driver *d = create(R"({"qemu_iscsi":"yes"})");
    char *out = reinterpret_cast<char *>(0x1);
    EXPECT_EQ(table_->connect_volume(d, good_ci, connector, disk, 1, &out), VD_E_INVALID_ARGUMENT);
    EXPECT_EQ(out, nullptr) << "no output on failure";
    EXPECT_EQ(parse(table_->last_error())["argument"].asString(), "flags");
    EXPECT_EQ(table_->disconnect_volume(d, good_ci, nullptr, 0x80), VD_E_INVALID_ARGUMENT);
    EXPECT_EQ(parse(table_->last_error())["argument"].asString(), "flags");
    EXPECT_EQ(table_->connector_properties(d, 2, &out), VD_E_INVALID_ARGUMENT);
    table_->destroy(d);
}

TEST_F(Module, BadInputNamesFieldAndSuccessClearsError) {
    vd_driver *d = create(R"({"qemu_iscsi":"yes","initiator_name":"iqn.1993-08.org.debian:01:host"})");
    char *out = nullptr;
    const char *bad =
        R"({"driver_volume_type":"iscsi","data":{"target_portals":["127.0.0.1:3260","127.0.0.2:3260"],"target_iqns":["iqn.2010-10.org.openstack:v1","nope"]}})";
    EXPECT_EQ(table_->connect_volume(d, bad, connector, disk, 0, &out), VD_E_INVALID_ARGUMENT);
    Json::Value e = parse(table_->last_error());
    EXPECT_EQ(e["code"].asString(), "invalid_argument");
    EXPECT_EQ(e["argument"].asString(), "connection_info");
    EXPECT_EQ(e["field"].asString(), "data.target_iqns[1]");
    EXPECT_EQ(table_->connect_volume(d, good_ci, "[]", disk, 0, &out), VD_E_INVALID_ARGUMENT);
    EXPECT_EQ(parse(table_->last_error())["argument"].asString(), "connector");
    EXPECT_EQ(table_->connect_volume(d, good_ci, connector, nullptr, 0, &out), VD_E_INVALID_ARGUMENT);
    EXPECT_EQ(parse(table_->last_error())["field"].asString(), "dev");
    EXPECT_EQ(table_->connect_volume(d, nullptr, connector, disk, 0, &out), VD_E_INVALID_ARGUMENT);

    ASSERT_EQ(table_->connector_properties(d, 0, &out), VD_OK);
    EXPECT_STREQ(table_->last_error(), "{}");
    Json::Value props = parse(out);
    table_->free_string(out);
    EXPECT_EQ(props["initiator"].asString(), "iqn.1993-08.org.debian:01:host");
    EXPECT_TRUE(props["multipath"].isBool());
    EXPECT_TRUE(props["iscsi_volume_driver"]["qemu_iscsi"].asBool());
    table_->destroy(d);
}

TEST_F(Module, NeverWritesToStderr) {
    int pipe_fds[2];
    ASSERT_EQ(pipe(pipe_fds), 0);
    const int saved = dup(2);
    dup2(pipe_fds[1], 2);
    vd_driver *d = create(R"({"unknown":"x","qemu_iscsi":"yes"})");
    char *out = nullptr;
    table_->connect_volume(d, "{bad", connector, disk, 0, &out);
    table_->connect_volume(d, good_ci, connector, disk, 0, &out);
    table_->free_string(out);
    table_->destroy(d);
    dup2(saved, 2);
    close(saved);
    close(pipe_fds[1]);
    fcntl(pipe_fds[0], F_SETFL, O_NONBLOCK);
    char buf[256];
    const ssize_t n = read(pipe_fds[0], buf, sizeof buf);
    close(pipe_fds[0]);
    EXPECT_LE(n, 0) << std::string(buf, n > 0 ? static_cast<size_t>(n) : 0);
}

TEST_F(Module, ConcurrentCallsKeepPerThreadErrors) {
    vd_driver *d = create(R"({"qemu_iscsi":"yes"})");
    std::atomic<int> mismatches{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 8; ++t) {
        threads.emplace_back([&, t] {
            // Each thread fails on a field of its own and must read back exactly its own error.
            const std::string field = "data.target_luns[" + std::to_string(t % 2) + "]";
            std::string luns = t % 2 == 0 ? "[-1,1]" : "[1,-1]";
            const std::string ci =
                R"({"driver_volume_type":"iscsi","data":{"target_portals":["127.0.0.1:3260","127.0.0.2:3260"],"target_iqns":["iqn.2010-10.org.openstack:v","iqn.2010-10.org.openstack:v"],"target_luns":)" +
                luns + R"(,"volume_id":"vol)" + std::to_string(t) + R"("}})";
            for (int i = 0; i < 300; ++i) {
                char *out = nullptr;
                if (table_->connect_volume(d, ci.c_str(), connector, disk, 0, &out) != VD_E_INVALID_ARGUMENT) ++mismatches;
                if (parse(table_->last_error())["field"].asString() != field) ++mismatches;
                if (table_->disconnect_volume(d, ci.c_str(), R"({"type":"weird"})", 0) != VD_E_INVALID_ARGUMENT) ++mismatches;
                if (parse(table_->last_error())["field"].asString() != field) ++mismatches;
            }
        });
    }
    for (auto &th : threads) th.join();
    EXPECT_EQ(mismatches.load(), 0);
    table_->destroy(d);
}

TEST(ModuleFiles, NotADriverHasNoEntryPoint) {
    void *h = dlopen(IVD_NOT_A_DRIVER_PATH, RTLD_NOW | RTLD_LOCAL);
    ASSERT_NE(h, nullptr) << dlerror();
    EXPECT_EQ(dlsym(h, VOLUME_DRIVER_ENTRY_NAME), nullptr);
    dlclose(h);
}

TEST(ModuleFiles, FutureDriverRefusesVersionOne) {
    void *h = dlopen(IVD_FUTURE_DRIVER_PATH, RTLD_NOW | RTLD_LOCAL);
    ASSERT_NE(h, nullptr) << dlerror();
    auto fn = reinterpret_cast<vd_negotiate_fn>(dlsym(h, VOLUME_DRIVER_ENTRY_NAME));
    ASSERT_NE(fn, nullptr);
    std::uint32_t v = 1;
    const vd_driver_table *t = nullptr;
    EXPECT_EQ(fn(&v, &host, &t), VD_E_VERSION_REFUSED);
    EXPECT_EQ(v, 3u);
    dlclose(h);
}

}  // namespace
