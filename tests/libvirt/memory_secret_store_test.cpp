// The in-memory SecretStore fake behaves like the libvirt one where tests rely on it.
#include "libvirt/secret_store.hpp"

#include <gtest/gtest.h>

using ivd::SecretString;
using ivd::libvirt::MemorySecretStore;

TEST(MemorySecretStore, PutKeepsUuidAndReplacesValue) {
    MemorySecretStore store;
    bool created = false;
    auto first = store.put_iscsi_secret("vol-1", "volume 1", SecretString("one"), &created);
    ASSERT_TRUE(first) << first.error().message;
    EXPECT_TRUE(created);
    auto second = store.put_iscsi_secret("vol-1", "volume 1", SecretString("two"), &created);
    ASSERT_TRUE(second);
    EXPECT_FALSE(created);
    EXPECT_EQ(*first, *second);
    ASSERT_TRUE(store.value_of("vol-1"));
    EXPECT_EQ(store.value_of("vol-1")->reveal(), "two");
    EXPECT_EQ(store.description_of("vol-1"), "volume 1");
}

TEST(MemorySecretStore, RemoveIsIdempotentAndListFiltersByPrefix) {
    MemorySecretStore store;
    ASSERT_TRUE(store.put_iscsi_secret("a-2", "", SecretString("x")));
    ASSERT_TRUE(store.put_iscsi_secret("a-1", "", SecretString("x")));
    ASSERT_TRUE(store.put_iscsi_secret("b-1", "", SecretString("x")));
    auto listed = store.list_iscsi_secret_usages("a-");
    ASSERT_TRUE(listed);
    EXPECT_EQ(*listed, (std::vector<std::string>{"a-1", "a-2"}));
    EXPECT_TRUE(store.remove_iscsi_secret("a-1"));
    EXPECT_TRUE(store.remove_iscsi_secret("a-1"));
    EXPECT_EQ(store.size(), 2u);
}

TEST(MemorySecretStore, InjectedFailureHitsOneCall) {
    MemorySecretStore store;
    store.fail_next_call(ivd::make_error(ivd::Status::backend, "injected"));
    auto failed = store.put_iscsi_secret("v", "", SecretString("x"));
    ASSERT_FALSE(failed);
    EXPECT_EQ(failed.error().status, ivd::Status::backend);
    EXPECT_TRUE(store.put_iscsi_secret("v", "", SecretString("x")));
}
