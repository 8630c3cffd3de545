// A libvirt URI whose peer accepts connections (the kernel completes the handshake into the backlog) and never
// reads or answers: a hung libvirtd, for the tests of every bound on libvirt calls.
#pragma once

#include <filesystem>
#include <string>

namespace ivd::testing {

class SilentLibvirt {
public:
    // qemu+tcp://127.0.0.1:PORT/system on a loopback port of its own.
    static SilentLibvirt tcp();
    // qemu+unix:///system?socket=PATH; a fresh path in the temp directory when `path` is empty.
    static SilentLibvirt unix_socket(std::filesystem::path path = {});

    SilentLibvirt(SilentLibvirt &&other) noexcept;
    SilentLibvirt &operator=(SilentLibvirt &&) = delete;
    ~SilentLibvirt();

    const std::string &uri() const { return uri_; }

private:
    explicit SilentLibvirt(int fd) : fd_(fd) {}
    int fd_ = -1;
    std::string uri_;
    std::filesystem::path socket_path_;  // removed again with the listener
};

}  // namespace ivd::testing
