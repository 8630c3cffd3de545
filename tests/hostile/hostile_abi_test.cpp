// Hostile inputs through the real ABI (dlopen of the built module). Every case either fails with a clear error
// that names the argument and field, or is accepted and then round-trips exactly through the emitted disk_xml:
// never injected markup, never a crash.
#include "hostile_cases.hpp"
#include "test_support.hpp"

#include <volume_driver/volume_driver.h>

#include <dlfcn.h>

#include <json/json.h>
#include <pugixml.hpp>

#include <gtest/gtest.h>

#include <cstring>
#include <map>
#include <optional>
#include <set>
#include <string>

namespace {

using namespace ivd::hostile;

using ivd::testing::parse_json;

const char *c_str(const std::optional<std::string> &s) { return s ? s->c_str() : nullptr; }

// Elements and attributes the driver writes; anything else would be injected.
const std::map<std::string, std::set<std::string>> allowed = {
    {"disk", {"type", "device"}},
    {"disk/driver", {"name", "type", "cache", "io", "discard"}},
    {"disk/source", {"protocol", "name"}},
    {"disk/source/host", {"name", "port"}},
    {"disk/source/auth", {"username"}},
    {"disk/source/auth/secret", {"type", "usage"}},
    {"disk/source/initiator", {}},
    {"disk/source/initiator/iqn", {"name"}},
    {"disk/target", {"dev", "bus"}},
    {"disk/iotune", {}},
    {"disk/serial", {}},
    {"disk/readonly", {}},
};

void expect_only_known_markup(const pugi::xml_node &node, const std::string &path) {
    const bool in_iotune = path.rfind("disk/iotune/", 0) == 0;
    if (!in_iotune) {
        ASSERT_TRUE(allowed.count(path)) << "unexpected element " << path;
        for (const auto &a : node.attributes()) EXPECT_TRUE(allowed.at(path).count(a.name())) << path << "@" << a.name();
    } else {
        EXPECT_TRUE(node.attributes().empty()) << path;
    }
    for (const auto &child : node.children()) {
        if (child.type() == pugi::node_pcdata) {
            EXPECT_TRUE(path == "disk/serial" || in_iotune) << "text inside " << path;
            continue;
        }
        ASSERT_EQ(child.type(), pugi::node_element) << "non-element node under " << path;
        expect_only_known_markup(child, path + "/" + child.name());
    }
}

class Hostile : public ::testing::TestWithParam<Case> {
protected:
    static void SetUpTestSuite() {
        handle_ = dlopen(IVD_MODULE_PATH, RTLD_NOW | RTLD_LOCAL);
        ASSERT_NE(handle_, nullptr) << dlerror();
        auto negotiate = reinterpret_cast<vd_negotiate_fn>(dlsym(handle_, VOLUME_DRIVER_ENTRY_NAME));
        ASSERT_NE(negotiate, nullptr);
        std::uint32_t version = VD_ABI_VERSION_1;
        const vd_host_table host = {sizeof(vd_host_table), nullptr, nullptr};
        ASSERT_EQ(negotiate(&version, &host, &table_), VD_OK);
        ASSERT_EQ(table_->create(config, &driver_), VD_OK) << table_->last_error();
    }
    static void TearDownTestSuite() {
        if (table_ != nullptr) table_->destroy(driver_);
        if (handle_ != nullptr) dlclose(handle_);
    }

    static void *handle_;
    static const vd_driver_table *table_;
    static vd_driver *driver_;
};
void *Hostile::handle_ = nullptr;
const vd_driver_table *Hostile::table_ = nullptr;
vd_driver *Hostile::driver_ = nullptr;

void check_round_trip(const Case &c, const std::string &device_info_text) {
    const Accepted &want = *c.accepted;
    const Json::Value info = parse_json(device_info_text);
    ASSERT_EQ(info["type"].asString(), "network");
    const std::string xml = info["disk_xml"].asString();
    pugi::xml_document doc;
    ASSERT_TRUE(doc.load_string(xml.c_str())) << xml;
    int roots = 0;
    for (const auto &n : doc.children()) {
        EXPECT_EQ(n.type(), pugi::node_element) << xml;
        ++roots;
    }
    ASSERT_EQ(roots, 1) << xml;
    const pugi::xml_node disk = doc.child("disk");
    ASSERT_TRUE(disk) << xml;
    expect_only_known_markup(disk, "disk");
    const pugi::xml_node source = disk.child("source");
    EXPECT_STREQ(source.attribute("protocol").value(), "iscsi");
    EXPECT_EQ(source.attribute("name").value(), want.iqn + "/" + std::to_string(want.lun)) << xml;
    EXPECT_EQ(source.child("host").attribute("name").value(), want.host) << xml;
    EXPECT_EQ(source.child("host").attribute("port").as_uint(), want.port) << xml;
    EXPECT_EQ(source.child("initiator").child("iqn").attribute("name").value(), std::string(initiator)) << xml;
    EXPECT_FALSE(source.child("auth")) << xml;
    EXPECT_EQ(disk.child("target").attribute("dev").value(), want.dev) << xml;
    EXPECT_EQ(disk.child("target").attribute("bus").value(), want.bus) << xml;
    EXPECT_EQ(disk.child("serial").text().get(), want.serial) << xml;
    EXPECT_EQ(static_cast<bool>(disk.child("readonly")), want.read_only) << xml;
    std::map<std::string, std::string> iotune;
    for (const auto &e : disk.child("iotune").children()) iotune[e.name()] = e.text().get();
    EXPECT_EQ(iotune, want.iotune) << xml;
    // device_info agrees with the XML it carries.
    EXPECT_EQ(info["target_iqn"].asString(), want.iqn);
    EXPECT_EQ(info["target_lun"].asInt64(), want.lun);
    EXPECT_EQ(info["dev"].asString(), want.dev);
}

TEST_P(Hostile, ClearErrorOrExactRoundTrip) {
    const Case &c = GetParam();
    ASSERT_NE(c.accepted.has_value(), c.rejected.has_value()) << "a case is either accepted or rejected";
    char *out = nullptr;
    std::int32_t rc = 0;
    if (c.op == Op::connect) {
        rc = table_->connect_volume(driver_, c_str(c.connection_info), c_str(c.second), c_str(c.disk_info), c.flags,
                                    &out);
    } else {
        rc = table_->disconnect_volume(driver_, c_str(c.connection_info), c_str(c.second), c.flags);
    }
    const std::string error_text = table_->last_error();
    if (c.accepted) {
        ASSERT_EQ(rc, VD_OK) << error_text;
        ASSERT_NE(out, nullptr);
        const std::string device_info = out;
        table_->free_string(out);
        check_round_trip(c, device_info);
        EXPECT_EQ(table_->disconnect_volume(driver_, c_str(c.connection_info), device_info.c_str(), 0), VD_OK)
            << table_->last_error();
        return;
    }
    const std::string accepted = out != nullptr ? out : "";
    table_->free_string(out);
    ASSERT_NE(rc, VD_OK) << "accepted: " << accepted;
    EXPECT_TRUE(accepted.empty()) << "a failed call returned " << accepted;
    const Json::Value error = parse_json(error_text);
    EXPECT_EQ(error["status"].asInt(), rc) << error_text;
    EXPECT_EQ(error["code"].asString(), c.rejected->code) << error_text;
    EXPECT_EQ(error["argument"].asString(), c.rejected->argument) << error_text;
    EXPECT_EQ(error["field"].asString(), c.rejected->field) << error_text;
    EXPECT_FALSE(error["message"].asString().empty()) << error_text;
    EXPECT_EQ(error_text.find("hostile#secret!1"), std::string::npos) << "a password in last_error";
    EXPECT_LT(error_text.size(), 2048u) << "an error message must not echo a huge input";
}

INSTANTIATE_TEST_SUITE_P(Table, Hostile, ::testing::ValuesIn(cases()),
                         [](const ::testing::TestParamInfo<Case> &p) { return p.param.name; });

TEST(HostileTable, HasAtLeastFiftyCases) { EXPECT_GE(cases().size(), 50u); }

}  // namespace
