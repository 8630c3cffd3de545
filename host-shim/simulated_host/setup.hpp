// Sets up a simulated host under a directory: the sysfs/dev tree, DIR/bin links to the stand-in tools, and the
// driver config keys that point the real host path at them (used by volume-host --simulate-host and the tests).
#pragma once

#include <map>
#include <string>

namespace ivd::simhost {

// Creates DIR (and its tree) if needed. Returns the config keys, or throws std::runtime_error.
std::map<std::string, std::string> prepare_simulated_host(const std::string &dir, const std::string &initiator);

// Ends every simulated session process of DIR (as a logout would) and waits for them; for test cleanup.
void stop_simulated_sessions(const std::string &dir);

}  // namespace ivd::simhost
