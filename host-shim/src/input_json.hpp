// Reading the JSON inputs of volume-host under the same rules as the driver (README "Input validation"):
// RFC 8259 strict (no comments, no trailing bytes), duplicate keys refused, at most 1 MiB, nesting at most
// 32, strict UTF-8, no NUL byte.
#pragma once

#include "shim_error.hpp"

#include <json/json.h>

#include <cstddef>
#include <string>
#include <string_view>

namespace volume_host {

inline constexpr std::size_t max_input_bytes = 1024 * 1024;
inline constexpr int max_input_depth = 32;

// Reads a file (or standard input for "-") of at most max_input_bytes; `what` names the input in errors.
Outcome<std::string> read_input(const std::string &where, const char *what);

// Parses one JSON object; every refusal is input_error naming `what` and the reason.
Outcome<Json::Value> parse_json_object(std::string_view text, const char *what);

// Deepest nesting of arrays/objects in `text` (strings skipped); stops counting past `limit`.
int json_nesting_depth(std::string_view text, int limit);
// Offset of the first byte that is not strict UTF-8 (no overlong forms, surrogates or values past U+10FFFF),
// or npos.
std::size_t invalid_utf8_offset(std::string_view text);

}  // namespace volume_host
