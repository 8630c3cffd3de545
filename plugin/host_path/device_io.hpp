// Reading a block device directly: the readiness check's one-block O_DIRECT read.
#pragma once

#include "core/error.hpp"

#include <string>

namespace ivd::host_path {

// Reads the first 4 KiB of `node` with O_DIRECT (past the page cache, so the read really reaches a path). A file
// system that refuses O_DIRECT (EINVAL at open) is read without it. Success: at least one byte came back.
Result<void> read_first_block(const std::string &node);

}  // namespace ivd::host_path
