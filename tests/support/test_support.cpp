#include "test_support.hpp"

#include <json/reader.h>
#include <json/writer.h>

#include <gtest/gtest.h>

#include <fstream>
#include <memory>
#include <sstream>

namespace ivd::testing {

std::string slurp(const std::filesystem::path &path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

std::optional<Json::Value> try_parse_json(const std::string &text, std::string *errors) {
    Json::CharReaderBuilder builder;
    Json::CharReaderBuilder::strictMode(&builder.settings_);
    const std::unique_ptr<Json::CharReader> reader(builder.newCharReader());
    Json::Value value;
    std::string why;
    if (!reader->parse(text.data(), text.data() + text.size(), &value, &why)) {
        if (errors != nullptr) *errors = why;
        return std::nullopt;
    }
    return value;
}

Json::Value parse_json(const std::string &text) {
    std::string errors;
    auto value = try_parse_json(text, &errors);
    if (!value) {
        ADD_FAILURE() << "not valid JSON (" << errors << "): " << text;
        return Json::Value();
    }
    return *value;
}

std::string write_json(const Json::Value &value) {
    Json::StreamWriterBuilder builder;
    builder["indentation"] = "";
    builder["emitUTF8"] = true;
    return Json::writeString(builder, value);
}

}  // namespace ivd::testing
