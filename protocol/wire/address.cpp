#include "protocol/wire/address.hpp"

#include <arpa/inet.h>

#include <charconv>

namespace pomelo::wire {

Address Address::ipv4(std::array<uint8_t, 4> octets, uint16_t port) {
    Address a;
    a.type = AddressType::ipv4;
    std::copy(octets.begin(), octets.end(), a.ip.begin());
    a.port = port;
    return a;
}

Address Address::ipv6(std::array<uint8_t, 16> bytes, uint16_t port) {
    Address a;
    a.type = AddressType::ipv6;
    a.ip = bytes;
    a.port = port;
    return a;
}

static std::optional<uint16_t> parse_port(std::string_view s) {
    unsigned v = 0;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc{} || end != s.data() + s.size() || s.empty() || v > 65535) return std::nullopt;
    return static_cast<uint16_t>(v);
}

std::optional<Address> Address::parse(std::string_view text) {
    // inet_pton reads a C string: an embedded NUL would cut the host short silently.
    if (text.find('\0') != std::string_view::npos) return std::nullopt;
    Address a;
    std::string host;
    std::string_view port_text;
    if (!text.empty() && text.front() == '[') {
        auto close = text.find(']');
        if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') return std::nullopt;
        host.assign(text.substr(1, close - 1));
        port_text = text.substr(close + 2);
        if (inet_pton(AF_INET6, host.c_str(), a.ip.data()) != 1) return std::nullopt;
        a.type = AddressType::ipv6;
    } else {
        auto colon = text.rfind(':');
        if (colon == std::string_view::npos) return std::nullopt;
        host.assign(text.substr(0, colon));
        port_text = text.substr(colon + 1);
        if (inet_pton(AF_INET, host.c_str(), a.ip.data()) != 1) return std::nullopt;
        a.type = AddressType::ipv4;
    }
    auto port = parse_port(port_text);
    if (!port) return std::nullopt;
    a.port = *port;
    return a;
}

std::string Address::to_string() const {
    char buf[INET6_ADDRSTRLEN] = {};
    switch (type) {
        case AddressType::ipv4:
            inet_ntop(AF_INET, ip.data(), buf, sizeof buf);
            return std::string(buf) + ":" + std::to_string(port);
        case AddressType::ipv6:
            inet_ntop(AF_INET6, ip.data(), buf, sizeof buf);
            return "[" + std::string(buf) + "]:" + std::to_string(port);
        case AddressType::none:
            break;
    }
    return "none";
}

// IPv6 groups travel as u16 little-endian, g0 first: network-order bytes swap pairwise.
void write_address_record(ByteWriter& w, const Address& a) {
    switch (a.type) {
        case AddressType::ipv4:
            w.u8(1);
            w.bytes(std::span(a.ip.data(), 4));
            break;
        case AddressType::ipv6:
            w.u8(2);
            for (unsigned g = 0; g < 8; ++g) w.u16(static_cast<uint16_t>(a.ip[2 * g] << 8 | a.ip[2 * g + 1]));
            break;
        case AddressType::none:
            w.fail();  // there is no record for "none"
            return;
    }
    w.u16(a.port);
}

WireError read_address_record(ByteReader& r, Address& out) {
    const uint8_t type = r.u8();
    if (r.failed()) return WireError::address_overrun;
    out = Address{};
    if (type == 1) {
        out.type = AddressType::ipv4;
        r.copy(out.ip.data(), 4);
    } else if (type == 2) {
        out.type = AddressType::ipv6;
        for (unsigned g = 0; g < 8; ++g) {
            uint16_t v = r.u16();
            out.ip[2 * g] = static_cast<uint8_t>(v >> 8);
            out.ip[2 * g + 1] = static_cast<uint8_t>(v);
        }
    } else {
        return WireError::bad_address_type;
    }
    out.port = r.u16();
    return r.failed() ? WireError::address_overrun : WireError::ok;
}

}  // namespace pomelo::wire
