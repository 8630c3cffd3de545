#include "host_path/sysfs_text.hpp"
#include "host_path/sysfs.hpp"

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <fstream>
#include <sstream>

namespace ivd::host_path {

namespace fs = std::filesystem;

namespace sysfs_detail {

namespace {
std::atomic<std::uint64_t> files_read{0};
std::atomic<std::uint64_t> entries_listed{0};
}  // namespace

void count_entry_listed() { entries_listed.fetch_add(1, std::memory_order_relaxed); }

std::string read_text(const fs::path &p) {
    files_read.fetch_add(1, std::memory_order_relaxed);
    std::ifstream in(p);
    if (!in) return {};
    std::stringstream ss;
    ss << in.rdbuf();
    std::string s = ss.str();
    while (!s.empty() && (s.back() == '\n' || s.back() == ' ' || s.back() == '\0' || s.back() == '\r')) s.pop_back();
    return s;
}

std::vector<std::string> list_dir(const fs::path &p) {
    std::vector<std::string> names;
    std::error_code ec;
    for (fs::directory_iterator it(p, ec), end; !ec && it != end; it.increment(ec)) {
        names.push_back(it->path().filename().string());
    }
    entries_listed.fetch_add(names.size(), std::memory_order_relaxed);
    std::sort(names.begin(), names.end());
    return names;
}

bool starts_with(const std::string &s, std::string_view prefix) { return s.rfind(prefix, 0) == 0; }

std::vector<std::string> split_colon(const std::string &s) {
    std::vector<std::string> parts;
    std::string cur;
    for (char c : s) {
        if (c == ':') {
            parts.push_back(cur);
            cur.clear();
        } else {
            cur += c;
        }
    }
    parts.push_back(cur);
    return parts;
}

bool same_address(const std::string &address, const request::Portal &portal) {
    return address == portal.host || address == "[" + portal.host + "]";
}

}  // namespace sysfs_detail

SysfsReads sysfs_reads() {
    return {sysfs_detail::files_read.load(std::memory_order_relaxed),
            sysfs_detail::entries_listed.load(std::memory_order_relaxed)};
}

}  // namespace ivd::host_path
