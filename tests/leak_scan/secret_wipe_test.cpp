// Are secrets wiped when their memory is freed? This binary replaces the global operator new/delete (allowed by
// the standard: they are replaceable) so it can look at a block at the moment it is handed back, while it is still
// ours to read. What it proves, and what not:
//   - SecretString: the exact buffer that held the password is all zero when it is deleted (destructor, and the
//     old buffer on assignment). Nothing here reads freed memory.
//   - A whole connect + disconnect through the Driver (fakes below the paths): every heap block freed through
//     operator delete is searched for the password, and none may hold it: not the JSON parser's (its scratch
//     stack is overwritten before it is freed, its reader's stack lives in a wiping allocator), not the driver's
//     (SecretString, the parsed document, messages). The parser is also measured on its own first.
//   - Not covered: memory freed with free() (the reader's stack, which wipes itself; libvirt's and libiscsi's
//     buffers), stack copies, registers, and small strings kept inline (the test password is longer than any
//     small-string buffer).
#include "driver/driver.hpp"
#include "libvirt/secret_store.hpp"
#include "net_disk/network_disk_path.hpp"
#include "request/json_input.hpp"

#include <volume_driver/volume_driver.h>

#include <gtest/gtest.h>

#include <malloc.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <new>

namespace {

constexpr char password[] = "WipeCheck-ChapPw-7d3b9e1f5a";
constexpr std::size_t password_len = sizeof(password) - 1;

std::atomic<const void *> watched{nullptr};
unsigned char snapshot[64];
std::atomic<std::size_t> snapshot_len{0};
std::atomic<bool> scanning{false};
std::atomic<int> hits{0};

void inspect(void *p, std::size_t size) noexcept {
    if (p == nullptr) return;
    const void *w = watched.load();
    if (w != nullptr && w == p) {
        const std::size_t n = size < sizeof snapshot ? size : sizeof snapshot;
        std::memcpy(snapshot, p, n);
        snapshot_len = n;
        watched = nullptr;
    }
    if (scanning.load() && size >= password_len && ::memmem(p, size, password, password_len) != nullptr) ++hits;
}

}  // namespace

// Replacements: malloc underneath; delete inspects the block before giving it back. For unsized delete the
// block's usable size is read (bytes past the request are the allocator's slack, never another object).
void *operator new(std::size_t n) {
    if (void *p = std::malloc(n != 0 ? n : 1)) return p;
    throw std::bad_alloc();
}
void *operator new[](std::size_t n) {
    if (void *p = std::malloc(n != 0 ? n : 1)) return p;
    throw std::bad_alloc();
}
void operator delete(void *p) noexcept {
    if (p != nullptr) inspect(p, ::malloc_usable_size(p));
    std::free(p);
}
void operator delete[](void *p) noexcept {
    if (p != nullptr) inspect(p, ::malloc_usable_size(p));
    std::free(p);
}
void operator delete(void *p, std::size_t n) noexcept {
    inspect(p, n);
    std::free(p);
}
void operator delete[](void *p, std::size_t n) noexcept {
    inspect(p, n);
    std::free(p);
}

namespace {

bool all_zero(std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) {
        if (snapshot[i] != 0) return false;
    }
    return true;
}

TEST(SecretWipe, SecretStringBufferIsZeroWhenDeleted) {
    auto *s = new ivd::SecretString(password);
    ASSERT_EQ(s->size(), password_len);
    snapshot_len = 0;
    watched = s->reveal().data();
    delete s;
    ASSERT_EQ(watched.load(), nullptr) << "the buffer was not released through operator delete[]";
    ASSERT_GE(snapshot_len.load(), password_len + 1);
    EXPECT_TRUE(all_zero(password_len + 1)) << "the password's bytes (and the terminator) must be wiped";
}

TEST(SecretWipe, AssignmentWipesTheOldValue) {
    ivd::SecretString a{std::string_view(password)};
    const ivd::SecretString b{"another-secret-value-0123456789"};
    snapshot_len = 0;
    watched = a.reveal().data();
    a = b;  // copy-assign: a's old buffer goes
    ASSERT_EQ(watched.load(), nullptr);
    EXPECT_TRUE(all_zero(password_len + 1));

    ivd::SecretString c{std::string_view(password)};
    snapshot_len = 0;
    watched = c.reveal().data();
    c = ivd::SecretString("third-secret-value-abcdefghijkl");  // move-assign
    ASSERT_EQ(watched.load(), nullptr);
    EXPECT_TRUE(all_zero(password_len + 1));
}

TEST(SecretWipe, MemorySecretStoreWipesOnReplaceAndRemove) {
    ivd::libvirt::MemorySecretStore store;
    const std::string usage = "iscsi-volume-driver:wipe";
    hits = 0;
    {
        const ivd::SecretString value{std::string_view(password)};
        scanning = true;
        ASSERT_TRUE(store.put_iscsi_secret(usage, "d", value).ok());
        ASSERT_TRUE(store.put_iscsi_secret(usage, "d", ivd::SecretString("replacement-value-0123456789")).ok());
        ASSERT_TRUE(store.remove_iscsi_secret(usage).ok());
        scanning = false;
    }
    EXPECT_EQ(hits.load(), 0);
}

std::string connection_info() {
    return std::string(R"({"driver_volume_type":"iscsi","data":{"target_portal":"127.0.0.1:3260",)") +
           R"("target_iqn":"iqn.2003-01.org.example:wipe","target_lun":1,"volume_id":"wipe-vol",)" +
           R"("auth_method":"CHAP","auth_username":"u","auth_password":")" + password + R"("}})";
}

TEST(SecretWipe, NeitherParserNorDriverFreesAnUnwipedCopy) {
    const std::string ci = connection_info();
    // The parser's own temporaries, measured alone.
    hits = 0;
    scanning = true;
    {
        auto doc = ivd::request::parse_object(ci.c_str(), "connection_info");
        ASSERT_TRUE(doc.ok());
        ivd::request::wipe_secrets_in_connection_info(*doc);
    }
    scanning = false;
    const int per_parse = hits.load();

    auto store = std::make_shared<ivd::libvirt::MemorySecretStore>();
    ivd::DriverParts parts;
    ivd::HostFacts facts;
    facts.capabilities.qemu_iscsi = true;
    facts.xml.auth_in_source = true;
    facts.xml.initiator = true;
    parts.facts = facts;
    ivd::request::NetDiskConfig config;
    parts.network = std::make_unique<ivd::net_disk::NetworkDiskPath>(
        config, ivd::Logger{}, store, [](const auto &targets, const auto &) {
            // Every portal is probed, a single one too: say it is healthy.
            std::vector<ivd::iscsi::ProbeResult> results(targets.size());
            for (auto &r : results) r.outcome = ivd::iscsi::ProbeOutcome::healthy;
            return results;
        });
    auto driver = ivd::Driver::create(R"({"path":"network"})", ivd::Logger{}, std::move(parts));
    ASSERT_TRUE(driver.ok());
    const std::string connector = R"({"initiator":"iqn.1993-08.org.debian:01:wipe"})";

    hits = 0;
    scanning = true;
    auto device_info = (*driver)->connect_volume(ci.c_str(), connector.c_str(), R"({"dev":"sdb"})", 0);
    ASSERT_TRUE(device_info.ok()) << device_info.error().message;
    ASSERT_TRUE((*driver)->disconnect_volume(ci.c_str(), device_info->c_str(), 0).ok());
    // A failing connect after parsing (bad disk_info) must not leave one either.
    EXPECT_FALSE((*driver)->connect_volume(ci.c_str(), connector.c_str(), R"({"dev":"sdb","bus":"floppy"})", 0).ok());
    driver->reset();  // everything the driver held (the fake store's SecretStrings included) goes now
    store.reset();
    scanning = false;
    std::cout << "parser temporaries with the password per parse: " << per_parse << "; blocks with the password "
              << "freed during 3 driver calls: " << hits.load() << "\n";
    EXPECT_EQ(per_parse, 0) << "the JSON parser freed a copy of the password without wiping it";
    EXPECT_EQ(hits.load(), 0) << "the driver freed a copy of the password without wiping it";
}

}  // namespace
