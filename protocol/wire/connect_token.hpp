// The connect token (spec §5): a 2048-byte public token handed to the client, carrying a
// 1024-byte private part that only servers holding the private key can open.
#pragma once

#include <array>
#include <cstdint>
#include <span>

#include "protocol/crypto/key.hpp"
#include "protocol/crypto/suite.hpp"
#include "protocol/wire/address.hpp"
#include "protocol/wire/constants.hpp"
#include "protocol/wire/error.hpp"

namespace pomelo::wire {

using TokenNonce = std::array<uint8_t, kConnectTokenNonceSize>;
using UserData = std::array<uint8_t, kUserDataSize>;

struct ServerAddresses {
    uint32_t count = 0;
    std::array<Address, kMaxServerAddresses> list{};

    std::span<const Address> view() const { return {list.data(), count}; }
    bool contains(const Address& a) const;
    bool push(const Address& a);  // false when full
};

// What only the server sees (§5.2).
struct PrivateConnectToken {
    int64_t client_id = 0;
    int32_t timeout_seconds = 0;
    ServerAddresses addresses;
    crypto::Key client_to_server_key;
    crypto::Key server_to_client_key;
    UserData user_data{};
};

// The public token as the client parses it (§5.1).
struct ConnectToken {
    crypto::Suite suite = crypto::Suite::chacha20poly1305;
    uint64_t protocol_id = 0;
    uint64_t create_ms = 0;
    uint64_t expire_ms = 0;
    TokenNonce nonce{};
    std::array<uint8_t, kPrivateTokenSize> encrypted_private{};
    int32_t timeout_seconds = 0;
    ServerAddresses addresses;
    crypto::Key client_to_server_key;
    crypto::Key server_to_client_key;
};

// Associated data of the private part (§5.3): version || protocol id || expire timestamp.
std::array<uint8_t, 28> private_token_ad(crypto::Suite suite, uint64_t protocol_id, uint64_t expire_ms);

// Plaintext of the private part, 1008 bytes, zero padded. Checks address count and types.
WireError encode_private_token(const PrivateConnectToken& token, std::span<uint8_t, kPrivateTokenPlainSize> out);
// Parses a decrypted private part: N in 1..32, types 1/2, no overrun, timeout != 0.
WireError decode_private_token(std::span<const uint8_t, kPrivateTokenPlainSize> plain, PrivateConnectToken& out);

// Encrypts the 1008-byte plaintext at out[0..1008) in place and writes the tag at out[1008..1024).
void seal_private_token(crypto::Suite suite, uint64_t protocol_id, uint64_t expire_ms, const TokenNonce& nonce,
                        const crypto::Key& private_key, std::span<uint8_t, kPrivateTokenSize> inout);
// Decrypts and parses a private part; the plaintext copy is wiped before returning.
WireError open_private_token(crypto::Suite suite, uint64_t protocol_id, uint64_t expire_ms,
                             std::span<const uint8_t, kConnectTokenNonceSize> nonce, const crypto::Key& private_key,
                             std::span<const uint8_t, kPrivateTokenSize> encrypted, PrivateConnectToken& out);

// Everything the backend chooses when it mints a token.
struct TokenSpec {
    crypto::Suite suite = crypto::Suite::chacha20poly1305;
    uint64_t protocol_id = 0;
    uint64_t create_ms = 0;
    uint64_t expire_ms = 0;
    TokenNonce nonce{};  // must be fresh random bytes for every token (§5.4)
    PrivateConnectToken private_part;
};

// Builds the whole 2048-byte token: private part sealed with private_key, public copy of the
// timeout, addresses and keys. Rejects create > expire and timeout 0.
WireError mint_connect_token(const TokenSpec& spec, const crypto::Key& private_key,
                             std::span<uint8_t, kConnectTokenSize> out);

// Parses a public token with every check of §5.5 except expiry (which needs a clock):
// version, N in 1..32, address types, overrun, create <= expire, timeout != 0.
WireError decode_connect_token(std::span<const uint8_t> bytes, ConnectToken& out);
WireError encode_connect_token(const ConnectToken& token, std::span<uint8_t, kConnectTokenSize> out);

}  // namespace pomelo::wire
