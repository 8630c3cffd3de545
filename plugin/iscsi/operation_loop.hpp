// The one event loop under probing and discovery: many libiscsi sessions on one thread, each under its own hard
// deadline. epoll registrations change only when libiscsi's wanted events change, deadlines wait in a min-heap,
// and a cap bounds the sessions open at once, so a wake-up costs what is ready, not what is in flight.
#pragma once

#include "iscsi/iscsi_context.hpp"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

namespace ivd::iscsi {

using Clock = std::chrono::steady_clock;

// Sessions open at once when the caller does not say.
inline constexpr std::size_t default_max_in_flight = 256;

// One session driven by the loop: owns its context and its one in-flight SCSI task.
class Operation {
public:
    Operation() = default;
    Operation(const Operation &) = delete;
    Operation &operator=(const Operation &) = delete;
    virtual ~Operation() { release(); }

    bool done() const noexcept { return done_; }
    Clock::time_point deadline() const noexcept { return deadline_; }
    Context &context() noexcept { return ctx_; }

    // Closes the socket once finished; never from inside a libiscsi callback (the context is still in use there).
    void release() noexcept {
        ctx_.reset();       // may call our callbacks as cancelled: they only take back their task
        inflight_.reset();  // a task libiscsi did not hand back must outlive the context that references it
    }

    // Creates the context and queues the connect; the deadline runs from here. May finish at once, or leave
    // waiting_for_socket() set when the process is out of descriptors (the loop then starts it again later).
    virtual void start() = 0;
    virtual void on_deadline() = 0;
    virtual void on_service_error(const std::string &why) = 0;
    // The loop cannot run this operation (no descriptor and nothing to wait for, epoll failed): end with `why`.
    virtual void on_cannot_start(const std::string &why) = 0;
    // Ends the operation without allocating (only std::bad_alloc can leave a handler).
    virtual void out_of_memory() noexcept = 0;

    bool waiting_for_socket() const noexcept { return waiting_for_socket_; }

protected:
    // Takes back the task a SCSI callback reports; tasks we never issued are not ours to free.
    TaskPtr take_task(void *command_data) noexcept {
        if (command_data != nullptr && command_data == inflight_.get()) return std::move(inflight_);
        return TaskPtr();
    }

    // After a connect that could not be queued: when the process ran out of descriptors (errno `err`, or
    // libiscsi's text), drops the context, remembers `why` and returns true; the loop retries once another
    // operation has closed its socket.
    bool wait_for_socket_if_exhausted(int err, std::string why);

    Context ctx_;
    TaskPtr inflight_;
    bool done_ = false;
    Clock::time_point deadline_{};

private:
    friend class OperationLoop;
    bool waiting_for_socket_ = false;
    std::string socket_error_;
    // The loop's bookkeeping: what epoll knows of this socket, the due time queued in the heap, the slot held.
    int registered_fd_ = -1;
    std::uint32_t registered_events_ = 0;
    Clock::time_point due_{};
    bool in_flight_ = false;
};

struct LoopStats {
    std::size_t max_in_flight = 0;   // the cap applied (after the descriptor limit)
    std::size_t peak_in_flight = 0;  // most sessions open at once
    std::size_t socket_waits = 0;    // starts put back because the process was out of descriptors
    std::size_t wakeups = 0;         // epoll_wait returns
};

// `requested` (0: default_max_in_flight), never more than half the soft RLIMIT_NOFILE: the rest of the process
// (libvirt connections, logs, other threads' sessions) keeps its descriptors.
std::size_t in_flight_cap(std::size_t requested) noexcept;

// Runs every operation to its end, starting them in order with at most `max_in_flight` (>= 1) open at once;
// each ends at its own deadline. Returns when all have ended and released their sockets.
void run_operations(std::span<Operation *const> ops, std::size_t max_in_flight, LoopStats *stats = nullptr);

}  // namespace ivd::iscsi
