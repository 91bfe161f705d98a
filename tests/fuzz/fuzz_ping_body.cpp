// wire::read_ping_body. When ok, re-encoding with the decoded layout gives back the input
// exactly (every bit of the meta byte is meaningful), and the canonical encoding decodes to
// the same fields.
#include <cstddef>
#include <cstdint>
#include <span>

#include "protocol/wire/body.hpp"
#include "tests/fuzz/fuzz_common.hpp"

using namespace pomelo;
using namespace pomelo::wire;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::span<const uint8_t> in(data, size);
    PingBody b;
    PingLayout l;
    const WireError e = read_ping_body(in, b, &l);
    if (size < kPingBodyMin || size > kPingBodyMax) FUZZ_CHECK(e == WireError::bad_body_size);
    if (e != WireError::ok) {
        FUZZ_CHECK(e == WireError::bad_body_size || e == WireError::bad_ping_meta || e == WireError::trailing_bytes);
        if (e == WireError::bad_ping_meta) FUZZ_CHECK((data[0] >> 4) > 8);
        return 0;
    }

    FUZZ_CHECK(l.time_bytes <= 8 && l.client_id_bytes >= 1 && l.client_id_bytes <= 8);
    FUZZ_CHECK(l.ping_sequence_bytes >= 1 && l.ping_sequence_bytes <= 2);
    FUZZ_CHECK(size == 1u + l.time_bytes + l.client_id_bytes + l.ping_sequence_bytes);
    FUZZ_CHECK(b.has_time == (l.time_bytes > 0));
    if (!b.has_time) FUZZ_CHECK(b.time == 0);
    FUZZ_CHECK(b.time == fuzz::low_bytes(b.time, l.time_bytes ? l.time_bytes : 8));
    FUZZ_CHECK(static_cast<uint64_t>(b.client_id) == fuzz::low_bytes(static_cast<uint64_t>(b.client_id), l.client_id_bytes));
    FUZZ_CHECK(b.ping_sequence == fuzz::low_bytes(b.ping_sequence, l.ping_sequence_bytes));

    // Exact round trip with the decoded layout.
    uint8_t out[kPingBodyMax + 8] = {};
    const size_t n = write_ping_body(b, l, out);
    FUZZ_CHECK(n == size);
    FUZZ_CHECK(fuzz::same_bytes({out, n}, in));

    // Canonical encoding: never longer, same fields.
    uint8_t canon[kPingBodyMax + 8] = {};
    const size_t cn = write_ping_body(b, canon);
    FUZZ_CHECK(cn >= kPingBodyMin && cn <= size);
    PingBody c;
    PingLayout cl;
    FUZZ_CHECK(read_ping_body({canon, cn}, c, &cl) == WireError::ok);
    FUZZ_CHECK(cl == PingLayout::canonical(b));
    FUZZ_CHECK(c.has_time == b.has_time && c.time == b.time && c.client_id == b.client_id &&
               c.ping_sequence == b.ping_sequence);
    return 0;
}
