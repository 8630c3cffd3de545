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
// Split per tool: each stand-in run logs its own wall time (its main() to exit) and read() calls to
// DIR/tool_costs.log, summed per call by kind (`iscsiadm -m node --login`, `multipath -a`, `multipathd add path`,
// ...); what the keeper does for iscsiadm (the logins themselves) is in iscsiadm's wall time, not its reads. The
// driver's own step times (its "steps:" log line: probe, each path's login/scan/device/mp_add, map wait, ready)
// are per call too; a path step is the slowest path's.
#include "bench_common.hpp"
#include "bench_main.hpp"

#include "driver/driver.hpp"
#include "host_path/sysfs.hpp"
#include "iscsi/iscsi_probe.hpp"
#include "tgtd_lab.hpp"

#include <sys/resource.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <regex>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>

namespace ivd::bench {

namespace {
namespace fs = std::filesystem;
constexpr const char *initiator = "iqn.2004-10.org.example:bench-host-scale";
// The target's own floor: a bare probe (login, TEST UNIT READY, READ CAPACITY, VPD 0x83, logout) from this
// process under another initiator name, the same work as the driver's probe step, outside the driver.
constexpr const char *floor_initiator = "iqn.2004-10.org.example:bench-host-scale-floor";

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

// What the stand-in runs of one kind cost within one call: runs, their wall ms and read() calls, summed.
struct ToolCost {
    double runs = 0, ms = 0, reads = 0;
};
using ToolCosts = std::map<std::string, ToolCost>;
using Steps = std::map<std::string, double>;  // step name -> ms

// A run's kind from its argv line: "iscsiadm -m node --op new", "iscsiadm -m node --login", "multipath -a",
// "multipathd add path", "dmsetup remove" (never a WWID, device or IQN: those differ per call).
std::string tool_kind(const std::string &argv_line) {
    std::istringstream in(argv_line);
    std::vector<std::string> w;
    for (std::string t; in >> t;) w.push_back(t);
    if (w.empty()) return "?";
    auto has = [&](const char *x) { return std::find(w.begin(), w.end(), x) != w.end(); };
    auto after = [&](const char *x) -> std::string {
        auto it = std::find(w.begin(), w.end(), x);
        return it != w.end() && it + 1 != w.end() ? *(it + 1) : std::string();
    };
    if (w[0] == "iscsiadm") {
        const std::string mode = "iscsiadm -m " + after("-m");
        if (has("--login")) return mode + " --login";
        if (has("--logout")) return mode + " --logout";
        const std::string op = !after("--op").empty() ? after("--op") : after("-o");
        return op.empty() ? mode : mode + " --op " + op;
    }
    if (w[0] == "multipathd" && w.size() >= 3) return w[0] + " " + w[1] + " " + w[2];
    return w.size() >= 2 ? w[0] + " " + w[1] : w[0];
}

// DIR/tool_costs.log (sim_common.hpp: open_sim): made empty here, so the stand-ins log their costs to it.
class ToolCostLog {
public:
    explicit ToolCostLog(fs::path file) : file_(std::move(file)) { std::ofstream(file_, std::ios::trunc); }
    // The runs logged since the last take (every run of a call has exited when the call returns).
    ToolCosts take() {
        std::ifstream in(file_);
        in.seekg(static_cast<std::streamoff>(offset_));
        ToolCosts out;
        for (std::string line; std::getline(in, line);) {
            offset_ += line.size() + 1;
            const std::size_t a = line.find('\t'), b = line.find('\t', a + 1);
            if (a == std::string::npos || b == std::string::npos) continue;
            ToolCost &c = out[tool_kind(line.substr(b + 1))];
            c.runs += 1;
            c.ms += std::strtod(line.c_str(), nullptr);
            c.reads += std::strtod(line.c_str() + a + 1, nullptr);
        }
        return out;
    }

private:
    fs::path file_;
    std::size_t offset_ = 0;
};

// The driver's "steps: connect|disconnect VOL total=NNms name=NNms ... PORTAL{name=NNms ...} ..." log lines
// (host_path/step_times.hpp), kept from its log callback (path threads log too: hence the lock).
struct StepLog {
    std::mutex mutex;
    std::vector<std::string> lines;
    static void capture(void *user, std::int32_t, const char *, const char *message) {
        if (message == nullptr || std::strncmp(message, "steps: ", 7) != 0) return;
        auto *self = static_cast<StepLog *>(user);
        const std::lock_guard<std::mutex> lock(self->mutex);
        self->lines.emplace_back(message);
    }
    // The steps of the lines logged since the last take; a path's step ("path.login") is the slowest path's.
    Steps take() {
        std::vector<std::string> taken;
        {
            const std::lock_guard<std::mutex> lock(mutex);
            taken.swap(lines);
        }
        static const std::regex group(R"((\S+)\{([^}]*)\})"), step(R"((\w+)=(\d+)ms)");
        Steps out;
        for (const std::string &line : taken) {
            for (std::sregex_iterator g(line.begin(), line.end(), group), end; g != end; ++g) {
                const std::string inner = (*g)[2];
                for (std::sregex_iterator m(inner.begin(), inner.end(), step); m != end; ++m) {
                    double &v = out["path." + (*m)[1].str()];
                    v = std::max(v, std::stod((*m)[2]));
                }
            }
            const std::string top = std::regex_replace(line, group, "");
            for (std::sregex_iterator m(top.begin(), top.end(), step), end; m != end; ++m) {
                out[(*m)[1].str()] += std::stod((*m)[2]);
            }
        }
        return out;
    }
};

// One call's cost: wall time, the driver's CPU time, processes started, read() calls, sysfs files and
// directory entries the driver read (host_path::sysfs_reads()), the tool runs by kind, the driver's steps.
struct Cost {
    std::vector<double> ms, cpu, tool_runs, reads, sysfs_files, sysfs_entries;
    std::vector<ToolCosts> tools;
    std::vector<Steps> steps;
    void add(double m, double c, std::size_t runs, std::int64_t r, const host_path::SysfsReads &sysfs,
             ToolCosts by_tool, Steps step_ms) {
        ms.push_back(m);
        cpu.push_back(c);
        tool_runs.push_back(static_cast<double>(runs));
        reads.push_back(static_cast<double>(r));
        sysfs_files.push_back(static_cast<double>(sysfs.files));
        sysfs_entries.push_back(static_cast<double>(sysfs.dir_entries));
        tools.push_back(std::move(by_tool));
        steps.push_back(std::move(step_ms));
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
        tool_window(from, count, out);
        return out;
    }

private:
    // "tools": {KIND: {runs, ms, reads}} per call (0 for a call that ran none); "read_calls_outside_tools": the
    // total minus the tools' (the driver's own, its sysfs reads and the tools' output); "steps_ms": {STEP: ...}.
    void tool_window(std::size_t from, std::size_t count, Json::Value &out) const {
        std::set<std::string> kinds, names;
        for (std::size_t i = from; i < from + count; ++i) {
            for (const auto &[k, c] : tools[i]) kinds.insert(k);
            for (const auto &[n, v] : steps[i]) names.insert(n);
        }
        std::vector<double> outside;
        for (std::size_t i = from; i < from + count; ++i) {
            double in_tools = 0;
            for (const auto &[k, c] : tools[i]) in_tools += c.reads;
            outside.push_back(reads[i] - in_tools);
        }
        out["read_calls_outside_tools"] = summary(outside);
        Json::Value &by_kind = out["tools"] = Json::Value(Json::objectValue);
        for (const std::string &k : kinds) {
            std::vector<double> runs, ms_, reads_;
            for (std::size_t i = from; i < from + count; ++i) {
                auto it = tools[i].find(k);
                const ToolCost c = it == tools[i].end() ? ToolCost{} : it->second;
                runs.push_back(c.runs);
                ms_.push_back(c.ms);
                reads_.push_back(c.reads);
            }
            by_kind[k]["runs"] = summary(runs);
            by_kind[k]["ms"] = summary(ms_);
            by_kind[k]["reads"] = summary(reads_);
        }
        Json::Value &by_step = out["steps_ms"] = Json::Value(Json::objectValue);
        for (const std::string &n : names) {
            std::vector<double> v;
            for (std::size_t i = from; i < from + count; ++i) {
                if (auto it = steps[i].find(n); it != steps[i].end()) v.push_back(it->second);
            }
            by_step[n] = summary(v);
        }
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

// Where a measured call's tool runs and steps are logged.
struct Meter {
    const fs::path &argv_log;
    ToolCostLog &tool_costs;
    StepLog &step_log;

    // Runs `call` (a driver call) and adds its cost to `cost`; its Result, or throws when it failed.
    template <class Call>
    auto measure(Cost &cost, const std::string &what, Call call) {
        const std::size_t tools = lines_in(argv_log);
        const std::int64_t reads = read_syscalls();  // after reading argv.log: the bench's own reads do not count
        const host_path::SysfsReads sysfs0 = host_path::sysfs_reads();
        const double cpu0 = cpu_ms();
        const auto t0 = Clock::now();
        auto r = call();
        const double ms = micros_since(t0) / 1000.0;
        const double cpu = cpu_ms() - cpu0;
        const std::int64_t read_calls = read_syscalls() - reads;
        if (!r) throw std::runtime_error(what + ": " + r.error().message);
        cost.add(ms, cpu, lines_in(argv_log) - tools, read_calls, sysfs_since(sysfs0), tool_costs.take(), step_log.take());
        return r;
    }
};

// Milliseconds of one bare probe of `target` (see floor_initiator); throws when it is not healthy.
double target_probe_ms(const request::Target &target) {
    iscsi::ProbeOptions options;
    options.initiator = floor_initiator;
    options.read_identity = true;
    const auto t0 = Clock::now();
    const std::vector<iscsi::ProbeResult> r = iscsi::probe_targets({target}, options);
    const double ms = micros_since(t0) / 1000.0;
    if (r.size() != 1 || r.front().outcome != iscsi::ProbeOutcome::healthy) {
        throw std::runtime_error("floor probe of " + target.iqn + ": " + (r.empty() ? "no result" : r.front().detail));
    }
    return ms;
}

// The first and last windows of attach and detach, their ratios and the RSS.
Json::Value report(const Cost &attach, const Cost &detach, std::size_t volumes, std::size_t paths, std::size_t window) {
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
    return out;
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
    StepLog step_log;
    auto driver = sim.make_driver(10000, 10000, &StepLog::capture, &step_log);
    ToolCostLog tool_costs(sim.dir / "tool_costs.log");
    const std::string connector = std::string(R"({"initiator":")") + initiator +
                                  R"(","host":"c1","ip":"127.0.0.1","multipath":true})";
    const fs::path argv_log = sim.dir / "argv.log";
    Meter meter{argv_log, tool_costs, step_log};
    const std::int64_t rss_before = rss_kib();

    Cost attach, detach;
    std::vector<double> floor_first, floor_last;  // target_probe_ms before each attach of the two windows
    std::vector<std::pair<std::string, std::string>> attached;  // connection_info, device_info
    for (std::size_t n = 0; n < volumes; ++n) {
        std::string ci = connection_info(lab, iqns[n], paths, n);
        if (n < window || n >= volumes - window) {
            auto portal = request::parse_portal(lab.portals()[0].to_string());
            if (!portal) throw std::runtime_error("portal: " + portal.error().message);
            (n < window ? floor_first : floor_last).push_back(target_probe_ms({*portal, iqns[n], 1}));
        }
        auto info = meter.measure(attach, "connect " + std::to_string(n), [&] {
            return driver->connect_volume(ci.c_str(), connector.c_str(), R"({"bus":"scsi","dev":"sdb"})", 0);
        });
        attached.emplace_back(std::move(ci), std::move(info).value());
    }
    const std::int64_t rss_attached = rss_kib();
    for (const auto &[ci, device_info] : attached) {
        static_cast<void>(meter.measure(detach, "disconnect",
                                        [&] { return driver->disconnect_volume(ci.c_str(), device_info.c_str(), 0); }));
    }

    Json::Value out = report(attach, detach, volumes, paths, window);
    out["target_probe_first"] = summary(floor_first);
    out["target_probe_last"] = summary(floor_last);
    out["ratio_target_probe_last_to_first"] =
        out["target_probe_last"]["median"].asDouble() / out["target_probe_first"]["median"].asDouble();
    out["rss_kib_before"] = static_cast<Json::Int64>(rss_before);
    out["rss_kib_all_attached"] = static_cast<Json::Int64>(rss_attached);
    out["rss_kib_after_detach"] = static_cast<Json::Int64>(rss_kib());
    std::printf("%s\n", to_json(out).c_str());
    return 0;
}

}  // namespace ivd::bench
