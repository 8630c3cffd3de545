#include "core/error.hpp"

namespace ivd {

const char *status_code_name(Status status) noexcept {
    switch (status) {
    case Status::ok: return "ok";
    case Status::invalid_argument: return "invalid_argument";
    case Status::version_refused: return "version_refused";
    case Status::not_implemented: return "not_implemented";
    case Status::unsupported: return "unsupported";
    case Status::config: return "invalid_config";
    case Status::auth: return "auth_failed";
    case Status::unreachable: return "unreachable";
    case Status::timeout: return "timeout";
    case Status::backend: return "backend_error";
    case Status::not_found: return "not_found";
    case Status::no_memory: return "no_memory";
    case Status::internal: return "internal_error";
    case Status::inconsistent: return "inconsistent_storage";
    }
    return "unknown";
}

}  // namespace ivd
