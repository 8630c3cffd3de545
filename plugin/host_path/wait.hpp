// Waiting on the host: bounded backoff polls, cut short by inotify events in one directory where available.
#pragma once

#include <sys/types.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>

namespace ivd::host_path {

// Sleeps between checks: `first`, doubling up to `cap`.
struct Backoff {
    std::chrono::milliseconds first;
    std::chrono::milliseconds cap;
};
// Other processes' work (locks, daemons, sessions).
inline constexpr Backoff slow_backoff{std::chrono::milliseconds(10), std::chrono::milliseconds(500)};
// Things that usually happen within milliseconds (a scanned LUN's device, a map multipathd just built): short
// first sleeps so a fast host is not held up by the poll interval itself.
inline constexpr Backoff quick_backoff{std::chrono::milliseconds(2), std::chrono::milliseconds(100)};

// Wakes waiters when an entry is created in one directory. One inotify instance per owner with one reader
// thread, started at the first use: closing an inotify instance that had a watch waits for an RCU grace period
// (about 10 ms on the test VM), too slow to pay per wait. Where inotify cannot be used a wait is a plain sleep,
// so events only ever make a poll more responsive; they are never required.
class DirEvents {
public:
    explicit DirEvents(std::string dir) : dir_(std::move(dir)) {}
    ~DirEvents();
    DirEvents(const DirEvents &) = delete;
    DirEvents &operator=(const DirEvents &) = delete;

    // Take this before checking the state, and hand it to wait(): an event during the check is not lost.
    std::uint64_t generation();
    // Up to `d`, less when an entry was created since `seen`.
    void wait(std::uint64_t seen, std::chrono::nanoseconds d);

private:
    void start();
    void run();

    std::string dir_;
    std::once_flag started_;
    std::mutex mutex_;
    std::condition_variable changed_;
    std::uint64_t generation_ = 0;
    bool running_ = false;
    int inotify_fd_ = -1;
    int stop_fd_ = -1;
    pid_t owner_ = -1;
    std::thread reader_;
};

// Bounded backoff until `done` or the deadline; with events, one in their directory cuts a sleep short.
template <class F>
bool poll_until(std::chrono::steady_clock::time_point deadline, F done, Backoff backoff = slow_backoff,
                DirEvents *events = nullptr) {
    std::chrono::nanoseconds step = backoff.first;
    while (true) {
        const std::uint64_t seen = events != nullptr ? events->generation() : 0;
        if (done()) return true;
        const auto now = std::chrono::steady_clock::now();
        if (now >= deadline) return false;
        const auto d = std::min<std::chrono::nanoseconds>(step, deadline - now);
        if (events != nullptr) {
            events->wait(seen, d);
        } else {
            std::this_thread::sleep_for(d);
        }
        step = std::min<std::chrono::nanoseconds>(step * 2, backoff.cap);
    }
}

template <class F>
bool poll_until(std::chrono::milliseconds timeout, F done, Backoff backoff = slow_backoff, DirEvents *events = nullptr) {
    return poll_until(std::chrono::steady_clock::now() + timeout, done, backoff, events);
}

}  // namespace ivd::host_path
