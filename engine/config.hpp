// Engine configuration: the protocol server's settings plus how the engine is laid out.
#pragma once

#include <cstdint>

#include "engine/app.hpp"
#include "protocol/server/config.hpp"

namespace pomelo::engine {

struct EngineConfig {
    server::Config server;
    uint16_t workers = 1;           // worker lcores, one shard each
    uint16_t burst = 32;            // packets per RX/TX burst
    uint32_t mbufs = 16383;         // mbuf pool size (per engine)
    uint32_t ring_size = 4096;      // worker rings (power of two)
    uint32_t control_ring_size = 8192;  // handshake packets to the control thread; beyond it a flood is dropped
    uint64_t stats_interval_ns = 1'000'000'000;  // stats line; 0 = none
    uint64_t shutdown_grace_ns = 2'000'000'000;  // time for the DISCONNECTs on SIGINT/SIGTERM
    ApplicationFactory app;
};

}  // namespace pomelo::engine
