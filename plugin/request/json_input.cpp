#include "request/json_input.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstring>
#include <memory>
#include <sstream>

namespace ivd::request {

std::string Where::full_path() const {
    if (parent == nullptr) return path;
    std::string out = parent->full_path();
    if (position != static_cast<std::size_t>(-1)) {
        out += fmt::format("[{}]", position);
    } else {
        if (!out.empty()) out.push_back('.');
        out.append(name);
    }
    return out;
}

Error invalid(const Where &where, std::string_view reason, Status status) {
    std::string path = where.full_path();
    std::string message = path.empty() ? fmt::format("{}: {}", where.argument, reason)
                                       : fmt::format("{} {}: {}", where.argument, path, reason);
    return make_error(status, std::move(message), std::string(where.argument), std::move(path));
}

namespace {

const char *type_name(const json::Value &v) {
    switch (v.type()) {
    case json::Type::null: return "null";
    case json::Type::integer: return "an integer";
    case json::Type::real: return v.is_oversized_integer() ? "an integer too large for 64 bits"
                                                           : "a number with a fraction or exponent";
    case json::Type::string: return "a string";
    case json::Type::boolean: return "a boolean";
    case json::Type::array: return "a list";
    case json::Type::object: return "an object";
    }
    return "an unknown type";
}

}  // namespace

Result<json::Value> parse_object(const char *text, std::string_view argument, bool null_ok) {
    const Where root{argument, {}};
    if (text == nullptr) {
        if (null_ok) return json::Value::object();
        return invalid(root, "is required but was NULL");
    }
    const std::size_t size = ::strnlen(text, max_document_bytes + 1);
    if (size > max_document_bytes) {
        return invalid(root, fmt::format("is larger than {} bytes", max_document_bytes));
    }
    json::ParseResult parsed = json::parse(text, size, {.max_bytes = max_document_bytes,
                                                          .max_depth = max_nesting_depth,
                                                          .reject_duplicate_keys = true});
    if (!parsed.ok) {
        if (parsed.error.invalid_utf8) return invalid(root, "is not valid UTF-8");
        return invalid(root, fmt::format("is not valid JSON ({} at byte {})", parsed.error.reason, parsed.error.offset));
    }
    if (parsed.value.is_null() && null_ok) return json::Value::object();
    if (!parsed.value.is_object()) {
        return invalid(root, fmt::format("must be a JSON object, not {}", type_name(parsed.value)));
    }
    return std::move(parsed.value);
}

const json::Value *member(const json::Value &object, std::string_view key) {
    const json::Value *found = object.find(key);
    if (found == nullptr || found->is_null()) return nullptr;
    return found;
}

bool is_valid_utf8(std::string_view s) noexcept { return json::valid_utf8(s); }

std::string quote_for_message(std::string_view value) {
    constexpr std::size_t limit = 64;
    std::string out = "'";
    for (std::size_t i = 0; i < value.size() && i < limit; ++i) {
        const auto c = static_cast<unsigned char>(value[i]);
        if (c < 0x20 || c == 0x7F || c >= 0x80) {
            out += fmt::format("\\x{:02x}", c);
        } else {
            out += static_cast<char>(c);
        }
    }
    out += value.size() > limit ? "'..." : "'";
    return out;
}

Result<std::string> read_string(const json::Value &v, const Where &where, const StringRules &rules) {
    if (!v.is_string()) return invalid(where, fmt::format("must be a string, not {}", type_name(v)));
    const std::string_view s = v.as_string();
    if (s.empty() && !rules.allow_empty) return invalid(where, "must not be empty");
    if (s.size() > rules.max_bytes) {
        return invalid(where, fmt::format("is {} bytes long; at most {} are allowed", s.size(), rules.max_bytes));
    }
    // Printable ASCII (nearly every value) passes the checks below: one pass over the bytes instead of four.
    const bool printable_ascii = std::all_of(s.begin(), s.end(), [](char ch) {
        return static_cast<unsigned char>(ch) - 0x20u < 0x5Fu;  // 0x20..0x7E
    });
    if (printable_ascii) return std::string(s);
    if (!is_valid_utf8(s)) return invalid(where, "is not valid UTF-8");
    if (!rules.allow_control) {
        for (const char ch : s) {
            const auto c = static_cast<unsigned char>(ch);
            if (c < 0x20 || c == 0x7F) return invalid(where, "contains a control character");
        }
        // U+FFFE and U+FFFF are valid UTF-8 but not XML characters: libvirt could not parse a disk carrying them.
        if (s.find("\xEF\xBF\xBE") != std::string_view::npos || s.find("\xEF\xBF\xBF") != std::string_view::npos) {
            return invalid(where, "contains U+FFFE or U+FFFF, which XML cannot carry");
        }
    }
    return std::string(s);
}

Result<bool> read_bool(const json::Value &v, const Where &where) {
    if (!v.is_bool()) return invalid(where, fmt::format("must be true or false, not {}", type_name(v)));
    return v.as_bool();
}

Result<std::int64_t> read_integer(const json::Value &v, const Where &where, std::int64_t min, std::int64_t max) {
    if (v.is_oversized_integer()) return invalid(where, fmt::format("is out of range [{}, {}]", min, max));
    if (!v.is_integer()) return invalid(where, fmt::format("must be an integer, not {}", type_name(v)));
    if (v.integer_is_unsigned()) return invalid(where, fmt::format("is out of range [{}, {}]", min, max));
    const std::int64_t n = v.as_int64();
    if (n < min || n > max) return invalid(where, fmt::format("{} is out of range [{}, {}]", n, min, max));
    return n;
}

Result<bool> read_flexible_bool(const json::Value &v, const Where &where) {
    if (v.is_bool()) return v.as_bool();
    if (v.is_string()) {
        std::string s = v.as_string();
        for (auto &c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        if (s == "true" || s == "yes" || s == "on" || s == "1") return true;
        if (s == "false" || s == "no" || s == "off" || s == "0") return false;
        return invalid(where, fmt::format("must be true or false, not {}", quote_for_message(v.as_string())));
    }
    return invalid(where, fmt::format("must be true or false, not {}", type_name(v)));
}

Result<std::int64_t> read_flexible_integer(const json::Value &v, const Where &where, std::int64_t min,
                                           std::int64_t max) {
    if (!v.is_string()) return read_integer(v, where, min, max);
    const std::string &s = v.as_string();
    if (s.empty() || s.size() > 19 || s.find_first_not_of("0123456789") != std::string::npos) {
        return invalid(where, fmt::format("must be a whole number, not {}", quote_for_message(s)));
    }
    // from_chars, not stoll: 19 digits can exceed INT64_MAX, and stoll would throw past the field name.
    std::int64_t n = 0;
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
    if (ec == std::errc::result_out_of_range) {
        return invalid(where, fmt::format("{} is out of range [{}, {}]", quote_for_message(s), min, max));
    }
    if (ec != std::errc() || end != s.data() + s.size()) {
        return invalid(where, fmt::format("must be a whole number, not {}", quote_for_message(s)));
    }
    if (n < min || n > max) return invalid(where, fmt::format("{} is out of range [{}, {}]", n, min, max));
    return n;
}

}  // namespace ivd::request
