#include "driver/volume_locks.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

namespace {

TEST(VolumeLocks, SameKeySerialisedOtherKeysConcurrent) {
    ivd::VolumeLocks locks;
    std::atomic<int> inside{0};
    std::atomic<int> max_inside{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 8; ++t) {
        threads.emplace_back([&] {
            for (int i = 0; i < 200; ++i) {
                auto guard = locks.lock("volume:same");
                const int now = ++inside;
                int seen = max_inside.load();
                while (now > seen && !max_inside.compare_exchange_weak(seen, now)) {
                }
                --inside;
            }
        });
    }
    for (auto &t : threads) t.join();
    EXPECT_EQ(max_inside.load(), 1);
    EXPECT_EQ(locks.size(), 0u) << "entries are dropped when the last user leaves";

    // Different keys do not wait for each other: hold one, take another from a second thread.
    auto held = locks.lock("volume:a");
    std::thread other([&] { auto g = locks.lock("volume:b"); });
    other.join();
    EXPECT_EQ(locks.size(), 1u);
}

}  // namespace
