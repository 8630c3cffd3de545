// Shared pieces of the fuzz targets: a Driver over in-memory fakes (fixed host facts, the real network path over
// a MemorySecretStore and a fake prober, a fake host path), input splitting, and output invariants.
#pragma once

#include "driver/driver.hpp"
#include "libvirt/secret_store.hpp"

#include <json/value.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace ivd::fuzz {

// A failed invariant is a bug: report it and abort so libFuzzer keeps the input.
[[noreturn]] void fail(const char *what, const std::string &detail);
#define IVD_FUZZ_CHECK(cond, detail)                     \
    do {                                                 \
        if (!(cond)) ::ivd::fuzz::fail(#cond, (detail)); \
    } while (false)

// The ABI's arguments are NUL-terminated strings, so a NUL byte separates them in a fuzz input:
// "connection_info\0connector\0disk_info". Missing parts are std::nullopt (passed as NULL).
std::vector<std::optional<std::string>> split_input(const std::uint8_t *data, std::size_t size, std::size_t parts);

inline const char *c_str_or_null(const std::optional<std::string> &s) { return s ? s->c_str() : nullptr; }

struct FuzzDriver {
    std::shared_ptr<libvirt::MemorySecretStore> secrets;
    std::unique_ptr<Driver> driver;
};

// Driver::create with fixed host facts (QEMU iSCSI, host iSCSI and multipath all available, so both paths are
// reachable) and fakes instead of libvirt, libiscsi and the host's tools. `driver` is null when create() refused
// the config (then *error says why). The log sink makes the driver format every message and checks it for
// watched secrets.
FuzzDriver make_driver(const char *config_json, Error *error = nullptr);

// Fixed config for the connect/disconnect targets: probing on, so the fake prober's outcomes are exercised.
inline constexpr const char *default_config = R"({"probe_portals":"true","probe_timeout_ms":"100"})";

// CHAP passwords of the inputs that must never show up in an output, an error or the log. Passwords that are
// short, plain (no character of #$%!@^*~?|) or also another input value are left out: they could appear
// legitimately.
void watch_secrets(const char *connection_info, const char *connector, const char *disk_info);
void check_no_secret(std::string_view text, const char *where);

// Checks a successful connect's device_info: a JSON object whose disk_xml is exactly one well-formed <disk>
// with only the elements and attributes the driver writes, whose values agree with device_info and with the
// input connection_info, and with no watched secret anywhere. Returns the parsed device_info.
Json::Value check_device_info(const std::string &device_info, const char *connection_info);

// Checks an error's shape: a status in the ABI's range, a non-empty message, no watched secret.
void check_error(const Error &error);

}  // namespace ivd::fuzz
