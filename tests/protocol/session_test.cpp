// Real server and client state machines over the simulated network: handshake, payloads,
// disconnects, timeouts, refusals, replays, scale and clock sync.
#include <gtest/gtest.h>

#include <set>

#include "protocol/wire/header.hpp"
#include "tests/support/sim_network.hpp"

namespace pomelo::test {
namespace {

using client::Outcome;
using server::CloseReason;

constexpr uint64_t kMs = 1'000'000;
constexpr uint64_t kSec = 1'000'000'000;

struct World {
    SimNetwork net{std::getenv("POMELO_SIM_SEED") ? std::strtoull(std::getenv("POMELO_SIM_SEED"), nullptr, 10) : 42};
    TokenFactory tokens;
    wire::Address server_address = addr("198.18.0.1:40000");
    std::unique_ptr<ServerNode> server;

    explicit World(std::function<void(server::Config&)> tune = {}) {
        server::Config c = tokens.server_config(server_address);
        if (tune) tune(c);
        server = std::make_unique<ServerNode>(net, server_address, c);
        server->server.start(server->clock.at(0));
    }
    std::unique_ptr<ClientNode> client(int index, int64_t client_id, bool connect = true,
                                       std::vector<wire::Address> servers = {}) {
        auto c = std::make_unique<ClientNode>(net, addr(("198.18.1." + std::to_string(index % 250 + 1) + ":" +
                                                         std::to_string(50000 + index / 250))
                                                            .c_str()));
        if (servers.empty()) servers = {server_address};
        auto token = tokens.mint(client_id, servers);
        if (connect) {
            EXPECT_TRUE(c->client.connect(token, c->clock.at(net.now())));
        }
        return c;
    }
    Counters counters() const { return server->server.counters(); }
};

std::vector<uint8_t> bytes_of(const std::string& s) { return {s.begin(), s.end()}; }

TEST(Session, ConnectsAndLearnsItsClientId) {
    World w;
    auto c = w.client(0, 1234);
    ASSERT_TRUE(w.net.run_while_not([&] { return c->connected; }, 2 * kSec));
    EXPECT_EQ(c->client.state(), client::State::connected);
    EXPECT_EQ(c->learned_id, 1234);
    ASSERT_EQ(w.server->connects.size(), 1u);
    EXPECT_EQ(w.server->connects[0].client_id, 1234);
    // The server got the token's user data through the challenge token.
    EXPECT_EQ(w.server->user_data[1234][5], static_cast<uint8_t>(1234 + 5));
    // The client's first PING confirms the connection.
    w.net.run_for(200 * kMs);
    const server::Peer* p = w.server->server.peer(w.server->connects[0].id);
    ASSERT_TRUE(p);
    EXPECT_EQ(p->state, server::PeerState::connected);
    EXPECT_EQ(w.server->server.pending(), 0u);
}

TEST(Session, PayloadsBothWaysAreByteIdentical) {
    World w;
    w.server->echo = true;
    auto c = w.client(0, 7);
    ASSERT_TRUE(w.net.run_while_not([&] { return c->connected; }, 2 * kSec));
    std::vector<std::vector<uint8_t>> sent;
    for (size_t n : {1u, 17u, 100u, 1184u, 1200u}) {
        std::vector<uint8_t> payload(n);
        for (size_t i = 0; i < n; ++i) payload[i] = static_cast<uint8_t>(i * 31 + n);
        ASSERT_TRUE(c->client.send(payload, c->clock.at(w.net.now())));
        sent.push_back(payload);
    }
    ASSERT_TRUE(w.net.run_while_not([&] { return c->payloads.size() == sent.size(); }, 2 * kSec));
    ASSERT_EQ(w.server->payloads.size(), sent.size());
    for (size_t i = 0; i < sent.size(); ++i) {
        EXPECT_EQ(w.server->payloads[i].second, sent[i]);
        EXPECT_EQ(c->payloads[i], sent[i]);
    }
    EXPECT_FALSE(c->client.send({}, c->clock.at(w.net.now())));
    std::vector<uint8_t> too_big(1201);
    EXPECT_FALSE(c->client.send(too_big, c->clock.at(w.net.now())));
}

TEST(Session, ClientDisconnectsGracefully) {
    World w;
    auto c = w.client(0, 7);
    ASSERT_TRUE(w.net.run_while_not([&] { return c->connected; }, 2 * kSec));
    ASSERT_TRUE(c->client.disconnect(c->clock.at(w.net.now())));
    ASSERT_TRUE(w.net.run_while_not([&] { return !w.server->disconnects.empty(); }, 2 * kSec));
    EXPECT_EQ(w.server->disconnects[0].reason, CloseReason::client_disconnected);
    ASSERT_TRUE(w.net.run_while_not([&] { return !c->outcomes.empty(); }, 2 * kSec));
    EXPECT_EQ(c->outcomes[0], Outcome::disconnected);
    EXPECT_EQ(w.server->server.connections(), 0u);
    // Nine more DISCONNECTs arrived after the first: each dropped as from an unknown peer.
    EXPECT_GE(w.counters().drops_of(DropReason::unknown_peer), 8u);
}

TEST(Session, ServerDisconnectsGracefully) {
    World w;
    auto c = w.client(0, 7);
    ASSERT_TRUE(w.net.run_while_not([&] { return c->connected; }, 2 * kSec));
    ASSERT_TRUE(w.server->server.disconnect(w.server->connects[0].id, w.server->clock.at(w.net.now())));
    ASSERT_TRUE(w.net.run_while_not([&] { return !c->outcomes.empty(); }, 2 * kSec));
    EXPECT_EQ(c->outcomes[0], Outcome::disconnected_by_server);
    // The server keeps sending for a second, then forgets the peer.
    ASSERT_TRUE(w.net.run_while_not([&] { return !w.server->disconnects.empty(); }, 3 * kSec));
    EXPECT_EQ(w.server->disconnects[0].reason, CloseReason::server_disconnected);
    EXPECT_EQ(w.counters().tx[static_cast<unsigned>(wire::PacketType::disconnect)], 10u);
}

TEST(Session, ServerShutdownDisconnectsEveryone) {
    World w;
    auto a = w.client(0, 1);
    auto b = w.client(1, 2);
    ASSERT_TRUE(w.net.run_while_not([&] { return a->connected && b->connected; }, 2 * kSec));
    w.server->server.shutdown(w.server->clock.at(w.net.now()));
    EXPECT_EQ(w.server->server.state(), server::ServerState::stopping);
    ASSERT_TRUE(w.net.run_while_not([&] { return a->outcomes.size() == 1 && b->outcomes.size() == 1; }, 2 * kSec));
    EXPECT_EQ(a->outcomes[0], Outcome::disconnected_by_server);
    ASSERT_TRUE(w.net.run_while_not(
        [&] { return w.server->server.state() == server::ServerState::stopped; }, 3 * kSec));
}

TEST(Session, ServerTimesOutASilentClient) {
    World w;
    auto c = w.client(0, 7);
    ASSERT_TRUE(w.net.run_while_not([&] { return c->connected; }, 2 * kSec));
    w.net.detach(c.get());  // the client vanishes: nothing it sends or receives
    ASSERT_TRUE(w.net.run_while_not([&] { return !w.server->disconnects.empty(); }, 7 * kSec));
    EXPECT_EQ(w.server->disconnects[0].reason, CloseReason::timed_out);
    EXPECT_GE(w.net.now(), 5 * kSec);  // token timeout: 5 s
    w.net.attach(c.get());
}

TEST(Session, ClientTimesOutASilentServer) {
    World w;
    auto c = w.client(0, 7);
    ASSERT_TRUE(w.net.run_while_not([&] { return c->connected; }, 2 * kSec));
    w.net.link_to[wire::AddressKey::of(c->address())] = LinkModel{1.0};  // all to the client lost
    ASSERT_TRUE(w.net.run_while_not([&] { return !c->outcomes.empty(); }, 7 * kSec));
    EXPECT_EQ(c->outcomes[0], Outcome::connection_lost);
}

TEST(Session, FullServerDeniesAndTheClientKnows) {
    World w([](server::Config& c) { c.max_clients = 1; });
    auto a = w.client(0, 1);
    ASSERT_TRUE(w.net.run_while_not([&] { return a->connected; }, 2 * kSec));
    auto b = w.client(1, 2);
    ASSERT_TRUE(w.net.run_while_not([&] { return !b->outcomes.empty(); }, 2 * kSec));
    EXPECT_EQ(b->outcomes[0], Outcome::denied);  // authenticated with the token's key (§19.6)
    EXPECT_GE(w.counters().tx[static_cast<unsigned>(wire::PacketType::denied)], 1u);
    EXPECT_LT(w.net.now(), kSec);  // well before the 5 s request timeout
}

TEST(Session, ExpiredTokenIsRefusedByClientAndServer) {
    World w;
    w.tokens.expire_ms = w.tokens.create_ms + 1000;  // expires 1 s into the simulation
    auto c = w.client(0, 7, false);
    auto token = w.tokens.mint(7, {w.server_address});
    w.net.run_for(2 * kSec);
    EXPECT_FALSE(c->client.connect(token, c->clock.at(w.net.now())));
    EXPECT_EQ(c->client.outcome(), Outcome::token_expired);
    // A client whose wall clock lags still sends; the server refuses on its own clock.
    c->clock.unix_epoch_ms -= 10'000;
    ASSERT_TRUE(c->client.connect(token, c->clock.at(w.net.now())));
    w.net.run_for(500 * kMs);
    EXPECT_GE(w.counters().drops_of(DropReason::token_expired), 1u);
    EXPECT_EQ(w.server->connects.size(), 0u);
}

TEST(Session, WrongProtocolIdIsDropped) {
    World w;
    w.tokens.protocol_id ^= 1;
    auto c = w.client(0, 7);
    ASSERT_TRUE(w.net.run_while_not([&] { return !c->outcomes.empty(); }, 7 * kSec));
    EXPECT_EQ(c->outcomes[0], Outcome::request_timed_out);
    EXPECT_GE(w.counters().drops_of(DropReason::wrong_protocol_id), 40u);
}

TEST(Session, ServerAddressMissingFromTokenIsDropped) {
    World w;
    auto c = w.client(0, 7, false);
    auto token = w.tokens.mint(7, {addr("198.18.0.99:40000")});
    // Point the client at our server anyway by listing it second... it is not listed at all:
    // make the token's only address route to our server node instead.
    SimNetwork& net = w.net;
    net.tap = [&](const Datagram& d) {
        if (d.to == addr("198.18.0.99:40000")) {
            net.inject({d.from, w.server_address, d.bytes});
            return false;
        }
        return true;
    };
    ASSERT_TRUE(c->client.connect(token, c->clock.at(net.now())));
    net.run_for(500 * kMs);
    EXPECT_GE(w.counters().drops_of(DropReason::address_not_in_token), 1u);
    EXPECT_EQ(w.server->connects.size(), 0u);
}

TEST(Session, DuplicateClientIdIsRefused) {
    World w;
    auto a = w.client(0, 99);
    ASSERT_TRUE(w.net.run_while_not([&] { return a->connected; }, 2 * kSec));
    auto b = w.client(1, 99);
    ASSERT_TRUE(w.net.run_while_not([&] { return !b->outcomes.empty(); }, 7 * kSec));
    EXPECT_EQ(b->outcomes[0], Outcome::request_timed_out);
    EXPECT_GE(w.counters().drops_of(DropReason::client_id_connected), 1u);
    EXPECT_EQ(w.server->connects.size(), 1u);
    EXPECT_TRUE(a->connected);
}

// Records every datagram of one type in flight, for replays.
struct Recorder {
    std::vector<Datagram> seen;
    std::function<bool(const Datagram&)> tap(wire::PacketType type) {
        return [this, type](const Datagram& d) {
            wire::PacketHeader h;
            if (wire::read_header(d.bytes, h) == wire::WireError::ok && h.type == type) seen.push_back(d);
            return true;
        };
    }
};

TEST(Session, ReplayedRequestResponsePayloadAndPingAreDropped) {
    World w;
    auto c = w.client(0, 7, false);
    Recorder requests, responses, payloads, pings;
    w.net.tap = [&](const Datagram& d) {
        requests.tap(wire::PacketType::request)(d);
        responses.tap(wire::PacketType::response)(d);
        payloads.tap(wire::PacketType::payload)(d);
        if (d.from == c->address()) pings.tap(wire::PacketType::ping)(d);
        return true;
    };
    ASSERT_TRUE(c->client.connect(w.tokens.mint(7, {w.server_address}), c->clock.at(0)));
    ASSERT_TRUE(w.net.run_while_not([&] { return c->connected; }, 2 * kSec));
    ASSERT_TRUE(c->client.send(bytes_of("once"), c->clock.at(w.net.now())));
    w.net.run_for(300 * kMs);
    ASSERT_EQ(w.server->payloads.size(), 1u);
    ASSERT_FALSE(requests.seen.empty());
    ASSERT_FALSE(responses.seen.empty());
    ASSERT_FALSE(pings.seen.empty());
    const Counters before = w.counters();

    // Same source: a connected address may not handshake again.
    w.net.inject(requests.seen[0]);
    w.net.inject(responses.seen[0]);
    // PAYLOAD and PING replays: caught by the replay window.
    w.net.inject(payloads.seen[0]);
    w.net.inject(pings.seen[0]);
    // The REQUEST replayed from another address: the token is in use.
    Datagram elsewhere = requests.seen[0];
    elsewhere.from = addr("198.18.9.9:1234");
    w.net.inject(elsewhere);
    w.net.run_for(100 * kMs);

    const Counters after = w.counters();
    EXPECT_EQ(w.server->payloads.size(), 1u);
    EXPECT_EQ(after.drops_of(DropReason::handshake_from_connected) - before.drops_of(DropReason::handshake_from_connected), 2u);
    EXPECT_EQ(after.drops_of(DropReason::replayed) - before.drops_of(DropReason::replayed), 2u);
    EXPECT_EQ(after.drops_of(DropReason::token_in_use) - before.drops_of(DropReason::token_in_use), 1u);
    EXPECT_EQ(w.server->connects.size(), 1u);
}

TEST(Session, ThousandClientsUnderFivePercentLoss) {
    World w([](server::Config& c) { c.max_clients = 1000; });
    w.server->echo = true;
    w.net.link.loss = 0.05;
    w.net.link.duplicate = 0.01;
    w.net.link.reorder = 0.01;
    w.net.link.delay_ns = 5 * kMs;
    w.net.link.jitter_ns = 2 * kMs;
    std::vector<std::unique_ptr<ClientNode>> clients;
    for (int i = 0; i < 1000; ++i) clients.push_back(w.client(i, 10'000 + i));
    ASSERT_TRUE(w.net.run_while_not(
        [&] {
            for (auto& c : clients)
                if (!c->connected) return false;
            return true;
        },
        5 * kSec, 2 * kMs));
    EXPECT_EQ(w.server->server.connections(), 1000u);
    std::set<int64_t> ids;
    for (auto& c : clients) ids.insert(c->learned_id);
    EXPECT_EQ(ids.size(), 1000u);
    // Ten payloads each; with 5 % loss each way about 90 % come back.
    for (int round = 0; round < 10; ++round) {
        for (auto& c : clients) c->client.send(bytes_of("round " + std::to_string(round)), c->clock.at(w.net.now()));
        w.net.run_for(20 * kMs, 2 * kMs);
    }
    w.net.run_for(200 * kMs, 2 * kMs);
    size_t echoed = 0;
    for (auto& c : clients) echoed += c->payloads.size();
    EXPECT_GT(echoed, 8500u);
    EXPECT_LE(echoed, 10'500u);  // duplicates are dropped by the replay window, not delivered
    EXPECT_EQ(w.server->server.connections(), 1000u);  // nobody timed out under loss
    EXPECT_GT(w.counters().drops_of(DropReason::replayed), 0u);
}

TEST(Session, ClockConvergesUnderJitterAndDrift) {
    World w;
    w.net.link.delay_ns = 25 * kMs;  // RTT 50 ms ± 10 ms
    w.net.link.jitter_ns = 5 * kMs;
    auto c = w.client(0, 7, false);
    c->clock.drift_ppm = 100;
    c->clock.offset_ns = 123'456'789'000'000;  // unrelated monotonic epochs
    w.server->clock.offset_ns = 987'654'321'000;
    auto token = w.tokens.mint(7, {w.server_address});
    ASSERT_TRUE(c->client.connect(token, c->clock.at(w.net.now())));
    ASSERT_TRUE(w.net.run_while_not([&] { return c->connected; }, 2 * kSec));
    w.net.run_for(30 * kSec);
    int64_t worst = 0;
    for (int i = 0; i < 300; ++i) {  // 30 more seconds, checked every 100 ms
        w.net.run_for(100 * kMs);
        const uint64_t server_time = w.server->clock.at(w.net.now()).ns;
        const uint64_t client_view = c->client.network_time(c->clock.at(w.net.now()).ns);
        worst = std::max(worst, std::abs(static_cast<int64_t>(client_view - server_time)));
    }
    RecordProperty("worst_error_us", std::to_string(worst / 1000));
    std::printf("clock: worst error %.3f ms, drift %.1f ppm\n", worst / 1e6, c->client.clock().drift_ppm());
    EXPECT_LT(worst, static_cast<int64_t>(1 * kMs)) << "drift estimate " << c->client.clock().drift_ppm() << " ppm";
    EXPECT_NEAR(c->client.clock().drift_ppm(), -100 / 1.0001, 35);
    EXPECT_GT(c->client.pings().samples(), 500u);
    const double rtt_ms = static_cast<double>(c->client.pings().rtt_mean_ns()) / 1e6;
    EXPECT_NEAR(rtt_ms, 50, 6);
}


// The server's view of a client's clock (PeerInfo::clock_offset_ns): with the client's raw
// clock 123456 s ahead and links of 20 ± 5 ms each way, the least-delay sample is within a
// few ms of the truth (its error is at most half its round trip's asymmetry).
TEST(Session, ServerEstimatesEachClientsClockOffset) {
    World w;
    w.net.link.delay_ns = 20 * kMs;
    w.net.link.jitter_ns = 5 * kMs;
    auto c = w.client(0, 9, false);
    c->clock.offset_ns = 123'456'000'000'000;
    w.server->clock.offset_ns = 42'000'000;
    auto token = w.tokens.mint(9, {w.server_address});
    ASSERT_TRUE(c->client.connect(token, c->clock.at(w.net.now())));
    ASSERT_TRUE(w.net.run_while_not([&] { return c->connected; }, 2 * kSec));
    const auto id = w.server->peer_of(9);
    ASSERT_TRUE(id);
    w.net.run_for(5 * kSec);
    const server::Peer* p = w.server->server.peer(*id);
    ASSERT_TRUE(p && p->clock_offset.has_sample());
    const int64_t truth = static_cast<int64_t>(c->clock.at(w.net.now()).ns - w.server->clock.at(w.net.now()).ns);
    EXPECT_NEAR(static_cast<double>(p->clock_offset.offset_ns()), static_cast<double>(truth), 5.0 * kMs);
}

}  // namespace
}  // namespace pomelo::test

namespace pomelo::test {
namespace {

// The shard keeps its statistics (peers by state, RTT sum and histogram) as connections
// change instead of scanning every slot: through connects, PONGs, client and server
// disconnects and timeouts, they equal a scan of the peers at every step.
TEST(Session, IncrementalStatisticsEqualAScanThroughChurn) {
    World w([](server::Config& c) { c.max_clients = 64; });
    auto scan = [&] {
        server::Shard::Summary s;
        const server::Shard& shard = w.server->server.shard();
        shard.for_each_peer([&](const server::Peer& p) {
            ++s.peers[static_cast<unsigned>(p.state)];
            if (!p.pings.has_rtt()) return;
            const uint64_t rtt = p.pings.rtt_mean_ns();
            s.rtt_sum_ns += rtt;
            ++s.rtt_peers;
            unsigned b = 0;
            while (b + 1 < server::Shard::kRttBuckets && rtt > server::Shard::kRttBucketBoundsNs[b]) ++b;
            ++s.rtt_buckets[b];
        });
        s.peers[0] = shard.capacity() - shard.size();
        return s;
    };
    auto same = [&](const char* when) {
        const server::Shard::Summary live = w.server->server.shard().summary(), full = scan();
        for (unsigned k = 0; k < 4; ++k) EXPECT_EQ(live.peers[k], full.peers[k]) << when << " state " << k;
        EXPECT_EQ(live.rtt_sum_ns, full.rtt_sum_ns) << when;
        EXPECT_EQ(live.rtt_peers, full.rtt_peers) << when;
        for (unsigned b = 0; b < server::Shard::kRttBuckets; ++b)
            EXPECT_EQ(live.rtt_buckets[b], full.rtt_buckets[b]) << when << " bucket " << b;
    };
    w.net.link.delay_ns = 3 * kMs;
    w.net.link.jitter_ns = 2 * kMs;
    std::vector<std::unique_ptr<ClientNode>> clients;
    for (int i = 0; i < 40; ++i) clients.push_back(w.client(i, 500 + i));
    same("at start");
    for (int step = 0; step < 30; ++step) {
        w.net.run_for(50 * kMs, 1 * kMs);
        same("running");
    }
    EXPECT_EQ(w.server->server.shard().summary().peers[static_cast<unsigned>(server::PeerState::connected)], 40u);
    EXPECT_EQ(w.server->server.shard().summary().rtt_peers, 40u);
    for (int i = 0; i < 10; ++i) clients[i]->client.disconnect(clients[i]->clock.at(w.net.now()));
    for (int i = 10; i < 20; ++i) clients[i].reset();  // silent: the server times them out
    w.net.run_for(200 * kMs, 1 * kMs);
    same("after client disconnects");
    w.server->server.shard().disconnect_all(w.server->clock.at(w.net.now()));
    same("while disconnecting");
    w.net.run_for(12 * kSec, 5 * kMs);
    same("after timeouts and server disconnects");
    EXPECT_EQ(w.server->server.shard().size(), 0u);
}

}  // namespace
}  // namespace pomelo::test
