// wire::decode_connect_token (the public 2048-byte token).
//
// The raw input is decoded as is (any size other than 2048 must be refused with
// bad_body_size), then again zero-padded / truncated to 2048 bytes so the field parser is
// reached from inputs of any size. When a token decodes, encode_connect_token must reproduce
// the input up to the end of the last key. The bytes after it are zero padding that the
// decoder does not check (and should not: the reference ignores them too), while the encoder
// always writes zeros there, so the region after the keys is compared against zero in the
// output only, not against the input.
#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <span>

#include "protocol/wire/bytes.hpp"
#include "protocol/wire/connect_token.hpp"
#include "tests/fuzz/fuzz_common.hpp"

using namespace pomelo;
using namespace pomelo::wire;

namespace {

void check_token(std::span<const uint8_t> in) {
    ConnectToken t;
    const WireError e = decode_connect_token(in, t);
    if (in.size() != kConnectTokenSize) {
        FUZZ_CHECK(e == WireError::bad_body_size);
        return;
    }
    const auto suite = crypto::suite_from_version(in.first(kVersionInfoSize));
    if (!suite) {
        FUZZ_CHECK(e == WireError::bad_version);
        return;
    }
    if (e != WireError::ok) {
        FUZZ_CHECK(e == WireError::bad_address_count || e == WireError::bad_address_type ||
                   e == WireError::address_overrun || e == WireError::bad_timestamps ||
                   e == WireError::bad_timeout);
        return;
    }

    FUZZ_CHECK(t.suite == *suite);
    FUZZ_CHECK(t.create_ms <= t.expire_ms && t.timeout_seconds != 0);
    FUZZ_CHECK(t.addresses.count >= 1 && t.addresses.count <= kMaxServerAddresses);
    for (const Address& a : t.addresses.view())
        FUZZ_CHECK(a.type == AddressType::ipv4 || a.type == AddressType::ipv6);
    FUZZ_CHECK(t.addresses.count == load_le(in.data() + kPublicTrailerOffset + 4, 4));

    std::array<uint8_t, kConnectTokenSize> out{};
    out.fill(0xEE);
    FUZZ_CHECK(encode_connect_token(t, out) == WireError::ok);
    const size_t end = kPublicTrailerOffset + 4 + 4 + fuzz::records_size(t.addresses) + 2 * kKeySize;
    FUZZ_CHECK(end <= kConnectTokenSize);
    FUZZ_CHECK(fuzz::same_bytes(std::span(out).first(end), in.first(end)));
    FUZZ_CHECK(fuzz::all_zero(std::span(out).subspan(end)));

    // The re-encoding is canonical: it decodes to the same token and encodes to itself.
    ConnectToken t2;
    FUZZ_CHECK(decode_connect_token(out, t2) == WireError::ok);
    std::array<uint8_t, kConnectTokenSize> out2{};
    FUZZ_CHECK(encode_connect_token(t2, out2) == WireError::ok);
    FUZZ_CHECK(out2 == out);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    check_token({data, size});
    if (size != kConnectTokenSize) {
        std::array<uint8_t, kConnectTokenSize> padded{};
        std::copy_n(data, std::min(size, kConnectTokenSize), padded.begin());
        check_token(padded);
    }
    return 0;
}
