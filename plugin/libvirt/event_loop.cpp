#include "libvirt/event_loop.hpp"

#include <libvirt/libvirt.h>

#include <dlfcn.h>
#include <link.h>
#include <pthread.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <new>
#include <thread>

namespace ivd::libvirt {

namespace {

void never_fires(int, void *) noexcept {}

// How long process exit waits for our loop thread. libvirt's default loop is one GLib context shared with the
// host's loop threads; a host thread that dies while it owns the context (Python ends daemon threads at exit
// with pthread_exit, possibly in the middle of dispatching an event) leaves it owned forever, and our thread
// waits for it forever: an unbounded join would hang the host's exit.
constexpr auto stop_wait = std::chrono::seconds(2);

// What the loop thread and its owner share; the thread keeps it alive when it is abandoned (see ~DefaultLoop).
struct LoopState {
    std::atomic<bool> stop{false};
    std::mutex mutex;
    std::condition_variable cv;
    bool exited = false;
};

// Set in a forked child: our loop thread exists only in the parent.
std::atomic<bool> in_forked_child{false};

void note_fork_in_child() noexcept { in_forked_child.store(true); }

void run_loop(LoopState &state) {
    while (!state.stop.load()) {
        if (virEventRunDefaultImpl() < 0) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    const std::lock_guard<std::mutex> lock(state.mutex);
    state.exited = true;
    state.cv.notify_all();
}

// Our loop thread. Destroyed at process exit (or at unload, if pinning failed): stops and joins the thread, so
// no code of this module runs after it; when the module is pinned, a thread that cannot stop in time (the loop
// is wedged, see stop_wait) is left behind instead: its code stays mapped, and the process is ending.
class DefaultLoop {
public:
    bool start(bool module_pinned) noexcept {
        if (virEventRegisterDefaultImpl() != 0) return false;
        pinned_ = module_pinned;
        // A disabled timer whose only job is to wake the loop when it must stop.
        wake_timer_ = virEventAddTimeout(-1, never_fires, nullptr, nullptr);
        try {
            state_ = std::make_shared<LoopState>();
            thread_ = std::thread([state = state_] { run_loop(*state); });
            ::pthread_atfork(nullptr, nullptr, note_fork_in_child);
        } catch (...) {
            return false;
        }
        return true;
    }

    ~DefaultLoop() {
        if (!thread_.joinable()) return;
        if (in_forked_child.load()) {
            // No such thread here, and its state may have been copied mid-change: nothing to stop or wait for.
            // Destroying a joinable std::thread terminates, so the handle moves into storage never destroyed.
            alignas(std::thread) static unsigned char parked[sizeof(std::thread)];
            new (parked) std::thread(std::move(thread_));
            return;
        }
        state_->stop.store(true);
        if (wake_timer_ >= 0) virEventUpdateTimeout(wake_timer_, 0);  // interrupts the poll at once
        std::unique_lock<std::mutex> lock(state_->mutex);
        // Unpinned, this code is unmapped after us: the thread must be gone, however long that takes.
        if (!pinned_) {
            state_->cv.wait(lock, [this] { return state_->exited; });
        } else if (!state_->cv.wait_for(lock, stop_wait, [this] { return state_->exited; })) {
            lock.unlock();
            thread_.detach();
            return;
        }
        lock.unlock();
        thread_.join();
        if (wake_timer_ >= 0) virEventRemoveTimeout(wake_timer_);
    }

private:
    std::shared_ptr<LoopState> state_;
    bool pinned_ = false;
    int wake_timer_ = -1;
    std::thread thread_;
};

DefaultLoop loop;  // NOLINT: process lifetime by design, see the header

// libvirt has no getter for the registered implementation; adding a timer fails exactly when none is.
bool someone_registered() noexcept {
    const int probe = virEventAddTimeout(-1, never_fires, nullptr, nullptr);
    if (probe < 0) return false;
    virEventRemoveTimeout(probe);
    return true;
}

}  // namespace

bool pin_this_module() noexcept {
    static std::once_flag once;
    static bool pinned = false;
    std::call_once(once, [] {
        Dl_info info{};
        link_map *object = nullptr;
        if (::dladdr1(reinterpret_cast<void *>(&pin_this_module), &info, reinterpret_cast<void **>(&object),
                      RTLD_DL_LINKMAP) == 0 ||
            object == nullptr)
            return;
        // The executable's own link map has an empty name: it is never unmapped.
        if (object->l_name == nullptr || object->l_name[0] == '\0') {
            pinned = true;
            return;
        }
        // NOLOAD: only takes another reference to this already loaded object; NODELETE: never unmapped. The
        // handle is deliberately never closed.
        pinned = ::dlopen(object->l_name, RTLD_NOW | RTLD_NOLOAD | RTLD_NODELETE) != nullptr;
    });
    return pinned;
}

bool ensure_event_loop() noexcept {
    static std::once_flag once;
    static bool available = false;
    std::call_once(once, [] {
        if (someone_registered()) {
            available = true;  // the host runs its own loop (Nova does): use it, never register a second one
            return;
        }
        available = loop.start(pin_this_module());
    });
    return available;
}

}  // namespace ivd::libvirt
