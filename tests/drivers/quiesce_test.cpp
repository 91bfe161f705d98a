// Burst quiescence (drivers/quiesce.hpp): munmap, as a PMD calls it from another thread, waits
// for every thread inside a burst to leave it, and for nobody else.
#include <gtest/gtest.h>
#include <sys/mman.h>

#include <atomic>
#include <thread>
#include <vector>

#include "drivers/quiesce.hpp"

namespace pomelo::drivers {
namespace {

void spin_until(const std::atomic<bool>& flag) {
    while (!flag.load(std::memory_order_acquire)) std::this_thread::yield();
}

// The race net_memif has when its peer leaves, with the PMD's parts played by the test: a
// poller reads device memory inside a burst while another thread unmaps it. Without the
// quiescence the poller faults (the test crashes); with it, munmap returns only after the
// poller has left its burst.
TEST(Quiesce, MunmapWaitsForTheBurstInProgress) {
    auto* ring = static_cast<volatile uint64_t*>(
        ::mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    ASSERT_NE(ring, MAP_FAILED);
    ring[0] = 1;
    std::atomic<bool> in_burst{false}, unmapping{false}, left{false}, left_before_return{false};
    uint64_t sum = 0;
    std::thread poller([&] {
        {
            const quiesce::BurstScope scope;
            in_burst.store(true, std::memory_order_release);
            spin_until(unmapping);
            // Keep reading well past the moment munmap is called (bounded by reads, not time).
            for (int i = 0; i < 20'000'000; ++i) sum += ring[0];
        }
        left.store(true, std::memory_order_release);
    });
    std::thread pmd([&] {
        spin_until(in_burst);
        unmapping.store(true, std::memory_order_release);
        EXPECT_EQ(::munmap(const_cast<uint64_t*>(ring), 4096), 0);
        left_before_return.store(left.load(std::memory_order_acquire));
    });
    poller.join();
    pmd.join();
    EXPECT_TRUE(left_before_return.load()) << "munmap returned while the poller was inside its burst";
    EXPECT_EQ(sum, 20'000'000u);
}

// A poller between bursts (here: parked for good) holds nothing up, and a thread unmapping
// from inside its own burst does not wait for itself.
TEST(Quiesce, MunmapDoesNotWaitForPollersBetweenBursts) {
    std::atomic<bool> polled{false}, release{false};
    std::thread idle([&] {
        { const quiesce::BurstScope scope; }
        polled.store(true, std::memory_order_release);
        spin_until(release);
    });
    spin_until(polled);
    void* p = ::mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ASSERT_NE(p, MAP_FAILED);
    const uint64_t before = quiesce::grace_periods();
    {
        const quiesce::BurstScope own;
        EXPECT_EQ(::munmap(p, 4096), 0);
    }
    EXPECT_EQ(quiesce::grace_periods(), before + 1);  // it did go through the wrapper
    release.store(true, std::memory_order_release);
    idle.join();
}

// Threads that polled and exited give their slot back: more of them than there are slots,
// one after another, all get one.
TEST(Quiesce, ExitedPollersGiveTheirSlotBack) {
    for (int i = 0; i < 1500; ++i) {
        std::thread t([] { const quiesce::BurstScope scope; });
        t.join();
    }
    void* p = ::mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ASSERT_NE(p, MAP_FAILED);
    EXPECT_EQ(::munmap(p, 4096), 0);
}

}  // namespace
}  // namespace pomelo::drivers
