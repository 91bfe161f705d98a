// Datagram framing (spec §7): prefix byte, trimmed sequence, and the size checks that run
// before any cryptography (§11.1 steps 1-2 and 4, §11.2 step 5).
#pragma once

#include <cstdint>
#include <span>

#include "protocol/wire/constants.hpp"
#include "protocol/wire/error.hpp"

namespace pomelo::wire {

struct PacketHeader {
    PacketType type = PacketType::request;
    uint8_t sequence_bytes = 0;  // n, 0 for REQUEST
    uint64_t sequence = 0;
    uint8_t size = 1;  // 1 + n
};

constexpr uint8_t make_prefix(PacketType type, unsigned sequence_bytes) {
    return static_cast<uint8_t>(static_cast<unsigned>(type) << 4 | sequence_bytes);
}

// Allowed plaintext body sizes per type (§7.4).
bool body_size_allowed(PacketType type, size_t body_size);

// Body size implied by the datagram length (REQUEST: length - 1; others: length - header - tag).
inline size_t body_size_of(const PacketHeader& h, size_t datagram_size) {
    return h.type == PacketType::request ? datagram_size - 1 : datagram_size - h.size - kTagSize;
}

// Parses the header and checks the datagram and body sizes. No cryptography.
WireError read_header(std::span<const uint8_t> datagram, PacketHeader& out);

// Writes prefix and sequence with `sequence_bytes` (0 = canonical) and returns the header
// size, or 0 if `out` is too small or sequence_bytes is outside 1..8.
size_t write_header(PacketType type, uint64_t sequence, unsigned sequence_bytes, std::span<uint8_t> out);

}  // namespace pomelo::wire
