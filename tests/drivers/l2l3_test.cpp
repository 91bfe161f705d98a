// l2l3 on single mbufs: what parse_frame calls each frame, what strip / prepend / the in-place
// replies leave behind, checked against an independent checksum.
#include <gtest/gtest.h>

#include <algorithm>

#include "drivers/l2l3.hpp"
#include "tests/drivers/frames.hpp"

namespace pomelo::test {
namespace {

using drivers::l2l3::FrameKind;
using drivers::l2l3::LocalView;
using drivers::l2l3::RxFrame;
namespace l2l3 = drivers::l2l3;

class L2l3 : public ::testing::Test {
protected:
    void SetUp() override { free_before_ = rte_mempool_avail_count(pool()); }
    void TearDown() override {
        release();
        EXPECT_EQ(rte_mempool_avail_count(pool()), free_before_) << "mbuf leak";
    }

    // Parses `frame` as the server sees it; keeps the mbuf for inspection in `m_`.
    RxFrame parse(const Bytes& frame, uint64_t ol_flags = 0) {
        release();
        m_ = frame_mbuf(frame);
        m_->ol_flags = ol_flags;
        return l2l3::parse_frame(m_, view_);
    }
    FrameKind kind(const Bytes& frame, uint64_t ol_flags = 0) { return parse(frame, ol_flags).kind; }
    void release() {
        rte_pktmbuf_free(m_);
        m_ = nullptr;
    }

    std::vector<wire::Address> endpoints_{v4(198, 18, 0, 1, 4000), v6(1, 4000)};
    LocalView view_{kServerMac, endpoints_};
    rte_mbuf* m_ = nullptr;
    unsigned free_before_ = 0;
};

const wire::Address kClient4 = v4(198, 18, 0, 2, 5000);
const wire::Address kServer4 = v4(198, 18, 0, 1, 4000);
const wire::Address kClient6 = v6(2, 5000);
const wire::Address kServer6 = v6(1, 4000);

TEST_F(L2l3, BuiltIpv4FrameHasCorrectHeadersAndChecksums) {
    const Bytes payload = pattern(100, 1);
    const Bytes f = udp_frame(kClientMac, kServerMac, kClient4, kServer4, payload);
    ASSERT_EQ(f.size(), kEth + kIp4 + kUdp + payload.size());
    EXPECT_EQ(be16_at(f, 12), RTE_ETHER_TYPE_IPV4);
    EXPECT_EQ(f[kEth], 0x45);
    EXPECT_EQ(be16_at(f, kEth + 2), kIp4 + kUdp + payload.size());
    EXPECT_EQ(be16_at(f, kEth + 6), RTE_IPV4_HDR_DF_FLAG);
    EXPECT_EQ(f[kEth + 9], IPPROTO_UDP);
    EXPECT_EQ(be16_at(f, kEth + kIp4), 5000);
    EXPECT_EQ(be16_at(f, kEth + kIp4 + 2), 4000);
    EXPECT_TRUE(ipv4_header_checksum_ok(f));
    EXPECT_NE(be16_at(f, kEth + kIp4 + 6), 0);
    EXPECT_TRUE(l4_checksum_ok(f));
}

TEST_F(L2l3, BuiltIpv6FrameHasCorrectHeadersAndChecksum) {
    const Bytes payload = pattern(33, 2);
    const Bytes f = udp_frame(kClientMac, kServerMac, kClient6, kServer6, payload);
    ASSERT_EQ(f.size(), kEth + kIp6 + kUdp + payload.size());
    EXPECT_EQ(be16_at(f, 12), RTE_ETHER_TYPE_IPV6);
    EXPECT_EQ(f[kEth] >> 4, 6);
    EXPECT_EQ(be16_at(f, kEth + 4), kUdp + payload.size());
    EXPECT_EQ(f[kEth + 6], IPPROTO_UDP);
    EXPECT_TRUE(l4_checksum_ok(f));
}

TEST_F(L2l3, ParsesAndStripsToThePayloadBothFamilies) {
    for (const auto& [from, to] : {std::pair{kClient4, kServer4}, std::pair{kClient6, kServer6}}) {
        const Bytes payload = pattern(200, 3);
        const RxFrame f = parse(udp_frame(kClientMac, kServerMac, from, to, payload));
        ASSERT_EQ(f.kind, FrameKind::udp) << from.to_string();
        EXPECT_EQ(f.src, from);
        EXPECT_EQ(f.dst, to);
        EXPECT_EQ(f.payload_len, payload.size());
        EXPECT_EQ(f.vlan_tci, 0);
        EXPECT_TRUE(rte_is_same_ether_addr(&f.link_addr, &kClientMac));
        ASSERT_TRUE(l2l3::strip_to_payload(m_, f));
        EXPECT_EQ(bytes_of(m_), payload);
    }
}

TEST_F(L2l3, StripsEthernetPaddingOfShortFrames) {
    const Bytes payload = {'h', 'i'};
    Bytes frame = udp_frame(kClientMac, kServerMac, kClient4, kServer4, payload);
    frame.resize(60, 0);  // what a switch or NIC delivers for a 44-byte frame
    const RxFrame f = parse(frame);
    ASSERT_EQ(f.kind, FrameKind::udp);
    ASSERT_TRUE(l2l3::strip_to_payload(m_, f));
    EXPECT_EQ(bytes_of(m_), payload);
}

TEST_F(L2l3, RefusesToStripTrailingBytesSpreadOverSegments) {
    Bytes frame = udp_frame(kClientMac, kServerMac, kClient4, kServer4, pattern(100, 4));
    frame.resize(frame.size() + 20, 0xee);  // junk after the IP datagram...
    const RxFrame f = parse(frame);
    ASSERT_EQ(f.kind, FrameKind::udp);
    ASSERT_EQ(rte_pktmbuf_chain(m_, payload_mbuf(Bytes(5, 0xee))), 0);  // ...and in the next segment
    EXPECT_FALSE(l2l3::strip_to_payload(m_, f));
}

TEST_F(L2l3, AcceptsOneVlanTag) {
    const Bytes payload = pattern(50, 4);
    Bytes frame = udp_frame(kClientMac, kServerMac, kClient4, kServer4, payload);
    const Bytes tag = {0x81, 0x00, 0x00, 0x2a};
    frame.insert(frame.begin() + 12, tag.begin(), tag.end());
    const RxFrame f = parse(frame);
    ASSERT_EQ(f.kind, FrameKind::udp);
    EXPECT_EQ(f.l2_len, kEth + 4);
    EXPECT_EQ(f.vlan_tci, 0x2a);
    ASSERT_TRUE(l2l3::strip_to_payload(m_, f));
    EXPECT_EQ(bytes_of(m_), payload);
}

// A tag the NIC stripped (RX VLAN strip offload) is reported as if it were in the frame.
TEST_F(L2l3, ReportsAVlanTagTheNicStripped) {
    release();
    m_ = frame_mbuf(udp_frame(kClientMac, kServerMac, kClient4, kServer4, pattern(20, 1)));
    m_->ol_flags = RTE_MBUF_F_RX_VLAN | RTE_MBUF_F_RX_VLAN_STRIPPED;
    m_->vlan_tci = 0x6007;
    const RxFrame f = l2l3::parse_frame(m_, view_);
    ASSERT_EQ(f.kind, FrameKind::udp);
    EXPECT_EQ(f.l2_len, kEth);
    EXPECT_EQ(f.vlan_tci, 0x6007);
}

// prepend_udp with a TCI writes one 802.1Q tag that the parser reads back; 0 writes none.
TEST_F(L2l3, PrependsAVlanTagThatParsesBack) {
    for (const auto& [from, to] : {std::pair{kClient4, kServer4}, std::pair{kClient6, kServer6}}) {
        const Bytes payload = pattern(77, 9);
        rte_mbuf* m = payload_mbuf(payload);
        ASSERT_TRUE(l2l3::prepend_udp(m, kClientMac, kServerMac, from, to, {}, 0xa02a));  // PCP 5, VLAN 42
        EXPECT_EQ(m->l2_len, kEth + 4);
        Bytes f = bytes_of(m);
        rte_pktmbuf_free(m);
        const bool ipv4 = from.type == wire::AddressType::ipv4;
        ASSERT_EQ(f.size(), kEth + 4 + (ipv4 ? kIp4 : kIp6) + kUdp + payload.size());
        EXPECT_EQ(be16_at(f, 12), RTE_ETHER_TYPE_VLAN);
        EXPECT_EQ(be16_at(f, 14), 0xa02a);
        EXPECT_EQ(be16_at(f, 16), ipv4 ? RTE_ETHER_TYPE_IPV4 : RTE_ETHER_TYPE_IPV6);

        const RxFrame r = parse(f);
        ASSERT_EQ(r.kind, FrameKind::udp) << from.to_string();
        EXPECT_EQ(r.vlan_tci, 0xa02a);
        EXPECT_EQ(r.src, from);
        ASSERT_TRUE(l2l3::strip_to_payload(m_, r));
        EXPECT_EQ(bytes_of(m_), payload);

        f.erase(f.begin() + 12, f.begin() + 16);  // the checksum helpers read untagged frames
        if (ipv4) {
            EXPECT_TRUE(ipv4_header_checksum_ok(f));
        }
        EXPECT_TRUE(l4_checksum_ok(f));
    }
    rte_mbuf* m = payload_mbuf(pattern(5, 1));
    ASSERT_TRUE(l2l3::prepend_udp(m, kClientMac, kServerMac, kClient4, kServer4, {}, 0));
    EXPECT_EQ(be16_at(bytes_of(m), 12), RTE_ETHER_TYPE_IPV4);
    rte_pktmbuf_free(m);
}

TEST_F(L2l3, OtherAddressesPortsProtocolsAndMacsAreNotOurs) {
    const Bytes p = pattern(20, 5);
    EXPECT_EQ(kind(udp_frame(kClientMac, kServerMac, kClient4, v4(198, 18, 0, 1, 4001), p)), FrameKind::not_ours);
    EXPECT_EQ(kind(udp_frame(kClientMac, kServerMac, kClient4, v4(198, 18, 0, 9, 4000), p)), FrameKind::not_ours);
    EXPECT_EQ(kind(udp_frame(kClientMac, kServerMac, kClient6, v6(9, 4000), p)), FrameKind::not_ours);
    EXPECT_EQ(kind(udp_frame(kClientMac, kOtherMac, kClient4, kServer4, p)), FrameKind::not_ours);

    Bytes tcp = udp_frame(kClientMac, kServerMac, kClient4, kServer4, p);
    tcp[kEth + 9] = IPPROTO_TCP;
    fix_ipv4_header_checksum(tcp);
    EXPECT_EQ(kind(tcp), FrameKind::not_ours);

    Bytes hop_by_hop = udp_frame(kClientMac, kServerMac, kClient6, kServer6, p);
    hop_by_hop[kEth + 6] = 0;  // an extension header: not something we serve
    EXPECT_EQ(kind(hop_by_hop), FrameKind::not_ours);

    Bytes lldp = udp_frame(kClientMac, kServerMac, kClient4, kServer4, p);
    put_be16(lldp, 12, 0x88cc);
    EXPECT_EQ(kind(lldp), FrameKind::not_ours);
}

TEST_F(L2l3, TruncatedAndInconsistentFramesAreMalformed) {
    const Bytes good = udp_frame(kClientMac, kServerMac, kClient4, kServer4, pattern(64, 6));
    EXPECT_EQ(kind(Bytes(good.begin(), good.begin() + 10)), FrameKind::malformed);
    EXPECT_EQ(kind(Bytes(good.begin(), good.begin() + kEth + 10)), FrameKind::malformed);
    EXPECT_EQ(kind(Bytes(good.begin(), good.end() - 1)), FrameKind::malformed);  // shorter than IP says

    Bytes udp_len = good;
    put_be16(udp_len, kEth + kIp4 + 4, static_cast<uint16_t>(be16_at(good, kEth + kIp4 + 4) - 1));
    EXPECT_EQ(kind(udp_len), FrameKind::malformed);

    Bytes version = good;
    version[kEth] = 0x65;
    fix_ipv4_header_checksum(version);
    EXPECT_EQ(kind(version), FrameKind::malformed);

    Bytes broadcast_source = good;
    std::fill_n(broadcast_source.begin() + 6, 6, 0xff);
    EXPECT_EQ(kind(broadcast_source), FrameKind::malformed);

    const Bytes good6 = udp_frame(kClientMac, kServerMac, kClient6, kServer6, pattern(64, 6));
    EXPECT_EQ(kind(Bytes(good6.begin(), good6.end() - 3)), FrameKind::malformed);
}

TEST_F(L2l3, BadChecksumsAreMalformed) {
    Bytes ip_sum = udp_frame(kClientMac, kServerMac, kClient4, kServer4, pattern(64, 7));
    ip_sum[kEth + 10] ^= 0x01;
    EXPECT_EQ(kind(ip_sum), FrameKind::malformed);

    Bytes udp_sum4 = udp_frame(kClientMac, kServerMac, kClient4, kServer4, pattern(64, 7));
    udp_sum4.back() ^= 0x40;  // payload changed, checksum not
    EXPECT_EQ(kind(udp_sum4), FrameKind::malformed);

    Bytes udp_sum6 = udp_frame(kClientMac, kServerMac, kClient6, kServer6, pattern(64, 7));
    udp_sum6.back() ^= 0x40;
    EXPECT_EQ(kind(udp_sum6), FrameKind::malformed);
}

TEST_F(L2l3, ZeroUdpChecksumMeansNoneOverIpv4OnlyOverIpv4) {
    Bytes f4 = udp_frame(kClientMac, kServerMac, kClient4, kServer4, pattern(64, 8));
    put_be16(f4, kEth + kIp4 + 6, 0);
    EXPECT_EQ(kind(f4), FrameKind::udp);
    Bytes f6 = udp_frame(kClientMac, kServerMac, kClient6, kServer6, pattern(64, 8));
    put_be16(f6, kEth + kIp6 + 6, 0);
    EXPECT_EQ(kind(f6), FrameKind::malformed);
}

TEST_F(L2l3, TrustsTheNicsChecksumVerdicts) {
    Bytes f = udp_frame(kClientMac, kServerMac, kClient4, kServer4, pattern(64, 9));
    f[kEth + 10] ^= 0x01;
    f.back() ^= 0x01;
    EXPECT_EQ(kind(f), FrameKind::malformed);
    EXPECT_EQ(kind(f, RTE_MBUF_F_RX_IP_CKSUM_GOOD | RTE_MBUF_F_RX_L4_CKSUM_GOOD), FrameKind::udp);
    const Bytes good = udp_frame(kClientMac, kServerMac, kClient4, kServer4, pattern(64, 9));
    EXPECT_EQ(kind(good, RTE_MBUF_F_RX_IP_CKSUM_BAD), FrameKind::malformed);
    EXPECT_EQ(kind(good, RTE_MBUF_F_RX_L4_CKSUM_BAD), FrameKind::malformed);
}

TEST_F(L2l3, FragmentsForUsAreMalformedOthersNotOurs) {
    Bytes more = udp_frame(kClientMac, kServerMac, kClient4, kServer4, pattern(64, 10));
    put_be16(more, kEth + 6, RTE_IPV4_HDR_MF_FLAG);
    fix_ipv4_header_checksum(more);
    EXPECT_EQ(kind(more), FrameKind::malformed);
    Bytes later = more;
    put_be16(later, kEth + 6, 100);  // offset 800, last fragment
    fix_ipv4_header_checksum(later);
    EXPECT_EQ(kind(later), FrameKind::malformed);
    Bytes elsewhere = udp_frame(kClientMac, kServerMac, kClient4, v4(198, 18, 0, 9, 4000), pattern(64, 10));
    put_be16(elsewhere, kEth + 6, RTE_IPV4_HDR_MF_FLAG);
    fix_ipv4_header_checksum(elsewhere);
    EXPECT_EQ(kind(elsewhere), FrameKind::not_ours);
}

TEST_F(L2l3, TxOffloadLeavesThePseudoHeaderSumAndFlags) {
    rte_mbuf* m = payload_mbuf(pattern(80, 11));
    ASSERT_TRUE(l2l3::prepend_udp(m, kServerMac, kClientMac, kServer4, kClient4, {true, true}));
    EXPECT_EQ(m->ol_flags & RTE_MBUF_F_TX_OFFLOAD_MASK,
              RTE_MBUF_F_TX_IPV4 | RTE_MBUF_F_TX_IP_CKSUM | RTE_MBUF_F_TX_UDP_CKSUM);
    EXPECT_EQ(m->l2_len, kEth);
    EXPECT_EQ(m->l3_len, kIp4);
    const auto* ip = rte_pktmbuf_mtod_offset(m, const rte_ipv4_hdr*, kEth);
    const auto* udp = rte_pktmbuf_mtod_offset(m, const rte_udp_hdr*, kEth + kIp4);
    EXPECT_EQ(ip->hdr_checksum, 0);
    EXPECT_EQ(udp->dgram_cksum, rte_ipv4_phdr_cksum(ip, m->ol_flags));
    rte_pktmbuf_free(m);

    m = payload_mbuf(pattern(80, 11));
    ASSERT_TRUE(l2l3::prepend_udp(m, kServerMac, kClientMac, kServer6, kClient6, {false, true}));
    EXPECT_EQ(m->ol_flags & RTE_MBUF_F_TX_OFFLOAD_MASK, RTE_MBUF_F_TX_IPV6 | RTE_MBUF_F_TX_UDP_CKSUM);
    EXPECT_EQ(m->l3_len, kIp6);
    const auto* ip6 = rte_pktmbuf_mtod_offset(m, const rte_ipv6_hdr*, kEth);
    EXPECT_EQ(rte_pktmbuf_mtod_offset(m, const rte_udp_hdr*, kEth + kIp6)->dgram_cksum,
              rte_ipv6_phdr_cksum(ip6, m->ol_flags));
    rte_pktmbuf_free(m);
}

TEST_F(L2l3, PrependFailsCleanlyWithoutHeadroom) {
    rte_mbuf* m = payload_mbuf(pattern(10, 12));
    rte_pktmbuf_prepend(m, static_cast<uint16_t>(rte_pktmbuf_headroom(m) - 20));
    const Bytes before = bytes_of(m);
    EXPECT_FALSE(l2l3::prepend_udp(m, kServerMac, kClientMac, kServer4, kClient4, {}));
    EXPECT_EQ(bytes_of(m), before);
    rte_pktmbuf_free(m);
}

TEST_F(L2l3, ChecksumsCoverChainedPayloads) {
    rte_mbuf* head = payload_mbuf(pattern(301, 13));  // odd split: the sum must byte-swap
    rte_mbuf* tail = payload_mbuf(pattern(500, 14));
    ASSERT_EQ(rte_pktmbuf_chain(head, tail), 0);
    ASSERT_TRUE(l2l3::prepend_udp(head, kClientMac, kServerMac, kClient6, kServer6, {}));
    EXPECT_TRUE(l4_checksum_ok(bytes_of(head)));
    const RxFrame f = l2l3::parse_frame(head, view_);
    EXPECT_EQ(f.kind, FrameKind::udp);
    EXPECT_EQ(f.payload_len, 801);
    rte_pktmbuf_free(head);
}

TEST_F(L2l3, ArpRequestForUsBecomesTheReply) {
    const RxFrame f = parse(arp_request(kClientMac, kClient4, kServer4));
    ASSERT_EQ(f.kind, FrameKind::arp_request);
    l2l3::make_arp_reply(m_, f, kServerMac);
    const Bytes r = bytes_of(m_);
    EXPECT_TRUE(std::equal(r.begin(), r.begin() + 6, kClientMac.addr_bytes));
    EXPECT_TRUE(std::equal(r.begin() + 6, r.begin() + 12, kServerMac.addr_bytes));
    EXPECT_EQ(be16_at(r, 20), RTE_ARP_OP_REPLY);
    EXPECT_TRUE(std::equal(r.begin() + 22, r.begin() + 28, kServerMac.addr_bytes));  // sha
    EXPECT_TRUE(std::equal(r.begin() + 28, r.begin() + 32, kServer4.ip.begin()));     // spa
    EXPECT_TRUE(std::equal(r.begin() + 32, r.begin() + 38, kClientMac.addr_bytes));  // tha
    EXPECT_TRUE(std::equal(r.begin() + 38, r.begin() + 42, kClient4.ip.begin()));     // tpa

    EXPECT_EQ(kind(arp_request(kClientMac, kClient4, v4(198, 18, 0, 9, 0))), FrameKind::not_ours);
    Bytes reply = arp_request(kClientMac, kClient4, kServer4);
    put_be16(reply, 20, RTE_ARP_OP_REPLY);
    EXPECT_EQ(kind(reply), FrameKind::arp_reply);  // whether we asked is the port's call
    Bytes bad = arp_request(kClientMac, kClient4, kServer4);
    bad[18] = 8;
    EXPECT_EQ(kind(bad), FrameKind::malformed);
    // A probe from 0.0.0.0 is answered too.
    const RxFrame probe = parse(arp_request(kClientMac, v4(0, 0, 0, 0, 0), kServer4));
    EXPECT_EQ(probe.kind, FrameKind::arp_request);
}

// The client side: our request, answered by our own responder (as the server's port does),
// and the answer read back.
TEST_F(L2l3, OurArpRequestIsAnsweredAndTheReplyReadsBack) {
    const LocalView client_view{kClientMac, std::span<const wire::Address>(&kClient4, 1)};
    release();
    m_ = rte_pktmbuf_alloc(pool());
    ASSERT_NE(m_, nullptr);
    ASSERT_TRUE(l2l3::make_arp_request(m_, kClientMac, kClient4, kServer4));
    const Bytes q = bytes_of(m_);
    ASSERT_EQ(q.size(), 60u);  // padded to the Ethernet minimum
    EXPECT_TRUE(std::all_of(q.begin(), q.begin() + 6, [](uint8_t b) { return b == 0xff; }));
    EXPECT_TRUE(std::equal(q.begin() + 6, q.begin() + 12, kClientMac.addr_bytes));
    EXPECT_EQ(be16_at(q, 12), RTE_ETHER_TYPE_ARP);
    EXPECT_EQ(be16_at(q, 14), RTE_ARP_HRD_ETHER);
    EXPECT_EQ(be16_at(q, 16), RTE_ETHER_TYPE_IPV4);
    EXPECT_EQ(q[18], 6);
    EXPECT_EQ(q[19], 4);
    EXPECT_EQ(be16_at(q, 20), RTE_ARP_OP_REQUEST);
    EXPECT_TRUE(std::equal(q.begin() + 22, q.begin() + 28, kClientMac.addr_bytes));  // sha
    EXPECT_TRUE(std::equal(q.begin() + 28, q.begin() + 32, kClient4.ip.begin()));     // spa
    EXPECT_TRUE(std::all_of(q.begin() + 32, q.begin() + 38, [](uint8_t b) { return b == 0; }));  // tha
    EXPECT_TRUE(std::equal(q.begin() + 38, q.begin() + 42, kServer4.ip.begin()));     // tpa

    const RxFrame asked = l2l3::parse_frame(m_, view_);  // the server's view
    ASSERT_EQ(asked.kind, FrameKind::arp_request);
    l2l3::make_arp_reply(m_, asked, kServerMac);
    const RxFrame answer = l2l3::parse_frame(m_, client_view);
    ASSERT_EQ(answer.kind, FrameKind::arp_reply);
    EXPECT_EQ(answer.src, wire::Address::ipv4({198, 18, 0, 1}, 0));
    EXPECT_TRUE(rte_is_same_ether_addr(&answer.link_addr, &kServerMac));

    // Not for a MAC a station can have.
    Bytes bad = bytes_of(m_);
    std::fill(bad.begin() + 22, bad.begin() + 28, 0xff);
    release();
    m_ = frame_mbuf(bad);
    EXPECT_EQ(l2l3::parse_frame(m_, client_view).kind, FrameKind::malformed);
    // Nor a family the request cannot carry.
    rte_mbuf* other = rte_pktmbuf_alloc(pool());
    EXPECT_FALSE(l2l3::make_arp_request(other, kClientMac, kClient6, kServer4));
    rte_pktmbuf_free(other);
}

TEST_F(L2l3, OurNeighbourSolicitationIsAnsweredAndTheAdvertisementReadsBack) {
    const LocalView client_view{kClientMac, std::span<const wire::Address>(&kClient6, 1)};
    release();
    m_ = rte_pktmbuf_alloc(pool());
    ASSERT_NE(m_, nullptr);
    ASSERT_TRUE(l2l3::make_neighbour_solicit(m_, kClientMac, kClient6, kServer6));
    const Bytes q = bytes_of(m_);
    ASSERT_EQ(q.size(), kEth + kIp6 + 32);
    const rte_ether_addr group = l2l3::solicited_node_mac(kServer6.ip.data());
    EXPECT_TRUE(std::equal(q.begin(), q.begin() + 6, group.addr_bytes));
    EXPECT_EQ(q[kEth + 7], 255);  // hop limit
    EXPECT_EQ(q[kEth + 24], 0xff);  // ff02::1:ff00:1
    EXPECT_EQ(q[kEth + 35], 0x01);
    EXPECT_EQ(q[kEth + 36], 0xff);
    EXPECT_EQ(q[kEth + 39], 0x01);
    EXPECT_EQ(q[kEth + kIp6], 135);
    EXPECT_TRUE(l4_checksum_ok(q));
    EXPECT_EQ(q[kEth + kIp6 + 24], 1);  // source link-layer address option
    EXPECT_TRUE(std::equal(q.begin() + kEth + kIp6 + 26, q.begin() + kEth + kIp6 + 32, kClientMac.addr_bytes));

    const RxFrame asked = l2l3::parse_frame(m_, view_);
    ASSERT_EQ(asked.kind, FrameKind::neighbour_solicit);
    EXPECT_TRUE(rte_is_same_ether_addr(&asked.link_addr, &kClientMac));
    ASSERT_TRUE(l2l3::make_neighbour_advert(m_, asked, kServerMac));
    const RxFrame answer = l2l3::parse_frame(m_, client_view);
    ASSERT_EQ(answer.kind, FrameKind::neighbour_advert);
    EXPECT_EQ(answer.src, wire::Address::ipv6(kServer6.ip, 0));
    EXPECT_TRUE(rte_is_same_ether_addr(&answer.link_addr, &kServerMac));

    // A corrupted advertisement is malformed; one for someone else is not ours.
    Bytes bad = bytes_of(m_);
    bad[kEth + kIp6 + 8] ^= 1;  // the target
    release();
    m_ = frame_mbuf(bad);
    EXPECT_EQ(l2l3::parse_frame(m_, client_view).kind, FrameKind::malformed);
    fix_icmp6_checksum(bad);
    release();
    m_ = frame_mbuf(bad);
    EXPECT_EQ(l2l3::parse_frame(m_, client_view).kind, FrameKind::neighbour_advert);
    const LocalView third_view{kOtherMac, std::span<const wire::Address>(&kServer6, 1)};
    EXPECT_EQ(l2l3::parse_frame(m_, third_view).kind, FrameKind::not_ours);
}

TEST_F(L2l3, NeighbourSolicitationBecomesAValidAdvertisement) {
    const RxFrame f = parse(neighbour_solicit(kClientMac, kClient6.ip.data(), kServer6));
    ASSERT_EQ(f.kind, FrameKind::neighbour_solicit);
    EXPECT_TRUE(rte_is_same_ether_addr(&f.link_addr, &kClientMac));
    ASSERT_TRUE(l2l3::make_neighbour_advert(m_, f, kServerMac));
    const Bytes r = bytes_of(m_);
    ASSERT_EQ(r.size(), kEth + kIp6 + 32);
    EXPECT_TRUE(std::equal(r.begin(), r.begin() + 6, kClientMac.addr_bytes));
    EXPECT_TRUE(std::equal(r.begin() + 6, r.begin() + 12, kServerMac.addr_bytes));
    EXPECT_EQ(r[kEth + 6], 58);
    EXPECT_EQ(r[kEth + 7], 255);
    EXPECT_TRUE(std::equal(r.begin() + kEth + 8, r.begin() + kEth + 24, kServer6.ip.begin()));
    EXPECT_TRUE(std::equal(r.begin() + kEth + 24, r.begin() + kEth + 40, kClient6.ip.begin()));
    const size_t nd = kEth + kIp6;
    EXPECT_EQ(r[nd], 136);
    EXPECT_EQ(r[nd + 1], 0);
    EXPECT_EQ(r[nd + 4], 0x60);  // solicited + override
    EXPECT_TRUE(std::equal(r.begin() + nd + 8, r.begin() + nd + 24, kServer6.ip.begin()));
    EXPECT_EQ(r[nd + 24], 2);  // target link-layer address option
    EXPECT_EQ(r[nd + 25], 1);
    EXPECT_TRUE(std::equal(r.begin() + nd + 26, r.begin() + nd + 32, kServerMac.addr_bytes));
    EXPECT_TRUE(l4_checksum_ok(r));
}

TEST_F(L2l3, DuplicateAddressProbeIsAnsweredToAllNodes) {
    const uint8_t unspecified[16] = {};
    const RxFrame f = parse(neighbour_solicit(kClientMac, unspecified, kServer6));
    ASSERT_EQ(f.kind, FrameKind::neighbour_solicit);
    ASSERT_TRUE(l2l3::make_neighbour_advert(m_, f, kServerMac));  // grows by the 8-byte option
    const Bytes r = bytes_of(m_);
    const Bytes all_nodes_mac = {0x33, 0x33, 0, 0, 0, 1};
    EXPECT_TRUE(std::equal(r.begin(), r.begin() + 6, all_nodes_mac.begin()));
    EXPECT_EQ(r[kEth + 24], 0xff);
    EXPECT_EQ(r[kEth + 39], 0x01);
    EXPECT_EQ(r[kEth + kIp6 + 4], 0x20);  // override only: not solicited
    EXPECT_TRUE(l4_checksum_ok(r));
}

TEST_F(L2l3, BadNeighbourSolicitationsAreRejected) {
    const Bytes good = neighbour_solicit(kClientMac, kClient6.ip.data(), kServer6);
    Bytes sum = good;
    sum[kEth + kIp6 + 2] ^= 1;
    EXPECT_EQ(kind(sum), FrameKind::malformed);
    Bytes hops = good;
    hops[kEth + 7] = 64;  // routed: not from our link
    EXPECT_EQ(kind(hops), FrameKind::malformed);
    EXPECT_EQ(kind(neighbour_solicit(kClientMac, kClient6.ip.data(), v6(9, 0))), FrameKind::not_ours);
    Bytes echo = good;
    echo[kEth + kIp6] = 128;  // echo request
    EXPECT_EQ(kind(echo), FrameKind::not_ours);
    Bytes zero_len_option = good;
    zero_len_option[kEth + kIp6 + 25] = 0;
    fix_icmp6_checksum(zero_len_option);
    EXPECT_EQ(kind(zero_len_option), FrameKind::malformed);
}

// --- LocalView: a scan for a few endpoints, keyed hash maps for many; same answers ---

class LocalViewSize : public ::testing::TestWithParam<size_t> {};

TEST_P(LocalViewSize, FindsEveryEndpointItsIpAndNothingElse) {
    // n endpoints over 3 IPv4 and 2 IPv6 addresses, ports from 50000; one listed twice.
    const size_t n = GetParam();
    std::vector<wire::Address> endpoints;
    for (size_t i = 0; i < n; ++i) {
        const auto port = static_cast<uint16_t>(50000 + i);
        endpoints.push_back(i % 5 < 3 ? v4(198, 18, 1, static_cast<uint8_t>(1 + i % 5), port)
                                      : v6(static_cast<uint8_t>(i % 5), port));
    }
    endpoints.push_back(endpoints[0]);
    const LocalView view(kServerMac, endpoints);
    EXPECT_EQ(view.hashed(), endpoints.size() > LocalView::kScanMax);
    EXPECT_EQ(view.endpoints().size(), endpoints.size());
    for (size_t i = 0; i + 1 < endpoints.size(); ++i) {
        ASSERT_EQ(view.find(endpoints[i]), i);
        EXPECT_TRUE(view.serves(endpoints[i]));
        EXPECT_TRUE(view.owns_ip(endpoints[i].type, endpoints[i].ip.data()));
    }
    EXPECT_EQ(view.find(endpoints.back()), 0u);  // listed twice: the first
    EXPECT_EQ(view.find(v4(198, 18, 1, 1, 49999)), LocalView::kNone);
    EXPECT_EQ(view.find(v4(198, 18, 1, 1, static_cast<uint16_t>(50000 + n))), LocalView::kNone);
    EXPECT_EQ(view.find(v4(198, 18, 1, 9, 50000)), LocalView::kNone);
    EXPECT_EQ(view.find(v6(1, 50000)), LocalView::kNone);  // ::1 is not among the IPs
    EXPECT_FALSE(view.owns_ip(wire::AddressType::ipv4, v4(198, 18, 1, 9, 0).ip.data()));
    EXPECT_FALSE(view.owns_ip(wire::AddressType::ipv6, v6(9, 0).ip.data()));
    // The same 4 bytes as an IPv6 prefix are not the IPv4 address.
    wire::Address odd = v6(0, 0);
    std::memcpy(odd.ip.data(), endpoints[0].ip.data(), 4);
    std::fill(odd.ip.begin() + 4, odd.ip.end(), 0);
    EXPECT_FALSE(view.owns_ip(wire::AddressType::ipv6, odd.ip.data()));
}

INSTANTIATE_TEST_SUITE_P(Sizes, LocalViewSize, ::testing::Values(size_t{5}, size_t{7}, size_t{8}, size_t{2000}),
                         [](const auto& info) { return "n" + std::to_string(info.param); });

TEST(LocalView, ParseFrameReportsTheEndpointIndex) {
    std::vector<wire::Address> endpoints;
    for (uint16_t i = 0; i < 100; ++i) endpoints.push_back(v4(198, 18, 1, 1, static_cast<uint16_t>(50000 + i)));
    const LocalView view(kServerMac, endpoints);
    const unsigned free_before = rte_mempool_avail_count(pool());
    for (uint16_t i : {0, 1, 57, 99}) {
        rte_mbuf* m = frame_mbuf(udp_frame(kOtherMac, kServerMac, v4(198, 18, 0, 9, 7), endpoints[i], pattern(10, 1)));
        const RxFrame f = l2l3::parse_frame(m, view);
        EXPECT_EQ(f.kind, FrameKind::udp);
        EXPECT_EQ(f.local_index, i);
        EXPECT_EQ(f.dst, endpoints[i]);
        rte_pktmbuf_free(m);
    }
    rte_mbuf* m = frame_mbuf(udp_frame(kOtherMac, kServerMac, v4(198, 18, 0, 9, 7), v4(198, 18, 1, 1, 50100), {}));
    EXPECT_EQ(l2l3::parse_frame(m, view).kind, FrameKind::not_ours);
    rte_pktmbuf_free(m);
    EXPECT_EQ(rte_mempool_avail_count(pool()), free_before);
}

}  // namespace
}  // namespace pomelo::test
