// The in-process engine bed: engine::Engine with its Workers on real lcores and its Control
// thread, serving an EthdevPort on one end of a net_ring cable; on the other end a second
// EthdevPort carries independent peers (tests/support/independent_peer.hpp), each on its own
// address in 198.19.0.0/16 (the server's addresses are 198.18.0.x). What the server sends is
// opened by the peers with libsodium directly; tests can also put raw frames on the cable.
//
// Threads: the test thread drives the peers (pump()); Engine::run() runs on a thread of its
// own (the control thread), its workers on the EAL worker lcores. EAL must have at least
// `workers` worker lcores (see engine_bed_main.cpp). One bed at a time per process: the engine
// names its rings and pools.
#pragma once

#include <rte_mbuf.h>
#include <rte_ring.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "drivers/ethdev_port.hpp"
#include "engine/engine.hpp"
#include "tests/support/independent_peer.hpp"

namespace pomelo::test::bed {

// 198.18.0.(1+i):40000, the server's i-th --bind address.
wire::Address server_address(unsigned i);
// 198.19.(i/200).(1+i%200):(50000+i), the peer side's i-th address.
wire::Address peer_address(unsigned i);

inline constexpr uint64_t kProtocolId = 0x1122334455667788ull;

struct BedOptions {
    uint16_t workers = 1;
    uint16_t queues = 1;                                    // cable queue pairs = server port queues
    std::vector<wire::Address> binds = {server_address(0)};
    uint32_t max_clients = 64;
    uint32_t mbufs = 16383;                                 // the engine's pool, as pomelo-server sizes it
    uint32_t control_ring_size = engine::EngineConfig{}.control_ring_size;
    uint64_t shutdown_grace_ns = 2'000'000'000;
    uint64_t stats_interval_ns = 200'000'000;               // how fresh snapshot() is
    uint32_t peer_addresses = 256;
    int32_t token_timeout_s = 15;
    std::string token_journal;  // EngineConfig::token_journal (empty: one of the bed's own, removed after)
    crypto::Key key = crypto::Key::random();
    uint32_t cable_ring = 4096;                             // per queue, each way
    engine::ApplicationFactory app;                         // empty: echo
    uint32_t tick_hz = 0;
};

class EngineBed;

// One independent peer on one peer-side address, talking to one server address.
class BedClient {
public:
    BedClient(EngineBed& bed, unsigned address_index, const Bytes& token, const wire::Address& server,
              uint16_t queue = 0);
    ~BedClient();
    BedClient(const BedClient&) = delete;
    BedClient& operator=(const BedClient&) = delete;

    void start();                               // sends the REQUEST
    void send(const Bytes& datagram);           // on `queue`
    void send_payload(const Bytes& data) { send(peer.payload(data)); }
    void send_disconnect(unsigned copies = 10);  // §13.6

    IndependentPeer peer;
    const unsigned index;
    const wire::Address address;
    const wire::Address server;
    uint16_t queue;
    // A real client drops datagrams from any other source; they are kept here instead.
    std::vector<Bytes> wrong_source;
    uint64_t sent = 0;
    // While held, what the peer would send (answers, resends) is queued here instead.
    bool hold = false;
    std::vector<Bytes> held;
    void release() {
        hold = false;
        for (const Bytes& d : held) send(d);
        held.clear();
    }

private:
    friend class EngineBed;
    EngineBed& bed_;
    std::chrono::steady_clock::time_point last_resend_{};
};

class EngineBed {
public:
    explicit EngineBed(BedOptions options);
    ~EngineBed();
    EngineBed(const EngineBed&) = delete;
    EngineBed& operator=(const EngineBed&) = delete;

    // Engine lifetime. start() creates the engine if there is none and launches run().
    void start();
    void request_stop();
    bool run_returned() const { return returned_.load(); }
    // Waits for run() (pumping the peers meanwhile); its return code and how long it took
    // from request_stop().
    int join(uint64_t* stop_to_return_ns = nullptr);
    // Stops and destroys the engine; start() then builds a new one with the same options
    // (same key) over the same port.
    void destroy_engine();
    engine::Engine* engine() { return engine_.get(); }
    engine::EngineSnapshot snapshot() const { return engine_ ? engine_->snapshot() : last_snapshot_; }
    // The snapshot after the next publish (pumping meanwhile).
    engine::EngineSnapshot fresh_snapshot();

    const BedOptions& options() const { return options_; }
    BedOptions& mutable_options() { return options_; }  // before start()

    // A token for `client_id` listing `listed` (default: bind 0), minted with the bed's key.
    Bytes mint(int64_t client_id, std::optional<wire::Address> listed = std::nullopt, int32_t timeout_s = 0) const;

    // Peers: every datagram the peer port receives goes to the client on its address. An
    // idle pump sleeps 50 us (leaving the CPU to the lcores) unless `busy`.
    void pump(bool busy = false);
    // Pumps until done() or `limit` (a generous bound that only ends a failing test).
    bool until(const std::function<bool()>& done, std::chrono::milliseconds limit = std::chrono::seconds(20));
    void pump_for(std::chrono::milliseconds d);
    // Starts every client's handshake and pumps until all are connected (false at `limit`).
    bool connect(const std::vector<BedClient*>& clients, std::chrono::milliseconds limit = std::chrono::seconds(10));
    // Sends `n` PAYLOADs of `size` bytes (contents from `seed`) and waits for their echoes;
    // returns how many came back byte-identical, in order.
    size_t echo(BedClient& c, size_t n, size_t size = 200, uint32_t seed = 1);
    uint64_t unclaimed() const { return unclaimed_; }  // datagrams to peer addresses with no client

    // Raw cable access, for floods: frames built here (Ethernet/IPv4/UDP, software checksums)
    // from any source to `to`, in mbufs of `pool`.
    rte_mbuf* frame(rte_mempool* pool, const wire::Address& from, const wire::Address& to,
                    std::span<const uint8_t> payload) const;
    // Puts frames on the wire towards the server (queue `q`); returns how many fit.
    unsigned inject(rte_mbuf** frames, unsigned n, uint16_t q = 0);
    // A flood: copies of one frame whose UDP source port steps by one per copy (UDP checksum
    // 0, allowed over IPv4), so each copy comes from another address.
    struct Flood {
        Bytes frame;
        uint16_t next_port = 1024;
        uint64_t sent = 0, not_sent = 0;  // onto the cable / pool empty or cable full
    };
    Flood make_flood(const wire::Address& from, const wire::Address& to, std::span<const uint8_t> payload) const;
    // Up to n copies, in mbufs of `pool`; returns how many went onto the cable.
    unsigned flood(Flood& f, rte_mempool* pool, unsigned n, uint16_t q = 0);
    unsigned towards_server(uint16_t q = 0) const { return rte_ring_count(c2s_[q]); }
    unsigned cable_free(uint16_t q = 0) const { return rte_ring_free_count(c2s_[q]); }

    rte_mempool* server_pool() const { return server_pool_; }
    rte_mempool* peer_pool() const { return peer_pool_; }
    drivers::Port& server_port() { return *server_port_; }

private:
    friend class BedClient;
    void attach(BedClient* c);
    void detach(BedClient* c);
    void transmit(BedClient& c, const Bytes& datagram);

    BedOptions options_;
    std::string own_journal_;  // the journal used when options_.token_journal is empty
    std::string id_;
    std::vector<rte_ring*> c2s_, s2c_;
    std::string server_dev_, peer_dev_;
    rte_ether_addr server_mac_{}, peer_mac_{};
    rte_mempool* server_pool_ = nullptr;
    rte_mempool* peer_pool_ = nullptr;
    std::unique_ptr<drivers::Port> server_port_, peer_port_;
    std::unique_ptr<engine::Engine> engine_;
    std::thread runner_;
    std::atomic<bool> stop_{false}, returned_{false};
    int rc_ = 0;
    std::chrono::steady_clock::time_point stop_requested_at_{};
    uint64_t stop_to_return_ns_ = 0;
    engine::EngineSnapshot last_snapshot_;
    std::vector<BedClient*> clients_;  // by address index
    uint64_t unclaimed_ = 0;
};

// `n` bytes that differ with `seed`.
Bytes pattern(size_t n, uint32_t seed);

// Every authenticated datagram a set of peers captured, as (server-to-client key, sequence)
// pairs; returns a description of each pair seen twice (empty if none).
std::vector<std::string> repeated_nonces(const std::vector<const IndependentPeer*>& peers);

}  // namespace pomelo::test::bed
