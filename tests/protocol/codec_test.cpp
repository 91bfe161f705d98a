// Framing and body codecs: spec Appendix A (reproduced from the spec's own text) and every
// malformed input the spec names.
#include <gtest/gtest.h>
#include <sodium.h>

#include "protocol/crypto/aead.hpp"
#include "protocol/wire/bytes.hpp"
#include "protocol/wire/challenge_token.hpp"
#include "protocol/wire/connect_token.hpp"
#include "protocol/wire/packet.hpp"
#include "protocol/wire/request.hpp"
#include "tests/support/vectors.hpp"

namespace pomelo::test {
namespace {

using namespace pomelo::wire;

constexpr uint64_t kProtocolId = 0x1122334455667788ull;
const PacketContext kCtx{crypto::Suite::chacha20poly1305, kProtocolId};

crypto::Key key_counting_from(uint8_t first) {
    crypto::Key k;
    for (size_t i = 0; i < k.bytes.size(); ++i) k.bytes[i] = static_cast<uint8_t>(first + i);
    return k;
}

std::string sha256_hex(const uint8_t* p, size_t n) {
    uint8_t h[crypto_hash_sha256_BYTES];
    crypto_hash_sha256(h, p, n);
    return to_hex(h, sizeof h);
}

// ---------------------------------------------------------------- trimmed integers (§3.2, A.6)

TEST(TrimmedInteger, CanonicalLengths) {
    EXPECT_EQ(trimmed_length(0), 1u);
    EXPECT_EQ(trimmed_length(0xFF), 1u);
    EXPECT_EQ(trimmed_length(0x100), 2u);
    EXPECT_EQ(trimmed_length(0xFFFFFFFFFFFFull), 6u);
    EXPECT_EQ(trimmed_length(0x0001000000000000ull), 7u);
    EXPECT_EQ(trimmed_length(0x00FFFFFFFFFFFFFFull), 7u);
    EXPECT_EQ(trimmed_length(0x0100000000000000ull), 8u);
    EXPECT_EQ(trimmed_length(~0ull), 8u);
}

TEST(TrimmedInteger, AppendixA6ReferenceQuirk) {
    EXPECT_EQ(reference_trimmed_length(0xFFFFFFFFFFFFull), 6u);
    EXPECT_EQ(reference_trimmed_length(0x0001000000000000ull), 8u);
    EXPECT_EQ(reference_trimmed_length(0x00FFFFFFFFFFFFFFull), 8u);
    EXPECT_EQ(reference_trimmed_length(0x0100000000000000ull), 7u);
    EXPECT_EQ(reference_trimmed_length(0x1800000000000000ull), 7u);
    EXPECT_EQ(reference_trimmed_length(0xFFFFFFFFFFFFFFFFull), 8u);
}

TEST(TrimmedInteger, LittleEndianRoundTrip) {
    uint8_t b[8];
    for (uint64_t v : {0ull, 1ull, 0x1234ull, 0x0102030405060708ull, ~0ull}) {
        unsigned n = trimmed_length(v);
        store_le(b, v, n);
        EXPECT_EQ(load_le(b, n), v);
        EXPECT_EQ(b[0], static_cast<uint8_t>(v));
    }
}

// ---------------------------------------------------------------- Appendix A

ConnectToken appendix_a_token(std::array<uint8_t, kConnectTokenSize>& bytes) {
    TokenSpec spec;
    spec.protocol_id = kProtocolId;
    spec.create_ms = 1700000000000ull;
    spec.expire_ms = 1700003600000ull;
    for (size_t i = 0; i < spec.nonce.size(); ++i) spec.nonce[i] = static_cast<uint8_t>(0xC0 + i);
    auto& p = spec.private_part;
    p.client_id = 0x0102030405060708;
    p.timeout_seconds = -1;
    p.addresses.push(*Address::parse("127.0.0.1:8888"));
    p.addresses.push(*Address::parse("[2001:db8::1]:40000"));
    p.client_to_server_key = key_counting_from(0x10);
    p.server_to_client_key = key_counting_from(0x50);
    for (size_t i = 0; i < p.user_data.size(); ++i) p.user_data[i] = static_cast<uint8_t>(i);
    crypto::Key private_key;
    private_key.bytes.fill(0x07);
    EXPECT_EQ(mint_connect_token(spec, private_key, bytes), WireError::ok);
    ConnectToken t;
    EXPECT_EQ(decode_connect_token(bytes, t), WireError::ok);
    return t;
}

TEST(AppendixA, ConnectToken) {
    std::array<uint8_t, kConnectTokenSize> bytes{};
    appendix_a_token(bytes);
    EXPECT_EQ(sha256_hex(bytes.data(), bytes.size()),
              "1fd73bf7cf7636090b76a4d38f04a45e7a4053c20793bad7acaded99ea51c9b2");
    EXPECT_EQ(to_hex(bytes.data(), 60),
              "504f4d454c4f20312e303300887766554433221100"
              "68e5cf8b01000080561cd08b010000c0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7");
    EXPECT_EQ(to_hex(bytes.data() + 60, 16), "4afe8798f6ace437d6599da9a3b39c67");
    EXPECT_EQ(to_hex(bytes.data() + 1068, 16), "26a7fbdd67b8ec7aa9183bcc08c4f2ac");
    EXPECT_EQ(to_hex(bytes.data() + 1084, 8 + 7 + 19),
              "ffffffff02000000017f000001b822020120b80d000000000000000000000100409c");
}

TEST(AppendixA, Request) {
    std::array<uint8_t, kConnectTokenSize> bytes{};
    ConnectToken t = appendix_a_token(bytes);
    std::array<uint8_t, kRequestSize> q{};
    ASSERT_EQ(write_request(t, q), kRequestSize);
    EXPECT_EQ(sha256_hex(q.data(), q.size()), "4fb778aa842963c94c34fe794a9bd9f1755da651b65689be62192e63d1b37291");
    EXPECT_EQ(to_hex(q.data() + kRequestTagOffset, 16), "26a7fbdd67b8ec7aa9183bcc08c4f2ac");
    RequestPacket rp;
    ASSERT_EQ(read_request(q, rp), WireError::ok);
    EXPECT_EQ(to_hex(rp.token_tag()), "26a7fbdd67b8ec7aa9183bcc08c4f2ac");
}

TEST(AppendixA, Challenge) {
    ChallengeToken ct;
    ct.client_id = 0x0102030405060708;
    for (size_t i = 0; i < ct.user_data.size(); ++i) ct.user_data[i] = static_cast<uint8_t>(i);
    std::array<uint8_t, kChallengeTokenSize> token{};
    seal_challenge_token(ct, key_counting_from(0xA0), 0x2A, token);
    EXPECT_EQ(to_hex(token.data() + 284, 16), "e64d0f111a117482bd20f68068214dc0");
    EXPECT_EQ(sha256_hex(token.data(), token.size()),
              "58f9751e65e30edae01b90f322faf82341fd3a131fe36f7f8b1c36b03e3394f6");
    Packet p;
    p.type = PacketType::challenge;
    p.sequence = 5;
    p.challenge = {0x2A, token};
    std::array<uint8_t, kMaxDatagramSize> out{};
    const size_t n = write_packet(kCtx, key_counting_from(0x50), p, out);
    ASSERT_EQ(n, 326u);
    EXPECT_EQ(sha256_hex(out.data(), n), "5017c963e081c91c7cfac8758caa937ee7378e5a20e296ab83dd92026684b8c8");
    EXPECT_EQ(to_hex(out.data(), 16), "210510484fa738e4b1c55dccefd639b7");
    EXPECT_EQ(to_hex(out.data() + n - 16, 16), "378fa44d68cfb306cd392ff12aeebc3f");
}

TEST(AppendixA, SmallPackets) {
    std::array<uint8_t, kMaxDatagramSize> out{};
    Packet ping;
    ping.type = PacketType::ping;
    ping.sequence = 0x1234;
    ping.ping = {0x0102030405060708, 300, true, 123456789012345ull};
    size_t n = write_packet(kCtx, key_counting_from(0x50), ping, out);
    EXPECT_EQ(to_hex(out.data(), n), "423412755f1a67936436d3c47d49ce49c0dc1582446779113efd441fc4b583decc22a596");
    uint8_t body[32];
    EXPECT_EQ(to_hex(body, write_ping_body(ping.ping, body)), "6f79df0d86487008070605040302012c01");
    EXPECT_EQ(to_hex(packet_ad(kCtx, 0x42)), "504f4d454c4f20312e303300887766554433221142");
    EXPECT_EQ(to_hex(crypto::packet_nonce(0x1234)), "000000003412000000000000");

    Packet pong;
    pong.type = PacketType::pong;
    pong.sequence = 7;
    pong.pong = {300, 987654321098ull, 15000};
    n = write_packet(kCtx, key_counting_from(0x10), pong, out);
    EXPECT_EQ(to_hex(out.data(), n), "7107eb9621ee2cdc5fea3ddcc4aa95e808a88a2285fb6f00868627d2");
    EXPECT_EQ(to_hex(body, write_pong_body(pong.pong, body)), "612c01caf3c8f4e5983a");

    const std::string hello = "hello";
    Packet payload;
    payload.type = PacketType::payload;
    payload.sequence = 256;
    payload.payload = std::span(reinterpret_cast<const uint8_t*>(hello.data()), hello.size());
    n = write_packet(kCtx, key_counting_from(0x10), payload, out);
    EXPECT_EQ(to_hex(out.data(), n), "520001621f792b422765d36a087cb6ca6fe623d0948ffcd5");

    Packet denied;
    denied.type = PacketType::denied;
    denied.sequence = 0;
    n = write_packet(kCtx, key_counting_from(0x50), denied, out);
    EXPECT_EQ(to_hex(out.data(), n), "1100c6b48dfaaab17bc787c9f3323287c280");

    Packet disconnect;
    disconnect.type = PacketType::disconnect;
    disconnect.sequence = 0x0102;
    n = write_packet(kCtx, key_counting_from(0x00), disconnect, out);
    EXPECT_EQ(to_hex(out.data(), n), "620201545e4dfa3f0363815efd4cf76af5845a");
}

// ---------------------------------------------------------------- header rejections (§7, §11.1)

WireError header_error(const Bytes& d) {
    PacketHeader h;
    return read_header(d, h);
}

Bytes datagram(uint8_t prefix, size_t size) {
    Bytes d(size, 0);
    if (size) d[0] = prefix;
    return d;
}

TEST(HeaderRejects, DatagramsShorterThan18Bytes) {
    for (size_t n = 0; n < kMinDatagramSize; ++n) EXPECT_EQ(header_error(datagram(0x61, n)), WireError::datagram_too_short);
    EXPECT_EQ(header_error(datagram(0x61, 18)), WireError::ok);
}

TEST(HeaderRejects, DatagramsLongerThanTheMaximum) {
    EXPECT_EQ(header_error(datagram(0x51, 1 + 1 + 1200 + 16)), WireError::ok);
    EXPECT_EQ(header_error(datagram(0x58, 1225)), WireError::ok);
    EXPECT_EQ(header_error(datagram(0x58, 1226)), WireError::datagram_too_long);
    EXPECT_EQ(header_error(datagram(0x51, 65507)), WireError::datagram_too_long);
}

TEST(HeaderRejects, PrefixWithTypeZeroButNotExactly0x00) {
    for (unsigned low = 1; low < 16; ++low) EXPECT_EQ(header_error(datagram(uint8_t(low), 1077)), WireError::bad_prefix);
    EXPECT_EQ(header_error(datagram(0x00, 1077)), WireError::ok);
}

TEST(HeaderRejects, TypeEightOrMore) {
    for (unsigned type = 8; type < 16; ++type)
        EXPECT_EQ(header_error(datagram(uint8_t(type << 4 | 1), 100)), WireError::bad_packet_type) << type;
}

TEST(HeaderRejects, SequenceLengthOutside1To8) {
    for (unsigned type = 1; type < 8; ++type) {
        EXPECT_EQ(header_error(datagram(uint8_t(type << 4), 40)), WireError::bad_sequence_length);
        for (unsigned n = 9; n < 16; ++n)
            EXPECT_EQ(header_error(datagram(uint8_t(type << 4 | n), 40)), WireError::bad_sequence_length);
    }
}

TEST(HeaderRejects, WrongBodySizes) {
    // REQUEST must be exactly 1077.
    EXPECT_EQ(header_error(datagram(0x00, 1076)), WireError::bad_body_size);
    EXPECT_EQ(header_error(datagram(0x00, 1078)), WireError::bad_body_size);
    // DENIED / DISCONNECT: empty body only.
    EXPECT_EQ(header_error(datagram(0x11, 19)), WireError::bad_body_size);
    EXPECT_EQ(header_error(datagram(0x62, 19)), WireError::ok);
    EXPECT_EQ(header_error(datagram(0x62, 20)), WireError::bad_body_size);
    // CHALLENGE / RESPONSE: 308.
    EXPECT_EQ(header_error(datagram(0x21, 326)), WireError::ok);
    EXPECT_EQ(header_error(datagram(0x21, 325)), WireError::bad_body_size);
    EXPECT_EQ(header_error(datagram(0x31, 327)), WireError::bad_body_size);
    // PING 3..19, PONG 4..25, PAYLOAD 1..1200.
    EXPECT_EQ(header_error(datagram(0x41, 1 + 1 + 2 + 16)), WireError::bad_body_size);
    EXPECT_EQ(header_error(datagram(0x41, 1 + 1 + 3 + 16)), WireError::ok);
    EXPECT_EQ(header_error(datagram(0x41, 1 + 1 + 20 + 16)), WireError::bad_body_size);
    EXPECT_EQ(header_error(datagram(0x71, 1 + 1 + 3 + 16)), WireError::bad_body_size);
    EXPECT_EQ(header_error(datagram(0x71, 1 + 1 + 25 + 16)), WireError::ok);
    EXPECT_EQ(header_error(datagram(0x71, 1 + 1 + 26 + 16)), WireError::bad_body_size);
    EXPECT_EQ(header_error(datagram(0x58, 1 + 8 + 0 + 16)), WireError::bad_body_size);  // empty payload
    // An 8-byte sequence needs 25 bytes before any body.
    EXPECT_EQ(header_error(datagram(0x68, 24)), WireError::bad_body_size);
}

TEST(HeaderRejects, NothingOutsideTheTableIsAccepted) {
    // Exhaustive over prefix and a range of sizes: accepted iff the spec table allows it.
    for (unsigned prefix = 0; prefix < 256; ++prefix) {
        for (size_t size = 0; size <= 1300; ++size) {
            PacketHeader h;
            const WireError e = read_header(datagram(uint8_t(prefix), size), h);
            const unsigned type = prefix >> 4, n = prefix & 15;
            bool allowed;
            if (prefix == 0) {
                allowed = size == kRequestSize;
            } else if (type == 0 || type >= 8 || n < 1 || n > 8 || size < 18 || size > 1225 || size < 1 + n + 16) {
                allowed = false;
            } else {
                allowed = body_size_allowed(PacketType(type), size - 1 - n - 16);
            }
            ASSERT_EQ(e == WireError::ok, allowed) << "prefix " << prefix << " size " << size;
        }
    }
}

TEST(HeaderWrites, CanonicalAndForcedSequenceLengths) {
    uint8_t out[9];
    EXPECT_EQ(write_header(PacketType::ping, 0x1234, 0, out), 3u);
    EXPECT_EQ(out[0], 0x42);
    EXPECT_EQ(write_header(PacketType::pong, 0, 0, out), 2u);
    EXPECT_EQ(out[0], 0x71);
    EXPECT_EQ(write_header(PacketType::payload, 1, 8, out), 9u);
    EXPECT_EQ(out[0], 0x58);
    EXPECT_EQ(write_header(PacketType::payload, 1, 9, out), 0u);
    EXPECT_EQ(write_header(PacketType::payload, 0x1234, 0, std::span(out, 2)), 0u);
}

// ---------------------------------------------------------------- body rejections (§8)

TEST(PingBodyRejects, TimeLengthAbove8) {
    for (unsigned t = 9; t < 16; ++t) {
        Bytes b(1 + t + 1 + 1, 0);
        if (b.size() > kPingBodyMax) b.resize(kPingBodyMax);
        b[0] = uint8_t(t << 4);
        PingBody p;
        EXPECT_EQ(read_ping_body(b, p), WireError::bad_ping_meta) << t;
    }
}

TEST(PingBodyRejects, TrailingBytes) {
    Bytes b = {0x00, 0x2a, 0x01, 0xff};
    PingBody p;
    EXPECT_EQ(read_ping_body(b, p), WireError::trailing_bytes);
    b.pop_back();
    EXPECT_EQ(read_ping_body(b, p), WireError::ok);
    EXPECT_EQ(p.client_id, 42);
    EXPECT_EQ(p.ping_sequence, 1);
}

TEST(PingBodyRejects, FieldsLongerThanTheBody) {
    Bytes b = {0x8f, 1, 2, 3};  // T 8, C 8, S 2 needs 19 bytes
    PingBody p;
    EXPECT_EQ(read_ping_body(b, p), WireError::bad_body_size);
    EXPECT_EQ(read_ping_body(Bytes{0x00, 1}, p), WireError::bad_body_size);
    EXPECT_EQ(read_ping_body(Bytes(20, 0), p), WireError::bad_body_size);
}

TEST(PingBodyWrites, RefusesInvalidLayouts) {
    uint8_t out[32];
    PingBody b{42, 1, true, 5};
    EXPECT_EQ(write_ping_body(b, PingLayout{0, 1, 1}, out), 0u);  // time but T = 0
    EXPECT_EQ(write_ping_body(b, PingLayout{9, 1, 1}, out), 0u);
    EXPECT_EQ(write_ping_body(b, PingLayout{1, 0, 1}, out), 0u);
    EXPECT_EQ(write_ping_body(b, PingLayout{1, 1, 3}, out), 0u);
    EXPECT_EQ(write_ping_body(b, std::span(out, 3)), 0u);  // needs 4
    b.has_time = false;
    EXPECT_EQ(write_ping_body(b, PingLayout{1, 1, 1}, out), 0u);  // no time but T = 1
}

TEST(PongBodyRejects, TrailingBytesAndShortBodies) {
    Bytes b = {0x00, 3, 4, 5};
    PongBody p;
    ASSERT_EQ(read_pong_body(b, p), WireError::ok);
    EXPECT_EQ(p.ping_sequence, 3);
    EXPECT_EQ(p.ping_recv_time, 4u);
    EXPECT_EQ(p.pong_delta_time, 5u);
    b.push_back(0);
    EXPECT_EQ(read_pong_body(b, p), WireError::trailing_bytes);
    EXPECT_EQ(read_pong_body(Bytes{0x3f, 1, 2, 3}, p), WireError::bad_body_size);
    EXPECT_EQ(read_pong_body(Bytes{0x00, 1, 2}, p), WireError::bad_body_size);
    EXPECT_EQ(read_pong_body(Bytes(26, 0), p), WireError::bad_body_size);
}

TEST(PongBody, Bit7OfMetaIsIgnoredAsInTheReference) {
    Bytes b = {0x80, 3, 4, 5};
    PongBody p;
    ASSERT_EQ(read_pong_body(b, p), WireError::ok);
    EXPECT_EQ(p.ping_sequence, 3);
    uint8_t out[32];
    ASSERT_EQ(write_pong_body(p, out), 4u);
    EXPECT_EQ(out[0], 0x00);  // our sender never sets bit 7
}

TEST(PayloadBodyRejects, EmptyAndOversized) {
    std::span<const uint8_t> out;
    EXPECT_EQ(read_payload_body({}, out), WireError::empty_payload);
    Bytes big(1201, 1);
    EXPECT_EQ(read_payload_body(big, out), WireError::bad_body_size);
    big.pop_back();
    EXPECT_EQ(read_payload_body(big, out), WireError::ok);
    EXPECT_EQ(out.data(), big.data());  // a view, not a copy
}

TEST(ChallengeBodyRejects, WrongSizes) {
    ChallengeBody c;
    EXPECT_EQ(read_challenge_body(Bytes(307), c), WireError::bad_body_size);
    EXPECT_EQ(read_challenge_body(Bytes(309), c), WireError::bad_body_size);
    uint8_t out[400];
    Bytes short_token(299);
    EXPECT_EQ(write_challenge_body({1, short_token}, out), 0u);
}

// ---------------------------------------------------------------- AEAD rejections (§7.5)

Bytes sealed_payload(const PacketContext& ctx, const crypto::Key& key, uint64_t sequence) {
    const uint8_t data[3] = {1, 2, 3};
    Packet p;
    p.type = PacketType::payload;
    p.sequence = sequence;
    p.payload = data;
    Bytes out(kMaxDatagramSize);
    out.resize(write_packet(ctx, key, p, out));
    return out;
}

TEST(AeadRejects, EveryFlippedBit) {
    const crypto::Key key = key_counting_from(0x10);
    const Bytes good = sealed_payload(kCtx, key, 77);
    ASSERT_EQ(good.size(), 1 + 1 + 3 + 16u);
    for (size_t bit = 0; bit < good.size() * 8; ++bit) {
        Bytes d = good;
        d[bit / 8] ^= uint8_t(1u << (bit % 8));
        Packet p;
        const WireError e = read_packet(kCtx, key, d, p);
        EXPECT_NE(e, WireError::ok) << "bit " << bit;
    }
    Bytes d = good;
    Packet p;
    EXPECT_EQ(read_packet(kCtx, key, d, p), WireError::ok);
}

TEST(AeadRejects, WrongAssociatedData) {
    const crypto::Key key = key_counting_from(0x10);
    Packet p;
    Bytes d = sealed_payload(kCtx, key, 5);
    EXPECT_EQ(read_packet({kCtx.suite, kProtocolId + 1}, key, d, p), WireError::auth_failed);
    d = sealed_payload(kCtx, key, 5);
    EXPECT_EQ(read_packet({crypto::Suite::aes256gcm, kProtocolId}, key, d, p), WireError::auth_failed);
    // Same bytes re-labelled with another type: the prefix is in the AD.
    d = sealed_payload(kCtx, key, 5);
    d[0] = 0x41;  // PING with the same 3-byte body size
    EXPECT_EQ(read_packet(kCtx, key, d, p), WireError::auth_failed);
    // Same body under another sequence: the nonce differs.
    d = sealed_payload(kCtx, key, 5);
    d[1] = 6;
    EXPECT_EQ(read_packet(kCtx, key, d, p), WireError::auth_failed);
    // A failed open never exposes plaintext: the body is wiped, not decrypted.
    d = sealed_payload(kCtx, key, 5);
    EXPECT_EQ(read_packet({kCtx.suite, 0}, key, d, p), WireError::auth_failed);
    EXPECT_EQ(d[2], 0);
    EXPECT_EQ(d[3], 0);
    EXPECT_EQ(d[4], 0);
}

TEST(AeadRejects, RequestThroughTheEncryptedPath) {
    Bytes d(kRequestSize, 0);
    Packet p;
    EXPECT_EQ(read_packet(kCtx, key_counting_from(0), d, p), WireError::bad_packet_type);
}

TEST(Packets, RoundTripEveryTypeAndBothSuites) {
    for (crypto::Suite suite : {crypto::Suite::chacha20poly1305, crypto::Suite::aes256gcm}) {
        if (!crypto::suite_available(suite)) continue;
        const PacketContext ctx{suite, 99};
        const crypto::Key key = crypto::Key::random();
        Bytes token(kChallengeTokenSize, 0xAB);
        Bytes payload(1200, 0x5A);
        for (unsigned t = 1; t < kPacketTypeCount; ++t) {
            Packet in;
            in.type = PacketType(t);
            in.sequence = (uint64_t{1} << 63) | t;
            in.challenge = {12345, token};
            in.ping = {-7, 65535, true, 1ull << 60};
            in.pong = {1, ~0ull, 0};
            in.payload = payload;
            Bytes out(kMaxDatagramSize);
            const size_t n = write_packet(ctx, key, in, out);
            ASSERT_GT(n, 0u) << t;
            out.resize(n);
            Packet back;
            ASSERT_EQ(read_packet(ctx, key, out, back), WireError::ok) << t;
            EXPECT_EQ(back.type, in.type);
            EXPECT_EQ(back.sequence, in.sequence);
            if (in.type == PacketType::ping) {
                EXPECT_EQ(back.ping.client_id, -7);
                EXPECT_EQ(back.ping.time, 1ull << 60);
            }
            if (in.type == PacketType::payload) {
                EXPECT_TRUE(std::equal(payload.begin(), payload.end(), back.payload.begin()));
            }
            if (in.type == PacketType::challenge) {
                EXPECT_EQ(back.challenge.token_sequence, 12345u);
            }
        }
    }
}

TEST(Packets, WriteRefusesWhatCannotBeSent) {
    const crypto::Key key = key_counting_from(1);
    Bytes out(kMaxDatagramSize);
    Packet p;
    p.type = PacketType::payload;
    p.sequence = 1;
    EXPECT_EQ(write_packet(kCtx, key, p, out), 0u);  // empty payload
    Bytes big(1201);
    p.payload = big;
    EXPECT_EQ(write_packet(kCtx, key, p, out), 0u);
    Bytes ok(10);
    p.payload = ok;
    EXPECT_EQ(write_packet(kCtx, key, p, std::span(out.data(), 1 + 1 + 10 + 15)), 0u);  // no room for tag
    EXPECT_EQ(write_packet(kCtx, key, p, std::span(out.data(), 1 + 1 + 10 + 16)), 28u);
    p.type = PacketType::request;
    EXPECT_EQ(write_packet(kCtx, key, p, out), 0u);
}

TEST(Suites, VersionInfoNamesTheSuite) {
    EXPECT_EQ(crypto::suite_from_version(crypto::kVersionChaCha), crypto::Suite::chacha20poly1305);
    EXPECT_EQ(crypto::suite_from_version(crypto::kVersionAesGcm), crypto::Suite::aes256gcm);
    crypto::VersionInfo v = crypto::kVersionChaCha;
    v[11] = 1;
    EXPECT_FALSE(crypto::suite_from_version(v));
    EXPECT_FALSE(crypto::suite_from_version(std::span(v.data(), 11)));
}

}  // namespace
}  // namespace pomelo::test
