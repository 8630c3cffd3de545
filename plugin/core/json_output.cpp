#include "core/json_output.hpp"

namespace ivd {

json::Value error_to_json(const Error &error) {
    json::Value v = json::Value::object();
    v["status"] = static_cast<int>(error.status);
    v["code"] = status_code_name(error.status);
    v["message"] = error.message;
    v["argument"] = error.argument;
    v["field"] = error.field;
    return v;
}

}  // namespace ivd
