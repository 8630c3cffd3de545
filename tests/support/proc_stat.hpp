// /proc/PID/stat's fields, for tests and the simulated host's stand-in tools (header-only: the stand-ins do not
// link the test support library).
#pragma once

#include <sstream>
#include <string>
#include <string_view>
#include <vector>

namespace ivd::testing {

// The fields after the command name, field 3 (state) first; empty when the text is not a whole stat line (the
// process exited between two reads of /proc: an empty file). The name may hold spaces and ')': the last ')' ends it.
inline std::vector<std::string> proc_stat_fields(std::string_view stat) {
    const std::size_t close = stat.rfind(')');
    if (close == std::string_view::npos || close + 2 > stat.size()) return {};
    std::istringstream in{std::string(stat.substr(close + 2))};
    std::vector<std::string> fields;
    for (std::string f; in >> f;) fields.push_back(std::move(f));
    return fields;
}

}  // namespace ivd::testing
