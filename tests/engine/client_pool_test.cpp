// The client pool end to end: hundreds of clients, each on its own loopback socket or its own
// endpoint of one ethdev port (a net_ring cable), against a protocol::server::Server with an
// echo application over a second port, both driven from the test's thread.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <algorithm>
#include <functional>
#include <set>
#include <string>
#include <thread>

#include "engine/client_pool.hpp"
#include "protocol/crypto/burst.hpp"
#include "protocol/wire/connect_token.hpp"
#include "tests/engine/test_support.hpp"

namespace pomelo::test {
namespace {

using engine::ClientPool;
using engine::ClientPoolConfig;
using engine::ClientPoolStats;

constexpr uint64_t kProtocolId = 0x1122334455667788ull;

unsigned outcome(client::Outcome o) { return static_cast<unsigned>(o); }

void print_stats(const ClientPoolStats& s) {
    std::printf("[ stats    ] handshake p50 %.3f ms p99 %.3f ms, echo rtt mean %.1f us p99 %.1f us, ping rtt %.1f us, "
                "%.0f echoes/s\n",
                static_cast<double>(s.handshake_percentile(50)) / 1e6, static_cast<double>(s.handshake_percentile(99)) / 1e6,
                static_cast<double>(s.echo_rtt.mean()) / 1e3, static_cast<double>(s.echo_rtt.quantile(0.99)) / 1e3,
                static_cast<double>(s.ping_rtt_mean_ns()) / 1e3, s.echo_rate());
}

// Loops end on their predicate, not on a clock: a slow machine (sanitizers, two shared cores)
// only makes them take longer. They fail only when nothing moves at all for kStallLimit, so
// a wall-clock deadline never decides a result while the pool and the server make progress.
constexpr auto kStallLimit = std::chrono::seconds(60);
// Echo deadline: generous, and a given-up echo that comes back late is still no loss (the
// tests assert given_up == late, i.e. nothing was lost, rather than given_up == 0).
constexpr uint64_t kEchoTimeoutNs = 10 * kSecond;

// Everything a step can change: sends, receipts, handshakes, ends, the server's view.
template <class Server>
uint64_t progress(const ClientPool& pool, const Server& server) {
    const ClientPoolStats& s = pool.stats();
    uint64_t p = s.payloads_sent + s.payloads_echoed + s.payloads_mismatched + s.payloads_given_up + s.connected +
                 s.finished + s.send_blocked + server.connects + server.payloads;
    for (uint64_t e : s.ended) p += e;
    for (uint64_t c : server.closes) p += c;
    return p;
}

// Steps until pred() holds (true) or nothing progresses for kStallLimit (false).
template <class Step, class Progress>
bool run_until(const std::function<bool()>& pred, Step step, Progress now_progress) {
    uint64_t last = now_progress();
    auto last_change = std::chrono::steady_clock::now();
    while (!pred()) {
        step();
        if (const uint64_t p = now_progress(); p != last) {
            last = p;
            last_change = std::chrono::steady_clock::now();
        } else if (std::chrono::steady_clock::now() - last_change > kStallLimit) {
            return false;
        }
    }
    return true;
}

// A test bed: server (echo) on one socket, `clients` sockets for the pool, same family.
class Bed {
public:
    Bed(const char* ip_port0, uint32_t clients, uint32_t max_clients = 0)
        : mbufs_(16384), aead_(crypto::make_best_burst()) {
        server::Config sc;
        sc.protocol_id = kProtocolId;
        sc.private_key = key_;
        sc.max_clients = max_clients ? max_clients : clients;
        server_ = std::make_unique<SocketServer>(mbufs_, addr(ip_port0), sc, clock_.now());

        drivers::SocketConfig pc;
        pc.local.assign(clients, addr(ip_port0));
        pc.pool = mbufs_;
        pc.rcvbuf = pc.sndbuf = 256 << 10;
        std::string error;
        port_ = drivers::open_socket_port(pc, error);
        if (!port_) throw std::runtime_error(error);
    }

    ClientPoolConfig config(uint32_t clients, uint32_t payloads) {
        ClientPoolConfig c;
        c.clients = clients;
        c.payloads = payloads;
        c.payload_size = 100;
        c.echo_timeout_ns = kEchoTimeoutNs;
        c.token = [this](uint32_t index, uint64_t unix_ms, std::span<uint8_t, wire::kConnectTokenSize> out) {
            wire::TokenSpec s;
            s.protocol_id = kProtocolId;
            s.create_ms = unix_ms;
            s.expire_ms = unix_ms + 60'000;
            crypto::random_bytes(s.nonce.data(), s.nonce.size());
            s.private_part.client_id = 1000 + index;
            s.private_part.timeout_seconds = 60;  // a stalled test process must not time peers out
            s.private_part.addresses.push(server_->address());
            s.private_part.client_to_server_key = crypto::Key::random();
            s.private_part.server_to_client_key = crypto::Key::random();
            return wire::mint_connect_token(s, key_, out) == wire::WireError::ok;
        };
        return c;
    }

    ClientPool& make_pool(const ClientPoolConfig& c) {
        pool_ = std::make_unique<ClientPool>(c, *port_, 0, mbufs_, *aead_);
        return *pool_;
    }

    // Polls pool and server until pred(); false if they stall (see run_until).
    bool run(const std::function<bool()>& pred) {
        return run_until(
            pred,
            [&] {
                const Now now = clock_.now();
                pool_->poll(now);
                server_->step(now);
            },
            [&] { return progress(*pool_, *server_); });
    }

    // Every mbuf back in the pool once the ports, the pool and the server are gone.
    bool no_mbuf_leaked() {
        pool_.reset();
        port_.reset();
        server_.reset();
        return mbufs_.available() == 16384;
    }

    Now now() const { return clock_.now(); }
    SocketServer& server() { return *server_; }
    ClientPool& pool() { return *pool_; }
    drivers::SocketPort& port() { return *port_; }

private:
    engine::TscClock clock_;
    crypto::Key key_ = crypto::Key::random();
    MbufPool mbufs_;
    std::unique_ptr<crypto::BurstAead> aead_;
    std::unique_ptr<SocketServer> server_;
    std::unique_ptr<drivers::SocketPort> port_;
    std::unique_ptr<ClientPool> pool_;
};

class ClientPoolFamily : public testing::TestWithParam<const char*> {};

TEST_P(ClientPoolFamily, TwoHundredClientsConnectEchoAndDisconnect) {
    constexpr uint32_t kClients = 200, kPayloads = 50;
    Bed bed(GetParam(), kClients);
    ClientPool& pool = bed.make_pool(bed.config(kClients, kPayloads));
    pool.start(bed.now());
    ASSERT_TRUE(bed.run([&] { return pool.done(); }));

    const ClientPoolStats& s = pool.stats();
    print_stats(s);
    EXPECT_TRUE(s.all_good(kPayloads));
    EXPECT_EQ(s.connected, kClients);
    EXPECT_EQ(s.ended[outcome(client::Outcome::disconnected)], kClients);
    EXPECT_EQ(s.payloads_sent, uint64_t{kClients} * kPayloads);
    EXPECT_EQ(s.payloads_echoed, s.payloads_sent);
    EXPECT_EQ(s.payloads_mismatched, 0u);
    EXPECT_EQ(s.payloads_given_up, s.payloads_late);  // given up on a slow machine, yet back: no loss
    EXPECT_EQ(s.lost(), 0u);
    EXPECT_EQ(s.stray_datagrams, 0u);
    EXPECT_EQ(s.seal_failures, 0u);
    EXPECT_EQ(s.handshake_ns.size(), kClients);
    EXPECT_GT(s.handshake_percentile(50), 0u);
    EXPECT_LE(s.handshake_percentile(50), s.handshake_percentile(99));
    EXPECT_EQ(s.echo_rtt.count(), s.payloads_echoed);
    EXPECT_GT(s.echo_rtt.mean(), 0u);
    EXPECT_GT(s.echo_rate(), 0.0);
    EXPECT_EQ(pool.connected_now(), 0u);

    // The server saw each client once, by its own address, and every graceful close.
    EXPECT_EQ(bed.server().connects, kClients);
    EXPECT_EQ(std::set<int64_t>(bed.server().client_ids.begin(), bed.server().client_ids.end()).size(), kClients);
    EXPECT_EQ(bed.server().payloads, uint64_t{kClients} * kPayloads);
    EXPECT_TRUE(bed.run([&] { return bed.server().server().connections() == 0; }));
    EXPECT_EQ(bed.server().closes[static_cast<unsigned>(server::CloseReason::client_disconnected)], kClients);
    EXPECT_EQ(bed.port().stats(0).tx_dropped, 0u);
    EXPECT_TRUE(bed.no_mbuf_leaked());
}

INSTANTIATE_TEST_SUITE_P(Loopback, ClientPoolFamily, testing::Values("127.0.0.1:0", "[::1]:0"),
                         [](const auto& info) { return std::string(info.index == 0 ? "IPv4" : "IPv6"); });

// --- over the ethdev driver: the pool's port and the server's are the two ends of a net_ring
// cable, real Ethernet frames in between ---

class EthdevBed {
public:
    // `clients` endpoints on `client_ip` from port 50000, the server on `server_addr`.
    EthdevBed(const wire::Address& server_addr, const wire::Address& client_ip, uint32_t clients)
        : mbufs_(16384), aead_(crypto::make_best_burst()) {
        // The port learns nothing by itself and PortServer teaches it nothing: the clients'
        // port is the server's gateway.
        uint16_t client_id = 0;
        rte_ether_addr client_mac{};
        if (rte_eth_dev_get_port_by_name(cable_.b().c_str(), &client_id) != 0 ||
            rte_eth_macaddr_get(client_id, &client_mac) != 0)
            throw std::runtime_error("cannot read the MAC of " + cable_.b());
        auto server_port = RingCable::open(cable_.a(), {server_addr}, mbufs_, client_mac);
        const rte_ether_addr server_mac = static_cast<drivers::EthdevPort&>(*server_port).mac();
        server::Config sc;
        sc.protocol_id = kProtocolId;
        sc.private_key = key_;
        sc.max_clients = clients;
        server_ = std::make_unique<PortServer>(mbufs_, std::move(server_port), sc, clock_.now());

        std::vector<wire::Address> local;
        for (uint32_t i = 0; i < clients; ++i) {
            wire::Address a = client_ip;
            a.port = static_cast<uint16_t>(50000 + i);
            local.push_back(a);
        }
        port_ = RingCable::open(cable_.b(), local, mbufs_, server_mac);
    }

    ClientPoolConfig config(uint32_t clients, uint32_t payloads) {
        ClientPoolConfig c;
        c.clients = clients;
        c.payloads = payloads;
        c.payload_size = 100;
        c.echo_timeout_ns = kEchoTimeoutNs;
        c.max_in_flight = 256;  // the cable holds 4096 frames each way
        c.token = [this](uint32_t index, uint64_t unix_ms, std::span<uint8_t, wire::kConnectTokenSize> out) {
            wire::TokenSpec s;
            s.protocol_id = kProtocolId;
            s.create_ms = unix_ms;
            s.expire_ms = unix_ms + 60'000;
            crypto::random_bytes(s.nonce.data(), s.nonce.size());
            s.private_part.client_id = 5000 + index;
            s.private_part.timeout_seconds = 60;  // a stalled test process must not time peers out
            s.private_part.addresses.push(server_->address());
            s.private_part.client_to_server_key = crypto::Key::random();
            s.private_part.server_to_client_key = crypto::Key::random();
            return wire::mint_connect_token(s, key_, out) == wire::WireError::ok;
        };
        return c;
    }
    ClientPool& make_pool(const ClientPoolConfig& c) {
        pool_ = std::make_unique<ClientPool>(c, *port_, 0, mbufs_, *aead_);
        return *pool_;
    }
    // Polls pool and server until pred(); false if they stall (see run_until). `each` runs
    // after every step.
    bool run(const std::function<bool()>& pred, const std::function<void()>& each = [] {}) {
        return run_until(
            pred,
            [&] {
                const Now now = clock_.now();
                pool_->poll(now);
                server_->step(now);
                each();
            },
            [&] { return progress(*pool_, *server_); });
    }
    bool no_mbuf_leaked() {
        pool_.reset();
        port_.reset();
        server_.reset();
        return mbufs_.available() == 16384;
    }

    Now now() const { return clock_.now(); }
    PortServer& server() { return *server_; }
    drivers::Port& port() { return *port_; }

private:
    engine::TscClock clock_;
    crypto::Key key_ = crypto::Key::random();
    MbufPool mbufs_;
    std::unique_ptr<crypto::BurstAead> aead_;
    RingCable cable_;
    std::unique_ptr<PortServer> server_;
    std::unique_ptr<drivers::Port> port_;
    std::unique_ptr<ClientPool> pool_;
};

class ClientPoolEthdev : public testing::TestWithParam<bool> {};

TEST_P(ClientPoolEthdev, FiveHundredClientsOnOnePortConnectEchoAndDisconnect) {
    constexpr uint32_t kClients = 500, kPayloads = 40;
    const bool ipv6 = GetParam();
    const wire::Address server_addr = ipv6 ? addr("[fd00:198:18::1]:40000") : addr("198.18.0.1:40000");
    const wire::Address client_ip = ipv6 ? addr("[fd00:198:18::1:1]:0") : addr("198.18.1.1:0");
    EthdevBed bed(server_addr, client_ip, kClients);
    ClientPool& pool = bed.make_pool(bed.config(kClients, kPayloads));
    pool.start(bed.now());
    uint32_t most_in_flight = 0;
    ASSERT_TRUE(bed.run([&] { return pool.done(); }, [&] { most_in_flight = std::max(most_in_flight, pool.in_flight()); }));

    const ClientPoolStats& s = pool.stats();
    print_stats(s);
    EXPECT_TRUE(s.all_good(kPayloads));
    EXPECT_EQ(s.connected, kClients);
    EXPECT_EQ(s.ended[outcome(client::Outcome::disconnected)], kClients);
    EXPECT_EQ(s.payloads_echoed, uint64_t{kClients} * kPayloads);
    EXPECT_EQ(s.payloads_given_up, s.payloads_late);
    EXPECT_EQ(s.lost(), 0u);
    EXPECT_EQ(s.stray_datagrams, 0u);
    EXPECT_LE(most_in_flight, 256u);
    EXPECT_GT(s.in_flight_waits, 0u);  // 500 clients x a window of 32 wanted more
    EXPECT_EQ(pool.in_flight(), 0u);

    // The server told the clients apart by their endpoints on the one port.
    EXPECT_EQ(bed.server().connects, kClients);
    EXPECT_EQ(std::set<int64_t>(bed.server().client_ids.begin(), bed.server().client_ids.end()).size(), kClients);
    EXPECT_EQ(bed.server().payloads, uint64_t{kClients} * kPayloads);
    EXPECT_TRUE(bed.run([&] { return bed.server().server().connections() == 0; }));
    EXPECT_EQ(bed.server().closes[static_cast<unsigned>(server::CloseReason::client_disconnected)], kClients);
    const drivers::PortStats ps = bed.port().total_stats();
    EXPECT_EQ(ps.tx_dropped, 0u);
    EXPECT_EQ(ps.rx_not_ours + ps.rx_malformed, 0u);
    EXPECT_EQ(bed.server().port().total_stats().tx_dropped, 0u);
    EXPECT_TRUE(bed.no_mbuf_leaked());
}

INSTANTIATE_TEST_SUITE_P(RingCable, ClientPoolEthdev, testing::Bool(),
                         [](const auto& info) { return std::string(info.param ? "IPv6" : "IPv4"); });

TEST(ClientPool, PacesPayloadsAtTheConfiguredRate) {
    Bed bed("127.0.0.1:0", 4);
    ClientPoolConfig c = bed.config(4, 20);
    c.rate_pps = 200;  // 5 ms apart: 20 payloads span >= 95 ms
    ClientPool& pool = bed.make_pool(c);
    pool.start(bed.now());
    ASSERT_TRUE(bed.run([&] { return pool.done(); }));
    const ClientPoolStats& s = pool.stats();
    print_stats(s);
    EXPECT_TRUE(s.all_good(20));
    EXPECT_GE(s.last_echo_ns - s.first_send_ns, 95 * kMillisecond);
    // Not much slower than asked either; bound at 100x, so only a pacing bug (not a busy
    // machine) can exceed it.
    EXPECT_LT(s.last_echo_ns - s.first_send_ns, 10 * kSecond);
}

TEST(ClientPool, SpacesConnects) {
    Bed bed("[::1]:0", 10);
    ClientPoolConfig c = bed.config(10, 2);
    c.connect_spacing_ns = 20 * kMillisecond;
    ClientPool& pool = bed.make_pool(c);
    const Now start = bed.now();
    pool.start(start);
    ASSERT_TRUE(bed.run([&] { return pool.stats().connected == 10; }));
    EXPECT_GE(bed.now().ns - start.ns, 180 * kMillisecond);
    ASSERT_TRUE(bed.run([&] { return pool.done(); }));
    EXPECT_TRUE(pool.stats().all_good(2));
}

TEST(ClientPool, DetectsACorruptedEcho) {
    Bed bed("127.0.0.1:0", 5);
    bed.server().corrupt_at = 7;
    ClientPoolConfig c = bed.config(5, 10);
    c.echo_timeout_ns = 500 * kMillisecond;  // the corrupted one's slot waits this long
    ClientPool& pool = bed.make_pool(c);
    pool.start(bed.now());
    ASSERT_TRUE(bed.run([&] { return pool.done(); }));
    const ClientPoolStats& s = pool.stats();
    EXPECT_FALSE(s.all_good(10));
    EXPECT_EQ(s.payloads_sent, 50u);
    EXPECT_EQ(s.payloads_mismatched, 1u);
    EXPECT_EQ(s.payloads_echoed, 49u);
    // Its window slot is released after echo_timeout; on a slow machine others may be given up
    // too, but they come back late: exactly one is given up for good.
    EXPECT_EQ(s.payloads_given_up - s.payloads_late, 1u);
    EXPECT_EQ(s.lost(), 0u);
    EXPECT_EQ(s.ended[outcome(client::Outcome::disconnected)], 5u);  // and everyone still disconnects
}

TEST(ClientPool, CountsDeniedClientsWhenTheServerIsFull) {
    Bed bed("127.0.0.1:0", 8, /*max_clients=*/5);
    ClientPool& pool = bed.make_pool(bed.config(8, 3));
    pool.start(bed.now());
    ASSERT_TRUE(bed.run([&] { return pool.done(); }));
    const ClientPoolStats& s = pool.stats();
    EXPECT_EQ(s.connected, 5u);
    EXPECT_EQ(s.connect_failed[outcome(client::Outcome::denied)], 3u);
    EXPECT_EQ(s.ended[outcome(client::Outcome::disconnected)], 5u);
    EXPECT_EQ(s.payloads_echoed, 15u);
    EXPECT_FALSE(s.all_good(3));
}

TEST(ClientPool, StopDisconnectsGracefully) {
    Bed bed("127.0.0.1:0", 20);
    ClientPoolConfig c = bed.config(20, 1'000'000);
    c.rate_pps = 100;
    ClientPool& pool = bed.make_pool(c);
    pool.start(bed.now());
    ASSERT_TRUE(bed.run([&] { return pool.stats().connected == 20 && pool.stats().payloads_echoed >= 100; }));
    pool.stop(bed.now());
    EXPECT_TRUE(pool.stopping());
    ASSERT_TRUE(bed.run([&] { return pool.done(); }));
    const ClientPoolStats& s = pool.stats();
    EXPECT_EQ(s.ended[outcome(client::Outcome::disconnected)], 20u);
    EXPECT_EQ(s.payloads_mismatched, 0u);
    EXPECT_EQ(s.lost(), 0u);  // the echoes in flight at the stop were waited for
    EXPECT_EQ(s.payloads_echoed, s.payloads_sent);
    EXPECT_FALSE(s.all_good(1'000'000));
    EXPECT_TRUE(bed.run([&] { return bed.server().server().connections() == 0; }));
    EXPECT_EQ(bed.server().closes[static_cast<unsigned>(server::CloseReason::client_disconnected)], 20u);
}

TEST(ClientPool, StopBeforeStartEndsEveryClient) {
    Bed bed("127.0.0.1:0", 3);
    ClientPool& pool = bed.make_pool(bed.config(3, 1));
    pool.stop(bed.now());
    EXPECT_TRUE(pool.done());
    EXPECT_EQ(pool.stats().not_started, 3u);
}

TEST(ClientPool, RejectsAConfigThatDoesNotFitThePort) {
    Bed bed("127.0.0.1:0", 3);
    ClientPoolConfig c = bed.config(4, 1);
    EXPECT_THROW(bed.make_pool(c), std::invalid_argument);
    c = bed.config(3, 1);
    c.payload_size = 4;
    EXPECT_THROW(bed.make_pool(c), std::invalid_argument);
    c = bed.config(3, 1);
    c.token = nullptr;
    EXPECT_THROW(bed.make_pool(c), std::invalid_argument);
}

TEST(ClientPool, PayloadsAreDistinctAndDeterministic) {
    std::vector<uint8_t> a(64), b(64), c(64);
    ClientPool::make_payload(7, 3, a);
    ClientPool::make_payload(7, 3, b);
    ClientPool::make_payload(7, 4, c);
    EXPECT_EQ(a, b);
    EXPECT_NE(a, c);
    EXPECT_EQ(a[0], 7);
    EXPECT_EQ(a[4], 3);
}

TEST(LatencyHistogram, QuantilesWithinABucket) {
    engine::LatencyHistogram h;
    for (uint64_t v = 1; v <= 1000; ++v) h.add(v * 1000);
    EXPECT_EQ(h.count(), 1000u);
    EXPECT_EQ(h.mean(), 500'500u);
    EXPECT_EQ(h.max(), 1'000'000u);
    EXPECT_NEAR(static_cast<double>(h.quantile(0.5)), 500'000.0, 500'000.0 * 0.07);
    EXPECT_NEAR(static_cast<double>(h.quantile(0.99)), 990'000.0, 990'000.0 * 0.07);
    EXPECT_EQ(engine::LatencyHistogram{}.quantile(0.5), 0u);
}

}  // namespace
}  // namespace pomelo::test
