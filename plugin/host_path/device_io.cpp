#include "host_path/device_io.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <fmt/format.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <memory>

namespace ivd::host_path {

namespace {

constexpr std::size_t block_bytes = 4096;  // a multiple of every logical block size Linux supports

struct FreeDeleter {
    void operator()(void *p) const { std::free(p); }
};

}  // namespace

Result<void> read_first_block(const std::string &node) {
    int fd = ::open(node.c_str(), O_RDONLY | O_DIRECT | O_CLOEXEC | O_NOCTTY);
    if (fd < 0 && errno == EINVAL) fd = ::open(node.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) return make_error(Status::backend, fmt::format("cannot open {}: {}", node, std::strerror(errno)));
    void *raw = nullptr;
    if (::posix_memalign(&raw, block_bytes, block_bytes) != 0) {
        ::close(fd);
        return make_error(Status::no_memory, "no memory for the readiness read");
    }
    const std::unique_ptr<void, FreeDeleter> buffer(raw);
    const ssize_t n = ::pread(fd, buffer.get(), block_bytes, 0);
    const int saved = errno;
    ::close(fd);
    if (n < 0) return make_error(Status::backend, fmt::format("reading {}: {}", node, std::strerror(saved)));
    if (n == 0) return make_error(Status::backend, fmt::format("reading {}: no data (end of device at offset 0)", node));
    return {};
}

}  // namespace ivd::host_path
