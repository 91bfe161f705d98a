// Every vector of ../shared/vectors/pomelo-1.03.json, both ways, one test case per vector:
// decrypt + decode gives the listed fields; encode + encrypt from the listed fields gives
// exactly the reference's wire bytes.
#include <gtest/gtest.h>

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
using nlohmann::json;

const json& find_by_name(const char* group, const std::string& name) {
    for (const json& v : vectors().at(group))
        if (v.at("name") == name) return v;
    throw std::runtime_error("no vector " + name);
}

std::vector<std::string> names_of(const char* group) {
    std::vector<std::string> names;
    for (const json& v : vectors().at(group)) names.push_back(v.at("name").get<std::string>());
    return names;
}

std::string param_name(const testing::TestParamInfo<std::string>& info) { return info.param; }

UserData user_data_of(const json& j) {
    Bytes b = hex(j.get<std::string>());
    UserData u{};
    EXPECT_EQ(b.size(), u.size());
    std::copy_n(b.begin(), std::min(b.size(), u.size()), u.begin());
    return u;
}

ServerAddresses addresses_of(const json& list) {
    ServerAddresses a;
    for (const json& x : list) {
        auto addr = Address::parse(x.at("address").get<std::string>());
        EXPECT_TRUE(addr.has_value()) << x.at("address");
        EXPECT_EQ(static_cast<int>(addr->type), x.at("type").get<int>());
        EXPECT_EQ(addr->port, x.at("port").get<int>());
        a.push(*addr);
    }
    return a;
}

// ---------------------------------------------------------------- connect tokens

class ConnectTokenVector : public testing::TestWithParam<std::string> {};

TEST_P(ConnectTokenVector, DecodesAndMintsByteExact) {
    const json& v = find_by_name("connect_tokens", GetParam());
    const json& in = v.at("inputs");
    const Bytes token = hex(v.at("token"));
    ASSERT_EQ(token.size(), kConnectTokenSize);
    const crypto::Key private_key = key_of(in.at("private_key"));

    // Decode the public token.
    ConnectToken pub;
    ASSERT_EQ(decode_connect_token(token, pub), WireError::ok);
    EXPECT_EQ(pub.suite, crypto::Suite::chacha20poly1305);
    EXPECT_EQ(pub.protocol_id, u64_of(in.at("protocol_id")));
    EXPECT_EQ(pub.create_ms, u64_of(in.at("create_timestamp_ms")));
    EXPECT_EQ(pub.expire_ms, u64_of(in.at("expire_timestamp_ms")));
    EXPECT_EQ(to_hex(pub.nonce), in.at("nonce"));
    EXPECT_EQ(pub.timeout_seconds, in.at("timeout_seconds").get<int32_t>());
    const ServerAddresses want_addresses = addresses_of(in.at("server_addresses"));
    ASSERT_EQ(pub.addresses.count, want_addresses.count);
    for (uint32_t i = 0; i < want_addresses.count; ++i) EXPECT_EQ(pub.addresses.list[i], want_addresses.list[i]);
    EXPECT_EQ(pub.client_to_server_key, key_of(in.at("client_to_server_key")));
    EXPECT_EQ(pub.server_to_client_key, key_of(in.at("server_to_client_key")));
    EXPECT_EQ(to_hex(pub.encrypted_private), v.at("private_encrypted"));
    EXPECT_EQ(v.at("private_offset_in_token").get<size_t>(), kPrivateTokenOffset);

    // Associated data of the private part.
    EXPECT_EQ(to_hex(private_token_ad(pub.suite, pub.protocol_id, pub.expire_ms)), v.at("private_associated_data"));

    // Decrypt and decode the private part.
    PrivateConnectToken priv;
    ASSERT_EQ(open_private_token(pub.suite, pub.protocol_id, pub.expire_ms, pub.nonce, private_key,
                                 pub.encrypted_private, priv),
              WireError::ok);
    EXPECT_EQ(priv.client_id, s64_of(in.at("client_id")));
    EXPECT_EQ(priv.timeout_seconds, in.at("timeout_seconds").get<int32_t>());
    ASSERT_EQ(priv.addresses.count, want_addresses.count);
    for (uint32_t i = 0; i < want_addresses.count; ++i) EXPECT_EQ(priv.addresses.list[i], want_addresses.list[i]);
    EXPECT_EQ(priv.client_to_server_key, key_of(in.at("client_to_server_key")));
    EXPECT_EQ(priv.server_to_client_key, key_of(in.at("server_to_client_key")));
    EXPECT_EQ(priv.user_data, user_data_of(in.at("user_data")));

    // Encode the private plaintext: the reference's first 1008 bytes.
    std::array<uint8_t, kPrivateTokenPlainSize> plain{};
    ASSERT_EQ(encode_private_token(priv, plain), WireError::ok);
    EXPECT_EQ(to_hex(plain), v.at("private_plaintext").get<std::string>().substr(0, 2 * kPrivateTokenPlainSize));
    EXPECT_EQ(v.at("private_encrypted_length").get<size_t>(), kPrivateTokenPlainSize);

    // Mint from the inputs alone: byte-exact token.
    TokenSpec spec;
    ASSERT_EQ(in.at("version_info"), "POMELO 1.03");
    spec.protocol_id = u64_of(in.at("protocol_id"));
    spec.create_ms = u64_of(in.at("create_timestamp_ms"));
    spec.expire_ms = u64_of(in.at("expire_timestamp_ms"));
    Bytes nonce = hex(in.at("nonce"));
    std::copy(nonce.begin(), nonce.end(), spec.nonce.begin());
    spec.private_part.client_id = s64_of(in.at("client_id"));
    spec.private_part.timeout_seconds = in.at("timeout_seconds").get<int32_t>();
    spec.private_part.addresses = want_addresses;
    spec.private_part.client_to_server_key = key_of(in.at("client_to_server_key"));
    spec.private_part.server_to_client_key = key_of(in.at("server_to_client_key"));
    spec.private_part.user_data = user_data_of(in.at("user_data"));
    std::array<uint8_t, kConnectTokenSize> minted{};
    ASSERT_EQ(mint_connect_token(spec, private_key, minted), WireError::ok);
    EXPECT_EQ(to_hex(minted), v.at("token"));

    // Re-encoding the decoded public token is the identity too.
    std::array<uint8_t, kConnectTokenSize> reencoded{};
    ASSERT_EQ(encode_connect_token(pub, reencoded), WireError::ok);
    EXPECT_EQ(to_hex(reencoded), v.at("token"));
}

INSTANTIATE_TEST_SUITE_P(Reference, ConnectTokenVector, testing::ValuesIn(names_of("connect_tokens")), param_name);

// ---------------------------------------------------------------- REQUEST packets

class RequestVector : public testing::TestWithParam<std::string> {};

TEST_P(RequestVector, DecodesAndEncodesByteExact) {
    const json& v = find_by_name("request_packets", GetParam());
    const json& tv = find_by_name("connect_tokens", v.at("from_token"));
    const Bytes wire = hex(v.at("wire"));
    ASSERT_EQ(wire.size(), v.at("wire_length").get<size_t>());
    EXPECT_EQ(v.at("type_id").get<int>(), 0);
    EXPECT_EQ(u64_of(v.at("prefix")), 0u);

    RequestPacket q;
    ASSERT_EQ(read_request(wire, q), WireError::ok);
    PacketHeader h;
    EXPECT_EQ(read_header(wire, h), WireError::ok);
    EXPECT_EQ(h.type, PacketType::request);
    EXPECT_EQ(q.suite, crypto::Suite::chacha20poly1305);
    EXPECT_EQ(q.protocol_id, u64_of(tv.at("inputs").at("protocol_id")));
    EXPECT_EQ(q.expire_ms, u64_of(tv.at("inputs").at("expire_timestamp_ms")));
    EXPECT_EQ(to_hex(q.nonce), tv.at("inputs").at("nonce"));
    EXPECT_EQ(to_hex(q.encrypted_private), tv.at("private_encrypted"));

    PrivateConnectToken priv;
    ASSERT_EQ(open_request(q, key_of(v.at("private_key")), priv), WireError::ok);
    EXPECT_EQ(priv.client_id, s64_of(tv.at("inputs").at("client_id")));
    EXPECT_EQ(priv.user_data, user_data_of(tv.at("inputs").at("user_data")));

    ConnectToken token;
    ASSERT_EQ(decode_connect_token(hex(tv.at("token")), token), WireError::ok);
    std::array<uint8_t, kRequestSize> out{};
    ASSERT_EQ(write_request(token, out), kRequestSize);
    EXPECT_EQ(to_hex(out), v.at("wire"));
}

INSTANTIATE_TEST_SUITE_P(Reference, RequestVector, testing::ValuesIn(names_of("request_packets")), param_name);

// ---------------------------------------------------------------- challenge tokens

class ChallengeTokenVector : public testing::TestWithParam<std::string> {};

TEST_P(ChallengeTokenVector, OpensAndSealsByteExact) {
    const json& v = find_by_name("challenge_tokens", GetParam());
    const crypto::Key key = key_of(v.at("key"));
    const uint64_t sequence = u64_of(v.at("sequence"));
    EXPECT_EQ(to_hex(crypto::packet_nonce(sequence)), v.at("nonce"));
    EXPECT_EQ(v.at("encrypted_length").get<size_t>(), kChallengeTokenPlainSize);
    const Bytes encrypted = hex(v.at("encrypted"));
    ASSERT_EQ(encrypted.size(), kChallengeTokenSize);

    ChallengeToken t;
    ASSERT_EQ(open_challenge_token(std::span<const uint8_t, kChallengeTokenSize>(encrypted.data(), kChallengeTokenSize),
                                   key, sequence, t),
              WireError::ok);
    EXPECT_EQ(t.client_id, s64_of(v.at("client_id")));
    EXPECT_EQ(t.user_data, user_data_of(v.at("user_data")));

    // The wrong sequence (nonce) must not open it.
    ChallengeToken wrong;
    EXPECT_EQ(open_challenge_token(std::span<const uint8_t, kChallengeTokenSize>(encrypted.data(), kChallengeTokenSize),
                                   key, sequence + 1, wrong),
              WireError::auth_failed);

    std::array<uint8_t, kChallengeTokenSize> sealed{};
    seal_challenge_token(t, key, sequence, sealed);
    EXPECT_EQ(to_hex(sealed), v.at("encrypted"));
}

INSTANTIATE_TEST_SUITE_P(Reference, ChallengeTokenVector, testing::ValuesIn(names_of("challenge_tokens")), param_name);

// ---------------------------------------------------------------- encrypted packets

class PacketVector : public testing::TestWithParam<std::string> {};

void expect_fields(const json& v, const Packet& p, const Bytes& plaintext_body) {
    const json& f = v.at("fields");
    switch (p.type) {
        case PacketType::denied:
        case PacketType::disconnect:
            EXPECT_TRUE(plaintext_body.empty());
            break;
        case PacketType::challenge: {
            EXPECT_EQ(p.challenge.token_sequence, u64_of(f.at("token_sequence")));
            EXPECT_EQ(to_hex(p.challenge.encrypted_token), f.at("encrypted_challenge_token"));
            // The inner token opens with the challenge key and the token sequence.
            ChallengeToken t;
            ASSERT_EQ(open_challenge_token(p.challenge.encrypted_token.first<kChallengeTokenSize>(),
                                           key_of(f.at("challenge_key")), p.challenge.token_sequence, t),
                      WireError::ok);
            EXPECT_EQ(t.client_id, s64_of(f.at("challenge_token_client_id")));
            EXPECT_EQ(t.user_data, user_data_of(f.at("challenge_token_user_data")));
            break;
        }
        case PacketType::response:
            EXPECT_EQ(p.challenge.token_sequence, u64_of(f.at("token_sequence")));
            EXPECT_EQ(to_hex(p.challenge.encrypted_token), f.at("encrypted_challenge_token"));
            break;
        case PacketType::ping: {
            EXPECT_EQ(p.ping.client_id, s64_of(f.at("client_id")));
            EXPECT_EQ(p.ping.ping_sequence, u64_of(f.at("ping_sequence")));
            EXPECT_EQ(p.ping.has_time, f.at("attach_time").get<bool>());
            if (f.contains("decoded_time")) {  // the reference's packing quirk lost the top byte
                EXPECT_EQ(p.ping.time, u64_of(f.at("decoded_time")));
            } else if (p.ping.has_time) {
                EXPECT_EQ(p.ping.time, u64_of(f.at("time")));
            }
            PingBody body;
            PingLayout layout;
            ASSERT_EQ(read_ping_body(plaintext_body, body, &layout), WireError::ok);
            EXPECT_EQ(plaintext_body[0], u64_of(f.at("meta")));
            EXPECT_EQ(layout.time_bytes, f.at("time_bytes").get<int>());
            EXPECT_EQ(layout.client_id_bytes, f.at("client_id_bytes").get<int>());
            EXPECT_EQ(layout.ping_sequence_bytes, f.at("ping_sequence_bytes").get<int>());
            break;
        }
        case PacketType::pong: {
            EXPECT_EQ(p.pong.ping_sequence, u64_of(f.at("ping_sequence")));
            EXPECT_EQ(p.pong.ping_recv_time, u64_of(f.at("ping_recv_time")));
            EXPECT_EQ(p.pong.pong_delta_time, u64_of(f.at("pong_delta_time")));
            PongBody body;
            PongLayout layout;
            ASSERT_EQ(read_pong_body(plaintext_body, body, &layout), WireError::ok);
            EXPECT_EQ(plaintext_body[0], u64_of(f.at("meta")));
            EXPECT_EQ(layout.ping_sequence_bytes, f.at("ping_sequence_bytes").get<int>());
            EXPECT_EQ(layout.recv_time_bytes, f.at("ping_recv_time_bytes").get<int>());
            EXPECT_EQ(layout.delta_time_bytes, f.at("pong_delta_time_bytes").get<int>());
            break;
        }
        case PacketType::payload: {
            EXPECT_EQ(p.payload.size(), f.at("payload_length").get<size_t>());
            EXPECT_EQ(to_hex(p.payload), f.at("payload"));
            for (size_t i = 0; i < p.payload.size(); ++i)
                ASSERT_EQ(p.payload[i], static_cast<uint8_t>((i * 7 + 3) & 0xff)) << i;
            break;
        }
        case PacketType::request:
            FAIL() << "request in packets[]";
    }
}

// Builds the packet to encode from the listed fields, as the sender had them.
Packet packet_from_fields(const json& v, Bytes& storage) {
    const json& f = v.at("fields");
    Packet p;
    p.type = static_cast<PacketType>(v.at("type_id").get<int>());
    p.sequence = u64_of(v.at("sequence"));
    switch (p.type) {
        case PacketType::challenge:
        case PacketType::response:
            storage = hex(f.at("encrypted_challenge_token"));
            p.challenge = {u64_of(f.at("token_sequence")), storage};
            break;
        case PacketType::ping:
            p.ping.client_id = s64_of(f.at("client_id"));
            p.ping.ping_sequence = static_cast<uint16_t>(u64_of(f.at("ping_sequence")));
            p.ping.has_time = f.at("attach_time").get<bool>();
            p.ping.time = p.ping.has_time ? u64_of(f.at("time")) : 0;
            break;
        case PacketType::pong:
            p.pong.ping_sequence = static_cast<uint16_t>(u64_of(f.at("ping_sequence")));
            p.pong.ping_recv_time = u64_of(f.at("ping_recv_time"));
            p.pong.pong_delta_time = u64_of(f.at("pong_delta_time"));
            break;
        case PacketType::payload:
            storage = hex(f.at("payload"));
            p.payload = storage;
            break;
        default:
            break;
    }
    return p;
}

TEST_P(PacketVector, DecryptsDecodesAndEncodesByteExact) {
    const json& v = find_by_name("packets", GetParam());
    const crypto::Key key = key_of(v.at("key"));
    const PacketContext ctx{crypto::Suite::chacha20poly1305, u64_of(v.at("protocol_id_in_ad"))};
    const uint64_t sequence = u64_of(v.at("sequence"));
    const uint8_t prefix = static_cast<uint8_t>(u64_of(v.at("prefix")));
    Bytes wire = hex(v.at("wire"));
    ASSERT_EQ(wire.size(), v.at("wire_length").get<size_t>());

    // AD and nonce exactly as the reference passed them to libsodium.
    EXPECT_EQ(to_hex(packet_ad(ctx, prefix)), v.at("associated_data"));
    EXPECT_EQ(to_hex(crypto::packet_nonce(sequence)), v.at("nonce"));

    // Header.
    PacketHeader h;
    ASSERT_EQ(read_header(wire, h), WireError::ok);
    EXPECT_EQ(static_cast<int>(h.type), v.at("type_id").get<int>());
    EXPECT_EQ(h.sequence, sequence);
    EXPECT_EQ(h.sequence_bytes, v.at("sequence_bytes").get<int>());
    EXPECT_EQ(wire[0], prefix);
    EXPECT_EQ(prefix, make_prefix(h.type, h.sequence_bytes));

    // Decrypt: the plaintext body is the reference's.
    Bytes opened = wire;
    std::span<uint8_t> body;
    ASSERT_EQ(open_packet(ctx, key, h, opened, body), WireError::ok);
    const Bytes plaintext_body(body.begin(), body.end());
    EXPECT_EQ(to_hex(plaintext_body), v.at("plaintext_body"));
    EXPECT_EQ(plaintext_body.size(), v.at("plaintext_body_length").get<size_t>());

    // Whole read path: fields.
    Bytes readable = wire;
    Packet p;
    ASSERT_EQ(read_packet(ctx, key, readable, p), WireError::ok);
    EXPECT_EQ(static_cast<int>(p.type), v.at("type_id").get<int>());
    EXPECT_EQ(p.sequence, sequence);
    expect_fields(v, p, plaintext_body);

    // Encode from the fields with the reference's field widths: exactly the wire bytes.
    Bytes storage;
    const Packet send = packet_from_fields(v, storage);
    WriteOptions ref;
    ref.sequence_bytes = static_cast<uint8_t>(reference_trimmed_length(sequence));
    EXPECT_EQ(ref.sequence_bytes, v.at("sequence_bytes").get<int>());
    PingLayout ping_ref;
    PongLayout pong_ref;
    if (send.type == PacketType::ping) {
        ping_ref.time_bytes = static_cast<uint8_t>(send.ping.has_time ? reference_trimmed_length(send.ping.time) : 0);
        ping_ref.client_id_bytes =
            static_cast<uint8_t>(reference_trimmed_length(static_cast<uint64_t>(send.ping.client_id)));
        ping_ref.ping_sequence_bytes = static_cast<uint8_t>(reference_trimmed_length(send.ping.ping_sequence));
        ref.ping_layout = &ping_ref;
    }
    if (send.type == PacketType::pong) {
        pong_ref = {static_cast<uint8_t>(reference_trimmed_length(send.pong.ping_sequence)),
                    static_cast<uint8_t>(reference_trimmed_length(send.pong.ping_recv_time)),
                    static_cast<uint8_t>(reference_trimmed_length(send.pong.pong_delta_time))};
        ref.pong_layout = &pong_ref;
    }
    std::array<uint8_t, kMaxDatagramSize> out{};
    const size_t n = write_packet(ctx, key, send, out, ref);
    ASSERT_EQ(n, wire.size());
    EXPECT_EQ(to_hex(out.data(), n), v.at("wire"));

    // Our canonical encoder gives the same bytes whenever the reference widths are canonical;
    // where they are not (the §3.2 quirk), ours decodes back to the true value.
    const size_t m = write_packet(ctx, key, send, out);
    ASSERT_GT(m, 0u);
    const bool quirk = v.at("fields").contains("decoded_time");
    if (!quirk) {
        EXPECT_EQ(to_hex(out.data(), m), v.at("wire"));
    } else {
        EXPECT_NE(to_hex(out.data(), m), v.at("wire"));
        Packet back;
        ASSERT_EQ(read_packet(ctx, key, std::span(out.data(), m), back), WireError::ok);
        EXPECT_EQ(back.ping.time, send.ping.time);
    }

    // One flipped ciphertext bit, or the wrong key, fails authentication.
    Bytes tampered = wire;
    tampered.back() ^= 0x01;
    Packet ignored;
    EXPECT_EQ(read_packet(ctx, key, tampered, ignored), WireError::auth_failed);
    crypto::Key other = key;
    other.bytes[0] ^= 0x80;
    Bytes copy = wire;
    EXPECT_EQ(read_packet(ctx, other, copy, ignored), WireError::auth_failed);
}

INSTANTIATE_TEST_SUITE_P(Reference, PacketVector, testing::ValuesIn(names_of("packets")), param_name);

TEST(VectorFile, HasEveryGroupAndNoSelfCheckFailures) {
    EXPECT_EQ(vectors().at("connect_tokens").size(), 3u);
    EXPECT_EQ(vectors().at("request_packets").size(), 2u);
    EXPECT_EQ(vectors().at("challenge_tokens").size(), 3u);
    EXPECT_EQ(vectors().at("packets").size(), 28u);
    EXPECT_EQ(vectors().at("generation").at("self_check_failures").get<int>(), 0);
    EXPECT_EQ(to_hex(crypto::version_info(crypto::Suite::chacha20poly1305)),
              vectors().at("reference").at("version_info_bytes"));
}

}  // namespace
}  // namespace pomelo::test
