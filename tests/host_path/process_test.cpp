// run_process: how the host path runs iscsiadm and multipath-tools (argv, no shell, a deadline).
#include "host_path/process.hpp"

#include <gtest/gtest.h>

#include <chrono>

namespace {

using ivd::host_path::run_process;
using namespace std::chrono_literals;

long ms_since(std::chrono::steady_clock::time_point start) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start).count();
}

TEST(RunProcess, CollectsExitCodeAndBothStreams) {
    const auto r = run_process({"/bin/sh", "-c", "echo to-out; echo to-err >&2; exit 3"}, 10s);
    ASSERT_TRUE(r.started) << r.spawn_error;
    EXPECT_FALSE(r.timed_out);
    EXPECT_EQ(r.exit_code, 3);
    EXPECT_EQ(r.out, "to-out\n");
    EXPECT_EQ(r.err, "to-err\n");
}

TEST(RunProcess, OutputWrittenJustBeforeExitIsKept) {
    // More than one pipe buffer read, written right before the exit: none of it may be lost to the exit check.
    const auto r = run_process({"/bin/sh", "-c", "i=0; while [ $i -lt 2000 ]; do echo line-$i; i=$((i+1)); done"}, 10s);
    ASSERT_TRUE(r.started) << r.spawn_error;
    EXPECT_EQ(r.exit_code, 0);
    EXPECT_NE(r.out.find("line-0\n"), std::string::npos);
    EXPECT_NE(r.out.find("line-1999\n"), std::string::npos);
}

// The stand-in iscsiadm (and a real one starting iscsid) leaves a daemon behind that may hold the tool's pipes:
// the tool's own exit ends the wait, not the daemon's.
TEST(RunProcess, ADaemonHoldingThePipesDoesNotHoldTheCaller) {
    const auto start = std::chrono::steady_clock::now();
    const auto r = run_process({"/bin/sh", "-c", "sleep 4 & echo started"}, 10s);
    const long took = ms_since(start);
    ASSERT_TRUE(r.started) << r.spawn_error;
    EXPECT_FALSE(r.timed_out);
    EXPECT_EQ(r.exit_code, 0);
    EXPECT_EQ(r.out, "started\n");
    EXPECT_LT(took, 2500) << "waited for the background sleep";
}

TEST(RunProcess, ATimeoutKillsTheTool) {
    const auto start = std::chrono::steady_clock::now();
    const auto r = run_process({"/bin/sleep", "10"}, 300ms);
    const long took = ms_since(start);
    ASSERT_TRUE(r.started) << r.spawn_error;
    EXPECT_TRUE(r.timed_out);
    EXPECT_GE(took, 250);
    EXPECT_LT(took, 5000);
}

TEST(RunProcess, RelativePathsAreNotRun) {
    const auto r = run_process({"sh", "-c", "true"}, 1s);
    EXPECT_FALSE(r.started);
    EXPECT_FALSE(r.spawn_error.empty());
}

TEST(RunProcess, ManyShortRunsEachSeeTheirOwnExit) {
    for (int i = 0; i < 20; ++i) {
        const auto r = run_process({"/bin/sh", "-c", "exit " + std::to_string(i)}, 10s);
        ASSERT_TRUE(r.started) << r.spawn_error;
        EXPECT_EQ(r.exit_code, i);
    }
}

}  // namespace
