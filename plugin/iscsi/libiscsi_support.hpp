// What the libiscsi operations (the probe, SendTargets discovery) share: libiscsi's callback trampoline, login
// status codes, sense text, and scrubbing a detail of any CHAP secret.
#pragma once

#include "core/secret.hpp"
#include "iscsi/iscsi_context.hpp"
#include "request/portal.hpp"
#include "request/volume_request.hpp"

#include <fmt/format.h>

#include <chrono>
#include <string>

namespace ivd::iscsi {

// A logout is a courtesy to the target; it must not hold the caller up.
inline constexpr std::chrono::milliseconds logout_grace{250};
// A fresh LU reports UNIT ATTENTION (power on, parameters changed) to each new nexus; retrying clears them.
inline constexpr int max_unit_attentions = 8;

// libiscsi's text for a refused login ends in "Status: <text>(<number>)"; the number is the RFC 7143 status.
inline int login_status_code(const std::string &error) {
    const std::size_t open = error.rfind('(');
    if (error.find("Status:") == std::string::npos || open == std::string::npos) return -1;
    int value = 0;
    std::size_t i = open + 1;
    for (; i < error.size() && error[i] >= '0' && error[i] <= '9'; ++i) value = value * 10 + (error[i] - '0');
    return i < error.size() && error[i] == ')' && i > open + 1 ? value : -1;
}

inline std::string sense_text(const scsi_task &task) {
    return fmt::format("{} / {} (sense key {:#x}, ASC/ASCQ {:#06x})", scsi_sense_key_str(task.sense.key),
                       scsi_sense_ascq_str(task.sense.ascq), static_cast<int>(task.sense.key), task.sense.ascq);
}

// Defence in depth: libiscsi does not put CHAP secrets in its messages, but a detail must never carry one.
inline std::string scrub(std::string text, const request::ChapCredentials *chap) {
    if (chap == nullptr || chap->password.empty()) return text;
    const std::string_view secret = chap->password.reveal();
    for (std::size_t at = text.find(secret); at != std::string::npos; at = text.find(secret, at)) {
        wipe_memory(text.data() + at, secret.size());
        text.replace(at, secret.size(), "<redacted>");
    }
    return text;
}

inline std::string libiscsi_portal(const request::Portal &portal) { return portal.to_string(); }

// libiscsi's callbacks call into C++ handlers; nothing may unwind through libiscsi's C frames. An operation
// befriends it (`friend void iscsi::callback<...>`) so its handlers can stay private.
template <class T, void (T::*Handler)(int, void *)>
void callback(iscsi_context *, int status, void *command_data, void *data) noexcept {
    T *op = static_cast<T *>(data);
    try {
        (op->*Handler)(status, command_data);
    } catch (...) {
        op->out_of_memory();
    }
}

}  // namespace ivd::iscsi
