// wire::read_challenge_body (CHALLENGE and RESPONSE). Accepted iff exactly 308 bytes; when
// ok, the token view lies inside the input and re-encoding gives back the input exactly.
#include <cstddef>
#include <cstdint>
#include <span>

#include "protocol/wire/body.hpp"
#include "protocol/wire/bytes.hpp"
#include "tests/fuzz/fuzz_common.hpp"

using namespace pomelo;
using namespace pomelo::wire;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::span<const uint8_t> in(data, size);
    ChallengeBody b;
    const WireError e = read_challenge_body(in, b);
    FUZZ_CHECK((e == WireError::ok) == (size == kChallengeBodySize));
    if (e != WireError::ok) {
        FUZZ_CHECK(e == WireError::bad_body_size);
        return 0;
    }
    FUZZ_CHECK(b.token_sequence == load_le(data, 8));
    FUZZ_CHECK(b.encrypted_token.size() == kChallengeTokenSize && b.encrypted_token.data() == data + 8);

    uint8_t out[kChallengeBodySize + 8] = {};
    const size_t n = write_challenge_body(b, out);
    FUZZ_CHECK(n == size);
    FUZZ_CHECK(fuzz::same_bytes({out, n}, in));
    // A buffer one byte short is refused, not overrun.
    FUZZ_CHECK(write_challenge_body(b, std::span<uint8_t>(out, kChallengeBodySize - 1)) == 0);
    return 0;
}
