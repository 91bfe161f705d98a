// wire::open_challenge_token under the vectors' challenge key.
//
// Input of exactly 308 bytes: 300-byte encrypted token followed by the challenge sequence
// (u64 LE), the seed layout of make_corpus. Anything else must fail authentication; what opens
// must re-seal to the same 300 bytes (the key holder always pads with zeros).
// Input of any other size drives a structured round trip (FuzzedDataProvider): seal a token,
// open it, get the same fields back; a wrong sequence or a flipped bit must not open.
#include <fuzzer/FuzzedDataProvider.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>

#include "protocol/wire/bytes.hpp"
#include "protocol/wire/challenge_token.hpp"
#include "tests/fuzz/fuzz_common.hpp"

using namespace pomelo;
using namespace pomelo::wire;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size == kChallengeTokenSize + 8) {
        const std::span<const uint8_t, kChallengeTokenSize> enc(data, kChallengeTokenSize);
        const uint64_t sequence = load_le(data + kChallengeTokenSize, 8);
        ChallengeToken t;
        const WireError e = open_challenge_token(enc, fuzz::challenge_key(), sequence, t);
        if (e != WireError::ok) {
            FUZZ_CHECK(e == WireError::auth_failed);
            return 0;
        }
        std::array<uint8_t, kChallengeTokenSize> again{};
        seal_challenge_token(t, fuzz::challenge_key(), sequence, again);
        FUZZ_CHECK(fuzz::same_bytes(again, enc));
        return 0;
    }

    FuzzedDataProvider fdp(data, size);
    ChallengeToken t;
    t.client_id = fdp.ConsumeIntegral<int64_t>();
    const uint64_t sequence = fdp.ConsumeIntegral<uint64_t>();
    const size_t flip = fdp.ConsumeIntegralInRange<size_t>(0, kChallengeTokenSize * 8 - 1);
    const auto ud = fdp.ConsumeBytes<uint8_t>(t.user_data.size());
    std::copy(ud.begin(), ud.end(), t.user_data.begin());

    std::array<uint8_t, kChallengeTokenSize> enc{};
    seal_challenge_token(t, fuzz::challenge_key(), sequence, enc);
    ChallengeToken back;
    FUZZ_CHECK(open_challenge_token(enc, fuzz::challenge_key(), sequence, back) == WireError::ok);
    FUZZ_CHECK(back.client_id == t.client_id && back.user_data == t.user_data);
    FUZZ_CHECK(open_challenge_token(enc, fuzz::challenge_key(), sequence + 1, back) == WireError::auth_failed);
    FUZZ_CHECK(open_challenge_token(enc, fuzz::zero_key(), sequence, back) == WireError::auth_failed);
    enc[flip / 8] ^= static_cast<uint8_t>(1u << (flip % 8));
    FUZZ_CHECK(open_challenge_token(enc, fuzz::challenge_key(), sequence, back) == WireError::auth_failed);
    return 0;
}
