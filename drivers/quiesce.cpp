#include "drivers/quiesce.hpp"

#include <linux/membarrier.h>
#include <rte_pause.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <mutex>

namespace pomelo::drivers::quiesce {

namespace {

// Polling threads alive at once; slots of exited threads are reused.
constexpr unsigned kSlots = 512;
BurstSlot g_slots[kSlots];
std::atomic<unsigned> g_high{0};  // slots [0, g_high) have been claimed at some point
std::atomic<uint64_t> g_grace{0};

// How the writer makes every running thread's earlier stores visible (and its later loads
// fresh): membarrier where the kernel has it, else the TLB-shootdown IPIs of an mprotect.
enum Barrier : int { kUnarmed, kExpedited, kGlobal, kShootdown };
std::atomic<int> g_barrier{kUnarmed};
std::once_flag g_arm_once;
std::mutex g_shootdown_mutex;
volatile char* g_shootdown_page = nullptr;

long membarrier(int cmd) { return ::syscall(SYS_membarrier, cmd, 0, 0); }

void arm_barrier() {
    std::call_once(g_arm_once, [] {
        const long cmds = membarrier(MEMBARRIER_CMD_QUERY);
        int how = kShootdown;
        if (cmds > 0 && (cmds & MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED) &&
            membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED) == 0)
            how = kExpedited;
        else if (cmds > 0 && (cmds & MEMBARRIER_CMD_GLOBAL))
            how = kGlobal;
        if (how == kShootdown) {
            void* p = ::mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            if (p == MAP_FAILED) {
                std::fputs("pomelo: no membarrier and no page for a TLB shootdown barrier\n", stderr);
                std::abort();
            }
            g_shootdown_page = static_cast<volatile char*>(p);
        }
        g_barrier.store(how, std::memory_order_release);
    });
}

void heavy_barrier() {
    switch (g_barrier.load(std::memory_order_acquire)) {
        case kExpedited:
            if (membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED) == 0) return;
            break;
        case kGlobal:
            if (membarrier(MEMBARRIER_CMD_GLOBAL) == 0) return;
            break;
        default:
            break;
    }
    // Write-protecting a page this process has touched interrupts every CPU running one of
    // its threads (TLB shootdown), which serialises them.
    std::lock_guard lock(g_shootdown_mutex);
    if (g_shootdown_page == nullptr) {
        void* p = ::mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) std::abort();
        g_shootdown_page = static_cast<volatile char*>(p);
    }
    ::mprotect(const_cast<char*>(g_shootdown_page), 4096, PROT_READ | PROT_WRITE);
    *g_shootdown_page = 1;
    ::mprotect(const_cast<char*>(g_shootdown_page), 4096, PROT_READ);
}

// Gives the slot back when its thread exits.
struct SlotRelease {
    BurstSlot* slot = nullptr;
    ~SlotRelease() {
        if (slot == nullptr) return;
        detail::t_slot = nullptr;
        slot->taken.store(false, std::memory_order_release);
    }
};
thread_local SlotRelease t_release;

}  // namespace

namespace detail {

constinit thread_local BurstSlot* t_slot = nullptr;

BurstSlot* claim_slot() noexcept {
    arm_barrier();  // before the slot is visible: a writer that sees it can use the barrier
    for (unsigned i = 0; i < kSlots; ++i) {
        bool expected = false;
        if (g_slots[i].taken.load(std::memory_order_relaxed) ||
            !g_slots[i].taken.compare_exchange_strong(expected, true, std::memory_order_acq_rel))
            continue;
        // A locked read-modify-write (a full barrier): pairs with the fence in
        // wait_for_bursts, so a writer either sees this slot or this thread sees its flags.
        unsigned high = g_high.load(std::memory_order_relaxed);
        while (high < i + 1 && !g_high.compare_exchange_weak(high, i + 1, std::memory_order_seq_cst)) {
        }
        g_high.fetch_add(0, std::memory_order_seq_cst);
        t_release.slot = &g_slots[i];
        t_slot = &g_slots[i];
        return t_slot;
    }
    std::fprintf(stderr, "pomelo: more than %u threads polling devices at once\n", kSlots);
    std::abort();
}

}  // namespace detail

void wait_for_bursts() noexcept {
    std::atomic_thread_fence(std::memory_order_seq_cst);
    const unsigned high = g_high.load(std::memory_order_seq_cst);
    if (high == 0) return;  // nothing polls in this process (yet)
    heavy_barrier();
    const BurstSlot* self = detail::t_slot;
    for (unsigned i = 0; i < high; ++i) {
        const BurstSlot& slot = g_slots[i];
        if (&slot == self) continue;
        const uint64_t seen = slot.seq.load(std::memory_order_acquire);
        if ((seen & 1) == 0) continue;
        // In a burst: wait for it to end (the poller may be preempted; yield to it).
        for (unsigned spins = 0; slot.seq.load(std::memory_order_acquire) == seen; ++spins) {
            if (spins < 256)
                rte_pause();
            else
                ::sched_yield();
        }
    }
    g_grace.fetch_add(1, std::memory_order_relaxed);
}

uint64_t grace_periods() noexcept { return g_grace.load(std::memory_order_relaxed); }

}  // namespace pomelo::drivers::quiesce

// The process's munmap, which shared objects loaded later (DPDK's PMDs) bind to because the
// executable exports it (drivers/meson.build): waits out the bursts in progress, then unmaps.
// glibc's own internal unmaps (malloc) do not come through here and need not.
extern "C" int munmap(void* addr, size_t length) noexcept {
    pomelo::drivers::quiesce::wait_for_bursts();
    return static_cast<int>(::syscall(SYS_munmap, addr, length));
}
