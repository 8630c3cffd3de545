#include "host_path/process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>

extern char **environ;

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434  // the same number on every architecture since Linux 5.3
#endif

namespace ivd::host_path {

namespace {

constexpr std::size_t output_cap = 256 * 1024;

struct Fd {
    int fd = -1;
    ~Fd() { reset(); }
    void reset() {
        if (fd >= 0) ::close(fd);
        fd = -1;
    }
};

}  // namespace

std::string describe_argv(const std::vector<std::string> &argv) {
    std::string s;
    for (const auto &a : argv) {
        if (!s.empty()) s += ' ';
        s += a.empty() ? "''" : a;
    }
    return s;
}

std::string tool_message(const ProcessResult &r) {
    if (!r.started) return r.spawn_error;
    if (r.timed_out) return "timed out";
    auto last_line = [](const std::string &text) {
        std::string t = text;
        while (!t.empty() && (t.back() == '\n' || t.back() == ' ' || t.back() == '\r')) t.pop_back();
        const auto nl = t.rfind('\n');
        if (nl != std::string::npos) t = t.substr(nl + 1);
        if (t.size() > 300) t = t.substr(0, 300) + "...";
        return t;
    };
    std::string m = last_line(r.err);
    if (m.empty()) m = last_line(r.out);
    return fmt::format("exit code {}{}{}", r.exit_code, m.empty() ? "" : ": ", m);
}

namespace {

// Starts argv[0] with stdin from /dev/null, stdout and stderr into the pipes, no inherited descriptors, default
// signals, its own process group and a fixed environment. Returns posix_spawn's error number (0: started).
int spawn_tool(const std::vector<std::string> &argv, int out_fd, int err_fd, pid_t *pid) {
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&actions, out_fd, 1);
    posix_spawn_file_actions_adddup2(&actions, err_fd, 2);
    // The host process may hold descriptors without O_CLOEXEC: the tool gets none of them.
    posix_spawn_file_actions_addclosefrom_np(&actions, 3);
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    sigset_t none;
    sigemptyset(&none);
    posix_spawnattr_setsigmask(&attr, &none);
    sigset_t defaults;
    sigfillset(&defaults);
    posix_spawnattr_setsigdefault(&attr, &defaults);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP);
    posix_spawnattr_setpgroup(&attr, 0);  // its own group, so a timeout kills helpers it started too

    std::vector<char *> args;
    for (const auto &a : argv) args.push_back(const_cast<char *>(a.c_str()));
    args.push_back(nullptr);
    // A fixed, minimal environment: nothing of the host process's environment leaks into the tools.
    std::array<char *, 3> env{const_cast<char *>("PATH=/usr/sbin:/usr/bin:/sbin:/bin"),
                              const_cast<char *>("LC_ALL=C"), nullptr};
    const int rc = ::posix_spawn(pid, args[0], &actions, &attr, args.data(), env.data());
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
    return rc;
}

// Reads the tool's output until it exits or the deadline; true when it exited (`status` from waitpid).
bool collect_until_exit(pid_t pid, Fd &out_r, Fd &err_r, std::chrono::milliseconds timeout, ProcessResult &result,
                        int &status) {
    // A pidfd turns readable the moment the tool exits, so the wait ends then and not at the next poll slice
    // (tools are short-lived: a fixed slice or sleep was a large part of each run). Without one (kernel < 5.3, or
    // a seccomp filter), exit is noticed by waitpid between short poll slices.
    Fd pid_fd{static_cast<int>(::syscall(SYS_pidfd_open, pid, 0))};
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    std::array<char, 4096> buf{};
    auto drain = [&](Fd &fd, std::string &sink) {
        // After exit: take what is buffered, then stop even if a grandchild (a daemon) still holds the pipe.
        if (fd.fd < 0) return;
        ::fcntl(fd.fd, F_SETFL, O_NONBLOCK);
        ssize_t got;
        while ((got = ::read(fd.fd, buf.data(), buf.size())) > 0) {
            if (sink.size() < output_cap) sink.append(buf.data(), static_cast<std::size_t>(got));
        }
    };
    while (true) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) return false;
        // poll ignores entries whose fd is negative (closed pipes, no pidfd).
        std::array<pollfd, 3> fds{pollfd{out_r.fd, POLLIN, 0}, pollfd{err_r.fd, POLLIN, 0}, pollfd{pid_fd.fd, POLLIN, 0}};
        long slice = left.count();
        if (pid_fd.fd < 0) slice = std::min<long>(slice, out_r.fd < 0 && err_r.fd < 0 ? 1 : 50);
        const int n = ::poll(fds.data(), fds.size(), static_cast<int>(slice));
        if (n < 0 && errno != EINTR) return false;
        for (std::size_t i = 0; i < 2; ++i) {
            Fd &fd = i == 0 ? out_r : err_r;
            if (fd.fd < 0 || (fds[i].revents & (POLLIN | POLLHUP | POLLERR)) == 0) continue;
            const ssize_t got = ::read(fd.fd, buf.data(), buf.size());
            if (got <= 0) {
                fd.reset();
                continue;
            }
            std::string &sink = i == 0 ? result.out : result.err;
            if (sink.size() < output_cap) sink.append(buf.data(), static_cast<std::size_t>(got));
        }
        if (::waitpid(pid, &status, WNOHANG) == pid) {
            drain(out_r, result.out);
            drain(err_r, result.err);
            return true;
        }
        // Exited but not reapable (a host that ignores SIGCHLD): the pidfd would stay readable, so drop it rather
        // than spin; the deadline decides, as it did before pidfds.
        if (pid_fd.fd >= 0 && (fds[2].revents & POLLIN) != 0) pid_fd.reset();
    }
}

}  // namespace

ProcessResult run_process(const std::vector<std::string> &argv, std::chrono::milliseconds timeout) {
    ProcessResult result;
    if (argv.empty() || argv[0].empty() || argv[0][0] != '/') {
        result.spawn_error = "the tool path must be absolute";
        return result;
    }
    std::array<int, 2> out_pipe{-1, -1};
    std::array<int, 2> err_pipe{-1, -1};
    if (::pipe2(out_pipe.data(), O_CLOEXEC) != 0) {
        result.spawn_error = fmt::format("pipe: {}", std::strerror(errno));
        return result;
    }
    Fd out_r{out_pipe[0]}, out_w{out_pipe[1]};
    if (::pipe2(err_pipe.data(), O_CLOEXEC) != 0) {
        result.spawn_error = fmt::format("pipe: {}", std::strerror(errno));
        return result;
    }
    Fd err_r{err_pipe[0]}, err_w{err_pipe[1]};

    pid_t pid = -1;
    if (const int rc = spawn_tool(argv, out_w.fd, err_w.fd, &pid); rc != 0) {
        result.spawn_error = fmt::format("cannot run {}: {}", argv[0], std::strerror(rc));
        return result;
    }
    result.started = true;
    out_w.reset();
    err_w.reset();

    int status = 0;
    if (!collect_until_exit(pid, out_r, err_r, timeout, result, status)) {
        result.timed_out = true;
        ::kill(-pid, SIGKILL);
        ::kill(pid, SIGKILL);
        ::waitpid(pid, &status, 0);
        return result;
    }
    result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return result;
}

}  // namespace ivd::host_path
