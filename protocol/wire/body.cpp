#include "protocol/wire/body.hpp"

#include "protocol/wire/bytes.hpp"

namespace pomelo::wire {

size_t write_challenge_body(const ChallengeBody& body, std::span<uint8_t> out) {
    if (body.encrypted_token.size() != kChallengeTokenSize) return 0;
    ByteWriter w(out);
    w.u64(body.token_sequence);
    w.bytes(body.encrypted_token);
    return w.failed() ? 0 : w.written();
}

WireError read_challenge_body(std::span<const uint8_t> in, ChallengeBody& out) {
    if (in.size() != kChallengeBodySize) return WireError::bad_body_size;
    ByteReader r(in);
    out.token_sequence = r.u64();
    out.encrypted_token = r.bytes(kChallengeTokenSize);
    return WireError::ok;
}

// ---- PING: meta = T<<4 | (C-1)<<1 | (S-1); then time (T), client id (C), ping sequence (S).

PingLayout PingLayout::canonical(const PingBody& b) {
    return {static_cast<uint8_t>(b.has_time ? trimmed_length(b.time) : 0),
            static_cast<uint8_t>(trimmed_length(static_cast<uint64_t>(b.client_id))),
            static_cast<uint8_t>(trimmed_length(b.ping_sequence))};
}

size_t write_ping_body(const PingBody& b, const PingLayout& l, std::span<uint8_t> out) {
    const bool time_ok = b.has_time ? (l.time_bytes >= 1 && l.time_bytes <= 8) : l.time_bytes == 0;
    if (!time_ok || l.client_id_bytes < 1 || l.client_id_bytes > 8 || l.ping_sequence_bytes < 1 ||
        l.ping_sequence_bytes > 2)
        return 0;
    ByteWriter w(out);
    w.u8(static_cast<uint8_t>(l.time_bytes << 4 | (l.client_id_bytes - 1) << 1 | (l.ping_sequence_bytes - 1)));
    if (b.has_time) w.le(b.time, l.time_bytes);
    w.le(static_cast<uint64_t>(b.client_id), l.client_id_bytes);
    w.le(b.ping_sequence, l.ping_sequence_bytes);
    return w.failed() ? 0 : w.written();
}

WireError read_ping_body(std::span<const uint8_t> in, PingBody& out, PingLayout* layout) {
    if (in.size() < kPingBodyMin || in.size() > kPingBodyMax) return WireError::bad_body_size;
    ByteReader r(in);
    const uint8_t meta = r.u8();
    PingLayout l;
    l.time_bytes = meta >> 4;
    l.client_id_bytes = static_cast<uint8_t>(((meta >> 1) & 7) + 1);
    l.ping_sequence_bytes = static_cast<uint8_t>((meta & 1) + 1);
    if (l.time_bytes > 8) return WireError::bad_ping_meta;
    const size_t need = 1u + l.time_bytes + l.client_id_bytes + l.ping_sequence_bytes;
    if (in.size() < need) return WireError::bad_body_size;
    if (in.size() > need) return WireError::trailing_bytes;
    out.has_time = l.time_bytes > 0;
    out.time = out.has_time ? r.le(l.time_bytes) : 0;
    out.client_id = static_cast<int64_t>(r.le(l.client_id_bytes));
    out.ping_sequence = static_cast<uint16_t>(r.le(l.ping_sequence_bytes));
    if (layout) *layout = l;
    return WireError::ok;
}

// ---- PONG: meta = (S-1)<<6 | (R-1)<<3 | (D-1); then ping sequence, receive time, delta.

PongLayout PongLayout::canonical(const PongBody& b) {
    return {static_cast<uint8_t>(trimmed_length(b.ping_sequence)),
            static_cast<uint8_t>(trimmed_length(b.ping_recv_time)),
            static_cast<uint8_t>(trimmed_length(b.pong_delta_time))};
}

size_t write_pong_body(const PongBody& b, const PongLayout& l, std::span<uint8_t> out) {
    if (l.ping_sequence_bytes < 1 || l.ping_sequence_bytes > 2 || l.recv_time_bytes < 1 || l.recv_time_bytes > 8 ||
        l.delta_time_bytes < 1 || l.delta_time_bytes > 8)
        return 0;
    ByteWriter w(out);
    w.u8(static_cast<uint8_t>((l.ping_sequence_bytes - 1) << 6 | (l.recv_time_bytes - 1) << 3 |
                              (l.delta_time_bytes - 1)));
    w.le(b.ping_sequence, l.ping_sequence_bytes);
    w.le(b.ping_recv_time, l.recv_time_bytes);
    w.le(b.pong_delta_time, l.delta_time_bytes);
    return w.failed() ? 0 : w.written();
}

WireError read_pong_body(std::span<const uint8_t> in, PongBody& out, PongLayout* layout) {
    if (in.size() < kPongBodyMin || in.size() > kPongBodyMax) return WireError::bad_body_size;
    ByteReader r(in);
    const uint8_t meta = r.u8();
    PongLayout l;
    l.ping_sequence_bytes = static_cast<uint8_t>(((meta >> 6) & 1) + 1);
    l.recv_time_bytes = static_cast<uint8_t>(((meta >> 3) & 7) + 1);
    l.delta_time_bytes = static_cast<uint8_t>((meta & 7) + 1);
    const size_t need = 1u + l.ping_sequence_bytes + l.recv_time_bytes + l.delta_time_bytes;
    if (in.size() < need) return WireError::bad_body_size;
    if (in.size() > need) return WireError::trailing_bytes;
    out.ping_sequence = static_cast<uint16_t>(r.le(l.ping_sequence_bytes));
    out.ping_recv_time = r.le(l.recv_time_bytes);
    out.pong_delta_time = r.le(l.delta_time_bytes);
    if (layout) *layout = l;
    return WireError::ok;
}

WireError read_payload_body(std::span<const uint8_t> in, std::span<const uint8_t>& out) {
    if (in.empty()) return WireError::empty_payload;
    if (in.size() > kMaxPayloadSize) return WireError::bad_body_size;
    out = in;
    return WireError::ok;
}

}  // namespace pomelo::wire
