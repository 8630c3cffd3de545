// The small text and directory readers the Sysfs parts share (sysfs.cpp, sysfs_sessions.cpp), counted for
// sysfs_reads().
#pragma once

#include "request/volume_request.hpp"

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace ivd::host_path::sysfs_detail {

// A sysfs attribute's text without its trailing newline; empty when it cannot be read.
std::string read_text(const std::filesystem::path &p);
// A directory's entry names, sorted; empty when it cannot be listed.
std::vector<std::string> list_dir(const std::filesystem::path &p);
// One entry listed by a caller's own readdir loop.
void count_entry_listed();
bool starts_with(const std::string &s, std::string_view prefix);
// "targetH:C:T" / "H:C:T:L" split at ':'.
std::vector<std::string> split_colon(const std::string &s);
// Whether a session's address ("::1" or "[::1]") is the portal's host.
bool same_address(const std::string &address, const request::Portal &portal);

}  // namespace ivd::host_path::sysfs_detail
