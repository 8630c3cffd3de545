// The driver's own libvirt event loop thread and the host's loop threads, at process exit.
#include "libvirt/event_loop.hpp"

#include <libvirt/libvirt.h>

#include <gtest/gtest.h>

#include <pthread.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <thread>

namespace {

std::atomic<bool> host_thread_gone{false};
pthread_t host_thread;

// Fires on every iteration until the host's thread is the one dispatching it; then that thread ends in the
// middle of the dispatch, as Python ends a daemon thread that asks for the GIL during interpreter exit.
void end_host_thread_in_dispatch(int, void *) {
    if (!pthread_equal(pthread_self(), host_thread)) return;
    host_thread_gone.store(true);
    pthread_exit(nullptr);
}

void *host_loop(void *) {
    for (;;) virEventRunDefaultImpl();  // what Nova's libvirt event thread does
}

// Our loop is running; the host runs the same default loop in a thread of its own, which dies while it owns
// the loop; then the process exits. Exit must not wait for our thread forever (it waited, before, on a loop
// nobody would ever release: nova-compute and the Nova tests hung at exit while libvirtd sent events).
[[noreturn]] void exit_after_the_host_loop_thread_died_mid_dispatch() {
    if (!ivd::libvirt::ensure_event_loop()) std::_Exit(3);
    if (pthread_create(&host_thread, nullptr, host_loop, nullptr) != 0) std::_Exit(4);
    if (virEventAddTimeout(0, end_host_thread_in_dispatch, nullptr, nullptr) < 0) std::_Exit(5);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!host_thread_gone.load()) {
        if (std::chrono::steady_clock::now() > deadline) std::_Exit(6);
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    alarm(10);  // a hanging exit ends by SIGALRM: the test fails in 10 s, not at CTest's timeout
    std::exit(0);
}

TEST(EventLoopDeathTest, ProcessExitsWhenAHostLoopThreadDiedOwningTheLoop) {
    GTEST_FLAG_SET(death_test_style, "threadsafe");  // a fresh process: the loop is process-wide
    const auto start = std::chrono::steady_clock::now();
    EXPECT_EXIT(exit_after_the_host_loop_thread_died_mid_dispatch(), ::testing::ExitedWithCode(0), "");
    // Exit gives our thread 2 s to stop, then leaves it: the process is ending.
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(8));
}

// The forked child below exits while its parent's threads do not exist in it: LeakSanitizer cannot scan their
// stacks and reports what only they referenced (it says "false leaks are possible"). Off in that child only.
std::atomic<bool> leak_check_off{false};

// A child forked after our loop started has no loop thread: its exit must not wait for one (it waited the whole
// 2 s exit bound, before).
[[noreturn]] void fork_a_child_that_exits() {
    if (!ivd::libvirt::ensure_event_loop()) std::_Exit(3);
    const pid_t child = fork();
    if (child < 0) std::_Exit(4);
    if (child == 0) {
        leak_check_off.store(true);
        alarm(1);  // a child still waiting for the parent's thread dies by SIGALRM
        std::exit(0);
    }
    int status = 0;
    if (waitpid(child, &status, 0) != child) std::_Exit(5);
    std::_Exit(WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 6);
}

TEST(EventLoopDeathTest, AForkedChildExitsWithoutWaitingForTheParentsLoopThread) {
    GTEST_FLAG_SET(death_test_style, "threadsafe");
    EXPECT_EXIT(fork_a_child_that_exits(), ::testing::ExitedWithCode(0), "");
}

}  // namespace

// LeakSanitizer's hook (sanitizer/lsan_interface.h), asked at exit; unused without the sanitizer.
extern "C" int __lsan_is_turned_off() { return leak_check_off.load() ? 1 : 0; }
