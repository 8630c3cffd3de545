#include "silent_libvirt.hpp"

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <utility>

namespace ivd::testing {

SilentLibvirt SilentLibvirt::tcp() {
    SilentLibvirt l(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    EXPECT_EQ(::bind(l.fd_, reinterpret_cast<sockaddr *>(&addr), sizeof addr), 0);
    EXPECT_EQ(::listen(l.fd_, 64), 0);
    EXPECT_EQ(::getsockname(l.fd_, reinterpret_cast<sockaddr *>(&addr), &len), 0);
    l.uri_ = "qemu+tcp://127.0.0.1:" + std::to_string(ntohs(addr.sin_port)) + "/system";
    return l;
}

SilentLibvirt SilentLibvirt::unix_socket(std::filesystem::path path) {
    static std::atomic<int> counter{0};
    if (path.empty()) {
        path = std::filesystem::temp_directory_path() /
               ("ivd-silent-libvirt-" + std::to_string(::getpid()) + "-" + std::to_string(counter++) + ".sock");
    }
    SilentLibvirt l(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    ::unlink(path.c_str());
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path.c_str());
    EXPECT_EQ(::bind(l.fd_, reinterpret_cast<sockaddr *>(&addr), sizeof addr), 0);
    EXPECT_EQ(::listen(l.fd_, 64), 0);
    l.socket_path_ = path;
    l.uri_ = "qemu+unix:///system?socket=" + path.string();
    return l;
}

SilentLibvirt::SilentLibvirt(SilentLibvirt &&other) noexcept
    : fd_(std::exchange(other.fd_, -1)), uri_(std::move(other.uri_)),
      socket_path_(std::exchange(other.socket_path_, {})) {}

SilentLibvirt::~SilentLibvirt() {
    if (fd_ >= 0) ::close(fd_);
    if (!socket_path_.empty()) ::unlink(socket_path_.c_str());
}

}  // namespace ivd::testing
