// A UDP endpoint as the protocol sees it, and its server address record (spec §3.4).
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "protocol/wire/bytes.hpp"
#include "protocol/wire/error.hpp"

namespace pomelo::wire {

enum class AddressType : uint8_t { none = 0, ipv4 = 1, ipv6 = 2 };

struct Address {
    AddressType type = AddressType::none;
    std::array<uint8_t, 16> ip{};  // network byte order; IPv4 uses the first 4 bytes
    uint16_t port = 0;             // host byte order

    static Address ipv4(std::array<uint8_t, 4> octets, uint16_t port);
    static Address ipv6(std::array<uint8_t, 16> bytes, uint16_t port);
    // "a.b.c.d:port" or "[v6]:port"; nullopt if not exactly one of those.
    static std::optional<Address> parse(std::string_view text);

    std::string to_string() const;
    size_t record_size() const { return type == AddressType::ipv4 ? 7 : 19; }
    bool operator==(const Address&) const = default;
};

// The address as a hash-map key: raw bytes with no padding, so it can be hashed as memory.
// A local endpoint index meaning "the first local endpoint of the destination's family", for
// senders that have no endpoint of their own (ports take it in tx_burst's local_index).
inline constexpr uint16_t kAnyLocal = UINT16_MAX;

struct AddressKey {
    std::array<uint8_t, 16> ip{};
    uint16_t port = 0;
    uint8_t type = 0;
    uint8_t zero = 0;

    static AddressKey of(const Address& a) { return {a.ip, a.port, static_cast<uint8_t>(a.type), 0}; }
    bool operator==(const AddressKey&) const = default;
};

// Writes a 7- or 19-byte record. Fails (writer marked failed) for AddressType::none.
void write_address_record(ByteWriter& w, const Address& a);
// Reads one record; rejects type bytes other than 1 and 2, and records overrunning the reader.
WireError read_address_record(ByteReader& r, Address& out);

}  // namespace pomelo::wire
