#include <gtest/gtest.h>

#include "protocol/wire/address.hpp"
#include "tests/support/vectors.hpp"

namespace pomelo::test {
namespace {

using namespace pomelo::wire;

Bytes record_of(const Address& a) {
    Bytes out(32);
    ByteWriter w(out);
    write_address_record(w, a);
    EXPECT_FALSE(w.failed());
    out.resize(w.written());
    return out;
}

TEST(AddressRecord, Ipv4MatchesSpecExample) {
    auto a = Address::parse("127.0.0.1:8888");
    ASSERT_TRUE(a);
    EXPECT_EQ(to_hex(record_of(*a)), "017f000001b822");
}

TEST(AddressRecord, Ipv6GroupsAreLittleEndian) {
    auto a = Address::parse("[2001:db8::1]:40000");
    ASSERT_TRUE(a);
    EXPECT_EQ(to_hex(record_of(*a)), "020120b80d000000000000000000000100409c");
}

TEST(AddressRecord, RoundTripsBothFamilies) {
    for (const char* text : {"198.18.0.1:1", "255.255.255.255:65535", "[::1]:40000", "[2001:db8:1:2:3:4:5:6]:7"}) {
        auto a = Address::parse(text);
        ASSERT_TRUE(a) << text;
        EXPECT_EQ(a->to_string(), text);
        Bytes rec = record_of(*a);
        EXPECT_EQ(rec.size(), a->record_size());
        ByteReader r(rec);
        Address back;
        ASSERT_EQ(read_address_record(r, back), WireError::ok);
        EXPECT_EQ(back, *a);
        EXPECT_EQ(r.remaining(), 0u);
    }
}

TEST(AddressRecord, RejectsUnknownTypes) {
    for (uint8_t type : {0, 3, 255}) {
        Bytes rec(19, 0);
        rec[0] = type;
        ByteReader r(rec);
        Address a;
        EXPECT_EQ(read_address_record(r, a), WireError::bad_address_type) << int(type);
    }
}

TEST(AddressRecord, RejectsTruncatedRecords) {
    Bytes v4 = {1, 127, 0, 0, 1, 0xb8};
    ByteReader r4(v4);
    Address a;
    EXPECT_EQ(read_address_record(r4, a), WireError::address_overrun);
    Bytes v6(18, 0);
    v6[0] = 2;
    ByteReader r6(v6);
    EXPECT_EQ(read_address_record(r6, a), WireError::address_overrun);
}

TEST(AddressParse, RejectsMalformedText) {
    for (const char* text : {"", "127.0.0.1", "127.0.0.1:", "127.0.0.1:65536", "127.0.0.1:-1", "1.2.3:4", "[::1]",
                             "[::1]40000", "::1:40000", "[zz::1]:1", "localhost:80", "127.0.0.1:80x"})
        EXPECT_FALSE(Address::parse(text)) << text;
    using namespace std::string_view_literals;
    EXPECT_FALSE(Address::parse("1.2.3.4\0junk:80"sv));
    EXPECT_FALSE(Address::parse("[::\0001]:40000"sv));
}

}  // namespace
}  // namespace pomelo::test
