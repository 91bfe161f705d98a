// Plaintext bodies of the encrypted packet types (spec §8.2-§8.8), one read/write pair each.
// Readers take the decrypted body span and keep views into it (no copies); writers fill a
// caller buffer and return the length written, 0 if it does not fit or a field is invalid.
#pragma once

#include <cstdint>
#include <span>

#include "protocol/wire/constants.hpp"
#include "protocol/wire/error.hpp"

namespace pomelo::wire {

// CHALLENGE and RESPONSE share this layout (§8.3, §8.4).
struct ChallengeBody {
    uint64_t token_sequence = 0;
    std::span<const uint8_t> encrypted_token;  // exactly kChallengeTokenSize bytes
};
size_t write_challenge_body(const ChallengeBody& body, std::span<uint8_t> out);
WireError read_challenge_body(std::span<const uint8_t> in, ChallengeBody& out);

// PING (§8.5).
struct PingBody {
    int64_t client_id = 0;
    uint16_t ping_sequence = 0;
    bool has_time = false;
    uint64_t time = 0;  // sender's network time, ns
};
// Field widths. Writers use the canonical widths unless told otherwise; the explicit form
// exists to reproduce reference bytes (whose widths are not always canonical, §3.2).
struct PingLayout {
    uint8_t time_bytes = 0;  // 0 = no time
    uint8_t client_id_bytes = 1;
    uint8_t ping_sequence_bytes = 1;
    static PingLayout canonical(const PingBody& body);
    bool operator==(const PingLayout&) const = default;
};
size_t write_ping_body(const PingBody& body, const PingLayout& layout, std::span<uint8_t> out);
inline size_t write_ping_body(const PingBody& body, std::span<uint8_t> out) {
    return write_ping_body(body, PingLayout::canonical(body), out);
}
WireError read_ping_body(std::span<const uint8_t> in, PingBody& out, PingLayout* layout = nullptr);

// PONG (§8.6).
struct PongBody {
    uint16_t ping_sequence = 0;
    uint64_t ping_recv_time = 0;   // responder's raw monotonic clock at PING receipt, ns
    uint64_t pong_delta_time = 0;  // receipt to PONG build, ns
};
struct PongLayout {
    uint8_t ping_sequence_bytes = 1;
    uint8_t recv_time_bytes = 1;
    uint8_t delta_time_bytes = 1;
    static PongLayout canonical(const PongBody& body);
    bool operator==(const PongLayout&) const = default;
};
size_t write_pong_body(const PongBody& body, const PongLayout& layout, std::span<uint8_t> out);
inline size_t write_pong_body(const PongBody& body, std::span<uint8_t> out) {
    return write_pong_body(body, PongLayout::canonical(body), out);
}
// Reads exactly the fields of the meta byte (bit 7 ignored, as the reference does);
// bytes after them are rejected.
WireError read_pong_body(std::span<const uint8_t> in, PongBody& out, PongLayout* layout = nullptr);

// PAYLOAD (§8.7): 1..1200 opaque bytes.
WireError read_payload_body(std::span<const uint8_t> in, std::span<const uint8_t>& out);

}  // namespace pomelo::wire
