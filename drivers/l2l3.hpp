// Ethernet / IPv4 / IPv6 / UDP over an mbuf, as much as a UDP endpoint needs: classify a
// received frame (and check it), strip it down to the UDP payload, prepend headers for sending,
// answer address resolution (ARP, IPv6 neighbour discovery) in place, and build the requests
// of our own (RFC 826 ARP request, RFC 4861 neighbour solicitation) when the port resolves.
//
// No allocation, no state: the port that owns the mbufs keeps the counters and the neighbour
// table. Received headers must sit in the first segment (any PMD with >= 128-byte segments);
// a UDP payload may span segments.
#pragma once

#include <rte_ether.h>
#include <rte_ip.h>
#include <rte_mbuf.h>
#include <rte_udp.h>

#include <cstdint>
#include <memory>
#include <span>

#include "protocol/flat_map.hpp"
#include "protocol/wire/address.hpp"

namespace pomelo::drivers::l2l3 {

inline constexpr uint8_t kIcmp6Proto = 58;
inline constexpr uint8_t kNdNeighbourSolicit = 135;
inline constexpr uint8_t kNdNeighbourAdvert = 136;
inline constexpr uint8_t kNdOptSourceLinkAddr = 1;
inline constexpr uint8_t kNdOptTargetLinkAddr = 2;
inline constexpr uint8_t kNdHopLimit = 255;  // RFC 4861: ND packets never cross a router
inline constexpr uint8_t kIpTtl = 64;

// ICMPv6 neighbour solicitation / advertisement body (RFC 4861 §4.3, §4.4); options follow.
struct NdMessage {
    uint8_t type;
    uint8_t code;
    rte_be16_t checksum;
    rte_be32_t flags;  // NA: R (bit 31), S (30), O (29); NS: reserved
    uint8_t target[16];
} __rte_packed;
static_assert(sizeof(NdMessage) == 24);

// One link-layer address option, the only ND option we read or write.
struct NdLinkAddrOption {
    uint8_t type;
    uint8_t length;  // in units of 8 bytes
    uint8_t mac[RTE_ETHER_ADDR_LEN];
} __rte_packed;
static_assert(sizeof(NdLinkAddrOption) == 8);

inline constexpr uint32_t kNaFlagSolicited = 0x40000000;
inline constexpr uint32_t kNaFlagOverride = 0x20000000;

// What the port serves: its MAC and its UDP endpoints. Parsing needs it to say "not ours"
// before spending a checksum on a frame, and to tell which endpoint a datagram is for.
// Up to kScanMax endpoints are scanned; with more (a load generator has thousands) they are
// found through keyed hash maps (protocol/flat_map.hpp) built by the constructor. Read-only
// afterwards: one view serves every queue's lcore at once. Endpoints are at most 65535.
class LocalView {
public:
    static constexpr size_t kScanMax = 8;
    static constexpr uint16_t kNone = UINT16_MAX;

    LocalView() = default;
    LocalView(const rte_ether_addr& our_mac, std::span<const wire::Address> endpoints);
    LocalView(LocalView&&) noexcept = default;
    LocalView& operator=(LocalView&&) noexcept = default;
    ~LocalView();

    rte_ether_addr mac{};

    std::span<const wire::Address> endpoints() const { return endpoints_; }
    // Index into endpoints() of `a` (IP and port; the first when listed twice), or kNone.
    uint16_t find(const wire::Address& a) const;
    bool serves(const wire::Address& a) const { return find(a) != kNone; }
    bool owns_ip(wire::AddressType type, const uint8_t* ip) const;  // IP only
    bool hashed() const { return by_endpoint_ != nullptr; }

private:
    using Map = FlatMap<wire::AddressKey, uint16_t>;
    std::span<const wire::Address> endpoints_;
    std::unique_ptr<Map> by_endpoint_;  // endpoint -> index; null: scan
    std::unique_ptr<Map> by_ip_;        // the endpoints' IPs (port 0)
};

enum class FrameKind : uint8_t {
    udp,                // a UDP datagram for one of our endpoints, checked
    arp_request,        // an ARP request for one of our IPv4 addresses, checked
    neighbour_solicit,  // an NS for one of our IPv6 addresses, checked
    arp_reply,          // an ARP reply to one of our IPv4 addresses, checked (whether we asked is the port's call)
    neighbour_advert,   // an NA to one of our IPv6 addresses with a target link-layer address, checked
    not_ours,           // well-formed but for someone or something else
    malformed,          // truncated, inconsistent, bad checksum, fragment
};

struct RxFrame {
    FrameKind kind = FrameKind::not_ours;
    uint16_t l2_len = 0;       // Ethernet header, plus one VLAN tag if present
    uint16_t vlan_tci = 0;     // that tag's TCI (or the one the NIC stripped); 0: untagged
    uint16_t l3_len = 0;       // IPv4 header with options / IPv6 fixed header; 0 for ARP
    uint16_t payload_len = 0;  // udp: UDP payload bytes
    // udp: the frame's source MAC; arp: the sender's hardware address; ns: its source
    // link-layer option, else the frame's source; na: its target link-layer option. Where a
    // reply goes, or (arp_reply, na) what the answer claims; never learned here.
    rte_ether_addr link_addr{};
    // udp: source endpoint; arp/ns: the sender's IP; arp_reply: the IP resolved (sender);
    // na: its target (the IP resolved). Port 0 but for udp.
    wire::Address src;
    wire::Address dst;  // udp: our endpoint; arp/ns: our IP asked for; arp_reply/na: our IP (port 0)
    uint16_t local_index = LocalView::kNone;  // udp: index of dst in LocalView::endpoints()
};

// Classifies and checks one received frame. Trusts the NIC's checksum verdicts in ol_flags
// (GOOD / NONE skip the software check, BAD is malformed) and checks in software otherwise.
RxFrame parse_frame(const rte_mbuf* m, const LocalView& us);

// Leaves only the UDP payload of a frame parse_frame called udp (drops headers and any
// Ethernet padding). False if trailing bytes past the IP length span segments (treat as
// malformed).
bool strip_to_payload(rte_mbuf* m, const RxFrame& f);

struct TxOffloads {
    bool ipv4_cksum = false;  // device computes the IPv4 header checksum
    bool udp_cksum = false;   // device computes the UDP checksum from the pseudo-header sum
};

// Prepends Ethernet (with an 802.1Q tag carrying vlan_tci unless it is 0) + IPv4/IPv6 + UDP
// in front of the payload `m` holds. Returns false (mbuf untouched) if the headroom is too
// short or `from` and `to` are not of one family.
bool prepend_udp(rte_mbuf* m, const rte_ether_addr& src_mac, const rte_ether_addr& dst_mac,
                 const wire::Address& from, const wire::Address& to, TxOffloads offloads, uint16_t vlan_tci = 0);

// Bytes of Ethernet + IP + UDP header for this family (untagged).
inline uint16_t udp_header_bytes(wire::AddressType t) {
    return sizeof(rte_ether_hdr) + (t == wire::AddressType::ipv4 ? sizeof(rte_ipv4_hdr) : sizeof(rte_ipv6_hdr)) +
           sizeof(rte_udp_hdr);
}

// Rewrites an ARP request parse_frame called arp_request into our reply, in place.
void make_arp_reply(rte_mbuf* m, const RxFrame& f, const rte_ether_addr& our_mac);

// Rewrites a neighbour solicitation parse_frame called neighbour_solicit into our
// advertisement (target link-layer address option, ICMPv6 checksum), in place. False if the
// mbuf has no tailroom for the option.
bool make_neighbour_advert(rte_mbuf* m, const RxFrame& f, const rte_ether_addr& our_mac);

// Ethernet minimum frame (without FCS): requests we build are padded to it.
inline constexpr uint16_t kMinFrame = RTE_ETHER_MIN_LEN - RTE_ETHER_CRC_LEN;

// Makes the empty mbuf `m` an ARP request (RFC 826): broadcast, from `our_mac` / `our_ip`,
// asking who has `target` (IPv4; ports ignored). Padded to 60 bytes. False (mbuf left for
// the caller to free) if it has too little room or an address is not IPv4.
bool make_arp_request(rte_mbuf* m, const rte_ether_addr& our_mac, const wire::Address& our_ip,
                      const wire::Address& target);

// Makes the empty mbuf `m` a neighbour solicitation (RFC 4861 §4.3, §7.2.2) for `target`
// (IPv6; ports ignored), from `our_ip`, to the target's solicited-node multicast group, with
// our source link-layer address option. False if it has too little room or an address is not
// IPv6.
bool make_neighbour_solicit(rte_mbuf* m, const rte_ether_addr& our_mac, const wire::Address& our_ip,
                            const wire::Address& target);

// 33:33:ff:xx:xx:xx, where solicitations for `ip` are sent (RFC 4291 §2.7.1, RFC 2464 §7).
rte_ether_addr solicited_node_mac(const uint8_t* ip6);

// One's-complement sum of the ICMPv6 / UDP message right after `ip` (payload_len bytes,
// contiguous) with its pseudo-header, checksum field included: 0xffff when it is right.
uint16_t ipv6_l4_sum(const rte_ipv6_hdr* ip, const void* l4);

}  // namespace pomelo::drivers::l2l3
