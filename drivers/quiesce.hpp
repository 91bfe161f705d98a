// Burst quiescence: no device memory is unmapped while a thread is inside an rx/tx burst.
//
// Why: a PMD may unmap the memory its rings live in from another thread, under a poller that
// is inside a burst. DPDK 22.11's net_memif does exactly that when its peer leaves: the EAL
// interrupt thread runs memif_disconnect, which clears ETH_MEMIF_FLAG_CONNECTED and then
// munmaps the shared regions (memif_free_regions: munmap, close, rte_free, regions[i] = NULL)
// while an lcore that read the flag a moment earlier still reads ring->head. The PMD raises no
// link-state or removal event at all (it never calls rte_eth_dev_callback_process), so there
// is nothing to react to before the unmap; checking the link before polling is the same check
// the PMD already makes, with the same race.
//
// How: the executable exports its own munmap (quiesce.cpp), which the PMD, loaded by EAL as a
// shared object, binds to. Before the real munmap it waits until every thread that was inside
// a burst has left it (a grace period, as in RCU). A thread marks a burst with BurstScope: one
// plain store into a cache line only it writes on entry, one on exit; no fence, no
// read-modify-write, no lock on the data path. The writer side pays instead: a membarrier
// (MEMBARRIER_CMD_PRIVATE_EXPEDITED) makes a poller's entry store visible before the writer
// looks, or else makes the poller's next flag load see the cleared flag. A burst that starts
// after the barrier returns without touching the regions, because the PMD cleared its
// connected flag before unmapping.
//
// Constraint: code inside a BurstScope must never wait for another thread (which could be in
// munmap, waiting for it). PMD bursts and our frame parsing take no locks.
#pragma once

#include <atomic>
#include <cstdint>

namespace pomelo::drivers::quiesce {

// One per polling thread, claimed on its first burst, released when the thread exits.
struct alignas(64) BurstSlot {
    std::atomic<uint64_t> seq{0};  // odd while the owning thread is inside a burst
    std::atomic<bool> taken{false};
};

namespace detail {
extern constinit thread_local BurstSlot* t_slot;
BurstSlot* claim_slot() noexcept;  // aborts with one line if every slot is taken
}  // namespace detail

// Marks the enclosing scope as "inside a burst" for the calling thread. Not reentrant.
class BurstScope {
public:
    BurstScope() noexcept : slot_(detail::t_slot ? detail::t_slot : detail::claim_slot()) {
        seq_ = slot_->seq.load(std::memory_order_relaxed) + 1;
        slot_->seq.store(seq_, std::memory_order_relaxed);
        // The compiler must not sink this store below the PMD's loads; the CPU is handled by
        // the writer's membarrier.
        std::atomic_signal_fence(std::memory_order_seq_cst);
    }
    ~BurstScope() { slot_->seq.store(seq_ + 1, std::memory_order_release); }
    BurstScope(const BurstScope&) = delete;
    BurstScope& operator=(const BurstScope&) = delete;

private:
    BurstSlot* slot_;
    uint64_t seq_;
};

// Returns once every other thread that was inside a BurstScope at the call has left it. What
// munmap calls; callable from any thread (the caller's own scope, if any, is not waited for).
void wait_for_bursts() noexcept;

// Grace periods waited so far (those that found at least one poller registered).
uint64_t grace_periods() noexcept;

}  // namespace pomelo::drivers::quiesce
