// Connection: lazy, shared, errors as ivd::Error, and silent on stderr.
#include "libvirt/connection.hpp"
#include "libvirt/event_loop.hpp"
#include "libvirt/handles.hpp"
#include "libvirt/secret_store.hpp"
#include "libvirt_lab.hpp"
#include "silent_libvirt.hpp"
#include "stderr_capture.hpp"

#include <libvirt/libvirt.h>

#include <gtest/gtest.h>


#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>

using ivd::Result;
using ivd::Status;
using ivd::libvirt::Connection;
using ivd::libvirt::SecretHandle;
using ivd::testing::LibvirtLab;
using ivd::testing::StderrCapture;

namespace {

TEST(StderrCapture, SeesRawWritesToFd2) {
    StderrCapture capture;
    ASSERT_EQ(::write(2, "x", 1), 1);
    EXPECT_EQ(capture.finish(), "x");
}

TEST(Connection, FailedOpenIsAnErrorAndPrintsNothing) {
    StderrCapture capture;
    Connection connection("qemu+unix:///system?socket=/nonexistent/ivd-test.sock");
    auto opened = connection.ensure_open();
    const std::string printed = capture.finish();
    ASSERT_FALSE(opened);
    EXPECT_EQ(opened.error().status, Status::unreachable);  // nothing listens: not a backend failure
    EXPECT_NE(opened.error().message.find("/nonexistent/ivd-test.sock"), std::string::npos) << opened.error().message;
    EXPECT_EQ(printed, "");
    EXPECT_EQ(connection.open_count(), 0u);
}

// Used to hang in virConnectOpen for as long as the peer kept the socket open (for ever).
void expect_bounded_timeout(const std::string &uri) {
    ivd::libvirt::ConnectionOptions options;
    options.open_timeout = std::chrono::milliseconds(400);
    Connection connection(uri, {}, options);
    StderrCapture capture;
    const auto start = std::chrono::steady_clock::now();
    auto opened = connection.ensure_open();
    const auto elapsed = std::chrono::steady_clock::now() - start;
    ASSERT_FALSE(opened) << uri;
    EXPECT_EQ(opened.error().status, Status::timeout) << opened.error().message;
    EXPECT_NE(opened.error().message.find(uri), std::string::npos) << opened.error().message;
    EXPECT_NE(opened.error().message.find("libvirt_open_timeout_ms"), std::string::npos) << opened.error().message;
    EXPECT_LT(elapsed, std::chrono::seconds(2));
    // The first open is still stuck: a second attempt, through this or another Connection to the same URI,
    // fails at once instead of stacking another thread on it.
    Connection other(uri, {}, options);
    for (Connection *c : {&connection, &other}) {
        const auto again_start = std::chrono::steady_clock::now();
        auto again = c->call([](virConnectPtr) -> Result<int> { return 1; });
        ASSERT_FALSE(again);
        EXPECT_EQ(again.error().status, Status::timeout) << again.error().message;
        EXPECT_NE(again.error().message.find(uri), std::string::npos) << again.error().message;
        EXPECT_LT(std::chrono::steady_clock::now() - again_start, std::chrono::milliseconds(200));
    }
    EXPECT_EQ(capture.finish(), "");
    EXPECT_EQ(connection.open_count(), 0u);
}

TEST(Connection, TcpPeerThatNeverAnswersTimesOut) { expect_bounded_timeout(ivd::testing::SilentLibvirt::tcp().uri()); }

TEST(Connection, UnixSocketThatNeverAnswersTimesOut) {
    expect_bounded_timeout(ivd::testing::SilentLibvirt::unix_socket().uri());
}

TEST(Connection, RealDaemonGetsKeepaliveOnARunningEventLoop) {
    LibvirtLab lab(ivd::testing::LibvirtLabOptions{.start_domain = false});
    Connection connection(lab.uri());
    EXPECT_TRUE(ivd::libvirt::ensure_event_loop());
    auto alive = connection.call([](virConnectPtr conn) -> Result<int> {
        // With keepalive on, the daemon's pings are answered by the loop thread while the link is idle.
        if (virConnectSetKeepAlive(conn, 5, 3) != 0) return ivd::libvirt::last_error("virConnectSetKeepAlive");
        return virConnectIsAlive(conn);
    });
    ASSERT_TRUE(alive) << alive.error().message;
    EXPECT_EQ(*alive, 1);
}

TEST(Connection, FailingCallIsNotFoundAndPrintsNothing) {
    LibvirtLab lab(ivd::testing::LibvirtLabOptions{.start_domain = false});
    Connection connection(lab.uri());
    StderrCapture capture;
    auto missing = connection.call([](virConnectPtr conn) -> Result<void> {
        SecretHandle s(virSecretLookupByUsage(conn, VIR_SECRET_USAGE_TYPE_ISCSI, "ivd-test-never-defined"));
        if (!s) return ivd::libvirt::last_error("lookup");
        return {};
    });
    auto bad_xml = connection.call([](virConnectPtr conn) -> Result<void> {
        SecretHandle s(virSecretDefineXML(conn, "<secret><usage type='nonsense'/></secret>", 0));
        if (!s) return ivd::libvirt::last_error("define");
        return {};
    });
    const std::string printed = capture.finish();
    ASSERT_FALSE(missing);
    EXPECT_EQ(missing.error().status, Status::not_found);
    EXPECT_NE(missing.error().message.find("ivd-test-never-defined"), std::string::npos) << missing.error().message;
    ASSERT_FALSE(bad_xml);
    EXPECT_EQ(bad_xml.error().status, Status::backend);
    EXPECT_EQ(printed, "");
    // A failed call on a live connection is not a reason to reconnect.
    EXPECT_EQ(connection.open_count(), 1u);
}

TEST(Connection, OpensLazilyAndReusesTheConnection) {
    LibvirtLab lab(ivd::testing::LibvirtLabOptions{.start_domain = false});
    Connection connection(lab.uri());
    EXPECT_EQ(connection.open_count(), 0u);
    for (int i = 0; i < 3; ++i) {
        auto n = connection.call([](virConnectPtr conn) -> Result<int> {
            const int count = virConnectNumOfSecrets(conn);
            if (count < 0) return ivd::libvirt::last_error("count");
            return count;
        });
        ASSERT_TRUE(n) << n.error().message;
    }
    EXPECT_EQ(connection.open_count(), 1u);
    connection.close();
    ASSERT_TRUE(connection.ensure_open());
    EXPECT_EQ(connection.open_count(), 2u);
}

}  // namespace
