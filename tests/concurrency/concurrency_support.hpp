// Shared by the concurrency tests: the module loaded once through the real ABI, the in-lock serialisation
// detector fed by the host log callback, and the job runner (threads, timings, failures, watchdog).
// The tests drive the built iscsi_volume_driver.so the way a compute service does: many threads through ONE
// dlopen'd module, only through the C ABI.
//
//   NetworkPath: 64 threads connect and disconnect 1,000 volumes on the network path. The secrets are real
//     libvirt secrets (real libvirtd); multi-portal volumes are probed against a real tgtd (3 portals, 4 targets,
//     a dead portal listed first for a third of the volumes). Some volumes are hit by several threads at once.
//   HostPath: the host (multipath) path on the simulated host at a smaller scale; volumes share targets, so
//     sessions are shared, kept and logged out while other volumes of the same target come and go.
//
// Checked: every call returns (a watchdog aborts with the calls in flight), each device_info matches its volume,
// calls for one volume never overlap inside the driver, and the end state is clean (no secrets, no sessions, no
// node records, no maps). Timings are printed, never asserted.
//
// Same-volume exclusion is observed from inside the driver's per-volume lock: the driver logs "<volume key>: ..."
// under that lock when a connect or disconnect begins, and, for the volumes named "-late", a later message still
// under the lock (the network path's "skipped N unhealthy portal(s)" after probing; the host path's "attached with
// N of M paths" after the multipath map). The host log callback marks the volume owned from the first message to
// the last: a second thread entering in between is a serialisation failure, with no false positives (both
// messages are emitted while the lock is held).
//
// Scale (environment): IVD_CONC_VOLUMES (1000), IVD_CONC_THREADS (64), IVD_CONC_LUNS per target (32),
// IVD_CONC_HOST_VOLUMES (96), IVD_CONC_HOST_THREADS (24), IVD_CONC_DEADLINE_S (600).
#pragma once

#include "test_support.hpp"
#include "tgtd_lab.hpp"

#include <volume_driver/volume_driver.h>

#include <dlfcn.h>
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include <json/json.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

namespace ivd::concurrency {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;
using ivd::testing::TgtdLab;
using ivd::testing::TgtdPortal;

inline constexpr const char *initiator = "iqn.1993-08.org.debian:01:concurrency";
inline constexpr const char *chap_user = "conc-user";
// Recognisable, so that any output, log line or device_info carrying it is caught.
inline constexpr const char *chap_password = "Conc-Pw-41f7e2c9";

int env_int(const char *name, int fallback);

inline constexpr auto &parse = ivd::testing::parse_json;

inline constexpr auto &compact = ivd::testing::write_json;

std::string target_name(int t);

std::size_t count_entries(const fs::path &p);

// ---- Serialisation detector, fed from inside the driver's per-volume lock by the host log callback ----

class Exclusion {
public:
    void enter(const std::string &key) {
        const std::lock_guard<std::mutex> lock(mutex_);
        ++entries_;
        if (!owner_.try_emplace(key, std::this_thread::get_id()).second) note("two calls inside the lock of " + key);
    }
    void leave(const std::string &key) {
        const std::lock_guard<std::mutex> lock(mutex_);
        auto it = owner_.find(key);
        if (it == owner_.end() || it->second != std::this_thread::get_id()) {
            note("another call entered " + key + " while this one was still inside");
            return;
        }
        owner_.erase(it);
    }
    // A call that failed before its late message: drop the mark without judging.
    void abandon(const std::string &key) {
        const std::lock_guard<std::mutex> lock(mutex_);
        auto it = owner_.find(key);
        if (it != owner_.end() && it->second == std::this_thread::get_id()) owner_.erase(it);
    }
    int violations() const {
        const std::lock_guard<std::mutex> lock(mutex_);
        return violations_;
    }
    std::uint64_t entries() const {
        const std::lock_guard<std::mutex> lock(mutex_);
        return entries_;
    }
    std::vector<std::string> examples() const {
        const std::lock_guard<std::mutex> lock(mutex_);
        return examples_;
    }

private:
    void note(std::string what) {
        ++violations_;
        if (examples_.size() < 10) examples_.push_back(std::move(what));
    }
    mutable std::mutex mutex_;
    std::unordered_map<std::string, std::thread::id> owner_;
    int violations_ = 0;
    std::uint64_t entries_ = 0;
    std::vector<std::string> examples_;
};

// The volume whose lock this thread's current call holds until its late message.
extern thread_local std::string t_holding;

struct HostLog {
    Exclusion exclusion;
    std::atomic<int> errors{0};
    std::atomic<int> late_markers{0};
    std::atomic<int> secret_leaks{0};
    std::mutex mutex;
    std::vector<std::string> error_lines;
};

void on_log(void *user, std::int32_t level, const char *component, const char *message);

// ---- The module, loaded once, through the real ABI ----

class Module {
public:
    explicit Module(HostLog &log) : host_{sizeof(vd_host_table), &log, on_log} {
        handle_ = dlopen(IVD_MODULE_PATH, RTLD_NOW | RTLD_LOCAL);
        if (handle_ == nullptr) throw std::runtime_error(std::string("dlopen: ") + dlerror());
        auto negotiate = reinterpret_cast<vd_negotiate_fn>(dlsym(handle_, VOLUME_DRIVER_ENTRY_NAME));
        if (negotiate == nullptr) throw std::runtime_error("no entry point");
        std::uint32_t version = VD_ABI_VERSION_1;
        if (negotiate(&version, &host_, &table_) != VD_OK) throw std::runtime_error("negotiation refused");
    }
    ~Module() {
        if (driver_ != nullptr) table_->destroy(driver_);
        dlclose(handle_);
    }
    Module(const Module &) = delete;
    Module &operator=(const Module &) = delete;

    void create(const Json::Value &config) {
        const int32_t rc = table_->create(compact(config).c_str(), &driver_);
        if (rc != VD_OK) throw std::runtime_error(std::string("create: ") + table_->last_error());
    }

    // Returns the status; *out gets device_info or last_error().
    int32_t connect(const std::string &ci, const std::string &connector, const std::string &disk, std::string *out) {
        char *info = nullptr;
        const int32_t rc = table_->connect_volume(driver_, ci.c_str(), connector.c_str(), disk.c_str(), 0, &info);
        *out = rc == VD_OK ? std::string(info) : std::string(table_->last_error());
        table_->free_string(info);
        return rc;
    }
    int32_t disconnect(const std::string &ci, const std::string &device_info, std::string *error) {
        const int32_t rc = table_->disconnect_volume(driver_, ci.c_str(), device_info.c_str(), 0);
        if (rc != VD_OK) *error = table_->last_error();
        return rc;
    }

private:
    vd_host_table host_;
    void *handle_ = nullptr;
    const vd_driver_table *table_ = nullptr;
    vd_driver *driver_ = nullptr;
};

// ---- Running the jobs: threads, per-call timings, failures, the watchdog ----

struct Timings {
    std::vector<double> connect_ms;
    std::vector<double> disconnect_ms;
};

std::string percentiles(std::vector<double> v);

class Failures {
public:
    void add(std::string what) {
        // A driver error names fields, never secrets; checked anyway before anything is printed.
        if (what.find(chap_password) != std::string::npos) what = "<a failure message carried the CHAP password>";
        const std::lock_guard<std::mutex> lock(mutex_);
        ++count_;
        if (examples_.size() < 20) examples_.push_back(std::move(what));
    }
    int count() const {
        const std::lock_guard<std::mutex> lock(mutex_);
        return count_;
    }
    std::string report() const {
        const std::lock_guard<std::mutex> lock(mutex_);
        std::string out;
        for (const auto &e : examples_) out += "  " + e + "\n";
        return out;
    }

private:
    mutable std::mutex mutex_;
    int count_ = 0;
    std::vector<std::string> examples_;
};

// One worker slot, readable by the watchdog.
struct Slot {
    std::atomic<int> volume{-1};
    std::atomic<int> op{0};  // 1 connect, 2 disconnect
    std::atomic<std::int64_t> since_ms{0};
};

std::int64_t now_ms();

// Runs job(i, slot, timings) for every i in `jobs` on `threads` threads; aborts the process with the calls still
// in flight when they do not all return before the deadline (a hang must not become a silent CTest timeout).
Timings run_jobs(const std::vector<int> &jobs, int threads,
                 const std::function<void(int, Slot &, Timings &)> &job);

// Times one ABI call and keeps the slot current for the watchdog.
template <class F>
int32_t timed(Slot &slot, int volume, int op, std::vector<double> &into, F &&call) {
    slot.since_ms = now_ms();
    slot.op = op;
    slot.volume = volume;
    const auto start = Clock::now();
    const int32_t rc = call();
    into.push_back(std::chrono::duration<double, std::milli>(Clock::now() - start).count());
    slot.volume = -1;
    return rc;
}

void settle_late_mark(HostLog &log, Exclusion &exclusion, bool call_ok, Failures &failures, const std::string &id);

// Hot volumes appear `repeats` times in a row, so that several threads take them at the same moment.
std::vector<int> job_list(int volumes, const std::function<bool(int)> &hot, int repeats);

int count_secrets_with_prefix(virConnectPtr conn, const std::string &prefix, std::string *error);

// tgtd ends a session when the initiator's socket closes, which may lag the logout a little.
int sessions_after_settling(TgtdLab &lab, const std::vector<int> &tids);

void ignore_libvirt_error(void *, virErrorPtr);

}  // namespace ivd::concurrency
