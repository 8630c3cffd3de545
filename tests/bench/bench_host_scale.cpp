// Host path cost against the host's load: on the simulated host (real tgtd logins, stand-in iscsiadm/multipath,
// sysfs on tmpfs), attach N volumes of `paths` portals each one after another and keep them attached, then detach
// them in the same order. Compares the first and last 100 attaches (and detaches), and counts per call what a
// host's load could make grow: processes started (every stand-in tool logs its argv) and read() calls
// (/proc/self/io syscr: this process's sysfs reads and tool output, plus the reads of the tools it reaped, which
// the kernel adds to the parent's count), and the sysfs files and directory entries the driver itself read
// (host_path::sysfs_reads()). Driver CPU time (getrusage, all its threads, not the tools) and RSS with everything
// attached. The simulated kernel is one keeper process for all sessions, idle unless asked, so the wall time is
// the driver's and the tools'; the stand-ins still do a little more per call as their tree grows (a real
// kernel's sysfs and tools differ), so the wall-time ratio is an upper bound.
#include "bench_common.hpp"
#include "bench_main.hpp"

#include "driver/driver.hpp"
#include "host_path/sysfs.hpp"
#include "tgtd_lab.hpp"

#include <sys/resource.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>

namespace ivd::bench {

namespace {
namespace fs = std::filesystem;
constexpr const char *initiator = "iqn.2004-10.org.example:bench-host-scale";

std::int64_t read_syscalls() {
    std::ifstream in("/proc/self/io");
    for (std::string key; in >> key;) {
        std::int64_t value = 0;
        in >> value;
        if (key == "syscr:") return value;
    }
    return -1;
}

// CPU time of this process (all its threads; not the tools it runs), in ms: the driver's own work.
double cpu_ms() {
    rusage u{};
    ::getrusage(RUSAGE_SELF, &u);
    auto ms = [](const timeval &t) { return static_cast<double>(t.tv_sec) * 1e3 + static_cast<double>(t.tv_usec) / 1e3; };
    return ms(u.ru_utime) + ms(u.ru_stime);
}

host_path::SysfsReads sysfs_since(const host_path::SysfsReads &before) {
    const host_path::SysfsReads now = host_path::sysfs_reads();
    return {now.files - before.files, now.dir_entries - before.dir_entries};
}

std::size_t lines_in(const fs::path &file) {
    std::ifstream in(file);
    std::size_t n = 0;
    for (std::string line; std::getline(in, line);) ++n;
    return n;
}

// One call's cost: wall time, the driver's CPU time, processes started, read() calls, sysfs files and
// directory entries the driver read (host_path::sysfs_reads()).
struct Cost {
    std::vector<double> ms, cpu, tool_runs, reads, sysfs_files, sysfs_entries;
    void add(double m, double c, std::size_t tools, std::int64_t r, const host_path::SysfsReads &sysfs) {
        ms.push_back(m);
        cpu.push_back(c);
        tool_runs.push_back(static_cast<double>(tools));
        reads.push_back(static_cast<double>(r));
        sysfs_files.push_back(static_cast<double>(sysfs.files));
        sysfs_entries.push_back(static_cast<double>(sysfs.dir_entries));
    }
    Json::Value window(std::size_t from, std::size_t count) const {
        auto slice = [&](const std::vector<double> &v) {
            return std::vector<double>(v.begin() + static_cast<std::ptrdiff_t>(from),
                                       v.begin() + static_cast<std::ptrdiff_t>(from + count));
        };
        Json::Value out(Json::objectValue);
        out["ms"] = summary(slice(ms));
        out["driver_cpu_ms"] = summary(slice(cpu));
        out["tool_runs"] = summary(slice(tool_runs));
        out["read_calls_incl_tools"] = summary(slice(reads));
        out["sysfs_files_read"] = summary(slice(sysfs_files));
        out["sysfs_dir_entries_listed"] = summary(slice(sysfs_entries));
        return out;
    }
};

std::string connection_info(testing::TgtdLab &lab, const std::string &iqn, std::size_t paths, std::size_t n) {
    Json::Value ci(Json::objectValue);
    ci["driver_volume_type"] = "iscsi";
    Json::Value &d = ci["data"];
    for (std::size_t i = 0; i < paths; ++i) {
        d["target_portals"].append(lab.portals()[i].to_string());
        d["target_iqns"].append(iqn);
        d["target_luns"].append(1);
    }
    d["volume_id"] = "bench-host-scale-" + std::to_string(n);
    return to_json(ci);
}
}  // namespace

// --volumes N (1000) --paths N (4) --window N (100) --sim-base DIR (default /dev/shm when a tmpfs)
int run_host_scale(const Args &args) {
    const auto volumes = static_cast<std::size_t>(args.number("volumes", 1000));
    const auto paths = static_cast<std::size_t>(args.number("paths", 4));
    const auto window = std::min<std::size_t>(static_cast<std::size_t>(args.number("window", 100)), volumes);
    raise_fd_limit();
    const SimulatedHost sim(args.get("sim-base", ""), "ivd-bench-hs", initiator);

    testing::TgtdLab lab;
    while (lab.portals().size() < paths) lab.add_portal();
    std::vector<std::string> iqns;
    for (std::size_t n = 0; n < volumes; ++n) {
        iqns.push_back(lab.make_iqn("hs" + std::to_string(n)));
        lab.add_lun(lab.create_target(iqns.back()), 1, 1ull << 20);
    }
    auto driver = sim.make_driver(10000, 10000);
    const std::string connector = std::string(R"({"initiator":")") + initiator +
                                  R"(","host":"c1","ip":"127.0.0.1","multipath":true})";
    const fs::path argv_log = sim.dir / "argv.log";
    const std::int64_t rss_before = rss_kib();

    Cost attach, detach;
    std::vector<std::pair<std::string, std::string>> attached;  // connection_info, device_info
    for (std::size_t n = 0; n < volumes; ++n) {
        const std::string ci = connection_info(lab, iqns[n], paths, n);
        const std::size_t tools = lines_in(argv_log);
        const std::int64_t reads = read_syscalls();  // after reading argv.log: the bench's own reads do not count
        const host_path::SysfsReads sysfs0 = host_path::sysfs_reads();
        const double cpu0 = cpu_ms();
        const auto t0 = Clock::now();
        auto r = driver->connect_volume(ci.c_str(), connector.c_str(), R"({"bus":"scsi","dev":"sdb"})", 0);
        const double ms = micros_since(t0) / 1000.0;
        const double cpu = cpu_ms() - cpu0;
        const std::int64_t read_calls = read_syscalls() - reads;
        if (!r) throw std::runtime_error("connect " + std::to_string(n) + ": " + r.error().message);
        attach.add(ms, cpu, lines_in(argv_log) - tools, read_calls, sysfs_since(sysfs0));
        attached.emplace_back(ci, std::move(r).value());
    }
    const std::int64_t rss_attached = rss_kib();
    for (const auto &[ci, device_info] : attached) {
        const std::size_t tools = lines_in(argv_log);
        const std::int64_t reads = read_syscalls();
        const host_path::SysfsReads sysfs0 = host_path::sysfs_reads();
        const double cpu0 = cpu_ms();
        const auto t0 = Clock::now();
        auto r = driver->disconnect_volume(ci.c_str(), device_info.c_str(), 0);
        const double ms = micros_since(t0) / 1000.0;
        const double cpu = cpu_ms() - cpu0;
        const std::int64_t read_calls = read_syscalls() - reads;
        if (!r) throw std::runtime_error("disconnect: " + r.error().message);
        detach.add(ms, cpu, lines_in(argv_log) - tools, read_calls, sysfs_since(sysfs0));
    }

    Json::Value out(Json::objectValue);
    out["bench"] = "host_scale";
    out["volumes"] = static_cast<Json::UInt64>(volumes);
    out["paths"] = static_cast<Json::UInt64>(paths);
    out["window"] = static_cast<Json::UInt64>(window);
    // Attach: the first window with (almost) nothing attached, the last with volumes - window already there.
    out["attach_first"] = attach.window(0, window);
    out["attach_last"] = attach.window(volumes - window, window);
    // Detach in attach order: the first window with everything attached, the last with (almost) nothing.
    out["detach_first"] = detach.window(0, window);
    out["detach_last"] = detach.window(volumes - window, window);
    auto ratio = [&](const char *a, const char *b, const char *what = "ms", const char *stat = "median") {
        return out[a][what][stat].asDouble() / out[b][what][stat].asDouble();
    };
    out["ratio_attach_last_to_first"] = ratio("attach_last", "attach_first");
    out["ratio_attach_p99_last_to_first"] = ratio("attach_last", "attach_first", "ms", "p99");
    out["ratio_attach_cpu_last_to_first"] = ratio("attach_last", "attach_first", "driver_cpu_ms");
    out["ratio_detach_loaded_to_unloaded"] = ratio("detach_first", "detach_last");
    out["ratio_detach_p99_loaded_to_unloaded"] = ratio("detach_first", "detach_last", "ms", "p99");
    out["ratio_detach_cpu_loaded_to_unloaded"] = ratio("detach_first", "detach_last", "driver_cpu_ms");
    out["rss_kib_before"] = static_cast<Json::Int64>(rss_before);
    out["rss_kib_all_attached"] = static_cast<Json::Int64>(rss_attached);
    out["rss_kib_after_detach"] = static_cast<Json::Int64>(rss_kib());
    std::printf("%s\n", to_json(out).c_str());
    return 0;
}

}  // namespace ivd::bench
