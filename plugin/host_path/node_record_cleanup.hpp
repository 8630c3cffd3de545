// What cleanup finds among open-iscsi's node records: a CHAP password the scrub policy says must go, an unsafe
// or unreadable record (reported only), and a staged rewrite a crash left in iscsi_node_dir's parent (a copy
// of a record, maybe with its password).
#pragma once

#include "core/error.hpp"
#include "driver/attach_path.hpp"

#include <string>
#include <vector>

namespace ivd::host_path {

// Leftover kinds: "node_record_password" (removable: the password is scrubbed), "node_record" (reported),
// "node_record_staging" (removable: the file goes).
Result<std::vector<Leftover>> node_record_leftovers(const std::string &node_dir, bool scrub_chap);

// Removes a "node_record_staging" leftover named `name`, only when nothing has written it for a minute: a
// rewrite in progress (milliseconds, under its target's lock) is never taken.
Result<void> remove_staged_rewrite(const std::string &node_dir, const std::string &name);

}  // namespace ivd::host_path
