// A hashed timing wheel over a fixed set of timer ids (peer slots, client slots).
//
// Each id has at most one pending deadline. expire(now) visits only the slots whose time has
// passed, so a tick costs O(timers due), not O(timers): 100,000 peers pinging at 10 Hz cost
// 10,000 visits per 100 ms whether the wheel is ticked every microsecond or every 10 ms.
// Deadlines further out than one turn of the wheel are kept and revisited each turn.
// Called again within the same tick, it walks the current slot only if a timer of that slot
// can be due by now (the earliest not-yet-due deadline of the tick is remembered), so a
// loop that ticks every microsecond does not re-walk the slot each time. visits() counts
// the timers looked at, for tests and profiles. No allocation after construction, except in
// grow(), for a caller that adds ids on a rare path.
#pragma once

#include <cstdint>
#include <vector>

#include "protocol/page_alloc.hpp"

namespace pomelo {

class TimerWheel {
public:
    static constexpr uint32_t kNone = UINT32_MAX;

    // `capacity` ids, `slots` buckets (power of two) of `granularity_ns` each.
    TimerWheel(uint32_t capacity, uint32_t slots = 256, uint64_t granularity_ns = 1'000'000)
        : nodes_(capacity), heads_(slots, kNone), mask_(slots - 1), granularity_(granularity_ns) {}

    // Ids 0..capacity-1 from now on (it never shrinks). Pending timers are kept; allocates
    // (geometrically, so growing by small steps costs O(1) amortised per id). Throws
    // std::bad_alloc, leaving the wheel unchanged.
    void grow(uint32_t capacity) {
        if (capacity > nodes_.size()) nodes_.resize(capacity);
    }
    uint32_t capacity() const { return static_cast<uint32_t>(nodes_.size()); }
    // Bytes of its node and bucket arrays.
    size_t bytes() const { return nodes_.capacity() * sizeof(Node) + heads_.capacity() * sizeof(uint32_t); }

    void schedule(uint32_t id, uint64_t due_ns) {
        cancel(id);
        Node& n = nodes_[id];
        n.due = due_ns;
        const uint64_t tick = due_ns / granularity_;
        // Never place a timer behind the cursor: it would wait a whole turn.
        const uint64_t slot_tick = started_ && tick < cursor_ ? cursor_ : tick;
        link(id, static_cast<uint32_t>(slot_tick & mask_));
        if (slot_tick == cursor_ && due_ns < cursor_min_due_) cursor_min_due_ = due_ns;
        ++armed_;
    }

    void cancel(uint32_t id) {
        Node& n = nodes_[id];
        if (n.slot == kNone) return;
        if (n.prev != kNone) nodes_[n.prev].next = n.next;
        else heads_[n.slot] = n.next;
        if (n.next != kNone) nodes_[n.next].prev = n.prev;
        n.prev = n.next = n.slot = kNone;
        --armed_;
    }

    bool armed(uint32_t id) const { return nodes_[id].slot != kNone; }
    uint64_t due(uint32_t id) const { return nodes_[id].due; }
    uint32_t size() const { return armed_; }
    // Timers looked at by expire() since construction: the wheel's cost.
    uint64_t visits() const { return visits_; }

    // Calls fn(id) for every timer with due <= now, each once, cancelled before the call (fn
    // may schedule it again). Returns the number fired.
    template <class Fn>
    uint32_t expire(uint64_t now_ns, Fn&& fn) {
        const uint64_t now_tick = now_ns / granularity_;
        if (!started_) {
            started_ = true;
            cursor_ = now_tick;
        }
        // Still in the tick walked last time and nothing of it is due yet: nothing to do.
        if (now_tick == cursor_ && now_ns < cursor_min_due_) return 0;
        uint32_t fired = 0;
        uint64_t min_due = UINT64_MAX;  // earliest deadline left in the current tick's slot
        // At most one full turn: beyond that every slot has been visited once.
        const uint64_t last = now_tick - cursor_ > mask_ ? cursor_ + mask_ : now_tick;
        for (uint64_t t = cursor_; t <= last; ++t) {
            const uint32_t slot = static_cast<uint32_t>(t & mask_);
            uint32_t id = heads_[slot];
            // Timers rescheduled by fn into this same slot are appended at the head, so the
            // walk uses the successor taken before the call.
            while (id != kNone) {
                const uint32_t next = nodes_[id].next;
                ++visits_;
                if (nodes_[id].due <= now_ns) {
                    cancel(id);
                    fn(id);
                    ++fired;
                } else if (slot == (now_tick & mask_) && nodes_[id].due < min_due) {
                    min_due = nodes_[id].due;
                }
                id = next;
            }
        }
        cursor_ = now_tick;
        // A timer fn rescheduled into the current tick was not walked: look again next time.
        cursor_min_due_ = fired ? 0 : min_due;
        return fired;
    }

private:
    struct Node {
        uint64_t due = 0;
        uint32_t prev = kNone, next = kNone, slot = kNone;
    };

    void link(uint32_t id, uint32_t slot) {
        Node& n = nodes_[id];
        n.slot = slot;
        n.prev = kNone;
        n.next = heads_[slot];
        if (n.next != kNone) nodes_[n.next].prev = id;
        heads_[slot] = id;
    }

    std::vector<Node, PageAllocator<Node>> nodes_;  // grows: see page_alloc.hpp
    std::vector<uint32_t> heads_;
    uint64_t mask_;
    uint64_t granularity_;
    uint64_t cursor_ = 0;
    uint64_t cursor_min_due_ = 0;  // earliest unfired deadline in the cursor's tick (0: walk it)
    uint64_t visits_ = 0;
    bool started_ = false;
    uint32_t armed_ = 0;
};

}  // namespace pomelo
