// Connection: lazy, shared, errors as ivd::Error, and silent on stderr.
#include "libvirt/connection.hpp"
#include "libvirt/handles.hpp"
#include "libvirt/secret_store.hpp"
#include "libvirt_lab.hpp"
#include "stderr_capture.hpp"

#include <libvirt/libvirt.h>

#include <gtest/gtest.h>

#include <memory>

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
    EXPECT_EQ(opened.error().status, Status::backend);
    EXPECT_NE(opened.error().message.find("/nonexistent/ivd-test.sock"), std::string::npos) << opened.error().message;
    EXPECT_EQ(printed, "");
    EXPECT_EQ(connection.open_count(), 0u);
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
