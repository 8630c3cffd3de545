#include "core/json_output.hpp"

#include <json/writer.h>

namespace ivd {

std::string to_json(const Json::Value &value) {
    static const Json::StreamWriterBuilder builder = [] {
        Json::StreamWriterBuilder b;
        b["indentation"] = "";
        b["emitUTF8"] = true;
        return b;
    }();
    return Json::writeString(builder, value);
}

Json::Value error_to_json(const Error &error) {
    Json::Value v(Json::objectValue);
    v["status"] = static_cast<int>(error.status);
    v["code"] = status_code_name(error.status);
    v["message"] = error.message;
    v["argument"] = error.argument;
    v["field"] = error.field;
    return v;
}

}  // namespace ivd
