// Host names in portals: resolved under the probe's deadline. libiscsi resolves with a blocking getaddrinfo(),
// so a DNS server that never answers used to hold a probe (and the attach) for the resolver's own timeouts.
// The black-hole DNS server runs on a private loopback address, and only a forked child (in its own mount
// namespace, with its own /etc/resolv.conf bind-mounted) uses it: the host's resolver is never touched.
#include "iscsi/iscsi_probe.hpp"
#include "iscsi/send_targets.hpp"
#include "iscsi/resolve.hpp"

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>
#include <thread>

namespace ivd::iscsi {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

request::Portal portal(const char *text) {
    auto p = request::parse_portal(text);
    EXPECT_TRUE(p.ok()) << text;
    return p ? *p : request::Portal{};
}

TEST(IscsiResolve, LiteralsPassThroughAndNamesResolve) {
    const request::Portal v4 = portal("127.0.0.1:3260"), v6 = portal("[::1]:3261"), name = portal("localhost:3262");
    const auto out = resolve_hosts({&v4, &v6, &name}, 2000ms);
    ASSERT_EQ(out.size(), 3u);
    EXPECT_EQ(out[0].state, ResolvedHost::State::literal);
    EXPECT_EQ(out[1].state, ResolvedHost::State::literal);
    EXPECT_TRUE(out[1].ipv6);
    ASSERT_EQ(out[2].state, ResolvedHost::State::resolved) << out[2].problem;
    EXPECT_TRUE(out[2].address == "127.0.0.1" || out[2].address == "::1") << out[2].address;
    const request::Portal c = connectable(name, out[2]);
    EXPECT_EQ(c.port, 3262);
    EXPECT_EQ(c.host, out[2].address);
}

// A UDP socket on a loopback address that nobody reads: every DNS query to it goes unanswered.
int black_hole_dns(std::string *address) {
    for (int i = 1; i < 200; ++i) {
        const int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (fd < 0) return -1;
        const std::string addr = "127.53." + std::to_string((::getpid() + i) % 250) + "." + std::to_string(1 + i % 250);
        sockaddr_in sa{};
        sa.sin_family = AF_INET;
        sa.sin_port = htons(53);
        ::inet_pton(AF_INET, addr.c_str(), &sa.sin_addr);
        if (::bind(fd, reinterpret_cast<sockaddr *>(&sa), sizeof sa) == 0) {
            *address = addr;
            return fd;
        }
        ::close(fd);
    }
    return -1;
}

// In the child: a private /etc/resolv.conf naming only the black hole, with long resolver timeouts.
std::string isolate_resolver(const std::string &dns) {
    if (::unshare(CLONE_NEWNS) != 0) return "unshare(CLONE_NEWNS) failed";
    if (::mount("none", "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) return "making / private failed";
    char path[] = "/tmp/ivd-resolv-XXXXXX";
    const int fd = ::mkstemp(path);
    if (fd < 0) return "mkstemp failed";
    ::close(fd);
    std::ofstream(path) << "nameserver " << dns << "\noptions timeout:30 attempts:2\n";
    const bool ok = ::mount(path, "/etc/resolv.conf", nullptr, MS_BIND, nullptr) == 0;
    ::unlink(path);
    return ok ? "" : "bind-mounting /etc/resolv.conf failed";
}

// Runs `body` in a forked child with the black-hole resolver; returns its one line of output, or "HUNG".
template <class Body>
std::string in_black_hole_resolver_child(Body body) {
    std::string dns;
    const int dns_fd = black_hole_dns(&dns);
    if (dns_fd < 0) return "no free loopback address for the DNS black hole";
    int out[2];
    if (::pipe(out) != 0) return "pipe failed";
    const pid_t pid = ::fork();
    if (pid == 0) {
        ::close(out[0]);
        std::string line = isolate_resolver(dns);
        if (line.empty()) line = body();
        (void)!::write(out[1], line.data(), line.size());
        ::_exit(0);
    }
    ::close(out[1]);
    const auto give_up = Clock::now() + 20s;  // the resolver alone would wait 2 x 30 s
    int status = 0;
    while (::waitpid(pid, &status, WNOHANG) == 0) {
        if (Clock::now() > give_up) {
            ::kill(pid, SIGKILL);
            ::waitpid(pid, &status, 0);
            ::close(out[0]);
            ::close(dns_fd);
            return "HUNG";
        }
        std::this_thread::sleep_for(20ms);
    }
    std::string line;
    char buf[512];
    for (ssize_t n; (n = ::read(out[0], buf, sizeof buf)) > 0;) line.append(buf, static_cast<std::size_t>(n));
    ::close(out[0]);
    ::close(dns_fd);
    return line;
}

TEST(IscsiResolve, UnansweredDnsEndsTheProbeWithinItsTimeout) {
    const std::string line = in_black_hole_resolver_child([] {
        request::Target t{portal("portal.ivd-dns-black-hole.test:3260"), "iqn.2024-01.org.ivd:t", 1};
        ProbeOptions o;
        o.initiator = "iqn.2024-01.org.ivd:iscsi-tests";
        o.timeout = 500ms;
        const auto start = Clock::now();
        const auto results = probe_targets({t}, o);
        const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count();
        return std::string(probe_outcome_name(results.at(0).outcome)) + " " + std::to_string(ms) + " " +
               results.at(0).detail;
    });
    ASSERT_NE(line, "HUNG") << "the probe waited on DNS with no deadline";
    std::printf("%s\n", line.c_str());
    EXPECT_EQ(line.rfind("timeout ", 0), 0u) << line;
    const long ms = std::stol(line.substr(8));
    EXPECT_LT(ms, 2000) << line;
    EXPECT_NE(line.find("portal.ivd-dns-black-hole.test:3260"), std::string::npos) << line;
}

TEST(IscsiResolve, UnansweredDnsEndsDiscoveryWithinItsTimeout) {
    const std::string line = in_black_hole_resolver_child([] {
        const auto start = Clock::now();
        auto r = send_targets(portal("discovery.ivd-dns-black-hole.test"), "iqn.2024-01.org.ivd:iscsi-tests",
                              nullptr, 500ms);
        const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count();
        return std::string(r.ok() ? "ok" : status_code_name(r.error().status)) + " " + std::to_string(ms) + " " +
               (r.ok() ? "" : r.error().message);
    });
    ASSERT_NE(line, "HUNG") << "discovery waited on DNS with no deadline";
    std::printf("%s\n", line.c_str());
    EXPECT_EQ(line.rfind("timeout ", 0), 0u) << line;
    EXPECT_LT(std::stol(line.substr(8)), 2000) << line;
    EXPECT_NE(line.find("discovery.ivd-dns-black-hole.test"), std::string::npos) << line;
}

}  // namespace
}  // namespace ivd::iscsi
