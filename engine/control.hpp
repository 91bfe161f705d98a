// The control thread: the server's handshake (token decryption, the expensive XChaCha20,
// kept off the workers), the global capacity and client-id accounting, and statistics.
// Workers forward REQUEST/RESPONSE datagrams from unknown addresses; accepted connections go
// back to the worker that owns the address through its new-peer ring.
#pragma once

#include <rte_ring.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <vector>

#include "engine/clock.hpp"
#include "engine/event_log.hpp"
#include "engine/stats.hpp"
#include "engine/token_journal.hpp"
#include "engine/worker.hpp"
#include "protocol/server/handshake.hpp"

namespace pomelo::engine {

// Everything the statistics line and telemetry show, aggregated once per interval.
struct EngineSnapshot {
    WorkerStats workers;               // summed over workers
    std::vector<WorkerStats> per_worker;
    std::vector<double> busy_share;    // per worker: busy_ns / loop_ns over the last interval
    ControlStats control;
    uint64_t at_ns = 0;
    double interval_s = 0;
    double rx_pps = 0, tx_pps = 0, handshakes_per_s = 0;
    unsigned mbufs_free = 0, mbufs_total = 0;
    unsigned control_ring_used = 0, control_ring_size = 0;
};

class Control {
public:
    Control(const WorkerShared& shared);
    ~Control();

    // Starts the handshake and opens the token journal (if configured), restoring the tokens
    // that connected before a restart. False with a one-line `error`.
    bool start(std::string& error);

    // Runs on the main lcore until the engine is asked to stop and the workers drained.
    void run(const std::atomic<bool>& stop_requested);
    // The same as `stop_requested` turning true (async-signal-safe).
    void request_stop() { stop_.store(true, std::memory_order_relaxed); }

    EngineSnapshot snapshot() const;

private:
    void handle(rte_mbuf** pkts, unsigned n, const Now& now);
    void hand_over(server::NewPeer** accepted, const uint16_t* owners, unsigned n);
    void collect_closed();
    // DENIEDs sent and the logged refusal counters, before and after one handshake datagram.
    struct Refusals {
        uint64_t n[5] = {};
    };
    Refusals refusals() const;
    void log_refusal(const Refusals& before, const wire::Address& from, uint64_t now_ns);
    struct {
        wire::AddressKey address;
        unsigned reason = 0;
        uint64_t at_ns = 0;
    } last_deny_;  // the last deny line printed, to leave out its repeats
    void maintain_journal();
    void publish(const Now& now, bool print);

    WorkerShared shared_;
    TscClock clock_;
    server::Handshake handshake_;
    std::unique_ptr<crypto::BurstAead> aead_;
    std::unique_ptr<class MbufOutbox> outbox_;
    TokenJournal journal_;
    server::NewPeer scratch_;  // the handshake writes an accepted connection here first
    uint16_t origin_ = 0;  // the worker of the datagram being handled: replies leave through it
    ControlStats local_;
    std::atomic<bool> stop_{false};
    EventLog log_;
    mutable std::mutex snapshot_mutex_;  // control thread writes, telemetry thread reads
    EngineSnapshot snapshot_;
    EngineSnapshot previous_;
};

}  // namespace pomelo::engine
