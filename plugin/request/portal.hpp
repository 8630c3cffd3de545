// An iSCSI portal: host (IPv4, IPv6 or DNS name) and TCP port.
#pragma once

#include "core/error.hpp"

#include <cstdint>
#include <string>
#include <string_view>

namespace ivd::request {

inline constexpr std::uint16_t default_iscsi_port = 3260;

struct Portal {
    std::string host;  // IPv6 without brackets
    std::uint16_t port = default_iscsi_port;
    bool ipv6 = false;

    // "host:port", "[v6]:port": the form Cinder and iscsiadm use.
    std::string to_string() const;
    friend bool operator==(const Portal &, const Portal &) = default;
};

// Accepts "host:port", "[ipv6]:port", "[ipv6]", a bare IPv6 literal and a bare host (port 3260). The error
// (invalid_argument) says why in words a caller puts after the field it read the text from.
Result<Portal> parse_portal(std::string_view text);

}  // namespace ivd::request
