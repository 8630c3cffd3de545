// The config parse table against README's config table, and each room's part of the parsed config.
#include "request/driver_config.hpp"
#include "request/json_input.hpp"

#include <gtest/gtest.h>

#include <fstream>
#include <set>
#include <sstream>
#include <string>

namespace {

using namespace ivd::request;

// The backticked keys of the first column of README's "Driver configuration and the path decision" table.
std::set<std::string> readme_keys() {
    std::ifstream in(IVD_README_PATH);
    EXPECT_TRUE(in) << "cannot read " << IVD_README_PATH;
    std::set<std::string> keys;
    std::string line;
    bool in_section = false;
    bool in_table = false;
    while (std::getline(in, line)) {
        if (line.rfind("## ", 0) == 0) {
            if (in_section) break;
            in_section = line == "## Driver configuration and the path decision";
            continue;
        }
        if (!in_section) continue;
        if (line.rfind("|", 0) != 0) {
            if (in_table) break;  // the first table of the section only
            continue;
        }
        in_table = true;
        const std::string first = line.substr(1, line.find('|', 1) - 1);
        if (first.find("---") != std::string::npos || first.find('`') == std::string::npos) continue;  // header
        for (std::size_t open = first.find('`'); open != std::string::npos; open = first.find('`', open)) {
            const std::size_t close = first.find('`', open + 1);
            if (close == std::string::npos) break;
            keys.insert(first.substr(open + 1, close - open - 1));
            open = close + 1;
        }
    }
    return keys;
}

TEST(ConfigTable, ReadmeListsExactlyTheParsedKeys) {
    const std::set<std::string> documented = readme_keys();
    ASSERT_FALSE(documented.empty()) << "README's config table not found";
    std::set<std::string> parsed;
    for (std::string_view k : driver_config_keys()) {
        EXPECT_TRUE(parsed.insert(std::string(k)).second) << "key twice in the parse table: " << k;
    }
    for (const std::string &k : parsed) EXPECT_TRUE(documented.count(k)) << "parsed but not in README: " << k;
    for (const std::string &k : documented) EXPECT_TRUE(parsed.count(k)) << "in README but not parsed: " << k;
}

ivd::Result<DriverConfig> parse(const char *text) {
    auto doc = parse_object(text, "config");
    if (!doc) return std::move(doc).error();
    return parse_driver_config(*doc);
}

// Every key of the table is known: none of them is reported as unknown.
TEST(ConfigTable, TableKeysAreKnown) {
    auto c = parse(R"({"cleanup_volume_prefix":"x","host_facts_ttl_s":"0","libvirt_keepalive_count":"1"})");
    ASSERT_TRUE(c.ok()) << c.error().message;
    EXPECT_TRUE(c->unknown_keys.empty());
    EXPECT_EQ(c->cleanup_volume_prefix, "x");
    EXPECT_EQ(c->host_facts_ttl.count(), 0);
    EXPECT_EQ(c->libvirt_keepalive_count, 1);
}

// A key two rooms read reaches both parts.
TEST(ConfigTable, EachRoomGetsItsPart) {
    auto c = parse(R"({"path":"host","enforce_multipath":"true","probe_portals":"false","probe_timeout_ms":"250",
        "disk_cache":"writeback","disk_io":"threads","initiator_name_file":"/x/name","libvirt_uri":"test:///default",
        "libvirt_keepalive_interval_s":"0","iscsiadm_path":"/t/iscsiadm","multipath_path":"/t/multipath",
        "multipathd_path":"/t/multipathd","dmsetup_path":"/t/dmsetup","state_dir":"/s","cleanup_volume_prefix":"p","lock_dir":"/l",
        "login_timeout_ms":"99","qemu_iscsi":"false","iscsid_socket":"@i"})");
    ASSERT_TRUE(c.ok()) << c.error().message;

    const DecideConfig &decide = *c;
    EXPECT_EQ(decide.path, PathChoice::host);
    EXPECT_TRUE(decide.enforce_multipath);

    const HostFactsConfig facts = c->host_facts();
    EXPECT_EQ(facts.libvirt_uri, "test:///default");
    EXPECT_EQ(facts.libvirt_keepalive_interval_s, 0);
    EXPECT_EQ(facts.iscsiadm_path, "/t/iscsiadm");
    EXPECT_EQ(facts.multipath_path, "/t/multipath");
    EXPECT_EQ(facts.multipathd_path, "/t/multipathd");
    EXPECT_EQ(facts.initiator_name_file, "/x/name");
    EXPECT_EQ(facts.qemu_iscsi, Tristate::no);
    EXPECT_EQ(facts.iscsid_socket, "@i");

    const NetDiskConfig net = c->net_disk();
    EXPECT_FALSE(net.probe_portals);
    EXPECT_EQ(net.probe_timeout.count(), 250);
    EXPECT_EQ(net.disk_cache, "writeback");
    EXPECT_EQ(net.disk_io, "threads");
    EXPECT_EQ(net.initiator_name_file, "/x/name");
    EXPECT_EQ(net.libvirt_uri, "test:///default");
    EXPECT_EQ(net.libvirt_keepalive_interval_s, 0);
    EXPECT_EQ(net.state_dir, "/s");
    EXPECT_EQ(net.cleanup_volume_prefix, "p");

    const HostPathConfig host = c->host_path();
    EXPECT_EQ(host.probe_timeout.count(), 250);
    EXPECT_TRUE(host.enforce_multipath);
    EXPECT_EQ(host.disk_cache, "writeback");
    EXPECT_EQ(host.initiator_name_file, "/x/name");
    EXPECT_EQ(host.iscsiadm_path, "/t/iscsiadm");
    EXPECT_EQ(host.dmsetup_path, "/t/dmsetup");
    EXPECT_EQ(host.lock_dir, "/l");
    EXPECT_EQ(host.login_timeout.count(), 99);
}

// The parts' own defaults agree with the whole config's (one source each).
TEST(ConfigTable, PartsDefaultLikeTheWhole) {
    const DriverConfig whole;
    const HostPathConfig host;
    const NetDiskConfig net;
    EXPECT_EQ(host.probe_timeout, whole.host_path().probe_timeout);
    EXPECT_EQ(host.enforce_multipath, whole.host_path().enforce_multipath);
    EXPECT_EQ(host.initiator_name_file, whole.initiator_name_file);
    EXPECT_EQ(net.initiator_name_file, whole.initiator_name_file);
}

// Checks across keys run where they always did: after their row, before later keys are read.
TEST(ConfigTable, CrossKeyChecksKeepTheirPlace) {
    auto c = parse(R"({"path":"network","enforce_multipath":"true","libvirt_uri":""})");
    ASSERT_FALSE(c.ok());
    EXPECT_EQ(c.error().status, ivd::Status::config);
    EXPECT_EQ(c.error().field, "enforce_multipath") << c.error().message;
    c = parse(R"({"disk_cache":"writeback","initiator_name":7})");
    ASSERT_FALSE(c.ok());
    EXPECT_EQ(c.error().field, "disk_io") << c.error().message;
    EXPECT_NE(c.error().message.find("\"native\" needs disk_cache"), std::string::npos) << c.error().message;
}

}  // namespace
