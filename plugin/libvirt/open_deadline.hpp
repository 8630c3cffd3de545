// virConnectOpen under a deadline. libvirt has no open timeout: a daemon (or a qemu+tcp:// peer) that accepts
// and never answers, or a TCP connect to a host that drops packets, holds virConnectOpen for minutes or for
// ever. So the open runs in a thread of its own and the caller waits at most the deadline; an open that
// misses it is left to finish by itself (it closes what it opened), with this module pinned so the thread can
// never return into unmapped code.
#pragma once

#include "core/error.hpp"
#include "libvirt/handles.hpp"

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>

namespace ivd::libvirt {

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

// Opens `uri` read-write. Errors: timeout (no answer within `timeout`), unreachable (no daemon there: the
// socket or host refused, or the link broke), or libvirt's own (auth, backend); each names the URI. On a
// timeout, *hanging holds the open still in progress (the caller can tell when it ends).
Result<ConnectHandle> open_with_deadline(const std::string &uri, std::chrono::milliseconds timeout,
                                         std::shared_ptr<PendingOpen> *hanging);

}  // namespace ivd::libvirt
