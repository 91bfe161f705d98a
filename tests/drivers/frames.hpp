// Test helpers: the shared mbuf pool, hand-built frames and an independent RFC 1071 checksum,
// so what the port builds is checked against something it did not compute itself.
#pragma once

#include <rte_arp.h>
#include <rte_ether.h>
#include <rte_ip.h>
#include <rte_mbuf.h>
#include <rte_udp.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "drivers/l2l3.hpp"
#include "protocol/wire/address.hpp"

namespace pomelo::test {

// Created once by the test main, after EAL.
rte_mempool* pool();

using Bytes = std::vector<uint8_t>;

inline constexpr rte_ether_addr kServerMac{{0x02, 0x00, 0x00, 0x00, 0x00, 0x01}};
inline constexpr rte_ether_addr kClientMac{{0x02, 0x00, 0x00, 0x00, 0x00, 0x02}};
inline constexpr rte_ether_addr kOtherMac{{0x02, 0x00, 0x00, 0x00, 0x00, 0x77}};
inline constexpr rte_ether_addr kGatewayMac{{0x02, 0x00, 0x00, 0x00, 0x00, 0xee}};

inline wire::Address v4(uint8_t a, uint8_t b, uint8_t c, uint8_t d, uint16_t port) {
    return wire::Address::ipv4({a, b, c, d}, port);
}
// 2001:db8::<last> (documentation prefix: these frames never leave the process).
inline wire::Address v6(uint8_t last, uint16_t port) {
    return wire::Address::ipv6({0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, last}, port);
}

// An mbuf whose data is `payload`, with the default headroom.
rte_mbuf* payload_mbuf(const Bytes& payload);
// An mbuf holding exactly `frame`.
rte_mbuf* frame_mbuf(const Bytes& frame);
Bytes bytes_of(const rte_mbuf* m);  // the whole packet, all segments
Bytes pattern(size_t n, uint8_t seed);

// A complete Ethernet/IP/UDP frame built with l2l3::prepend_udp (checked separately).
Bytes udp_frame(const rte_ether_addr& src_mac, const rte_ether_addr& dst_mac, const wire::Address& from,
                const wire::Address& to, const Bytes& payload);

// Plain RFC 1071 over bytes: the one's-complement sum (not complemented).
uint16_t ones_sum(const uint8_t* p, size_t n, uint32_t start = 0);
// True if the IPv4 header / the UDP or ICMPv6 checksum of this frame (untagged) is right.
bool ipv4_header_checksum_ok(const Bytes& frame);
bool l4_checksum_ok(const Bytes& frame);

Bytes arp_request(const rte_ether_addr& sender_mac, const wire::Address& sender, const wire::Address& target);
// A neighbour solicitation from `src` (unspecified: DAD) for `target`, with a source
// link-layer option unless `src` is unspecified.
Bytes neighbour_solicit(const rte_ether_addr& sender_mac, const uint8_t* src, const wire::Address& target);

// Offsets into an untagged frame.
inline constexpr size_t kEth = sizeof(rte_ether_hdr);
inline constexpr size_t kIp4 = sizeof(rte_ipv4_hdr);
inline constexpr size_t kIp6 = sizeof(rte_ipv6_hdr);
inline constexpr size_t kUdp = sizeof(rte_udp_hdr);

inline uint16_t be16_at(const Bytes& b, size_t off) { return static_cast<uint16_t>(b[off] << 8 | b[off + 1]); }
inline void put_be16(Bytes& b, size_t off, uint16_t v) {
    b[off] = static_cast<uint8_t>(v >> 8);
    b[off + 1] = static_cast<uint8_t>(v);
}
// Recomputes the IPv4 header checksum of an untagged frame after a test edited the header.
void fix_ipv4_header_checksum(Bytes& frame);
// Recomputes the ICMPv6 checksum of an untagged frame after a test edited the message.
void fix_icmp6_checksum(Bytes& frame);

}  // namespace pomelo::test
