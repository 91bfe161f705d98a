// A worker lcore: one shard of the server's connections and the l3fwd-shaped loop that runs
// it: RX burst -> receive pass (one AEAD burst) -> application -> timers -> send pass (one
// AEAD burst) -> TX burst. A worker that owns a device queue also does that queue's I/O:
// with fewer queues than workers, the queue's worker hands each datagram to the shard that
// owns its source address (a keyed hash) through that shard's ring.
#pragma once

#include <rte_ring.h>

#include <atomic>
#include <memory>
#include <vector>

#include "drivers/port.hpp"
#include "engine/app.hpp"
#include "engine/clock.hpp"
#include "engine/commands.hpp"
#include "engine/config.hpp"
#include "engine/stats.hpp"
#include "protocol/batch_outbox.hpp"
#include "protocol/flat_map.hpp"
#include "protocol/server/shard.hpp"

namespace pomelo::engine {

class Worker;

// The rings between lcores. Each is single-producer/single-consumer unless noted.
struct WorkerRings {
    rte_ring* rx = nullptr;         // datagrams for this shard from the queues' workers (multi-producer)
    rte_ring* tx = nullptr;         // datagrams to send on this worker's queue (multi-producer)
    rte_ring* new_peers = nullptr;  // server::NewPeer* accepted by the control thread
    rte_ring* closed = nullptr;     // ClosedPeer elements: connections that ended
    rte_ring* messages = nullptr;   // AppMessage* from other workers' applications (multi-producer)
    rte_ring* commands = nullptr;   // CommandBox* from administration (multi-producer)
};

// An application message between workers (WorkerContext::post), in the engine's message pool.
struct AppMessage {
    uint16_t from;
    uint16_t size;
    uint8_t data[kMaxMessageSize];
};

// A connection a shard ended, for the control thread's accounting (client id, address) and
// its log (reason: a server::CloseReason, or kNeverStarted).
struct ClosedPeer {
    int64_t client_id;
    wire::Address address;
    uint8_t reason = kNeverStarted;
    static constexpr uint8_t kNeverStarted = 0xff;  // the shard could not take it
};
static_assert(sizeof(ClosedPeer) % 4 == 0, "rte_ring elements are multiples of 4 bytes");

// What all workers share, read-only once running.
struct WorkerShared {
    const EngineConfig* config = nullptr;
    drivers::Port* port = nullptr;
    rte_mempool* mbufs = nullptr;
    rte_mempool* new_peer_pool = nullptr;
    rte_ring* control_in = nullptr;  // handshake datagrams to the control thread (multi-producer)
    std::vector<Worker*> workers;
    const KeyedHash* owner_hash = nullptr;
    rte_mempool* message_pool = nullptr;  // AppMessage buffers, shared by all workers
};

class Worker final : private server::ShardHooks, private WorkerContext {
public:
    Worker(uint16_t index, const WorkerShared& shared, WorkerRings rings, int io_queue, bool distribute);
    ~Worker() override;

    // The lcore's loop; returns when stop() was called (after a shutdown, once empty).
    int run();
    void shutdown() { shutdown_.store(true, std::memory_order_release); }
    void stop() { stop_.store(true, std::memory_order_relaxed); }
    bool drained() const { return drained_.load(std::memory_order_acquire); }

    const WorkerRings& rings() const { return rings_; }
    WorkerStats stats() const { return published_.read(); }
    uint16_t index() const { return index_; }
    // The worker whose device queue carries this worker's traffic.
    uint16_t io_worker() const { return io_worker_; }
    void set_io_worker(uint16_t w) { io_worker_ = w; }
    void set_shared_workers(const std::vector<Worker*>& all);

private:

    void poll_device();
    // A received burst for this shard: receive_pass, or bare_pass with EngineConfig::bare_loop.
    void deliver(rte_mbuf** pkts, const wire::Address* from, const uint16_t* local, const drivers::LinkHop* hop,
                 uint16_t n) {
        if (bare_scratch_) bare_pass(pkts, from, local, hop, n);
        else receive_pass(pkts, from, local, hop, n);
    }
    void receive_pass(rte_mbuf** pkts, const wire::Address* from, const uint16_t* local, const drivers::LinkHop* hop,
                      uint16_t n);
    // EngineConfig::bare_loop: echoes connected peers' PAYLOADs with nothing but the AEAD;
    // hands the rest to receive_pass.
    void bare_pass(rte_mbuf** pkts, const wire::Address* from, const uint16_t* local, const drivers::LinkHop* hop,
                   uint16_t n);
    void accept_new_peers();
    void serve_commands();
    void publish();
    uint16_t owner_of(const wire::Address& a) const;
    void transmit(rte_mbuf** pkts, wire::Address* to, uint16_t* local, drivers::LinkHop* via, uint16_t n);
    // Application ticks and inter-worker messages (WorkerContext::post).
    void tick();
    void deliver_messages();
    void flush_messages();
    void flush_messages_to(uint16_t worker);

    // ShardHooks
    void on_connect(server::PeerId id, int64_t client_id, const wire::UserData& user_data) override;
    void on_payload(server::PeerId id, std::span<const uint8_t> payload) override;
    void on_close(server::PeerId id, int64_t client_id, const wire::Address& address,
                  server::CloseReason reason) override;
    // WorkerContext
    uint16_t worker() const override { return index_; }
    uint16_t workers() const override { return static_cast<uint16_t>(shared_.workers.size()); }
    bool send(pomelo::PeerId peer, std::span<const uint8_t> payload) override;
    bool disconnect(pomelo::PeerId peer) override;
    std::optional<pomelo::PeerInfo> peer(pomelo::PeerId peer) const override;
    bool post(uint16_t to, std::span<const uint8_t> message) override;
    uint64_t now_ns() const override { return now_.ns; }

    // Scratch for one burst, kept here rather than on the stack: wire::Address and the
    // protocol structs zero-initialise, and arrays of them on the stack cost a memset of
    // kilobytes per loop iteration, busy or not.
    struct Burst {
        rte_mbuf* pkts[server::Shard::kMaxBurst];
        wire::Address addr[server::Shard::kMaxBurst];
        uint16_t local[server::Shard::kMaxBurst];
        drivers::LinkHop hop[server::Shard::kMaxBurst];
    };
    Burst rx_, ring_in_, mine_, tx_, learn_, bare_, bare_rest_;
    struct BareScratch {
        crypto::AeadOp ops[server::Shard::kMaxBurst];
        wire::PacketAd ads[server::Shard::kMaxBurst];
        server::Peer* peers[server::Shard::kMaxBurst];
    };
    std::unique_ptr<BareScratch> bare_scratch_;  // only with EngineConfig::bare_loop
    rte_mbuf* by_owner_[kMaxWorkers][server::Shard::kMaxBurst];
    server::RxDatagram datagrams_[server::Shard::kMaxBurst];

    uint16_t index_;
    WorkerShared shared_;
    WorkerRings rings_;
    int io_queue_;
    bool distribute_;
    uint16_t io_worker_;
    TscClock clock_;
    Now now_;
    std::unique_ptr<crypto::BurstAead> aead_;
    std::unique_ptr<class MbufOutbox> outbox_;
    std::unique_ptr<server::Shard> shard_;
    std::unique_ptr<Application> app_;
    std::vector<ClosedPeer> closed_;  // connections ended, not yet taken by the control thread
    std::atomic<bool> shutdown_{false}, stop_{false}, drained_{false};
    bool shutdown_started_ = false;
    bool worked_ = false;  // this loop iteration moved a datagram or a new peer (busy share)
    uint64_t next_publish_ns_ = 0;
    uint64_t rtt_max_ns_ = 0, rtt_max_reset_ns_ = 0, published_max_ = 0;  // WorkerStats::rtt_max_ns
    uint64_t tick_interval_ns_ = 0, tick_start_ns_ = 0, next_tick_ns_ = 0;
    // Messages posted to each worker, handed to its ring in one burst.
    static constexpr unsigned kMessageBurst = 32;
    struct Outgoing {
        AppMessage* items[kMessageBurst];
        unsigned n = 0;
    };
    std::vector<Outgoing> outgoing_;
    WorkerStats local_;
    Published<WorkerStats> published_;
};

}  // namespace pomelo::engine
