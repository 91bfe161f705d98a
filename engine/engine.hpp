// The engine: workers on their lcores, the control thread on the main lcore, the rings and
// pools between them, and the telemetry commands. Construct after EAL init with an open port.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "engine/config.hpp"
#include "engine/control.hpp"
#include "engine/worker.hpp"

namespace pomelo::engine {

class Engine {
public:
    // Builds everything; on failure returns nullptr with a one-line `error`.
    static std::unique_ptr<Engine> create(const EngineConfig& config, drivers::Port& port, rte_mempool* mbufs,
                                          std::string& error);
    ~Engine();

    // Launches the workers and runs the control thread here until `stop` turns true and every
    // connection got its DISCONNECTs (or the grace period passed). Returns 0 on a clean stop.
    int run(const std::atomic<bool>& stop);
    // Asks run() to stop as `stop` turning true would. Async-signal-safe (one atomic store).
    void request_stop();

    EngineSnapshot snapshot() const { return control_->snapshot(); }
    uint16_t workers() const { return static_cast<uint16_t>(workers_.size()); }

    // Administration from any thread but the engine's own (telemetry), answered by the
    // workers through their command rings (engine/commands.hpp). nullopt when the workers did
    // not answer within `wait` (not running: before run() or after it returned).
    struct PeerPage {
        std::vector<PeerInfo> peers;    // ascending client id, from the one asked for
        uint64_t total = 0;             // every connection of the server
        std::optional<uint64_t> next;   // where the next page starts, when there are more
    };
    // At most `limit` connections whose client id is >= `from_client_id`.
    std::optional<PeerPage> list_peers(uint64_t from_client_id, unsigned limit, std::chrono::milliseconds wait) const;
    // Begins the server-side disconnect of `client_id` (its DISCONNECTs, then the close is
    // logged with reason "disconnected by server"). False when no worker has that client.
    std::optional<bool> disconnect_client(uint64_t client_id, std::chrono::milliseconds wait) const;

private:
    Engine() = default;
    EngineConfig config_;
    KeyedHash owner_hash_;
    WorkerShared shared_;
    std::vector<std::unique_ptr<Worker>> workers_;
    std::vector<rte_ring*> rings_;
    rte_mempool* new_peer_pool_ = nullptr;
    rte_mempool* message_pool_ = nullptr;
    std::unique_ptr<Control> control_;
    std::vector<unsigned> lcores_;
};

// Registers /pomelo/* telemetry commands reading `engine`'s snapshot (one engine per process).
void register_telemetry(const Engine* engine);

}  // namespace pomelo::engine
