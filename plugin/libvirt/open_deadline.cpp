#include "libvirt/open_deadline.hpp"

#include "libvirt/connection.hpp"
#include "libvirt/event_loop.hpp"

#include <fmt/format.h>

#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <thread>

namespace ivd::libvirt {

namespace {

// What the opening thread and the caller share.
struct PendingOpen {
    std::mutex mutex;
    std::condition_variable cv;
    bool done = false;       // the thread has its answer
    bool abandoned = false;  // the caller gave up: the thread closes whatever it opened
    virConnectPtr conn = nullptr;
    Error error;

    bool finished() {
        const std::lock_guard<std::mutex> lock(mutex);
        return done;
    }
};

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
        state.done = true;  // later opens of this URI may try again
        lock.unlock();
        if (conn != nullptr) virConnectClose(conn);
        return;
    }
    state.conn = conn;
    state.error = std::move(error);
    state.done = true;
    state.cv.notify_all();
}

// Opens that missed their deadline and have not returned yet, by URI (process-wide: host facts and the
// network path each have a Connection to the same daemon).
std::mutex hanging_mutex;
std::map<std::string, std::weak_ptr<PendingOpen>> &hanging_opens() {
    static std::map<std::string, std::weak_ptr<PendingOpen>> opens;
    return opens;
}

bool still_hanging(const std::string &uri) {
    const std::lock_guard<std::mutex> lock(hanging_mutex);
    auto &opens = hanging_opens();
    const auto it = opens.find(uri);
    if (it == opens.end()) return false;
    if (auto state = it->second.lock(); state && !state->finished()) return true;
    opens.erase(it);
    return false;
}

void remember_hanging(const std::string &uri, const std::shared_ptr<PendingOpen> &state) {
    const std::lock_guard<std::mutex> lock(hanging_mutex);
    hanging_opens()[uri] = state;
}

}  // namespace

Result<ConnectHandle> open_with_deadline(const std::string &uri, std::chrono::milliseconds timeout) {
    if (still_hanging(uri)) {
        return make_error(Status::timeout,
                          fmt::format("libvirt at {} has not answered an earlier connection attempt yet (each may "
                                      "take {} ms, libvirt_open_timeout_ms): the daemon or the link to it is hung",
                                      uri, timeout.count()));
    }
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
        remember_hanging(uri, state);
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
