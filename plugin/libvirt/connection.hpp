// One libvirt connection per driver: opened lazily, shared by threads, reopened once when libvirtd went away.
#pragma once

#include "core/error.hpp"
#include "core/log.hpp"
#include "libvirt/handles.hpp"

#include <libvirt/libvirt.h>

#include <chrono>
#include <csignal>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

namespace ivd::libvirt {

// The calling thread's last libvirt error as an ivd::Error: not_found for missing objects, auth for refused
// access, backend otherwise; the message is libvirt's, prefixed with `what`.
Error last_error(std::string_view what);

// True when the calling thread's last libvirt error says the RPC link itself failed (daemon gone, socket closed).
bool last_error_is_connection_failure();

// Keeps libvirt from printing errors on stderr; see connection.cpp for the one process-wide change this makes.
void silence_default_error_output() noexcept;

// While alive, a SIGPIPE raised by this thread's writes to a dead libvirtd socket stays pending instead of
// killing the host process, and is consumed on exit. Per thread: the host's signal disposition is untouched.
class SigpipeGuard {
public:
    SigpipeGuard() noexcept;
    SigpipeGuard(const SigpipeGuard &) = delete;
    SigpipeGuard &operator=(const SigpipeGuard &) = delete;
    ~SigpipeGuard();

private:
    sigset_t old_mask_;
    bool was_pending_ = false;
    bool active_ = false;
};

// The bounds of every libvirt call this driver makes.
struct ConnectionOptions {
    // Opening the connection (socket connect, auth, the daemon's answer), whatever the URI's transport.
    std::chrono::milliseconds open_timeout{10000};
    // Keepalive on the open connection: a daemon (or link) silent for interval * (count + 1) s is dropped, and
    // the call waiting on it fails. 0: no keepalive (calls then wait for as long as libvirt does).
    int keepalive_interval_s = 5;
    unsigned keepalive_count = 3;
};

class Connection {
public:
    explicit Connection(std::string uri, Logger log = {}, ConnectionOptions options = {});
    Connection(const Connection &) = delete;
    Connection &operator=(const Connection &) = delete;
    ~Connection();

    const std::string &uri() const noexcept { return uri_; }

    // Runs fn(virConnectPtr) -> Result<T> on the shared connection, opening it first if needed. When the call
    // fails because the connection is dead (libvirtd restarted), reopens once and runs fn again: fn must be
    // safe to repeat.
    template <class F>
    auto call(F &&fn) -> std::invoke_result_t<F &, virConnectPtr> {
        const SigpipeGuard sigpipe;
        auto conn = current();
        if (!conn) return std::move(conn).error();
        auto result = fn(conn->get());
        if (result.ok() || !is_dead(conn->get(), result.error())) return result;
        log_.info("libvirt", "connection to {} lost ({}); reopening", uri_, result.error().message);
        auto fresh = reopen(*conn);
        if (!fresh) return std::move(fresh).error();
        return fn(fresh->get());
    }

    // Opens now (or checks the open connection is alive), for callers that want to fail early.
    Result<void> ensure_open();
    // Drops the connection; the next call opens a new one.
    void close() noexcept;
    // How many times a connection was opened: 1 after first use, +1 per reopen (tests watch this).
    std::uint64_t open_count() const noexcept;

private:
    using Shared = std::shared_ptr<virConnect>;
    Result<Shared> current();
    Result<Shared> reopen(const Shared &dead);
    Result<Shared> open_locked();
    bool is_dead(virConnectPtr conn, const Error &error) const;
    void start_keepalive(virConnectPtr raw);

    const std::string uri_;
    Logger log_;
    ConnectionOptions options_;
    mutable std::mutex mutex_;
    Shared conn_;
    std::uint64_t opens_ = 0;
};

}  // namespace ivd::libvirt
