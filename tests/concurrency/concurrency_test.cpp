// Many threads through ONE loaded module, the way a compute service uses it: the built iscsi_volume_driver.so is
// dlopen'd and driven only through the C ABI.
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
#include "test_support.hpp"
#include "libvirt_lab.hpp"
#include "setup.hpp"
#include "tgtd_lab.hpp"

#include <volume_driver/volume_driver.h>

#include <dlfcn.h>
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <unistd.h>

#include <json/json.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;
using ivd::testing::TgtdLab;
using ivd::testing::TgtdPortal;

constexpr const char *initiator = "iqn.1993-08.org.debian:01:concurrency";
constexpr const char *chap_user = "conc-user";
// Recognisable, so that any output, log line or device_info carrying it is caught.
constexpr const char *chap_password = "Conc-Pw-41f7e2c9";

int env_int(const char *name, int fallback) {
    const char *v = std::getenv(name);
    if (v == nullptr || *v == '\0') return fallback;
    const int n = std::atoi(v);
    return n > 0 ? n : fallback;
}

constexpr auto &parse = ivd::testing::parse_json;

constexpr auto &compact = ivd::testing::write_json;

std::string target_name(int t) { return "t" + std::to_string(t); }

std::size_t count_entries(const fs::path &p) {
    std::error_code ec;
    std::size_t n = 0;
    for (fs::directory_iterator it(p, ec), end; !ec && it != end; it.increment(ec)) ++n;
    return n;
}

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
thread_local std::string t_holding;

struct HostLog {
    Exclusion exclusion;
    std::atomic<int> errors{0};
    std::atomic<int> late_markers{0};
    std::atomic<int> secret_leaks{0};
    std::mutex mutex;
    std::vector<std::string> error_lines;
};

void on_log(void *user, std::int32_t level, const char *component, const char *message) {
    auto &sink = *static_cast<HostLog *>(user);
    const std::string_view c(component);
    const std::string_view m(message);
    if (m.find(chap_password) != std::string_view::npos) ++sink.secret_leaks;  // never echoed below
    if (level == VD_LOG_ERROR) {
        ++sink.errors;
        const std::lock_guard<std::mutex> lock(sink.mutex);
        if (sink.error_lines.size() < 10 && m.find(chap_password) == std::string_view::npos) {
            sink.error_lines.push_back(std::string(c) + ": " + std::string(m));
        }
    }
    if ((c == "connect" || c == "disconnect") && m.starts_with("volume:")) {
        const std::string key(m.substr(0, m.find(": ")));
        sink.exclusion.enter(key);
        // A short stay inside the lock: another call for this volume entering now would be caught.
        std::this_thread::sleep_for(100us);
        if (c == "connect" && key.ends_with("-late")) {
            t_holding = key;  // released by the late message of this same call
            return;
        }
        sink.exclusion.leave(key);
        return;
    }
    const bool late = (c == "net_disk" && m.starts_with("skipped ")) ||
                      (c == "host_path" && m.find(": attached with ") != std::string_view::npos);
    if (late && !t_holding.empty()) {
        ++sink.late_markers;
        sink.exclusion.leave(t_holding);
        t_holding.clear();
    }
}

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

std::string percentiles(std::vector<double> v) {
    if (v.empty()) return "no calls";
    std::sort(v.begin(), v.end());
    auto at = [&](double q) { return v[std::min(v.size() - 1, static_cast<std::size_t>(q * static_cast<double>(v.size())))]; };
    char buf[160];
    std::snprintf(buf, sizeof buf, "p50 %.1f ms, p90 %.1f ms, p99 %.1f ms, max %.1f ms (%zu calls)", at(0.50), at(0.90),
                  at(0.99), v.back(), v.size());
    return buf;
}

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

std::int64_t now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now().time_since_epoch()).count();
}

// Runs job(i, slot, timings) for every i in `jobs` on `threads` threads; aborts the process with the calls still
// in flight when they do not all return before the deadline (a hang must not become a silent CTest timeout).
Timings run_jobs(const std::vector<int> &jobs, int threads,
                 const std::function<void(int, Slot &, Timings &)> &job) {
    std::atomic<std::size_t> next{0};
    std::vector<Slot> slots(static_cast<std::size_t>(threads));
    std::vector<Timings> per_thread(static_cast<std::size_t>(threads));
    std::mutex mutex;
    std::condition_variable cv;
    int finished = 0;
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t) {
        pool.emplace_back([&, t] {
            for (std::size_t i = next++; i < jobs.size(); i = next++) {
                job(jobs[i], slots[static_cast<std::size_t>(t)], per_thread[static_cast<std::size_t>(t)]);
            }
            const std::lock_guard<std::mutex> lock(mutex);
            ++finished;
            cv.notify_all();
        });
    }
    const auto deadline = Clock::now() + std::chrono::seconds(env_int("IVD_CONC_DEADLINE_S", 600));
    {
        std::unique_lock<std::mutex> lock(mutex);
        if (!cv.wait_until(lock, deadline, [&] { return finished == threads; })) {
            std::cerr << "WATCHDOG: calls did not return before the deadline; in flight:\n";
            for (std::size_t t = 0; t < slots.size(); ++t) {
                const int v = slots[t].volume.load();
                if (v < 0) continue;
                std::cerr << "  thread " << t << ": volume " << v << (slots[t].op.load() == 1 ? " connect" : " disconnect")
                          << " for " << now_ms() - slots[t].since_ms.load() << " ms\n";
            }
            std::cerr.flush();
            std::abort();
        }
    }
    for (auto &th : pool) th.join();
    Timings all;
    for (auto &p : per_thread) {
        all.connect_ms.insert(all.connect_ms.end(), p.connect_ms.begin(), p.connect_ms.end());
        all.disconnect_ms.insert(all.disconnect_ms.end(), p.disconnect_ms.begin(), p.disconnect_ms.end());
    }
    return all;
}

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

// The late message must come in every successful "-late" connect; a failed one may stop before it.
void settle_late_mark(HostLog &log, Exclusion &exclusion, bool call_ok, Failures &failures, const std::string &id) {
    if (t_holding.empty()) return;
    exclusion.abandon(t_holding);
    t_holding.clear();
    if (call_ok) failures.add(id + ": connect succeeded without its late in-lock log message");
    (void)log;
}

// Hot volumes appear `repeats` times in a row, so that several threads take them at the same moment.
std::vector<int> job_list(int volumes, const std::function<bool(int)> &hot, int repeats) {
    std::vector<int> jobs;
    for (int i = 0; i < volumes; ++i) {
        for (int r = 0; r < (hot(i) ? repeats : 1); ++r) jobs.push_back(i);
    }
    return jobs;
}

int count_secrets_with_prefix(virConnectPtr conn, const std::string &prefix, std::string *error) {
    virSecretPtr *secrets = nullptr;
    const int n = virConnectListAllSecrets(conn, &secrets, 0);
    if (n < 0) {
        const virErrorPtr e = virGetLastError();
        *error = e != nullptr && e->message != nullptr ? e->message : "unknown libvirt error";
        return -1;
    }
    int ours = 0;
    for (int i = 0; i < n; ++i) {
        const char *usage = virSecretGetUsageID(secrets[i]);
        if (usage != nullptr && std::string_view(usage).starts_with(prefix)) ++ours;
        virSecretFree(secrets[i]);
    }
    std::free(secrets);
    return ours;
}

// tgtd ends a session when the initiator's socket closes, which may lag the logout a little.
int sessions_after_settling(TgtdLab &lab, const std::vector<int> &tids) {
    int total = 0;
    for (auto deadline = Clock::now() + 15s;; std::this_thread::sleep_for(100ms)) {
        total = 0;
        for (int tid : tids) total += lab.session_count(tid);
        if (total == 0 || Clock::now() > deadline) return total;
    }
}

void ignore_libvirt_error(void *, virErrorPtr) {}

// ---- The network path ----

struct NetVolume {
    std::string id;        // "conc-<pid>-<i>[-late]"
    std::string iqn;
    int lun = 0;
    bool chap = false;
    bool hot = false;
    std::vector<std::string> portals;
    std::string expected_portal;
    std::string ci;        // connection_info JSON
};

TEST(Concurrency, NetworkPathManyThreadsOneModule) {
    const int volumes = env_int("IVD_CONC_VOLUMES", 1000);
    const int threads = env_int("IVD_CONC_THREADS", 64);
    const int luns_per_target = env_int("IVD_CONC_LUNS", 32);
    constexpr int targets = 4;  // two open, two with CHAP
    constexpr int hot_repeats = 4;
    auto is_hot = [](int i) { return i % 25 == 0; };

    const auto setup_start = Clock::now();
    ivd::testing::LibvirtLab libvirt(ivd::testing::LibvirtLabOptions{.start_domain = false});
    TgtdLab tgtd;
    const TgtdPortal p0 = tgtd.portal();
    const TgtdPortal p1 = tgtd.add_portal();
    const TgtdPortal p2 = tgtd.add_portal();
    const TgtdPortal dead = tgtd.dead_portal();
    tgtd.add_account(chap_user, chap_password);
    std::vector<int> tids;
    std::vector<std::string> iqns;
    for (int t = 0; t < targets; ++t) {
        iqns.push_back(tgtd.make_iqn(target_name(t)));
        tids.push_back(tgtd.create_target(iqns.back()));
        if (t >= 2) tgtd.bind_account(tids.back(), chap_user);
        for (int l = 1; l <= luns_per_target; ++l) tgtd.add_lun(tids.back(), l, 1ull << 20);
    }
    const double setup_s = std::chrono::duration<double>(Clock::now() - setup_start).count();

    // Volumes: target i%4, LUN from i/4 (so several volumes share each LU, target and portal); a third single
    // portal (no probing), a third three healthy portals, a third a dead portal first (the probe skips it). Hot
    // volumes are all of the last kind and use CHAP targets, so their calls share a real libvirt secret.
    const std::string run = "conc-" + std::to_string(::getpid()) + "-";
    const std::vector<TgtdPortal> live{p0, p1, p2};
    std::vector<NetVolume> vols(static_cast<std::size_t>(volumes));
    for (int i = 0; i < volumes; ++i) {
        NetVolume &v = vols[static_cast<std::size_t>(i)];
        v.hot = is_hot(i);
        const int target = v.hot ? 2 + (i / 25) % 2 : i % targets;
        const int kind = v.hot ? 2 : i % 3;
        v.iqn = iqns[static_cast<std::size_t>(target)];
        v.lun = 1 + (i / targets) % luns_per_target;
        v.chap = target >= 2;
        v.id = run + std::to_string(i) + (kind == 2 ? "-late" : "");
        if (kind == 0) {
            v.portals = {live[static_cast<std::size_t>(i % 3)].to_string()};
        } else {
            for (int k = 0; k < 3; ++k) v.portals.push_back(live[static_cast<std::size_t>((i + k) % 3)].to_string());
            if (kind == 2) v.portals[0] = dead.to_string();
        }
        v.expected_portal = kind == 2 ? v.portals[1] : v.portals[0];
        Json::Value ci(Json::objectValue);
        ci["driver_volume_type"] = "iscsi";
        Json::Value &d = ci["data"];
        for (const auto &p : v.portals) {
            d["target_portals"].append(p);
            d["target_iqns"].append(v.iqn);
            d["target_luns"].append(v.lun);
        }
        d["volume_id"] = v.id;
        if (v.chap) {
            d["auth_method"] = "CHAP";
            d["auth_username"] = chap_user;
            d["auth_password"] = chap_password;
        }
        v.ci = compact(ci);
    }

    // The test's own libvirt connection checks the secrets the driver made (libvirt connections are thread-safe).
    virSetErrorFunc(nullptr, ignore_libvirt_error);
    std::unique_ptr<virConnect, int (*)(virConnectPtr)> conn(virConnectOpen(libvirt.uri().c_str()), virConnectClose);
    ASSERT_NE(conn, nullptr);

    HostLog log;
    Failures failures;
    {
        Module module(log);
        Json::Value config(Json::objectValue);
        config["path"] = "network";
        config["qemu_iscsi"] = "true";  // nothing is attached here: QEMU's iSCSI driver is not needed
        config["libvirt_uri"] = libvirt.uri();
        config["probe_portals"] = "true";
        config["probe_timeout_ms"] = "15000";  // the dead portal refuses at once; a live one must not time out
        module.create(config);
        const std::string connector = std::string(R"({"initiator":")") + initiator + R"(","multipath":false})";
        const std::string disk = R"({"bus":"scsi","dev":"sdb"})";

        auto job = [&](int i, Slot &slot, Timings &timings) {
            const NetVolume &v = vols[static_cast<std::size_t>(i)];
            std::string info_text;
            const int32_t rc =
                timed(slot, i, 1, timings.connect_ms, [&] { return module.connect(v.ci, connector, disk, &info_text); });
            settle_late_mark(log, log.exclusion, rc == VD_OK, failures, v.id);
            if (rc != VD_OK) return failures.add(v.id + ": connect failed: " + info_text);
            if (info_text.find(chap_password) != std::string::npos) failures.add(v.id + ": device_info holds the password");
            const Json::Value info = parse(info_text);
            auto expect = [&](bool ok, const std::string &what) {
                if (!ok) failures.add(v.id + ": " + what + " in " + (info_text.find(chap_password) == std::string::npos ? info_text : ""));
            };
            expect(info["type"].asString() == "network" && info["attach_path"].asString() == "network", "wrong path");
            expect(info["volume_id"].asString() == v.id, "wrong volume_id");
            expect(info["target_iqn"].asString() == v.iqn && info["target_lun"].asInt() == v.lun, "wrong target/LUN");
            expect(info["portal"].asString() == v.expected_portal, "wrong portal (expected " + v.expected_portal + ")");
            expect(info["targets"].size() == v.portals.size(), "wrong targets");
            const std::string xml = info["disk_xml"].asString();
            expect(xml.find(v.iqn + "/" + std::to_string(v.lun)) != std::string::npos, "disk_xml names another LU");
            const std::string usage = "iscsi-volume-driver:" + v.id;
            if (v.chap) {
                expect(info["secret_usage"].asString() == usage && xml.find(usage) != std::string::npos,
                       "wrong secret usage");
                // Only this thread touches a volume that is not hot: its secret must be there, with this UUID.
                if (!v.hot) {
                    virSecretPtr s = virSecretLookupByUUIDString(conn.get(), info["secret_uuid"].asCString());
                    const char *u = s != nullptr ? virSecretGetUsageID(s) : nullptr;
                    expect(u != nullptr && usage == u, "the libvirt secret of secret_uuid is missing or not this volume's");
                    if (s != nullptr) virSecretFree(s);
                }
            } else {
                expect(!info.isMember("secret_usage") && xml.find("<auth") == std::string::npos, "a secret without CHAP");
            }

            std::string error;
            const int32_t drc =
                timed(slot, i, 2, timings.disconnect_ms, [&] { return module.disconnect(v.ci, info_text, &error); });
            if (drc != VD_OK) return failures.add(v.id + ": disconnect failed: " + error);
            if (v.chap && !v.hot) {
                virSecretPtr s = virSecretLookupByUsage(conn.get(), VIR_SECRET_USAGE_TYPE_ISCSI, usage.c_str());
                if (s != nullptr) {
                    failures.add(v.id + ": secret still defined after disconnect");
                    virSecretFree(s);
                }
            }
        };

        const std::vector<int> jobs = job_list(volumes, is_hot, hot_repeats);
        const auto start = Clock::now();
        const Timings timings = run_jobs(jobs, threads, job);
        const double total_s = std::chrono::duration<double>(Clock::now() - start).count();
        const int hot = static_cast<int>(std::count_if(vols.begin(), vols.end(), [](const NetVolume &v) { return v.hot; }));
        std::cout << "[concurrency] network path: " << volumes << " volumes (" << hot << " hot x" << hot_repeats << "), "
                  << threads << " threads, tgtd " << targets << " targets x " << luns_per_target << " LUNs, 3 portals"
                  << " (setup " << setup_s << " s)\n"
                  << "[concurrency]   " << jobs.size() << " connect+disconnect pairs in " << total_s << " s ("
                  << static_cast<double>(2 * jobs.size()) / total_s << " calls/s)\n"
                  << "[concurrency]   connect:    " << percentiles(timings.connect_ms) << "\n"
                  << "[concurrency]   disconnect: " << percentiles(timings.disconnect_ms) << std::endl;
        EXPECT_EQ(timings.connect_ms.size(), jobs.size()) << "every connect returned";
    }  // destroy() and dlclose() before the end state is judged

    EXPECT_EQ(failures.count(), 0) << failures.report();
    EXPECT_EQ(log.exclusion.violations(), 0) << [&] {
        std::string s;
        for (const auto &e : log.exclusion.examples()) s += "  " + e + "\n";
        return s;
    }();
    EXPECT_GE(log.exclusion.entries(), 2u * static_cast<std::uint64_t>(volumes)) << "the detector saw the calls";
    const int late_volumes = static_cast<int>(
        std::count_if(vols.begin(), vols.end(), [](const NetVolume &v) { return v.id.ends_with("-late"); }));
    EXPECT_GE(log.late_markers.load(), late_volumes) << "every dead-first connect was judged over its probe";
    EXPECT_EQ(log.errors.load(), 0) << [&] {
        std::string s;
        for (const auto &e : log.error_lines) s += "  " + e + "\n";
        return s;
    }();
    EXPECT_EQ(log.secret_leaks.load(), 0) << "a log message carried the CHAP password";

    std::string error;
    EXPECT_EQ(count_secrets_with_prefix(conn.get(), "iscsi-volume-driver:" + run, &error), 0) << error;
    EXPECT_EQ(sessions_after_settling(tgtd, tids), 0) << "probe sessions left on tgtd";
}

// ---- The host path on the simulated host ----

TEST(Concurrency, HostPathSimulatedHostSharedTargets) {
    const int volumes = env_int("IVD_CONC_HOST_VOLUMES", 96);
    const int threads = env_int("IVD_CONC_HOST_THREADS", 24);
    constexpr int targets = 3;  // the last one with CHAP
    constexpr int hot_repeats = 3;
    auto is_hot = [](int i) { return i % 8 == 0; };

    const auto setup_start = Clock::now();
    TgtdLab tgtd;
    const TgtdPortal p0 = tgtd.portal();
    const TgtdPortal p1 = tgtd.add_portal();
    const TgtdPortal dead = tgtd.dead_portal();
    tgtd.add_account(chap_user, chap_password);
    std::vector<int> tids;
    std::vector<std::string> iqns;
    const int luns_per_target = (volumes + targets - 1) / targets;
    for (int t = 0; t < targets; ++t) {
        iqns.push_back(tgtd.make_iqn(target_name(t)));
        tids.push_back(tgtd.create_target(iqns.back()));
        if (t == targets - 1) tgtd.bind_account(tids.back(), chap_user);
        for (int l = 1; l <= luns_per_target; ++l) tgtd.add_lun(tids.back(), l, 1ull << 20);
    }
    std::string templ = (fs::temp_directory_path() / "ivd-concurrency-XXXXXX").string();
    ASSERT_NE(::mkdtemp(templ.data()), nullptr);
    const fs::path dir = templ;
    const auto sim = ivd::simhost::prepare_simulated_host(dir.string(), initiator);
    const double setup_s = std::chrono::duration<double>(Clock::now() - setup_start).count();

    // One LU per volume (a host path volume owns its block device); volumes of a target share its sessions.
    // Odd and hot volumes list a dead third portal, so their connect logs "attached with 2 of 3 paths" under
    // the volume lock after the map is built.
    struct HostVolume {
        std::string id;
        bool hot = false;
        bool degraded = false;
        std::string ci;
    };
    const std::string run = "conc-host-" + std::to_string(::getpid()) + "-";
    std::vector<HostVolume> vols(static_cast<std::size_t>(volumes));
    for (int i = 0; i < volumes; ++i) {
        HostVolume &v = vols[static_cast<std::size_t>(i)];
        v.hot = is_hot(i);
        v.degraded = v.hot || i % 2 == 1;
        v.id = run + std::to_string(i) + (v.degraded ? "-late" : "");
        const int target = i % targets;
        const int lun = 1 + i / targets;
        Json::Value ci(Json::objectValue);
        ci["driver_volume_type"] = "iscsi";
        Json::Value &d = ci["data"];
        std::vector<TgtdPortal> ps{p0, p1};
        if (v.degraded) ps.push_back(dead);
        for (const auto &p : ps) {
            d["target_portals"].append(p.to_string());
            d["target_iqns"].append(iqns[static_cast<std::size_t>(target)]);
            d["target_luns"].append(lun);
        }
        d["volume_id"] = v.id;
        if (target == targets - 1) {
            d["auth_method"] = "CHAP";
            d["auth_username"] = chap_user;
            d["auth_password"] = chap_password;
        }
        v.ci = compact(ci);
    }

    HostLog log;
    Failures failures;
    // Which non-hot volume holds each multipath device now: two volumes must never get the same one.
    std::mutex held_mutex;
    std::map<std::string, int> held;
    {
        Module module(log);
        Json::Value config(Json::objectValue);
        for (const auto &[k, v] : sim) config[k] = v;
        module.create(config);
        const std::string connector =
            std::string(R"({"initiator":")") + initiator + R"(","host":"compute-1","ip":"127.0.0.1","multipath":true})";
        const std::string disk = R"({"bus":"virtio","dev":"vdb"})";

        auto job = [&](int i, Slot &slot, Timings &timings) {
            const HostVolume &v = vols[static_cast<std::size_t>(i)];
            std::string info_text;
            const int32_t rc =
                timed(slot, i, 1, timings.connect_ms, [&] { return module.connect(v.ci, connector, disk, &info_text); });
            settle_late_mark(log, log.exclusion, rc == VD_OK, failures, v.id);
            if (rc != VD_OK) return failures.add(v.id + ": connect failed: " + info_text);
            if (info_text.find(chap_password) != std::string::npos) failures.add(v.id + ": device_info holds the password");
            const Json::Value info = parse(info_text);
            const std::string path = info["path"].asString();
            auto expect = [&](bool ok, const std::string &what) {
                if (!ok) failures.add(v.id + ": " + what + " in " + (info_text.find(chap_password) == std::string::npos ? info_text : ""));
            };
            expect(info["type"].asString() == "block" && info["volume_id"].asString() == v.id, "wrong type or volume");
            expect(fs::path(path).parent_path() == dir / "dev" && fs::path(path).filename().string().starts_with("dm-"),
                   "not a multipath device of the simulated host");
            expect(info["paths"].size() == 2u, "not two paths");
            expect(info["failed_portals"].size() == (v.degraded ? 1u : 0u), "wrong failed portals");
            expect(info["disk_xml"].asString().find(path) != std::string::npos, "disk_xml names another device");
            if (!v.hot) {
                const std::lock_guard<std::mutex> lock(held_mutex);
                auto [it, fresh] = held.try_emplace(path, i);
                if (!fresh) failures.add(v.id + ": got " + path + ", which volume " + std::to_string(it->second) + " holds");
            }

            if (!v.hot) {
                const std::lock_guard<std::mutex> lock(held_mutex);
                if (auto it = held.find(path); it != held.end() && it->second == i) held.erase(it);
            }
            std::string error;
            const int32_t drc =
                timed(slot, i, 2, timings.disconnect_ms, [&] { return module.disconnect(v.ci, info_text, &error); });
            if (drc != VD_OK) failures.add(v.id + ": disconnect failed: " + error);
        };

        const std::vector<int> jobs = job_list(volumes, is_hot, hot_repeats);
        const auto start = Clock::now();
        const Timings timings = run_jobs(jobs, threads, job);
        const double total_s = std::chrono::duration<double>(Clock::now() - start).count();
        std::cout << "[concurrency] host path (simulated host): " << volumes << " volumes on " << targets
                  << " targets x 2 portals, " << threads << " threads (setup " << setup_s << " s)\n"
                  << "[concurrency]   " << jobs.size() << " connect+disconnect pairs in " << total_s << " s\n"
                  << "[concurrency]   connect:    " << percentiles(timings.connect_ms) << "\n"
                  << "[concurrency]   disconnect: " << percentiles(timings.disconnect_ms) << std::endl;
    }

    EXPECT_EQ(failures.count(), 0) << failures.report();
    EXPECT_EQ(log.exclusion.violations(), 0) << [&] {
        std::string s;
        for (const auto &e : log.exclusion.examples()) s += "  " + e + "\n";
        return s;
    }();
    EXPECT_GE(log.exclusion.entries(), 2u * static_cast<std::uint64_t>(volumes));
    EXPECT_EQ(log.secret_leaks.load(), 0) << "a log message carried the CHAP password";
    EXPECT_EQ(count_entries(dir / "sys/class/iscsi_session"), 0u) << "simulated sessions left";
    EXPECT_EQ(count_entries(dir / "etc/iscsi/nodes"), 0u) << "node records left";
    std::size_t maps = 0;
    for (const auto &e : fs::directory_iterator(dir / "dev")) maps += e.path().filename().string().starts_with("dm-");
    EXPECT_EQ(maps, 0u) << "multipath maps left";
    EXPECT_EQ(sessions_after_settling(tgtd, tids), 0) << "sessions left on tgtd";

    ivd::simhost::stop_simulated_sessions(dir.string());
    std::error_code ec;
    fs::remove_all(dir, ec);
}

}  // namespace
