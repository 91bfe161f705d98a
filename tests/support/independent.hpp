// An independent decoder of what our server sends: spec §7 framing and §7.5 AEAD, written
// from the spec with libsodium called directly, never through protocol/wire. Tests check wire
// bytes with it so that a bug shared by our encoder and decoder cannot hide.
#pragma once

#include <sodium.h>

#include <array>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <vector>

namespace pomelo::test::independent {

inline constexpr uint8_t kVersion[12] = {'P', 'O', 'M', 'E', 'L', 'O', ' ', '1', '.', '0', '3', 0};
inline constexpr uint8_t kVersionGcm[12] = {'P', 'O', 'M', 'E', 'L', 'O', ' ', '1', '.', '3', 'G', 0};

struct Opened {
    unsigned type = 0;
    uint64_t sequence = 0;
    std::vector<uint8_t> body;
};

// Opens an encrypted datagram (any type but REQUEST) under `key` (32 bytes) and protocol id;
// nullopt when the framing is wrong or the tag does not authenticate. ChaCha20-Poly1305 unless
// `aes_gcm` (Appendix B).
inline std::optional<Opened> open(std::span<const uint8_t> d, std::span<const uint8_t, 32> key, uint64_t protocol_id,
                                  bool aes_gcm = false) {
    if (d.size() < 1 + 1 + 16 || d[0] == 0) return std::nullopt;
    const unsigned type = d[0] >> 4, n = d[0] & 15;
    if (type >= 8 || n < 1 || n > 8 || d.size() < 1 + n + 16) return std::nullopt;
    Opened o;
    o.type = type;
    for (unsigned i = 0; i < n; ++i) o.sequence |= uint64_t{d[1 + i]} << (8 * i);
    uint8_t ad[21];
    std::memcpy(ad, aes_gcm ? kVersionGcm : kVersion, 12);
    for (int i = 0; i < 8; ++i) ad[12 + i] = static_cast<uint8_t>(protocol_id >> (8 * i));
    ad[20] = d[0];
    uint8_t nonce[12] = {};
    for (int i = 0; i < 8; ++i) nonce[4 + i] = static_cast<uint8_t>(o.sequence >> (8 * i));
    const uint8_t* c = d.data() + 1 + n;
    const size_t clen = d.size() - 1 - n;  // ciphertext || tag
    o.body.resize(clen - 16);
    unsigned long long mlen = 0;
    const int rc = aes_gcm ? crypto_aead_aes256gcm_decrypt(o.body.data(), &mlen, nullptr, c, clen, ad, sizeof ad,
                                                           nonce, key.data())
                           : crypto_aead_chacha20poly1305_ietf_decrypt(o.body.data(), &mlen, nullptr, c, clen, ad,
                                                                       sizeof ad, nonce, key.data());
    if (rc != 0) return std::nullopt;
    o.body.resize(mlen);
    return o;
}

}  // namespace pomelo::test::independent
