// virConnectOpen under a deadline. libvirt has no open timeout: a daemon (or a qemu+tcp:// peer) that accepts
// and never answers, or a TCP connect to a host that drops packets, holds virConnectOpen for minutes or for
// ever. So the open runs in a thread of its own and the caller waits at most the deadline; an open that
// misses it is left to finish by itself (it closes what it opened), with this module pinned so the thread can
// never return into unmapped code.
#pragma once

#include "core/error.hpp"
#include "libvirt/handles.hpp"

#include <chrono>
#include <string>

namespace ivd::libvirt {

// Opens `uri` read-write. Errors: timeout (no answer within `timeout`), unreachable (no daemon there: the
// socket or host refused, or the link broke), or libvirt's own (auth, backend); each names the URI. While an
// earlier open of the same URI (by any Connection of the process) is still hanging, fails at once with timeout
// instead of stacking another thread on a daemon that does not answer.
Result<ConnectHandle> open_with_deadline(const std::string &uri, std::chrono::milliseconds timeout);

}  // namespace ivd::libvirt
