#include "protocol/wire/challenge_token.hpp"

#include "protocol/crypto/aead.hpp"
#include "protocol/wire/bytes.hpp"

#include <cstring>

namespace pomelo::wire {

void seal_challenge_token(const ChallengeToken& token, const crypto::Key& challenge_key, uint64_t sequence,
                          std::span<uint8_t, kChallengeTokenSize> out) {
    std::array<uint8_t, kChallengeTokenPlainSize> plain{};  // client id | user data | zero pad
    store_le(plain.data(), static_cast<uint64_t>(token.client_id), 8);
    std::memcpy(plain.data() + 8, token.user_data.data(), token.user_data.size());
    store_le(plain.data() + 8 + kUserDataSize, token.expires_ns, 8);
    crypto::chacha_seal(challenge_key, crypto::packet_nonce(sequence), {}, plain.data(), plain.size(), out.data(),
                        out.data() + kChallengeTokenPlainSize);
    crypto::secure_wipe(plain.data(), plain.size());
}

WireError open_challenge_token(std::span<const uint8_t, kChallengeTokenSize> encrypted,
                               const crypto::Key& challenge_key, uint64_t sequence, ChallengeToken& out) {
    std::array<uint8_t, kChallengeTokenPlainSize> plain;
    if (!crypto::chacha_open(challenge_key, crypto::packet_nonce(sequence), {}, encrypted.data(),
                             kChallengeTokenPlainSize, plain.data(), encrypted.data() + kChallengeTokenPlainSize))
        return WireError::auth_failed;
    ByteReader r(plain);
    out.client_id = r.s64();
    r.copy(out.user_data.data(), out.user_data.size());
    out.expires_ns = r.u64();
    crypto::secure_wipe(plain.data(), plain.size());
    return WireError::ok;
}

}  // namespace pomelo::wire
