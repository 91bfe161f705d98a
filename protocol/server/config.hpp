// Server configuration, shared by the handshake (control side) and the shards (data side).
#pragma once

#include <cstdint>
#include <vector>

#include "protocol/crypto/key.hpp"
#include "protocol/crypto/suite.hpp"
#include "protocol/time.hpp"
#include "protocol/wire/address.hpp"

namespace pomelo::server {

struct Config {
    uint64_t protocol_id = 0;
    crypto::Key private_key;
    // Key rotation: REQUEST tokens that do not open under private_key are tried under these,
    // in order (each try is one XChaCha20-Poly1305 open, counted in token_decrypts).
    std::vector<crypto::Key> more_private_keys;
    uint32_t max_clients = 256;
    // Handshakes in flight (pending records). When all are taken, the oldest is recycled if it
    // was created more than pending_recycle_ns ago (a handshake that stalled; resends of its
    // REQUEST do not make it younger, or resending would hold it forever); otherwise a new REQUEST is
    // dropped before its token is decrypted (pending_full) and its client resends it. Recycling
    // a young record instead would break a handshake in progress, whose RESPONSE would then
    // find nothing (no_pending): under a storm of connects (every client of a restarted server
    // at once) that turns into a collapse where almost no handshake completes.
    uint32_t max_pending = 4096;
    uint64_t pending_recycle_ns = 1 * kSecond;
    // Tokens remembered for reuse detection (§12.10). Tokens that connected are kept until
    // they expire; when the table is full of those, new tokens are refused (TokenHistory).
    uint32_t token_history = 65536;
    // The addresses clients are told to use. A REQUEST whose token lists none of them is
    // dropped; empty disables the check (NAT / anycast deployments, §5.5).
    std::vector<wire::Address> public_addresses;
    // Refuse a token whose keys already served a connection (§9, §12.10).
    bool refuse_token_reuse = true;
    // Bit per crypto::Suite the server accepts.
    uint32_t accepted_suites = 1u << static_cast<unsigned>(crypto::Suite::chacha20poly1305) |
                               1u << static_cast<unsigned>(crypto::Suite::aes256gcm);
    // Minimum spacing of handshake replies (CHALLENGE / DENIED) to one source address
    // (§12.11: at least 100 ms, the client's resend interval).
    uint64_t handshake_interval_ns = 100 * kMillisecond;
    // Slots of the per-source rate limiter (a lossy table indexed by keyed hash).
    uint32_t rate_limit_slots = 1u << 16;
    // Upper bound on a pending record's life; the token timeout applies when shorter (§19.24).
    uint64_t pending_timeout_ns = 10 * kSecond;

    // Connected phase (shards).
    uint64_t ping_interval_ns = 100 * kMillisecond;
    uint64_t pong_min_interval_ns = 50 * kMillisecond;  // 20 Hz PONG limit (§14.3)
    unsigned disconnect_packets = 10;                   // sent 10 Hz on a server-side disconnect

    bool accepts(crypto::Suite s) const { return accepted_suites >> static_cast<unsigned>(s) & 1; }
};

}  // namespace pomelo::server
