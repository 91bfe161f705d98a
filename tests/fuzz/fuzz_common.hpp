// Shared helpers of the libFuzzer targets: the invariant check, the fixed keys (the ones of
// the reference vectors, so that seeds taken from the vectors authenticate), small byte helpers.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <span>

#include "protocol/crypto/aead.hpp"
#include "protocol/crypto/key.hpp"
#include "protocol/wire/address.hpp"
#include "protocol/wire/error.hpp"

namespace pomelo::fuzz {

// An invariant violation is a finding: report it and trap so that libFuzzer writes the
// crash artifact (the sanitizers' "deadly signal" path).
[[noreturn]] inline void fail(const char* what, const char* file, int line) {
    std::fprintf(stderr, "\n==FUZZ INVARIANT VIOLATED== %s\n    at %s:%d\n", what, file, line);
    std::fflush(stderr);
    __builtin_trap();
}

#define FUZZ_CHECK(cond)                                                    \
    do {                                                                    \
        if (!(cond)) ::pomelo::fuzz::fail(#cond, __FILE__, __LINE__);       \
    } while (0)

// The vectors' keys are 32 consecutive byte values (common_inputs in pomelo-1.03.json).
inline crypto::Key counting_key(uint8_t first) {
    crypto::Key k;
    for (size_t i = 0; i < k.bytes.size(); ++i) k.bytes[i] = static_cast<uint8_t>(first + i);
    return k;
}

inline const crypto::Key& private_key() {
    static const crypto::Key k = counting_key(0xa0);
    return k;
}
inline const crypto::Key& client_to_server_key() {
    static const crypto::Key k = counting_key(0x10);
    return k;
}
inline const crypto::Key& server_to_client_key() {
    static const crypto::Key k = counting_key(0x40);
    return k;
}
inline const crypto::Key& challenge_key() {
    static const crypto::Key k = counting_key(0x70);
    return k;
}
inline const crypto::Key& zero_key() {
    static const crypto::Key k;
    return k;
}

inline constexpr uint64_t kProtocolId = 0x1122334455667788ull;

// Packet-target selector byte (first input byte), shared with make_corpus.cpp:
//   bits 0-1  key: 0 client-to-server, 1 server-to-client, 2 zero key, 3 private key
//   bit  2    protocol id 0 in the AD instead of kProtocolId (the reference DENIED quirk)
//   bit  3    suite AES-256-GCM instead of ChaCha20-Poly1305
//   bits 4-5  mode: 0 raw datagram, 1 header+plaintext sealed then read, 2-3 structured
namespace selector {
inline constexpr uint8_t kKeyMask = 0x03;
inline constexpr uint8_t kKeyC2S = 0, kKeyS2C = 1, kKeyZero = 2, kKeyPrivate = 3;
inline constexpr uint8_t kProtocolIdZero = 0x04;
inline constexpr uint8_t kAesGcm = 0x08;
inline constexpr uint8_t kModeRaw = 0x00, kModeSeal = 0x10, kModeStructured = 0x20;
inline constexpr uint8_t kModeMask = 0x30;
}  // namespace selector

inline const crypto::Key& key_of_selector(uint8_t s) {
    switch (s & selector::kKeyMask) {
        case selector::kKeyC2S:
            return client_to_server_key();
        case selector::kKeyS2C:
            return server_to_client_key();
        case selector::kKeyZero:
            return zero_key();
        default:
            return private_key();
    }
}

inline bool same_bytes(std::span<const uint8_t> a, std::span<const uint8_t> b) {
    return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size()) == 0);
}

inline bool all_zero(std::span<const uint8_t> a) {
    for (uint8_t b : a)
        if (b != 0) return false;
    return true;
}

// The low n bytes of v (what a field of n bytes carries).
constexpr uint64_t low_bytes(uint64_t v, unsigned n) { return n >= 8 ? v : v & ((uint64_t{1} << (8 * n)) - 1); }

// Sum of the server address records (for the "meaningful prefix" of the token layouts).
template <class Addresses>
size_t records_size(const Addresses& a) {
    size_t n = 0;
    for (const wire::Address& x : a.view()) n += x.record_size();
    return n;
}

}  // namespace pomelo::fuzz
