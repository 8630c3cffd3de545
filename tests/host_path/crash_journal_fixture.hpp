// The fixture of the crash journal tests: a simulated host with a real tgtd, a driver whose host path journals
// through an observer, connect or disconnect in a child that dies at a chosen journal write, tree snapshots.
#pragma once

#include "proc_stat.hpp"
#include "test_support.hpp"
#include "driver/driver.hpp"
#include "host_path/host_path.hpp"
#include "host_path/real_host_ops.hpp"
#include "request/json_input.hpp"
#include "setup.hpp"
#include "tgtd_lab.hpp"

#include <volume_driver/volume_driver.h>

#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <json/json.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <sstream>
#include <thread>

namespace ivd::testing::crashjournal {

namespace fs = std::filesystem;
using ivd::testing::slurp;
using ivd::testing::TgtdLab;

inline constexpr const char *initiator = "iqn.2004-10.org.example:crash-journal-test";
inline constexpr int crashed = 77;  // the child's exit status when it stopped dead at the chosen journal write
inline constexpr auto &parse = ivd::testing::parse_json;
inline constexpr auto &write = ivd::testing::write_json;

class NoNetworkPath final : public ivd::AttachPathImpl {
public:
    // without_libvirt: its cleanup scan fails as the real network path's does when libvirt cannot be reached.
    explicit NoNetworkPath(bool without_libvirt = false) : without_libvirt_(without_libvirt) {}
    ivd::Result<std::vector<ivd::Leftover>> find_leftovers(const ivd::CleanupContext &context) override {
        if (without_libvirt_) return ivd::make_error(ivd::Status::unreachable, "libvirt at qemu:///system is away (simulated)");
        return ivd::AttachPathImpl::find_leftovers(context);
    }
    ivd::Result<ivd::request::DeviceInfo> connect(const ivd::ConnectContext &) override {
        return ivd::make_error(ivd::Status::not_implemented, "no network path in this test");
    }
    ivd::Result<void> disconnect(const ivd::request::VolumeRequest &, const ivd::request::DeviceInfo *, ivd::DisconnectOptions) override {
        return ivd::make_error(ivd::Status::not_implemented, "no network path in this test");
    }

private:
    bool without_libvirt_;
};

// Every file, directory and symlink of the simulated host's trees, with contents; the wwids file as its entries.
using Snapshot = std::map<std::string, std::string>;

class CrashJournalTest : public ::testing::Test {
protected:
    void SetUp() override {
        std::string templ = (fs::temp_directory_path() / "ivd-crash-journal-XXXXXX").string();
        ASSERT_NE(::mkdtemp(templ.data()), nullptr);
        dir_ = templ;
        sim_config_ = ivd::simhost::prepare_simulated_host(dir_, initiator);
        iqn_ = lab_.make_iqn("crashjournal");
        lab_.add_lun(lab_.create_target(iqn_), 1);
        while (lab_.portals().size() < 2) lab_.add_portal();
    }
    void TearDown() override {
        ivd::simhost::stop_simulated_sessions(dir_);
        std::error_code ec;
        fs::remove_all(dir_, ec);
    }

    std::string config_json() const {
        Json::Value config(Json::objectValue);
        for (const auto &[k, v] : sim_config_) config[k] = v;
        config["state_dir"] = (dir_ / "driver-state").string();
        config["device_wait_timeout_ms"] = "5000";
        config["multipath_wait_timeout_ms"] = "3000";
        return write(config);
    }

    // A driver whose host path journals through `observer`; domains use `domain_devices` (an error when unset).
    std::unique_ptr<ivd::Driver> make_driver(ivd::host_path::JournalObserver observer,
                                             std::optional<std::vector<std::string>> domain_devices,
                                             bool without_libvirt = false) const {
        auto doc = ivd::request::parse_object(config_json().c_str(), "config");
        auto config = ivd::request::parse_driver_config(*doc);
        const ivd::request::HostPathConfig hp = config->host_path();
        ivd::DriverParts parts;
        ivd::HostFacts facts;
        facts.capabilities.host_iscsi = true;
        facts.capabilities.multipath = true;
        facts.initiator = initiator;
        parts.facts = facts;
        parts.network = std::make_unique<NoNetworkPath>(without_libvirt);
        parts.host = std::make_unique<ivd::host_path::HostPath>(
            hp, ivd::Logger{}, ivd::host_path::make_real_host_ops(hp, ivd::Logger{}), ivd::host_path::StorageQueries{},
            ivd::host_path::make_file_journal(hp.state_dir, hp.state_lock_timeout, std::move(observer)));
        parts.domain_block_devices = [domain_devices]() -> ivd::Result<std::vector<std::string>> {
            if (!domain_devices) return ivd::make_error(ivd::Status::unreachable, "libvirt is away (simulated)");
            return *domain_devices;
        };
        auto d = ivd::Driver::create(config_json().c_str(), {}, std::move(parts));
        return d ? std::move(d).value() : nullptr;
    }

    Json::Value ci() const {
        Json::Value c(Json::objectValue);
        c["driver_volume_type"] = "iscsi";
        Json::Value &d = c["data"];
        for (std::size_t i = 0; i < 2; ++i) {
            d["target_portals"].append(lab_.portals()[i].to_string());
            d["target_iqns"].append(iqn_);
            d["target_luns"].append(1);
        }
        d["volume_id"] = "vol-crash-journal";
        return c;
    }

    static std::string connector() { return std::string(R"({"initiator":")") + initiator + R"(","multipath":true})"; }

    // Runs `what` in a child process that stops dead (_exit) right after the journal's `crash_at`th write
    // (0: never). Returns the child's exit status; the number of writes it made is in writes_file().
    int in_child(int crash_at, const std::function<int(ivd::Driver &)> &what) {
        const pid_t pid = ::fork();
        if (pid == 0) {
            int writes = 0;
            auto driver = make_driver(
                [&](const ivd::host_path::JournalRecord &) {
                    std::ofstream(writes_file()) << ++writes;
                    if (writes == crash_at) ::_exit(crashed);
                },
                std::vector<std::string>{});
            ::_exit(driver ? what(*driver) : 3);
        }
        int status = 0;
        ::waitpid(pid, &status, 0);
        wait_for_orphaned_tools();
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
    // A tool the dead process had started (an iscsiadm login) runs on to its end, as after kill -9; cleanup runs
    // after it (an operator's cleanup comes much later). Session daemons (their own session id) are not waited for.
    // A tool being spawned when the process died is a copy of this test binary until its exec: waited for too.
    void wait_for_orphaned_tools() const {
        const std::string bin = (dir_ / "bin").string() + "/";
        // The whole command line, NULs included: argv[0] alone is shared by every test of this binary that ctest
        // runs at the same time in the same session (each would wait for the other).
        const std::string self = slurp("/proc/self/cmdline");
        for (int i = 0, quiet = 0; i < 1000 && quiet < 5; ++i) {
            bool running = false;
            std::error_code ec;
            for (fs::directory_iterator it("/proc", ec), end; !ec && it != end; it.increment(ec)) {
                const std::string pid = it->path().filename().string();
                if (pid.find_first_not_of("0123456789") != std::string::npos) continue;
                const std::string cmdline = slurp(it->path() / "cmdline");
                const bool copy = cmdline == self && std::stol(pid) != ::getpid();
                if (std::string_view(cmdline.c_str()).rfind(bin, 0) != 0 && !copy) continue;
                // state, ppid, pgrp, session; none when it exited since (not running)
                const auto fields = ivd::testing::proc_stat_fields(slurp(it->path() / "stat"));
                if (fields.size() < 4) continue;
                if (std::stol(fields[3]) == ::getsid(0) && fields[0] != "Z") running = true;
            }
            quiet = running ? 0 : quiet + 1;  // quiet for a few polls in a row: nothing is between spawn and exec
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
    }

    int connect_in_child(int crash_at) {
        return in_child(crash_at, [this](ivd::Driver &d) {
            auto r = d.connect_volume(write(ci()).c_str(), connector().c_str(), R"({"bus":"scsi","dev":"sdb"})", 0);
            if (!r) return 1;
            std::ofstream(dir_ / "device_info.json") << *r;
            return 0;
        });
    }
    int disconnect_in_child(int crash_at) {
        return in_child(crash_at, [this](ivd::Driver &d) {
            return d.disconnect_volume(write(ci()).c_str(), slurp(dir_ / "device_info.json").c_str(), 0).ok() ? 0 : 1;
        });
    }
    int writes() const { return std::stoi(slurp(writes_file())); }
    fs::path writes_file() const { return dir_ / "journal-writes"; }

    ivd::Result<Json::Value> cleanup(std::uint32_t flags, std::optional<std::vector<std::string>> domain_devices = std::vector<std::string>{},
                                     bool without_libvirt = false) {
        auto driver = make_driver({}, std::move(domain_devices), without_libvirt);
        auto r = driver->cleanup(flags);
        if (!r) return r.error();
        return parse(*r);
    }

    // Taken while the simulated kernel may still be taking a session down: what vanishes meanwhile is skipped.
    Snapshot snapshot() const {
        Snapshot out;
        for (const char *tree : {"sys", "dev", "etc/iscsi/nodes"}) {
            std::error_code ec;
            for (fs::recursive_directory_iterator it(dir_ / tree, ec), end; !ec && it != end; it.increment(ec)) {
                const std::string rel = it->path().lexically_relative(dir_).string();
                std::error_code e2;
                const fs::file_status st = fs::symlink_status(it->path(), e2);
                if (e2) continue;
                if (fs::is_symlink(st)) {
                    out[rel] = "-> " + fs::read_symlink(it->path(), e2).string();
                } else if (fs::is_directory(st)) {
                    out[rel] = "<dir>";
                } else {
                    out[rel] = slurp(it->path());
                }
            }
        }
        std::istringstream wwids(slurp(dir_ / "etc/multipath/wwids"));
        for (std::string line; std::getline(wwids, line);) {
            if (!line.empty()) out["wwids " + line] = "";
        }
        return out;
    }
    std::vector<std::string> journal_files() const {
        std::vector<std::string> names;
        std::error_code ec;
        for (fs::directory_iterator it(dir_ / "driver-state/host-attachments", ec), end; !ec && it != end; it.increment(ec)) {
            if (it->path().extension() == ".json") names.push_back(it->path().filename().string());
        }
        return names;
    }

    // Processes holding files of the driver's state_dir open (for a failure message).
    std::string holders() const {
        std::string out;
        std::error_code ec;
        for (fs::directory_iterator it("/proc", ec), end; !ec && it != end; it.increment(ec)) {
            std::error_code e2;
            for (fs::directory_iterator fd(it->path() / "fd", e2), fe; !e2 && fd != fe; fd.increment(e2)) {
                std::error_code e3;
                const std::string target = fs::read_symlink(fd->path(), e3).string();
                if (target.find("driver-state") != std::string::npos) {
                    out += "\n  " + it->path().filename().string() + " " + slurp(it->path() / "cmdline").c_str() + " holds " + target;
                }
            }
        }
        return out;
    }

    static std::string diff(const Snapshot &want, const Snapshot &got) {
        std::string out;
        for (const auto &[k, v] : got) {
            if (!want.count(k)) out += "  left: " + k + "\n";
            else if (want.at(k) != v) out += "  changed: " + k + "\n";
        }
        for (const auto &[k, v] : want) {
            if (!got.count(k)) out += "  missing: " + k + "\n";
        }
        return out;
    }

    // After a crash: cleanup removes the one attachment and the trees are as `want`.
    void expect_cleaned(const Snapshot &want, const std::string &where) {
        auto report = cleanup(0);
        ASSERT_TRUE(report.ok()) << where << ": " << report.error().message;
        EXPECT_EQ((*report)["failed"].asInt(), 0) << where << ": " << write(*report);
        // The simulated kernel takes a logged-out session's tree down a moment after its class links (as sysfs
        // does): give it a bounded while.
        std::string left = diff(want, snapshot());
        for (int i = 0; i < 300 && !left.empty(); ++i) {
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
            left = diff(want, snapshot());
        }
        EXPECT_EQ(left, "") << where << ": " << write(*report) << holders();
        EXPECT_TRUE(journal_files().empty()) << where;
    }

    TgtdLab lab_;
    fs::path dir_;
    std::map<std::string, std::string> sim_config_;
    std::string iqn_;
};

}  // namespace ivd::testing::crashjournal
