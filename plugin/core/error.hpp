// The driver's error type and the Result<T> every fallible internal function returns.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <variant>

namespace ivd {

// Mirrors the VD_E_* numbers of the ABI; only entry/ converts between the two.
enum class Status : std::int32_t {
    ok = 0,
    invalid_argument = 1,
    version_refused = 2,
    not_implemented = 3,
    unsupported = 4,
    config = 5,
    auth = 6,
    unreachable = 7,
    timeout = 8,
    backend = 9,
    not_found = 10,
    no_memory = 11,
    internal = 12,
    inconsistent = 13,
};

// Stable machine-readable name of a status, used as "code" in error JSON.
const char *status_code_name(Status status) noexcept;

struct Error {
    Status status = Status::internal;
    std::string message;   // human-readable; never contains a secret
    std::string argument;  // which ABI argument: connection_info, connector, disk_info, device_info, config, flags
    std::string field;     // path inside the argument, e.g. "data.target_iqns[1]"

    // Prefixes the message with context while keeping status and field.
    Error &&context(const std::string &what) && {
        message = what + ": " + message;
        return std::move(*this);
    }
};

inline Error make_error(Status status, std::string message, std::string argument = {}, std::string field = {}) {
    return Error{status, std::move(message), std::move(argument), std::move(field)};
}

// A value or an Error. Small on purpose: C++20 has no std::expected.
template <class T>
class [[nodiscard]] Result {
public:
    Result(T value) : data_(std::in_place_index<0>, std::move(value)) {}  // NOLINT: implicit by design
    Result(Error error) : data_(std::in_place_index<1>, std::move(error)) {}  // NOLINT

    bool ok() const noexcept { return data_.index() == 0; }
    explicit operator bool() const noexcept { return ok(); }

    T &value() & { return std::get<0>(data_); }
    const T &value() const & { return std::get<0>(data_); }
    T &&value() && { return std::get<0>(std::move(data_)); }
    T *operator->() { return &value(); }
    const T *operator->() const { return &value(); }
    T &operator*() & { return value(); }
    const T &operator*() const & { return value(); }

    Error &error() & { return std::get<1>(data_); }
    const Error &error() const & { return std::get<1>(data_); }
    Error &&error() && { return std::get<1>(std::move(data_)); }

private:
    std::variant<T, Error> data_;
};

template <>
class [[nodiscard]] Result<void> {
public:
    Result() = default;
    Result(Error error) : error_(std::move(error)), failed_(true) {}  // NOLINT

    bool ok() const noexcept { return !failed_; }
    explicit operator bool() const noexcept { return ok(); }
    Error &error() & { return error_; }
    const Error &error() const & { return error_; }
    Error &&error() && { return std::move(error_); }

private:
    Error error_;
    bool failed_ = false;
};

}  // namespace ivd
