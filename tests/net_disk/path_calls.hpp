// How the driver calls a path, for the tests that call a path directly.
#pragma once

#include "driver/attach_path.hpp"
#include "request/device_info.hpp"

#include <volume_driver/volume_driver.h>

#include <cstdint>

namespace ivd::testing {

// The host's VD_DISCONNECT_* bits as the driver hands them to a path.
inline DisconnectOptions disconnect_options(std::uint32_t flags) {
    return {(flags & VD_DISCONNECT_FORCE) != 0, (flags & VD_DISCONNECT_IGNORE_ERRORS) != 0};
}

// The driver parses device_info before a path sees it; these tests hand the path the JSON a host stored.
inline Result<void> disconnect_json(AttachPathImpl &path, const request::VolumeRequest &v, const json::Value *info,
                                    std::uint32_t flags) {
    if (info == nullptr) return path.disconnect(v, nullptr, disconnect_options(flags));
    auto parsed = request::parse_device_info(*info);
    if (!parsed) return std::move(parsed).error();
    return path.disconnect(v, &*parsed, disconnect_options(flags));
}

}  // namespace ivd::testing
