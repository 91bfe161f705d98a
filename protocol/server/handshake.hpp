// The server's handshake (spec §12.3-§12.5, §12.9-§12.11): REQUEST → CHALLENGE or DENIED,
// RESPONSE → a new connection. It owns everything global to the server: the challenge key
// and counters, pending records, the token-reuse history, the per-source rate limit, the
// connected client ids and the capacity count. In the engine it runs on the control thread;
// the shards own the connections it creates and report back when one ends.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <vector>

#include "protocol/crypto/key.hpp"
#include "protocol/flat_map.hpp"
#include "protocol/outbox.hpp"
#include "protocol/server/config.hpp"
#include "protocol/stats.hpp"
#include "protocol/time.hpp"
#include "protocol/wire/connect_token.hpp"
#include "protocol/wire/header.hpp"
#include "protocol/wire/packet.hpp"

namespace pomelo::server {

using TokenTag = std::array<uint8_t, wire::kTagSize>;

// Everything a shard needs to run a connection the handshake accepted.
struct NewPeer {
    wire::Address address;
    int64_t client_id = 0;
    int32_t timeout_seconds = 0;
    wire::PacketContext ctx;
    crypto::Key client_to_server_key;
    crypto::Key server_to_client_key;
    wire::UserData user_data{};
};

class Handshake {
public:
    explicit Handshake(const Config& config);

    // Fresh challenge key, counters reset (the pre-connection sequence restarts from the wall
    // clock so it never repeats across restarts, §9).
    void start(const Now& now);
    // Wipes the challenge key and forgets every pending record, token and client id.
    void stop();

    // A datagram with prefix 0x00 from an address that has no connection. May send a
    // CHALLENGE or a DENIED through `out`.
    void on_request(std::span<const uint8_t> datagram, const wire::Address& from, const Now& now, Outbox& out);

    // A RESPONSE (header already read) from an address that has no connection. Decrypts in
    // place. True when it created a connection: `accepted` is filled, the client id and a
    // capacity slot are taken until on_connection_closed().
    bool on_response(std::span<uint8_t> datagram, const wire::PacketHeader& header, const wire::Address& from,
                     const Now& now, Outbox& out, NewPeer& accepted);

    // A shard ended a connection: frees its client id and its capacity slot.
    void on_connection_closed(int64_t client_id);

    // Forgets pending records older than their life (the token timeout, capped by
    // pending_timeout_ns), §19.24.
    void update(const Now& now) { expire_pending(now.ns); }

    uint32_t connected() const { return connected_; }
    uint32_t pending() const { return static_cast<uint32_t>(pending_index_.size()); }
    // Private connect tokens decrypted (XChaCha20): what a REQUEST flood costs the server.
    uint64_t token_decrypts() const { return token_decrypts_; }
    const Counters& counters() const { return counters_; }
    Counters& counters() { return counters_; }

private:
    struct Pending {
        wire::AddressKey address;
        wire::Address reply_to;
        TokenTag tag{};
        int64_t client_id = 0;
        int32_t timeout_seconds = 0;
        wire::PacketContext ctx;
        crypto::Key client_to_server_key;
        crypto::Key server_to_client_key;
        wire::UserData user_data{};
        uint64_t touched_ns = 0;
        uint32_t prev = kNil, next = kNil;  // age list, oldest first
        bool used = false;
    };
    struct TokenUse {
        wire::AddressKey address;
        uint64_t expire_ms = 0;
        bool connected = false;
    };
    static constexpr uint32_t kNil = UINT32_MAX;

    bool rate_limited(const wire::Address& from, uint64_t now_ns);
    void stamp_rate_limit(const wire::Address& from, uint64_t now_ns);
    void remember_token(const TokenTag& tag, const wire::AddressKey& from, uint64_t expire_ms);
    void expire_pending(uint64_t now_ns);
    uint64_t pending_life_ns(const Pending& p) const;
    Pending* find_pending(const wire::AddressKey& key);
    Pending& take_pending_slot(const wire::AddressKey& key);
    void release_pending(Pending& p);
    void unlink(uint32_t i);
    void append(uint32_t i);
    void send_challenge(Pending& p, const Now& now, Outbox& out);
    void send_denied(const wire::Address& to, const wire::PacketContext& ctx, const crypto::Key& key, Outbox& out);

    Config config_;
    crypto::Key challenge_key_;
    uint64_t challenge_sequence_ = 0;
    uint64_t preconnect_sequence_ = 0;  // bit 63 set: never collides with connection sequences
    bool running_ = false;

    std::vector<Pending> pending_;
    FlatMap<wire::AddressKey, uint32_t> pending_index_;
    std::vector<uint32_t> free_pending_;
    uint32_t oldest_ = kNil, newest_ = kNil;

    FlatMap<TokenTag, TokenUse> tokens_;
    std::vector<TokenTag> token_order_;  // ring, oldest first, for eviction
    size_t token_order_head_ = 0;

    FlatMap<int64_t, uint8_t> client_ids_;
    uint32_t connected_ = 0;

    KeyedHash rate_hash_;
    std::vector<uint64_t> last_reply_ns_;

    uint64_t token_decrypts_ = 0;
    Counters counters_;
};

}  // namespace pomelo::server
