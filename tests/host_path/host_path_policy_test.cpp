// The host path's policy on a fake HostOps (fake_host_ops.hpp) and fake libiscsi queries: partial failures,
// degraded attaches, enforce_multipath, rollback order, shared sessions, single-path portal order, and
// force/ignore_errors on disconnect. Milliseconds, no root, tgtd or simulated host; host_path_test.cpp runs the
// same path on real parts.
#include "policy_fixture.hpp"
#include "request/device_info.hpp"

#include <fmt/format.h>

namespace {

using namespace ivd::testing::policy;

TEST_F(HostPathPolicy, EveryPathAttachedMakesOneMapAndDisconnectLeavesNothing) {
    auto info = connect();
    ASSERT_TRUE(info.ok()) << info.error().message;
    EXPECT_EQ((*info)["type"].as_string(), "block");
    EXPECT_EQ((*info)["path"].as_string(), "/dev/dm-0");
    EXPECT_EQ((*info)["multipath_id"].as_string(), FakeHostOps::default_wwid);
    EXPECT_TRUE((*info)["multipath"].as_bool());
    EXPECT_EQ(column((*info)["paths"], "state"), (std::vector<std::string>{"active", "active", "active"}));
    EXPECT_TRUE((*info)["failed_portals"].items().empty());
    EXPECT_EQ(host().count("whitelist "), 1U);  // once per WWID, not once per path

    ASSERT_TRUE(disconnect(*info).ok());
    EXPECT_EQ(host().sessions(), 0U);
    EXPECT_EQ(host().devices(), 0U);
    EXPECT_EQ(host().node_records(), 0U);
    // The map goes first, then the devices, then the sessions.
    const auto j = host().journal();
    const auto at = [&](const std::string &e) { return std::find(j.begin(), j.end(), e) - j.begin(); };
    EXPECT_LT(at("flush dm-0"), at("remove_device sda"));
    EXPECT_LT(at("remove_device sdc"), at("logout 127.0.0.1:3260"));
}

// data.addressing_mode: the kernel is asked for (and matched on) the LUN as addressed, the probe is handed targets
// that address it the same way, device_info records the mode, and disconnect finds the devices by it even when the request says SAM.
TEST_F(HostPathPolicy, AddressingModeDecidesTheScannedLunAndDisconnectFollowsDeviceInfo) {
    struct Case {
        request::LunAddressing mode;
        std::int64_t lun, scanned;
    };
    for (const Case c : {Case{request::LunAddressing::sam, 300, 300}, Case{request::LunAddressing::sam2, 300, 16684},
                         Case{request::LunAddressing::sam2, 7, 7}, Case{request::LunAddressing::sam3_flat, 7, 16391}}) {
        SCOPED_TRACE(std::string(request::addressing_mode_name(c.mode)) + " " + std::to_string(c.lun));
        path_.reset();
        volume_.addressing = c.mode;
        for (auto &t : volume_.targets) {
            t.lun = c.lun;
            t.addressing = c.mode;
        }
        std::vector<std::int64_t> probed;
        auto q = queries();
        q.probe = [&probed, inner = q.probe](const std::vector<request::Target> &targets, const ivd::iscsi::ProbeOptions &o) {
            for (const auto &t : targets) probed.push_back(t.scsi_lun());  // what the prober addresses
            return inner(targets, o);
        };
        auto ops = std::make_unique<FakeHostOps>();
        host_ = ops.get();
        path_ = std::make_unique<ivd::host_path::HostPath>(config_, ivd::Logger{}, std::move(ops), q);
        auto info = connect();
        ASSERT_TRUE(info.ok()) << info.error().message;
        EXPECT_EQ(probed, std::vector<std::int64_t>(portals.size(), c.scanned));
        EXPECT_EQ(host().count(fmt::format("scan {} lun {}", portals[0], c.scanned)), 1U);
        EXPECT_EQ((*info)["paths"].items().size(), portals.size());
        EXPECT_EQ((*info)["paths"][0]["lun"].as_int64(), c.lun) << "device_info keeps the storage's LUN";
        const ivd::json::Value *mode = info->find("addressing_mode");
        if (c.mode == request::LunAddressing::sam) {
            EXPECT_EQ(mode, nullptr);
        } else {
            ASSERT_NE(mode, nullptr);
            EXPECT_EQ(mode->as_string(), request::addressing_mode_name(c.mode));
        }
        volume_.addressing = request::LunAddressing::sam;  // a request without the key: device_info decides
        for (auto &t : volume_.targets) t.addressing = request::LunAddressing::sam;
        ASSERT_TRUE(disconnect(*info).ok());
        EXPECT_EQ(host().devices(), 0U);
        EXPECT_EQ(host().sessions(), 0U);
    }
}

// One of N paths failing at each step: a degraded attach, the row names the step, and that path is undone in
// order (device, session, node record) while the others stay.
class HostPathPolicyStep : public HostPathPolicy, public ::testing::WithParamInterface<const char *> {};

TEST_P(HostPathPolicyStep, OnePathFailingIsUndoneAndTheAttachIsDegraded) {
    const std::string step = GetParam();
    host_setup_.push_back([&](FakeHostOps &h) { h.fail(step, portals[1], Status::unreachable); });
    auto info = connect();
    ASSERT_TRUE(info.ok()) << info.error().message;
    const Value &failed = (*info)["failed_portals"];
    ASSERT_EQ(failed.items().size(), 1U);
    EXPECT_EQ(failed[0]["portal"].as_string(), portals[1]);
    EXPECT_EQ(failed[0]["stage"].as_string(), step);
    // A LUN that never appears is a timeout whatever the fake was told.
    EXPECT_EQ(failed[0]["reason"].as_string(), step == "device" ? "timeout" : "unreachable");
    EXPECT_EQ(column((*info)["paths"], "portal"), (std::vector<std::string>{portals[0], portals[2]}));

    // The rollback of the failed path: its device (when it got one), then its session and node record.
    std::vector<std::string> undo;
    for (const auto &e : host().journal_of(portals[1])) {
        if (e.rfind("login", 0) != 0 && e.rfind("scan", 0) != 0) undo.push_back(e);
    }
    // A login that failed left no session to log out of, only the node record iscsiadm wrote.
    EXPECT_EQ(undo, step == "login" ? strings({"delete_node"}, portals[1]) : strings({"logout", "delete_node"}, portals[1]));
    const bool had_device = step == "wwid";
    EXPECT_EQ(host().count("remove_device "), had_device ? 1U : 0U);
    EXPECT_FALSE(host().has_session(portals[1]));
    EXPECT_TRUE(host().has_session(portals[0]));
    EXPECT_TRUE(host().has_session(portals[2]));
    EXPECT_EQ(host().devices(), 2U);
    EXPECT_EQ(host().node_records(), 2U);
}

INSTANTIATE_TEST_SUITE_P(Steps, HostPathPolicyStep, ::testing::Values("login", "scan", "device", "wwid"));

TEST_F(HostPathPolicy, ADeviceShowingAnotherWwidThanTheProbeIsUndone) {
    host_setup_.push_back([](FakeHostOps &h) { h.set_wwid(portals[0], "3600other"); });
    auto info = connect();
    ASSERT_TRUE(info.ok()) << info.error().message;
    const Value &failed = (*info)["failed_portals"];
    ASSERT_EQ(failed.items().size(), 1U);
    EXPECT_EQ(failed[0]["stage"].as_string(), "wwid");
    EXPECT_EQ(failed[0]["reason"].as_string(), "inconsistent_storage");
    EXPECT_EQ(host().journal_of(portals[0]).back(), "delete_node " + portals[0]);
    EXPECT_EQ(host().count("remove_device "), 1U);
}

TEST_F(HostPathPolicy, ALockFailureTouchesNothingOfThatPath) {
    host_setup_.push_back([](FakeHostOps &h) { h.fail("lock", portals[2], Status::timeout); });
    auto info = connect();
    ASSERT_TRUE(info.ok()) << info.error().message;
    EXPECT_EQ((*info)["failed_portals"][0]["stage"].as_string(), "lock");
    EXPECT_TRUE(host().journal_of(portals[2]).empty());  // no login, and nothing to undo
}

TEST_F(HostPathPolicy, APathMultipathdRefusesStaysOutOfTheMapAndIsReported) {
    host_setup_.push_back([](FakeHostOps &h) { h.fail("multipath_add", portals[0]); });
    auto info = connect();
    ASSERT_TRUE(info.ok()) << info.error().message;
    EXPECT_TRUE((*info)["multipath"].as_bool());
    EXPECT_EQ(column((*info)["paths"], "state"), (std::vector<std::string>{"not_in_map", "active", "active"}));
    EXPECT_TRUE((*info)["paths"][0]["multipath_error"].is_string());
}

TEST_F(HostPathPolicy, WithoutAMapTheFirstPathServesThroughItsByPathLink) {
    host_setup_.push_back([](FakeHostOps &h) { h.set_map_forms(false); });
    auto info = connect();
    ASSERT_TRUE(info.ok()) << info.error().message;
    EXPECT_FALSE((*info)["multipath"].as_bool());
    EXPECT_TRUE((*info)["multipath_error"].is_string());
    EXPECT_EQ((*info)["path"].as_string(), "/dev/disk/by-path/ip-127.0.0.1:3260-iscsi-" + std::string(iqn) + "-lun-1");
    EXPECT_EQ(column((*info)["paths"], "state"), (std::vector<std::string>{"active", "standby", "standby"}));
}

TEST_F(HostPathPolicy, WithoutALinkTheDeviceNodeIsHandedOver) {
    decision_.multipath = false;
    host_setup_.push_back([](FakeHostOps &h) { h.set_by_path_links(false); });
    auto info = connect();
    ASSERT_TRUE(info.ok()) << info.error().message;
    EXPECT_EQ((*info)["path"].as_string(), "/dev/sda");
}

TEST_F(HostPathPolicy, EnforceMultipathRefusesADegradedAttachAndUndoesEveryPath) {
    config_.enforce_multipath = true;
    host_setup_.push_back([](FakeHostOps &h) { h.set_map_forms(false); });
    auto info = connect();
    ASSERT_FALSE(info.ok());
    EXPECT_EQ(info.error().status, Status::timeout);
    EXPECT_NE(info.error().message.find("enforce_multipath"), std::string::npos) << info.error().message;
    EXPECT_NE(info.error().message.find("multipath_wait"), std::string::npos) << info.error().message;
    for (const auto &p : portals) {
        const auto j = host().journal_of(p);
        ASSERT_GE(j.size(), 2U) << p;
        EXPECT_EQ(std::vector<std::string>(j.end() - 2, j.end()), strings({"logout", "delete_node"}, p));
    }
    EXPECT_EQ(host().count("remove_device "), 3U);
    EXPECT_EQ(host().sessions(), 0U);
    EXPECT_EQ(host().devices(), 0U);
    EXPECT_EQ(host().node_records(), 0U);
}

// The connector's enforce_multipath (os-brick's get_connector_properties(enforce_multipath=True)) reaches the
// host path through the decision, not only the config key.
TEST_F(HostPathPolicy, ConnectorEnforceMultipathAlsoRefusesAMapThatDoesNotForm) {
    decision_.enforce_multipath = true;
    host_setup_.push_back([](FakeHostOps &h) { h.set_map_forms(false); });
    auto info = connect();
    ASSERT_FALSE(info.ok()) << "a degraded single-path fallback despite the connector's enforce_multipath";
    EXPECT_NE(info.error().message.find("enforce_multipath"), std::string::npos) << info.error().message;
    EXPECT_EQ(host().sessions(), 0U);
    EXPECT_EQ(host().devices(), 0U);
}

TEST_F(HostPathPolicy, EnforceMultipathWithEveryPathRefusedNamesTheMultipathAddStep) {
    config_.enforce_multipath = true;
    host_setup_.push_back([](FakeHostOps &h) { h.fail("multipath_add"); });
    auto info = connect();
    ASSERT_FALSE(info.ok());
    EXPECT_EQ(info.error().status, Status::backend);
    EXPECT_NE(info.error().message.find("multipath_add"), std::string::npos) << info.error().message;
    EXPECT_EQ(host().sessions(), 0U);
}

TEST_F(HostPathPolicy, EveryPathFailingUndoesEverythingWithTheFirstPathsStatus) {
    host_setup_.push_back([](FakeHostOps &h) { h.fail("login", "", Status::auth); });
    auto info = connect();
    ASSERT_FALSE(info.ok());
    EXPECT_EQ(info.error().status, Status::auth);
    EXPECT_EQ(host().sessions(), 0U);
    EXPECT_EQ(host().node_records(), 0U);
}

TEST_F(HostPathPolicy, PathsToDifferentLusAreRefusedBeforeAnyLogin) {
    probe_[portals[2]] = [](ivd::iscsi::ProbeResult &r) { r.identity = ivd::iscsi::LuIdentity{"3600other", {"3:3600other"}}; };
    auto info = connect();
    ASSERT_FALSE(info.ok());
    EXPECT_EQ(info.error().status, Status::inconsistent);
    EXPECT_EQ(host().count("login "), 0U);
}

TEST_F(HostPathPolicy, UnhealthyProbesAreLeftOutAndNoUsablePathFailsWithTheirStatus) {
    probe_[portals[0]] = [](ivd::iscsi::ProbeResult &r) { r.outcome = ivd::iscsi::ProbeOutcome::timeout; };
    auto info = connect();
    ASSERT_TRUE(info.ok()) << info.error().message;
    EXPECT_EQ((*info)["failed_portals"][0]["stage"].as_string(), "probe");
    EXPECT_EQ(host().journal_of(portals[0]), std::vector<std::string>{});

    path_.reset();
    for (const auto &p : portals) {
        probe_[p] = [](ivd::iscsi::ProbeResult &r) { r.outcome = ivd::iscsi::ProbeOutcome::auth_failed; };
    }
    auto none = connect();
    ASSERT_FALSE(none.ok());
    EXPECT_EQ(none.error().status, Status::auth);
    EXPECT_EQ(host().count("login "), 0U);
}

TEST_F(HostPathPolicy, AFailedPathOnASharedSessionLeavesTheSessionAndItsOtherLun) {
    host_setup_.push_back([](FakeHostOps &h) {
        h.add_foreign_lun(portal(portals[1]), iqn, 2);
        h.fail("wwid", portals[1]);
    });
    auto info = connect();
    ASSERT_TRUE(info.ok()) << info.error().message;
    EXPECT_TRUE(host().has_session(portals[1]));
    EXPECT_EQ(host().count("logout "), 0U);
    EXPECT_EQ(host().count("delete_node "), 0U);
    // Only the device this attempt's scan made goes; the other volume's LUN stays.
    EXPECT_EQ(host().count("remove_device "), 1U);
    EXPECT_EQ(host().devices(), 3U);
}

TEST_F(HostPathPolicy, AFailedPathKeepsADeviceThatWasThereBeforeIt) {
    // Another connect of the same volume has LUN 1 on this portal already: its device is not this attempt's.
    host_setup_.push_back([](FakeHostOps &h) {
        h.add_foreign_lun(portal(portals[1]), iqn, 1);
        h.fail("wwid", portals[1]);
    });
    auto info = connect();
    ASSERT_TRUE(info.ok()) << info.error().message;
    EXPECT_EQ(host().count("remove_device "), 0U);
    EXPECT_TRUE(host().has_session(portals[1]));
}

TEST_F(HostPathPolicy, DisconnectKeepsASessionAnotherVolumeStillUses) {
    host_setup_.push_back([](FakeHostOps &h) { h.add_foreign_lun(portal(portals[0]), iqn, 2); });
    auto info = connect();
    ASSERT_TRUE(info.ok()) << info.error().message;
    ASSERT_TRUE(disconnect(*info).ok());
    EXPECT_TRUE(host().has_session(portals[0]));
    EXPECT_EQ(host().devices(), 1U);  // the other volume's LUN
    EXPECT_EQ(host().count("logout " + portals[0]), 0U);
    EXPECT_EQ(host().count("logout "), 2U);
}

TEST_F(HostPathPolicy, SinglePathTriesThePortalsInTurnUndoingEachFailure) {
    decision_.multipath = false;
    host_setup_.push_back([](FakeHostOps &h) {
        h.fail("login", portals[0]);
        h.fail("device", portals[1], Status::timeout);
    });
    auto info = connect();
    ASSERT_TRUE(info.ok()) << info.error().message;
    EXPECT_EQ((*info)["served_by"]["portal"].as_string(), portals[2]);
    EXPECT_EQ(column((*info)["failed_portals"], "portal"), (std::vector<std::string>{portals[0], portals[1]}));
    EXPECT_EQ(column((*info)["failed_portals"], "stage"), (std::vector<std::string>{"login", "device"}));
    EXPECT_EQ(host().journal(),
              (std::vector<std::string>{"login " + portals[0], "delete_node " + portals[0],
                                        "login " + portals[1], "scan " + portals[1] + " lun 1",
                                        "logout " + portals[1], "delete_node " + portals[1],
                                        "login " + portals[2], "scan " + portals[2] + " lun 1"}));
    EXPECT_EQ(host().sessions(), 1U);
    EXPECT_EQ(host().count("whitelist "), 0U);  // no multipath, no multipath -a
}

TEST_F(HostPathPolicy, SinglePathStopsAtTheFirstPortalThatWorks) {
    decision_.multipath = false;
    auto info = connect();
    ASSERT_TRUE(info.ok()) << info.error().message;
    EXPECT_EQ(host().count("login "), 1U);
    EXPECT_EQ((*info)["paths"].items().size(), 1U);
    EXPECT_FALSE((*info)["multipath"].as_bool());
}

TEST_F(HostPathPolicy, AFailedFlushStopsADisconnectWithoutForceWithEverythingInPlace) {
    auto info = connect();
    ASSERT_TRUE(info.ok()) << info.error().message;
    host().fail("flush");
    auto r = disconnect(*info);
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().message.find("VD_DISCONNECT_FORCE"), std::string::npos) << r.error().message;
    EXPECT_EQ(host().count("remove_device "), 0U);
    EXPECT_EQ(host().sessions(), 3U);
}

TEST_F(HostPathPolicy, ForceGoesPastFailedStepsAndReportsThem) {
    auto info = connect();
    ASSERT_TRUE(info.ok()) << info.error().message;
    host().fail("flush");
    host().fail("logout", portals[1]);
    auto r = disconnect(*info, VD_DISCONNECT_FORCE);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().status, Status::backend);
    EXPECT_NE(r.error().message.find("2 step(s) undone"), std::string::npos) << r.error().message;
    EXPECT_NE(r.error().message.find("flush_multipath"), std::string::npos);
    EXPECT_NE(r.error().message.find("logout"), std::string::npos);
    EXPECT_EQ(host().devices(), 0U);
    EXPECT_EQ(host().sessions(), 1U);  // the one whose logout failed
    EXPECT_EQ(host().count("delete_node " + portals[1]), 0U);  // its record stays with it
}

TEST_F(HostPathPolicy, IgnoreErrorsGoesPastFailedStepsAndSucceeds) {
    auto info = connect();
    ASSERT_TRUE(info.ok()) << info.error().message;
    host().fail("remove_device", portals[0]);
    host().fail("delete_node", portals[2]);
    ASSERT_TRUE(disconnect(*info, VD_DISCONNECT_IGNORE_ERRORS).ok());
    EXPECT_TRUE(host().has_session(portals[0]));  // its LUN's device is still there
    EXPECT_FALSE(host().has_session(portals[2]));
}

TEST_F(HostPathPolicy, WithoutForceAFailedLogoutStopsTheDisconnect) {
    auto info = connect();
    ASSERT_TRUE(info.ok()) << info.error().message;
    host().fail("logout", portals[0]);
    auto r = disconnect(*info);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(host().count("logout " + portals[1]), 0U);  // stopped at the first failure
}

TEST_F(HostPathPolicy, AnUnsafeLockDirStopsConnectBeforeAnything) {
    host_setup_.push_back([](FakeHostOps &h) { h.fail("prepare", "", Status::config); });
    auto info = connect();
    ASSERT_FALSE(info.ok());
    EXPECT_EQ(info.error().status, Status::config);
    EXPECT_EQ(probes_, 0);
    EXPECT_TRUE(host().journal().empty());
}

}  // namespace
