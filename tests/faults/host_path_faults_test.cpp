// Host path faults on the simulated host against a real tgtd: a failing path, multipathd down, a late device,
// tgtd stopping during login, and disconnects of volumes that are not connected.
#include "fault_fixtures.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <iostream>
#include <thread>

namespace {

using namespace ivd::faults;

// One of three paths fails to log in: the volume is attached degraded on two paths, the failure is reported,
// and the failed path's node record is gone.
TEST_F(HostPathFaults, MultipathPathFailsDuringConnect) {
    const Json::Value ci = lists(3);
    const auto &bad = lab_.portals()[2];
    fault("login_fail_" + bad.host + "_" + std::to_string(bad.port));
    auto r = connect(ci);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const Json::Value info = parse(r.out);
    EXPECT_TRUE(info["multipath"].asBool());
    EXPECT_EQ(info["paths"].size(), 2u) << r.out;
    ASSERT_EQ(info["failed_portals"].size(), 1u) << r.out;
    EXPECT_EQ(info["failed_portals"][0]["portal"].asString(), bad.to_string());
    EXPECT_EQ(info["failed_portals"][0]["stage"].asString(), "login");
    EXPECT_NE(r.err.find("attached with 2 of 3 paths"), std::string::npos) << r.err;
    const SimState mid = sim_state(sim_);
    EXPECT_EQ(mid.sessions, 2u);
    EXPECT_EQ(mid.node_records, 2u) << "the failed path's node record is undone";
    EXPECT_EQ(lab_.session_count(tid_), 2);

    auto d = disconnect(r.out);
    EXPECT_EQ(d.exit_code, 0) << d.err;
    expect_nothing_left();
}

// multipathd is down: without enforce_multipath the volume degrades to one path (and says why); with it, a
// clear error and every path undone.
TEST_F(HostPathFaults, MultipathdDownDegradesOrFailsCleanly) {
    fault("multipathd_down");
    const Json::Value ci = lists(2);
    auto r = connect(ci);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const Json::Value info = parse(r.out);
    EXPECT_FALSE(info["multipath"].asBool());
    EXPECT_FALSE(info["multipath_error"].asString().empty()) << r.out;
    EXPECT_EQ(disconnect(r.out).exit_code, 0);
    expect_nothing_left();

    write_config("enforce_multipath = true\n");
    r = connect(ci);
    EXPECT_EQ(r.exit_code, 5) << r.err;
    EXPECT_NE(r.error()["message"].asString().find("enforce_multipath"), std::string::npos) << r.err;
    expect_nothing_left();
}

// The LUN's device shows up only after device_wait_timeout_ms: a timeout error that says so, and the late
// device does not stay (the session it belongs to is logged out).
TEST_F(HostPathFaults, DeviceAppearingAfterTheDeadlineTimesOutAndLeavesNothing) {
    write_config("", 600);
    fault("device_delay_ms", "2000");
    const auto start = std::chrono::steady_clock::now();
    auto r = connect(lists(1), /*multipath=*/false);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    EXPECT_EQ(r.exit_code, 5) << r.err;
    EXPECT_EQ(r.error()["code"].asString(), "timeout") << r.err;
    EXPECT_NE(r.error()["message"].asString().find("did not appear as a block device within 600 ms"), std::string::npos)
        << r.err;
    std::cout << "timed-out connect returned after " << seconds << " s\n";
    // Give the simulated kernel time to create the late device: it must be removed with its session.
    std::this_thread::sleep_for(2s);
    expect_nothing_left();
}

// tgtd stops while the host is logging in (the stand-in iscsiadm waits 1.5 s before it connects): the login
// fails, the node record is undone, the error says which portal.
TEST_F(HostPathFaults, TgtdStoppedDuringLogin) {
    fault("login_latency_ms", "1500");
    const Json::Value ci = lists(1);
    std::thread stopper([&] {
        std::this_thread::sleep_for(700ms);
        lab_.stop();
    });
    auto r = connect(ci, /*multipath=*/false);
    stopper.join();
    EXPECT_NE(r.exit_code, 0) << r.out;
    EXPECT_EQ(r.exit_code, 5) << r.err;
    EXPECT_NE(r.error()["message"].asString().find("login to"), std::string::npos) << r.err;
    EXPECT_TRUE(eventually([&] { return sim_state(sim_).empty(); })) << sim_state(sim_).describe();
}

// Disconnecting a volume the host never connected, or one already disconnected, succeeds and runs no logout.
TEST_F(HostPathFaults, DisconnectOfUnknownOrDisconnectedVolumeSucceeds) {
    const Json::Value ci = lists(2);
    spit(dir_ / "ci.json", compact(ci));
    auto never = disconnect("{}");
    EXPECT_EQ(never.exit_code, 0) << never.err;
    EXPECT_EQ(slurp(sim_ / "argv.log").find("--logout"), std::string::npos) << "no session: nothing to log out";

    auto r = connect(ci);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(disconnect(r.out).exit_code, 0);
    auto again = disconnect(r.out);
    EXPECT_EQ(again.exit_code, 0) << again.err;
    expect_nothing_left();
}

}  // namespace
