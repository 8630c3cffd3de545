// LibvirtSecretStore against the real libvirtd: private iscsi secrets defined, updated, listed and removed.
#include "libvirt/connection.hpp"
#include "libvirt/secret_store.hpp"
#include "libvirt_lab.hpp"

#include <libvirt/libvirt.h>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <unistd.h>

using ivd::SecretString;
using ivd::libvirt::Connection;
using ivd::libvirt::LibvirtSecretStore;
using ivd::testing::LibvirtLab;

namespace {

std::string base64_decode(const std::string &in) {
    static const std::string chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    int val = 0, bits = -8;
    for (char c : in) {
        const auto pos = chars.find(c);
        if (pos == std::string::npos) break;
        val = (val << 6) + static_cast<int>(pos);
        bits += 6;
        if (bits >= 0) {
            out.push_back(static_cast<char>((val >> bits) & 0xFF));
            bits -= 8;
        }
    }
    return out;
}

class SecretStoreTest : public ::testing::Test {
protected:
    static void SetUpTestSuite() { lab_ = new LibvirtLab(ivd::testing::LibvirtLabOptions{.start_domain = false}); }
    static void TearDownTestSuite() {
        delete lab_;
        lab_ = nullptr;
    }
    void SetUp() override {
        const auto *info = ::testing::UnitTest::GetInstance()->current_test_info();
        prefix_ = fmt::format("ivd-test-{}-{}:", ::getpid(), info->name());
        connection_ = std::make_shared<Connection>(lab_->uri());
        store_ = std::make_unique<LibvirtSecretStore>(connection_);
    }
    void TearDown() override {
        // No leftovers, even when an assertion failed half-way.
        auto left = store_->list_iscsi_secret_usages(prefix_);
        ASSERT_TRUE(left);
        for (const auto &u : *left) EXPECT_TRUE(store_->remove_iscsi_secret(u));
        auto after = store_->list_iscsi_secret_usages(prefix_);
        ASSERT_TRUE(after);
        EXPECT_TRUE(after->empty());
    }
    // What libvirt persisted for a (non-ephemeral) secret: its value file, decoded.
    static std::string stored_value(const std::string &uuid) {
        std::ifstream in("/etc/libvirt/secrets/" + uuid + ".base64");
        std::stringstream b;
        b << in.rdbuf();
        return base64_decode(b.str());
    }

    static LibvirtLab *lab_;
    std::string prefix_;
    std::shared_ptr<Connection> connection_;
    std::unique_ptr<LibvirtSecretStore> store_;
};

LibvirtLab *SecretStoreTest::lab_ = nullptr;

TEST_F(SecretStoreTest, DefinesPrivateSecretWhoseValueCannotBeReadBack) {
    const std::string usage = prefix_ + "vol-1";
    auto uuid = store_->put_iscsi_secret(usage, "CHAP for vol-1", SecretString("s3cret-one"));
    ASSERT_TRUE(uuid) << uuid.error().message;
    EXPECT_EQ(uuid->size(), 36u);
    EXPECT_GE(lab_->count_secrets(), 1);

    virConnectPtr conn = virConnectOpen(lab_->uri().c_str());
    ASSERT_NE(conn, nullptr);
    virSecretPtr secret = virSecretLookupByUUIDString(conn, uuid->c_str());
    ASSERT_NE(secret, nullptr);
    EXPECT_EQ(virSecretGetUsageType(secret), VIR_SECRET_USAGE_TYPE_ISCSI);
    EXPECT_EQ(std::string(virSecretGetUsageID(secret)), usage);
    char *xml = virSecretGetXMLDesc(secret, 0);
    ASSERT_NE(xml, nullptr);
    EXPECT_NE(std::string(xml).find("private='yes'"), std::string::npos) << xml;
    EXPECT_NE(std::string(xml).find("ephemeral='no'"), std::string::npos) << xml;
    free(xml);
    std::size_t size = 0;
    unsigned char *value = virSecretGetValue(secret, &size, 0);
    EXPECT_EQ(value, nullptr) << "a private secret's value came back over the API";
    free(value);
    virSecretFree(secret);
    virConnectClose(conn);

    EXPECT_EQ(stored_value(*uuid), "s3cret-one");
}

// The XML libvirt reports for the secret with this UUID ("" when there is none).
std::string secret_xml(const std::string &uri, const std::string &uuid) {
    virConnectPtr conn = virConnectOpen(uri.c_str());
    if (conn == nullptr) return "";
    std::string out;
    if (virSecretPtr secret = virSecretLookupByUUIDString(conn, uuid.c_str()); secret != nullptr) {
        if (char *xml = virSecretGetXMLDesc(secret, 0); xml != nullptr) {
            out = xml;
            free(xml);
        }
        virSecretFree(secret);
    }
    virConnectClose(conn);
    return out;
}

// SecretStorage::ephemeral: private, in libvirtd's memory only (no file), listed for cleanup, removed; a secret
// already defined persistent is kept as it is (its value updated).
TEST_F(SecretStoreTest, EphemeralSecretIsPrivateNeverOnDiskListedAndRemoved) {
    LibvirtSecretStore ephemeral(connection_, ivd::xml::SecretStorage::ephemeral);
    const std::string usage = prefix_ + "vol-e";
    auto uuid = ephemeral.put_iscsi_secret(usage, "d", SecretString("in-memory-only"));
    ASSERT_TRUE(uuid) << uuid.error().message;
    const std::string xml = secret_xml(lab_->uri(), *uuid);
    EXPECT_NE(xml.find("ephemeral='yes'"), std::string::npos) << xml;
    EXPECT_NE(xml.find("private='yes'"), std::string::npos) << xml;
    EXPECT_FALSE(std::filesystem::exists("/etc/libvirt/secrets/" + *uuid + ".xml"));
    EXPECT_FALSE(std::filesystem::exists("/etc/libvirt/secrets/" + *uuid + ".base64"));
    auto listed = store_->list_iscsi_secrets(prefix_);
    ASSERT_TRUE(listed);
    ASSERT_EQ(listed->size(), 1u);
    EXPECT_EQ((*listed)[0].uuid, *uuid);
    ASSERT_TRUE(ephemeral.remove_iscsi_secret(usage));
    EXPECT_EQ(secret_xml(lab_->uri(), *uuid), "");

    const std::string kept = prefix_ + "vol-p";
    auto persistent = store_->put_iscsi_secret(kept, "d", SecretString("v1"));
    ASSERT_TRUE(persistent) << persistent.error().message;
    auto again = ephemeral.put_iscsi_secret(kept, "d", SecretString("v2"));
    ASSERT_TRUE(again) << again.error().message;
    EXPECT_EQ(*again, *persistent);
    EXPECT_NE(secret_xml(lab_->uri(), *again).find("ephemeral='no'"), std::string::npos);
    EXPECT_EQ(stored_value(*again), "v2");
}

TEST_F(SecretStoreTest, UpdateKeepsTheSecretAndReplacesTheValue) {
    const std::string usage = prefix_ + "vol-1";
    bool created = false;
    auto first = store_->put_iscsi_secret(usage, "d", SecretString("old-value"), &created);
    ASSERT_TRUE(first) << first.error().message;
    EXPECT_TRUE(created) << "the first put defines the secret";
    auto second = store_->put_iscsi_secret(usage, "d", SecretString("new-value"), &created);
    ASSERT_TRUE(second) << second.error().message;
    EXPECT_FALSE(created) << "the second put only sets the value";
    EXPECT_EQ(*first, *second);
    EXPECT_EQ(stored_value(*second), "new-value");
    auto listed = store_->list_iscsi_secret_usages(prefix_);
    ASSERT_TRUE(listed);
    EXPECT_EQ(listed->size(), 1u);
}

TEST_F(SecretStoreTest, RemoveDeletesAndIsIdempotent) {
    const std::string usage = prefix_ + "vol-1";
    auto uuid = store_->put_iscsi_secret(usage, "d", SecretString("v"));
    ASSERT_TRUE(uuid) << uuid.error().message;
    auto removed = store_->remove_iscsi_secret(usage);
    ASSERT_TRUE(removed) << removed.error().message;
    EXPECT_FALSE(std::filesystem::exists("/etc/libvirt/secrets/" + *uuid + ".base64"));
    EXPECT_FALSE(std::filesystem::exists("/etc/libvirt/secrets/" + *uuid + ".xml"));
    auto again = store_->remove_iscsi_secret(usage);
    EXPECT_TRUE(again) << again.error().message;
    auto never = store_->remove_iscsi_secret(prefix_ + "never-defined");
    EXPECT_TRUE(never) << never.error().message;
}

TEST_F(SecretStoreTest, ListsOnlyUsagesWithThePrefix) {
    for (const char *name : {"b", "a", "c"}) {
        ASSERT_TRUE(store_->put_iscsi_secret(prefix_ + "vol-" + name, "d", SecretString("v")));
    }
    ASSERT_TRUE(store_->put_iscsi_secret(prefix_ + "other-1", "d", SecretString("v")));
    auto listed = store_->list_iscsi_secret_usages(prefix_ + "vol-");
    ASSERT_TRUE(listed) << listed.error().message;
    EXPECT_EQ(*listed, (std::vector<std::string>{prefix_ + "vol-a", prefix_ + "vol-b", prefix_ + "vol-c"}));
}

TEST_F(SecretStoreTest, ManyThreadsShareOneConnection) {
    std::vector<std::thread> threads;
    std::atomic<int> failures{0};
    for (int t = 0; t < 4; ++t) {
        threads.emplace_back([&, t] {
            for (int i = 0; i < 5; ++i) {
                const std::string usage = fmt::format("{}t{}-{}", prefix_, t, i);
                if (!store_->put_iscsi_secret(usage, "d", SecretString("v"))) ++failures;
                // Same usage from two threads at once: one defines, the other keeps.
                if (!store_->put_iscsi_secret(prefix_ + "shared", "d", SecretString("v"))) ++failures;
            }
        });
    }
    for (auto &t : threads) t.join();
    EXPECT_EQ(failures.load(), 0);
    EXPECT_EQ(connection_->open_count(), 1u);
    auto listed = store_->list_iscsi_secret_usages(prefix_);
    ASSERT_TRUE(listed);
    EXPECT_EQ(listed->size(), 21u);
}

}  // namespace
