// Connect token checks of spec §5.5, on both the public and the private part.
#include <gtest/gtest.h>

#include "protocol/crypto/aead.hpp"
#include "protocol/wire/bytes.hpp"
#include "protocol/wire/connect_token.hpp"
#include "protocol/wire/request.hpp"
#include "tests/support/vectors.hpp"

namespace pomelo::test {
namespace {

using namespace pomelo::wire;

TokenSpec valid_spec() {
    TokenSpec s;
    s.protocol_id = 0xABCDEF;
    s.create_ms = 1000;
    s.expire_ms = 2000;
    crypto::random_bytes(s.nonce.data(), s.nonce.size());
    s.private_part.client_id = -5;
    s.private_part.timeout_seconds = 5;
    s.private_part.addresses.push(*Address::parse("198.18.0.1:40000"));
    s.private_part.client_to_server_key = crypto::Key::random();
    s.private_part.server_to_client_key = crypto::Key::random();
    s.private_part.user_data.fill(0x33);
    return s;
}

struct Minted {
    crypto::Key private_key = crypto::Key::random();
    std::array<uint8_t, kConnectTokenSize> bytes{};
};

Minted mint(const TokenSpec& s) {
    Minted m;
    EXPECT_EQ(mint_connect_token(s, m.private_key, m.bytes), WireError::ok);
    return m;
}

// Offsets of the public layout (§5.1).
constexpr size_t kCountOffset = 1088, kFirstTypeOffset = 1092;

TEST(ConnectToken, RoundTripsEveryField) {
    TokenSpec s = valid_spec();
    s.private_part.addresses.push(*Address::parse("[2001:db8::7]:1"));
    Minted m = mint(s);
    ConnectToken t;
    ASSERT_EQ(decode_connect_token(m.bytes, t), WireError::ok);
    EXPECT_EQ(t.protocol_id, s.protocol_id);
    EXPECT_EQ(t.create_ms, 1000u);
    EXPECT_EQ(t.expire_ms, 2000u);
    EXPECT_EQ(t.nonce, s.nonce);
    EXPECT_EQ(t.timeout_seconds, 5);
    ASSERT_EQ(t.addresses.count, 2u);
    EXPECT_EQ(t.addresses.list[1].to_string(), "[2001:db8::7]:1");
    EXPECT_EQ(t.client_to_server_key, s.private_part.client_to_server_key);
    PrivateConnectToken p;
    ASSERT_EQ(open_private_token(t.suite, t.protocol_id, t.expire_ms, t.nonce, m.private_key, t.encrypted_private, p),
              WireError::ok);
    EXPECT_EQ(p.client_id, -5);
    EXPECT_EQ(p.user_data, s.private_part.user_data);
    EXPECT_TRUE(p.addresses.contains(*Address::parse("198.18.0.1:40000")));
    EXPECT_FALSE(p.addresses.contains(*Address::parse("198.18.0.1:40001")));
}

TEST(ConnectToken, ThirtyTwoIpv6AddressesFit) {
    TokenSpec s = valid_spec();
    s.private_part.addresses = {};
    for (int i = 0; i < 32; ++i)
        ASSERT_TRUE(s.private_part.addresses.push(*Address::parse("[2001:db8::" + std::to_string(i + 1) + "]:9")));
    EXPECT_FALSE(s.private_part.addresses.push(*Address::parse("[::1]:9")));
    Minted m = mint(s);
    ConnectToken t;
    ASSERT_EQ(decode_connect_token(m.bytes, t), WireError::ok);
    EXPECT_EQ(t.addresses.count, 32u);
    PrivateConnectToken p;
    ASSERT_EQ(open_private_token(t.suite, t.protocol_id, t.expire_ms, t.nonce, m.private_key, t.encrypted_private, p),
              WireError::ok);
    EXPECT_EQ(p.addresses.list[31].to_string(), "[2001:db8::32]:9");
}

TEST(ConnectTokenRejects, WrongVersion) {
    Minted m = mint(valid_spec());
    m.bytes[10] = '4';  // "POMELO 1.04"
    ConnectToken t;
    EXPECT_EQ(decode_connect_token(m.bytes, t), WireError::bad_version);
    m.bytes[10] = '3';
    m.bytes[11] = ' ';  // no NUL
    EXPECT_EQ(decode_connect_token(m.bytes, t), WireError::bad_version);
}

TEST(ConnectTokenRejects, WrongSize) {
    Minted m = mint(valid_spec());
    ConnectToken t;
    EXPECT_EQ(decode_connect_token(std::span(m.bytes.data(), 2047), t), WireError::bad_body_size);
}

TEST(ConnectTokenRejects, AddressCountZeroOrAbove32) {
    Minted m = mint(valid_spec());
    ConnectToken t;
    for (uint32_t n : {0u, 33u, 0x80000000u, 0xFFFFFFFFu}) {
        store_le(m.bytes.data() + kCountOffset, n, 4);
        EXPECT_EQ(decode_connect_token(m.bytes, t), WireError::bad_address_count) << n;
    }
}

TEST(ConnectTokenRejects, AddressTypeNotOneOrTwo) {
    Minted m = mint(valid_spec());
    ConnectToken t;
    for (uint8_t type : {0, 3, 0xFF}) {
        m.bytes[kFirstTypeOffset] = type;
        EXPECT_EQ(decode_connect_token(m.bytes, t), WireError::bad_address_type);
    }
}

TEST(ConnectTokenRejects, CreateAfterExpire) {
    Minted m = mint(valid_spec());
    store_le(m.bytes.data() + 20, 2001, 8);
    ConnectToken t;
    EXPECT_EQ(decode_connect_token(m.bytes, t), WireError::bad_timestamps);
    TokenSpec s = valid_spec();
    s.create_ms = s.expire_ms + 1;
    std::array<uint8_t, kConnectTokenSize> out{};
    EXPECT_EQ(mint_connect_token(s, crypto::Key::random(), out), WireError::bad_timestamps);
}

TEST(ConnectTokenRejects, TimeoutZero) {
    TokenSpec s = valid_spec();
    s.private_part.timeout_seconds = 0;
    std::array<uint8_t, kConnectTokenSize> out{};
    EXPECT_EQ(mint_connect_token(s, crypto::Key::random(), out), WireError::bad_timeout);
    Minted m = mint(valid_spec());
    store_le(m.bytes.data() + 1084, 0, 4);
    ConnectToken t;
    EXPECT_EQ(decode_connect_token(m.bytes, t), WireError::bad_timeout);
}

TEST(ConnectTokenRejects, MintingInvalidAddressLists) {
    std::array<uint8_t, kConnectTokenSize> out{};
    TokenSpec s = valid_spec();
    s.private_part.addresses = {};
    EXPECT_EQ(mint_connect_token(s, crypto::Key::random(), out), WireError::bad_address_count);
    s = valid_spec();
    s.private_part.addresses.list[0].type = AddressType::none;
    EXPECT_EQ(mint_connect_token(s, crypto::Key::random(), out), WireError::bad_address_type);
}

TEST(PrivateTokenRejects, WrongKeyOrAssociatedData) {
    TokenSpec s = valid_spec();
    Minted m = mint(s);
    ConnectToken t;
    ASSERT_EQ(decode_connect_token(m.bytes, t), WireError::ok);
    PrivateConnectToken p;
    EXPECT_EQ(open_private_token(t.suite, t.protocol_id, t.expire_ms, t.nonce, crypto::Key::random(),
                                 t.encrypted_private, p),
              WireError::auth_failed);
    EXPECT_EQ(open_private_token(t.suite, t.protocol_id + 1, t.expire_ms, t.nonce, m.private_key, t.encrypted_private, p),
              WireError::auth_failed);
    EXPECT_EQ(open_private_token(t.suite, t.protocol_id, t.expire_ms + 1, t.nonce, m.private_key, t.encrypted_private, p),
              WireError::auth_failed);
    EXPECT_EQ(open_private_token(crypto::Suite::aes256gcm, t.protocol_id, t.expire_ms, t.nonce, m.private_key,
                                 t.encrypted_private, p),
              WireError::auth_failed);
    TokenNonce nonce = t.nonce;
    nonce[0] ^= 1;
    EXPECT_EQ(open_private_token(t.suite, t.protocol_id, t.expire_ms, nonce, m.private_key, t.encrypted_private, p),
              WireError::auth_failed);
}

// A private part that authenticates but breaks §5.5: only a holder of the private key can
// make one, and the server still refuses it.
WireError open_forged_private(const std::function<void(std::array<uint8_t, kPrivateTokenPlainSize>&)>& edit) {
    TokenSpec s = valid_spec();
    std::array<uint8_t, kPrivateTokenSize> priv{};
    auto plain = std::span<uint8_t, kPrivateTokenSize>(priv).first<kPrivateTokenPlainSize>();
    EXPECT_EQ(encode_private_token(s.private_part, plain), WireError::ok);
    std::array<uint8_t, kPrivateTokenPlainSize> copy;
    std::copy(plain.begin(), plain.end(), copy.begin());
    edit(copy);
    std::copy(copy.begin(), copy.end(), plain.begin());
    const crypto::Key key = crypto::Key::random();
    seal_private_token(s.suite, s.protocol_id, s.expire_ms, s.nonce, key, priv);
    PrivateConnectToken p;
    return open_private_token(s.suite, s.protocol_id, s.expire_ms, s.nonce, key, priv, p);
}

TEST(PrivateTokenRejects, AuthenticatedButInvalidContents) {
    EXPECT_EQ(open_forged_private([](auto&) {}), WireError::ok);
    EXPECT_EQ(open_forged_private([](auto& b) { store_le(b.data() + 12, 0, 4); }), WireError::bad_address_count);
    EXPECT_EQ(open_forged_private([](auto& b) { store_le(b.data() + 12, 33, 4); }), WireError::bad_address_count);
    EXPECT_EQ(open_forged_private([](auto& b) { b[16] = 7; }), WireError::bad_address_type);
    EXPECT_EQ(open_forged_private([](auto& b) { store_le(b.data() + 8, 0, 4); }), WireError::bad_timeout);
}

TEST(Request, CarriesTheTokenVerbatimAndOpensOnTheServer) {
    TokenSpec s = valid_spec();
    Minted m = mint(s);
    ConnectToken t;
    ASSERT_EQ(decode_connect_token(m.bytes, t), WireError::ok);
    std::array<uint8_t, kRequestSize> q{};
    ASSERT_EQ(write_request(t, q), kRequestSize);
    EXPECT_TRUE(std::equal(q.begin() + 1, q.begin() + 13, m.bytes.begin()));
    EXPECT_TRUE(std::equal(q.begin() + 29, q.end(), m.bytes.begin() + 36));
    RequestPacket rp;
    ASSERT_EQ(read_request(q, rp), WireError::ok);
    EXPECT_TRUE(std::equal(rp.token_tag().begin(), rp.token_tag().end(), m.bytes.begin() + 1068));
    PrivateConnectToken p;
    ASSERT_EQ(open_request(rp, m.private_key, p), WireError::ok);
    EXPECT_EQ(p.client_id, -5);

    // Tampering with any AD field makes the server's decrypt fail.
    for (size_t offset : {13u, 21u, 29u, 100u}) {
        auto bad = q;
        bad[offset] ^= 1;
        RequestPacket r2;
        ASSERT_EQ(read_request(bad, r2), WireError::ok);
        EXPECT_EQ(open_request(r2, m.private_key, p), WireError::auth_failed) << offset;
    }
}

TEST(RequestRejects, PrefixSizeAndVersion) {
    Minted m = mint(valid_spec());
    ConnectToken t;
    ASSERT_EQ(decode_connect_token(m.bytes, t), WireError::ok);
    std::array<uint8_t, kRequestSize + 1> q{};
    ASSERT_EQ(write_request(t, q), kRequestSize);
    RequestPacket rp;
    EXPECT_EQ(read_request(std::span(q.data(), kRequestSize + 1), rp), WireError::bad_body_size);
    EXPECT_EQ(read_request(std::span(q.data(), kRequestSize - 1), rp), WireError::bad_body_size);
    EXPECT_EQ(read_request(std::span(q.data(), 17), rp), WireError::datagram_too_short);
    q[1] = 'X';
    EXPECT_EQ(read_request(std::span(q.data(), kRequestSize), rp), WireError::bad_version);
    q[1] = 'P';
    q[0] = 0x01;
    EXPECT_EQ(read_request(std::span(q.data(), kRequestSize), rp), WireError::bad_prefix);
}

TEST(AesGcmSuite, TokensCarryTheirSuite) {
    TokenSpec s = valid_spec();
    s.suite = crypto::Suite::aes256gcm;
    Minted m = mint(s);
    EXPECT_EQ(std::string(reinterpret_cast<const char*>(m.bytes.data())), "POMELO 1.3G");
    ConnectToken t;
    ASSERT_EQ(decode_connect_token(m.bytes, t), WireError::ok);
    EXPECT_EQ(t.suite, crypto::Suite::aes256gcm);
    std::array<uint8_t, kRequestSize> q{};
    ASSERT_EQ(write_request(t, q), kRequestSize);
    RequestPacket rp;
    ASSERT_EQ(read_request(q, rp), WireError::ok);
    EXPECT_EQ(rp.suite, crypto::Suite::aes256gcm);
    PrivateConnectToken p;
    EXPECT_EQ(open_request(rp, m.private_key, p), WireError::ok);
}

}  // namespace
}  // namespace pomelo::test
