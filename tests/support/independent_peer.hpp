// An independent Pomelo 1.03 client for tests: it builds REQUEST / RESPONSE / PING / PONG /
// PAYLOAD / DISCONNECT bytes itself from the spec (PROTOCOL.md §5-§8) and seals and opens
// them with libsodium called directly, never with protocol/wire or protocol/crypto. What
// the server sends is therefore checked by code that shares nothing with the server's codec.
//
// It knows no transport and no clock: the caller hands it datagrams and asks it for the
// datagrams to send, so the same peer serves the in-process engine bed, a load generator or
// a socket test. Every datagram it receives is captured (authenticated or not) with the
// sequence it carried, for nonce-reuse checks across runs.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace pomelo::test {

using Bytes = std::vector<uint8_t>;

namespace indep {

// §2 / §3.3, written out here on purpose.
inline constexpr std::array<uint8_t, 12> kVersion{'P', 'O', 'M', 'E', 'L', 'O', ' ', '1', '.', '0', '3', 0};
inline constexpr size_t kTokenSize = 2048;
inline constexpr size_t kRequestSize = 1077;
inline constexpr size_t kChallengeBody = 308;

// Packet type ids (§7.4).
enum Type : uint8_t { request = 0, denied = 1, challenge = 2, response = 3, ping = 4, payload = 5, disconnect = 6, pong = 7 };
const char* type_name(uint8_t type);

using Key = std::array<uint8_t, 32>;

// The public connect token (§5.1), parsed by offset.
struct PublicToken {
    uint64_t protocol_id = 0, create_ms = 0, expire_ms = 0;
    std::array<uint8_t, 24> nonce{};
    std::array<uint8_t, 1024> private_part{};
    int32_t timeout_seconds = 0;
    uint32_t address_count = 0;
    Key client_to_server{}, server_to_client{};
    // False (with `error`) if the bytes are not a well-formed 2048-byte token.
    bool parse(std::span<const uint8_t> token, std::string& error);
};

// §3.2: the smallest n >= 1 with v < 2^(8n).
unsigned canonical_length(uint64_t v);

// §7.5: prefix || LEn(seq) || ChaCha20-Poly1305-IETF(body) || tag, AD = version || pid || prefix.
Bytes seal(uint8_t type, uint64_t sequence, std::span<const uint8_t> body, const Key& key, uint64_t protocol_id,
           unsigned sequence_bytes = 0 /* 0: canonical */);

struct Opened {
    uint8_t type = 0;
    uint64_t sequence = 0;
    Bytes body;
};
// Header checks of §7.2-§7.4 and the AEAD open; false if anything fails.
bool open(std::span<const uint8_t> datagram, const Key& key, uint64_t protocol_id, Opened& out);
inline std::optional<Opened> open(std::span<const uint8_t> datagram, const Key& key, uint64_t protocol_id) {
    Opened o;
    if (!open(datagram, key, protocol_id, o)) return std::nullopt;
    return o;
}

// The 1077-byte REQUEST of §8.1 for `token`.
Bytes request_datagram(const PublicToken& token);

}  // namespace indep

// One client connection attempt with one token.
class IndependentPeer {
public:
    enum class State { idle, requesting, responding, connected, denied, disconnected };

    // One datagram the peer received, as it arrived.
    struct Captured {
        Bytes datagram;
        bool authenticated = false;
        uint8_t type = 0;       // valid when authenticated
        uint64_t sequence = 0;  // valid when authenticated
        Bytes body;             // plaintext, when authenticated
    };

    // `token` is a 2048-byte public connect token; throws std::runtime_error if malformed.
    explicit IndependentPeer(std::span<const uint8_t> token);

    // Starts (or restarts) the handshake: the REQUEST to send (resend it at 10 Hz while
    // requesting()).
    Bytes start();
    // Handles one datagram from the server; datagrams to send in answer go to `out`.
    void receive(std::span<const uint8_t> datagram, std::vector<Bytes>& out);
    // What a client resends at 10 Hz in its current state (REQUEST, the same RESPONSE), or
    // nothing once connected or finished.
    std::vector<Bytes> resend() const;

    // Connection phase (one counter from 0, §9).
    Bytes ping();
    Bytes payload(std::span<const uint8_t> data);
    Bytes disconnect();  // one DISCONNECT; a client sends several (§13.6)

    State state() const { return state_; }
    bool connected() const { return state_ == State::connected; }
    int64_t client_id() const { return client_id_; }
    const indep::PublicToken& token() const { return token_; }

    // Everything received, in order.
    const std::vector<Captured>& captured() const { return captured_; }
    // Authenticated packets received, by type id; and datagrams that failed to open.
    uint64_t received(uint8_t type) const { return by_type_[type & 7]; }
    uint64_t unauthenticated() const { return unauthenticated_; }
    uint64_t malformed_bodies() const { return malformed_; }  // opened but body not as §8 says
    // PAYLOAD bodies received, in order.
    const std::vector<Bytes>& payloads() const { return payloads_; }

private:
    Bytes seal_next(uint8_t type, std::span<const uint8_t> body);
    Bytes pong_for(uint16_t ping_sequence);

    indep::PublicToken token_;
    State state_ = State::idle;
    Bytes request_;
    Bytes response_;
    uint64_t sequence_ = 0;
    uint16_t ping_sequence_ = 0;
    int64_t client_id_ = 0;
    bool client_id_known_ = false;
    std::vector<Captured> captured_;
    std::array<uint64_t, 8> by_type_{};
    uint64_t unauthenticated_ = 0;
    uint64_t malformed_ = 0;
    std::vector<Bytes> payloads_;
};

}  // namespace pomelo::test
