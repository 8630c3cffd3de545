#include "core/log.hpp"

#include <string>

namespace ivd {

void Logger::log(LogLevel level, std::string_view component, std::string_view message) const noexcept {
    if (fn_ == nullptr) return;
    try {
        const std::string c(component);
        const std::string m(message);
        fn_(user_data_, static_cast<std::int32_t>(level), c.c_str(), m.c_str());
    } catch (...) {
        // Logging must never turn a result into a failure.
    }
}

}  // namespace ivd
