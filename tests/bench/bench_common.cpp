#include "bench_common.hpp"

#include "driver/driver.hpp"
#include "setup.hpp"

#include <linux/magic.h>
#include <sys/statfs.h>

#include <sys/resource.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <numeric>
#include <sstream>
#include <stdexcept>

namespace ivd::bench {

double quantile(std::vector<double> values, double q) {
    if (values.empty()) return 0.0;
    std::sort(values.begin(), values.end());
    const double rank = q * static_cast<double>(values.size() - 1);
    const auto lo = static_cast<std::size_t>(std::floor(rank));
    const auto hi = static_cast<std::size_t>(std::ceil(rank));
    return values[lo] + (values[hi] - values[lo]) * (rank - static_cast<double>(lo));
}

Json::Value summary(const std::vector<double> &values) {
    Json::Value s(Json::objectValue);
    s["n"] = static_cast<Json::UInt64>(values.size());
    if (values.empty()) return s;
    std::vector<double> sorted = values;
    std::sort(sorted.begin(), sorted.end());
    s["median"] = quantile(sorted, 0.5);
    s["p99"] = quantile(sorted, 0.99);
    s["p01"] = quantile(sorted, 0.01);
    s["min"] = sorted.front();
    s["max"] = sorted.back();
    s["mean"] = std::accumulate(sorted.begin(), sorted.end(), 0.0) / static_cast<double>(sorted.size());
    return s;
}

namespace {
std::int64_t status_field(const std::string &name) {
    std::ifstream in("/proc/self/status");
    std::string line;
    while (std::getline(in, line)) {
        if (line.rfind(name + ":", 0) == 0) return std::stoll(line.substr(name.size() + 1));
    }
    return -1;
}
}  // namespace

std::int64_t rss_kib() { return status_field("VmRSS"); }
std::int64_t hwm_kib() { return status_field("VmHWM"); }

std::int64_t mem_available_kib() {
    std::ifstream in("/proc/meminfo");
    std::string key;
    std::int64_t value = 0;
    std::string unit;
    while (in >> key >> value >> unit) {
        if (key == "MemAvailable:") return value;
    }
    return -1;
}

bool reset_hwm() {
    std::ofstream out("/proc/self/clear_refs");
    out << "5";
    out.flush();
    return static_cast<bool>(out);
}

std::uint64_t raise_fd_limit() {
    rlimit rl{};
    if (::getrlimit(RLIMIT_NOFILE, &rl) != 0) return 0;
    rl.rlim_cur = rl.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &rl);
    ::getrlimit(RLIMIT_NOFILE, &rl);
    return rl.rlim_cur;
}

std::string to_json(const Json::Value &v, bool pretty) {
    Json::StreamWriterBuilder b;
    b["indentation"] = pretty ? "  " : "";
    return Json::writeString(b, v);
}

Json::Value parse_json(const std::string &text) {
    Json::CharReaderBuilder b;
    Json::Value v;
    std::string errors;
    std::istringstream in(text);
    if (!Json::parseFromStream(b, in, &v, &errors)) throw std::runtime_error("bad JSON: " + errors);
    return v;
}

std::string Args::get(const std::string &key, const std::string &fallback) const {
    const std::string eq = "--" + key + "=";
    for (std::size_t i = 0; i < raw.size(); ++i) {
        if (raw[i].rfind(eq, 0) == 0) return raw[i].substr(eq.size());
        if (raw[i] == "--" + key && i + 1 < raw.size()) return raw[i + 1];
    }
    return fallback;
}

long Args::number(const std::string &key, long fallback) const {
    const std::string v = get(key, "");
    return v.empty() ? fallback : std::stol(v);
}

bool Args::flag(const std::string &key) const {
    return std::find(raw.begin(), raw.end(), "--" + key) != raw.end();
}

namespace {
bool on_tmpfs(const std::string &path) {
    struct statfs st {};
    return ::statfs(path.c_str(), &st) == 0 && st.f_type == TMPFS_MAGIC;
}
}  // namespace

SimulatedHost::SimulatedHost(const std::string &base_dir, const std::string &prefix, const std::string &initiator_name)
    : initiator(initiator_name) {
    namespace fs = std::filesystem;
    base = !base_dir.empty() ? base_dir : on_tmpfs("/dev/shm") ? "/dev/shm" : fs::temp_directory_path().string();
    tmpfs = on_tmpfs(base);
    std::string templ = (fs::path(base) / (prefix + "-XXXXXX")).string();
    if (::mkdtemp(templ.data()) == nullptr) throw std::runtime_error("mkdtemp " + templ + " failed");
    dir = templ;
    config = simhost::prepare_simulated_host(dir.string(), initiator);
}

SimulatedHost::~SimulatedHost() {
    simhost::stop_simulated_sessions(dir.string());
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
}

std::unique_ptr<Driver> SimulatedHost::make_driver(long device_wait_ms, long multipath_wait_ms,
                                                   void (*log)(void *, std::int32_t, const char *, const char *),
                                                   void *log_data) const {
    Json::Value c(Json::objectValue);
    for (const auto &[k, v] : config) c[k] = v;
    c["device_wait_timeout_ms"] = std::to_string(device_wait_ms);
    c["multipath_wait_timeout_ms"] = std::to_string(multipath_wait_ms);
    DriverParts parts;
    HostFacts facts;
    facts.capabilities.host_iscsi = true;
    facts.capabilities.multipath = true;
    facts.initiator = initiator;
    parts.facts = facts;
    auto created = Driver::create(to_json(c).c_str(), Logger(log, log_data), std::move(parts));
    if (!created) throw std::runtime_error("driver: " + created.error().message);
    return std::move(created).value();
}

}  // namespace ivd::bench
