#include "iscsi/operation_loop.hpp"

#include <fmt/format.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <deque>
#include <functional>
#include <queue>
#include <vector>

namespace ivd::iscsi {

namespace {

// libiscsi wants nothing only while a reconnect is pending (we never reconnect): look again after this long.
constexpr std::chrono::milliseconds idle_poll{100};
// Longest single epoll_wait; deadlines are re-read after it anyway.
constexpr long long max_wait_ms = 60000;

std::uint32_t epoll_events_of(int poll_events) {
    return ((poll_events & POLLIN) != 0 ? EPOLLIN : 0u) | ((poll_events & POLLOUT) != 0 ? EPOLLOUT : 0u);
}

int poll_events_of(std::uint32_t epoll_events) {
    return ((epoll_events & EPOLLIN) != 0 ? POLLIN : 0) | ((epoll_events & EPOLLOUT) != 0 ? POLLOUT : 0) |
           ((epoll_events & EPOLLERR) != 0 ? POLLERR : 0) | ((epoll_events & EPOLLHUP) != 0 ? POLLHUP : 0);
}

std::string errno_text(const char *what, int err) { return fmt::format("{} failed: {}", what, std::strerror(err)); }

}  // namespace

bool Operation::wait_for_socket_if_exhausted(int err, std::string why) {
    const bool exhausted = err == EMFILE || err == ENFILE || why.find("Too many open files") != std::string::npos;
    if (!exhausted) return false;
    ctx_.reset();
    waiting_for_socket_ = true;
    socket_error_ = std::move(why);
    return true;
}

std::size_t in_flight_cap(std::size_t requested) noexcept {
    std::size_t cap = requested == 0 ? default_max_in_flight : requested;
    rlimit limit{};
    if (::getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY) {
        cap = std::min<std::size_t>(cap, std::max<rlim_t>(1, limit.rlim_cur / 2));
    }
    return std::max<std::size_t>(cap, 1);
}

class OperationLoop {
public:
    OperationLoop(std::span<Operation *const> ops, std::size_t max_in_flight, LoopStats *stats)
        : ops_(ops), cap_(std::max<std::size_t>(max_in_flight, 1)), stats_(stats) {
        if (stats_ != nullptr) *stats_ = LoopStats{cap_, 0, 0, 0};
        events_.resize(std::min<std::size_t>(cap_, 512));
    }
    OperationLoop(const OperationLoop &) = delete;
    OperationLoop &operator=(const OperationLoop &) = delete;
    ~OperationLoop() {
        // Left early (an exception): close the sessions while their owners are still alive for the callbacks.
        for (Operation *op : ops_) {
            if (op->in_flight_) retire_quietly(*op);
        }
        if (epoll_fd_ >= 0) ::close(epoll_fd_);
    }

    void run() {
        epoll_fd_ = ::epoll_create1(EPOLL_CLOEXEC);
        if (epoll_fd_ < 0) return fail_all(errno_text("epoll_create1()", errno));
        start_pending();
        while (in_flight_ > 0) {
            if (stats_ != nullptr) ++stats_->wakeups;
            const int n = ::epoll_wait(epoll_fd_, events_.data(), static_cast<int>(events_.size()), wait_ms());
            if (n < 0 && errno != EINTR) return fail_all(errno_text("epoll_wait()", errno));
            for (int k = 0; k < n; ++k) {
                const std::size_t i = events_[static_cast<std::size_t>(k)].data.u64;
                Operation &op = *ops_[i];
                if (!op.in_flight_) continue;  // ended earlier in this batch
                if (op.context().service(poll_events_of(events_[static_cast<std::size_t>(k)].events)) < 0 &&
                    !op.done()) {
                    op.on_service_error(op.context().last_error());
                }
                settle(i);
            }
            expire_due();
            start_pending();
        }
    }

private:
    struct Due {
        Clock::time_point when;
        std::size_t index;
        bool operator>(const Due &other) const noexcept { return when > other.when; }
    };

    // Milliseconds until the earliest due time (rounded up, so a deadline is never checked before it passed).
    int wait_ms() {
        if (dues_.empty()) return static_cast<int>(max_wait_ms);
        const auto wait = std::chrono::ceil<std::chrono::milliseconds>(dues_.top().when - Clock::now()).count();
        return static_cast<int>(std::clamp<long long>(wait, 0, max_wait_ms));
    }

    // Ends what is past its deadline; takes another look at sessions that wanted nothing.
    void expire_due() {
        const auto now = Clock::now();
        while (!dues_.empty() && dues_.top().when <= now) {
            const Due due = dues_.top();
            dues_.pop();
            Operation &op = *ops_[due.index];
            if (!op.in_flight_ || op.due_ != due.when) continue;  // ended, or re-queued for another time
            if (now >= op.deadline()) {
                op.on_deadline();
                retire(due.index);
            } else {
                settle(due.index);
            }
        }
    }

    // Starts operations in order while a slot is free.
    void start_pending() {
        while (in_flight_ < cap_ && (!retry_.empty() || next_ < ops_.size())) {
            std::size_t i = 0;
            if (!retry_.empty()) {
                i = retry_.front();
                retry_.pop_front();
            } else {
                i = next_++;
            }
            Operation &op = *ops_[i];
            op.in_flight_ = true;
            ++in_flight_;
            if (stats_ != nullptr) stats_->peak_in_flight = std::max(stats_->peak_in_flight, in_flight_);
            op.start();
            if (op.waiting_for_socket_) {
                op.waiting_for_socket_ = false;
                op.in_flight_ = false;
                --in_flight_;
                if (in_flight_ > 0) {
                    // Another session will close its socket: start this one then, and open no more than now.
                    if (stats_ != nullptr) ++stats_->socket_waits;
                    retry_.push_front(i);
                    cap_ = in_flight_;
                    return;
                }
                op.on_cannot_start(op.socket_error_);
                op.release();
                continue;
            }
            settle(i);
        }
    }

    // After anything happened to operation i: retire it when it ended, else bring epoll and the heap up to date.
    void settle(std::size_t i) {
        Operation &op = *ops_[i];
        if (op.done() || !op.context()) return retire(i);
        const int fd = op.context().fd();
        if (fd < 0) {
            op.on_service_error("the connection is closed");
            return retire(i);
        }
        const int wanted = op.context().which_events();
        const std::uint32_t events = epoll_events_of(wanted);
        if (fd != op.registered_fd_ || events != op.registered_events_) {
            epoll_event ev{};
            ev.events = events;
            ev.data.u64 = i;
            int rc = 0;
            if (fd != op.registered_fd_) {
                // Only a reconnect changes the socket (we never reconnect); the old one is gone from epoll with it.
                if (op.registered_fd_ >= 0) ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, op.registered_fd_, nullptr);
                op.registered_fd_ = -1;
                rc = ::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev);
            } else {
                rc = ::epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, fd, &ev);
            }
            if (rc != 0) {
                op.on_service_error(errno_text("epoll_ctl()", errno));
                return retire(i);
            }
            op.registered_fd_ = fd;
            op.registered_events_ = events;
        }
        auto due = op.deadline();
        if (wanted == 0) due = std::min(due, Clock::now() + idle_poll);
        if (due != op.due_) {
            op.due_ = due;
            dues_.push(Due{due, i});  // the entry it replaces goes stale and is skipped when it comes up
        }
    }

    // Closes operation i's socket and frees its slot.
    void retire(std::size_t i) { retire_quietly(*ops_[i]); }

    void retire_quietly(Operation &op) noexcept {
        if (op.registered_fd_ >= 0) ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, op.registered_fd_, nullptr);
        op.registered_fd_ = -1;
        op.registered_events_ = 0;
        op.release();
        if (op.in_flight_) {
            op.in_flight_ = false;
            --in_flight_;
        }
    }

    void fail_all(const std::string &why) {
        for (std::size_t i = 0; i < ops_.size(); ++i) {
            Operation &op = *ops_[i];
            if (op.in_flight_) {
                if (!op.done()) op.on_service_error(why);
                retire(i);
            }
        }
        for (const std::size_t i : retry_) ops_[i]->on_cannot_start(why);
        retry_.clear();
        for (; next_ < ops_.size(); ++next_) ops_[next_]->on_cannot_start(why);
    }

    std::span<Operation *const> ops_;
    std::size_t cap_;
    LoopStats *stats_;
    int epoll_fd_ = -1;
    std::size_t next_ = 0;            // the first operation never started
    std::deque<std::size_t> retry_;   // started, but had to wait for a descriptor
    std::size_t in_flight_ = 0;
    std::priority_queue<Due, std::vector<Due>, std::greater<>> dues_;
    std::vector<epoll_event> events_;
};

void run_operations(std::span<Operation *const> ops, std::size_t max_in_flight, LoopStats *stats) {
    OperationLoop loop(ops, max_in_flight, stats);
    loop.run();
}

}  // namespace ivd::iscsi
