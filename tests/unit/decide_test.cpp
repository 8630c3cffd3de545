// The path decision table: every combination of config, connector and host capability.
#include "decide/decide.hpp"

#include <fmt/format.h>
#include <gtest/gtest.h>

namespace {

using namespace ivd;
using request::PathChoice;

struct Row {
    PathChoice path;
    bool enforce;
    bool wants_multipath;
    bool qemu, host, mp;
    // Expected: ok + path + multipath, or a status.
    bool ok;
    AttachPath expect_path;
    bool expect_mp;
    Status expect_status;
};

std::string describe(const Row &r) {
    return fmt::format("path={} enforce={} connector.multipath={} qemu={} host={} mp={}", static_cast<int>(r.path),
                       r.enforce, r.wants_multipath, r.qemu, r.host, r.mp);
}

TEST(PathDecision, Table) {
    const auto N = AttachPath::network;
    const auto H = AttachPath::host;
    const auto A = PathChoice::automatic;
    const Status ok = Status::ok;
    const Status U = Status::unsupported;
    const Status I = Status::invalid_argument;
    const Row rows[] = {
        // automatic
        {A, false, false, true, true, true, true, N, false, ok},
        {A, false, true, true, true, true, true, H, true, ok},
        {A, false, true, true, true, false, true, N, false, ok},   // no multipathd: QEMU initiator
        {A, false, true, true, false, true, true, N, false, ok},   // no iscsid: QEMU initiator
        {A, false, true, false, true, false, true, H, false, ok},  // no QEMU iSCSI: host, single path
        {A, false, false, false, true, true, true, H, false, ok},
        {A, false, false, false, false, false, false, N, false, U},
        {A, false, true, false, false, true, false, N, false, U},
        // enforce_multipath
        {A, true, true, true, true, true, true, H, true, ok},
        {A, true, false, true, true, true, false, N, false, I},
        {A, true, true, true, true, false, false, N, false, U},
        {A, true, true, true, false, true, false, N, false, U},
        {PathChoice::host, true, true, false, true, true, true, H, true, ok},
        // forced network
        {PathChoice::network, false, true, true, true, true, true, N, false, ok},
        {PathChoice::network, false, false, false, true, true, false, N, false, U},
        // forced host
        {PathChoice::host, false, false, true, true, true, true, H, false, ok},
        {PathChoice::host, false, true, true, true, true, true, H, true, ok},
        {PathChoice::host, false, true, true, true, false, true, H, false, ok},
        {PathChoice::host, false, false, true, false, true, false, N, false, U},
    };
    for (const Row &r : rows) {
        request::DriverConfig config;
        config.path = r.path;
        config.enforce_multipath = r.enforce;
        request::Connector connector;
        connector.multipath = r.wants_multipath;
        HostCapabilities caps;
        caps.qemu_iscsi = r.qemu;
        caps.host_iscsi = r.host;
        caps.multipath = r.mp;
        auto d = decide_path(config, connector, caps);
        if (r.ok) {
            ASSERT_TRUE(d.ok()) << describe(r) << ": " << d.error().message;
            EXPECT_EQ(d->path, r.expect_path) << describe(r);
            EXPECT_EQ(d->multipath, r.expect_mp) << describe(r);
            EXPECT_FALSE(d->reason.empty());
        } else {
            ASSERT_FALSE(d.ok()) << describe(r);
            EXPECT_EQ(d.error().status, r.expect_status) << describe(r);
            EXPECT_FALSE(d.error().message.empty());
        }
    }
}

TEST(PathDecision, ErrorsSayWhatToInstall) {
    request::DriverConfig config;
    HostCapabilities caps;
    caps.qemu_iscsi_reason = "no block-iscsi.so";
    caps.host_iscsi_reason = "iscsiadm not found";
    auto d = decide_path(config, request::Connector{}, caps);
    ASSERT_FALSE(d.ok());
    EXPECT_NE(d.error().message.find("qemu-block-extra"), std::string::npos) << d.error().message;
    EXPECT_NE(d.error().message.find("open-iscsi"), std::string::npos);
    EXPECT_NE(d.error().message.find("no block-iscsi.so"), std::string::npos);
}

}  // namespace
