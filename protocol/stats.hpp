// Counters of the receive and send pipelines: every drop has exactly one reason (§11), so
// the sum of drops by reason plus the packets handled equals the packets received.
#pragma once

#include <array>
#include <cstdint>

#include "protocol/wire/constants.hpp"
#include "protocol/wire/error.hpp"

namespace pomelo {

// Reasons beyond the codec's (wire::WireError): role, state and policy checks.
#define POMELO_DROP_REASONS(X)                                                            \
    X(wrong_direction, "packet type never sent to this side")                             \
    X(unknown_peer, "connection packet from an address with no connection")               \
    X(handshake_from_connected, "REQUEST or RESPONSE from a connected address")           \
    X(peer_disconnecting, "packet from a peer being disconnected")                        \
    X(replayed, "sequence already received or older than the replay window")              \
    X(wrong_protocol_id, "protocol id is not this server's")                              \
    X(suite_not_accepted, "cipher suite not accepted by this server")                     \
    X(token_expired, "connect token expired")                                             \
    X(rate_limited, "source sent a handshake packet too soon after the last reply")      \
    X(token_in_use, "token already used from another address or for a connection")      \
    X(token_history_full, "token history full of live connected tokens")                  \
    X(token_predates_start, "token may have connected before this start (no token journal)") \
    X(address_not_in_token, "this server's address is not in the token")                 \
    X(no_pending, "RESPONSE without a pending REQUEST from this address")                 \
    X(pending_full, "every pending record belongs to a handshake in progress")            \
    X(challenge_mismatch, "challenge token expired or not the pending REQUEST's")         \
    X(client_id_connected, "client id already connected")                                 \
    X(wrong_client_id, "PING with a client id other than the connection's")               \
    X(wrong_state, "packet not expected in the current state")                            \
    X(wrong_source, "packet not from the server being connected to")                      \
    X(server_stopped, "endpoint is not running")                                          \
    X(no_tx_buffer, "no buffer to send the reply")

enum class DropReason : uint8_t {
#define POMELO_X(name, text) name,
    POMELO_DROP_REASONS(POMELO_X)
#undef POMELO_X
        count_
};
inline constexpr unsigned kDropReasonCount = static_cast<unsigned>(DropReason::count_);

const char* name_of(DropReason r);
const char* to_string(DropReason r);

struct Counters {
    std::array<uint64_t, wire::kPacketTypeCount> rx{};  // authenticated and handled, by type
    std::array<uint64_t, wire::kPacketTypeCount> tx{};  // sent, by type
    std::array<uint64_t, wire::kWireErrorCount> wire_drops{};
    std::array<uint64_t, kDropReasonCount> drops{};
    // Connections closed, by server::CloseReason (client_disconnected, timed_out,
    // server_disconnected, server_stopped).
    static constexpr unsigned kCloseReasons = 4;
    std::array<uint64_t, kCloseReasons> closed{};

    void drop(wire::WireError e) { ++wire_drops[static_cast<unsigned>(e)]; }
    void drop(DropReason r) { ++drops[static_cast<unsigned>(r)]; }
    void received(wire::PacketType t) { ++rx[static_cast<unsigned>(t)]; }
    void sent(wire::PacketType t) { ++tx[static_cast<unsigned>(t)]; }
    uint64_t drops_of(wire::WireError e) const { return wire_drops[static_cast<unsigned>(e)]; }
    uint64_t drops_of(DropReason r) const { return drops[static_cast<unsigned>(r)]; }
    uint64_t total_drops() const;
    Counters& operator+=(const Counters& o);
};

}  // namespace pomelo
