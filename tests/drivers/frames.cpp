#include "tests/drivers/frames.hpp"

#include <gtest/gtest.h>

#include <algorithm>

namespace pomelo::test {

rte_mbuf* payload_mbuf(const Bytes& payload) {
    rte_mbuf* m = rte_pktmbuf_alloc(pool());
    if (m == nullptr) return nullptr;
    char* p = rte_pktmbuf_append(m, static_cast<uint16_t>(payload.size()));
    if (p == nullptr) {
        rte_pktmbuf_free(m);
        return nullptr;
    }
    if (!payload.empty()) std::memcpy(p, payload.data(), payload.size());
    return m;
}

rte_mbuf* frame_mbuf(const Bytes& frame) { return payload_mbuf(frame); }

Bytes bytes_of(const rte_mbuf* m) {
    Bytes out(rte_pktmbuf_pkt_len(m));
    const void* p = rte_pktmbuf_read(m, 0, static_cast<uint32_t>(out.size()), out.data());
    if (p != out.data()) std::memcpy(out.data(), p, out.size());
    return out;
}

Bytes pattern(size_t n, uint8_t seed) {
    Bytes b(n);
    for (size_t i = 0; i < n; ++i) b[i] = static_cast<uint8_t>(seed + i * 7);
    return b;
}

Bytes udp_frame(const rte_ether_addr& src_mac, const rte_ether_addr& dst_mac, const wire::Address& from,
                const wire::Address& to, const Bytes& payload) {
    rte_mbuf* m = payload_mbuf(payload);
    EXPECT_NE(m, nullptr);
    EXPECT_TRUE(drivers::l2l3::prepend_udp(m, src_mac, dst_mac, from, to, {}));
    Bytes out = bytes_of(m);
    rte_pktmbuf_free(m);
    return out;
}

uint16_t ones_sum(const uint8_t* p, size_t n, uint32_t start) {
    uint64_t sum = start;
    for (size_t i = 0; i + 1 < n; i += 2) sum += static_cast<uint32_t>(p[i] << 8 | p[i + 1]);
    if (n & 1) sum += static_cast<uint32_t>(p[n - 1] << 8);
    while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
    return static_cast<uint16_t>(sum);
}

bool ipv4_header_checksum_ok(const Bytes& frame) {
    const size_t ihl = (frame[kEth] & 0x0f) * 4u;
    return ones_sum(frame.data() + kEth, ihl) == 0xffff;
}

bool l4_checksum_ok(const Bytes& frame) {
    const uint16_t type = be16_at(frame, 12);
    Bytes pseudo;
    size_t l4_off = 0, l4_len = 0;
    uint8_t proto = 0;
    if (type == RTE_ETHER_TYPE_IPV4) {
        const size_t ihl = (frame[kEth] & 0x0f) * 4u;
        l4_off = kEth + ihl;
        l4_len = be16_at(frame, kEth + 2) - ihl;
        proto = frame[kEth + 9];
        if (proto == IPPROTO_UDP && be16_at(frame, l4_off + 6) == 0) return true;  // no checksum
        pseudo.assign(frame.begin() + kEth + 12, frame.begin() + kEth + 20);
        pseudo.insert(pseudo.end(), {0, proto, static_cast<uint8_t>(l4_len >> 8), static_cast<uint8_t>(l4_len)});
    } else {
        l4_off = kEth + kIp6;
        l4_len = be16_at(frame, kEth + 4);
        proto = frame[kEth + 6];
        pseudo.assign(frame.begin() + kEth + 8, frame.begin() + kEth + 40);
        const auto hi = static_cast<uint8_t>(l4_len >> 8), lo = static_cast<uint8_t>(l4_len);
        pseudo.insert(pseudo.end(), {0, 0, hi, lo, 0, 0, 0, proto});
    }
    if (l4_off + l4_len > frame.size()) return false;
    return ones_sum(frame.data() + l4_off, l4_len, ones_sum(pseudo.data(), pseudo.size())) == 0xffff;
}

void fix_ipv4_header_checksum(Bytes& frame) {
    const size_t ihl = (frame[kEth] & 0x0f) * 4u;
    put_be16(frame, kEth + 10, 0);
    put_be16(frame, kEth + 10, static_cast<uint16_t>(~ones_sum(frame.data() + kEth, ihl)));
}

void fix_icmp6_checksum(Bytes& frame) {
    const size_t nd = kEth + kIp6;
    const size_t len = be16_at(frame, kEth + 4);
    put_be16(frame, nd + 2, 0);
    Bytes pseudo(frame.begin() + kEth + 8, frame.begin() + kEth + 40);
    pseudo.insert(pseudo.end(), {0, 0, static_cast<uint8_t>(len >> 8), static_cast<uint8_t>(len), 0, 0, 0, 58});
    put_be16(frame, nd + 2,
             static_cast<uint16_t>(~ones_sum(frame.data() + nd, len, ones_sum(pseudo.data(), pseudo.size()))));
}

namespace {

void put_mac(Bytes& b, size_t off, const rte_ether_addr& mac) {
    std::copy(mac.addr_bytes, mac.addr_bytes + 6, b.begin() + static_cast<ptrdiff_t>(off));
}

void put_eth(Bytes& b, const rte_ether_addr& dst, const rte_ether_addr& src, uint16_t type) {
    put_mac(b, 0, dst);
    put_mac(b, 6, src);
    put_be16(b, 12, type);
}

}  // namespace

Bytes arp_request(const rte_ether_addr& sender_mac, const wire::Address& sender, const wire::Address& target) {
    Bytes f(60, 0);  // minimum Ethernet frame: 42 bytes of ARP, then padding
    put_eth(f, rte_ether_addr{{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}}, sender_mac, RTE_ETHER_TYPE_ARP);
    put_be16(f, 14, RTE_ARP_HRD_ETHER);
    put_be16(f, 16, RTE_ETHER_TYPE_IPV4);
    f[18] = 6;
    f[19] = 4;
    put_be16(f, 20, RTE_ARP_OP_REQUEST);
    put_mac(f, 22, sender_mac);
    std::copy_n(sender.ip.begin(), 4, f.begin() + 28);
    std::copy_n(target.ip.begin(), 4, f.begin() + 38);
    return f;
}

Bytes neighbour_solicit(const rte_ether_addr& sender_mac, const uint8_t* src, const wire::Address& target) {
    const bool dad = std::all_of(src, src + 16, [](uint8_t b) { return b == 0; });
    const size_t icmp_len = 24 + (dad ? 0 : 8);
    Bytes f(kEth + kIp6 + icmp_len, 0);
    const rte_ether_addr group = drivers::l2l3::solicited_node_mac(target.ip.data());
    put_eth(f, group, sender_mac, RTE_ETHER_TYPE_IPV6);
    f[kEth] = 0x60;
    put_be16(f, kEth + 4, static_cast<uint16_t>(icmp_len));
    f[kEth + 6] = 58;
    f[kEth + 7] = 255;
    std::copy_n(src, 16, f.begin() + kEth + 8);
    const uint8_t solicited[16] = {0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0xff,
                                   target.ip[13], target.ip[14], target.ip[15]};
    std::copy_n(solicited, 16, f.begin() + kEth + 24);
    const size_t nd = kEth + kIp6;
    f[nd] = 135;
    std::copy_n(target.ip.begin(), 16, f.begin() + static_cast<ptrdiff_t>(nd + 8));
    if (!dad) {
        f[nd + 24] = 1;
        f[nd + 25] = 1;
        put_mac(f, nd + 26, sender_mac);
    }
    fix_icmp6_checksum(f);
    return f;
}

}  // namespace pomelo::test
