#include "iscsi/resolve.hpp"

#include <fmt/format.h>

#include <arpa/inet.h>
#include <netdb.h>

#include <algorithm>
#include <cerrno>
#include <ctime>
#include <memory>
#include <mutex>

namespace ivd::iscsi {

namespace {

// One getaddrinfo_a request; glibc's resolver threads write into it until it completes or is cancelled.
struct Lookup {
    std::string name;
    addrinfo hints{};
    gaicb cb{};
    explicit Lookup(std::string host) : name(std::move(host)) {
        hints.ai_family = AF_UNSPEC;
        hints.ai_socktype = SOCK_STREAM;
        cb.ar_name = name.c_str();
        cb.ar_request = &hints;
    }
    Lookup(const Lookup &) = delete;
    Lookup &operator=(const Lookup &) = delete;
    ~Lookup() {
        if (cb.ar_result != nullptr) ::freeaddrinfo(cb.ar_result);
    }
};

// Lookups that glibc could not cancel (already running) stay alive until glibc is done with them; a later call
// frees the finished ones. Bounded by how many names hung at once. Never destroyed, not even at exit: a resolver
// thread of glibc may still write into one then.
std::mutex abandoned_mutex;
std::vector<std::unique_ptr<Lookup>> &abandoned() {
    static auto *list = new std::vector<std::unique_ptr<Lookup>>();
    return *list;
}

void reap_abandoned() {
    const std::lock_guard<std::mutex> lock(abandoned_mutex);
    auto &list = abandoned();
    std::erase_if(list, [](const std::unique_ptr<Lookup> &l) { return ::gai_error(&l->cb) != EAI_INPROGRESS; });
}

void abandon(std::unique_ptr<Lookup> lookup) {
    const std::lock_guard<std::mutex> lock(abandoned_mutex);
    abandoned().push_back(std::move(lookup));
}

bool parses_as(int family, const std::string &host) {
    unsigned char buf[sizeof(in6_addr)];
    return ::inet_pton(family, host.c_str(), buf) == 1;
}

ResolvedHost from_result(Lookup &lookup) {
    ResolvedHost out;
    const int rc = ::gai_error(&lookup.cb);
    if (rc != 0 || lookup.cb.ar_result == nullptr) {
        out.state = ResolvedHost::State::failed;
        out.problem = fmt::format("cannot resolve the host name {}: {}", lookup.name,
                                  rc != 0 ? ::gai_strerror(rc) : "no address");
        return out;
    }
    // The first address, as libiscsi's own getaddrinfo() call would have used.
    const addrinfo *ai = lookup.cb.ar_result;
    char text[INET6_ADDRSTRLEN] = {};
    const void *addr = ai->ai_family == AF_INET6
                           ? static_cast<const void *>(&reinterpret_cast<const sockaddr_in6 *>(ai->ai_addr)->sin6_addr)
                           : static_cast<const void *>(&reinterpret_cast<const sockaddr_in *>(ai->ai_addr)->sin_addr);
    if (::inet_ntop(ai->ai_family, addr, text, sizeof text) == nullptr) {
        out.state = ResolvedHost::State::failed;
        out.problem = fmt::format("cannot resolve the host name {}: unusable address family", lookup.name);
        return out;
    }
    out.state = ResolvedHost::State::resolved;
    out.address = text;
    out.ipv6 = ai->ai_family == AF_INET6;
    return out;
}

// Waits until every request in `pending` completed or `deadline` passed; completed entries become null.
void wait_for(std::vector<gaicb *> &pending, std::chrono::steady_clock::time_point deadline) {
    auto still_pending = [&] {
        bool any = false;
        for (gaicb *&cb : pending) {
            if (cb != nullptr && ::gai_error(cb) != EAI_INPROGRESS) cb = nullptr;
            any = any || cb != nullptr;
        }
        return any;
    };
    while (still_pending()) {
        const auto left = deadline - std::chrono::steady_clock::now();
        if (left <= std::chrono::steady_clock::duration::zero()) return;
        const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(left).count();
        const timespec wait{static_cast<time_t>(ns / 1000000000), static_cast<long>(ns % 1000000000)};
        ::gai_suspend(pending.data(), static_cast<int>(pending.size()), &wait);  // EAI_AGAIN, EAI_INTR: look again
    }
}

}  // namespace

bool is_ip_literal(const request::Portal &portal) {
    return portal.ipv6 || parses_as(AF_INET, portal.host) || parses_as(AF_INET6, portal.host);
}

std::vector<ResolvedHost> resolve_hosts(const std::vector<const request::Portal *> &portals,
                                        std::chrono::milliseconds timeout) {
    reap_abandoned();
    std::vector<ResolvedHost> out(portals.size());
    std::vector<std::unique_ptr<Lookup>> lookups(portals.size());
    std::vector<gaicb *> requests;
    for (std::size_t i = 0; i < portals.size(); ++i) {
        if (is_ip_literal(*portals[i])) {
            out[i].address = portals[i]->host;
            out[i].ipv6 = portals[i]->ipv6 || portals[i]->host.find(':') != std::string::npos;
            continue;
        }
        lookups[i] = std::make_unique<Lookup>(portals[i]->host);
        requests.push_back(&lookups[i]->cb);
    }
    if (requests.empty()) return out;
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    std::vector<gaicb *> submitted = requests;
    const int rc = ::getaddrinfo_a(GAI_NOWAIT, submitted.data(), static_cast<int>(submitted.size()), nullptr);
    if (rc == 0 || rc == EAI_SYSTEM) wait_for(requests, deadline);  // EAI_SYSTEM: some were queued
    for (std::size_t i = 0; i < portals.size(); ++i) {
        if (!lookups[i]) continue;
        const int state = ::gai_error(&lookups[i]->cb);
        if (state == EAI_INPROGRESS) {
            out[i].state = ResolvedHost::State::timed_out;
            out[i].problem = fmt::format("the host name {} did not resolve within {} ms", portals[i]->host,
                                         timeout.count());
            if (::gai_cancel(&lookups[i]->cb) != EAI_CANCELED) abandon(std::move(lookups[i]));
            continue;
        }
        out[i] = from_result(*lookups[i]);
        if (rc != 0 && rc != EAI_SYSTEM) {
            out[i].state = ResolvedHost::State::failed;
            out[i].problem = fmt::format("cannot resolve the host name {}: {}", portals[i]->host, ::gai_strerror(rc));
        }
    }
    return out;
}

request::Portal connectable(const request::Portal &portal, const ResolvedHost &resolved) {
    request::Portal out = portal;
    if (resolved.state == ResolvedHost::State::resolved) {
        out.host = resolved.address;
        out.ipv6 = resolved.ipv6;
    }
    return out;
}

}  // namespace ivd::iscsi
