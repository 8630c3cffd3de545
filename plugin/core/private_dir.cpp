#include "core/private_dir.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

#include <algorithm>
#include <functional>
#include <cerrno>
#include <cstring>
#include <vector>

namespace ivd {

UniqueFd &UniqueFd::operator=(UniqueFd &&other) noexcept {
    if (this != &other) {
        if (fd_ >= 0) ::close(fd_);
        fd_ = std::exchange(other.fd_, -1);
    }
    return *this;
}

UniqueFd::~UniqueFd() {
    if (fd_ >= 0) ::close(fd_);
}

std::string unsafe_reason(const struct stat &st, bool want_directory) {
    if (want_directory && !S_ISDIR(st.st_mode)) return "is not a directory";
    if (!want_directory && !S_ISREG(st.st_mode)) return "is not a regular file";
    if (st.st_uid != ::geteuid()) return fmt::format("is owned by uid {}, not by uid {}", st.st_uid, ::geteuid());
    if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
        return fmt::format("is writable by group or others (mode {:04o})", st.st_mode & 07777);
    }
    if (!want_directory && st.st_nlink != 1) return fmt::format("has {} hard links", st.st_nlink);
    return {};
}

namespace {

Error fs_error(std::string_view field, const std::string &path, const std::string &what) {
    return make_error(Status::config, fmt::format("{} {}: {}", field, path, what), "config", std::string(field));
}

bool one_component(std::string_view name) {
    return !name.empty() && name != "." && name != ".." && name.find('/') == std::string_view::npos &&
           name.find('\0') == std::string_view::npos;
}

// Opens (creating 0700 when missing) `name` under `parent`, never following a symlink, and checks it.
Result<UniqueFd> open_child_dir(int parent, std::string_view name, const std::string &shown, std::string_view field,
                                bool check) {
    const std::string n(name);
    if (::mkdirat(parent, n.c_str(), 0700) != 0 && errno != EEXIST) {
        return fs_error(field, shown, fmt::format("cannot create: {}", std::strerror(errno)));
    }
    UniqueFd fd(::openat(parent, n.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!fd) {
        if (errno == ELOOP || errno == ENOTDIR) return fs_error(field, shown, "is a symlink or not a directory");
        return fs_error(field, shown, fmt::format("cannot open: {}", std::strerror(errno)));
    }
    if (check) {
        struct stat st {};
        if (::fstat(fd.get(), &st) != 0) return fs_error(field, shown, std::strerror(errno));
        if (auto why = unsafe_reason(st, true); !why.empty()) {
            return fs_error(field, shown, why + "; refusing to use it as root");
        }
    }
    return fd;
}

}  // namespace

Result<PrivateDir> PrivateDir::open(const std::string &path, std::string_view field) {
    if (path.empty() || path.front() != '/') return fs_error(field, path, "must be an absolute path");
    std::vector<std::string> parts;
    for (std::size_t start = 1; start <= path.size();) {
        const std::size_t end = std::min(path.find('/', start), path.size());
        const std::string_view part(path.data() + start, end - start);
        if (part == "..") return fs_error(field, path, "must not contain '..'");
        if (!part.empty() && part != ".") parts.emplace_back(part);
        start = end + 1;
    }
    UniqueFd fd(::open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!fd) return fs_error(field, path, std::strerror(errno));
    std::string shown;
    for (std::size_t i = 0; i < parts.size(); ++i) {
        shown += "/" + parts[i];
        // Ancestors may be shared (/run, /var/lib); only the directory itself must be ours alone. A symlink is
        // refused at every level, so no other user can redirect the walk.
        auto next = open_child_dir(fd.get(), parts[i], shown, field, i + 1 == parts.size());
        if (!next) return std::move(next).error();
        fd = std::move(*next);
    }
    if (parts.empty()) return fs_error(field, path, "must not be /");
    return PrivateDir(shown, std::move(fd));
}

Result<PrivateDir> PrivateDir::subdir(std::string_view name) const {
    if (!one_component(name)) return make_error(Status::internal, fmt::format("bad directory name '{}'", name));
    const std::string shown = fmt::format("{}/{}", path_, name);
    auto fd = open_child_dir(fd_.get(), name, shown, "directory", true);
    if (!fd) return std::move(fd).error();
    return PrivateDir(shown, std::move(*fd));
}

Result<UniqueFd> PrivateDir::open_file(std::string_view name, int flags) const {
    if (!one_component(name)) return make_error(Status::internal, fmt::format("bad file name '{}'", name));
    const std::string n(name);
    UniqueFd fd(::openat(fd_.get(), n.c_str(), flags | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK, 0600));
    if (!fd) {
        const int e = errno;
        if (e == ENOENT) return make_error(Status::not_found, fmt::format("{}/{}: does not exist", path_, name));
        return make_error(Status::backend, fmt::format("{}/{}: {}", path_, name,
                                                       e == ELOOP ? "is a symlink; refusing to follow it"
                                                                  : std::strerror(e)));
    }
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) return make_error(Status::backend, fmt::format("{}/{}: {}", path_, name, std::strerror(errno)));
    if (auto why = unsafe_reason(st, false); !why.empty()) {
        return make_error(Status::backend, fmt::format("{}/{}: {}; refusing to use it as root", path_, name, why));
    }
    // O_NONBLOCK only kept a FIFO from blocking the open; regular files ignore it, but clear it anyway.
    ::fcntl(fd.get(), F_SETFL, ::fcntl(fd.get(), F_GETFL) & ~O_NONBLOCK);
    return fd;
}

Result<void> PrivateDir::write_file(std::string_view name, std::string_view content) const {
    return replace_via(*this, fmt::format(".{}.tmp", name), name, content);
}

Result<void> PrivateDir::write_file_staged(const PrivateDir &staging, std::string_view temp_name,
                                           std::string_view name, std::string_view content) const {
    if (!one_component(temp_name) || temp_name.front() != '.') {
        return make_error(Status::internal, fmt::format("bad temporary file name '{}'", temp_name));
    }
    return replace_via(staging, std::string(temp_name), name, content);
}

Result<void> PrivateDir::replace_via(const PrivateDir &where, const std::string &tmp, std::string_view name,
                                     std::string_view content) const {
    auto fd = where.open_file(tmp, O_WRONLY | O_CREAT | O_TRUNC);
    if (!fd) return std::move(fd).error();
    const auto fail = [&](const char *what, int e) {
        ::unlinkat(where.fd(), tmp.c_str(), 0);
        return make_error(Status::backend, fmt::format("{}/{}: {}: {}", where.path(), tmp, what, std::strerror(e)));
    };
    // A temporary file left from before (a crash) keeps its old mode through O_TRUNC: 0600 before any byte goes in.
    if (::fchmod(fd->get(), 0600) != 0) return fail("chmod", errno);
    for (std::size_t done = 0; done < content.size();) {
        const ssize_t n = ::write(fd->get(), content.data() + done, content.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return fail("write", errno);
        done += static_cast<std::size_t>(n);
    }
    if (::fsync(fd->get()) != 0) return fail("fsync", errno);
    if (::renameat(where.fd(), tmp.c_str(), fd_.get(), std::string(name).c_str()) != 0) {
        const int e = errno;
        ::unlinkat(where.fd(), tmp.c_str(), 0);
        // Staged on another filesystem: written beside the file after all.
        if (e == EXDEV && &where != this) return write_file(name, content);
        return make_error(Status::backend, fmt::format("{}/{}: {}", path_, name, std::strerror(e)));
    }
    return {};
}

Result<std::string> PrivateDir::read_file(std::string_view name) const {
    auto fd = open_file(name, O_RDONLY);
    if (!fd) return std::move(fd).error();
    std::string out;
    char buffer[4096];
    for (;;) {
        const ssize_t n = ::read(fd->get(), buffer, sizeof buffer);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return make_error(Status::backend, fmt::format("{}/{}: read: {}", path_, name, std::strerror(errno)));
        if (n == 0) break;
        out.append(buffer, static_cast<std::size_t>(n));
    }
    return out;
}

Result<void> PrivateDir::remove_file(std::string_view name) const {
    if (!one_component(name)) return make_error(Status::internal, fmt::format("bad file name '{}'", name));
    if (::unlinkat(fd_.get(), std::string(name).c_str(), 0) != 0 && errno != ENOENT) {
        return make_error(Status::backend, fmt::format("{}/{}: remove: {}", path_, name, std::strerror(errno)));
    }
    return {};
}

Result<std::vector<std::string>> PrivateDir::list_names() const {
    return list_names_if([](std::string_view name) { return name.front() != '.'; });
}

Result<std::vector<std::string>> PrivateDir::list_names_starting(std::string_view prefix) const {
    return list_names_if([prefix](std::string_view name) { return name.starts_with(prefix); });
}

Result<std::vector<std::string>> PrivateDir::list_names_if(const std::function<bool(std::string_view)> &keep) const {
    // A descriptor of its own: a dup() would share (and move) the offset of fd_.
    const int fd = ::openat(fd_.get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return make_error(Status::backend, fmt::format("{}: list: {}", path_, std::strerror(errno)));
    DIR *listing = ::fdopendir(fd);
    if (listing == nullptr) {
        const int saved = errno;
        ::close(fd);
        return make_error(Status::backend, fmt::format("{}: list: {}", path_, std::strerror(saved)));
    }
    std::vector<std::string> names;
    while (const dirent *e = ::readdir(listing)) {
        const std::string_view name(e->d_name);
        if (name != "." && name != ".." && keep(name)) names.emplace_back(name);
    }
    ::closedir(listing);
    std::sort(names.begin(), names.end());
    return names;
}

}  // namespace ivd
