#include "libvirt/event_loop.hpp"

#include <libvirt/libvirt.h>

#include <dlfcn.h>

#include <atomic>
#include <mutex>
#include <thread>

namespace ivd::libvirt {

namespace {

void never_fires(int, void *) noexcept {}

// Our loop thread. Destroyed at process exit (or at unload, if pinning failed): stops and joins the thread,
// so no code of this module runs after it.
class DefaultLoop {
public:
    bool start() noexcept {
        if (virEventRegisterDefaultImpl() != 0) return false;
        // A disabled timer whose only job is to wake the loop when it must stop.
        wake_timer_ = virEventAddTimeout(-1, never_fires, nullptr, nullptr);
        try {
            thread_ = std::thread([this] {
                while (!stop_.load()) {
                    if (virEventRunDefaultImpl() < 0) std::this_thread::sleep_for(std::chrono::milliseconds(50));
                }
            });
        } catch (...) {
            return false;
        }
        return true;
    }

    ~DefaultLoop() {
        if (!thread_.joinable()) return;
        stop_.store(true);
        if (wake_timer_ >= 0) virEventUpdateTimeout(wake_timer_, 0);  // interrupts the poll at once
        thread_.join();
        if (wake_timer_ >= 0) virEventRemoveTimeout(wake_timer_);
    }

private:
    std::atomic<bool> stop_{false};
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

void pin_this_module() noexcept {
    static std::once_flag once;
    std::call_once(once, [] {
        Dl_info info{};
        if (::dladdr(reinterpret_cast<void *>(&pin_this_module), &info) == 0 || info.dli_fname == nullptr) return;
        // NOLOAD: only takes another reference to this already loaded object; NODELETE: never unmapped. The
        // handle is deliberately never closed.
        (void)::dlopen(info.dli_fname, RTLD_NOW | RTLD_NOLOAD | RTLD_NODELETE);
    });
}

bool ensure_event_loop() noexcept {
    static std::once_flag once;
    static bool available = false;
    std::call_once(once, [] {
        if (someone_registered()) {
            available = true;  // the host runs its own loop (Nova does): use it, never register a second one
            return;
        }
        pin_this_module();
        available = loop.start();
    });
    return available;
}

}  // namespace ivd::libvirt
