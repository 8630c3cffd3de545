#include "request/iscsi_name.hpp"

#include <fmt/format.h>

#include <array>

namespace ivd::request {

namespace {

// ASCII only, whatever locale the host process runs under (std::isalnum could accept Latin-1 letters).
constexpr bool ascii_digit(char c) { return c >= '0' && c <= '9'; }
constexpr bool ascii_alnum(char c) { return ascii_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
constexpr bool ascii_hex(char c) { return ascii_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

bool is_hex(std::string_view s) {
    for (const char c : s) {
        if (!ascii_hex(c)) return false;
    }
    return true;
}

bool is_digits(std::string_view s) {
    for (const char c : s) {
        if (!ascii_digit(c)) return false;
    }
    return !s.empty();
}

// One table look-up a byte: names are checked on every call, several per connection_info.
constexpr std::array<bool, 256> allowed_table = [] {
    std::array<bool, 256> t{};
    for (int c = 0; c < 256; ++c) {
        const char ch = static_cast<char>(c);
        t[c] = ascii_alnum(ch) || ch == '.' || ch == ':' || ch == '-' || ch == '_';
    }
    return t;
}();

bool allowed_char(char c) { return allowed_table[static_cast<unsigned char>(c)]; }

// The naming authority's bytes: 1 a label's letter, digit, '-' or '_'; 2 the dot between labels; 0 neither.
constexpr std::array<unsigned char, 256> authority_table = [] {
    std::array<unsigned char, 256> t{};
    for (int c = 0; c < 256; ++c) {
        const char ch = static_cast<char>(c);
        t[c] = ascii_alnum(ch) || ch == '-' || ch == '_' ? 1 : ch == '.' ? 2 : 0;
    }
    return t;
}();

std::string iqn_problem(std::string_view name) {
    // iqn.YYYY-MM.reversed.domain[:unique]
    const std::string_view rest = name.substr(4);
    if (rest.size() < 8 || rest[4] != '-' || rest[7] != '.' || !is_digits(rest.substr(0, 4)) ||
        !is_digits(rest.substr(5, 2))) {
        return "an iqn. name must continue with a date yyyy-mm and a dot (iqn.yyyy-mm.naming-authority)";
    }
    const int month = (rest[5] - '0') * 10 + (rest[6] - '0');
    if (month < 1 || month > 12) return "the month in an iqn. name must be 01 to 12";
    std::string_view authority = rest.substr(8);
    authority = authority.substr(0, authority.find(':'));
    if (authority.empty()) return "an iqn. name needs a naming authority after the date";
    // One pass over the labels, in order: a label is found empty at its end, a bad byte where it is.
    bool label_empty = true;
    for (const char c : authority) {
        const unsigned char kind = authority_table[static_cast<unsigned char>(c)];
        if (kind == 1) {
            label_empty = false;
        } else if (kind == 2) {
            if (label_empty) return "the naming authority of an iqn. name has an empty label";
            label_empty = true;
        } else {
            return "the naming authority of an iqn. name may contain only letters, digits and '-'";
        }
    }
    if (label_empty) return "the naming authority of an iqn. name has an empty label";
    return {};
}

}  // namespace

std::string iscsi_name_problem(std::string_view name) {
    if (name.empty()) return "an iSCSI name must not be empty";
    if (name.size() > max_iscsi_name_bytes) {
        return fmt::format("an iSCSI name is at most {} bytes long", max_iscsi_name_bytes);
    }
    for (const char c : name) {
        if (!allowed_char(c)) {
            return "an iSCSI name may contain only letters, digits, '.', ':', '-' and '_'";
        }
    }
    const std::string_view prefix = name.substr(0, 4);
    if (prefix == "iqn." || prefix == "IQN.") return iqn_problem(name);
    if (prefix == "eui." || prefix == "EUI.") {
        if (name.size() != 20 || !is_hex(name.substr(4))) return "an eui. name is 'eui.' and 16 hex digits";
        return {};
    }
    if (prefix == "naa." || prefix == "NAA.") {
        const std::string_view digits = name.substr(4);
        if ((digits.size() != 16 && digits.size() != 32) || !is_hex(digits)) {
            return "a naa. name is 'naa.' and 16 or 32 hex digits";
        }
        return {};
    }
    return "an iSCSI name must start with iqn., eui. or naa.";
}

Result<std::string> read_iscsi_name(const json::Value &v, const Where &where) {
    return read_iscsi_name(field_of(v), where);
}

Result<std::string> read_iscsi_name(const Field &v, const Where &where) {
    auto s = read_string(v, where, {.max_bytes = max_iscsi_name_bytes});
    if (!s) return std::move(s).error();
    if (auto problem = iscsi_name_problem(*s); !problem.empty()) {
        return invalid(where, fmt::format("{} is not a valid iSCSI name: {}", quote_for_message(*s), problem));
    }
    return s;
}

}  // namespace ivd::request
