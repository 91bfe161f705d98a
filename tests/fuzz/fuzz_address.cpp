// Server address records and address text.
//  * wire::read_address_record from a ByteReader over the input: the error follows the type
//    byte and the length; when ok it consumed exactly record_size() bytes and
//    write_address_record gives back those bytes.
//  * Address::parse on the input as text: when ok, parse(a.to_string()) == a and to_string is
//    a fixed point.
#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "protocol/wire/address.hpp"
#include "protocol/wire/bytes.hpp"
#include "tests/fuzz/fuzz_common.hpp"

using namespace pomelo;
using namespace pomelo::wire;

namespace {

void check_text_round_trip(const Address& a) {
    FUZZ_CHECK(a.type == AddressType::ipv4 || a.type == AddressType::ipv6);
    const std::string s = a.to_string();
    const auto b = Address::parse(s);
    FUZZ_CHECK(b.has_value());
    FUZZ_CHECK(*b == a);
    FUZZ_CHECK(b->to_string() == s);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::span<const uint8_t> in(data, size);

    // Binary record.
    ByteReader r(in);
    Address a;
    const WireError e = read_address_record(r, a);
    if (size == 0) {
        FUZZ_CHECK(e == WireError::address_overrun);
    } else if (data[0] != 1 && data[0] != 2) {
        FUZZ_CHECK(e == WireError::bad_address_type);
    } else {
        const size_t need = data[0] == 1 ? 7 : 19;
        FUZZ_CHECK(e == (size >= need ? WireError::ok : WireError::address_overrun));
    }
    if (e == WireError::ok) {
        FUZZ_CHECK(a.record_size() == (data[0] == 1 ? 7u : 19u));
        FUZZ_CHECK(r.remaining() == size - a.record_size());
        FUZZ_CHECK(a.port == load_le(data + a.record_size() - 2, 2));
        if (a.type == AddressType::ipv4)
            for (size_t i = 4; i < a.ip.size(); ++i) FUZZ_CHECK(a.ip[i] == 0);
        std::array<uint8_t, 32> out{};
        ByteWriter w(out);
        write_address_record(w, a);
        FUZZ_CHECK(!w.failed() && w.written() == a.record_size());
        FUZZ_CHECK(fuzz::same_bytes(std::span(out).first(w.written()), in.first(a.record_size())));
        check_text_round_trip(a);
    }

    // Text.
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    if (const auto p = Address::parse(text)) {
        check_text_round_trip(*p);
        // "nullopt if not exactly one of those": a NUL inside the host must not be accepted.
        FUZZ_CHECK(text.find('\0') == std::string_view::npos);
    }
    return 0;
}
