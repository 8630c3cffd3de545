// multipath-tools' wwids file (/etc/multipath/wwids): one `/WWID/` a line, `#` comments. Read so that a connect
// does not run `multipath -a` for a WWID the file lists already (the real tool then rewrites the file for
// nothing, ~2 s per connect on a guest).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace ivd::host_path {

// Larger files are not read (the caller runs `multipath -a`): ~36 bytes a WWID, so ~29,000 entries.
inline constexpr std::size_t max_wwids_file_bytes = 1 << 20;

// Whether the file's text lists `wwid`: a line `/WWID/` with the '/' in the first column, as multipath-tools
// reads it; anything else (`#` comments, indented lines) is not an entry.
bool wwids_text_lists(std::string_view text, std::string_view wwid);

// Whether the regular file at `path` lists `wwid`. false when it is missing, unreadable, not a regular file,
// larger than max_wwids_file_bytes, or `wwid` is empty: then `multipath -a` runs, as it always did.
bool wwids_file_lists(const std::string &path, std::string_view wwid);

}  // namespace ivd::host_path
