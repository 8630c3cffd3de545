// The host path's crash journal on the simulated host with a real tgtd: a connect or disconnect that dies right
// after any journal write (the step about to run: a child process _exits there, so no destructor, undo or journal
// end runs, as with kill -9) leaves what `cleanup` undoes until the simulated host's trees (sysfs, dev, node
// records, multipath wwids) are exactly as before the connect. Attachments a domain uses are kept and reported.
#include "crash_journal_fixture.hpp"

#include <volume_driver/volume_driver.h>

#include <gtest/gtest.h>
#include <json/json.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace {

namespace fs = std::filesystem;
using ivd::testing::slurp;
using ivd::testing::crashjournal::crashed;
using ivd::testing::crashjournal::CrashJournalTest;
using ivd::testing::crashjournal::parse;
using ivd::testing::crashjournal::Snapshot;
using ivd::testing::crashjournal::write;

TEST_F(CrashJournalTest, ACrashAtEveryConnectStepIsUndoneByCleanup) {
    const Snapshot before = snapshot();
    ASSERT_EQ(connect_in_child(0), 0) << "a whole connect, counting its journal writes";
    const int steps = writes();
    EXPECT_GE(steps, 12) << "begin, 5 steps on each of 2 paths, the map, connected";
    EXPECT_EQ(journal_files().size(), 1u) << "a connected volume keeps its record";
    expect_cleaned(before, "unused connected attachment");
    for (int n = 1; n <= steps; ++n) {
        ASSERT_EQ(connect_in_child(n), crashed) << "crash at journal write " << n;
        ASSERT_EQ(journal_files().size(), 1u) << "crash at journal write " << n;
        expect_cleaned(before, "connect crashed at journal write " + std::to_string(n));
        if (HasFailure()) return;
    }
}

TEST_F(CrashJournalTest, ACrashAtEveryDisconnectStepIsUndoneByCleanup) {
    ASSERT_EQ(connect_in_child(0), 0);
    ASSERT_EQ(disconnect_in_child(0), 0) << "a whole disconnect, counting its journal writes";
    const int steps = writes();
    EXPECT_GE(steps, 4) << "begin, flush, remove devices, logout";
    EXPECT_TRUE(journal_files().empty()) << "disconnect removes the record";
    // After it: the wwids entry the first connect added stays (as os-brick's disconnect leaves it), so each
    // connect below finds it listed, and its cleanup keeps it.
    const Snapshot before = snapshot();
    for (int n = 1; n <= steps; ++n) {
        ASSERT_EQ(connect_in_child(0), 0);
        ASSERT_EQ(disconnect_in_child(n), crashed) << "crash at disconnect journal write " << n;
        expect_cleaned(before, "disconnect crashed at journal write " + std::to_string(n));
        if (HasFailure()) return;
    }
}

TEST_F(CrashJournalTest, AnAttachmentADomainUsesIsKeptAndReportedDryRunChangesNothing) {
    const Snapshot before = snapshot();
    ASSERT_EQ(connect_in_child(0), 0);
    const Json::Value info = parse(slurp(dir_ / "device_info.json"));
    const std::string dm = info["path"].asString();
    ASSERT_NE(dm.find("/dm-"), std::string::npos) << write(info);
    const Snapshot connected = snapshot();

    // In use: a domain's disk names the map (through /dev/mapper, as a host may write it).
    auto kept = cleanup(0, std::vector<std::string>{(dir_ / "dev/mapper" / info["multipath_id"].asString()).string()});
    ASSERT_TRUE(kept.ok()) << kept.error().message;
    ASSERT_EQ((*kept)["items"].size(), 1u) << write(*kept);
    const Json::Value &item = (*kept)["items"][0];
    EXPECT_EQ(item["kind"].asString(), "host_attachment");
    EXPECT_EQ(item["name"].asString(), "volume:vol-crash-journal");
    EXPECT_EQ(item["action"].asString(), "kept");
    EXPECT_EQ(item["state"].asString(), "connected");
    EXPECT_NE(item["reason"].asString().find("dm-"), std::string::npos) << write(item);
    EXPECT_EQ(diff(connected, snapshot()), "");

    // A connect, disconnect or cleanup of the volume running in another process (it holds the journal lock): kept.
    {
        auto journal = ivd::host_path::make_file_journal((dir_ / "driver-state").string(), std::chrono::seconds(1));
        auto busy = journal->lock("volume:vol-crash-journal");
        ASSERT_TRUE(busy.ok()) << busy.error().message;
        auto running = cleanup(0);
        ASSERT_TRUE(running.ok()) << running.error().message;
        EXPECT_EQ((*running)["items"][0]["action"].asString(), "kept") << write(*running);
        EXPECT_NE((*running)["items"][0]["reason"].asString().find("running"), std::string::npos) << write(*running);
        EXPECT_EQ(diff(connected, snapshot()), "");
    }

    // libvirt cannot tell: reported, never removed.
    auto unknown = cleanup(0, std::nullopt);
    ASSERT_TRUE(unknown.ok()) << unknown.error().message;
    EXPECT_EQ((*unknown)["items"][0]["action"].asString(), "reported") << write(*unknown);
    EXPECT_EQ(diff(connected, snapshot()), "");

    // Unused: a dry run says so and changes nothing; then cleanup undoes it all.
    auto dry = cleanup(VD_CLEANUP_DRY_RUN);
    ASSERT_TRUE(dry.ok()) << dry.error().message;
    EXPECT_EQ((*dry)["items"][0]["action"].asString(), "would_remove") << write(*dry);
    EXPECT_EQ(diff(connected, snapshot()), "");
    EXPECT_EQ(journal_files().size(), 1u);
    expect_cleaned(before, "unused attachment");
}

// A host without libvirt (the VM lab's guest has no libvirtd): the network path cannot scan and is reported as not
// scanned (partial), nothing of it touched; the host path still undoes a half-done connect (never handed to a
// guest) and a half-done disconnect, and keeps, reporting it, a connected attachment whose use cannot be checked.
// The old cleanup failed as a whole here and undid nothing.
TEST_F(CrashJournalTest, WithoutLibvirtAHalfDoneConnectIsUndoneAndTheNetworkPathIsReportedNotScanned) {
    const Snapshot before = snapshot();
    ASSERT_EQ(connect_in_child(0), 0);
    const int steps = writes();
    expect_cleaned(before, "unused connected attachment");
    ASSERT_EQ(connect_in_child(steps / 2), crashed) << "crash at journal write " << steps / 2 << " of " << steps;

    auto report = cleanup(0, std::nullopt, true);
    ASSERT_TRUE(report.ok()) << report.error().message;
    EXPECT_TRUE((*report)["partial"].asBool()) << write(*report);
    ASSERT_EQ((*report)["not_scanned"].size(), 1u) << write(*report);
    EXPECT_EQ((*report)["not_scanned"][0]["path"].asString(), "network");
    EXPECT_EQ((*report)["not_scanned"][0]["code"].asString(), "unreachable");
    EXPECT_NE((*report)["not_scanned"][0]["reason"].asString().find("libvirt"), std::string::npos) << write(*report);
    EXPECT_EQ((*report)["paths"]["host"].asString(), "scanned");
    EXPECT_EQ((*report)["failed"].asInt(), 0) << write(*report);
    ASSERT_EQ((*report)["items"].size(), 1u) << write(*report);
    EXPECT_EQ((*report)["items"][0]["action"].asString(), "removed") << write(*report);
    EXPECT_EQ((*report)["items"][0]["state"].asString(), "connecting") << write(*report);
    std::string left = diff(before, snapshot());
    for (int i = 0; i < 300 && !left.empty(); ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
        left = diff(before, snapshot());
    }
    EXPECT_EQ(left, "") << write(*report);
    EXPECT_TRUE(journal_files().empty());

    // A completed connect: whether a domain uses it cannot be checked, so it is kept and reported, never removed.
    ASSERT_EQ(connect_in_child(0), 0);
    const Snapshot connected = snapshot();
    auto unknown = cleanup(0, std::nullopt, true);
    ASSERT_TRUE(unknown.ok()) << unknown.error().message;
    EXPECT_TRUE((*unknown)["partial"].asBool());
    ASSERT_EQ((*unknown)["items"].size(), 1u) << write(*unknown);
    EXPECT_EQ((*unknown)["items"][0]["action"].asString(), "reported") << write(*unknown);
    EXPECT_EQ(diff(connected, snapshot()), "");

    // A disconnect that died half way is finished without libvirt too: the host let go of the disk before it
    // disconnected the volume.
    ASSERT_EQ(disconnect_in_child(3), crashed);
    auto finished = cleanup(0, std::nullopt, true);
    ASSERT_TRUE(finished.ok()) << finished.error().message;
    ASSERT_EQ((*finished)["items"].size(), 1u) << write(*finished);
    EXPECT_EQ((*finished)["items"][0]["state"].asString(), "disconnecting") << write(*finished);
    EXPECT_EQ((*finished)["items"][0]["action"].asString(), "removed") << write(*finished);
    left = diff(before, snapshot());
    for (int i = 0; i < 300 && !left.empty(); ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
        left = diff(before, snapshot());
    }
    EXPECT_EQ(left, "") << write(*finished);
    EXPECT_TRUE(journal_files().empty());
}

// The wwids entry an earlier attach left (a disconnect leaves it, as os-brick does) was there before the connect:
// a crashed connect's cleanup keeps it. Failed before the record read the wwids file: cleanup removed it.
TEST_F(CrashJournalTest, AWwidsEntryThereBeforeTheConnectStaysAfterCleanup) {
    ASSERT_EQ(connect_in_child(0), 0);
    ASSERT_EQ(disconnect_in_child(0), 0);
    const Snapshot before = snapshot();
    const auto entries = std::count_if(before.begin(), before.end(), [](const auto &kv) { return kv.first.rfind("wwids /", 0) == 0; });
    ASSERT_EQ(entries, 1) << "the first connect's multipath -a entry";
    ASSERT_EQ(connect_in_child(1), crashed) << "dead right after the record's first write";
    expect_cleaned(before, "connect crashed with the WWID listed before");
}

TEST_F(CrashJournalTest, RecordsAreVersionedJsonOfRootsOwn) {
    const Snapshot before = snapshot();
    ASSERT_EQ(connect_in_child(0), 0);
    const auto names = journal_files();
    ASSERT_EQ(names.size(), 1u);
    const fs::path file = dir_ / "driver-state/host-attachments" / names[0];
    EXPECT_EQ(fs::status(file).permissions() & (fs::perms::group_all | fs::perms::others_all), fs::perms::none);
    EXPECT_EQ(fs::status(file.parent_path()).permissions() & (fs::perms::group_all | fs::perms::others_all), fs::perms::none);
    const Json::Value record = parse(slurp(file));
    EXPECT_EQ(record["version"].asInt(), 1);
    EXPECT_EQ(record["state"].asString(), "connected");
    EXPECT_EQ(record["paths"].size(), 2u);
    EXPECT_TRUE(record["wwid_added"].asBool());
    // A version this driver does not know is refused, not guessed at: cleanup fails and removes nothing.
    std::string text = slurp(file);
    text.replace(text.find("\"version\":1"), 11, "\"version\":9");
    std::ofstream(file) << text;
    auto r = cleanup(0);
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().message.find("version 9"), std::string::npos) << r.error().message;
    text.replace(text.find("\"version\":9"), 11, "\"version\":1");
    std::ofstream(file) << text;
    expect_cleaned(before, "restored record");
}

}  // namespace
