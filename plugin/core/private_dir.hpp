// Directories and files the driver creates or writes as root (locks, state, node records): never through a
// symlink, never in a directory another user could have made or can write, never a file someone else owns.
#pragma once

#include "core/error.hpp"

#include <sys/stat.h>

#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ivd {

// An owned file descriptor, closed on destruction.
class UniqueFd {
public:
    UniqueFd() = default;
    explicit UniqueFd(int fd) noexcept : fd_(fd) {}
    UniqueFd(UniqueFd &&other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
    UniqueFd &operator=(UniqueFd &&other) noexcept;
    UniqueFd(const UniqueFd &) = delete;
    UniqueFd &operator=(const UniqueFd &) = delete;
    ~UniqueFd();

    int get() const noexcept { return fd_; }
    explicit operator bool() const noexcept { return fd_ >= 0; }
    int release() noexcept { return std::exchange(fd_, -1); }

private:
    int fd_ = -1;
};

// A directory that only this process's user can write: created 0700 where missing, refused when it is a
// symlink, not a directory, owned by another user, or writable by group or others. Files inside are opened
// relative to the directory's descriptor with O_NOFOLLOW | O_CLOEXEC and checked to be regular files with one
// link, owned by this user.
class PrivateDir {
public:
    // Opens `path` (absolute), creating it and missing parents 0700. `field` names the config key in errors.
    static Result<PrivateDir> open(const std::string &path, std::string_view field);

    const std::string &path() const noexcept { return path_; }
    int fd() const noexcept { return fd_.get(); }

    // A subdirectory held to the same rules (created 0700 when missing).
    Result<PrivateDir> subdir(std::string_view name) const;

    // Opens (and with O_CREAT creates, mode 0600) a regular file in this directory. `name` is one path
    // component. flags: O_RDONLY / O_RDWR / O_WRONLY, optionally O_CREAT / O_TRUNC / O_APPEND.
    Result<UniqueFd> open_file(std::string_view name, int flags) const;

    // Replaces `name` atomically (temporary file, fsync, rename), 0600.
    Result<void> write_file(std::string_view name, std::string_view content) const;
    // write_file() with the temporary file `temp_name` (a dot name, one per file written: concurrent writers of
    // one file are the caller's to exclude) in `staging` (same filesystem; else beside `name` after all): for a
    // directory another program lists while we write, e.g. iscsiadm reading every node record as one (a
    // temporary file it listed and that was renamed away fails its command).
    Result<void> write_file_staged(const PrivateDir &staging, std::string_view temp_name, std::string_view name,
                                   std::string_view content) const;

    // Reads `name` whole; Status::not_found when it does not exist.
    Result<std::string> read_file(std::string_view name) const;

    // Removes `name`; a missing file is not an error.
    Result<void> remove_file(std::string_view name) const;

    // The names in this directory, sorted; names starting with '.' (ours and iscsiadm's temporary files) left out.
    Result<std::vector<std::string>> list_names() const;
    // The names starting with `prefix` (dot names too, when it starts with '.'), sorted.
    Result<std::vector<std::string>> list_names_starting(std::string_view prefix) const;

private:
    PrivateDir(std::string path, UniqueFd fd) : path_(std::move(path)), fd_(std::move(fd)) {}
    Result<std::vector<std::string>> list_names_if(const std::function<bool(std::string_view)> &keep) const;
    // Writes `content` into `tmp` of `where` (created or truncated), synced, renamed to `name` here.
    Result<void> replace_via(const PrivateDir &where, const std::string &tmp, std::string_view name,
                             std::string_view content) const;

    std::string path_;
    UniqueFd fd_;
};

// Why a directory or file with these properties is unsafe to use as root, or empty when it is safe.
std::string unsafe_reason(const struct stat &st, bool want_directory);

}  // namespace ivd
