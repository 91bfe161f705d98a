// REQUEST (spec §8.1): the only unencrypted packet; it forwards the token's private part.
#pragma once

#include <cstdint>
#include <span>

#include "protocol/crypto/key.hpp"
#include "protocol/crypto/suite.hpp"
#include "protocol/wire/connect_token.hpp"

namespace pomelo::wire {

struct RequestPacket {
    crypto::Suite suite = crypto::Suite::chacha20poly1305;  // from the version info
    uint64_t protocol_id = 0;
    uint64_t expire_ms = 0;
    std::span<const uint8_t> nonce;              // kConnectTokenNonceSize bytes
    std::span<const uint8_t> encrypted_private;  // kPrivateTokenSize bytes

    // The private part's AEAD tag: unique per token, the key of the token-reuse history.
    std::span<const uint8_t, kTagSize> token_tag() const {
        return encrypted_private.last<kTagSize>();
    }
};

// Copies the token's public fields into a 1077-byte REQUEST; returns 1077, or 0 if out is small.
size_t write_request(const ConnectToken& token, std::span<uint8_t> out);
// Checks size, prefix 0x00 and version (which names the suite); keeps views into `datagram`.
WireError read_request(std::span<const uint8_t> datagram, RequestPacket& out);
// Decrypts and validates the private part with the server's private key (the expensive step).
WireError open_request(const RequestPacket& request, const crypto::Key& private_key, PrivateConnectToken& out);

}  // namespace pomelo::wire
