// wire::decode_private_token on the first 1008 bytes of the input (zero-padded when shorter):
// the plaintext parser, without the AEAD, so the fuzzer can reach it.
//
// When it decodes, encode_private_token must reproduce the meaningful prefix: client id,
// timeout, address count and records, both keys and the user data. The rest is zero padding
// that the decoder does not check, so only the output's padding is checked (zero). Then the
// token is sealed under the vectors' private key and opened again (open_private_token), which
// must give back the same fields.
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

bool same_token(const PrivateConnectToken& a, const PrivateConnectToken& b) {
    if (a.client_id != b.client_id || a.timeout_seconds != b.timeout_seconds || a.addresses.count != b.addresses.count)
        return false;
    for (uint32_t i = 0; i < a.addresses.count; ++i)
        if (!(a.addresses.list[i] == b.addresses.list[i])) return false;
    return a.client_to_server_key == b.client_to_server_key && a.server_to_client_key == b.server_to_client_key &&
           a.user_data == b.user_data;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::array<uint8_t, kPrivateTokenPlainSize> plain{};
    std::copy_n(data, std::min(size, plain.size()), plain.begin());

    PrivateConnectToken t;
    const WireError e = decode_private_token(plain, t);
    if (e != WireError::ok) {
        FUZZ_CHECK(e == WireError::bad_address_count || e == WireError::bad_address_type ||
                   e == WireError::address_overrun || e == WireError::bad_timeout);
        return 0;
    }
    FUZZ_CHECK(t.timeout_seconds != 0);
    FUZZ_CHECK(t.addresses.count >= 1 && t.addresses.count <= kMaxServerAddresses);
    FUZZ_CHECK(t.client_id == static_cast<int64_t>(load_le(plain.data(), 8)));
    FUZZ_CHECK(t.addresses.count == load_le(plain.data() + 12, 4));

    std::array<uint8_t, kPrivateTokenSize> out{};
    std::fill(out.begin(), out.end(), 0xEE);
    auto out_plain = std::span(out).first<kPrivateTokenPlainSize>();
    FUZZ_CHECK(encode_private_token(t, out_plain) == WireError::ok);
    const size_t end = 8 + 4 + 4 + fuzz::records_size(t.addresses) + 2 * kKeySize + kUserDataSize;
    FUZZ_CHECK(end <= kPrivateTokenPlainSize);
    FUZZ_CHECK(fuzz::same_bytes(out_plain.first(end), std::span(plain).first(end)));
    FUZZ_CHECK(fuzz::all_zero(out_plain.subspan(end)));

    // Seal and open again: same fields.
    const TokenNonce nonce{};
    seal_private_token(crypto::Suite::chacha20poly1305, fuzz::kProtocolId, 1, nonce, fuzz::private_key(), out);
    PrivateConnectToken back;
    FUZZ_CHECK(open_private_token(crypto::Suite::chacha20poly1305, fuzz::kProtocolId, 1, nonce, fuzz::private_key(),
                                  out, back) == WireError::ok);
    FUZZ_CHECK(same_token(back, t));
    // A different AD (expire timestamp) must not open.
    FUZZ_CHECK(open_private_token(crypto::Suite::chacha20poly1305, fuzz::kProtocolId, 2, nonce, fuzz::private_key(),
                                  out, back) == WireError::auth_failed);
    return 0;
}
