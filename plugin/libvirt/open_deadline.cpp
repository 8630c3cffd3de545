#include "libvirt/open_deadline.hpp"

#include "libvirt/connection.hpp"
#include "libvirt/event_loop.hpp"

#include <fmt/format.h>

#include <thread>

namespace ivd::libvirt {

namespace {

// Runs in the opening thread: libvirt's thread-local error is read here, where the open failed.
void open_now(const std::string &uri, PendingOpen &state) {
    const SigpipeGuard sigpipe;
    virConnectPtr conn = virConnectOpen(uri.c_str());
    Error error;
    if (conn == nullptr) {
        const bool link = last_error_is_connection_failure();
        error = last_error(fmt::format("cannot connect to libvirt at {}", uri));
        if (link) error.status = Status::unreachable;  // nothing answers there: not a backend failure
    }
    std::unique_lock<std::mutex> lock(state.mutex);
    if (state.abandoned) {
        lock.unlock();
        if (conn != nullptr) virConnectClose(conn);
        return;
    }
    state.conn = conn;
    state.error = std::move(error);
    state.done = true;
    state.cv.notify_all();
}

}  // namespace

Result<ConnectHandle> open_with_deadline(const std::string &uri, std::chrono::milliseconds timeout,
                                         std::shared_ptr<PendingOpen> *hanging) {
    auto state = std::make_shared<PendingOpen>();
    std::thread opener;
    try {
        opener = std::thread([uri, state] { open_now(uri, *state); });
    } catch (const std::system_error &e) {
        return make_error(Status::internal, fmt::format("cannot start a thread to open libvirt at {}: {}", uri, e.what()));
    }
    std::unique_lock<std::mutex> lock(state->mutex);
    if (!state->cv.wait_for(lock, timeout, [&] { return state->done; })) {
        state->abandoned = true;
        lock.unlock();
        pin_this_module();  // the thread may return long after the host unloaded the driver
        opener.detach();
        if (hanging != nullptr) *hanging = state;
        return make_error(Status::timeout,
                          fmt::format("libvirt at {} did not answer within {} ms (libvirt_open_timeout_ms): the "
                                      "daemon or the link to it is hung",
                                      uri, timeout.count()));
    }
    lock.unlock();
    opener.join();  // the thread has left this module's code before we return
    if (state->conn == nullptr) return std::move(state->error);
    return ConnectHandle(state->conn);
}

}  // namespace ivd::libvirt
