// Helpers shared by the test groups: files and JSON (jsoncpp: the tests read the driver's output as a host
// would, with a library of their own).
#pragma once

#include <json/value.h>

#include <filesystem>
#include <optional>
#include <string>

namespace ivd::testing {

// The whole file, bytes as they are; empty when it cannot be read.
std::string slurp(const std::filesystem::path &path);

// Strict parse (no comments, no trailing bytes); nullopt on bad input, with the reason in *errors.
std::optional<Json::Value> try_parse_json(const std::string &text, std::string *errors = nullptr);

// For tests: bad input is a (non-fatal) test failure naming the reason and the text, and gives a null value.
Json::Value parse_json(const std::string &text);

// Compact text, as the driver's own output is.
std::string write_json(const Json::Value &value);

}  // namespace ivd::testing
