// Logging through the host's callback only; the driver never writes to stdout or stderr.
#pragma once

#include <fmt/format.h>

#include <cstdint>
#include <string_view>

namespace ivd {

enum class LogLevel : std::int32_t { error = 1, warning = 2, info = 3, debug = 4 };

using LogFn = void (*)(void *user_data, std::int32_t level, const char *component, const char *message);

class Logger {
public:
    Logger() = default;
    Logger(LogFn fn, void *user_data) : fn_(fn), user_data_(user_data) {}

    bool enabled() const noexcept { return fn_ != nullptr; }
    void log(LogLevel level, std::string_view component, std::string_view message) const noexcept;

    template <class... Args>
    void error(std::string_view component, fmt::format_string<Args...> f, Args &&...args) const {
        emit(LogLevel::error, component, f, std::forward<Args>(args)...);
    }
    template <class... Args>
    void warning(std::string_view component, fmt::format_string<Args...> f, Args &&...args) const {
        emit(LogLevel::warning, component, f, std::forward<Args>(args)...);
    }
    template <class... Args>
    void info(std::string_view component, fmt::format_string<Args...> f, Args &&...args) const {
        emit(LogLevel::info, component, f, std::forward<Args>(args)...);
    }
    template <class... Args>
    void debug(std::string_view component, fmt::format_string<Args...> f, Args &&...args) const {
        emit(LogLevel::debug, component, f, std::forward<Args>(args)...);
    }

private:
    template <class... Args>
    void emit(LogLevel level, std::string_view component, fmt::format_string<Args...> f, Args &&...args) const {
        if (fn_ == nullptr) return;  // skip formatting work when nobody listens
        log(level, component, fmt::format(f, std::forward<Args>(args)...));
    }

    LogFn fn_ = nullptr;
    void *user_data_ = nullptr;
};

}  // namespace ivd
