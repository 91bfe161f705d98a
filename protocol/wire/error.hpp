// Every reason the codec can refuse bytes. Decoders return one of these; the receive
// pipeline counts drops by this value, so each reason is distinct and cheap to produce.
#pragma once

#include <cstdint>

namespace pomelo::wire {

#define POMELO_WIRE_ERRORS(X)                                                     \
    X(ok, "ok")                                                                   \
    X(datagram_too_short, "datagram shorter than 18 bytes")                       \
    X(datagram_too_long, "datagram longer than 1225 bytes")                       \
    X(bad_prefix, "prefix with type 0 but not exactly 0x00")                      \
    X(bad_packet_type, "packet type >= 8")                                        \
    X(bad_sequence_length, "sequence length outside 1..8")                        \
    X(bad_body_size, "body size not allowed for the packet type")                 \
    X(bad_version, "version info does not match")                                 \
    X(bad_address_count, "server address count outside 1..32")                   \
    X(bad_address_type, "server address type not 1 (IPv4) or 2 (IPv6)")          \
    X(address_overrun, "server address records overrun the token")               \
    X(bad_timestamps, "create timestamp later than expire timestamp")             \
    X(bad_timeout, "token timeout of 0 seconds")                                  \
    X(bad_ping_meta, "PING time length > 8")                                      \
    X(trailing_bytes, "trailing bytes after the last field")                      \
    X(empty_payload, "empty PAYLOAD body")                                        \
    X(auth_failed, "AEAD authentication failed")                                  \
    X(buffer_too_small, "output buffer too small")                                \
    X(invalid_argument, "field value cannot be encoded")                          \
    X(suite_unavailable, "cipher suite not available on this host")

enum class WireError : uint8_t {
#define POMELO_X(name, text) name,
    POMELO_WIRE_ERRORS(POMELO_X)
#undef POMELO_X
        count_
};

inline constexpr unsigned kWireErrorCount = static_cast<unsigned>(WireError::count_);

// Human-readable reason (never null).
const char* to_string(WireError error);
// Stable snake_case identifier, for counters and telemetry.
const char* name_of(WireError error);

}  // namespace pomelo::wire
