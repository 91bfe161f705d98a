// Encrypted packets end to end (spec §7.5): header || AEAD(body) || tag.
//
// Three layers, so that a burst pipeline can interleave them across packets:
//   read_header (no crypto) -> open_packet (AEAD in place) -> read_body (field decode)
// and the reverse for sending: write the body after the header, then seal_packet.
// read_packet / write_packet chain the layers for one packet.
#pragma once

#include <array>
#include <cstdint>
#include <span>

#include "protocol/crypto/key.hpp"
#include "protocol/crypto/suite.hpp"
#include "protocol/wire/body.hpp"
#include "protocol/wire/header.hpp"

namespace pomelo::wire {

// What both ends agree on for a connection: the suite (version info) and protocol id.
struct PacketContext {
    crypto::Suite suite = crypto::Suite::chacha20poly1305;
    uint64_t protocol_id = 0;
};

using PacketAd = std::array<uint8_t, kVersionInfoSize + 8 + 1>;  // 21 bytes
PacketAd packet_ad(const PacketContext& ctx, uint8_t prefix);

// A decoded encrypted packet. Only the member for `type` is meaningful; views point into the
// datagram that was read.
struct Packet {
    PacketType type = PacketType::payload;
    uint64_t sequence = 0;
    ChallengeBody challenge;  // CHALLENGE, RESPONSE
    PingBody ping;
    PongBody pong;
    std::span<const uint8_t> payload;
};

// Encoder overrides, to reproduce reference bytes exactly; defaults are canonical.
struct WriteOptions {
    uint8_t sequence_bytes = 0;  // 0 = canonical
    const PingLayout* ping_layout = nullptr;
    const PongLayout* pong_layout = nullptr;
};

// Seals datagram[header_size, header_size + body_size) in place and appends the tag.
// Returns the datagram size, or 0 if the buffer has no room for the tag or the suite is
// unavailable.
size_t seal_packet(const PacketContext& ctx, const crypto::Key& key, uint64_t sequence,
                   std::span<uint8_t> datagram, size_t header_size, size_t body_size);
// Authenticates and decrypts in place; `body` is the plaintext inside `datagram`. The header
// must come from read_header on the same datagram.
WireError open_packet(const PacketContext& ctx, const crypto::Key& key, const PacketHeader& header,
                      std::span<uint8_t> datagram, std::span<uint8_t>& body);
// Decodes a plaintext body of an encrypted type into `out` (type and sequence untouched).
WireError read_body(PacketType type, std::span<const uint8_t> body, Packet& out);

// header + open + body. `datagram` is decrypted in place.
WireError read_packet(const PacketContext& ctx, const crypto::Key& key, std::span<uint8_t> datagram, Packet& out);
// Encodes and seals any encrypted type (not REQUEST). Returns the datagram size, 0 on failure.
size_t write_packet(const PacketContext& ctx, const crypto::Key& key, const Packet& packet, std::span<uint8_t> out,
                    const WriteOptions& options = {});

}  // namespace pomelo::wire
