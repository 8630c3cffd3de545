// Compact JSON output for everything the driver returns.
#pragma once

#include "core/error.hpp"

#include <json/value.h>

#include <string>

namespace ivd {

std::string to_json(const Json::Value &value);

// {"status": N, "code": "...", "message": "...", "argument": "...", "field": "..."}
Json::Value error_to_json(const Error &error);

}  // namespace ivd
