// wire::read_request, then open_request under the vectors' private key (cheap: one
// XChaCha20-Poly1305 over 1008 bytes, only for inputs that pass read_request).
// Invariants: the documented error order; when ok, the views lie at their layout offsets and
// write_request of the same fields reproduces the datagram; when the private part opens, it
// re-encodes and re-seals to the same 1024 bytes (the only holders of the key pad with zeros).
#include <array>
#include <cstddef>
#include <cstdint>
#include <span>

#include "protocol/wire/bytes.hpp"
#include "protocol/wire/request.hpp"
#include "tests/fuzz/fuzz_common.hpp"

using namespace pomelo;
using namespace pomelo::wire;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::span<const uint8_t> in(data, size);
    RequestPacket q;
    const WireError e = read_request(in, q);
    if (size < kMinDatagramSize) {
        FUZZ_CHECK(e == WireError::datagram_too_short);
        return 0;
    }
    if (data[0] != 0) {
        FUZZ_CHECK(e == WireError::bad_prefix);
        return 0;
    }
    if (size != kRequestSize) {
        FUZZ_CHECK(e == WireError::bad_body_size);
        return 0;
    }
    const auto suite = crypto::suite_from_version(in.subspan(1, kVersionInfoSize));
    FUZZ_CHECK((e == WireError::ok) == suite.has_value());
    if (e != WireError::ok) {
        FUZZ_CHECK(e == WireError::bad_version);
        return 0;
    }

    FUZZ_CHECK(q.suite == *suite);
    FUZZ_CHECK(q.protocol_id == load_le(data + 13, 8) && q.expire_ms == load_le(data + 21, 8));
    FUZZ_CHECK(q.nonce.data() == data + 29 && q.nonce.size() == kConnectTokenNonceSize);
    FUZZ_CHECK(q.encrypted_private.data() == data + 53 && q.encrypted_private.size() == kPrivateTokenSize);
    FUZZ_CHECK(fuzz::same_bytes(q.token_tag(), in.subspan(kRequestTagOffset)));

    ConnectToken t;
    t.suite = q.suite;
    t.protocol_id = q.protocol_id;
    t.expire_ms = q.expire_ms;
    std::copy(q.nonce.begin(), q.nonce.end(), t.nonce.begin());
    std::copy(q.encrypted_private.begin(), q.encrypted_private.end(), t.encrypted_private.begin());
    std::array<uint8_t, kRequestSize + 8> out{};
    FUZZ_CHECK(write_request(t, out) == kRequestSize);
    FUZZ_CHECK(fuzz::same_bytes(std::span(out).first(kRequestSize), in));

    PrivateConnectToken pt;
    const WireError oe = open_request(q, fuzz::private_key(), pt);
    if (oe != WireError::ok) return 0;  // auth_failed for anything the fuzzer makes up
    FUZZ_CHECK(pt.addresses.count >= 1 && pt.addresses.count <= kMaxServerAddresses);
    FUZZ_CHECK(pt.timeout_seconds != 0);
    std::array<uint8_t, kPrivateTokenSize> sealed{};
    FUZZ_CHECK(encode_private_token(pt, std::span(sealed).first<kPrivateTokenPlainSize>()) == WireError::ok);
    seal_private_token(q.suite, q.protocol_id, q.expire_ms, t.nonce, fuzz::private_key(), sealed);
    FUZZ_CHECK(fuzz::same_bytes(sealed, q.encrypted_private));
    return 0;
}
