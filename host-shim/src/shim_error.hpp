// Errors of the host shim itself (config, loading); driver errors arrive as the driver's JSON.
#pragma once

#include <string>
#include <utility>
#include <variant>

namespace volume_host {

struct ShimError {
    std::string code;     // stable: config_error, driver_not_found, dlopen_failed, not_a_driver, ...
    std::string message;  // names the file/path and the reason
    int exit_code = 1;
};

template <class T>
class Outcome {
public:
    Outcome(T value) : data_(std::in_place_index<0>, std::move(value)) {}       // NOLINT
    Outcome(ShimError error) : data_(std::in_place_index<1>, std::move(error)) {}  // NOLINT
    explicit operator bool() const { return data_.index() == 0; }
    T &value() { return std::get<0>(data_); }
    T *operator->() { return &value(); }
    T &operator*() { return value(); }
    const ShimError &error() const { return std::get<1>(data_); }

private:
    std::variant<T, ShimError> data_;
};

// Exit codes of volume-host.
inline constexpr int exit_usage = 2;
inline constexpr int exit_config = 3;
inline constexpr int exit_load = 4;
inline constexpr int exit_driver = 5;
inline constexpr int exit_libvirt = 6;
// The call did what it could, but not all of it was looked at (cleanup: a path could not scan; the report says
// which and why). Nothing failed: a failure is exit_driver.
inline constexpr int exit_partial = 7;

}  // namespace volume_host
