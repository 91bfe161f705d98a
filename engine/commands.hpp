// Administration commands to the workers (telemetry /pomelo/peers and /pomelo/disconnect).
// Workers own their peers, so a requester (a telemetry thread) never reads a shard: it puts a
// command into every worker's command ring and waits for the answers. A worker looks at its
// ring once per loop (one load of the ring's head when empty): no lock on the data path.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "protocol/server/shard.hpp"
#include "protocol/wire/address.hpp"

namespace pomelo::engine {

// One connection as a worker reports it.
struct PeerInfo {
    uint64_t client_id = 0;  // the token's client id, as netcode.io's unsigned 64-bit value
    wire::Address address;
    uint16_t worker = 0;
    server::PeerState state = server::PeerState::free;
    uint64_t rtt_ns = 0;  // mean of the last PING/PONG round trips; 0 before the first
};

struct WorkerCommand {
    enum class Kind : uint8_t { list_peers, disconnect };
    Kind kind = Kind::list_peers;
    uint64_t client_id = 0;  // list_peers: the smallest client id wanted; disconnect: whose
    unsigned limit = 0;      // list_peers: at most this many, the smallest client ids

    // The worker's answer, valid once `done` (release/acquire).
    std::vector<PeerInfo> peers;  // list_peers: ascending client id
    uint64_t total = 0;           // list_peers: every peer of the worker, whatever its id
    bool found = false;           // disconnect: it had the client and began the disconnect
    std::atomic<bool> done{false};
};

// What a command ring carries: a heap-allocated owner, deleted by the worker after answering,
// so a requester that stopped waiting (the engine stopping) leaves nothing dangling.
using CommandBox = std::shared_ptr<WorkerCommand>;

}  // namespace pomelo::engine
