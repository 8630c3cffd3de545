// QEMU iSCSI detection by reading binaries: built-in, modular (matching, foreign, missing module), neither;
// the new config keys; the libvirt XML feature gates. No libvirt needed here.
#include "host_facts/elf_file.hpp"
#include "host_facts/host_facts.hpp"
#include "request/driver_config.hpp"
#include "request/json_input.hpp"
#include "host_facts_support.hpp"

#include <json/json.h>

#include <gtest/gtest.h>

#include <filesystem>

namespace {

using namespace ivd;
using ivd::testing::TempDir;
namespace fs = std::filesystem;

constexpr const char *real_emulator = "/usr/bin/qemu-system-x86_64";
constexpr const char *real_module = "/usr/lib/x86_64-linux-gnu/qemu/block-iscsi.so";

bool has(const std::string &text, const std::string &part) { return text.find(part) != std::string::npos; }

TEST(ElfFile, ReadsNeededSymbolsAndStrings) {
    auto builtin = host_facts::ElfFile::open(IVD_FAKE_QEMU_BUILTIN);
    ASSERT_TRUE(builtin.ok()) << builtin.error().message;
    bool libiscsi = false;
    for (const auto &lib : builtin->needed()) libiscsi = libiscsi || lib.rfind("libiscsi.so", 0) == 0;
    EXPECT_TRUE(libiscsi);

    auto module = host_facts::ElfFile::open(IVD_FAKE_BLOCK_ISCSI);
    ASSERT_TRUE(module.ok()) << module.error().message;
    EXPECT_TRUE(module->defines_dynamic_symbol("qemu_module_dummy"));
    EXPECT_TRUE(module->defines_dynamic_symbol("qemu_stamp_0123456789abcdef0123456789abcdef01234567"));
    EXPECT_FALSE(module->defines_dynamic_symbol("qemu_stamp_0123"));  // whole names only

    auto modular = host_facts::ElfFile::open(IVD_FAKE_QEMU_MODULAR);
    ASSERT_TRUE(modular.ok());
    EXPECT_EQ(modular->find_hex_suffixed("qemu_stamp_"), "qemu_stamp_0123456789abcdef0123456789abcdef01234567");
    EXPECT_TRUE(modular->contains(std::string_view("/usr/lib/x86_64-linux-gnu/qemu\0", 31)));
}

TEST(ElfFile, RefusesWhatIsNotElf) {
    TempDir dir;
    std::ofstream(dir / "script") << "#!/bin/sh\nexec qemu \"$@\"\n";
    auto script = host_facts::ElfFile::open(dir / "script");
    ASSERT_FALSE(script.ok());
    EXPECT_EQ(script.error().status, Status::unsupported);
    std::ofstream(dir / "short") << "\x7f" "ELF";
    EXPECT_FALSE(host_facts::ElfFile::open(dir / "short").ok());
    auto missing = host_facts::ElfFile::open(dir / "missing");
    ASSERT_FALSE(missing.ok());
    EXPECT_EQ(missing.error().status, Status::not_found);
    EXPECT_FALSE(host_facts::ElfFile::open(dir.path()).ok());  // a directory

    // A truncated ELF (header claims sections beyond the end) is read without crashing, and yields nothing.
    {
        std::ifstream in(IVD_FAKE_BLOCK_ISCSI, std::ios::binary);
        std::string head(200, '\0');
        in.read(head.data(), static_cast<std::streamsize>(head.size()));
        std::ofstream(dir / "truncated.so", std::ios::binary) << head;
    }
    auto truncated = host_facts::ElfFile::open(dir / "truncated.so");
    ASSERT_TRUE(truncated.ok());
    EXPECT_TRUE(truncated->needed().empty());
    EXPECT_FALSE(truncated->defines_dynamic_symbol("qemu_module_dummy"));
}

TEST(QemuIscsiCheck, RealEmulatorAndModule) {
    // Debian's QEMU 7.2: modular, block-iscsi.so from qemu-block-extra, same build stamp.
    const QemuIscsiCheck c = check_qemu_iscsi(real_emulator, "");
    EXPECT_TRUE(c.available) << c.reason;
    EXPECT_EQ(c.module, real_module);
    EXPECT_TRUE(has(c.reason, "matches the build")) << c.reason;
}

TEST(QemuIscsiCheck, BuiltIn) {
    const QemuIscsiCheck c = check_qemu_iscsi(IVD_FAKE_QEMU_BUILTIN, "/nonexistent");
    EXPECT_TRUE(c.available) << c.reason;
    EXPECT_TRUE(has(c.reason, "links libiscsi.so")) << c.reason;
    EXPECT_TRUE(c.module.empty());
}

TEST(QemuIscsiCheck, NeitherBuiltInNorModular) {
    const QemuIscsiCheck c = check_qemu_iscsi(IVD_FAKE_QEMU_PLAIN, "");
    EXPECT_FALSE(c.available);
    EXPECT_TRUE(has(c.reason, "no iSCSI block driver")) << c.reason;
}

TEST(QemuIscsiCheck, ModuleHidden) {
    TempDir dir;
    const QemuIscsiCheck c = check_qemu_iscsi(real_emulator, dir.path());
    EXPECT_FALSE(c.available);
    EXPECT_TRUE(has(c.reason, "no block-iscsi.so in " + dir.path())) << c.reason;
    EXPECT_EQ(c.module, dir / "block-iscsi.so");
}

TEST(QemuIscsiCheck, ModuleOfTheSameBuild) {
    TempDir dir;
    fs::copy_file(IVD_FAKE_BLOCK_ISCSI, dir / "block-iscsi.so");
    const QemuIscsiCheck c = check_qemu_iscsi(IVD_FAKE_QEMU_MODULAR, dir.path());
    EXPECT_TRUE(c.available) << c.reason;
}

// The half-upgraded host: the module is there but QEMU would refuse it.
TEST(QemuIscsiCheck, ModuleOfAnotherBuild) {
    TempDir dir;
    fs::create_symlink(real_module, dir / "block-iscsi.so");
    QemuIscsiCheck c = check_qemu_iscsi(IVD_FAKE_QEMU_MODULAR, dir.path());
    EXPECT_FALSE(c.available);
    EXPECT_TRUE(has(c.reason, "different QEMU build")) << c.reason;
    EXPECT_TRUE(has(c.reason, "qemu-block-extra")) << c.reason;

    TempDir other;
    fs::copy_file(IVD_FAKE_BLOCK_ISCSI, other / "block-iscsi.so");
    c = check_qemu_iscsi(real_emulator, other.path());
    EXPECT_FALSE(c.available);
    EXPECT_TRUE(has(c.reason, "different QEMU build")) << c.reason;

    TempDir junk;
    fs::copy_file(IVD_FAKE_QEMU_PLAIN, junk / "block-iscsi.so");
    c = check_qemu_iscsi(real_emulator, junk.path());
    EXPECT_FALSE(c.available);
    EXPECT_TRUE(has(c.reason, "is not a QEMU module")) << c.reason;
}

TEST(QemuIscsiCheck, EmulatorMissingOrNotElf) {
    QemuIscsiCheck c = check_qemu_iscsi("/nonexistent/qemu-system-x86_64", "");
    EXPECT_FALSE(c.available);
    EXPECT_TRUE(has(c.reason, "cannot inspect the emulator")) << c.reason;
    TempDir dir;
    std::ofstream(dir / "kvm") << "#!/bin/sh\n";
    c = check_qemu_iscsi(dir / "kvm", "");
    EXPECT_FALSE(c.available);
    EXPECT_TRUE(has(c.reason, "not a")) << c.reason;
}

TEST(LibvirtXmlFeatures, VersionGates) {
    auto f = libvirt_xml_features(9000000);
    EXPECT_TRUE(f.auth_in_source);
    EXPECT_TRUE(f.initiator);
    EXPECT_TRUE(f.reason.empty());
    f = libvirt_xml_features(4007000);
    EXPECT_TRUE(f.auth_in_source && f.initiator);
    f = libvirt_xml_features(4006000);
    EXPECT_TRUE(f.auth_in_source);
    EXPECT_FALSE(f.initiator);
    EXPECT_TRUE(has(f.reason, "<initiator> is omitted")) << f.reason;
    f = libvirt_xml_features(3009000);
    EXPECT_TRUE(f.auth_in_source);
    f = libvirt_xml_features(3008999);
    EXPECT_FALSE(f.auth_in_source);
    EXPECT_FALSE(f.initiator);
    EXPECT_TRUE(has(f.reason, "<auth> goes under <disk>")) << f.reason;
    f = libvirt_xml_features(0);  // unknown: the current forms
    EXPECT_TRUE(f.auth_in_source && f.initiator);
    EXPECT_TRUE(has(f.reason, "unknown")) << f.reason;
    EXPECT_EQ(format_version(9000000), "9.0.0");
    EXPECT_EQ(format_version(7002011), "7.2.11");
    EXPECT_EQ(format_version(0), "unknown");
}

Result<request::DriverConfig> config_of(const std::string &json) {
    auto doc = request::parse_object(json.c_str(), "config");
    if (!doc) return std::move(doc).error();
    return request::parse_driver_config(*doc);
}

TEST(HostFactsConfig, Keys) {
    auto c = config_of(R"({"qemu_emulator":"/opt/qemu/bin/qemu-system-x86_64","qemu_module_dir":"/opt/qemu/lib",
        "iscsid_socket":"/run/x.sock","multipathd_socket":"@mp","host_facts_ttl_s":"0"})");
    ASSERT_TRUE(c.ok()) << c.error().message;
    EXPECT_EQ(c->qemu_emulator, "/opt/qemu/bin/qemu-system-x86_64");
    EXPECT_EQ(c->qemu_module_dir, "/opt/qemu/lib");
    EXPECT_EQ(c->iscsid_socket, "/run/x.sock");
    EXPECT_EQ(c->multipathd_socket, "@mp");
    EXPECT_EQ(c->host_facts_ttl.count(), 0);
    EXPECT_TRUE(c->unknown_keys.empty());

    const request::DriverConfig defaults;
    EXPECT_TRUE(defaults.qemu_emulator.empty());
    EXPECT_TRUE(defaults.qemu_module_dir.empty());
    EXPECT_EQ(defaults.iscsid_socket, "@ISCSIADM_ABSTRACT_NAMESPACE");
    EXPECT_EQ(defaults.multipathd_socket, "@/org/kernel/linux/storage/multipathd");
    EXPECT_EQ(defaults.host_facts_ttl.count(), 300);

    for (const char *bad : {R"({"qemu_emulator":"qemu-system-x86_64"})", R"({"qemu_module_dir":""})",
                            R"({"iscsid_socket":"relative"})", R"({"multipathd_socket":"@"})",
                            R"({"host_facts_ttl_s":-1})", R"({"host_facts_ttl_s":"forever"})"}) {
        auto r = config_of(bad);
        ASSERT_FALSE(r.ok()) << bad;
        EXPECT_EQ(r.error().status, Status::config) << bad;
        EXPECT_EQ(r.error().argument, "config") << bad;
        EXPECT_FALSE(r.error().field.empty()) << bad;
    }
}

}  // namespace
