#include "host_path/wwids_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>

namespace ivd::host_path {

namespace {

// The file's text, or nothing (empty, with `ok` false) when it cannot be read whole within the bound.
std::string read_bounded(const std::string &path, bool &ok) {
    ok = false;
    // NONBLOCK: a FIFO put at the path must not hold the connect; only a regular file is read.
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) return {};
    struct stat st {};
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        ::close(fd);
        return {};
    }
    std::string text;
    std::array<char, 16384> buf{};
    for (;;) {
        const ssize_t n = ::read(fd, buf.data(), buf.size());
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) break;
        if (n == 0) {
            ok = true;
            break;
        }
        if (text.size() + static_cast<std::size_t>(n) > max_wwids_file_bytes) break;
        text.append(buf.data(), static_cast<std::size_t>(n));
    }
    ::close(fd);
    if (!ok) text.clear();
    return text;
}

}  // namespace

bool wwids_text_lists(std::string_view text, std::string_view wwid) {
    if (wwid.empty()) return false;
    while (!text.empty()) {
        const std::size_t end = text.find('\n');
        std::string_view line = text.substr(0, end);
        text = end == std::string_view::npos ? std::string_view{} : text.substr(end + 1);
        // multipath-tools reads an entry only from a '/' in the first column (lookup_wwid); an indented one is
        // not an entry to it, so it is none to us either.
        if (line.empty() || line.front() != '/') continue;
        line.remove_prefix(1);
        const std::size_t close = line.find('/');
        if (close != std::string_view::npos && line.substr(0, close) == wwid) return true;
    }
    return false;
}

bool wwids_file_lists(const std::string &path, std::string_view wwid) {
    if (wwid.empty() || path.empty()) return false;
    bool ok = false;
    const std::string text = read_bounded(path, ok);
    return ok && wwids_text_lists(text, wwid);
}

}  // namespace ivd::host_path
