// Runs a host tool by absolute path with an argv vector (never a shell), a minimal environment and a deadline.
#pragma once

#include <chrono>
#include <string>
#include <vector>

namespace ivd::host_path {

struct ProcessResult {
    bool started = false;
    bool timed_out = false;
    int exit_code = -1;       // -1 when killed by a signal or not started
    std::string out;          // stdout, capped
    std::string err;          // stderr, capped
    std::string spawn_error;  // why it did not start
};

// argv[0] must be an absolute path. Inherited descriptors are closed in the child; stdin is /dev/null.
ProcessResult run_process(const std::vector<std::string> &argv, std::chrono::milliseconds timeout);

// "iscsiadm -m node ..." for messages (the argv never carries secrets, so it may be shown).
std::string describe_argv(const std::vector<std::string> &argv);
// Last line of stderr (or stdout), trimmed and capped, for an error message.
std::string tool_message(const ProcessResult &result);

}  // namespace ivd::host_path
