#include "drivers/l2l3.hpp"

#include <rte_arp.h>
#include <rte_byteorder.h>

#include <algorithm>
#include <cstring>
#include <optional>

namespace pomelo::drivers::l2l3 {

using wire::Address;
using wire::AddressType;

namespace {

// The frame being parsed: headers are read from the first segment only.
struct Frame {
    const rte_mbuf* m;
    const LocalView& us;
    const rte_ether_hdr* eth;
    uint16_t l2_len;
    uint32_t avail;  // bytes in the first segment
};

template <class T>
const T* header_at(const Frame& fr, uint32_t offset) {
    return rte_pktmbuf_mtod_offset(fr.m, const T*, offset);
}

RxFrame verdict(FrameKind kind) {
    RxFrame f;
    f.kind = kind;
    return f;
}

// The NIC's checksum verdict. NONE means "the field is not filled in but the data was
// verified" (virtio and friends), so it counts as good.
enum class HwVerdict : uint8_t { unknown, good, bad };

HwVerdict hw_ip_verdict(uint64_t ol_flags) {
    switch (ol_flags & RTE_MBUF_F_RX_IP_CKSUM_MASK) {
        case RTE_MBUF_F_RX_IP_CKSUM_GOOD:
        case RTE_MBUF_F_RX_IP_CKSUM_NONE: return HwVerdict::good;
        case RTE_MBUF_F_RX_IP_CKSUM_BAD: return HwVerdict::bad;
        default: return HwVerdict::unknown;
    }
}

HwVerdict hw_l4_verdict(uint64_t ol_flags) {
    switch (ol_flags & RTE_MBUF_F_RX_L4_CKSUM_MASK) {
        case RTE_MBUF_F_RX_L4_CKSUM_GOOD:
        case RTE_MBUF_F_RX_L4_CKSUM_NONE: return HwVerdict::good;
        case RTE_MBUF_F_RX_L4_CKSUM_BAD: return HwVerdict::bad;
        default: return HwVerdict::unknown;
    }
}

uint16_t fold(uint32_t sum) {
    sum = (sum & 0xffff) + (sum >> 16);
    return static_cast<uint16_t>((sum & 0xffff) + (sum >> 16));
}

// One's-complement sum of `len` bytes of the mbuf chain from `offset`, or nullopt if the range
// overruns the packet. Not rte_raw_cksum_mbuf: in DPDK 22.11 it truncates the partial sum of
// a segment that starts at an odd offset before byte-swapping it, so chains with odd-length
// segments get a wrong sum.
std::optional<uint16_t> raw_sum(const rte_mbuf* m, uint32_t offset, uint32_t len) {
    if (uint64_t{offset} + len > rte_pktmbuf_pkt_len(m)) return std::nullopt;
    if (len == 0) return 0;
    const rte_mbuf* seg = m;
    while (offset >= seg->data_len) {
        offset -= seg->data_len;
        seg = seg->next;
    }
    uint32_t sum = 0;
    for (uint32_t done = 0; done < len; seg = seg->next, offset = 0) {
        const uint32_t n = std::min<uint32_t>(seg->data_len - offset, len - done);
        uint16_t part = rte_raw_cksum(rte_pktmbuf_mtod_offset(seg, const uint8_t*, offset), n);
        if (done & 1) part = rte_bswap16(part);  // this segment's bytes sit in the other lane
        sum += part;
        done += n;
    }
    return fold(sum);
}

// Sum of `len` bytes from `offset` plus a pseudo-header sum: 0xffff when a received checksum
// is right. 0 when the range overruns the packet, so a verification fails (callers building a
// checksum have checked the lengths).
uint16_t l4_sum(const rte_mbuf* m, uint32_t offset, uint32_t len, uint16_t pseudo_header) {
    const std::optional<uint16_t> raw = raw_sum(m, offset, len);
    return raw ? fold(uint32_t{*raw} + pseudo_header) : 0;
}

uint16_t udp_checksum_from_sum(uint16_t sum) {
    const uint16_t c = static_cast<uint16_t>(~sum);
    return c == 0 ? 0xffff : c;  // RFC 768: zero is sent as all ones
}

Address ip_only(AddressType type, const void* bytes) {
    Address a;
    a.type = type;
    std::memcpy(a.ip.data(), bytes, type == AddressType::ipv4 ? 4 : 16);
    return a;
}

// IPv4 addresses sit in packed headers: copied by value, never through a member's address.
Address ipv4_of(rte_be32_t network_order) { return ip_only(AddressType::ipv4, &network_order); }

rte_be32_t be32_of(const Address& a) {
    rte_be32_t v;
    std::memcpy(&v, a.ip.data(), 4);
    return v;
}

bool is_unspecified(const uint8_t* ip6) {
    return std::all_of(ip6, ip6 + 16, [](uint8_t b) { return b == 0; });
}

// ff02::1:ffXX:XXXX for the target's low 24 bits.
bool is_solicited_node_of(const uint8_t* dst, const uint8_t* target) {
    static constexpr uint8_t prefix[13] = {0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0xff};
    return std::memcmp(dst, prefix, sizeof prefix) == 0 && std::memcmp(dst + 13, target + 13, 3) == 0;
}

// --- UDP (both families) ---

// Reads the UDP header after an IP header of `l3_len` bytes carrying `l4_bytes`; `f` has the
// IP addresses. Returns udp for our endpoints, before any checksum is spent.
RxFrame udp_endpoints(const Frame& fr, RxFrame f, uint16_t l4_bytes) {
    const uint32_t udp_off = uint32_t{fr.l2_len} + f.l3_len;
    if (l4_bytes < sizeof(rte_udp_hdr) || fr.avail < udp_off + sizeof(rte_udp_hdr))
        return verdict(FrameKind::malformed);
    const auto* udp = header_at<rte_udp_hdr>(fr, udp_off);
    if (rte_be_to_cpu_16(udp->dgram_len) != l4_bytes) return verdict(FrameKind::malformed);
    f.src.port = rte_be_to_cpu_16(udp->src_port);
    f.dst.port = rte_be_to_cpu_16(udp->dst_port);
    f.local_index = fr.us.find(f.dst);
    if (f.local_index == LocalView::kNone) return verdict(FrameKind::not_ours);
    f.kind = FrameKind::udp;
    f.l2_len = fr.l2_len;
    f.payload_len = static_cast<uint16_t>(l4_bytes - sizeof(rte_udp_hdr));
    f.link_addr = fr.eth->src_addr;
    return f;
}

bool udp4_checksum_ok(const Frame& fr, const rte_ipv4_hdr* ip, uint32_t udp_off) {
    const HwVerdict hw = hw_l4_verdict(fr.m->ol_flags);
    if (hw != HwVerdict::unknown) return hw == HwVerdict::good;
    const auto* udp = header_at<rte_udp_hdr>(fr, udp_off);
    if (udp->dgram_cksum == 0) return true;  // IPv4: no checksum
    return l4_sum(fr.m, udp_off, rte_be_to_cpu_16(udp->dgram_len), rte_ipv4_phdr_cksum(ip, 0)) == 0xffff;
}

bool udp6_checksum_ok(const Frame& fr, const rte_ipv6_hdr* ip, uint32_t udp_off) {
    const HwVerdict hw = hw_l4_verdict(fr.m->ol_flags);
    if (hw != HwVerdict::unknown) return hw == HwVerdict::good;
    const auto* udp = header_at<rte_udp_hdr>(fr, udp_off);
    if (udp->dgram_cksum == 0) return false;  // mandatory over IPv6 (RFC 8200 §8.1)
    return l4_sum(fr.m, udp_off, rte_be_to_cpu_16(udp->dgram_len), rte_ipv6_phdr_cksum(ip, 0)) == 0xffff;
}

// --- IPv4 ---

bool ipv4_header_ok(const Frame& fr, const rte_ipv4_hdr* ip) {
    const HwVerdict hw = hw_ip_verdict(fr.m->ol_flags);
    if (hw != HwVerdict::unknown) return hw == HwVerdict::good;
    return rte_ipv4_cksum(ip) == 0;  // summed with its own checksum field: 0 when right
}

RxFrame parse_ipv4(const Frame& fr) {
    if (fr.avail < fr.l2_len + sizeof(rte_ipv4_hdr)) return verdict(FrameKind::malformed);
    const auto* ip = header_at<rte_ipv4_hdr>(fr, fr.l2_len);
    const uint16_t ihl = rte_ipv4_hdr_len(ip);
    const uint16_t total = rte_be_to_cpu_16(ip->total_length);
    if ((ip->version_ihl >> 4) != 4 || ihl < sizeof(rte_ipv4_hdr) || fr.avail < uint32_t{fr.l2_len} + ihl ||
        total < ihl || uint32_t{fr.l2_len} + total > rte_pktmbuf_pkt_len(fr.m))
        return verdict(FrameKind::malformed);
    if (ip->next_proto_id != IPPROTO_UDP) return verdict(FrameKind::not_ours);
    // Our datagrams fit one frame; a fragment for us is one we cannot take.
    if (rte_be_to_cpu_16(ip->fragment_offset) & (RTE_IPV4_HDR_MF_FLAG | RTE_IPV4_HDR_OFFSET_MASK))
        return verdict(fr.us.owns_ip(AddressType::ipv4, ipv4_of(ip->dst_addr).ip.data()) ? FrameKind::malformed
                                                                                           : FrameKind::not_ours);

    RxFrame f;
    f.l3_len = ihl;
    f.src = ipv4_of(ip->src_addr);
    f.dst = ipv4_of(ip->dst_addr);
    f = udp_endpoints(fr, f, static_cast<uint16_t>(total - ihl));
    if (f.kind != FrameKind::udp) return f;
    if (!ipv4_header_ok(fr, ip) || !udp4_checksum_ok(fr, ip, uint32_t{fr.l2_len} + ihl))
        return verdict(FrameKind::malformed);
    return f;
}

// --- IPv6 neighbour solicitation ---

// Walks the ND options after an NS / NA body; false if one is malformed (RFC 4861 §7.1.1,
// §7.1.2). `found` says whether a link-layer address option of `type` was there.
bool read_link_addr(const uint8_t* opts, uint32_t len, uint8_t type, bool& found, rte_ether_addr& mac) {
    found = false;
    for (uint32_t off = 0; off < len;) {
        if (len - off < 2 || opts[off + 1] == 0) return false;
        const uint32_t opt_len = uint32_t{opts[off + 1]} * 8;
        if (opt_len > len - off) return false;
        if (opts[off] == type && opt_len == sizeof(NdLinkAddrOption)) {
            std::memcpy(&mac, opts + off + 2, sizeof mac);
            found = true;
        }
        off += opt_len;
    }
    return true;
}

// An advertisement addressed to one of our IPs: the answer to a solicitation of ours, if the
// port sent one. Without a target link-layer address it teaches nothing: not ours.
RxFrame parse_neighbour_advert(const Frame& fr, const rte_ipv6_hdr* ip, const NdMessage* nd, uint16_t icmp_len) {
    if (!fr.us.owns_ip(AddressType::ipv6, ip->dst_addr)) return verdict(FrameKind::not_ours);
    if (nd->code != 0 || ip->hop_limits != kNdHopLimit || ipv6_l4_sum(ip, nd) != 0xffff || nd->target[0] == 0xff)
        return verdict(FrameKind::malformed);
    bool has_tll = false;
    rte_ether_addr tll{};
    const auto* opts = reinterpret_cast<const uint8_t*>(nd) + sizeof(NdMessage);
    if (!read_link_addr(opts, icmp_len - sizeof(NdMessage), kNdOptTargetLinkAddr, has_tll, tll))
        return verdict(FrameKind::malformed);
    if (!has_tll) return verdict(FrameKind::not_ours);
    if (!rte_is_valid_assigned_ether_addr(&tll)) return verdict(FrameKind::malformed);
    RxFrame f;
    f.kind = FrameKind::neighbour_advert;
    f.l2_len = fr.l2_len;
    f.l3_len = sizeof(rte_ipv6_hdr);
    f.src = ip_only(AddressType::ipv6, nd->target);
    f.dst = ip_only(AddressType::ipv6, ip->dst_addr);
    f.link_addr = tll;
    return f;
}

RxFrame parse_neighbour_solicit(const Frame& fr, const rte_ipv6_hdr* ip, uint16_t icmp_len) {
    const uint32_t nd_off = uint32_t{fr.l2_len} + sizeof(rte_ipv6_hdr);
    if (icmp_len < 4 || fr.avail < nd_off + 4) return verdict(FrameKind::malformed);
    const auto* nd = header_at<NdMessage>(fr, nd_off);
    if (nd->type != kNdNeighbourSolicit && nd->type != kNdNeighbourAdvert) return verdict(FrameKind::not_ours);
    // A solicitation or advertisement is small: all of it sits in the first segment.
    if (icmp_len < sizeof(NdMessage) || fr.avail < nd_off + icmp_len) return verdict(FrameKind::malformed);
    if (nd->type == kNdNeighbourAdvert) return parse_neighbour_advert(fr, ip, nd, icmp_len);
    if (!fr.us.owns_ip(AddressType::ipv6, nd->target)) return verdict(FrameKind::not_ours);
    if (nd->code != 0 || ip->hop_limits != kNdHopLimit || ipv6_l4_sum(ip, nd) != 0xffff)
        return verdict(FrameKind::malformed);

    bool has_sll = false;
    rte_ether_addr sll{};
    const auto* opts = reinterpret_cast<const uint8_t*>(nd) + sizeof(NdMessage);
    if (!read_link_addr(opts, icmp_len - sizeof(NdMessage), kNdOptSourceLinkAddr, has_sll, sll))
        return verdict(FrameKind::malformed);
    const bool dad = is_unspecified(ip->src_addr);  // duplicate address detection probe
    if (dad && (has_sll || !is_solicited_node_of(ip->dst_addr, nd->target))) return verdict(FrameKind::malformed);

    RxFrame f;
    f.kind = FrameKind::neighbour_solicit;
    f.l2_len = fr.l2_len;
    f.l3_len = sizeof(rte_ipv6_hdr);
    f.src = ip_only(AddressType::ipv6, ip->src_addr);
    f.dst = ip_only(AddressType::ipv6, nd->target);
    f.link_addr = has_sll ? sll : fr.eth->src_addr;
    return f;
}

// --- IPv6 ---

RxFrame parse_ipv6(const Frame& fr) {
    if (fr.avail < fr.l2_len + sizeof(rte_ipv6_hdr)) return verdict(FrameKind::malformed);
    const auto* ip = header_at<rte_ipv6_hdr>(fr, fr.l2_len);
    const uint16_t payload = rte_be_to_cpu_16(ip->payload_len);
    if ((rte_be_to_cpu_32(ip->vtc_flow) >> 28) != 6 ||
        uint32_t{fr.l2_len} + sizeof(rte_ipv6_hdr) + payload > rte_pktmbuf_pkt_len(fr.m))
        return verdict(FrameKind::malformed);
    if (ip->proto == kIcmp6Proto) return parse_neighbour_solicit(fr, ip, payload);
    if (ip->proto != IPPROTO_UDP) return verdict(FrameKind::not_ours);  // extension headers too

    RxFrame f;
    f.l3_len = sizeof(rte_ipv6_hdr);
    f.src = ip_only(AddressType::ipv6, ip->src_addr);
    f.dst = ip_only(AddressType::ipv6, ip->dst_addr);
    f = udp_endpoints(fr, f, payload);
    if (f.kind != FrameKind::udp) return f;
    if (!udp6_checksum_ok(fr, ip, uint32_t{fr.l2_len} + sizeof(rte_ipv6_hdr))) return verdict(FrameKind::malformed);
    return f;
}

// --- ARP ---

RxFrame parse_arp(const Frame& fr) {
    if (fr.avail < fr.l2_len + sizeof(rte_arp_hdr)) return verdict(FrameKind::malformed);
    const auto* arp = header_at<rte_arp_hdr>(fr, fr.l2_len);
    if (rte_be_to_cpu_16(arp->arp_hardware) != RTE_ARP_HRD_ETHER ||
        rte_be_to_cpu_16(arp->arp_protocol) != RTE_ETHER_TYPE_IPV4 || arp->arp_hlen != RTE_ETHER_ADDR_LEN ||
        arp->arp_plen != 4)
        return verdict(FrameKind::malformed);
    const uint16_t op = rte_be_to_cpu_16(arp->arp_opcode);
    if (op != RTE_ARP_OP_REQUEST && op != RTE_ARP_OP_REPLY) return verdict(FrameKind::not_ours);
    const Address target = ipv4_of(arp->arp_data.arp_tip);
    if (!fr.us.owns_ip(AddressType::ipv4, target.ip.data())) return verdict(FrameKind::not_ours);
    // A reply claiming a broadcast, multicast or zero MAC would black-hole what we send.
    if (op == RTE_ARP_OP_REPLY && !rte_is_valid_assigned_ether_addr(&arp->arp_data.arp_sha))
        return verdict(FrameKind::malformed);

    RxFrame f;
    f.kind = op == RTE_ARP_OP_REQUEST ? FrameKind::arp_request : FrameKind::arp_reply;
    f.l2_len = fr.l2_len;
    f.src = ipv4_of(arp->arp_data.arp_sip);
    f.dst = target;
    f.link_addr = arp->arp_data.arp_sha;
    return f;
}

// --- building ---

void write_udp_header(rte_udp_hdr* udp, const Address& from, const Address& to, uint16_t payload_len) {
    udp->src_port = rte_cpu_to_be_16(from.port);
    udp->dst_port = rte_cpu_to_be_16(to.port);
    udp->dgram_len = rte_cpu_to_be_16(static_cast<uint16_t>(payload_len + sizeof(rte_udp_hdr)));
    udp->dgram_cksum = 0;
}

void write_ipv4_udp(rte_mbuf* m, rte_ipv4_hdr* ip, const Address& from, const Address& to, uint16_t payload_len,
                    TxOffloads off) {
    ip->version_ihl = RTE_IPV4_VHL_DEF;
    ip->type_of_service = 0;
    ip->total_length =
        rte_cpu_to_be_16(static_cast<uint16_t>(sizeof(rte_ipv4_hdr) + sizeof(rte_udp_hdr) + payload_len));
    ip->packet_id = 0;  // atomic datagram: DF set, so the ID is meaningless (RFC 6864)
    ip->fragment_offset = rte_cpu_to_be_16(RTE_IPV4_HDR_DF_FLAG);
    ip->time_to_live = kIpTtl;
    ip->next_proto_id = IPPROTO_UDP;
    ip->hdr_checksum = 0;
    ip->src_addr = be32_of(from);
    ip->dst_addr = be32_of(to);
    auto* udp = reinterpret_cast<rte_udp_hdr*>(ip + 1);
    write_udp_header(udp, from, to, payload_len);
    m->l3_len = sizeof(rte_ipv4_hdr);

    if (off.ipv4_cksum || off.udp_cksum) m->ol_flags |= RTE_MBUF_F_TX_IPV4;
    if (off.ipv4_cksum) m->ol_flags |= RTE_MBUF_F_TX_IP_CKSUM;
    else ip->hdr_checksum = rte_ipv4_cksum(ip);
    if (off.udp_cksum) {
        m->ol_flags |= RTE_MBUF_F_TX_UDP_CKSUM;
        udp->dgram_cksum = rte_ipv4_phdr_cksum(ip, m->ol_flags);  // the device adds the rest
    } else {
        udp->dgram_cksum = udp_checksum_from_sum(
            l4_sum(m, m->l2_len + m->l3_len, payload_len + sizeof(rte_udp_hdr), rte_ipv4_phdr_cksum(ip, 0)));
    }
}

void write_ipv6_udp(rte_mbuf* m, rte_ipv6_hdr* ip, const Address& from, const Address& to, uint16_t payload_len,
                    TxOffloads off) {
    ip->vtc_flow = rte_cpu_to_be_32(6u << 28);
    ip->payload_len = rte_cpu_to_be_16(static_cast<uint16_t>(sizeof(rte_udp_hdr) + payload_len));
    ip->proto = IPPROTO_UDP;
    ip->hop_limits = kIpTtl;
    std::memcpy(ip->src_addr, from.ip.data(), 16);
    std::memcpy(ip->dst_addr, to.ip.data(), 16);
    auto* udp = reinterpret_cast<rte_udp_hdr*>(ip + 1);
    write_udp_header(udp, from, to, payload_len);
    m->l3_len = sizeof(rte_ipv6_hdr);

    if (off.udp_cksum) {
        m->ol_flags |= RTE_MBUF_F_TX_IPV6 | RTE_MBUF_F_TX_UDP_CKSUM;
        udp->dgram_cksum = rte_ipv6_phdr_cksum(ip, m->ol_flags);
    } else {
        udp->dgram_cksum = udp_checksum_from_sum(
            l4_sum(m, m->l2_len + m->l3_len, payload_len + sizeof(rte_udp_hdr), rte_ipv6_phdr_cksum(ip, 0)));
    }
}

// An IP (port 0) as a key of LocalView's IP set: only the family's bytes count.
wire::AddressKey ip_key(AddressType type, const uint8_t* ip) {
    wire::AddressKey key{};
    std::memcpy(key.ip.data(), ip, type == AddressType::ipv4 ? 4 : 16);
    key.type = static_cast<uint8_t>(type);
    return key;
}

// Makes the packet exactly `len` bytes long (single segment).
bool resize_to(rte_mbuf* m, uint32_t len) {
    const uint32_t cur = rte_pktmbuf_pkt_len(m);
    if (cur > len) return rte_pktmbuf_trim(m, static_cast<uint16_t>(cur - len)) == 0;
    if (cur < len) return rte_pktmbuf_append(m, static_cast<uint16_t>(len - cur)) != nullptr;
    return true;
}

}  // namespace

LocalView::LocalView(const rte_ether_addr& our_mac, std::span<const Address> endpoints)
    : mac(our_mac), endpoints_(endpoints.first(std::min<size_t>(endpoints.size(), kNone))) {
    if (endpoints_.size() <= kScanMax) return;
    by_endpoint_ = std::make_unique<Map>(endpoints_.size());
    by_ip_ = std::make_unique<Map>(endpoints_.size());
    for (size_t i = 0; i < endpoints_.size(); ++i) {
        const Address& e = endpoints_[i];
        const wire::AddressKey key = wire::AddressKey::of(e);
        if (!by_endpoint_->find(key)) by_endpoint_->insert(key, static_cast<uint16_t>(i));
        by_ip_->insert(ip_key(e.type, e.ip.data()), 1);
    }
}

LocalView::~LocalView() = default;

uint16_t LocalView::find(const Address& a) const {
    if (by_endpoint_) {
        const uint16_t* i = by_endpoint_->find(wire::AddressKey::of(a));
        return i ? *i : kNone;
    }
    for (size_t i = 0; i < endpoints_.size(); ++i)
        if (endpoints_[i] == a) return static_cast<uint16_t>(i);
    return kNone;
}

bool LocalView::owns_ip(AddressType type, const uint8_t* ip) const {
    const size_t n = type == AddressType::ipv4 ? 4 : 16;
    if (by_ip_) return by_ip_->find(ip_key(type, ip)) != nullptr;
    return std::any_of(endpoints_.begin(), endpoints_.end(),
                       [&](const Address& e) { return e.type == type && std::memcmp(e.ip.data(), ip, n) == 0; });
}

RxFrame parse_frame(const rte_mbuf* m, const LocalView& us) {
    const uint32_t avail = rte_pktmbuf_data_len(m);
    if (avail < sizeof(rte_ether_hdr)) return verdict(FrameKind::malformed);
    const auto* eth = rte_pktmbuf_mtod(m, const rte_ether_hdr*);
    if (!rte_is_unicast_ether_addr(&eth->src_addr)) return verdict(FrameKind::malformed);
    // Promiscuous ports and shared segments deliver other hosts' unicast: not ours.
    if (rte_is_unicast_ether_addr(&eth->dst_addr) && !rte_is_same_ether_addr(&eth->dst_addr, &us.mac))
        return verdict(FrameKind::not_ours);

    uint16_t type = rte_be_to_cpu_16(eth->ether_type);
    uint16_t l2_len = sizeof(rte_ether_hdr);
    // A tag the NIC took off is in the mbuf; one left in the frame is kept as is by replies
    // made in place, and reported for replies to datagrams.
    uint16_t tci = m->ol_flags & RTE_MBUF_F_RX_VLAN_STRIPPED ? m->vlan_tci : 0;
    if (type == RTE_ETHER_TYPE_VLAN) {  // one 802.1Q tag
        if (avail < l2_len + sizeof(rte_vlan_hdr)) return verdict(FrameKind::malformed);
        const auto* vlan = rte_pktmbuf_mtod_offset(m, const rte_vlan_hdr*, l2_len);
        type = rte_be_to_cpu_16(vlan->eth_proto);
        tci = rte_be_to_cpu_16(vlan->vlan_tci);
        l2_len += sizeof(rte_vlan_hdr);
    }
    const Frame fr{m, us, eth, l2_len, avail};
    RxFrame f;
    switch (type) {
        case RTE_ETHER_TYPE_IPV4: f = parse_ipv4(fr); break;
        case RTE_ETHER_TYPE_IPV6: f = parse_ipv6(fr); break;
        case RTE_ETHER_TYPE_ARP: f = parse_arp(fr); break;
        default: return verdict(FrameKind::not_ours);
    }
    f.vlan_tci = tci;
    return f;
}

bool strip_to_payload(rte_mbuf* m, const RxFrame& f) {
    const uint16_t headers = static_cast<uint16_t>(f.l2_len + f.l3_len + sizeof(rte_udp_hdr));
    if (rte_pktmbuf_adj(m, headers) == nullptr) return false;
    // Ethernet pads short frames to 60 bytes; trailing bytes must sit in the last segment.
    const uint32_t extra = rte_pktmbuf_pkt_len(m) - f.payload_len;
    return extra == 0 || rte_pktmbuf_trim(m, static_cast<uint16_t>(extra)) == 0;
}

bool prepend_udp(rte_mbuf* m, const rte_ether_addr& src_mac, const rte_ether_addr& dst_mac, const Address& from,
                 const Address& to, TxOffloads offloads, uint16_t vlan_tci) {
    const uint32_t payload_len = rte_pktmbuf_pkt_len(m);
    if (from.type != to.type || to.type == AddressType::none) return false;
    if (payload_len > UINT16_MAX - sizeof(rte_ipv4_hdr) - sizeof(rte_udp_hdr)) return false;
    const uint16_t tag = vlan_tci ? sizeof(rte_vlan_hdr) : 0;
    auto* eth = reinterpret_cast<rte_ether_hdr*>(rte_pktmbuf_prepend(m, udp_header_bytes(to.type) + tag));
    if (eth == nullptr) return false;
    eth->dst_addr = dst_mac;
    eth->src_addr = src_mac;
    m->ol_flags &= ~RTE_MBUF_F_TX_OFFLOAD_MASK;
    m->l2_len = sizeof(rte_ether_hdr) + tag;
    const uint16_t ether_type = rte_cpu_to_be_16(to.type == AddressType::ipv4 ? RTE_ETHER_TYPE_IPV4
                                                                                : RTE_ETHER_TYPE_IPV6);
    void* l3 = rte_pktmbuf_mtod_offset(m, uint8_t*, m->l2_len);
    if (tag) {
        eth->ether_type = rte_cpu_to_be_16(RTE_ETHER_TYPE_VLAN);
        auto* vlan = reinterpret_cast<rte_vlan_hdr*>(eth + 1);
        vlan->vlan_tci = rte_cpu_to_be_16(vlan_tci);
        vlan->eth_proto = ether_type;
    } else {
        eth->ether_type = ether_type;
    }
    const auto len = static_cast<uint16_t>(payload_len);
    if (to.type == AddressType::ipv4)
        write_ipv4_udp(m, static_cast<rte_ipv4_hdr*>(l3), from, to, len, offloads);
    else
        write_ipv6_udp(m, static_cast<rte_ipv6_hdr*>(l3), from, to, len, offloads);
    return true;
}

void make_arp_reply(rte_mbuf* m, const RxFrame& f, const rte_ether_addr& our_mac) {
    auto* eth = rte_pktmbuf_mtod(m, rte_ether_hdr*);
    eth->dst_addr = f.link_addr;
    eth->src_addr = our_mac;
    auto* arp = rte_pktmbuf_mtod_offset(m, rte_arp_hdr*, f.l2_len);
    arp->arp_opcode = rte_cpu_to_be_16(RTE_ARP_OP_REPLY);
    arp->arp_data.arp_tha = f.link_addr;
    arp->arp_data.arp_tip = be32_of(f.src);
    arp->arp_data.arp_sha = our_mac;
    arp->arp_data.arp_sip = be32_of(f.dst);
    m->ol_flags &= ~RTE_MBUF_F_TX_OFFLOAD_MASK;
}

bool make_neighbour_advert(rte_mbuf* m, const RxFrame& f, const rte_ether_addr& our_mac) {
    const uint32_t icmp_len = sizeof(NdMessage) + sizeof(NdLinkAddrOption);
    if (!resize_to(m, uint32_t{f.l2_len} + sizeof(rte_ipv6_hdr) + icmp_len)) return false;
    // Answer to the solicitor, or to all nodes for a duplicate address probe (RFC 4861 §7.2.4).
    const bool dad = is_unspecified(f.src.ip.data());
    static constexpr uint8_t all_nodes[16] = {0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01};
    static constexpr rte_ether_addr all_nodes_mac{{0x33, 0x33, 0, 0, 0, 0x01}};

    auto* eth = rte_pktmbuf_mtod(m, rte_ether_hdr*);
    eth->dst_addr = dad ? all_nodes_mac : f.link_addr;
    eth->src_addr = our_mac;
    auto* ip = rte_pktmbuf_mtod_offset(m, rte_ipv6_hdr*, f.l2_len);
    ip->vtc_flow = rte_cpu_to_be_32(6u << 28);
    ip->payload_len = rte_cpu_to_be_16(static_cast<uint16_t>(icmp_len));
    ip->proto = kIcmp6Proto;
    ip->hop_limits = kNdHopLimit;
    std::memcpy(ip->dst_addr, dad ? all_nodes : f.src.ip.data(), 16);
    std::memcpy(ip->src_addr, f.dst.ip.data(), 16);

    auto* nd = reinterpret_cast<NdMessage*>(ip + 1);
    nd->type = kNdNeighbourAdvert;
    nd->code = 0;
    nd->checksum = 0;
    nd->flags = rte_cpu_to_be_32(kNaFlagOverride | (dad ? 0 : kNaFlagSolicited));
    std::memcpy(nd->target, f.dst.ip.data(), 16);
    auto* opt = reinterpret_cast<NdLinkAddrOption*>(nd + 1);
    opt->type = kNdOptTargetLinkAddr;
    opt->length = 1;
    std::memcpy(opt->mac, our_mac.addr_bytes, RTE_ETHER_ADDR_LEN);
    nd->checksum = static_cast<uint16_t>(~ipv6_l4_sum(ip, nd));
    m->ol_flags &= ~RTE_MBUF_F_TX_OFFLOAD_MASK;
    return true;
}

bool make_arp_request(rte_mbuf* m, const rte_ether_addr& our_mac, const Address& our_ip, const Address& target) {
    if (our_ip.type != AddressType::ipv4 || target.type != AddressType::ipv4) return false;
    auto* eth = reinterpret_cast<rte_ether_hdr*>(rte_pktmbuf_append(m, kMinFrame));
    if (eth == nullptr) return false;
    std::memset(eth, 0, kMinFrame);  // the padding, and an unknown target hardware address
    std::memset(eth->dst_addr.addr_bytes, 0xff, RTE_ETHER_ADDR_LEN);
    eth->src_addr = our_mac;
    eth->ether_type = rte_cpu_to_be_16(RTE_ETHER_TYPE_ARP);
    auto* arp = reinterpret_cast<rte_arp_hdr*>(eth + 1);
    arp->arp_hardware = rte_cpu_to_be_16(RTE_ARP_HRD_ETHER);
    arp->arp_protocol = rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4);
    arp->arp_hlen = RTE_ETHER_ADDR_LEN;
    arp->arp_plen = 4;
    arp->arp_opcode = rte_cpu_to_be_16(RTE_ARP_OP_REQUEST);
    arp->arp_data.arp_sha = our_mac;
    arp->arp_data.arp_sip = be32_of(our_ip);
    arp->arp_data.arp_tip = be32_of(target);
    m->ol_flags &= ~RTE_MBUF_F_TX_OFFLOAD_MASK;
    return true;
}

bool make_neighbour_solicit(rte_mbuf* m, const rte_ether_addr& our_mac, const Address& our_ip,
                            const Address& target) {
    if (our_ip.type != AddressType::ipv6 || target.type != AddressType::ipv6) return false;
    const uint16_t icmp_len = sizeof(NdMessage) + sizeof(NdLinkAddrOption);
    const uint16_t len = sizeof(rte_ether_hdr) + sizeof(rte_ipv6_hdr) + icmp_len;
    auto* eth = reinterpret_cast<rte_ether_hdr*>(rte_pktmbuf_append(m, len));
    if (eth == nullptr) return false;
    std::memset(eth, 0, len);
    eth->dst_addr = solicited_node_mac(target.ip.data());
    eth->src_addr = our_mac;
    eth->ether_type = rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV6);
    auto* ip = reinterpret_cast<rte_ipv6_hdr*>(eth + 1);
    ip->vtc_flow = rte_cpu_to_be_32(6u << 28);
    ip->payload_len = rte_cpu_to_be_16(icmp_len);
    ip->proto = kIcmp6Proto;
    ip->hop_limits = kNdHopLimit;
    std::memcpy(ip->src_addr, our_ip.ip.data(), 16);
    static constexpr uint8_t solicited_prefix[13] = {0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0xff};
    std::memcpy(ip->dst_addr, solicited_prefix, sizeof solicited_prefix);
    std::memcpy(ip->dst_addr + 13, target.ip.data() + 13, 3);
    auto* nd = reinterpret_cast<NdMessage*>(ip + 1);
    nd->type = kNdNeighbourSolicit;
    std::memcpy(nd->target, target.ip.data(), 16);
    auto* opt = reinterpret_cast<NdLinkAddrOption*>(nd + 1);
    opt->type = kNdOptSourceLinkAddr;
    opt->length = 1;
    std::memcpy(opt->mac, our_mac.addr_bytes, RTE_ETHER_ADDR_LEN);
    nd->checksum = static_cast<uint16_t>(~ipv6_l4_sum(ip, nd));
    m->ol_flags &= ~RTE_MBUF_F_TX_OFFLOAD_MASK;
    return true;
}

rte_ether_addr solicited_node_mac(const uint8_t* ip6) {
    return rte_ether_addr{{0x33, 0x33, 0xff, ip6[13], ip6[14], ip6[15]}};
}

uint16_t ipv6_l4_sum(const rte_ipv6_hdr* ip, const void* l4) {
    const uint16_t raw = rte_raw_cksum(l4, rte_be_to_cpu_16(ip->payload_len));
    return fold(uint32_t{raw} + rte_ipv6_phdr_cksum(ip, 0));
}

}  // namespace pomelo::drivers::l2l3
