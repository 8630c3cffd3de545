// Compact JSON output for everything the driver returns.
#pragma once

#include "core/error.hpp"
#include "core/json.hpp"

#include <string>

namespace ivd {

inline std::string to_json(const json::Value &value) { return json::write(value); }

// {"status": N, "code": "...", "message": "...", "argument": "...", "field": "..."}
json::Value error_to_json(const Error &error);

}  // namespace ivd
