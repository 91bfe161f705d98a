// The server's handshake (spec §12.3-§12.5, §12.9-§12.11): REQUEST → CHALLENGE or DENIED,
// RESPONSE → a new connection. It owns everything global to the server: the challenge key
// and counters, pending records, the token-reuse history, the per-source rate limit, the
// connected client ids and addresses and the capacity count. In the engine it runs on the
// control thread; the shards own the connections it creates and report back when one ends.
//
// handle() is the one dispatcher for handshake datagrams: the single-threaded Server and the
// engine's control thread both call it, so running/stopping, capacity and uniqueness are
// decided in one place.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <vector>

#include "protocol/crypto/key.hpp"
#include "protocol/flat_map.hpp"
#include "protocol/outbox.hpp"
#include "protocol/server/config.hpp"
#include "protocol/server/token_history.hpp"
#include "protocol/stats.hpp"
#include "protocol/time.hpp"
#include "protocol/wire/connect_token.hpp"
#include "protocol/wire/header.hpp"
#include "protocol/wire/packet.hpp"

namespace pomelo::server {

// One received datagram of a burst.
struct RxDatagram {
    std::span<uint8_t> bytes;
    wire::Address from;
    uint16_t local = kAnyLocal;  // the local endpoint it was addressed to
    uint64_t link = 0;           // the link-layer hop it came from, opaque (OutDatagram::link)
    // Set by Shard::receive_burst: it authenticated and came over another link than the
    // peer's last authenticated datagram (the engine then teaches its port the new way back).
    bool link_changed = false;
};

// Everything a shard needs to run a connection the handshake accepted.
struct NewPeer {
    wire::Address address;
    uint16_t local = kAnyLocal;  // the local endpoint the handshake came in on
    uint64_t link = 0;           // the link-layer hop its RESPONSE came from (opaque)
    TokenTag token_tag{};        // for the token journal (restart safety, §9)
    uint64_t token_expire_ms = 0;
    int64_t client_id = 0;
    int32_t timeout_seconds = 0;
    wire::PacketContext ctx;
    crypto::Key client_to_server_key;
    crypto::Key server_to_client_key;
    wire::UserData user_data{};
};

enum class HandshakeState : uint8_t { stopped, running, stopping };

class Handshake {
public:
    explicit Handshake(const Config& config);

    // STOPPED -> RUNNING: fresh challenge key, counters reset (the pre-connection sequence
    // restarts from the wall clock so it never repeats across restarts, §9).
    void start(const Now& now);
    // RUNNING -> STOPPING: every handshake datagram is dropped (server_stopped) and pending
    // records are forgotten; connections already accepted still report their end.
    void begin_shutdown();
    // -> STOPPED: wipes the challenge key and forgets every pending record and client id. The
    // token history is kept (a later start() still refuses tokens that connected).
    void stop();
    HandshakeState state() const { return state_; }

    // The dispatcher: a REQUEST (prefix 0x00) or RESPONSE datagram from an address without a
    // connection; replies leave from the local endpoint it came in on, over its link. May send a CHALLENGE or a DENIED
    // through `out` (each queued datagram owns its key). Decrypts a RESPONSE in place. True
    // when it created a connection: `accepted` is filled, the client id, the address and a
    // capacity slot are taken until on_connection_closed().
    bool handle(RxDatagram& datagram, const Now& now, Outbox& out, NewPeer& accepted);

    // The checks of a REQUEST that need no state and no cryptography (size, version, suite,
    // protocol id, expiry), for the workers to run before a datagram crosses to the control
    // thread. Counts the drop in `counters` and returns false when it fails.
    static bool precheck_request(std::span<const uint8_t> datagram, const Config& config, uint64_t now_unix_ms,
                                 Counters& counters);

    // A shard ended a connection: frees its client id, its address and its capacity slot.
    void on_connection_closed(int64_t client_id, const wire::Address& address);
    // An accepted connection that never reached its shard (no packet was sealed under its
    // keys): as on_connection_closed(), and its token may connect again.
    void abandon(const NewPeer& accepted);
    // A token that produced a connection before a restart (from a journal): refused until it
    // expires. False when the history has no room for it.
    bool restore_connected_token(const TokenTag& tag, uint64_t expire_ms, uint64_t now_unix_ms);

    // The restart guard for servers that keep no token journal: a token minted before this
    // start expires before start + the backend's longest token lifetime, so REQUESTs whose
    // expiry is earlier than `unix_ms` are dropped (token_predates_start). Tokens minted with
    // that longest lifetime after the start pass.
    void refuse_tokens_expiring_before(uint64_t unix_ms) { min_expire_ms_ = unix_ms; }

    // Forgets pending records older than their life (the token timeout, capped by
    // pending_timeout_ns), §19.24.
    void update(const Now& now) { expire_pending(now.ns); }

    uint32_t connected() const { return connected_; }
    uint32_t pending() const { return static_cast<uint32_t>(pending_index_.size()); }
    const TokenHistory& tokens() const { return tokens_; }
    // fn(tag, expire_ms) for every token that connected and is remembered (journal rewrites).
    template <class Fn>
    void for_each_connected_token(Fn&& fn) {
        tokens_.for_each_connected(fn);
    }
    // Private connect tokens decrypted (XChaCha20): what a REQUEST flood costs the server.
    uint64_t token_decrypts() const { return token_decrypts_; }
    const Counters& counters() const { return counters_; }
    Counters& counters() { return counters_; }

private:
    struct Pending {
        wire::AddressKey address;
        wire::Address reply_to;
        uint16_t local = kAnyLocal;
        uint64_t expire_ms = 0;
        uint64_t request_digest = 0;  // keyed hash of the whole REQUEST that opened the token
        TokenTag tag{};
        int64_t client_id = 0;
        int32_t timeout_seconds = 0;
        wire::PacketContext ctx;
        crypto::Key client_to_server_key;
        crypto::Key server_to_client_key;
        wire::UserData user_data{};
        // When the REQUEST that opened this token arrived. Resends do not renew it: a record's
        // life and its eligibility for recycling count from here (§12.3 ages records by
        // insertion), or a client resending its REQUEST would hold its record forever.
        uint64_t created_ns = 0;
        uint32_t prev = kNil, next = kNil;  // age list, oldest created first
        bool used = false;
    };
    static constexpr uint32_t kNil = UINT32_MAX;

    bool rate_limited(const wire::Address& from, uint64_t now_ns);
    void stamp_rate_limit(const wire::Address& from, uint64_t now_ns);
    void on_request(const RxDatagram& d, const Now& now, Outbox& out);
    bool on_response(RxDatagram& d, const Now& now, Outbox& out, NewPeer& accepted);
    void expire_pending(uint64_t now_ns);
    uint64_t pending_life_ns(const Pending& p) const;
    Pending* find_pending(const wire::AddressKey& key);
    bool pending_room(const wire::AddressKey& key, uint64_t now_ns);
    Pending& take_pending_slot(const wire::AddressKey& key);
    void release_pending(Pending& p);
    bool room_for_one_more();
    static constexpr uint32_t kConnectedStart = 1024;  // entries the connected sets start with
    void unlink(uint32_t i);
    void append(uint32_t i);
    void send_challenge(Pending& p, uint64_t link, const Now& now, Outbox& out);
    void send_denied(const RxDatagram& to, const wire::PacketContext& ctx, const crypto::Key& key, Outbox& out);

    Config config_;
    crypto::Key challenge_key_;
    uint64_t challenge_sequence_ = 0;
    uint64_t preconnect_sequence_ = 0;  // bit 63 set: never collides with connection sequences
    HandshakeState state_ = HandshakeState::stopped;
    uint64_t min_expire_ms_ = 0;

    std::vector<Pending> pending_;
    FlatMap<wire::AddressKey, uint32_t> pending_index_;
    std::vector<uint32_t> free_pending_;
    uint32_t oldest_ = kNil, newest_ = kNil;

    TokenHistory tokens_;

    FlatMap<int64_t, uint8_t> client_ids_;
    FlatMap<wire::AddressKey, uint8_t> addresses_;  // connected, whichever shard owns them
    uint32_t connected_ = 0;

    KeyedHash rate_hash_;
    KeyedHash request_hash_;
    std::vector<uint64_t> last_reply_ns_;

    uint64_t token_decrypts_ = 0;
    Counters counters_;
};

}  // namespace pomelo::server
