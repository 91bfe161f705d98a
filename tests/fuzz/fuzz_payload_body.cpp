// wire::read_payload_body. Accepted iff 1..1200 bytes; when ok the view is the input itself
// (the body is exactly the application bytes, so the re-encoding is the identity).
#include <cstddef>
#include <cstdint>
#include <span>

#include "protocol/wire/body.hpp"
#include "tests/fuzz/fuzz_common.hpp"

using namespace pomelo;
using namespace pomelo::wire;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::span<const uint8_t> in(data, size);
    std::span<const uint8_t> out;
    const WireError e = read_payload_body(in, out);
    if (size == 0) {
        FUZZ_CHECK(e == WireError::empty_payload);
        return 0;
    }
    if (size > kMaxPayloadSize) {
        FUZZ_CHECK(e == WireError::bad_body_size);
        return 0;
    }
    FUZZ_CHECK(e == WireError::ok);
    FUZZ_CHECK(out.data() == data && out.size() == size);
    return 0;
}
