// wire::read_header on arbitrary bytes.
// Invariants: the error follows the documented size/prefix rules; when ok, the body size is
// allowed for the type, h.size == 1 + sequence_bytes, and write_header(type, sequence,
// sequence_bytes) reproduces the first h.size bytes of the input.
#include <cstddef>
#include <cstdint>
#include <span>

#include "protocol/wire/bytes.hpp"
#include "protocol/wire/header.hpp"
#include "tests/fuzz/fuzz_common.hpp"

using namespace pomelo;
using namespace pomelo::wire;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::span<const uint8_t> in(data, size);
    PacketHeader h;
    const WireError e = read_header(in, h);

    if (size < kMinDatagramSize) {
        FUZZ_CHECK(e == WireError::datagram_too_short);
        return 0;
    }
    if (size > kMaxDatagramSize) {
        FUZZ_CHECK(e == WireError::datagram_too_long);
        return 0;
    }
    const unsigned type = data[0] >> 4, n = data[0] & 0x0F;
    if (data[0] != 0 && type == 0) FUZZ_CHECK(e == WireError::bad_prefix);
    if (type >= kPacketTypeCount) FUZZ_CHECK(e == WireError::bad_packet_type);
    if (type != 0 && type < kPacketTypeCount && (n < 1 || n > 8)) FUZZ_CHECK(e == WireError::bad_sequence_length);
    if (e != WireError::ok) return 0;

    FUZZ_CHECK(h.size == 1u + h.sequence_bytes);
    FUZZ_CHECK(size >= h.size);
    FUZZ_CHECK(body_size_allowed(h.type, body_size_of(h, size)));

    if (h.type == PacketType::request) {
        FUZZ_CHECK(data[0] == 0 && size == kRequestSize);
        FUZZ_CHECK(h.sequence_bytes == 0 && h.sequence == 0 && h.size == 1);
        return 0;
    }

    FUZZ_CHECK(static_cast<unsigned>(h.type) == type && h.sequence_bytes == n);
    FUZZ_CHECK(size >= h.size + kTagSize);
    FUZZ_CHECK(h.sequence == load_le(data + 1, n));

    uint8_t out[kMaxHeaderSize + 1] = {};
    const size_t written = write_header(h.type, h.sequence, h.sequence_bytes, out);
    FUZZ_CHECK(written == h.size);
    FUZZ_CHECK(fuzz::same_bytes({out, written}, in.first(h.size)));

    // The canonical form is never longer and carries the same sequence.
    uint8_t canon[kMaxHeaderSize + 1] = {};
    const size_t cn = write_header(h.type, h.sequence, 0, canon);
    FUZZ_CHECK(cn == 1 + trimmed_length(h.sequence) && cn <= h.size);
    FUZZ_CHECK(canon[0] == make_prefix(h.type, cn - 1));
    FUZZ_CHECK(load_le(canon + 1, static_cast<unsigned>(cn - 1)) == h.sequence);
    return 0;
}
