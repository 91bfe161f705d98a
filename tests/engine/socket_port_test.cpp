// The kernel-socket driver over loopback: round trips, addresses, indexed send and receive,
// truncation and errors.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "drivers/eal.hpp"
#include "drivers/socket_port.hpp"
#include "tests/engine/test_support.hpp"

namespace pomelo::test {
namespace {

using drivers::SocketConfig;
using drivers::SocketPort;

std::unique_ptr<SocketPort> open_port(rte_mempool* pool, std::vector<wire::Address> local) {
    SocketConfig c;
    c.local = std::move(local);
    c.pool = pool;
    c.rcvbuf = c.sndbuf = 1 << 20;
    std::string error;
    auto port = drivers::open_socket_port(c, error);
    EXPECT_NE(port, nullptr) << error;
    return port;
}

rte_mbuf* datagram(rte_mempool* pool, std::span<const uint8_t> bytes) {
    rte_mbuf* m = rte_pktmbuf_alloc(pool);
    if (!m) return nullptr;
    std::memcpy(rte_pktmbuf_append(m, static_cast<uint16_t>(bytes.size())), bytes.data(), bytes.size());
    return m;
}

std::vector<uint8_t> pattern(size_t size, unsigned seed) {
    std::vector<uint8_t> v(size);
    for (size_t i = 0; i < size; ++i) v[i] = static_cast<uint8_t>(seed * 31 + i * 7);
    return v;
}

struct Received {
    std::vector<std::vector<uint8_t>> bytes;
    std::vector<wire::Address> from;
    std::vector<uint16_t> local;
};

// Polls until `want` datagrams arrived or 2 s passed.
Received receive(SocketPort& port, size_t want) {
    Received r;
    rte_mbuf* pkts[32];
    wire::Address from[32];
    uint16_t local[32];
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
    while (r.bytes.size() < want && std::chrono::steady_clock::now() < deadline) {
        const uint16_t n = port.rx_burst(0, pkts, from, local, 32);
        for (uint16_t i = 0; i < n; ++i) {
            const uint8_t* p = rte_pktmbuf_mtod(pkts[i], const uint8_t*);
            EXPECT_EQ(pkts[i]->pkt_len, pkts[i]->data_len);
            r.bytes.emplace_back(p, p + pkts[i]->data_len);
            r.from.push_back(from[i]);
            r.local.push_back(local[i]);
        }
        if (n) rte_pktmbuf_free_bulk(pkts, n);
        else std::this_thread::sleep_for(std::chrono::microseconds(100));
    }
    return r;
}

class SocketPortFamily : public testing::TestWithParam<const char*> {};

TEST_P(SocketPortFamily, RoundTripBetweenTwoPorts) {
    MbufPool pool(4096);
    const std::string any = std::string(GetParam()) + "0";
    auto a = open_port(pool, {addr(any.c_str())});
    auto b = open_port(pool, {addr(any.c_str())});
    ASSERT_TRUE(a && b);
    EXPECT_EQ(a->name(), "socket");
    EXPECT_EQ(a->queue_count(), 1);

    constexpr unsigned kCount = 200;
    std::vector<std::vector<uint8_t>> sent;
    for (unsigned i = 0; i < kCount; ++i) sent.push_back(pattern(1 + (i * 37) % 1225, i));
    for (unsigned base = 0; base < kCount; base += 50) {
        rte_mbuf* pkts[50];
        wire::Address to[50];
        for (unsigned j = 0; j < 50; ++j) {
            pkts[j] = datagram(pool, sent[base + j]);
            ASSERT_NE(pkts[j], nullptr);
            to[j] = b->local_addresses()[0];
        }
        EXPECT_EQ(a->tx_burst(0, pkts, to, nullptr, 50), 50);
    }
    const Received r = receive(*b, kCount);
    ASSERT_EQ(r.bytes.size(), kCount);
    for (unsigned i = 0; i < kCount; ++i) {
        EXPECT_EQ(r.bytes[i], sent[i]) << i;  // loopback keeps the order
        EXPECT_EQ(r.from[i], a->local_addresses()[0]);
        EXPECT_EQ(r.local[i], 0);
    }
    EXPECT_EQ(a->stats(0).tx_datagrams, kCount);
    EXPECT_EQ(a->stats(0).tx_dropped, 0u);
    EXPECT_EQ(b->stats(0).rx_datagrams, kCount);
    EXPECT_EQ(b->stats(0).rx_packets, kCount);
    EXPECT_EQ(b->total_stats().rx_truncated, 0u);

    // And back, through the plain Port interface.
    drivers::Port& pb = *b;
    rte_mbuf* m = datagram(pool, sent[3]);
    const wire::Address to = a->local_addresses()[0];
    EXPECT_EQ(pb.tx_burst(0, &m, &to, nullptr, 1), 1);
    const Received back = receive(*a, 1);
    ASSERT_EQ(back.bytes.size(), 1u);
    EXPECT_EQ(back.bytes[0], sent[3]);
    EXPECT_EQ(back.from[0], b->local_addresses()[0]);
}

INSTANTIATE_TEST_SUITE_P(Loopback, SocketPortFamily, testing::Values("127.0.0.1:", "[::1]:"),
                         [](const auto& info) { return std::string(info.index == 0 ? "IPv4" : "IPv6"); });

TEST(SocketPort, ReportsTheEphemeralPortTheKernelChose) {
    MbufPool pool(512);
    auto p = open_port(pool, {addr("127.0.0.1:0"), addr("[::1]:0")});
    ASSERT_TRUE(p);
    ASSERT_EQ(p->local_addresses().size(), 2u);
    for (size_t i = 0; i < 2; ++i) {
        const wire::Address& a = p->local_addresses()[i];
        EXPECT_NE(a.port, 0);
        sockaddr_storage ss{};
        socklen_t len = sizeof ss;
        ASSERT_EQ(::getsockname(p->fd(i), reinterpret_cast<sockaddr*>(&ss), &len), 0);
        EXPECT_EQ(drivers::from_sockaddr(ss), a);
    }
    EXPECT_EQ(p->local_addresses()[0].type, wire::AddressType::ipv4);
    EXPECT_EQ(p->local_addresses()[1].type, wire::AddressType::ipv6);
    int v6only = 0;
    socklen_t len = sizeof v6only;
    ASSERT_EQ(::getsockopt(p->fd(1), IPPROTO_IPV6, IPV6_V6ONLY, &v6only, &len), 0);
    EXPECT_EQ(v6only, 1);
    int rcvbuf = 0;
    len = sizeof rcvbuf;
    ASSERT_EQ(::getsockopt(p->fd(0), SOL_SOCKET, SO_RCVBUF, &rcvbuf, &len), 0);
    EXPECT_GE(rcvbuf, 1 << 20);  // asked for 1 MiB (the kernel reports double)
}

// Many sockets (the epoll path): each datagram goes out of the chosen socket and is reported
// on the socket it arrived at.
TEST(SocketPort, IndexedSendAndReceiveOverManySockets) {
    MbufPool pool(4096);
    std::vector<wire::Address> local;
    for (int i = 0; i < 12; ++i) local.push_back(addr(i % 2 ? "[::1]:0" : "127.0.0.1:0"));
    auto senders = open_port(pool, local);
    auto receivers = open_port(pool, local);
    ASSERT_TRUE(senders && receivers);

    // Sender socket i sends 3 datagrams to receiver socket (i + 2) % 12 (same family).
    std::vector<rte_mbuf*> pkts;
    std::vector<wire::Address> to;
    std::vector<uint16_t> index;
    for (uint16_t round = 0; round < 3; ++round)
        for (uint16_t i = 0; i < 12; ++i) {
            const uint8_t tag[2] = {static_cast<uint8_t>(i), static_cast<uint8_t>(round)};
            pkts.push_back(datagram(pool, tag));
            to.push_back(receivers->local_addresses()[(i + 2) % 12]);
            index.push_back(i);
        }
    EXPECT_EQ(senders->tx_burst(0, pkts.data(), to.data(), index.data(), static_cast<uint16_t>(pkts.size())),
              36);
    const Received r = receive(*receivers, 36);
    ASSERT_EQ(r.bytes.size(), 36u);
    std::vector<int> per_socket(12);
    for (size_t k = 0; k < r.bytes.size(); ++k) {
        ASSERT_EQ(r.bytes[k].size(), 2u);
        const unsigned i = r.bytes[k][0];
        EXPECT_EQ(r.from[k], senders->local_addresses()[i]);
        EXPECT_EQ(r.local[k], (i + 2) % 12);
        ++per_socket[r.local[k]];
    }
    for (int n : per_socket) EXPECT_EQ(n, 3);

    // A socket of the wrong family, an index out of range: dropped and counted, mbufs freed.
    const unsigned free_before = rte_mempool_avail_count(pool);
    rte_mbuf* bad[2] = {datagram(pool, pattern(8, 1)), datagram(pool, pattern(8, 2))};
    const wire::Address bad_to[2] = {receivers->local_addresses()[1], receivers->local_addresses()[0]};
    const uint16_t bad_index[2] = {0, 99};  // socket 0 is IPv4, the destination IPv6
    EXPECT_EQ(senders->tx_burst(0, bad, bad_to, bad_index, 2), 0);
    EXPECT_EQ(senders->stats(0).tx_dropped, 2u);
    EXPECT_EQ(rte_mempool_avail_count(pool), free_before);
}

TEST(SocketPort, DropsDatagramsToAFamilyItHasNoSocketFor) {
    MbufPool pool(512);
    auto p = open_port(pool, {addr("127.0.0.1:0")});
    ASSERT_TRUE(p);
    rte_mbuf* m = datagram(pool, pattern(10, 0));
    const wire::Address to = addr("[::1]:9");
    EXPECT_EQ(p->tx_burst(0, &m, &to, nullptr, 1), 0);
    EXPECT_EQ(p->stats(0).tx_dropped, 1u);
    EXPECT_EQ(p->stats(0).tx_datagrams, 0u);
}

// A datagram larger than the mbuf's room is counted and dropped, not cut short.
TEST(SocketPort, CountsAndDropsTruncatedDatagrams) {
    // 1024 bytes of room after the headroom.
    MbufPool pool(512, RTE_PKTMBUF_HEADROOM + 1024);
    auto p = open_port(pool, {addr("127.0.0.1:0")});
    ASSERT_TRUE(p);
    const int raw = ::socket(AF_INET, SOCK_DGRAM, 0);
    ASSERT_GE(raw, 0);
    sockaddr_storage ss{};
    socklen_t len = 0;
    ASSERT_TRUE(drivers::to_sockaddr(p->local_addresses()[0], ss, len));
    const std::vector<uint8_t> big = pattern(3000, 1), fits = pattern(1024, 2), small = pattern(100, 3);
    for (const auto* d : {&big, &fits, &big, &small})
        ASSERT_EQ(::sendto(raw, d->data(), d->size(), 0, reinterpret_cast<sockaddr*>(&ss), len),
                  static_cast<ssize_t>(d->size()));
    ::close(raw);
    const Received r = receive(*p, 2);
    ASSERT_EQ(r.bytes.size(), 2u);
    EXPECT_EQ(r.bytes[0], fits);
    EXPECT_EQ(r.bytes[1], small);
    EXPECT_EQ(p->stats(0).rx_truncated, 2u);
    EXPECT_EQ(p->stats(0).rx_packets, 4u);
    EXPECT_EQ(p->stats(0).rx_datagrams, 2u);
}

TEST(SocketPort, BindFailureIsOneLineNamingTheAddress) {
    MbufPool pool(512);
    auto first = open_port(pool, {addr("127.0.0.1:0")});
    ASSERT_TRUE(first);
    const wire::Address taken = first->local_addresses()[0];

    SocketConfig c;
    c.pool = pool;
    c.local = {addr("127.0.0.1:0"), taken};
    std::string error;
    EXPECT_EQ(drivers::open_socket_port(c, error), nullptr);
    EXPECT_EQ(error, "cannot bind UDP socket to " + taken.to_string() + ": " + std::strerror(EADDRINUSE));
    EXPECT_EQ(error.find('\n'), std::string::npos);

    c.local = {addr("[::1]:0"), addr("198.18.0.1:0")};  // not an address of this host
    error.clear();
    EXPECT_EQ(drivers::open_socket_port(c, error), nullptr);
    EXPECT_EQ(error, "cannot bind UDP socket to 198.18.0.1:0: " + std::string(std::strerror(EADDRNOTAVAIL)));

    c.local = {};
    EXPECT_EQ(drivers::open_socket_port(c, error), nullptr);
    EXPECT_EQ(error, "socket port: no local address to bind");
}

}  // namespace
}  // namespace pomelo::test
