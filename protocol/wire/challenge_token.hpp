// The challenge token (spec §6): client id and user data sealed under the server's
// per-run challenge key, so the server keeps no state per challenged client.
#pragma once

#include <cstdint>
#include <span>

#include "protocol/crypto/key.hpp"
#include "protocol/wire/connect_token.hpp"

namespace pomelo::wire {

struct ChallengeToken {
    int64_t client_id = 0;
    UserData user_data{};
    // Server-internal: the spec leaves bytes 264..283 as zero padding and clients echo the
    // token opaquely, so our server keeps the token's deadline (its monotonic ns) at 264.
    // 0 = none (the reference's tokens never expire, §19.4).
    uint64_t expires_ns = 0;
};

// Nonce = 00 00 00 00 || challenge sequence u64 LE; no associated data.
void seal_challenge_token(const ChallengeToken& token, const crypto::Key& challenge_key, uint64_t sequence,
                          std::span<uint8_t, kChallengeTokenSize> out);
WireError open_challenge_token(std::span<const uint8_t, kChallengeTokenSize> encrypted,
                               const crypto::Key& challenge_key, uint64_t sequence, ChallengeToken& out);

}  // namespace pomelo::wire
