// Shared by the fault and leak-scan suites: running volume-host, reading its JSON, and counting what is left
// (our libvirt secrets, simulated sessions, devices and node records). Test-only.
#pragma once

#include "test_support.hpp"
#include "libvirt/connection.hpp"
#include "libvirt/secret_store.hpp"

#include <json/json.h>

#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace ivd::faults {

namespace fs = std::filesystem;

using ivd::testing::slurp;

inline void spit(const fs::path &p, const std::string &text) {
    fs::create_directories(p.parent_path());
    std::ofstream(p, std::ios::trunc) << text;
}

inline Json::Value parse(const std::string &text) {
    Json::Value v;
    Json::CharReaderBuilder b;
    std::string errors;
    std::unique_ptr<Json::CharReader> r(b.newCharReader());
    if (!r->parse(text.data(), text.data() + text.size(), &v, &errors)) return Json::Value();
    return v;
}

inline std::string compact(const Json::Value &v) {
    Json::StreamWriterBuilder b;
    b["indentation"] = "";
    return Json::writeString(b, v);
}

// Single-quotes for /bin/sh.
inline std::string shell_quote(const std::string &s) {
    std::string out = "'";
    for (char c : s) {
        if (c == '\'') {
            out += "'\\''";
        } else {
            out += c;
        }
    }
    return out + "'";
}

struct CliRun {
    int exit_code = -1;
    std::string out;
    std::string err;
    // The {"error": {...}} object volume-host printed last on stderr (null when none).
    Json::Value error() const {
        const auto at = err.rfind("{\"error\"");
        if (at == std::string::npos) return Json::Value();
        return parse(err.substr(at))["error"];
    }
};

// Runs volume-host with `args` (already shell-quoted where needed); stdout/stderr go through files in `dir`.
// Every run's output is appended to *transcript when given (the leak scan reads it). A non-empty `launcher`
// (e.g. "simulated-host DIR") runs volume-host.
inline CliRun run_volume_host(const fs::path &dir, const std::string &global_args, const std::string &args,
                              std::string *transcript = nullptr, const std::string &launcher = "") {
    static int serial = 0;
    const fs::path out = dir / ("vh-" + std::to_string(++serial) + ".out");
    const fs::path err = dir / ("vh-" + std::to_string(serial) + ".err");
    const std::string cmd = (launcher.empty() ? "" : launcher + " ") + VOLUME_HOST_PATH + " " + global_args + " " + args + " >" +
                            out.string() + " 2>" + err.string() + " </dev/null";
    const int status = std::system(cmd.c_str());
    CliRun r;
    r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    r.out = slurp(out);
    r.err = slurp(err);
    if (transcript != nullptr) *transcript += "$ volume-host " + args + "\n" + r.out + r.err;
    return r;
}

// Usage names of our libvirt secrets under `prefix` (the full usage prefix, "iscsi-volume-driver:...").
inline std::vector<std::string> secrets_with_prefix(const std::string &uri, const std::string &prefix) {
    auto connection = std::make_shared<ivd::libvirt::Connection>(uri);
    ivd::libvirt::LibvirtSecretStore store(connection);
    auto list = store.list_iscsi_secret_usages(prefix);
    EXPECT_TRUE(list.ok()) << (list.ok() ? "" : list.error().message);
    return list.ok() ? *list : std::vector<std::string>{};
}

inline std::size_t count_entries(const fs::path &p, const std::string &name_prefix = "") {
    std::error_code ec;
    std::size_t n = 0;
    for (fs::directory_iterator it(p, ec), end; !ec && it != end; it.increment(ec)) {
        if (it->path().filename().string().rfind(name_prefix, 0) == 0) ++n;
    }
    return n;
}

// What a simulated host holds: sessions, path devices (sdX), multipath maps (dm-N) and node records.
struct SimState {
    std::size_t sessions = 0, sd_devices = 0, dm_devices = 0, node_records = 0;
    bool empty() const { return sessions == 0 && sd_devices == 0 && dm_devices == 0 && node_records == 0; }
    std::string describe() const {
        return "sessions=" + std::to_string(sessions) + " sd=" + std::to_string(sd_devices) +
               " dm=" + std::to_string(dm_devices) + " node_records=" + std::to_string(node_records);
    }
};

inline SimState sim_state(const fs::path &sim) {
    SimState s;
    s.sessions = count_entries(sim / "sys/class/iscsi_session");
    s.sd_devices = count_entries(sim / "dev", "sd") + count_entries(sim / "sys/block", "sd");
    s.dm_devices = count_entries(sim / "dev", "dm-") + count_entries(sim / "sys/block", "dm-");
    std::error_code ec;
    for (fs::recursive_directory_iterator it(sim / "etc/iscsi/nodes", ec), end; !ec && it != end; it.increment(ec)) {
        if (it->is_regular_file()) ++s.node_records;
    }
    return s;
}

// Polls `done` every 50 ms for up to `timeout`; QEMU and the simulated kernel let go asynchronously.
inline bool eventually(const std::function<bool()> &done, std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!done()) {
        if (std::chrono::steady_clock::now() > deadline) return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return true;
}

}  // namespace ivd::faults
