// Host names of portals resolved under a deadline. libiscsi resolves with a blocking getaddrinfo() inside
// iscsi_connect_async(), outside any deadline of the event loop; so names are resolved here first, all at once
// (getaddrinfo_a: glibc's own threads, nothing of this module runs in them), and libiscsi only sees literals.
#pragma once

#include "request/portal.hpp"

#include <chrono>
#include <string>
#include <vector>

namespace ivd::iscsi {

struct ResolvedHost {
    enum class State { literal, resolved, failed, timed_out };
    State state = State::literal;
    std::string address;  // the IP literal to connect to (the input when it already was one)
    bool ipv6 = false;
    std::string problem;  // why not, when failed or timed_out (names the host)
};

// True when `portal.host` is an IPv4 or IPv6 literal (nothing to resolve).
bool is_ip_literal(const request::Portal &portal);

// Resolves every portal's host concurrently; returns within about `timeout` even when the DNS server never
// answers. Lookups still running then are cancelled, or left to glibc and reaped by a later call.
std::vector<ResolvedHost> resolve_hosts(const std::vector<const request::Portal *> &portals,
                                        std::chrono::milliseconds timeout);

// The portal libiscsi should connect to: `portal` with its host replaced by the resolved address.
request::Portal connectable(const request::Portal &portal, const ResolvedHost &resolved);

}  // namespace ivd::iscsi
