// A per-domain flock, held by volume-host around "is this volume's storage already in the domain? if not,
// attach it", so parallel volume-host processes cannot both attach the same volume to one domain.
#pragma once

#include "shim_error.hpp"

#include <chrono>
#include <string>

namespace volume_host {

class DomainLock {
public:
    // Locks DIR/domain-<uuid>.lock. DIR is created 0700 when missing and must be a directory owned by root,
    // writable by nobody else, not a symlink; the lock file must be a regular file owned by root (opened
    // O_NOFOLLOW). Waits up to `wait` for another holder; then a `timeout` error naming the file.
    static Outcome<DomainLock> acquire(const std::string &dir, const std::string &domain_uuid,
                                       std::chrono::milliseconds wait = std::chrono::seconds(120));
    DomainLock(DomainLock &&other) noexcept;
    DomainLock &operator=(DomainLock &&other) = delete;
    DomainLock(const DomainLock &) = delete;
    ~DomainLock();

private:
    explicit DomainLock(int fd) : fd_(fd) {}
    int fd_ = -1;
};

}  // namespace volume_host
