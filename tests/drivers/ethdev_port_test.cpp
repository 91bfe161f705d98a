// EthdevPort over an in-memory cable: two net_ring ports made with rte_eth_from_rings, the
// server's tx ring being the client's rx ring and the other way round. Real Ethernet frames
// cross it; the tests either run a second EthdevPort on the far end or read and write the
// rings by hand to play a peer that sends exactly the frame a test needs.
#include <gtest/gtest.h>
#include <rte_dev.h>
#include <rte_eth_ring.h>
#include <rte_ethdev.h>
#include <rte_ring.h>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "drivers/ethdev_port.hpp"
#include "tests/drivers/frames.hpp"

namespace pomelo::test {
namespace {

using drivers::EthdevConfig;
using drivers::EthdevPort;
using drivers::LinkHop;
using drivers::Port;
using drivers::PortStats;

const wire::Address kServer4 = v4(198, 18, 0, 1, 4000);
const wire::Address kClient4 = v4(198, 18, 0, 2, 5000);
const wire::Address kServer6 = v6(1, 4000);
const wire::Address kClient6 = v6(2, 5000);

// Two ring ports wired to each other, `queues` rings each way.
class RingCable {
public:
    explicit RingCable(uint16_t queues) {
        static unsigned serial = 0;
        const std::string id = std::to_string(serial++);
        for (uint16_t q = 0; q < queues; ++q) {
            const std::string qs = id + "_" + std::to_string(q);
            c2s.push_back(rte_ring_create(("c2s" + qs).c_str(), 1024, 0, RING_F_SP_ENQ | RING_F_SC_DEQ));
            s2c.push_back(rte_ring_create(("s2c" + qs).c_str(), 1024, 0, RING_F_SP_ENQ | RING_F_SC_DEQ));
        }
        // rte_eth_from_rings names the device "net_ring_" + name.
        const int server_id = rte_eth_from_rings(("srv" + id).c_str(), c2s.data(), queues, s2c.data(), queues, 0);
        const int client_id = rte_eth_from_rings(("cli" + id).c_str(), s2c.data(), queues, c2s.data(), queues, 0);
        server = name_of(server_id);
        client = name_of(client_id);
        ok = server_id >= 0 && client_id >= 0;
    }
    ~RingCable() {
        for (rte_ring* r : c2s) drain(r);
        for (rte_ring* r : s2c) drain(r);
        rte_eal_hotplug_remove("vdev", server.c_str());
        rte_eal_hotplug_remove("vdev", client.c_str());
        for (rte_ring* r : c2s) rte_ring_free(r);
        for (rte_ring* r : s2c) rte_ring_free(r);
    }

    // Plays the client: puts one frame on the wire towards the server.
    void inject(const Bytes& frame, uint16_t queue = 0) {
        rte_mbuf* m = frame_mbuf(frame);
        ASSERT_NE(m, nullptr);
        ASSERT_EQ(rte_ring_enqueue(c2s[queue], m), 0);
    }
    // Everything the server has put on the wire so far.
    std::vector<Bytes> sent_by_server(uint16_t queue = 0) {
        std::vector<Bytes> out;
        void* m = nullptr;
        while (rte_ring_dequeue(s2c[queue], &m) == 0) {
            out.push_back(bytes_of(static_cast<rte_mbuf*>(m)));
            rte_pktmbuf_free(static_cast<rte_mbuf*>(m));
        }
        return out;
    }

    bool ok = false;
    std::string server, client;
    std::vector<rte_ring*> c2s, s2c;

private:
    static std::string name_of(int port_id) {
        char name[RTE_ETH_NAME_MAX_LEN] = {};
        if (port_id >= 0) rte_eth_dev_get_name_by_port(static_cast<uint16_t>(port_id), name);
        return name;
    }
    static void drain(rte_ring* r) {
        void* m = nullptr;
        while (r && rte_ring_dequeue(r, &m) == 0) rte_pktmbuf_free(static_cast<rte_mbuf*>(m));
    }
};

struct Datagram {
    Bytes payload;
    wire::Address from;
    LinkHop hop;  // the MAC and VLAN tag it came with
};

constexpr rte_ether_addr kZeroMac{};

bool same_mac(const Bytes& frame, size_t offset, const rte_ether_addr& mac) {
    return frame.size() >= offset + 6 && std::equal(frame.begin() + offset, frame.begin() + offset + 6, mac.addr_bytes);
}

// The frame with one 802.1Q tag inserted after the MACs.
Bytes tagged(Bytes frame, uint16_t tci) {
    const Bytes tag = {0x81, 0x00, static_cast<uint8_t>(tci >> 8), static_cast<uint8_t>(tci)};
    frame.insert(frame.begin() + 12, tag.begin(), tag.end());
    return frame;
}

// The frame without its 802.1Q tag (the checksum helpers read untagged frames).
Bytes untagged(Bytes frame) {
    if (be16_at(frame, 12) == RTE_ETHER_TYPE_VLAN) frame.erase(frame.begin() + 12, frame.begin() + 16);
    return frame;
}

class EthdevPortTest : public ::testing::Test {
protected:
    void SetUp() override {
        free_before_ = rte_mempool_avail_count(pool());
        make_cable(1);
    }
    void TearDown() override {
        cable_.reset();
        EXPECT_EQ(rte_mempool_avail_count(pool()), free_before_) << "mbuf leak";
    }
    void make_cable(uint16_t queues) {
        cable_.reset();
        cable_ = std::make_unique<RingCable>(queues);
        ASSERT_TRUE(cable_->ok);
    }

    EthdevConfig config(const std::string& device, std::vector<wire::Address> local) {
        EthdevConfig c;
        c.device = device;
        c.local = std::move(local);
        c.pool = pool();
        c.rx_desc = c.tx_desc = 256;
        c.neighbours = 1024;
        return c;
    }
    std::unique_ptr<Port> open(const EthdevConfig& c) {
        std::string error;
        std::unique_ptr<Port> p = drivers::open_ethdev_port(c, error);
        EXPECT_NE(p, nullptr) << error;
        return p;
    }
    std::unique_ptr<Port> open_server(std::optional<rte_ether_addr> gateway = std::nullopt) {
        EthdevConfig c = config(cable_->server, {kServer4, kServer6});
        c.gateway = gateway;
        return open(c);
    }

    static rte_ether_addr mac_of(const Port& p) { return static_cast<const EthdevPort&>(p).mac(); }

    static std::vector<Datagram> receive(Port& p, uint16_t queue = 0) {
        rte_mbuf* pkts[64];
        wire::Address from[64];
        LinkHop hop[64];
        const uint16_t n = p.rx_burst(queue, pkts, from, nullptr, hop, 64);
        std::vector<Datagram> out;
        for (uint16_t i = 0; i < n; ++i) {
            out.push_back({bytes_of(pkts[i]), from[i], hop[i]});
            rte_pktmbuf_free(pkts[i]);
        }
        return out;
    }
    // Sends one datagram: to the neighbour `via` names when given, else as the port knows.
    static uint16_t send(Port& p, const Bytes& payload, const wire::Address& to, uint16_t queue = 0,
                         const LinkHop* via = nullptr) {
        rte_mbuf* m = payload_mbuf(payload);
        return p.tx_burst(queue, &m, &to, nullptr, via, 1);
    }
    // What the engine does once a datagram authenticated.
    static void learn(Port& p, const Datagram& d, uint16_t queue = 0) { p.learn_neighbours(queue, &d.from, &d.hop, 1); }

    std::unique_ptr<RingCable> cable_;
    unsigned free_before_ = 0;
};

// --- datagrams both ways ---

class RoundTrip : public EthdevPortTest, public ::testing::WithParamInterface<std::tuple<bool, size_t>> {};

TEST_P(RoundTrip, PayloadCrossesByteIdenticalWithTheRightSource) {
    const auto [ipv6, size] = GetParam();
    const wire::Address server_addr = ipv6 ? kServer6 : kServer4;
    const wire::Address client_addr = ipv6 ? kClient6 : kClient4;
    // net_ring ports have the all-zero MAC, which is no station's: a datagram from it has no
    // hop to answer by (hop tests use frames from real MACs), so each side names the other
    // as its gateway.
    auto server = open_server(kZeroMac);
    ASSERT_NE(server, nullptr);
    EthdevConfig cc = config(cable_->client, {kClient4, kClient6});
    cc.gateway = mac_of(*server);
    auto client = open(cc);
    ASSERT_NE(client, nullptr);
    const rte_ether_addr client_mac = mac_of(*client);
    ASSERT_TRUE(rte_is_zero_ether_addr(&client_mac)) << "net_ring has MACs now: answer by hop here";

    const Bytes request = pattern(size, 0x31);
    ASSERT_EQ(send(*client, request, server_addr), 1);
    rte_mbuf* pkts[8];
    wire::Address from[8];
    LinkHop hop[8];
    ASSERT_EQ(server->rx_burst(0, pkts, from, nullptr, hop, 8), 1);
    EXPECT_EQ(bytes_of(pkts[0]), request);
    EXPECT_EQ(from[0], client_addr);
    EXPECT_FALSE(hop[0].known());
    ASSERT_EQ(server->tx_burst(0, pkts, from, nullptr, hop, 1), 1);  // echo the very mbuf back

    const std::vector<Datagram> back = receive(*client);
    ASSERT_EQ(back.size(), 1u);
    EXPECT_EQ(back[0].payload, request);
    EXPECT_EQ(back[0].from, server_addr);

    const PortStats s = server->total_stats();
    EXPECT_EQ(s.rx_packets, 1u);
    EXPECT_EQ(s.rx_datagrams, 1u);
    EXPECT_EQ(s.tx_datagrams, 1u);
    EXPECT_EQ(s.rx_not_ours + s.rx_malformed + s.tx_dropped, 0u);
    EXPECT_EQ(client->stats(0).tx_datagrams, 1u);
    EXPECT_EQ(client->stats(0).rx_datagrams, 1u);
}

// 1225 bytes is the protocol's largest datagram.
INSTANTIATE_TEST_SUITE_P(Families, RoundTrip,
                         ::testing::Combine(::testing::Bool(), ::testing::Values(size_t{1}, size_t{100}, size_t{1225})),
                         [](const auto& info) {
                             return std::string(std::get<0>(info.param) ? "ipv6_" : "ipv4_") +
                                    std::to_string(std::get<1>(info.param));
                         });

TEST_F(EthdevPortTest, ABurstOfDatagramsKeepsOrderAndSources) {
    auto server = open_server();
    ASSERT_NE(server, nullptr);
    for (uint8_t i = 0; i < 40; ++i) {
        const wire::Address from = v4(198, 18, 1, i, static_cast<uint16_t>(6000 + i));
        cable_->inject(udp_frame(kOtherMac, mac_of(*server), from, kServer4, pattern(20 + i, i)));
    }
    rte_mbuf* pkts[64];
    wire::Address from[64];
    LinkHop hop[64];
    ASSERT_EQ(server->rx_burst(0, pkts, from, nullptr, hop, 64), 40);
    for (uint8_t i = 0; i < 40; ++i) {
        EXPECT_EQ(bytes_of(pkts[i]), pattern(20 + i, i));
        EXPECT_EQ(from[i], v4(198, 18, 1, i, static_cast<uint16_t>(6000 + i)));
    }
    ASSERT_EQ(server->tx_burst(0, pkts, from, nullptr, hop, 40), 40);
    const std::vector<Bytes> out = cable_->sent_by_server();
    ASSERT_EQ(out.size(), 40u);
    for (uint8_t i = 0; i < 40; ++i) {
        EXPECT_TRUE(std::equal(out[i].begin(), out[i].begin() + 6, kOtherMac.addr_bytes));
        EXPECT_EQ(out[i][kEth + 19], i);  // destination IP's last byte
        EXPECT_TRUE(ipv4_header_checksum_ok(out[i]));
        EXPECT_TRUE(l4_checksum_ok(out[i]));
    }
}

// --- address resolution ---

TEST_F(EthdevPortTest, AnswersArpForItsAddressAndLearnsNothingFromIt) {
    auto server = open_server();
    ASSERT_NE(server, nullptr);
    const rte_ether_addr mac = mac_of(*server);
    cable_->inject(arp_request(kOtherMac, kClient4, kServer4));
    EXPECT_TRUE(receive(*server).empty());

    const std::vector<Bytes> out = cable_->sent_by_server();
    ASSERT_EQ(out.size(), 1u);
    const Bytes& r = out[0];
    EXPECT_TRUE(std::equal(r.begin(), r.begin() + 6, kOtherMac.addr_bytes));
    EXPECT_TRUE(std::equal(r.begin() + 6, r.begin() + 12, mac.addr_bytes));
    EXPECT_EQ(be16_at(r, 12), RTE_ETHER_TYPE_ARP);
    EXPECT_EQ(be16_at(r, 20), RTE_ARP_OP_REPLY);
    EXPECT_TRUE(std::equal(r.begin() + 22, r.begin() + 28, mac.addr_bytes));
    EXPECT_TRUE(std::equal(r.begin() + 28, r.begin() + 32, kServer4.ip.begin()));
    EXPECT_TRUE(std::equal(r.begin() + 32, r.begin() + 38, kOtherMac.addr_bytes));
    EXPECT_TRUE(std::equal(r.begin() + 38, r.begin() + 42, kClient4.ip.begin()));
    EXPECT_EQ(server->stats(0).arp_replies, 1u);

    // An ARP request proves nothing about who owns its sender address: without a gateway,
    // the asker is still unknown.
    EXPECT_EQ(send(*server, pattern(10, 1), kClient4), 0);
    EXPECT_EQ(server->stats(0).tx_dropped, 1u);
    EXPECT_TRUE(cable_->sent_by_server().empty());

    cable_->inject(arp_request(kOtherMac, kClient4, v4(198, 18, 0, 3, 0)));  // someone else's
    EXPECT_TRUE(receive(*server).empty());
    EXPECT_TRUE(cable_->sent_by_server().empty());
    EXPECT_EQ(server->stats(0).rx_not_ours, 1u);
}

TEST_F(EthdevPortTest, AnswersNeighbourSolicitationWithAValidAdvertisement) {
    auto server = open_server();
    ASSERT_NE(server, nullptr);
    const rte_ether_addr mac = mac_of(*server);
    cable_->inject(neighbour_solicit(kOtherMac, kClient6.ip.data(), kServer6));
    EXPECT_TRUE(receive(*server).empty());

    const std::vector<Bytes> out = cable_->sent_by_server();
    ASSERT_EQ(out.size(), 1u);
    const Bytes& r = out[0];
    ASSERT_EQ(r.size(), kEth + kIp6 + 32);
    EXPECT_TRUE(std::equal(r.begin(), r.begin() + 6, kOtherMac.addr_bytes));
    EXPECT_EQ(be16_at(r, 12), RTE_ETHER_TYPE_IPV6);
    EXPECT_EQ(r[kEth + 7], 255);
    EXPECT_TRUE(std::equal(r.begin() + kEth + 8, r.begin() + kEth + 24, kServer6.ip.begin()));
    EXPECT_TRUE(std::equal(r.begin() + kEth + 24, r.begin() + kEth + 40, kClient6.ip.begin()));
    const size_t nd = kEth + kIp6;
    EXPECT_EQ(r[nd], 136);
    EXPECT_EQ(r[nd + 4] & 0x40, 0x40);  // solicited
    EXPECT_TRUE(std::equal(r.begin() + nd + 8, r.begin() + nd + 24, kServer6.ip.begin()));
    EXPECT_EQ(r[nd + 24], 2);
    EXPECT_TRUE(std::equal(r.begin() + nd + 26, r.begin() + nd + 32, mac.addr_bytes));
    EXPECT_TRUE(l4_checksum_ok(r));  // recomputed independently
    EXPECT_EQ(server->stats(0).nd_adverts, 1u);

    // Nor does a solicitation: the solicitor is still unknown.
    EXPECT_EQ(send(*server, pattern(10, 2), kClient6), 0);
    EXPECT_EQ(server->stats(0).tx_dropped, 1u);
    EXPECT_TRUE(cable_->sent_by_server().empty());
}

// --- what is not ours ---

TEST_F(EthdevPortTest, CountsWhatIsNotOursAndWhatIsMalformed) {
    auto server = open_server();
    ASSERT_NE(server, nullptr);
    const rte_ether_addr mac = mac_of(*server);
    const Bytes p = pattern(30, 3);
    cable_->inject(udp_frame(kOtherMac, mac, kClient4, v4(198, 18, 0, 1, 4001), p));  // another port
    cable_->inject(udp_frame(kOtherMac, mac, kClient4, v4(198, 18, 0, 7, 4000), p));  // another IP
    cable_->inject(udp_frame(kOtherMac, mac, kClient6, v6(7, 4000), p));
    Bytes tcp = udp_frame(kOtherMac, mac, kClient4, kServer4, p);
    tcp[kEth + 9] = IPPROTO_TCP;
    fix_ipv4_header_checksum(tcp);
    cable_->inject(tcp);
    const Bytes good = udp_frame(kOtherMac, mac, kClient4, kServer4, p);
    cable_->inject(Bytes(good.begin(), good.begin() + 30));  // truncated
    Bytes bad_sum = good;
    bad_sum.back() ^= 0xff;
    cable_->inject(bad_sum);
    Bytes bad_sum6 = udp_frame(kOtherMac, mac, kClient6, kServer6, p);
    bad_sum6[kEth + kIp6 + 8] ^= 0x01;
    cable_->inject(bad_sum6);
    cable_->inject(Bytes(8, 0x42));  // not even Ethernet
    cable_->inject(good);

    const std::vector<Datagram> got = receive(*server);
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].payload, p);
    const PortStats& s = server->stats(0);
    EXPECT_EQ(s.rx_packets, 9u);
    EXPECT_EQ(s.rx_datagrams, 1u);
    EXPECT_EQ(s.rx_not_ours, 4u);
    EXPECT_EQ(s.rx_malformed, 4u);
    EXPECT_TRUE(cable_->sent_by_server().empty());
}

// --- next hop ---

TEST_F(EthdevPortTest, RepliesGoToTheLearnedMacOthersToTheGateway) {
    auto server = open_server(kGatewayMac);
    ASSERT_NE(server, nullptr);
    cable_->inject(udp_frame(kOtherMac, mac_of(*server), kClient4, kServer4, pattern(12, 4)));
    const std::vector<Datagram> got = receive(*server);
    ASSERT_EQ(got.size(), 1u);
    learn(*server, got[0]);

    const wire::Address to[2] = {kClient4, v4(198, 18, 0, 99, 5000)};
    rte_mbuf* pkts[2] = {payload_mbuf(pattern(5, 5)), payload_mbuf(pattern(6, 6))};
    ASSERT_EQ(server->tx_burst(0, pkts, to, nullptr, 2), 2);
    const std::vector<Bytes> out = cable_->sent_by_server();
    ASSERT_EQ(out.size(), 2u);
    EXPECT_TRUE(std::equal(out[0].begin(), out[0].begin() + 6, kOtherMac.addr_bytes));
    EXPECT_TRUE(std::equal(out[1].begin(), out[1].begin() + 6, kGatewayMac.addr_bytes));
    const rte_ether_addr mac = mac_of(*server);
    EXPECT_TRUE(std::equal(out[1].begin() + 6, out[1].begin() + 12, mac.addr_bytes));
    EXPECT_EQ(server->stats(0).tx_datagrams, 2u);
}

TEST_F(EthdevPortTest, NoNeighbourAndNoGatewayDropsAndCounts) {
    auto server = open_server();
    ASSERT_NE(server, nullptr);
    const wire::Address to[3] = {kClient4, kClient6, v4(198, 18, 0, 5, 1)};
    rte_mbuf* pkts[3] = {payload_mbuf(pattern(5, 5)), payload_mbuf(pattern(5, 6)), payload_mbuf(pattern(5, 7))};
    EXPECT_EQ(server->tx_burst(0, pkts, to, nullptr, 3), 0);
    EXPECT_EQ(server->stats(0).tx_dropped, 3u);
    EXPECT_EQ(server->stats(0).tx_datagrams, 0u);
    EXPECT_TRUE(cable_->sent_by_server().empty());
}

TEST_F(EthdevPortTest, DropsWhatDoesNotFitOrHasNoSourceOfItsFamily) {
    auto server = open(config(cable_->server, {kServer4}));  // IPv4 only
    ASSERT_NE(server, nullptr);
    cable_->inject(udp_frame(kOtherMac, mac_of(*server), kClient4, kServer4, pattern(4, 1)));
    const std::vector<Datagram> got = receive(*server);
    ASSERT_EQ(got.size(), 1u);
    learn(*server, got[0]);
    EXPECT_EQ(send(*server, pattern(1473, 1), kClient4), 0);  // 1473 + 28 > MTU 1500
    EXPECT_EQ(send(*server, pattern(10, 1), kClient6), 0);    // no IPv6 address to send from
    EXPECT_EQ(send(*server, pattern(1472, 1), kClient4), 1);  // exactly the MTU
    EXPECT_EQ(server->stats(0).tx_dropped, 2u);
    EXPECT_EQ(cable_->sent_by_server().size(), 1u);
}

// --- learning only what the caller vouches for ---

// Another host on the link sends frames claiming a client's addresses (a UDP datagram, an ARP
// request, a neighbour solicitation). The datagram is handed over with the MAC it really came
// from (the protocol layer decides what it is worth), the requests are answered, and none of
// it changes where the client's datagrams go.
TEST_F(EthdevPortTest, SpoofedFramesDoNotRedirectRepliesToAClient) {
    auto server = open_server();  // no gateway: only what it was taught
    ASSERT_NE(server, nullptr);
    const rte_ether_addr mac = mac_of(*server);
    for (const wire::Address& client : {kClient4, kClient6}) {
        const wire::Address& us = client.type == wire::AddressType::ipv4 ? kServer4 : kServer6;
        cable_->inject(udp_frame(kClientMac, mac, client, us, pattern(12, 1)));
        std::vector<Datagram> got = receive(*server);
        ASSERT_EQ(got.size(), 1u);
        learn(*server, got[0]);  // it authenticated

        cable_->inject(udp_frame(kOtherMac, mac, client, us, pattern(12, 2)));
        if (client.type == wire::AddressType::ipv4) cable_->inject(arp_request(kOtherMac, client, us));
        else cable_->inject(neighbour_solicit(kOtherMac, client.ip.data(), us));
        got = receive(*server);  // not authenticated: not learned
        ASSERT_EQ(got.size(), 1u);
        EXPECT_EQ(got[0].from, client);
        EXPECT_TRUE(rte_is_same_ether_addr(&got[0].hop.mac, &kOtherMac));
        std::vector<Bytes> out = cable_->sent_by_server();
        ASSERT_EQ(out.size(), 1u);  // the address resolution answer, to whoever asked
        EXPECT_TRUE(same_mac(out[0], 0, kOtherMac));

        ASSERT_EQ(send(*server, pattern(5, 3), client), 1);
        out = cable_->sent_by_server();
        ASSERT_EQ(out.size(), 1u);
        EXPECT_TRUE(same_mac(out[0], 0, kClientMac)) << client.to_string();
    }
}

// The answer to a peer nobody vouched for yet (a CHALLENGE to a REQUEST) goes to the MAC the
// caller names, which is not remembered; a zero entry in `via` means "as the port knows".
TEST_F(EthdevPortTest, NextHopOverrideIsUsedWithoutBeingLearned) {
    auto server = open_server(kGatewayMac);
    ASSERT_NE(server, nullptr);
    const LinkHop other{kOtherMac, 0};
    ASSERT_EQ(send(*server, pattern(5, 1), kClient4, 0, &other), 1);
    ASSERT_EQ(send(*server, pattern(5, 2), kClient4), 1);  // nothing learned: the gateway
    std::vector<Bytes> out = cable_->sent_by_server();
    ASSERT_EQ(out.size(), 2u);
    EXPECT_TRUE(same_mac(out[0], 0, kOtherMac));
    EXPECT_TRUE(same_mac(out[1], 0, kGatewayMac));

    const LinkHop client{kClientMac, 0};
    server->learn_neighbours(0, &kClient4, &client, 1);
    rte_mbuf* pkts[3] = {payload_mbuf(pattern(5, 3)), payload_mbuf(pattern(5, 4)), payload_mbuf(pattern(5, 5))};
    const wire::Address to[3] = {kClient4, kClient4, v4(198, 18, 0, 99, 1)};
    const LinkHop via[3] = {other, LinkHop{}, LinkHop{}};
    ASSERT_EQ(server->tx_burst(0, pkts, to, nullptr, via, 3), 3);
    ASSERT_EQ(send(*server, pattern(5, 6), kClient4), 1);  // the override taught nothing
    out = cable_->sent_by_server();
    ASSERT_EQ(out.size(), 4u);
    EXPECT_TRUE(same_mac(out[0], 0, kOtherMac));    // the override beats the table
    EXPECT_TRUE(same_mac(out[1], 0, kClientMac));   // no override: the table
    EXPECT_TRUE(same_mac(out[2], 0, kGatewayMac));  // not in the table: the gateway
    EXPECT_TRUE(same_mac(out[3], 0, kClientMac));
    EXPECT_EQ(server->stats(0).tx_datagrams, 6u);
}

// A table of 64 taught a 65th peer forgets exactly one other peer (the one taught first), not
// all of them, and keeps taking new peers after that.
TEST_F(EthdevPortTest, FullNeighbourTableEvictsOneEntryAndKeepsTheRest) {
    EthdevConfig c = config(cable_->server, {kServer4});
    c.neighbours = 64;
    auto server = open(c);
    ASSERT_NE(server, nullptr);
    const auto peer = [](unsigned i) { return v4(198, 19, static_cast<uint8_t>(i >> 8), static_cast<uint8_t>(i), 7); };
    const auto hop = [](unsigned i) {
        return LinkHop{{{0x02, 0, 0, 1, static_cast<uint8_t>(i >> 8), static_cast<uint8_t>(i)}}, 0};
    };
    const auto teach = [&](unsigned first, unsigned count) {
        std::vector<wire::Address> peers;
        std::vector<LinkHop> hops;
        for (unsigned i = first; i < first + count; ++i) {
            peers.push_back(peer(i));
            hops.push_back(hop(i));
        }
        server->learn_neighbours(0, peers.data(), hops.data(), static_cast<uint16_t>(count));
    };
    // Sends one datagram to each peer in [first, first + count); returns those that left,
    // each checked to go to its own MAC.
    const auto reachable = [&](unsigned first, unsigned count) {
        std::vector<rte_mbuf*> pkts;
        std::vector<wire::Address> to;
        for (unsigned i = first; i < first + count; ++i) {
            pkts.push_back(payload_mbuf(pattern(4, static_cast<uint8_t>(i))));
            to.push_back(peer(i));
        }
        server->tx_burst(0, pkts.data(), to.data(), nullptr, static_cast<uint16_t>(count));
        std::vector<unsigned> out;
        for (const Bytes& f : cable_->sent_by_server()) {
            const unsigned i = unsigned{f[kEth + 18]} << 8 | f[kEth + 19];  // destination IP
            EXPECT_TRUE(same_mac(f, 0, hop(i).mac)) << i;
            out.push_back(i);
        }
        return out;
    };

    teach(0, 64);
    EXPECT_EQ(reachable(0, 64).size(), 64u);
    EXPECT_EQ(server->stats(0).neighbours_evicted, 0u);

    teach(64, 1);
    const std::vector<unsigned> kept = reachable(0, 65);
    ASSERT_EQ(kept.size(), 64u);
    EXPECT_EQ(kept.front(), 1u);  // the peer taught first made room
    EXPECT_EQ(kept.back(), 64u);  // for the newcomer
    EXPECT_EQ(server->stats(0).neighbours_evicted, 1u);
    EXPECT_EQ(server->stats(0).tx_dropped, 1u);

    // A known peer seen behind another MAC is updated in place: nothing evicted.
    const wire::Address moved = peer(kept.front());
    const LinkHop elsewhere{kOtherMac, 0};
    server->learn_neighbours(0, &moved, &elsewhere, 1);
    ASSERT_EQ(send(*server, pattern(3, 3), moved), 1);
    const std::vector<Bytes> out = cable_->sent_by_server();
    ASSERT_EQ(out.size(), 1u);
    EXPECT_TRUE(same_mac(out[0], 0, kOtherMac));
    EXPECT_EQ(server->stats(0).neighbours_evicted, 1u);

    // A whole new population replaces the old one entry by entry.
    teach(1000, 64);
    EXPECT_EQ(reachable(1000, 64).size(), 64u);
    EXPECT_EQ(server->stats(0).neighbours_evicted, 65u);
}

// learn_neighbours may run on any thread: it posts to the queue's inbox, which the queue's
// next tx_burst empties. What does not fit in the inbox is counted, not learned.
TEST_F(EthdevPortTest, NeighboursTaughtFromAnotherThreadArriveAndOverflowIsCounted) {
    EthdevConfig c = config(cable_->server, {kServer4});
    c.neighbours = 8192;
    auto server = open(c);
    ASSERT_NE(server, nullptr);
    constexpr unsigned kPeers = 5100;  // taught 100 at a time
    static_assert(kPeers > EthdevPort::kLearnInbox && kPeers % 100 == 0);
    const auto peer = [](unsigned i) { return v4(198, 19, static_cast<uint8_t>(i >> 8), static_cast<uint8_t>(i), 9); };
    std::thread teacher([&] {
        for (unsigned base = 0; base < kPeers; base += 100) {
            wire::Address peers[100];
            LinkHop hops[100];
            for (unsigned i = 0; i < 100; ++i) {
                peers[i] = peer(base + i);
                hops[i] = LinkHop{kClientMac, 0};
            }
            server->learn_neighbours(0, peers, hops, 100);
        }
    });
    teacher.join();
    const unsigned posted = EthdevPort::kLearnInbox - 1;  // a ring of 2^k holds 2^k - 1
    ASSERT_EQ(send(*server, pattern(3, 1), peer(0)), 1);
    EXPECT_EQ(server->stats(0).neighbours_lost, kPeers - posted);
    EXPECT_EQ(send(*server, pattern(3, 1), peer(posted - 1)), 1);
    EXPECT_EQ(send(*server, pattern(3, 1), peer(posted)), 0);  // lost: no gateway
    for (const Bytes& f : cable_->sent_by_server()) EXPECT_TRUE(same_mac(f, 0, kClientMac));
}

// --- VLAN ---

// A datagram that came with an 802.1Q tag is answered with the same tag, by the hop it came
// with and by the learned neighbour alike; the far port reads the tagged reply. Untagged
// peers keep getting untagged frames.
TEST_F(EthdevPortTest, RepliesToATaggedDatagramCarryItsVlanTag) {
    auto server = open_server(kGatewayMac);
    ASSERT_NE(server, nullptr);
    auto client = open(config(cable_->client, {kClient4, kClient6}));
    ASSERT_NE(client, nullptr);
    const rte_ether_addr server_mac = mac_of(*server), client_mac = kClientMac;
    constexpr uint16_t kTci = 0x202a;  // priority 1, VLAN 42
    for (const wire::Address& peer : {kClient4, kClient6}) {
        const wire::Address& us = peer.type == wire::AddressType::ipv4 ? kServer4 : kServer6;
        cable_->inject(tagged(udp_frame(client_mac, server_mac, peer, us, pattern(30, 1)), kTci));
        std::vector<Datagram> got = receive(*server);
        ASSERT_EQ(got.size(), 1u);
        EXPECT_EQ(got[0].payload, pattern(30, 1));
        EXPECT_EQ(got[0].hop.vlan_tci, kTci);

        ASSERT_EQ(send(*server, pattern(40, 2), peer, 0, &got[0].hop), 1);  // as a CHALLENGE goes
        learn(*server, got[0]);
        ASSERT_EQ(send(*server, pattern(40, 3), peer), 1);  // as everything after it goes
        ASSERT_EQ(send(*server, pattern(40, 4), peer.type == wire::AddressType::ipv4 ? v4(198, 18, 0, 99, 1)
                                                                                       : v6(99, 1)),
                  1);  // someone else: through the gateway, untagged
        const std::vector<Bytes> out = cable_->sent_by_server();
        ASSERT_EQ(out.size(), 3u);
        for (size_t i = 0; i < 2; ++i) {
            EXPECT_TRUE(same_mac(out[i], 0, client_mac));
            ASSERT_EQ(be16_at(out[i], 12), RTE_ETHER_TYPE_VLAN) << peer.to_string() << " frame " << i;
            EXPECT_EQ(be16_at(out[i], 14), kTci);
            const Bytes plain = untagged(out[i]);
            if (peer.type == wire::AddressType::ipv4) {
                EXPECT_TRUE(ipv4_header_checksum_ok(plain));
            }
            EXPECT_TRUE(l4_checksum_ok(plain));
        }
        EXPECT_TRUE(same_mac(out[2], 0, kGatewayMac));
        EXPECT_NE(be16_at(out[2], 12), RTE_ETHER_TYPE_VLAN);

        // The far end: an EthdevPort reads the tagged reply and says which tag it carried.
        ASSERT_EQ(send(*server, pattern(50, 5), peer), 1);
        const std::vector<Bytes> wire_frames = cable_->sent_by_server();
        ASSERT_EQ(wire_frames.size(), 1u);
        // Put it on the server-to-client ring for the client port, addressed to its MAC.
        Bytes frame = wire_frames[0];
        const rte_ether_addr port_mac = mac_of(*client);
        std::copy(port_mac.addr_bytes, port_mac.addr_bytes + 6, frame.begin());
        rte_mbuf* m = frame_mbuf(frame);
        ASSERT_NE(m, nullptr);
        ASSERT_EQ(rte_ring_enqueue(cable_->s2c[0], m), 0);
        const std::vector<Datagram> back = receive(*client);
        ASSERT_EQ(back.size(), 1u);
        EXPECT_EQ(back[0].payload, pattern(50, 5));
        EXPECT_EQ(back[0].from, us);
        EXPECT_EQ(back[0].hop.vlan_tci, kTci);
    }
    // Address resolution answered in place keeps the tag of the request.
    cable_->inject(tagged(arp_request(client_mac, kClient4, kServer4), kTci));
    EXPECT_TRUE(receive(*server).empty());
    const std::vector<Bytes> arp = cable_->sent_by_server();
    ASSERT_EQ(arp.size(), 1u);
    EXPECT_EQ(be16_at(arp[0], 12), RTE_ETHER_TYPE_VLAN);
    EXPECT_EQ(be16_at(arp[0], 14), kTci);
    EXPECT_EQ(be16_at(arp[0], 16), RTE_ETHER_TYPE_ARP);
}

// --- configuration ---

TEST_F(EthdevPortTest, RefusesMoreQueuesThanTheDeviceHasInOneLine) {
    EthdevConfig c = config(cable_->server, {kServer4});
    c.queues = 2;
    std::string error;
    EXPECT_EQ(drivers::open_ethdev_port(c, error), nullptr);
    EXPECT_NE(error.find("at most 1 queue"), std::string::npos) << error;
    EXPECT_NE(error.find(cable_->server), std::string::npos) << error;
    EXPECT_EQ(error.find('\n'), std::string::npos);
    // The device is still usable with what it has.
    c.queues = 1;
    EXPECT_NE(open(c), nullptr);
}

// A port with no queue would leave callers dividing by zero: refused in one line.
TEST_F(EthdevPortTest, RefusesZeroQueuesInOneLine) {
    EthdevConfig c = config(cable_->server, {kServer4});
    c.queues = 0;
    std::string error;
    EXPECT_EQ(drivers::open_ethdev_port(c, error), nullptr);
    EXPECT_NE(error.find("0 queues requested, at least 1 needed"), std::string::npos) << error;
    EXPECT_NE(error.find(cable_->server), std::string::npos) << error;
    EXPECT_EQ(error.find('\n'), std::string::npos);
}

TEST_F(EthdevPortTest, RefusesUnknownDevicesAndMissingAddresses) {
    std::string error;
    EXPECT_EQ(drivers::open_ethdev_port(config("net_nonexistent0", {kServer4}), error), nullptr);
    EXPECT_NE(error.find("unknown device"), std::string::npos) << error;
    error.clear();
    EXPECT_EQ(drivers::open_ethdev_port(config("999", {kServer4}), error), nullptr);
    EXPECT_NE(error.find("unknown device"), std::string::npos) << error;
    error.clear();
    EXPECT_EQ(drivers::open_ethdev_port(config(cable_->server, {}), error), nullptr);
    EXPECT_NE(error.find("no local address"), std::string::npos) << error;
    error.clear();
    EthdevConfig no_pool = config(cable_->server, {kServer4});
    no_pool.pool = nullptr;
    EXPECT_EQ(drivers::open_ethdev_port(no_pool, error), nullptr);
    EXPECT_NE(error.find("no mbuf pool"), std::string::npos) << error;
}

TEST_F(EthdevPortTest, OpensByNumericPortId) {
    uint16_t id = 0;
    ASSERT_EQ(rte_eth_dev_get_port_by_name(cable_->server.c_str(), &id), 0);
    auto server = open(config(std::to_string(id), {kServer4}));
    ASSERT_NE(server, nullptr);
    EXPECT_EQ(server->name(), cable_->server);
    EXPECT_EQ(server->queue_count(), 1);
    EXPECT_EQ(server->local_addresses(), std::vector<wire::Address>{kServer4});
}

TEST_F(EthdevPortTest, EachQueueHasItsOwnTrafficAndCounters) {
    make_cable(2);
    EthdevConfig c = config(cable_->server, {kServer4});
    c.queues = 2;
    auto server = open(c);
    ASSERT_NE(server, nullptr);
    EXPECT_FALSE(static_cast<EthdevPort&>(*server).rss());  // net_ring has no RSS: split by ring
    cable_->inject(udp_frame(kOtherMac, mac_of(*server), kClient4, kServer4, pattern(9, 1)), 1);
    cable_->inject(arp_request(kOtherMac, kClient4, kServer4), 1);
    rte_mbuf* pkts[4];
    wire::Address from[4];
    LinkHop hop[4];
    EXPECT_EQ(server->rx_burst(0, pkts, from, nullptr, hop, 4), 0);
    ASSERT_EQ(server->rx_burst(1, pkts, from, nullptr, hop, 4), 1);
    server->learn_neighbours(1, from, hop, 1);
    ASSERT_EQ(server->tx_burst(1, pkts, from, nullptr, 1), 1);
    EXPECT_TRUE(cable_->sent_by_server(0).empty());
    EXPECT_EQ(cable_->sent_by_server(1).size(), 2u);  // the ARP reply and the echo
    EXPECT_EQ(server->stats(1).rx_datagrams, 1u);
    EXPECT_EQ(server->stats(1).arp_replies, 1u);
    EXPECT_EQ(server->stats(1).tx_datagrams, 1u);
    EXPECT_EQ(server->stats(0).rx_packets, 0u);
    // Queue 0 was taught nothing: without a gateway it cannot reach the client.
    EXPECT_EQ(send(*server, pattern(3, 1), kClient4, 0), 0);
    EXPECT_EQ(server->stats(0).tx_dropped, 1u);
    EXPECT_EQ(server->total_stats().rx_datagrams, 1u);
}

// --- many local endpoints (a load generator's port) ---

// 2000 endpoints: IPv4 198.18.2.1-8 and IPv6 2001:db8::11-12, ports 50000 + i. Datagrams
// reach the caller tagged with the endpoint they were addressed to, go out from the endpoint
// the caller names, and ARP / ND are answered for every one of the IPs.
class ManyEndpoints : public EthdevPortTest {
protected:
    static constexpr uint16_t kEndpoints = 2000;
    static wire::Address endpoint(uint16_t i) {
        const auto port = static_cast<uint16_t>(50000 + i);
        return i % 10 == 9 ? v6(static_cast<uint8_t>(0x11 + i / 10 % 2), port)
                           : v4(198, 18, 2, static_cast<uint8_t>(1 + i % 8), port);
    }
    void SetUp() override {
        EthdevPortTest::SetUp();
        std::vector<wire::Address> local;
        for (uint16_t i = 0; i < kEndpoints; ++i) local.push_back(endpoint(i));
        EthdevConfig c = config(cable_->server, local);
        c.gateway = kGatewayMac;
        port_ = open(c);
        ASSERT_NE(port_, nullptr);
        ASSERT_EQ(port_->local_addresses().size(), kEndpoints);
    }
    void TearDown() override {
        port_.reset();
        EthdevPortTest::TearDown();
    }
    // An order that visits every endpoint once, far from sequential.
    static uint16_t scrambled(uint16_t k) { return static_cast<uint16_t>((k * 7919u) % kEndpoints); }

    std::unique_ptr<Port> port_;
};

TEST_F(ManyEndpoints, ReceiveTellsWhichEndpointEachDatagramWasFor) {
    const rte_ether_addr mac = mac_of(*port_);
    std::vector<uint16_t> want;  // endpoint index per injected datagram, in order
    size_t seen = 0;
    rte_mbuf* pkts[64];
    wire::Address from[64];
    uint16_t local[64];
    for (uint16_t k = 0; k < kEndpoints; ++k) {
        const uint16_t i = scrambled(k);
        const wire::Address peer = endpoint(i).type == wire::AddressType::ipv4 ? kClient4 : kClient6;
        Bytes payload = pattern(12, static_cast<uint8_t>(k));
        put_be16(payload, 0, i);
        cable_->inject(udp_frame(kOtherMac, mac, peer, endpoint(i), payload));
        want.push_back(i);
        if (want.size() - seen < 500 && k + 1 < kEndpoints) continue;  // the ring holds 1024
        while (seen < want.size()) {
            const uint16_t n = port_->rx_burst(0, pkts, from, local, 64);
            ASSERT_GT(n, 0);
            for (uint16_t j = 0; j < n; ++j, ++seen) {
                const Bytes got = bytes_of(pkts[j]);
                ASSERT_EQ(local[j], want[seen]);
                EXPECT_EQ(be16_at(got, 0), want[seen]);
                EXPECT_EQ(from[j], endpoint(want[seen]).type == wire::AddressType::ipv4 ? kClient4 : kClient6);
            }
            rte_pktmbuf_free_bulk(pkts, n);
        }
    }
    EXPECT_EQ(seen, kEndpoints);

    // Next to ours but not ours: another port on one of our IPs, our port on another IP.
    cable_->inject(udp_frame(kOtherMac, mac, kClient4, v4(198, 18, 2, 1, 49999), pattern(4, 1)));
    cable_->inject(udp_frame(kOtherMac, mac, kClient4, v4(198, 18, 2, 1, 50000 + kEndpoints), pattern(4, 1)));
    cable_->inject(udp_frame(kOtherMac, mac, kClient4, v4(198, 18, 2, 9, 50000), pattern(4, 1)));
    cable_->inject(udp_frame(kOtherMac, mac, kClient6, v6(0x13, 50009), pattern(4, 1)));
    EXPECT_EQ(port_->rx_burst(0, pkts, from, local, 64), 0);
    const PortStats& s = port_->stats(0);
    EXPECT_EQ(s.rx_datagrams, kEndpoints);
    EXPECT_EQ(s.rx_not_ours, 4u);
    EXPECT_EQ(s.rx_malformed, 0u);
}

TEST_F(ManyEndpoints, SendLeavesFromTheNamedEndpoint) {
    for (uint16_t base = 0; base < kEndpoints; base = static_cast<uint16_t>(base + 250)) {
        rte_mbuf* pkts[250];
        wire::Address to[250];
        uint16_t local[250];
        for (uint16_t j = 0; j < 250; ++j) {
            const uint16_t i = scrambled(static_cast<uint16_t>(base + j));
            pkts[j] = payload_mbuf(pattern(20, static_cast<uint8_t>(j)));
            to[j] = endpoint(i).type == wire::AddressType::ipv4 ? kClient4 : kClient6;
            local[j] = i;
        }
        ASSERT_EQ(port_->tx_burst(0, pkts, to, local, 250), 250);
        const std::vector<Bytes> out = cable_->sent_by_server();
        ASSERT_EQ(out.size(), 250u);
        for (uint16_t j = 0; j < 250; ++j) {
            const wire::Address src = endpoint(scrambled(static_cast<uint16_t>(base + j)));
            const Bytes& f = out[j];
            EXPECT_TRUE(std::equal(f.begin(), f.begin() + 6, kGatewayMac.addr_bytes));
            EXPECT_TRUE(l4_checksum_ok(f));
            if (src.type == wire::AddressType::ipv4) {
                ASSERT_EQ(be16_at(f, 12), RTE_ETHER_TYPE_IPV4);
                EXPECT_TRUE(std::equal(f.begin() + kEth + 12, f.begin() + kEth + 16, src.ip.begin()));
                EXPECT_EQ(be16_at(f, kEth + kIp4), src.port);
                EXPECT_TRUE(ipv4_header_checksum_ok(f));
            } else {
                ASSERT_EQ(be16_at(f, 12), RTE_ETHER_TYPE_IPV6);
                EXPECT_TRUE(std::equal(f.begin() + kEth + 8, f.begin() + kEth + 24, src.ip.begin()));
                EXPECT_EQ(be16_at(f, kEth + kIp6), src.port);
            }
        }
    }
    EXPECT_EQ(port_->stats(0).tx_datagrams, kEndpoints);

    // An endpoint of the other family, an index past the end: dropped, counted, freed.
    rte_mbuf* bad[3] = {payload_mbuf(pattern(5, 1)), payload_mbuf(pattern(5, 2)), payload_mbuf(pattern(5, 3))};
    const wire::Address bad_to[3] = {kClient6, kClient4, kClient4};
    const uint16_t bad_local[3] = {0, 9, kEndpoints};  // 0 is IPv4, 9 IPv6
    EXPECT_EQ(port_->tx_burst(0, bad, bad_to, bad_local, 3), 0);
    EXPECT_EQ(port_->stats(0).tx_dropped, 3u);
    EXPECT_TRUE(cable_->sent_by_server().empty());

    // Without local_index: the first endpoint of the destination's family.
    ASSERT_EQ(send(*port_, pattern(5, 4), kClient6), 1);
    const std::vector<Bytes> out = cable_->sent_by_server();
    ASSERT_EQ(out.size(), 1u);
    EXPECT_TRUE(std::equal(out[0].begin() + kEth + 8, out[0].begin() + kEth + 24, endpoint(9).ip.begin()));
    EXPECT_EQ(be16_at(out[0], kEth + kIp6), endpoint(9).port);
}

TEST_F(ManyEndpoints, AnswersAddressResolutionForEachOfItsIps) {
    for (uint8_t d = 1; d <= 8; ++d) cable_->inject(arp_request(kOtherMac, kClient4, v4(198, 18, 2, d, 0)));
    cable_->inject(arp_request(kOtherMac, kClient4, v4(198, 18, 2, 9, 0)));  // not ours
    for (uint8_t h : {0x11, 0x12}) cable_->inject(neighbour_solicit(kOtherMac, kClient6.ip.data(), v6(h, 0)));
    cable_->inject(neighbour_solicit(kOtherMac, kClient6.ip.data(), v6(0x13, 0)));  // not ours
    rte_mbuf* pkts[16];
    wire::Address from[16];
    EXPECT_EQ(port_->rx_burst(0, pkts, from, nullptr, 16), 0);
    const std::vector<Bytes> out = cable_->sent_by_server();
    ASSERT_EQ(out.size(), 10u);
    for (uint8_t d = 1; d <= 8; ++d) {
        EXPECT_EQ(be16_at(out[d - 1], kEth + 6), RTE_ARP_OP_REPLY);
        EXPECT_EQ(out[d - 1][kEth + 17], d);  // sender IP: the one asked for
    }
    EXPECT_EQ(out[8][kEth + kIp6], 136);
    EXPECT_EQ(out[9][kEth + kIp6], 136);
    EXPECT_EQ(out[9][kEth + kIp6 + 23], 0x12);  // target
    EXPECT_EQ(port_->stats(0).arp_replies, 8u);
    EXPECT_EQ(port_->stats(0).nd_adverts, 2u);
    EXPECT_EQ(port_->stats(0).rx_not_ours, 2u);
}

TEST_F(EthdevPortTest, ReceiveAndSendWithLocalIndexOnAFewEndpoints) {
    auto server = open_server();  // kServer4, kServer6: the scan
    ASSERT_NE(server, nullptr);
    cable_->inject(udp_frame(kOtherMac, mac_of(*server), kClient6, kServer6, pattern(7, 1)));
    cable_->inject(udp_frame(kOtherMac, mac_of(*server), kClient4, kServer4, pattern(7, 2)));
    rte_mbuf* pkts[4];
    wire::Address from[4];
    uint16_t local[4];
    LinkHop hop[4];
    ASSERT_EQ(server->rx_burst(0, pkts, from, local, hop, 4), 2);
    EXPECT_EQ(local[0], 1);
    EXPECT_EQ(local[1], 0);
    ASSERT_EQ(server->tx_burst(0, pkts, from, local, hop, 2), 2);  // replies from where they came to
    const std::vector<Bytes> out = cable_->sent_by_server();
    ASSERT_EQ(out.size(), 2u);
    EXPECT_TRUE(std::equal(out[0].begin() + kEth + 8, out[0].begin() + kEth + 24, kServer6.ip.begin()));
    EXPECT_TRUE(std::equal(out[1].begin() + kEth + 12, out[1].begin() + kEth + 16, kServer4.ip.begin()));
}

TEST_F(EthdevPortTest, RefusesMoreEndpointsThanAnIndexCanName) {
    std::vector<wire::Address> local(65535, kServer4);
    std::string error;
    EXPECT_EQ(drivers::open_ethdev_port(config(cable_->server, local), error), nullptr);
    EXPECT_NE(error.find("at most 65534"), std::string::npos) << error;
}

// --- address resolution (the client side; EthdevConfig::resolve) ---
// The port is on the cable's server end; the test plays the station it resolves, answering
// with the same l2l3 code the port answers others with.

class Resolving : public EthdevPortTest {
protected:
    std::unique_ptr<Port> open_resolving(const std::function<void(drivers::ResolveConfig&)>& edit = {}) {
        drivers::ResolveConfig r;
        r.enabled = true;
        if (edit) edit(r);
        EthdevConfig c = config(cable_->server, {kServer4, kServer6});
        c.resolve = r;
        return open(c);
    }
    // The answer a station at `ip` with `mac` gives to `request` (an ARP request or neighbour
    // solicitation), or nothing when the request is not for it.
    static Bytes answer(const Bytes& request, const rte_ether_addr& mac, const wire::Address& ip) {
        const drivers::l2l3::LocalView station{mac, std::span<const wire::Address>(&ip, 1)};
        rte_mbuf* m = frame_mbuf(request);
        const drivers::l2l3::RxFrame f = drivers::l2l3::parse_frame(m, station);
        Bytes out;
        if (f.kind == drivers::l2l3::FrameKind::arp_request) {
            drivers::l2l3::make_arp_reply(m, f, mac);
            out = bytes_of(m);
        } else if (f.kind == drivers::l2l3::FrameKind::neighbour_solicit &&
                   drivers::l2l3::make_neighbour_advert(m, f, mac)) {
            out = bytes_of(m);
        }
        rte_pktmbuf_free(m);
        return out;
    }
    static uint16_t send_many(Port& p, size_t n, const wire::Address& to) {
        std::vector<rte_mbuf*> pkts;
        std::vector<wire::Address> dst(n, to);
        for (size_t i = 0; i < n; ++i) pkts.push_back(payload_mbuf(pattern(20, static_cast<uint8_t>(i))));
        return p.tx_burst(0, pkts.data(), dst.data(), nullptr, static_cast<uint16_t>(n));
    }
    static bool is_arp_request_for(const Bytes& f, const wire::Address& ip) {
        return f.size() >= 42 && be16_at(f, 12) == RTE_ETHER_TYPE_ARP && be16_at(f, 20) == RTE_ARP_OP_REQUEST &&
               std::equal(f.begin() + 38, f.begin() + 42, ip.ip.begin());
    }
    static std::optional<LinkHop> neighbour(const Port& p, const wire::Address& ip) {
        return static_cast<const EthdevPort&>(p).neighbour(0, ip);
    }
};

TEST_F(Resolving, AsksOnceHoldsAFewAndSendsThemWhenAnswered) {
    auto port = open_resolving([](auto& r) { r.hold = 4; });
    ASSERT_NE(port, nullptr);
    EXPECT_EQ(send_many(*port, 6, kClient4), 0);  // nothing known: none goes to the device yet
    std::vector<Bytes> out = cable_->sent_by_server();
    ASSERT_EQ(out.size(), 1u);
    EXPECT_TRUE(is_arp_request_for(out[0], kClient4));
    EXPECT_TRUE(std::equal(out[0].begin() + 28, out[0].begin() + 32, kServer4.ip.begin()));  // from our IP
    PortStats s = port->stats(0);
    EXPECT_EQ(s.arp_requests, 1u);
    EXPECT_EQ(s.tx_unresolved, 2u);  // past the 4 held
    EXPECT_EQ(s.tx_dropped, 2u);

    cable_->inject(answer(out[0], kClientMac, kClient4));
    EXPECT_TRUE(receive(*port).empty());
    out = cable_->sent_by_server();
    ASSERT_EQ(out.size(), 4u);
    for (size_t i = 0; i < out.size(); ++i) {
        EXPECT_TRUE(same_mac(out[i], 0, kClientMac));
        EXPECT_TRUE(l4_checksum_ok(out[i]));
        const Bytes payload(out[i].begin() + kEth + kIp4 + kUdp, out[i].end());
        EXPECT_EQ(payload, pattern(20, static_cast<uint8_t>(i)));  // in the order sent
    }
    s = port->stats(0);
    EXPECT_EQ(s.neighbours_resolved, 1u);
    EXPECT_EQ(s.tx_datagrams, 4u);
    const std::optional<LinkHop> hop = neighbour(*port, kClient4);
    ASSERT_TRUE(hop);
    EXPECT_TRUE(rte_is_same_ether_addr(&hop->mac, &kClientMac));

    // Known now: straight out, no request.
    EXPECT_EQ(send(*port, pattern(5, 9), kClient4), 1);
    out = cable_->sent_by_server();
    ASSERT_EQ(out.size(), 1u);
    EXPECT_TRUE(same_mac(out[0], 0, kClientMac));
    EXPECT_EQ(port->stats(0).arp_requests, 1u);
}

TEST_F(Resolving, AnswersNobodyAskedForTeachNothing) {
    auto port = open_resolving();
    ASSERT_NE(port, nullptr);
    // A reply to a request the port never sent (built here as if it had).
    rte_mbuf* m = rte_pktmbuf_alloc(pool());
    ASSERT_TRUE(drivers::l2l3::make_arp_request(m, rte_ether_addr{}, kServer4, kClient4));
    const Bytes forged = answer(bytes_of(m), kOtherMac, kClient4);
    rte_pktmbuf_free(m);
    ASSERT_FALSE(forged.empty());
    cable_->inject(forged);
    EXPECT_TRUE(receive(*port).empty());
    EXPECT_EQ(port->stats(0).neighbours_unsolicited, 1u);
    EXPECT_EQ(port->stats(0).neighbours_resolved, 0u);
    EXPECT_FALSE(neighbour(*port, kClient4));

    // Asked for now, the true answer wins; the forged one, replayed, is unsolicited again.
    EXPECT_EQ(send(*port, pattern(5, 1), kClient4), 0);
    std::vector<Bytes> out = cable_->sent_by_server();
    ASSERT_EQ(out.size(), 1u);
    cable_->inject(answer(out[0], kClientMac, kClient4));
    cable_->inject(forged);
    EXPECT_TRUE(receive(*port).empty());
    EXPECT_EQ(port->stats(0).neighbours_unsolicited, 2u);
    const std::optional<LinkHop> hop = neighbour(*port, kClient4);
    ASSERT_TRUE(hop);
    EXPECT_TRUE(rte_is_same_ether_addr(&hop->mac, &kClientMac));
    out = cable_->sent_by_server();
    ASSERT_EQ(out.size(), 1u);
    EXPECT_TRUE(same_mac(out[0], 0, kClientMac));

    // A port that does not resolve (a server) counts them the same way and learns nothing.
    auto server_cable = std::make_unique<RingCable>(1);
    EthdevConfig sc = config(server_cable->server, {kServer4});
    auto server = open(sc);
    ASSERT_NE(server, nullptr);
    server_cable->inject(forged);
    EXPECT_TRUE(receive(*server).empty());
    EXPECT_EQ(server->stats(0).neighbours_unsolicited, 1u);
    EXPECT_FALSE(neighbour(*server, kClient4));
    server.reset();
}

TEST_F(Resolving, Ipv6GoesByNeighbourSolicitation) {
    auto port = open_resolving();
    ASSERT_NE(port, nullptr);
    EXPECT_EQ(send_many(*port, 2, kClient6), 0);
    std::vector<Bytes> out = cable_->sent_by_server();
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0][kEth + kIp6], 135);
    EXPECT_TRUE(l4_checksum_ok(out[0]));
    EXPECT_EQ(port->stats(0).nd_solicits, 1u);
    const Bytes advert = answer(out[0], kClientMac, kClient6);
    ASSERT_FALSE(advert.empty());
    cable_->inject(advert);
    EXPECT_TRUE(receive(*port).empty());
    out = cable_->sent_by_server();
    ASSERT_EQ(out.size(), 2u);
    for (const Bytes& f : out) {
        EXPECT_TRUE(same_mac(f, 0, kClientMac));
        EXPECT_EQ(be16_at(f, 12), RTE_ETHER_TYPE_IPV6);
        EXPECT_TRUE(l4_checksum_ok(f));
    }
    EXPECT_EQ(port->stats(0).neighbours_resolved, 1u);
}

TEST_F(Resolving, AGatewayIpIsResolvedOnceForEveryDestinationOfItsFamily) {
    const wire::Address router = v4(198, 18, 0, 254, 0);
    auto port = open_resolving([&](auto& r) { r.gateway = router; });
    ASSERT_NE(port, nullptr);
    const wire::Address far1 = v4(198, 19, 1, 1, 7000), far2 = v4(198, 19, 2, 2, 7000);
    EXPECT_EQ(send(*port, pattern(5, 1), far1), 0);
    EXPECT_EQ(send(*port, pattern(5, 2), far2), 0);
    std::vector<Bytes> out = cable_->sent_by_server();
    ASSERT_EQ(out.size(), 1u);  // one request, for the router
    EXPECT_TRUE(is_arp_request_for(out[0], router));
    cable_->inject(answer(out[0], kGatewayMac, router));
    EXPECT_TRUE(receive(*port).empty());
    out = cable_->sent_by_server();
    ASSERT_EQ(out.size(), 2u);
    EXPECT_TRUE(same_mac(out[0], 0, kGatewayMac));
    EXPECT_TRUE(same_mac(out[1], 0, kGatewayMac));
    EXPECT_TRUE(std::equal(out[0].begin() + kEth + 16, out[0].begin() + kEth + 20, far1.ip.begin()));
    EXPECT_TRUE(std::equal(out[1].begin() + kEth + 16, out[1].begin() + kEth + 20, far2.ip.begin()));
    EXPECT_EQ(send(*port, pattern(5, 3), v4(198, 19, 3, 3, 7000)), 1);  // through the known router
    out = cable_->sent_by_server();
    ASSERT_EQ(out.size(), 1u);
    EXPECT_TRUE(same_mac(out[0], 0, kGatewayMac));
    EXPECT_EQ(port->stats(0).arp_requests, 1u);
    // IPv6 has no gateway here: its destinations are resolved themselves.
    EXPECT_EQ(send(*port, pattern(5, 4), kClient6), 0);
    out = cable_->sent_by_server();
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0][kEth + kIp6], 135);
}

TEST_F(Resolving, GivesUpAfterTheTriesAndDropsWhatItHeld) {
    auto port = open_resolving([](auto& r) { r.retry_ms = 20, r.tries = 3; });
    ASSERT_NE(port, nullptr);
    EXPECT_EQ(send_many(*port, 3, kClient4), 0);
    const auto start = std::chrono::steady_clock::now();
    while (port->stats(0).neighbours_failed == 0 && std::chrono::steady_clock::now() - start < std::chrono::seconds(5)) {
        EXPECT_TRUE(receive(*port).empty());  // the retries run from the receive loop
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    const auto took = std::chrono::steady_clock::now() - start;
    const PortStats s = port->stats(0);
    EXPECT_EQ(s.neighbours_failed, 1u);
    EXPECT_GE(took, std::chrono::milliseconds(55));  // three tries, 20 ms apart, then the last wait
    std::vector<Bytes> out = cable_->sent_by_server();
    ASSERT_EQ(out.size(), 3u);
    for (const Bytes& f : out) EXPECT_TRUE(is_arp_request_for(f, kClient4));
    EXPECT_EQ(s.arp_requests, 3u);
    EXPECT_EQ(s.tx_unresolved, 3u);
    EXPECT_EQ(s.tx_dropped, 3u);
    EXPECT_EQ(s.tx_datagrams, 0u);
    // Too late: the answer is no longer asked for.
    cable_->inject(answer(out[0], kClientMac, kClient4));
    EXPECT_TRUE(receive(*port).empty());
    EXPECT_EQ(port->stats(0).neighbours_unsolicited, 1u);
    EXPECT_FALSE(neighbour(*port, kClient4));
    // A new datagram starts again; closing the port with it held leaks nothing (TearDown).
    EXPECT_EQ(send(*port, pattern(5, 5), kClient4), 0);
    EXPECT_EQ(port->stats(0).arp_requests, 4u);
}

TEST_F(Resolving, TooManyDestinationsAtOnceAreDroppedAndCounted) {
    auto port = open_resolving([](auto& r) { r.hold = 1, r.destinations = 2; });
    ASSERT_NE(port, nullptr);
    EXPECT_EQ(send(*port, pattern(5, 1), v4(198, 18, 0, 11, 1)), 0);
    EXPECT_EQ(send(*port, pattern(5, 2), v4(198, 18, 0, 12, 1)), 0);
    EXPECT_EQ(send(*port, pattern(5, 3), v4(198, 18, 0, 13, 1)), 0);  // no slot left
    EXPECT_EQ(cable_->sent_by_server().size(), 2u);
    EXPECT_EQ(port->stats(0).arp_requests, 2u);
    EXPECT_EQ(port->stats(0).tx_unresolved, 1u);
}

TEST_F(Resolving, BadConfigurationIsRefusedInOneLine) {
    struct Case {
        std::function<void(EthdevConfig&)> edit;
        const char* says;
    };
    const Case cases[] = {
        {[](EthdevConfig& c) { c.gateway = kGatewayMac; }, "exclude each other"},
        {[](EthdevConfig& c) { c.queues = 2; }, "needs 1 queue"},
        {[](EthdevConfig& c) { c.resolve.gateway = v6(0xfe, 0); }, "no local address of its family"},
        {[](EthdevConfig& c) { c.resolve.gateway = v4(0, 0, 0, 0, 0); }, "not a station's address"},
        {[](EthdevConfig& c) { c.resolve.enabled = false, c.resolve.gateway = v4(198, 18, 0, 254, 0); },
         "needs address resolution enabled"},
        {[](EthdevConfig& c) { c.resolve.retry_ms = 5; }, "retry interval 5 ms"},
        {[](EthdevConfig& c) { c.resolve.tries = 0; }, "tries 0"},
        {[](EthdevConfig& c) { c.resolve.hold = 65; }, "hold 65"},
        {[](EthdevConfig& c) { c.resolve.destinations = 0; }, "destinations 0"},
    };
    for (const Case& k : cases) {
        EthdevConfig c = config(cable_->server, {kServer4});
        c.resolve.enabled = true;
        k.edit(c);
        std::string error;
        EXPECT_EQ(drivers::open_ethdev_port(c, error), nullptr) << k.says;
        EXPECT_NE(error.find(k.says), std::string::npos) << error;
        EXPECT_NE(error.find(cable_->server), std::string::npos) << error;
        EXPECT_EQ(error.find('\n'), std::string::npos);
    }
    EthdevConfig fine = config(cable_->server, {kServer4});
    fine.resolve.enabled = true;
    EXPECT_NE(open(fine), nullptr);
}

}  // namespace
}  // namespace pomelo::test
