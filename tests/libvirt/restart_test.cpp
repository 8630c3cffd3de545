// A Connection outlives a libvirtd restart: the next call reopens once and succeeds (runs serially).
#include "libvirt/connection.hpp"
#include "libvirt/secret_store.hpp"
#include "libvirt_lab.hpp"
#include "stderr_capture.hpp"

#include <libvirt/libvirt.h>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <unistd.h>

using ivd::Result;
using ivd::SecretString;
using ivd::libvirt::Connection;
using ivd::libvirt::LibvirtSecretStore;
using ivd::testing::LibvirtLab;

namespace {

TEST(ConnectionRestart, ReopensOnceAfterLibvirtdRestart) {
    LibvirtLab lab(ivd::testing::LibvirtLabOptions{.start_domain = false});
    auto connection = std::make_shared<Connection>(lab.uri());
    LibvirtSecretStore store(connection);
    const std::string prefix = fmt::format("ivd-test-{}-restart:", ::getpid());
    ASSERT_TRUE(store.list_iscsi_secret_usages(prefix));
    EXPECT_EQ(connection->open_count(), 1u);

    lab.restart_libvirtd();

    ivd::testing::StderrCapture capture;
    const auto start = std::chrono::steady_clock::now();
    auto uuid = store.put_iscsi_secret(prefix + "vol", "d", SecretString("v"));
    const auto took = std::chrono::steady_clock::now() - start;
    const std::string printed = capture.finish();
    ASSERT_TRUE(uuid) << uuid.error().message;
    EXPECT_EQ(connection->open_count(), 2u);
    EXPECT_EQ(printed, "");
    std::printf("first call after restart: %lld ms\n",
                static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(took).count()));

    // Once more, and the reopened connection is simply reused.
    ASSERT_TRUE(store.remove_iscsi_secret(prefix + "vol"));
    EXPECT_EQ(connection->open_count(), 2u);
}

TEST(ConnectionRestart, DomainSurvivesRestart) {
    LibvirtLab lab;
    lab.restart_libvirtd();
    EXPECT_TRUE(lab.list_disks().empty());
}

}  // namespace
