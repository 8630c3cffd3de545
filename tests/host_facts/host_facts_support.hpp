// Small helpers for the host facts tests: a scratch directory, a listening unix socket standing in for
// iscsid/multipathd, and a fake executable standing in for a host tool.
#pragma once

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>

namespace ivd::testing {

class TempDir {
public:
    TempDir() {
        std::string tmpl = (std::filesystem::temp_directory_path() / "ivd-host-facts-XXXXXX").string();
        if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
        path_ = tmpl;
    }
    TempDir(const TempDir &) = delete;
    TempDir &operator=(const TempDir &) = delete;
    ~TempDir() {
        std::error_code ec;
        std::filesystem::remove_all(path_, ec);
    }
    const std::string &path() const { return path_; }
    std::string operator/(const std::string &name) const { return path_ + "/" + name; }

    // A file that passes access(X_OK): the detector only checks that the tool is there.
    std::string fake_tool(const std::string &name) const {
        const std::string p = *this / name;
        std::ofstream(p) << "#!/bin/sh\nexit 0\n";
        ::chmod(p.c_str(), 0755);
        return p;
    }
    std::string subdir(const std::string &name) const {
        const std::string p = *this / name;
        std::filesystem::create_directories(p);
        return p;
    }

private:
    std::string path_;
};

// A unix socket that accepts connections (through its backlog) while alive: "the daemon answers".
class Listener {
public:
    explicit Listener(const std::string &path) : path_(path) {
        fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
        if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr *>(&addr), sizeof addr) != 0 || ::listen(fd_, 16) != 0) {
            throw std::runtime_error("cannot listen on " + path);
        }
    }
    Listener(const Listener &) = delete;
    Listener &operator=(const Listener &) = delete;
    ~Listener() {
        ::close(fd_);
        ::unlink(path_.c_str());
    }

private:
    std::string path_;
    int fd_ = -1;
};

}  // namespace ivd::testing
