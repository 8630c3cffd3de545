// FNV-1a, 64 bits: stable file names derived from a volume, usage or record path (not for security).
#pragma once

#include <cstdint>
#include <string_view>

namespace ivd {

inline std::uint64_t fnv1a(std::string_view s) {
    std::uint64_t h = 14695981039346656037ull;
    for (const unsigned char c : s) {
        h ^= c;
        h *= 1099511628211ull;
    }
    return h;
}

}  // namespace ivd
