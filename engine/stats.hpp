// Statistics leave the data path through seqlocked snapshots: each worker publishes its
// counters a few times a second, the control thread reads and aggregates them. No locks and
// no shared cache lines on the hot path.
#pragma once

#include <atomic>
#include <cstring>
#include <type_traits>

#include "drivers/port.hpp"
#include "protocol/server/shard.hpp"
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

// The engine's own drops, one name per drop site (the protocol's are in Counters). Telemetry,
// the stats line and tests read these names from this one list.
#define POMELO_ENGINE_DROPS(X)                                                                   \
    X(shard_ring_full, "datagram for another worker's shard: its rx ring was full")             \
    X(tx_ring_full, "sealed datagram for the queue-owning worker: its tx ring was full")         \
    X(control_ring_full, "handshake datagram for the control thread: its ring was full")        \
    X(no_mbuf, "no mbuf in the pool to send a datagram")                                        \
    X(new_peer_ring_full, "RESPONSE left for a resend: the owning worker's new-peer ring was full") \
    X(no_new_peer_record, "RESPONSE left for a resend: no new-peer record free in its pool") \
    X(no_message_buffer, "application message to another worker: every message buffer in use")

enum class EngineDrop : uint8_t {
#define POMELO_X(name, text) name,
    POMELO_ENGINE_DROPS(POMELO_X)
#undef POMELO_X
        count_
};
inline constexpr unsigned kEngineDropCount = static_cast<unsigned>(EngineDrop::count_);
const char* name_of(EngineDrop d);

struct EngineDrops {
    uint64_t n[kEngineDropCount] = {};
    uint64_t& operator[](EngineDrop d) { return n[static_cast<unsigned>(d)]; }
    uint64_t operator[](EngineDrop d) const { return n[static_cast<unsigned>(d)]; }
    uint64_t total() const {
        uint64_t t = 0;
        for (uint64_t v : n) t += v;
        return t;
    }
    EngineDrops& operator+=(const EngineDrops& o) {
        for (unsigned i = 0; i < kEngineDropCount; ++i) n[i] += o.n[i];
        return *this;
    }
};

struct WorkerStats {
    Counters protocol;
    drivers::PortStats port;      // the device queue this worker polls, if any
    EngineDrops drops;
    uint32_t peers[4] = {};       // by server::PeerState (free unused)
    uint64_t rtt_sum_ns = 0;      // over peers with RTT samples
    uint64_t rtt_peers = 0;
    uint64_t rtt_max_ns = 0;      // the largest peer RTT mean over about the last second
    uint64_t handshakes_forwarded = 0;
    uint64_t loops = 0;
    uint64_t timer_visits = 0;    // timer-wheel entries looked at (cost of the timer pass)
    uint64_t messages_posted = 0;    // application messages this worker sent to other workers
    uint64_t messages_received = 0;  // and received from them
    uint64_t ticks = 0;              // Application::on_tick calls
    uint32_t rtt_buckets[server::Shard::kRttBuckets] = {};  // peers by RTT (Shard::Summary)
    uint64_t loop_ns = 0;         // time in the worker loop
    uint64_t busy_ns = 0;         // of which in iterations that moved a datagram or a new peer

    WorkerStats& operator+=(const WorkerStats& o);
};

struct ControlStats {
    Counters handshake;
    EngineDrops drops;
    uint64_t token_decrypts = 0;
    uint32_t pending = 0;
    uint32_t connected = 0;
    uint64_t accepted = 0;        // connections handed to workers
    uint64_t journal_errors = 0;  // token journal writes that failed (logged once)
};

}  // namespace pomelo::engine
