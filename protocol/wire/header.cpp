#include "protocol/wire/header.hpp"

#include "protocol/wire/bytes.hpp"

namespace pomelo::wire {

bool body_size_allowed(PacketType type, size_t n) {
    switch (type) {
        case PacketType::request:
            return n == kRequestSize - 1;
        case PacketType::denied:
        case PacketType::disconnect:
            return n == 0;
        case PacketType::challenge:
        case PacketType::response:
            return n == kChallengeBodySize;
        case PacketType::ping:
            return n >= kPingBodyMin && n <= kPingBodyMax;
        case PacketType::payload:
            return n >= 1 && n <= kMaxPayloadSize;
        case PacketType::pong:
            return n >= kPongBodyMin && n <= kPongBodyMax;
    }
    return false;
}

WireError read_header(std::span<const uint8_t> d, PacketHeader& out) {
    if (d.size() < kMinDatagramSize) return WireError::datagram_too_short;
    if (d.size() > kMaxDatagramSize) return WireError::datagram_too_long;
    const uint8_t prefix = d[0];
    if (prefix == 0) {
        out = PacketHeader{};
        return d.size() == kRequestSize ? WireError::ok : WireError::bad_body_size;
    }
    const unsigned type = prefix >> 4;
    const unsigned n = prefix & 0x0F;
    if (type == 0) return WireError::bad_prefix;
    if (type >= kPacketTypeCount) return WireError::bad_packet_type;
    if (n < 1 || n > 8) return WireError::bad_sequence_length;
    // d.size() >= 18 >= 1 + 8 + 16 - 7, so only the body can be short here.
    if (d.size() < 1 + n + kTagSize) return WireError::bad_body_size;
    out.type = static_cast<PacketType>(type);
    out.sequence_bytes = static_cast<uint8_t>(n);
    out.sequence = load_le(d.data() + 1, n);
    out.size = static_cast<uint8_t>(1 + n);
    return body_size_allowed(out.type, body_size_of(out, d.size())) ? WireError::ok : WireError::bad_body_size;
}

size_t write_header(PacketType type, uint64_t sequence, unsigned sequence_bytes, std::span<uint8_t> out) {
    const unsigned n = sequence_bytes ? sequence_bytes : trimmed_length(sequence);
    if (n < 1 || n > 8 || out.size() < 1 + n) return 0;
    out[0] = make_prefix(type, n);
    store_le(out.data() + 1, sequence, n);
    return 1 + n;
}

}  // namespace pomelo::wire
