#include "request/portal.hpp"

#include <arpa/inet.h>

#include <fmt/format.h>

#include <cctype>
#include <charconv>

namespace ivd::request {

std::string Portal::to_string() const {
    char digits[8];
    const auto end = std::to_chars(digits, digits + sizeof digits, port).ptr;
    std::string out;
    out.reserve(host.size() + 3 + static_cast<std::size_t>(end - digits));
    if (ipv6) out.push_back('[');
    out.append(host);
    if (ipv6) out.push_back(']');
    out.push_back(':');
    out.append(digits, end);
    return out;
}

namespace {

bool is_ipv6_literal(std::string_view s) {
    if (s.empty() || s.size() > 45) return false;
    const std::string copy(s);
    in6_addr addr{};
    return ::inet_pton(AF_INET6, copy.c_str(), &addr) == 1;
}

bool looks_like_ipv4(std::string_view s) {
    for (const char c : s) {
        if (!std::isdigit(static_cast<unsigned char>(c)) && c != '.') return false;
    }
    return !s.empty();
}

bool is_ipv4_literal(std::string_view s) {
    const std::string copy(s);
    in_addr addr{};
    return ::inet_pton(AF_INET, copy.c_str(), &addr) == 1;
}

// RFC 1123 host name: labels of letters, digits and '-', not starting or ending with '-'.
bool is_host_name(std::string_view s) {
    if (s.empty() || s.size() > 253) return false;
    std::size_t start = 0;
    while (true) {
        const std::size_t dot = s.find('.', start);
        const std::string_view label = s.substr(start, dot == std::string_view::npos ? s.npos : dot - start);
        if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-') return false;
        for (const char c : label) {
            if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-') return false;
        }
        if (dot == std::string_view::npos) return true;
        start = dot + 1;
        if (start == s.size()) return true;  // a trailing dot (fully qualified) is fine
    }
}

std::string parse_port(std::string_view text, std::uint16_t *port) {
    if (text.empty() || text.size() > 5) return "the port must be a number from 1 to 65535";
    unsigned value = 0;
    for (const char c : text) {
        if (!std::isdigit(static_cast<unsigned char>(c))) return "the port must be a number from 1 to 65535";
        value = value * 10 + static_cast<unsigned>(c - '0');
    }
    if (value < 1 || value > 65535) return "the port must be a number from 1 to 65535";
    *port = static_cast<std::uint16_t>(value);
    return {};
}

}  // namespace

// Not supported: the portal reaches libvirt's <host name>, QEMU and libiscsi as text; libiscsi would hand a
// "%zone" to getaddrinfo, but nothing checks that libvirt and QEMU's -blockdev carry it through unchanged.
constexpr const char *zone_id_problem =
    "IPv6 zone ids ('%' and an interface, as in fe80::1%eth0) are not supported in portals: use a global or "
    "unique local IPv6 address, or an IPv4 address";

static std::string portal_problem(std::string_view text, Portal *out) {
    if (text.empty()) return "a portal must not be empty";
    if (text.size() > 300) return "a portal is at most 300 bytes long";
    // Before the bracket rules: "fe80::1%eth0" is not an address that merely lacks brackets.
    if (text.find('%') != std::string_view::npos && text.find(':') != std::string_view::npos) return zone_id_problem;
    Portal portal;
    if (text.front() == '[') {
        const std::size_t close = text.find(']');
        if (close == std::string_view::npos) return "a '[' in a portal needs its ']'";
        const std::string_view host = text.substr(1, close - 1);
        if (!is_ipv6_literal(host)) return "the address in brackets is not an IPv6 address";
        portal.host = std::string(host);
        portal.ipv6 = true;
        const std::string_view rest = text.substr(close + 1);
        if (!rest.empty()) {
            if (rest.front() != ':') return "after ']' a portal may only have ':port'";
            if (auto problem = parse_port(rest.substr(1), &portal.port); !problem.empty()) return problem;
        }
        *out = std::move(portal);
        return {};
    }
    const std::size_t first_colon = text.find(':');
    if (first_colon != std::string_view::npos && text.find(':', first_colon + 1) != std::string_view::npos) {
        // Several colons: only a whole bare IPv6 literal is unambiguous.
        if (!is_ipv6_literal(text)) {
            return "a portal with an IPv6 address and a port must bracket the address: [address]:port";
        }
        portal.host = std::string(text);
        portal.ipv6 = true;
        *out = std::move(portal);
        return {};
    }
    const std::string_view host = text.substr(0, first_colon);
    if (first_colon != std::string_view::npos) {
        if (auto problem = parse_port(text.substr(first_colon + 1), &portal.port); !problem.empty()) return problem;
    }
    if (looks_like_ipv4(host)) {
        if (!is_ipv4_literal(host)) return "the portal's host is not a valid IPv4 address";
    } else if (!is_host_name(host)) {
        return "the portal's host is neither an IP address nor a valid host name";
    }
    portal.host = std::string(host);
    *out = std::move(portal);
    return {};
}

Result<Portal> parse_portal(std::string_view text) {
    Portal portal;
    if (auto problem = portal_problem(text, &portal); !problem.empty()) {
        return make_error(Status::invalid_argument, std::move(problem));
    }
    return portal;
}

}  // namespace ivd::request
