#include "protocol/wire/packet.hpp"

#include <cstring>

#include "protocol/crypto/aead.hpp"
#include "protocol/wire/bytes.hpp"

namespace pomelo::wire {

PacketAd packet_ad(const PacketContext& ctx, uint8_t prefix) {
    PacketAd ad;
    const auto& v = crypto::version_info(ctx.suite);
    std::memcpy(ad.data(), v.data(), v.size());
    store_le(ad.data() + kVersionInfoSize, ctx.protocol_id, 8);
    ad[kVersionInfoSize + 8] = prefix;
    return ad;
}

size_t seal_packet(const PacketContext& ctx, const crypto::Key& key, uint64_t sequence,
                   std::span<uint8_t> datagram, size_t header_size, size_t body_size) {
    const size_t total = header_size + body_size + kTagSize;
    if (header_size == 0 || datagram.size() < total) return 0;
    const PacketAd ad = packet_ad(ctx, datagram[0]);
    if (!crypto::packet_seal(ctx.suite, key, sequence, ad, datagram.subspan(header_size, body_size),
                             datagram.data() + header_size + body_size))
        return 0;
    return total;
}

WireError open_packet(const PacketContext& ctx, const crypto::Key& key, const PacketHeader& h,
                      std::span<uint8_t> datagram, std::span<uint8_t>& body) {
    if (h.type == PacketType::request || datagram.size() < h.size + kTagSize) return WireError::bad_body_size;
    const size_t n = datagram.size() - h.size - kTagSize;
    const PacketAd ad = packet_ad(ctx, datagram[0]);
    auto text = datagram.subspan(h.size, n);
    if (!crypto::packet_open(ctx.suite, key, h.sequence, ad, text, text.data() + n)) return WireError::auth_failed;
    body = text;
    return WireError::ok;
}

WireError read_body(PacketType type, std::span<const uint8_t> body, Packet& out) {
    switch (type) {
        case PacketType::denied:
        case PacketType::disconnect:
            return body.empty() ? WireError::ok : WireError::bad_body_size;
        case PacketType::challenge:
        case PacketType::response:
            return read_challenge_body(body, out.challenge);
        case PacketType::ping:
            return read_ping_body(body, out.ping);
        case PacketType::pong:
            return read_pong_body(body, out.pong);
        case PacketType::payload:
            return read_payload_body(body, out.payload);
        case PacketType::request:
            break;
    }
    return WireError::bad_packet_type;
}

WireError read_packet(const PacketContext& ctx, const crypto::Key& key, std::span<uint8_t> datagram, Packet& out) {
    PacketHeader h;
    if (WireError e = read_header(datagram, h); e != WireError::ok) return e;
    if (h.type == PacketType::request) return WireError::bad_packet_type;
    std::span<uint8_t> body;
    if (WireError e = open_packet(ctx, key, h, datagram, body); e != WireError::ok) return e;
    out.type = h.type;
    out.sequence = h.sequence;
    return read_body(h.type, body, out);
}

static size_t write_body(const Packet& p, std::span<uint8_t> out, const WriteOptions& o) {
    switch (p.type) {
        case PacketType::denied:
        case PacketType::disconnect:
            return 0;
        case PacketType::challenge:
        case PacketType::response:
            return write_challenge_body(p.challenge, out);
        case PacketType::ping:
            return o.ping_layout ? write_ping_body(p.ping, *o.ping_layout, out) : write_ping_body(p.ping, out);
        case PacketType::pong:
            return o.pong_layout ? write_pong_body(p.pong, *o.pong_layout, out) : write_pong_body(p.pong, out);
        case PacketType::payload:
            if (p.payload.empty() || p.payload.size() > kMaxPayloadSize || out.size() < p.payload.size()) return 0;
            std::memcpy(out.data(), p.payload.data(), p.payload.size());
            return p.payload.size();
        case PacketType::request:
            break;
    }
    return 0;
}

size_t write_packet(const PacketContext& ctx, const crypto::Key& key, const Packet& p, std::span<uint8_t> out,
                    const WriteOptions& o) {
    if (p.type == PacketType::request) return 0;
    const size_t header = write_header(p.type, p.sequence, o.sequence_bytes, out);
    if (header == 0) return 0;
    const size_t body = write_body(p, out.subspan(header), o);
    const bool empty_type = p.type == PacketType::denied || p.type == PacketType::disconnect;
    if (body == 0 && !empty_type) return 0;
    return seal_packet(ctx, key, p.sequence, out, header, body);
}

}  // namespace pomelo::wire
