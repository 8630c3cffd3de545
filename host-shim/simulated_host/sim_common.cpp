#include "sim_common.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

namespace ivd::simhost {

Sim open_sim(int argc, char **argv) {
    Sim sim;
    sim.dir = fs::path(argv[0]).parent_path().parent_path();
    std::string line;
    for (int i = 0; i < argc; ++i) {
        if (i) line += ' ';
        line += i == 0 ? fs::path(argv[0]).filename().string() : argv[i];
    }
    line += '\n';
    const int fd = ::open((sim.dir / "argv.log").c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd >= 0) {
        ::flock(fd, LOCK_EX);
        [[maybe_unused]] auto n = ::write(fd, line.data(), line.size());
        ::close(fd);
    }
    return sim;
}

std::optional<std::string> fault(const Sim &sim, const std::string &name) {
    const fs::path p = sim.dir / "faults" / name;
    std::error_code ec;
    if (!fs::exists(p, ec)) return std::nullopt;
    return read_file(p);
}

long fault_number(const Sim &sim, const std::string &name, long fallback) {
    auto f = fault(sim, name);
    if (!f || f->empty()) return fallback;
    return std::strtol(f->c_str(), nullptr, 10);
}

TreeLock::TreeLock(const Sim &sim) {
    fd_ = ::open((sim.dir / "sim.lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd_ >= 0) ::flock(fd_, LOCK_EX);
}

TreeLock::~TreeLock() {
    if (fd_ >= 0) ::close(fd_);
}

int next_number(const Sim &sim, const std::string &counter) {
    const fs::path p = sim.dir / "state" / counter;
    fs::create_directories(p.parent_path());
    const std::string text = read_file(p);
    const int n = text.empty() ? 0 : std::atoi(text.c_str());
    write_file(p, std::to_string(n + 1));
    return n;
}

std::string sd_name(int index) {
    std::string s;
    int i = index;
    do {
        s.insert(s.begin(), static_cast<char>('a' + i % 26));
        i = i / 26 - 1;
    } while (i >= 0);
    return "sd" + s;
}

std::string read_file(const fs::path &p) {
    std::ifstream in(p);
    std::stringstream ss;
    ss << in.rdbuf();
    std::string s = ss.str();
    while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
    return s;
}

void write_file(const fs::path &p, const std::string &text) {
    fs::create_directories(p.parent_path());
    std::ofstream out(p, std::ios::trunc);
    out << text;
    if (!text.empty() && text.back() != '\n') out << '\n';
}

void symlink_to(const fs::path &target, const fs::path &link) {
    std::error_code ec;
    fs::create_directories(link.parent_path(), ec);
    fs::remove(link, ec);
    fs::create_symlink(target, link, ec);
}

std::string wwid_from_sysfs(const std::string &text) {
    if (text.rfind("naa.", 0) == 0) return "3" + text.substr(4);
    if (text.rfind("eui.", 0) == 0) return "2" + text.substr(4);
    if (text.rfind("t10.", 0) == 0) return "1" + text.substr(4);
    return text;
}

}  // namespace ivd::simhost
