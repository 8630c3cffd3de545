#include "request/json_input.hpp"

#include "request/json_fields.hpp"

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
        return invalid(root, fmt::format("must be a JSON object, not {}", type_name(field_of(parsed.value))));
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

// The json::Value readers are the Field ones (json_fields.cpp), over a view of the value.
Result<std::string> read_string(const json::Value &v, const Where &where, const StringRules &rules) {
    return read_string(field_of(v), where, rules);
}

Result<bool> read_bool(const json::Value &v, const Where &where) { return read_bool(field_of(v), where); }

Result<std::int64_t> read_integer(const json::Value &v, const Where &where, std::int64_t min, std::int64_t max) {
    return read_integer(field_of(v), where, min, max);
}

Result<bool> read_flexible_bool(const json::Value &v, const Where &where) {
    return read_flexible_bool(field_of(v), where);
}

Result<std::int64_t> read_flexible_integer(const json::Value &v, const Where &where, std::int64_t min,
                                           std::int64_t max) {
    return read_flexible_integer(field_of(v), where, min, max);
}

}  // namespace ivd::request
