// A shard of the server's connections (spec §12.6-§12.8): the connected phase for the peers
// it owns. In the engine each worker lcore runs one shard; the single-threaded Server runs one.
//
// The receive path (receive_burst) runs in three stages over a burst:
//   check()   - header, lookup, type, state and replay *test*: no crypto
//   open      - one AEAD burst (crypto::BurstAead) for every surviving packet
//   deliver() - body decode, replay *commit*, liveness, state machine, application
// Nothing about a peer changes before its packet authenticates and decodes.
#pragma once

#include <cstdint>
#include <iterator>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "protocol/crypto/burst.hpp"
#include "protocol/flat_map.hpp"
#include "protocol/outbox.hpp"
#include "protocol/page_alloc.hpp"
#include "protocol/replay.hpp"
#include "protocol/rtt.hpp"
#include "protocol/server/config.hpp"
#include "protocol/server/handshake.hpp"
#include "protocol/stats.hpp"
#include "protocol/time.hpp"
#include "protocol/timer_wheel.hpp"

namespace pomelo::server {

enum class PeerState : uint8_t { free = 0, unconfirmed, connected, disconnecting };
enum class CloseReason : uint8_t { client_disconnected, timed_out, server_disconnected, server_stopped };
static_assert(Counters::kCloseReasons == static_cast<unsigned>(CloseReason::server_stopped) + 1);
const char* to_string(PeerState s);
const char* to_string(CloseReason r);
const char* name_of(CloseReason r);  // client_disconnected, timed_out, ...: for counters

// A connection handle that detects reuse of its slot.
struct PeerId {
    uint32_t slot = UINT32_MAX;
    uint32_t generation = 0;
    bool operator==(const PeerId&) const = default;
};

// Laid out for the data path and for memory (it is most of what a connection costs): on
// 64-byte lines, a send reads lines 0-1, a receive lines 0-3; the timer path's fields and the
// RTT and clock statistics follow. Fields are ordered so the struct has almost no padding.
struct alignas(64) Peer {
    // line 0
    wire::Address address;
    uint16_t local = kAnyLocal;  // the local endpoint its datagrams leave from
    PeerState state = PeerState::free;
    bool pong_sent = false;
    uint32_t generation = 0;
    uint32_t slot = 0;  // its index in the shard (fixed when its chunk is made)
    uint64_t send_sequence = 0;
    uint64_t link = 0;  // link-layer hop of its last authenticated datagram (opaque)
    int64_t client_id = 0;
    uint64_t last_recv_ns = 0;
    // line 1: what a send seals with
    wire::PacketContext ctx;
    crypto::Key send_key;  // server -> client
    // The keys prepared for the burst backend (AES-256-GCM round keys and GHASH tables), when
    // the shard has a preparer and the suite uses them; null otherwise.
    crypto::SharedPreparedKey send_prepared;
    // lines 2-3: what a receive opens and checks with
    crypto::Key recv_key;  // client -> server
    crypto::SharedPreparedKey recv_prepared;
    ReplayWindow replay;
    uint64_t connected_ns = 0;
    uint64_t timeout_ns = 0;  // 0: never (negative token timeout)
    uint64_t last_pong_ns = 0;
    uint8_t disconnects_sent = 0;
    PingTracker pings;
    ClockOffsetFilter clock_offset;  // its clock minus ours, for the application (PeerInfo)
};

// What the shard reports upward (the application, and the handshake's capacity count).
class ShardHooks {
public:
    virtual ~ShardHooks() = default;
    virtual void on_connect(PeerId id, int64_t client_id, const wire::UserData& user_data) = 0;
    virtual void on_payload(PeerId id, std::span<const uint8_t> payload) = 0;
    virtual void on_close(PeerId id, int64_t client_id, const wire::Address& address, CloseReason reason) = 0;
};

class Shard {
public:
    static constexpr uint32_t kMaxBurst = 64;
    // Peers are stored in chunks of 2^kChunkShift, made as connections arrive: memory follows
    // the peers connected (its high-water mark), not the limit. A chunk never moves, so Peer
    // pointers and PeerIds stay valid; slot s lives in chunk s >> kChunkShift.
    static constexpr uint32_t kChunkShift = 10;
    static constexpr uint32_t kChunkPeers = 1u << kChunkShift;

    // Holds at most `capacity` peers (at least 1). Nothing per peer is allocated until add().
    Shard(const Config& config, uint32_t capacity, ShardHooks& hooks, Outbox& out);
    // Connections added from now on keep their keys prepared by `backend` (the one their
    // packets are opened and sealed with): AES-256-GCM then costs no key expansion per packet.
    void set_key_preparer(crypto::BurstAead* backend) { preparer_ = backend; }

    // Takes over a connection the handshake accepted; sends its first PING (with time).
    // nullopt if the address is connected already, the shard holds capacity() peers, or a
    // new chunk was needed and could not be allocated. May allocate (a chunk of peers, a
    // larger address index and timer wheel) when no slot made so far is free.
    std::optional<PeerId> add(const NewPeer& peer, const Now& now);

    Peer* find(const wire::Address& address);
    Peer* get(PeerId id);
    PeerId id_of(const Peer& p) const;

    // Stage 1: cheap checks. ok, or the reason to drop.
    std::optional<DropReason> check(const Peer& peer, const wire::PacketHeader& header) const;
    // Stage 3: after the packet opened with peer.recv_key.
    void deliver(Peer& peer, const wire::PacketHeader& header, std::span<const uint8_t> body, const Now& now);
    // The burst pipeline: headers and lookups for the whole burst, one AEAD burst for every
    // packet of a connection, then delivery in arrival order. REQUEST and RESPONSE from
    // addresses without a connection are not handled here: their indices are written to
    // `handshake` (the caller routes them to the Handshake) and their count returned.
    uint32_t receive_burst(std::span<RxDatagram> burst, const Now& now, crypto::BurstAead& aead,
                           std::span<uint32_t> handshake);

    // Timers: PINGs at 10 Hz, timeouts, DISCONNECT resends. Visits only peers that are due.
    void update(const Now& now);

    bool send(PeerId id, std::span<const uint8_t> payload, const Now& now);
    bool disconnect(PeerId id, const Now& now);
    void disconnect_all(const Now& now);
    // Forgets every connection without sending anything (hard stop).
    void clear();

    uint32_t size() const { return size_; }
    // The most peers it holds (the limit it was made with).
    uint32_t capacity() const { return limit_; }
    // Peer slots made so far (free or not): chunks x kChunkPeers, the last chunk cut at capacity().
    uint32_t allocated() const { return allocated_; }
    uint32_t chunks() const { return static_cast<uint32_t>(chunks_.size()); }
    // Bytes the shard holds for its peers: chunks, free list, address index, timer wheel
    // (heap memory that grows with allocated(); the fixed part of the object is not counted).
    size_t bytes_reserved() const;
    uint32_t count(PeerState s) const { return summary().peers[static_cast<unsigned>(s)]; }
    // Peers by state and RTT over all peers, kept up to date as they change (no scan).
    // rtt_buckets[i]: peers whose RTT (mean of their last samples) is at most
    // kRttBucketBoundsNs[i] and above the bound before; the last bucket is above every bound.
    static constexpr uint64_t kRttBucketBoundsNs[] = {500'000,     1'000'000,   2'000'000,  5'000'000,
                                                      10'000'000,  20'000'000,  50'000'000, 100'000'000,
                                                      200'000'000, 500'000'000, 1'000'000'000};
    static constexpr unsigned kRttBuckets = std::size(kRttBucketBoundsNs) + 1;
    struct Summary {
        uint32_t peers[4] = {};
        uint64_t rtt_sum_ns = 0, rtt_peers = 0;
        uint32_t rtt_buckets[kRttBuckets] = {};
    };
    Summary summary() const;
    // The largest RTT mean any peer reached since the last call (a maximum over the peers
    // now connected cannot be kept up to date as they leave without a scan).
    uint64_t take_rtt_max();
    // fn(const Peer&) for every connection, in slot order: a scan of every slot, for
    // administration (listing, finding a client id), not the data path.
    template <class Fn>
    void for_each_peer(Fn&& fn) const {
        for (uint32_t slot = 0; slot < allocated_; ++slot)
            if (const Peer& p = at(slot); p.state != PeerState::free) fn(p);
    }
    const Counters& counters() const { return counters_; }
    Counters& counters() { return counters_; }
    // Timer-wheel entries looked at since construction (cost of update(): ~ timers due).
    uint64_t timer_visits() const { return timers_.visits(); }

private:
    void close(Peer& p, CloseReason reason);
    void set_state(Peer& p, PeerState s);
    void count_rtt(const Peer& p, int sign);
    static unsigned rtt_bucket(uint64_t rtt);
    void confirm(Peer& p);
    bool send_ping(Peer& p, const Now& now);
    bool send_pong(Peer& p, uint16_t ping_sequence, uint64_t recv_ns, const Now& now);
    bool send_disconnect(Peer& p);
    void on_timer(uint32_t slot, const Now& now);
    bool grow();
    // O(1): a shift, a mask and two loads (no division).
    Peer& at(uint32_t slot) { return chunks_[slot >> kChunkShift][slot & (kChunkPeers - 1)]; }
    const Peer& at(uint32_t slot) const { return chunks_[slot >> kChunkShift][slot & (kChunkPeers - 1)]; }

    // receive_burst's per-burst arrays, kept here: their element types zero-initialise, and
    // on the stack that is a memset of kilobytes per burst.
    struct Scratch {
        wire::PacketHeader headers[kMaxBurst];
        wire::PacketAd ads[kMaxBurst];
        crypto::AeadOp ops[kMaxBurst];
    };
    Scratch scratch_;

    Config config_;
    crypto::BurstAead* preparer_ = nullptr;
    ShardHooks& hooks_;
    Outbox& out_;
    uint32_t limit_;
    uint32_t allocated_ = 0;  // slots in chunks_
    // A chunk's peers never move (only the vector objects do), and it is mapped, not malloc'd,
    // as are the free list, index and wheel that grow with it (page_alloc.hpp): memory the
    // growth leaves behind goes back to the system.
    using Chunk = std::vector<Peer, PageAllocator<Peer>>;
    std::vector<Chunk> chunks_;
    std::vector<uint32_t, PageAllocator<uint32_t>> free_;  // free slots; the next add() takes the back
    FlatMap<wire::AddressKey, uint32_t> index_;
    TimerWheel timers_;
    uint32_t size_ = 0;
    Counters counters_;
    Summary live_;          // peers by state (free computed) and RTT, kept as they change
    uint64_t rtt_max_ = 0;  // see take_rtt_max
};

}  // namespace pomelo::server
