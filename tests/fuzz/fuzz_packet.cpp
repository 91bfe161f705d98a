// wire::read_packet / write_packet, end to end (header, AEAD, body).
//
// The first input byte is a selector (see fuzz_common.hpp): key, protocol id, suite, mode.
//   raw:        read_packet on a mutable copy of the rest. Seeds are the vectors' wires under
//               their own keys, so they authenticate; whatever authenticates must re-encode
//               (write_packet with the decoded layout) to the very same datagram.
//   seal:       the rest is header || plaintext body; it is sealed under the key and then
//               read back, so the body decoders are reached through the full pipeline. The
//               read must never fail authentication and must agree with read_body on the
//               plaintext.
//   structured: FuzzedDataProvider drives write_packet of every type, with canonical or
//               explicit widths; whatever encodes must read back to the same fields.
#include <fuzzer/FuzzedDataProvider.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "protocol/crypto/aead.hpp"
#include "protocol/wire/bytes.hpp"
#include "protocol/wire/packet.hpp"
#include "tests/fuzz/fuzz_common.hpp"

using namespace pomelo;
using namespace pomelo::wire;

namespace {

constexpr size_t kBufferSize = kMaxDatagramSize + 64;

// Fields of two decoded packets of the same type are equal (views compared by content).
bool same_fields(const Packet& a, const Packet& b) {
    if (a.type != b.type) return false;
    switch (a.type) {
        case PacketType::challenge:
        case PacketType::response:
            return a.challenge.token_sequence == b.challenge.token_sequence &&
                   fuzz::same_bytes(a.challenge.encrypted_token, b.challenge.encrypted_token);
        case PacketType::ping:
            return a.ping.client_id == b.ping.client_id && a.ping.ping_sequence == b.ping.ping_sequence &&
                   a.ping.has_time == b.ping.has_time && a.ping.time == b.ping.time;
        case PacketType::pong:
            return a.pong.ping_sequence == b.pong.ping_sequence && a.pong.ping_recv_time == b.pong.ping_recv_time &&
                   a.pong.pong_delta_time == b.pong.pong_delta_time;
        case PacketType::payload:
            return fuzz::same_bytes(a.payload, b.payload);
        default:
            return true;
    }
}

// `wire` authenticated and decoded to `p`; `plain` is its decrypted body. Re-encoding with the
// same sequence width and body layout must give back `wire` byte for byte (PONG: unless bit 7
// of the meta byte was set, which the decoder ignores; then the fields must still round trip).
void check_reencode(const PacketContext& ctx, const crypto::Key& key, std::span<const uint8_t> wire,
                    const PacketHeader& h, std::span<const uint8_t> plain, const Packet& p) {
    WriteOptions o;
    o.sequence_bytes = h.sequence_bytes;
    PingLayout pl;
    PongLayout ql;
    if (p.type == PacketType::ping) {
        PingBody tmp;
        FUZZ_CHECK(read_ping_body(plain, tmp, &pl) == WireError::ok);
        o.ping_layout = &pl;
    }
    if (p.type == PacketType::pong) {
        PongBody tmp;
        FUZZ_CHECK(read_pong_body(plain, tmp, &ql) == WireError::ok);
        o.pong_layout = &ql;
    }
    std::array<uint8_t, kBufferSize> out{};
    const size_t n = write_packet(ctx, key, p, out, o);
    FUZZ_CHECK(n == wire.size());
    const bool pong_bit7 = p.type == PacketType::pong && (plain[0] & 0x80);
    if (!pong_bit7) {
        FUZZ_CHECK(fuzz::same_bytes({out.data(), n}, wire));
        return;
    }
    Packet q;
    FUZZ_CHECK(read_packet(ctx, key, std::span<uint8_t>(out.data(), n), q) == WireError::ok);
    FUZZ_CHECK(q.sequence == p.sequence && same_fields(q, p));
}

void raw_mode(const PacketContext& ctx, const crypto::Key& key, std::span<const uint8_t> in) {
    std::vector<uint8_t> dg(in.begin(), in.end());
    Packet p;
    const WireError e = read_packet(ctx, key, dg, p);
    PacketHeader h;
    const WireError he = read_header(in, h);
    if (he != WireError::ok) {
        FUZZ_CHECK(e == he);  // nothing but the header check may run on a bad header
        return;
    }
    if (h.type == PacketType::request) {
        FUZZ_CHECK(e == WireError::bad_packet_type);
        return;
    }
    if (e == WireError::auth_failed) {
        FUZZ_CHECK(fuzz::all_zero(std::span(dg).subspan(h.size, dg.size() - h.size - kTagSize)));
        return;
    }
    // Authenticated: decoding is exactly read_body on the plaintext.
    const auto plain = std::span<const uint8_t>(dg).subspan(h.size, dg.size() - h.size - kTagSize);
    Packet ref;
    FUZZ_CHECK(read_body(h.type, plain, ref) == e);
    if (e != WireError::ok) return;
    FUZZ_CHECK(p.type == h.type && p.sequence == h.sequence);
    ref.type = p.type;
    FUZZ_CHECK(same_fields(p, ref));
    check_reencode(ctx, key, in, h, plain, p);
}

void seal_mode(const PacketContext& ctx, const crypto::Key& key, std::span<const uint8_t> in) {
    std::vector<uint8_t> dg(in.begin(), in.end());
    dg.resize(dg.size() + kTagSize);  // room for the tag
    PacketHeader h;
    const WireError he = read_header(dg, h);
    if (he != WireError::ok || h.type == PacketType::request) {
        Packet p;
        FUZZ_CHECK(read_packet(ctx, key, dg, p) == (he != WireError::ok ? he : WireError::bad_packet_type));
        return;
    }
    const size_t body_size = dg.size() - h.size - kTagSize;
    const std::vector<uint8_t> plain(dg.begin() + h.size, dg.begin() + h.size + static_cast<ptrdiff_t>(body_size));
    const size_t sealed = seal_packet(ctx, key, h.sequence, dg, h.size, body_size);
    if (!crypto::suite_available(ctx.suite)) {
        FUZZ_CHECK(sealed == 0);
        return;
    }
    FUZZ_CHECK(sealed == dg.size());
    const std::vector<uint8_t> wire = dg;

    Packet p;
    const WireError e = read_packet(ctx, key, dg, p);
    FUZZ_CHECK(e != WireError::auth_failed);
    FUZZ_CHECK(fuzz::same_bytes(std::span(dg).subspan(h.size, body_size), plain));  // decrypted in place
    Packet ref;
    FUZZ_CHECK(read_body(h.type, plain, ref) == e);
    if (e != WireError::ok) return;
    FUZZ_CHECK(p.type == h.type && p.sequence == h.sequence);
    ref.type = p.type;
    FUZZ_CHECK(same_fields(p, ref));
    check_reencode(ctx, key, wire, h, plain, p);

    // Any single flipped bit must fail authentication (or an earlier header check).
    if (!wire.empty()) {
        std::vector<uint8_t> bad = wire;
        const size_t bit = (h.sequence ^ body_size) % (bad.size() * 8);
        bad[bit / 8] ^= static_cast<uint8_t>(1u << (bit % 8));
        Packet q;
        FUZZ_CHECK(read_packet(ctx, key, bad, q) != WireError::ok);
    }
}

void structured_mode(const PacketContext& ctx, const crypto::Key& key, std::span<const uint8_t> in) {
    FuzzedDataProvider fdp(in.data(), in.size());
    Packet p;
    p.type = static_cast<PacketType>(fdp.ConsumeIntegralInRange<unsigned>(1, 7));
    const unsigned seq_width = fdp.ConsumeIntegralInRange<unsigned>(0, 8);  // 0 = 8-byte range
    p.sequence = seq_width ? fuzz::low_bytes(fdp.ConsumeIntegral<uint64_t>(), seq_width)
                           : fdp.ConsumeIntegral<uint64_t>();
    WriteOptions o;
    o.sequence_bytes = fdp.ConsumeIntegralInRange<uint8_t>(0, 9);  // 9: invalid
    const bool explicit_layout = fdp.ConsumeBool();
    bool valid = crypto::suite_available(ctx.suite);
    const unsigned n_seq = o.sequence_bytes ? o.sequence_bytes : trimmed_length(p.sequence);
    valid &= n_seq >= 1 && n_seq <= 8;

    std::vector<uint8_t> token, payload;
    PingLayout pl;
    PongLayout ql;
    size_t body_size = 0;
    switch (p.type) {
        case PacketType::challenge:
        case PacketType::response: {
            p.challenge.token_sequence = fdp.ConsumeIntegral<uint64_t>();
            const size_t len = fdp.ConsumeBool() ? kChallengeTokenSize
                                                 : fdp.ConsumeIntegralInRange<size_t>(0, kChallengeTokenSize + 4);
            token = fdp.ConsumeBytes<uint8_t>(len);
            token.resize(len);
            p.challenge.encrypted_token = token;
            valid &= len == kChallengeTokenSize;
            body_size = kChallengeBodySize;
            break;
        }
        case PacketType::ping: {
            p.ping.client_id = fdp.ConsumeIntegral<int64_t>();
            p.ping.ping_sequence = fdp.ConsumeIntegral<uint16_t>();
            p.ping.has_time = fdp.ConsumeBool();
            p.ping.time = p.ping.has_time ? fdp.ConsumeIntegral<uint64_t>() : 0;
            pl = PingLayout::canonical(p.ping);
            if (explicit_layout) {
                pl.time_bytes = fdp.ConsumeIntegralInRange<uint8_t>(0, 9);
                pl.client_id_bytes = fdp.ConsumeIntegralInRange<uint8_t>(0, 9);
                pl.ping_sequence_bytes = fdp.ConsumeIntegralInRange<uint8_t>(0, 3);
                o.ping_layout = &pl;
                valid &= p.ping.has_time ? (pl.time_bytes >= 1 && pl.time_bytes <= 8) : pl.time_bytes == 0;
                valid &= pl.client_id_bytes >= 1 && pl.client_id_bytes <= 8;
                valid &= pl.ping_sequence_bytes >= 1 && pl.ping_sequence_bytes <= 2;
            }
            body_size = 1u + pl.time_bytes + pl.client_id_bytes + pl.ping_sequence_bytes;
            break;
        }
        case PacketType::pong: {
            p.pong.ping_sequence = fdp.ConsumeIntegral<uint16_t>();
            p.pong.ping_recv_time = fdp.ConsumeIntegral<uint64_t>();
            p.pong.pong_delta_time = fdp.ConsumeIntegral<uint64_t>();
            ql = PongLayout::canonical(p.pong);
            if (explicit_layout) {
                ql.ping_sequence_bytes = fdp.ConsumeIntegralInRange<uint8_t>(0, 3);
                ql.recv_time_bytes = fdp.ConsumeIntegralInRange<uint8_t>(0, 9);
                ql.delta_time_bytes = fdp.ConsumeIntegralInRange<uint8_t>(0, 9);
                o.pong_layout = &ql;
                valid &= ql.ping_sequence_bytes >= 1 && ql.ping_sequence_bytes <= 2;
                valid &= ql.recv_time_bytes >= 1 && ql.recv_time_bytes <= 8;
                valid &= ql.delta_time_bytes >= 1 && ql.delta_time_bytes <= 8;
            }
            body_size = 1u + ql.ping_sequence_bytes + ql.recv_time_bytes + ql.delta_time_bytes;
            break;
        }
        case PacketType::payload: {
            const size_t len = fdp.ConsumeIntegralInRange<size_t>(0, kMaxPayloadSize + 1);
            payload = fdp.ConsumeBytes<uint8_t>(len);
            payload.resize(len, 0x5a);
            p.payload = payload;
            valid &= len >= 1 && len <= kMaxPayloadSize;
            body_size = len;
            break;
        }
        default:
            break;  // DENIED, DISCONNECT: empty body
    }

    std::array<uint8_t, kBufferSize> out{};
    const size_t n = write_packet(ctx, key, p, out, o);
    FUZZ_CHECK((n != 0) == valid);
    if (!valid) return;
    FUZZ_CHECK(n == 1 + n_seq + body_size + kTagSize);
    FUZZ_CHECK(n >= kMinDatagramSize && n <= kMaxDatagramSize);
    FUZZ_CHECK(out[0] == make_prefix(p.type, n_seq));

    // A sequence wider than its field loses its high bytes on the wire, so the nonce differs.
    const bool truncated = n_seq < trimmed_length(p.sequence);
    Packet q;
    const WireError e = read_packet(ctx, key, std::span<uint8_t>(out.data(), n), q);
    if (truncated) {
        FUZZ_CHECK(e == WireError::auth_failed);
        return;
    }
    FUZZ_CHECK(e == WireError::ok);
    FUZZ_CHECK(q.type == p.type && q.sequence == p.sequence);
    switch (p.type) {
        case PacketType::ping:
            FUZZ_CHECK(q.ping.has_time == p.ping.has_time);
            FUZZ_CHECK(q.ping.time == (p.ping.has_time ? fuzz::low_bytes(p.ping.time, pl.time_bytes) : 0));
            FUZZ_CHECK(static_cast<uint64_t>(q.ping.client_id) ==
                       fuzz::low_bytes(static_cast<uint64_t>(p.ping.client_id), pl.client_id_bytes));
            FUZZ_CHECK(q.ping.ping_sequence == fuzz::low_bytes(p.ping.ping_sequence, pl.ping_sequence_bytes));
            break;
        case PacketType::pong:
            FUZZ_CHECK(q.pong.ping_sequence == fuzz::low_bytes(p.pong.ping_sequence, ql.ping_sequence_bytes));
            FUZZ_CHECK(q.pong.ping_recv_time == fuzz::low_bytes(p.pong.ping_recv_time, ql.recv_time_bytes));
            FUZZ_CHECK(q.pong.pong_delta_time == fuzz::low_bytes(p.pong.pong_delta_time, ql.delta_time_bytes));
            break;
        default:
            FUZZ_CHECK(same_fields(q, p));
            break;
    }
    // Under any other key the datagram does not authenticate.
    const crypto::Key& other = &key == &fuzz::zero_key() ? fuzz::private_key() : fuzz::zero_key();
    std::array<uint8_t, kBufferSize> again{};
    FUZZ_CHECK(write_packet(ctx, key, p, again, o) == n);
    FUZZ_CHECK(read_packet(ctx, other, std::span<uint8_t>(again.data(), n), q) == WireError::auth_failed);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size == 0) return 0;
    const uint8_t sel = data[0];
    PacketContext ctx;
    ctx.suite = (sel & fuzz::selector::kAesGcm) ? crypto::Suite::aes256gcm : crypto::Suite::chacha20poly1305;
    ctx.protocol_id = (sel & fuzz::selector::kProtocolIdZero) ? 0 : fuzz::kProtocolId;
    const crypto::Key& key = fuzz::key_of_selector(sel);
    const std::span<const uint8_t> rest(data + 1, size - 1);
    switch (sel & fuzz::selector::kModeMask) {
        case fuzz::selector::kModeRaw:
            raw_mode(ctx, key, rest);
            break;
        case fuzz::selector::kModeSeal:
            seal_mode(ctx, key, rest);
            break;
        default:
            structured_mode(ctx, key, rest);
            break;
    }
    return 0;
}
