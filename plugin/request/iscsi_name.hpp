// iSCSI names (RFC 3720 section 3.2.6, RFC 3721, RFC 7143): iqn., eui. and naa. forms.
#pragma once

#include "core/error.hpp"
#include "request/json_fields.hpp"
#include "request/json_input.hpp"

#include <string>
#include <string_view>

namespace ivd::request {

inline constexpr std::size_t max_iscsi_name_bytes = 223;  // RFC 3720 3.2.6.1

// Returns an empty string when `name` is a valid iSCSI name, else the reason it is not.
// Besides the RFC forms, the character set is limited to [A-Za-z0-9.:_-], which every array in use keeps to and
// which keeps the name safe inside a libvirt source name ("IQN/LUN"), an iSCSI URL and a command argument.
std::string iscsi_name_problem(std::string_view name);

// An input field that must hold an iSCSI name; the error names `where` and the reason.
Result<std::string> read_iscsi_name(const Field &v, const Where &where);
Result<std::string> read_iscsi_name(const json::Value &v, const Where &where);

}  // namespace ivd::request
