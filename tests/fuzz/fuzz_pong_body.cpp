// wire::read_pong_body. When ok, re-encoding with the decoded layout gives back the input
// with bit 7 of the meta byte cleared (the decoder ignores that bit, as the reference does),
// and the canonical encoding decodes to the same fields.
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "protocol/wire/body.hpp"
#include "tests/fuzz/fuzz_common.hpp"

using namespace pomelo;
using namespace pomelo::wire;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::span<const uint8_t> in(data, size);
    PongBody b;
    PongLayout l;
    const WireError e = read_pong_body(in, b, &l);
    if (size < kPongBodyMin || size > kPongBodyMax) FUZZ_CHECK(e == WireError::bad_body_size);
    if (e != WireError::ok) {
        FUZZ_CHECK(e == WireError::bad_body_size || e == WireError::trailing_bytes);
        return 0;
    }

    FUZZ_CHECK(l.ping_sequence_bytes >= 1 && l.ping_sequence_bytes <= 2);
    FUZZ_CHECK(l.recv_time_bytes >= 1 && l.recv_time_bytes <= 8);
    FUZZ_CHECK(l.delta_time_bytes >= 1 && l.delta_time_bytes <= 8);
    FUZZ_CHECK(size == 1u + l.ping_sequence_bytes + l.recv_time_bytes + l.delta_time_bytes);
    FUZZ_CHECK(b.ping_sequence == fuzz::low_bytes(b.ping_sequence, l.ping_sequence_bytes));
    FUZZ_CHECK(b.ping_recv_time == fuzz::low_bytes(b.ping_recv_time, l.recv_time_bytes));
    FUZZ_CHECK(b.pong_delta_time == fuzz::low_bytes(b.pong_delta_time, l.delta_time_bytes));

    std::vector<uint8_t> expect(in.begin(), in.end());
    expect[0] &= 0x7F;  // bit 7 is ignored on decode and always written as 0
    uint8_t out[kPongBodyMax + 8] = {};
    const size_t n = write_pong_body(b, l, out);
    FUZZ_CHECK(n == size);
    FUZZ_CHECK(fuzz::same_bytes({out, n}, expect));

    // Setting bit 7 back must not change what decodes.
    expect[0] |= 0x80;
    PongBody b7;
    PongLayout l7;
    FUZZ_CHECK(read_pong_body(expect, b7, &l7) == WireError::ok);
    FUZZ_CHECK(l7 == l && b7.ping_sequence == b.ping_sequence && b7.ping_recv_time == b.ping_recv_time &&
               b7.pong_delta_time == b.pong_delta_time);

    uint8_t canon[kPongBodyMax + 8] = {};
    const size_t cn = write_pong_body(b, canon);
    FUZZ_CHECK(cn >= kPongBodyMin && cn <= size);
    PongBody c;
    PongLayout cl;
    FUZZ_CHECK(read_pong_body({canon, cn}, c, &cl) == WireError::ok);
    FUZZ_CHECK(cl == PongLayout::canonical(b));
    FUZZ_CHECK(c.ping_sequence == b.ping_sequence && c.ping_recv_time == b.ping_recv_time &&
               c.pong_delta_time == b.pong_delta_time);
    return 0;
}
