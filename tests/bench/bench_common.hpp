// Shared helpers of the benchmark driver: timing, statistics, RSS, JSON output. Benchmarks only (not tests).
#pragma once

#include <json/json.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace ivd {
class Driver;
}

namespace ivd::bench {

using Clock = std::chrono::steady_clock;

inline double micros_since(Clock::time_point start) {
    return std::chrono::duration<double, std::micro>(Clock::now() - start).count();
}

// Quantile of a sample (nearest rank on a sorted copy); q in [0, 1].
double quantile(std::vector<double> values, double q);
inline double median(const std::vector<double> &values) { return quantile(values, 0.5); }

// {"n", "median", "p99", "p01", "min", "max", "mean"} in the unit of the values.
Json::Value summary(const std::vector<double> &values);

// Resident set size and its high-water mark of this process, in KiB (from /proc/self/status).
std::int64_t rss_kib();
std::int64_t hwm_kib();
// The machine's MemAvailable in KiB (from /proc/meminfo); -1 when missing.
std::int64_t mem_available_kib();
// Resets VmHWM to the current RSS (writes 5 to /proc/self/clear_refs); false when the kernel refuses.
bool reset_hwm();
// Raises RLIMIT_NOFILE to its hard limit; returns the new soft limit.
std::uint64_t raise_fd_limit();

std::string to_json(const Json::Value &v, bool pretty = false);
Json::Value parse_json(const std::string &text);

// Command-line options of the form --key=value or --key value.
struct Args {
    std::vector<std::string> raw;
    std::string get(const std::string &key, const std::string &fallback) const;
    long number(const std::string &key, long fallback) const;
    bool flag(const std::string &key) const;
};

// A simulated host (tests/fixtures/simulated_host) in a fresh directory under `base` (default: /dev/shm when it
// is a tmpfs, else the temp directory: the stand-ins' many file operations must not pay for a disk); on
// destruction its sessions are logged out and the directory removed.
struct SimulatedHost {
    SimulatedHost(const std::string &base, const std::string &prefix, const std::string &initiator);
    ~SimulatedHost();
    SimulatedHost(const SimulatedHost &) = delete;
    SimulatedHost &operator=(const SimulatedHost &) = delete;

    // A driver on the host path with multipath, pointed at this host (host facts given, not detected).
    // `log`/`log_data`: the driver's log callback (none by default).
    std::unique_ptr<Driver> make_driver(long device_wait_ms, long multipath_wait_ms,
                                        void (*log)(void *, std::int32_t, const char *, const char *) = nullptr,
                                        void *log_data = nullptr) const;

    std::filesystem::path dir;
    std::string base;      // where dir was made
    bool tmpfs = false;    // whether base is a tmpfs
    std::string initiator;
    std::map<std::string, std::string> config;  // the driver keys prepare_simulated_host returned
};

}  // namespace ivd::bench
