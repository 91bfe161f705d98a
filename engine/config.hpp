// Engine configuration: the protocol server's settings plus how the engine is laid out.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "engine/app.hpp"
#include "protocol/server/config.hpp"

namespace pomelo::engine {

inline constexpr uint16_t kMaxWorkers = 64;

struct EngineConfig {
    server::Config server;
    uint16_t workers = 1;           // worker lcores, one shard each, 1..kMaxWorkers
    uint16_t burst = 32;            // packets per RX/TX burst
    uint32_t mbufs = 16383;         // mbuf pool size (per engine)
    uint32_t ring_size = 2048;      // worker rings (power of two)
    // Handshake datagrams queued for the control thread: what a REQUEST flood can hold of the
    // pool. ~2 ms of the control thread's work; more only adds latency under a flood.
    uint32_t control_ring_size = 1024;
    uint64_t stats_interval_ns = 1'000'000'000;  // stats line; 0 = none
    uint64_t shutdown_grace_ns = 2'000'000'000;  // time for the DISCONNECTs on SIGINT/SIGTERM
    ApplicationFactory app;
    uint32_t tick_hz = 0;             // Application::on_tick per worker; 0 = none
    // Inter-worker application messages in flight (all workers): the message pool. Each
    // worker's message ring holds the whole pool, so a post never finds a ring full.
    uint32_t message_buffers = 4095;
    // Restart safety (§9): a token that connected must never connect again, also after a
    // restart. Either a token journal (engine/token_journal.hpp) keeps them on disk, or, with
    // no journal, every token that may predate this start is refused: those expiring before
    // start + max_token_lifetime_ms (the backend's longest token lifetime). One is required.
    std::string token_journal;
    uint64_t max_token_lifetime_ms = 0;
    // Benchmark baseline (perf/bench.sh), not a server: PAYLOADs of connected peers are echoed
    // by rx burst -> AEAD open burst -> AEAD seal burst -> tx burst and nothing else (no replay
    // window, no application, no statistics): the physical limit of the data path on this
    // port, against which the engine's echo is measured. Handshakes, PINGs and timers run as usual.
    bool bare_loop = false;
    // Journals read at start, never written: those of the keys in server.more_private_keys
    // (key rotation), so their tokens that connected stay refused while those keys are listed.
    std::vector<std::string> more_token_journals;
    // Connection log lines (connect, deny, disconnect) a second at most; 0 = none.
    uint32_t log_rate = 20;
};

}  // namespace pomelo::engine
