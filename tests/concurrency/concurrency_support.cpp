// The concurrency tests' shared helpers: the host log callback that feeds the serialisation detector, the job
// runner with its watchdog, and the end-state checks (libvirt secrets, tgtd sessions).
#include "concurrency_support.hpp"

#include <algorithm>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string_view>

namespace ivd::concurrency {

int env_int(const char *name, int fallback) {
    const char *v = std::getenv(name);
    if (v == nullptr || *v == '\0') return fallback;
    const int n = std::atoi(v);
    return n > 0 ? n : fallback;
}

std::string target_name(int t) { return "t" + std::to_string(t); }

std::size_t count_entries(const fs::path &p) {
    std::error_code ec;
    std::size_t n = 0;
    for (fs::directory_iterator it(p, ec), end; !ec && it != end; it.increment(ec)) ++n;
    return n;
}

// The volume whose lock this thread's current call holds until its late message.
thread_local std::string t_holding;

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

std::string percentiles(std::vector<double> v) {
    if (v.empty()) return "no calls";
    std::sort(v.begin(), v.end());
    auto at = [&](double q) { return v[std::min(v.size() - 1, static_cast<std::size_t>(q * static_cast<double>(v.size())))]; };
    char buf[160];
    std::snprintf(buf, sizeof buf, "p50 %.1f ms, p90 %.1f ms, p99 %.1f ms, max %.1f ms (%zu calls)", at(0.50), at(0.90),
                  at(0.99), v.back(), v.size());
    return buf;
}

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

}  // namespace ivd::concurrency
