#include "sim_node_db.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <iostream>
#include <thread>

namespace ivd::simhost {

std::string Record::get(const std::string &k) const {
    for (const auto &[key, v] : entries) {
        if (key == k) return v;
    }
    return {};
}

void Record::set(const std::string &k, const std::string &v) {
    for (auto it = entries.begin(); it != entries.end(); ++it) {
        if (it->first == k) {
            if (v.empty()) {
                entries.erase(it);
            } else {
                it->second = v;
            }
            return;
        }
    }
    if (!v.empty()) entries.emplace_back(k, v);
}

std::optional<Record> load_record(const fs::path &p) {
    std::ifstream in(p);
    if (!in) return std::nullopt;
    Record r;
    std::string line;
    while (std::getline(in, line)) {
        if (line.empty() || line[0] == '#') continue;
        const auto eq = line.find(" = ");
        if (eq == std::string::npos) continue;
        r.entries.emplace_back(line.substr(0, eq), line.substr(eq + 3));
    }
    return r;
}

bool save_record(const Sim &sim, const fs::path &p, const Record &r) {
    std::error_code ec;
    fs::create_directories(p.parent_path(), ec);
    // Fault node_write_delay_ms: a slow disk between the target directory's creation and the record's write,
    // the window in which an unserialised delete of another portal's record could remove the directory.
    if (const long delay = fault_number(sim, "node_write_delay_ms"); delay > 0) {
        std::this_thread::sleep_for(std::chrono::milliseconds(delay));
    }
    std::string text = "# BEGIN RECORD 2.1.8\n";
    for (const auto &[k, v] : r.entries) text += k + " = " + v + "\n";
    text += "# END RECORD\n";
    const std::string tmp = p.string() + ".tmp";
    const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    const bool written = fd >= 0 && ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
    const int saved = errno;
    if (fd >= 0) ::close(fd);
    if (written) fs::rename(tmp, p, ec);
    if (!written || ec) {
        std::cerr << "iscsiadm: Could not write node record " << p.string() << ": "
                  << (written ? ec.message() : std::strerror(saved)) << "\n";
        std::error_code ignored;
        fs::remove(tmp, ignored);
        return false;
    }
    return true;
}

NodeDbLock::NodeDbLock(const Sim &sim) {
    const fs::path dir = sim.dir / "run/lock/iscsi";
    std::error_code ec;
    fs::create_directories(dir, ec);
    fd_ = ::open((dir / "lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd_ >= 0 && ::flock(fd_, LOCK_EX) != 0) {
        ::close(fd_);
        fd_ = -1;
    }
}

NodeDbLock::~NodeDbLock() {
    if (fd_ >= 0) ::close(fd_);
}

}  // namespace ivd::simhost
