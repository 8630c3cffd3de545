// Strict JSON input: the one place that turns bytes from the ABI into JSON values, and typed readers that
// name the exact field when something is wrong.
#pragma once

#include "core/error.hpp"
#include "core/json.hpp"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace ivd::request {

inline constexpr std::size_t max_document_bytes = 1 << 20;  // no legitimate input is near a megabyte
inline constexpr int max_nesting_depth = 32;

// Where a value sits: the ABI argument and the path inside it ("data.target_iqns[1]"). Every read names its
// place but few fail, so the path is a chain rendered only for an error: a Where made by key() or index()
// refers to its parent and to the key's characters, and must not outlive either (use it within the
// statement or scope that made it; never keep one made from a temporary).
struct Where {
    Where(std::string_view argument_name, std::string root_path = {})
        : argument(argument_name), path(std::move(root_path)) {}

    std::string_view argument;
    std::string path;  // the root's own path (usually empty)
    const Where *parent = nullptr;
    std::string_view name;                                // set by key()
    std::size_t position = static_cast<std::size_t>(-1);  // set by index()

    Where key(std::string_view key_name) const {
        Where w(argument);
        w.parent = this;
        w.name = key_name;
        return w;
    }
    Where index(std::size_t i) const {
        Where w(argument);
        w.parent = this;
        w.position = i;
        return w;
    }
    std::string full_path() const;
};

Error invalid(const Where &where, std::string_view reason, Status status = Status::invalid_argument);

// Parses a whole document that must be a JSON object. Rejects duplicate keys, trailing bytes, comments, deep
// nesting and oversized input. `text` may be null only when `null_ok` (then an empty object is returned).
Result<json::Value> parse_object(const char *text, std::string_view argument, bool null_ok = false);

// Member lookup: nullptr when absent or JSON null (Cinder sends null for unset optional keys).
const json::Value *member(const json::Value &object, std::string_view key);

struct StringRules {
    std::size_t max_bytes = 255;
    bool allow_empty = false;
    bool allow_control = false;  // control characters (including NUL) are refused unless allowed
};

bool is_valid_utf8(std::string_view s) noexcept;

// Typed readers. `secret` fields never echo their value in an error.
Result<std::string> read_string(const json::Value &v, const Where &where, const StringRules &rules = {});
Result<bool> read_bool(const json::Value &v, const Where &where);
// Integers only: JSON reals (1.5, 1e3) and strings are refused.
Result<std::int64_t> read_integer(const json::Value &v, const Where &where, std::int64_t min, std::int64_t max);

// Config values may arrive as strings (an INI section) or as native JSON: these accept both.
Result<bool> read_flexible_bool(const json::Value &v, const Where &where);
Result<std::int64_t> read_flexible_integer(const json::Value &v, const Where &where, std::int64_t min,
                                           std::int64_t max);

// A short, printable rendering of a rejected value for error messages (never used for secret fields).
std::string quote_for_message(std::string_view value);

}  // namespace ivd::request
