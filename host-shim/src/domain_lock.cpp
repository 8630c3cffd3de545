#include "domain_lock.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

#include <cerrno>
#include <cstring>
#include <thread>
#include <utility>

namespace volume_host {

namespace {

ShimError lock_error(const std::string &message) { return ShimError{"lock_error", message, exit_libvirt}; }

struct Fd {
    int fd = -1;
    ~Fd() {
        if (fd >= 0) ::close(fd);
    }
    int release() { return std::exchange(fd, -1); }
};

// The lock directory: created 0700 when missing, then opened without following a symlink and checked.
Outcome<int> open_lock_dir(const std::string &dir) {
    if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
        return lock_error(fmt::format("cannot create the lock directory {}: {}", dir, std::strerror(errno)));
    }
    Fd d{::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)};
    if (d.fd < 0) return lock_error(fmt::format("cannot open the lock directory {}: {}", dir, std::strerror(errno)));
    struct stat st{};
    if (::fstat(d.fd, &st) != 0 || !S_ISDIR(st.st_mode) || st.st_uid != 0 || (st.st_mode & 022) != 0) {
        return lock_error(fmt::format("the lock directory {} must be a directory owned by root and writable by "
                                      "root only",
                                      dir));
    }
    return d.release();
}

}  // namespace

Outcome<DomainLock> DomainLock::acquire(const std::string &dir, const std::string &domain_uuid,
                                        std::chrono::milliseconds wait) {
    auto dir_fd = open_lock_dir(dir);
    if (!dir_fd) return dir_fd.error();
    Fd d{*dir_fd};
    const std::string name = fmt::format("domain-{}.lock", domain_uuid);
    Fd f{::openat(d.fd, name.c_str(), O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600)};
    if (f.fd < 0) return lock_error(fmt::format("cannot open the lock file {}/{}: {}", dir, name, std::strerror(errno)));
    struct stat st{};
    if (::fstat(f.fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_uid != 0) {
        return lock_error(fmt::format("the lock file {}/{} must be a regular file owned by root", dir, name));
    }
    const auto deadline = std::chrono::steady_clock::now() + wait;
    while (::flock(f.fd, LOCK_EX | LOCK_NB) != 0) {
        if (errno != EWOULDBLOCK && errno != EINTR) {
            return lock_error(fmt::format("cannot lock {}/{}: {}", dir, name, std::strerror(errno)));
        }
        if (std::chrono::steady_clock::now() > deadline) {
            return ShimError{"timeout",
                             fmt::format("another volume-host held the domain lock {}/{} for more than {} ms", dir,
                                         name, wait.count()),
                             exit_libvirt};
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return DomainLock(f.release());
}

DomainLock::DomainLock(DomainLock &&other) noexcept : fd_(std::exchange(other.fd_, -1)) {}

DomainLock::~DomainLock() {
    if (fd_ >= 0) ::close(fd_);  // closing releases the flock
}

}  // namespace volume_host
