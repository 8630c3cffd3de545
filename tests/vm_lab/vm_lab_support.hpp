// What the two vm_lab tests share beyond vm_lab_runner: staging the binaries and guest scripts, and turning the
// guest's "VMLAB RESULT" lines into test expectations.
#pragma once

#include "vm_lab_runner.hpp"

#include <map>
#include <string>
#include <utility>
#include <vector>

namespace ivd::vmlab {

// Copies volume-host, the module, guest_stack.sh and guest_common.sh into the stage, and `guest_script` as
// guest_lab.sh (the name the image's init stub runs).
void stage_guest(const fs::path &stage, const std::string &guest_script);

// The scenario files' declared results: every "# vmlab-results: a b ..." line of each *.sh in `dir`, in file order.
std::vector<std::string> declared_results(const fs::path &dir);

// "VMLAB RESULT name PASS|FAIL detail" lines, as they come (on_line of run_guest).
struct ResultLines {
    std::map<std::string, std::pair<std::string, std::string>> results;  // name -> (PASS|FAIL, detail)
    void operator()(const std::string &line);
};

// The checks every lab run ends with: the guest finished, the password never reached the console, and each
// expected result came back PASS. The console is saved (redacted) to `console_log`.
void expect_guest_run(const GuestRun &run, const ResultLines &lines, const std::vector<std::string> &expected,
                      const std::string &password, const std::string &console_log);

}  // namespace ivd::vmlab
