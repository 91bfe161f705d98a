// The AEAD primitives of the protocol (spec §4, §5.3, §6, §7.5), all detached and in place:
// the caller owns the buffer, the tag is read from or written to a separate 16-byte slot.
//
// Packet AEAD: nonce = 00 00 00 00 || sequence u64 LE (12 bytes), under the peer's key.
// Token AEAD:  XChaCha20-Poly1305 with the 24-byte token nonce.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "protocol/crypto/key.hpp"
#include "protocol/crypto/suite.hpp"

namespace pomelo::crypto {

// Must succeed once before any other call; idempotent and thread-safe. Returns false only if
// libsodium cannot initialise (no entropy source).
bool init();

// True when the suite can run on this host (AES-256-GCM needs AES-NI + PCLMUL).
bool suite_available(Suite suite);

using PacketNonce = std::array<uint8_t, 12>;
inline PacketNonce packet_nonce(uint64_t sequence) {
    PacketNonce n{};
    for (unsigned i = 0; i < 8; ++i) n[4 + i] = static_cast<uint8_t>(sequence >> (8 * i));
    return n;
}

// Encrypts `text` in place and writes the tag. False only if the suite is unavailable.
bool packet_seal(Suite suite, const Key& key, uint64_t sequence, std::span<const uint8_t> ad,
                 std::span<uint8_t> text, uint8_t* tag);
// Decrypts `text` in place if the tag authenticates; on failure `text` is zeroed (libsodium
// wipes the output), never left half-decrypted.
bool packet_open(Suite suite, const Key& key, uint64_t sequence, std::span<const uint8_t> ad,
                 std::span<uint8_t> text, const uint8_t* tag);

// Same as packet_seal/open but with an explicit 12-byte nonce and separate input/output
// (used by the challenge token, which is never decrypted in the packet buffer).
void chacha_seal(const Key& key, const PacketNonce& nonce, std::span<const uint8_t> ad, const uint8_t* in,
                 size_t len, uint8_t* out, uint8_t* tag);
bool chacha_open(const Key& key, const PacketNonce& nonce, std::span<const uint8_t> ad, const uint8_t* in,
                 size_t len, uint8_t* out, const uint8_t* tag);

void xchacha_seal(const Key& key, std::span<const uint8_t, 24> nonce, std::span<const uint8_t> ad,
                  std::span<uint8_t> text, uint8_t* tag);
bool xchacha_open(const Key& key, std::span<const uint8_t, 24> nonce, std::span<const uint8_t> ad,
                  const uint8_t* in, size_t len, uint8_t* out, const uint8_t* tag);

}  // namespace pomelo::crypto
