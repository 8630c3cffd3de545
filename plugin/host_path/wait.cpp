#include "host_path/wait.hpp"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <system_error>

namespace ivd::host_path {

DirEvents::~DirEvents() {
    if (reader_.joinable()) {
        if (::getpid() != owner_) {
            reader_.detach();  // a forked child: the reader thread stayed in the parent, there is none to join
        } else {
            const std::uint64_t one = 1;
            [[maybe_unused]] auto n = ::write(stop_fd_, &one, sizeof one);
            reader_.join();
        }
    }
    if (inotify_fd_ >= 0) ::close(inotify_fd_);
    if (stop_fd_ >= 0) ::close(stop_fd_);
}

std::uint64_t DirEvents::generation() {
    std::call_once(started_, [this] { start(); });
    std::lock_guard guard(mutex_);
    return generation_;
}

void DirEvents::wait(std::uint64_t seen, std::chrono::nanoseconds d) {
    std::unique_lock lock(mutex_);
    if (!running_) {
        lock.unlock();
        std::this_thread::sleep_for(d);
        return;
    }
    changed_.wait_for(lock, d, [&] { return generation_ != seen || !running_; });
}

void DirEvents::start() {
    inotify_fd_ = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    stop_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (inotify_fd_ < 0 || stop_fd_ < 0 || ::inotify_add_watch(inotify_fd_, dir_.c_str(), IN_CREATE | IN_MOVED_TO) < 0) {
        return;
    }
    std::lock_guard guard(mutex_);
    owner_ = ::getpid();
    try {
        reader_ = std::thread([this] { run(); });
        running_ = true;
    } catch (const std::system_error &) {
        // No thread: waits stay plain sleeps.
    }
}

void DirEvents::run() {
    while (true) {
        std::array<pollfd, 2> fds{pollfd{inotify_fd_, POLLIN, 0}, pollfd{stop_fd_, POLLIN, 0}};
        if (::poll(fds.data(), fds.size(), -1) < 0) {
            if (errno == EINTR) continue;
            break;
        }
        if (fds[1].revents != 0) break;
        alignas(inotify_event) char buf[4096];
        while (::read(inotify_fd_, buf, sizeof buf) > 0) {
        }
        {
            std::lock_guard guard(mutex_);
            ++generation_;
        }
        changed_.notify_all();
    }
    {
        std::lock_guard guard(mutex_);
        running_ = false;
    }
    changed_.notify_all();
}

}  // namespace ivd::host_path
