#include "libvirt/connection.hpp"

#include "libvirt/event_loop.hpp"
#include "libvirt/open_deadline.hpp"

#include <libvirt/virterror.h>

#include <fmt/format.h>

#include <cerrno>
#include <pthread.h>

namespace ivd::libvirt {

namespace {

// Set by last_error() when the error it converted was a broken RPC link; read by Connection::call on the
// same thread, so no libvirt call made after the failure (freeing handles resets libvirt's own last error)
// can hide it.
thread_local bool t_connection_failure = false;

void ignore_error(void *, virErrorPtr) noexcept {}

Status status_for(int code) {
    switch (code) {
    case VIR_ERR_NO_SECRET:
    case VIR_ERR_NO_DOMAIN:
    case VIR_ERR_NO_STORAGE_POOL:
    case VIR_ERR_NO_STORAGE_VOL:
    case VIR_ERR_DEVICE_MISSING:
        return Status::not_found;
    case VIR_ERR_AUTH_FAILED:
    case VIR_ERR_AUTH_CANCELLED:
    case VIR_ERR_AUTH_UNAVAILABLE:
    case VIR_ERR_ACCESS_DENIED:
        return Status::auth;
    default:
        return Status::backend;
    }
}

bool is_link_failure(const virError &e) {
    if (e.code == VIR_ERR_NO_CONNECT || e.code == VIR_ERR_INVALID_CONN) return true;
    return e.domain == VIR_FROM_RPC &&
           (e.code == VIR_ERR_SYSTEM_ERROR || e.code == VIR_ERR_INTERNAL_ERROR || e.code == VIR_ERR_RPC);
}

}  // namespace

void silence_default_error_output() noexcept {
    static std::once_flag once;
    std::call_once(once, [] {
        // Required before libvirt is used from several threads.
        virInitialize();
        // The one process-wide change: libvirt reports errors that have no connection yet (a failed
        // virConnectOpen) to the global handler, whose default prints to stderr, and the driver must never
        // write there. There is no getter to chain to a handler the host set, so we only replace the default:
        // a host that wants its own global handler can install it after loading the driver; errors stay
        // readable through virGetLastError either way, and our connections carry their own handler.
        virSetErrorFunc(nullptr, ignore_error);
    });
}

SigpipeGuard::SigpipeGuard() noexcept {
    sigset_t pipe_only;
    sigemptyset(&pipe_only);
    sigaddset(&pipe_only, SIGPIPE);
    sigset_t pending;
    sigemptyset(&pending);
    sigpending(&pending);
    was_pending_ = sigismember(&pending, SIGPIPE) == 1;
    active_ = pthread_sigmask(SIG_BLOCK, &pipe_only, &old_mask_) == 0;
}

SigpipeGuard::~SigpipeGuard() {
    if (!active_) return;
    sigset_t pending;
    sigemptyset(&pending);
    sigpending(&pending);
    // Consume only a SIGPIPE we caused: one pending before we blocked belongs to someone else.
    if (!was_pending_ && sigismember(&pending, SIGPIPE) == 1) {
        sigset_t pipe_only;
        sigemptyset(&pipe_only);
        sigaddset(&pipe_only, SIGPIPE);
        const timespec zero{0, 0};
        while (sigtimedwait(&pipe_only, nullptr, &zero) < 0 && errno == EINTR) {
        }
    }
    pthread_sigmask(SIG_SETMASK, &old_mask_, nullptr);
}

bool last_error_is_connection_failure() {
    const virErrorPtr e = virGetLastError();
    return e != nullptr && is_link_failure(*e);
}

Error last_error(std::string_view what) {
    const virErrorPtr e = virGetLastError();
    if (e == nullptr) return make_error(Status::backend, fmt::format("{}: libvirt reported no error detail", what));
    if (is_link_failure(*e)) t_connection_failure = true;
    const char *message = e->message != nullptr ? e->message : "unknown libvirt error";
    return make_error(status_for(e->code), fmt::format("{}: {}", what, message));
}

Connection::Connection(std::string uri, Logger log, ConnectionOptions options)
    : uri_(std::move(uri)), log_(log), options_(options) {
    silence_default_error_output();
    // Before any open of ours: libvirt wants the loop registered before the connections that use it.
    if (options_.keepalive_interval_s > 0) ensure_event_loop();
}

Connection::~Connection() = default;

Result<Connection::Shared> Connection::open_locked() {
    auto opened = open_with_deadline(uri_, options_.open_timeout);
    if (!opened) return std::move(opened).error();
    virConnectPtr raw = opened->release();
    virConnSetErrorFunc(raw, nullptr, ignore_error);
    conn_ = Shared(raw, ConnectDeleter{});
    ++opens_;
    start_keepalive(raw);
    log_.debug("libvirt", "connected to {}", uri_);
    return conn_;
}

void Connection::start_keepalive(virConnectPtr raw) {
    if (options_.keepalive_interval_s <= 0) return;
    if (!ensure_event_loop()) {
        log_.warning("libvirt", "no keepalive on {}: no libvirt event loop could be registered", uri_);
        return;
    }
    // 1: the driver has no keepalive (local test:// drivers); -1: not supported over this transport.
    const int rc = virConnectSetKeepAlive(raw, options_.keepalive_interval_s, options_.keepalive_count);
    if (rc != 0) {
        log_.debug("libvirt", "no keepalive on {} ({})", uri_, rc < 0 ? last_error("virConnectSetKeepAlive").message
                                                                      : std::string("not supported by the peer"));
    }
}

Result<Connection::Shared> Connection::current() {
    t_connection_failure = false;
    const std::lock_guard<std::mutex> lock(mutex_);
    if (conn_ && virConnectIsAlive(conn_.get()) == 1) return conn_;
    if (conn_) log_.info("libvirt", "connection to {} is dead; reopening", uri_);
    conn_.reset();
    return open_locked();
}

Result<Connection::Shared> Connection::reopen(const Shared &dead) {
    t_connection_failure = false;
    const std::lock_guard<std::mutex> lock(mutex_);
    // Another thread may have replaced the dead connection already: use its fresh one.
    if (conn_ && conn_ != dead) return conn_;
    conn_.reset();
    return open_locked();
}

bool Connection::is_dead(virConnectPtr conn, const Error &) const {
    return t_connection_failure || virConnectIsAlive(conn) == 0;
}

Result<void> Connection::ensure_open() {
    const SigpipeGuard sigpipe;
    auto conn = current();
    if (!conn) return std::move(conn).error();
    return {};
}

void Connection::close() noexcept {
    const std::lock_guard<std::mutex> lock(mutex_);
    conn_.reset();
}

std::uint64_t Connection::open_count() const noexcept {
    const std::lock_guard<std::mutex> lock(mutex_);
    return opens_;
}

}  // namespace ivd::libvirt
