// Statistics leave the data path through seqlocked snapshots: each worker publishes its
// counters a few times a second, the control thread reads and aggregates them. No locks and
// no shared cache lines on the hot path.
#pragma once

#include <atomic>
#include <cstring>
#include <type_traits>

#include "drivers/port.hpp"
#include "protocol/stats.hpp"

namespace pomelo::engine {

template <class T>
class Published {
    static_assert(std::is_trivially_copyable_v<T>);

public:
    void write(const T& v) {
        const uint32_t s = seq_.load(std::memory_order_relaxed);
        seq_.store(s + 1, std::memory_order_relaxed);
        std::atomic_thread_fence(std::memory_order_release);
        std::memcpy(&data_, &v, sizeof(T));
        std::atomic_thread_fence(std::memory_order_release);
        seq_.store(s + 2, std::memory_order_release);
    }
    T read() const {
        T out;
        for (;;) {
            const uint32_t before = seq_.load(std::memory_order_acquire);
            std::memcpy(&out, &data_, sizeof(T));
            std::atomic_thread_fence(std::memory_order_acquire);
            if (!(before & 1) && seq_.load(std::memory_order_relaxed) == before) return out;
        }
    }

private:
    alignas(64) std::atomic<uint32_t> seq_{0};
    T data_{};
};

struct WorkerStats {
    Counters protocol;
    drivers::PortStats port;      // the device queue this worker polls, if any
    uint32_t peers[4] = {};       // by server::PeerState (free unused)
    uint64_t rtt_sum_ns = 0;      // over peers with RTT samples
    uint64_t rtt_peers = 0;
    uint64_t rtt_max_ns = 0;
    uint64_t ring_full = 0;       // datagrams dropped because a ring was full
    uint64_t no_mbuf = 0;         // sends dropped for want of an mbuf
    uint64_t handshakes_forwarded = 0;
    uint64_t loops = 0;

    WorkerStats& operator+=(const WorkerStats& o);
};

struct ControlStats {
    Counters handshake;
    uint64_t token_decrypts = 0;
    uint32_t pending = 0;
    uint32_t connected = 0;
    uint64_t accepted = 0;        // connections handed to workers
    uint64_t ring_full = 0;
};

}  // namespace pomelo::engine
