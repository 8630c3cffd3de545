// Shared pieces of the simulated host's stand-in tools: the tree under DIR, argv.log, fault files, the tree lock.
// The tools live in DIR/bin (symlinks), so DIR is found from argv[0]; no environment variable is needed.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace ivd::simhost {

namespace fs = std::filesystem;

struct Sim {
    fs::path dir;
    fs::path sys() const { return dir / "sys"; }
    fs::path dev() const { return dir / "dev"; }
    fs::path nodes() const { return dir / "etc/iscsi/nodes"; }
};

// DIR from argv[0] ("DIR/bin/iscsiadm"); also appends the argv to DIR/argv.log.
Sim open_sim(int argc, char **argv);

// Contents of DIR/faults/NAME when that file exists.
std::optional<std::string> fault(const Sim &sim, const std::string &name);
long fault_number(const Sim &sim, const std::string &name, long fallback = 0);

// Exclusive lock on the whole simulated tree (DIR/sim.lock) while the guard lives.
class TreeLock {
public:
    explicit TreeLock(const Sim &sim);
    ~TreeLock();
    TreeLock(const TreeLock &) = delete;
    TreeLock &operator=(const TreeLock &) = delete;

private:
    int fd_ = -1;
};

// Next number of a counter in DIR/state (hosts, sessions, sd names, dm): never reused, as the kernel mostly does.
int next_number(const Sim &sim, const std::string &counter);
std::string sd_name(int index);  // 0 -> "sda", 26 -> "sdaa"

std::string read_file(const fs::path &p);
void write_file(const fs::path &p, const std::string &text);
void symlink_to(const fs::path &target, const fs::path &link);

// Kernel wwid file text ("naa.6001...") to the multipath form ("36001...").
std::string wwid_from_sysfs(const std::string &text);

}  // namespace ivd::simhost
