// The path decision table: every combination of config, connector and host capability.
#include "decide/decide.hpp"
#include "request/json_input.hpp"

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
            EXPECT_EQ(d->enforce_multipath, r.enforce) << describe(r);
            EXPECT_FALSE(d->reason.empty());
        } else {
            ASSERT_FALSE(d.ok()) << describe(r);
            EXPECT_EQ(d.error().status, r.expect_status) << describe(r);
            EXPECT_FALSE(d.error().message.empty());
        }
    }
}

// Every combination: path (3) x enforce_multipath (2) x connector.multipath (2) x host capabilities (8).
// Each line lists the outcome for (qemu_iscsi, host_iscsi, multipath) = 000 001 010 011 100 101 110 111:
// N network, H host single path, M host multipath, U unsupported (a capability is missing),
// I invalid connector, C invalid config.
TEST(PathDecision, EveryCombination) {
    struct Line {
        PathChoice path;
        bool enforce;
        bool wants_multipath;
        const char *outcomes;
    };
    const auto A = PathChoice::automatic;
    const auto Net = PathChoice::network;
    const auto Host = PathChoice::host;
    const Line lines[] = {
        {A, false, false, "UUHHNNNN"},    // QEMU's initiator first; host path when QEMU cannot
        {A, false, true, "UUHMNNNM"},     // multipath only with iscsid and multipathd
        {A, true, false, "IIIIIIII"},     // enforce: the connector must ask for multipath
        {A, true, true, "UUUMUUUM"},      // enforce: multipath or nothing
        {Net, false, false, "UUUUNNNN"},  // forced network needs QEMU iSCSI, nothing else
        {Net, false, true, "UUUUNNNN"},
        {Net, true, false, "CCCCCCCC"},   // contradictory config, whatever the host
        {Net, true, true, "CCCCCCCC"},
        {Host, false, false, "UUHHUUHH"},  // forced host needs iscsid, nothing else
        {Host, false, true, "UUHMUUHM"},
        {Host, true, false, "IIIIIIII"},
        {Host, true, true, "UUUMUUUM"},
    };
    int checked = 0;
    for (const Line &line : lines) {
        ASSERT_EQ(std::string_view(line.outcomes).size(), 8u);
        for (int bits = 0; bits < 8; ++bits) {
            request::DriverConfig config;
            config.path = line.path;
            config.enforce_multipath = line.enforce;
            request::Connector connector;
            connector.multipath = line.wants_multipath;
            HostCapabilities caps;
            caps.qemu_iscsi = (bits & 4) != 0;
            caps.host_iscsi = (bits & 2) != 0;
            caps.multipath = (bits & 1) != 0;
            const std::string what =
                describe(Row{line.path, line.enforce, line.wants_multipath, caps.qemu_iscsi, caps.host_iscsi,
                             caps.multipath, false, AttachPath::network, false, Status::ok});
            auto d = decide_path(config, connector, caps);
            const char expect = line.outcomes[bits];
            ++checked;
            if (expect == 'N' || expect == 'H' || expect == 'M') {
                ASSERT_TRUE(d.ok()) << what << ": " << d.error().message;
                EXPECT_EQ(d->path, expect == 'N' ? AttachPath::network : AttachPath::host) << what;
                EXPECT_EQ(d->multipath, expect == 'M') << what;
                EXPECT_FALSE(d->reason.empty()) << what;
                // Multipath is never chosen unless both the connector and the host can.
                if (d->multipath) {
                    EXPECT_TRUE(connector.multipath && caps.multipath && caps.host_iscsi) << what;
                }
                continue;
            }
            ASSERT_FALSE(d.ok()) << what << " -> " << attach_path_name(d->path);
            const Status status = expect == 'U' ? Status::unsupported
                                  : expect == 'I' ? Status::invalid_argument
                                                  : Status::config;
            EXPECT_EQ(d.error().status, status) << what << ": " << d.error().message;
            EXPECT_FALSE(d.error().message.empty()) << what;
            if (expect == 'I') {
                EXPECT_EQ(d.error().field, "multipath") << what;
            }
            if (expect == 'C') {
                EXPECT_EQ(d.error().field, "enforce_multipath") << what;
            }
            if (expect == 'U') {
                // The message names the fix for what is missing.
                const std::string &m = d.error().message;
                const bool names_fix = m.find("qemu-block-extra") != std::string::npos ||
                                       m.find("open-iscsi") != std::string::npos ||
                                       m.find("multipath-tools") != std::string::npos;
                EXPECT_TRUE(names_fix) << what << ": " << m;
                if (!caps.qemu_iscsi && line.path != Host && !line.enforce) {
                    EXPECT_NE(m.find("qemu-block-extra"), std::string::npos) << what << ": " << m;
                }
                if (!caps.host_iscsi && line.path != Net) {
                    EXPECT_NE(m.find("open-iscsi"), std::string::npos) << what << ": " << m;
                }
                if (caps.host_iscsi && !caps.multipath && line.enforce) {
                    EXPECT_NE(m.find("multipath-tools"), std::string::npos) << what << ": " << m;
                }
            }
        }
    }
    EXPECT_EQ(checked, 96);
}

// The detector's reason (what exactly is missing) reaches the error, not only a generic hint.
TEST(PathDecision, ErrorsCarryTheDetectedReason) {
    HostCapabilities caps;
    caps.qemu_iscsi_reason = "there is no block-iscsi.so in /x";
    caps.host_iscsi_reason = "iscsid is not running";
    caps.multipath_reason = "multipathd is not running";
    request::DriverConfig config;
    config.path = PathChoice::network;
    auto d = decide_path(config, request::Connector{}, caps);
    ASSERT_FALSE(d.ok());
    EXPECT_NE(d.error().message.find("there is no block-iscsi.so in /x"), std::string::npos) << d.error().message;

    config.path = PathChoice::host;
    d = decide_path(config, request::Connector{}, caps);
    ASSERT_FALSE(d.ok());
    EXPECT_NE(d.error().message.find("iscsid is not running"), std::string::npos) << d.error().message;

    config.path = PathChoice::automatic;
    config.enforce_multipath = true;
    request::Connector mp;
    mp.multipath = true;
    caps.host_iscsi = true;
    d = decide_path(config, mp, caps);
    ASSERT_FALSE(d.ok());
    EXPECT_NE(d.error().message.find("multipathd is not running"), std::string::npos) << d.error().message;
    EXPECT_NE(d.error().message.find("enforce_multipath"), std::string::npos) << d.error().message;

    // A capability without a reason still says something.
    d = decide_path(request::DriverConfig{}, request::Connector{}, HostCapabilities{});
    ASSERT_FALSE(d.ok());
    EXPECT_NE(d.error().message.find("not detected"), std::string::npos) << d.error().message;
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

// libvirt unreachable used to read as "install qemu-block-extra": it must say libvirt, name the URI, and keep
// libvirt's status.
TEST(PathDecision, UnreachableLibvirtIsNotAMissingPackage) {
    HostCapabilities host;
    host.qemu_iscsi_reason = "cannot tell which emulator libvirt runs (...)";
    host.libvirt_problem = "cannot connect to libvirt at qemu+unix:///system?socket=/x: Failed to connect socket";
    host.libvirt_status = Status::unreachable;
    host.host_iscsi_reason = "iscsiadm not found";
    request::DriverConfig config;
    config.path = PathChoice::network;
    auto network = decide_path(config, request::Connector{}, host);
    ASSERT_FALSE(network.ok());
    EXPECT_EQ(network.error().status, Status::unreachable);
    EXPECT_NE(network.error().message.find("libvirt is unreachable"), std::string::npos) << network.error().message;
    EXPECT_NE(network.error().message.find("qemu+unix:///system?socket=/x"), std::string::npos);
    EXPECT_EQ(network.error().message.find("qemu-block-extra"), std::string::npos) << network.error().message;
    config.path = PathChoice::automatic;
    host.libvirt_status = Status::timeout;
    auto automatic = decide_path(config, request::Connector{}, host);
    ASSERT_FALSE(automatic.ok());
    EXPECT_EQ(automatic.error().status, Status::timeout);
    EXPECT_EQ(automatic.error().message.find("qemu-block-extra"), std::string::npos) << automatic.error().message;
    host.host_iscsi = true;  // the host path does not need libvirt in the driver
    auto host_path = decide_path(config, request::Connector{}, host);
    ASSERT_TRUE(host_path.ok());
    EXPECT_EQ(host_path->path, AttachPath::host);
}

}  // namespace

namespace {

// enforce_multipath in the connector (as os-brick's get_connector_properties takes it) acts as the config key.
TEST(PathDecision, ConnectorEnforceMultipath) {
    HostCapabilities caps;
    caps.qemu_iscsi = true;
    caps.host_iscsi = true;
    caps.multipath = true;
    request::Connector c;
    c.multipath = true;
    c.enforce_multipath = true;
    auto d = decide_path(request::DriverConfig{}, c, caps);
    ASSERT_TRUE(d.ok()) << d.error().message;
    EXPECT_EQ(d->path, AttachPath::host);
    EXPECT_TRUE(d->multipath);
    EXPECT_TRUE(d->enforce_multipath) << "the host path must refuse a map that does not form";
    caps.multipath = false;
    d = decide_path(request::DriverConfig{}, c, caps);
    ASSERT_FALSE(d.ok());
    EXPECT_NE(d.error().message.find("enforce_multipath"), std::string::npos) << d.error().message;
    request::DriverConfig network;
    network.path = request::PathChoice::network;
    d = decide_path(network, c, caps);
    ASSERT_FALSE(d.ok());
    EXPECT_EQ(d.error().field, "enforce_multipath");
    auto doc = request::parse_object(R"({"initiator":"iqn.1993-08.org.debian:01:x","enforce_multipath":"yes"})", "connector");
    ASSERT_TRUE(doc.ok());
    auto bad = request::parse_connector(*doc);
    ASSERT_FALSE(bad.ok());
    EXPECT_EQ(bad.error().field, "enforce_multipath");
}

}  // namespace
