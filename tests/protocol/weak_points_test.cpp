// One test per weak point of the reference that concerns the protocol layer (spec §19:
// 1-7, 10-20, 22-24), named after it. Each would fail against the reference's behaviour.
#include <gtest/gtest.h>

#include <map>
#include <set>

#include "protocol/wire/header.hpp"
#include "protocol/wire/request.hpp"
#include "tests/support/sim_network.hpp"

namespace pomelo::test {
namespace {

using client::Outcome;
using server::CloseReason;
using wire::PacketType;

constexpr uint64_t kMs = 1'000'000;
constexpr uint64_t kSec = 1'000'000'000;

struct Harness {
    SimNetwork net{7};
    TokenFactory tokens;
    wire::Address server_address = addr("198.18.0.1:40000");
    std::unique_ptr<ServerNode> server;

    explicit Harness(std::function<void(server::Config&)> tune = {}) {
        server::Config c = tokens.server_config(server_address);
        if (tune) tune(c);
        server = std::make_unique<ServerNode>(net, server_address, c);
        server->server.start(server->clock.at(0));
    }

    struct Peer {
        std::unique_ptr<ClientNode> node;
        std::array<uint8_t, wire::kConnectTokenSize> token;
        wire::ConnectToken parsed;
    };
    Peer client(int index, int64_t client_id, bool connect = true, std::vector<wire::Address> servers = {},
                client::Config config = {}) {
        Peer p;
        p.node = std::make_unique<ClientNode>(net, addr(("198.18.1." + std::to_string(index + 1) + ":5000").c_str()),
                                              config);
        if (servers.empty()) servers = {server_address};
        p.token = tokens.mint(client_id, servers);
        EXPECT_EQ(wire::decode_connect_token(p.token, p.parsed), wire::WireError::ok);
        if (connect) {
            EXPECT_TRUE(p.node->client.connect(p.token, p.node->clock.at(net.now())));
        }
        return p;
    }
    bool connect(Peer& p) {
        return net.run_while_not([&] { return p.node->connected; }, 3 * kSec);
    }
    Counters counters() const { return server->server.counters(); }
    uint64_t drops(DropReason r) const { return counters().drops_of(r); }
    uint64_t drops(wire::WireError e) const { return counters().drops_of(e); }
    uint64_t rx(PacketType t) const { return counters().rx[static_cast<unsigned>(t)]; }
    uint64_t tx(PacketType t) const { return counters().tx[static_cast<unsigned>(t)]; }

    // A packet from `p`'s address sealed with its client->server key.
    Datagram forge(const Peer& p, const wire::Packet& packet, const wire::WriteOptions& o = {}) const {
        std::vector<uint8_t> out(wire::kMaxDatagramSize);
        out.resize(wire::write_packet({p.parsed.suite, p.parsed.protocol_id}, p.parsed.client_to_server_key, packet,
                                      out, o));
        EXPECT_FALSE(out.empty());
        return {p.node->address(), server_address, out};
    }
};

struct Capture {
    std::vector<Datagram> seen;
    void operator()(const Datagram& d) { seen.push_back(d); }
    std::vector<Datagram> of(PacketType t) const {
        std::vector<Datagram> r;
        for (const Datagram& d : seen) {
            wire::PacketHeader h;
            if (wire::read_header(d.bytes, h) == wire::WireError::ok && h.type == t) r.push_back(d);
        }
        return r;
    }
};

wire::Packet ping_packet(uint64_t sequence, int64_t client_id, uint16_t ping_sequence) {
    wire::Packet p;
    p.type = PacketType::ping;
    p.sequence = sequence;
    p.ping = {client_id, ping_sequence, false, 0};
    return p;
}

// ---------------------------------------------------------------- security / DoS

TEST(WeakPoint01, ReplayWindowIsNotCommittedBeforeAuthentication) {
    Harness h;
    h.server->echo = true;
    auto c = h.client(0, 1);
    ASSERT_TRUE(h.connect(c));
    // A spoofed datagram from the client's address with a huge sequence and a garbage tag.
    std::vector<uint8_t> spoof(1 + 8 + 10 + 16, 0xAB);
    wire::write_header(PacketType::payload, (uint64_t{1} << 62), 8, spoof);
    h.net.inject({c.node->address(), h.server_address, spoof});
    h.net.run_for(10 * kMs);
    EXPECT_EQ(h.drops(wire::WireError::auth_failed), 1u);
    // Genuine traffic with small sequences still flows.
    for (int i = 0; i < 5; ++i) c.node->client.send(std::vector<uint8_t>{uint8_t(i)}, c.node->clock.at(h.net.now()));
    h.net.run_for(100 * kMs);
    EXPECT_EQ(h.server->payloads.size(), 5u);
    EXPECT_EQ(c.node->payloads.size(), 5u);
    EXPECT_EQ(h.drops(DropReason::replayed), 0u);
}

TEST(WeakPoint02, ExpiredOrReusedTokensAndForeignAddressesAreRefused) {
    Harness h;
    auto c = h.client(0, 1, false);
    Capture cap;
    h.net.tap = [&](const Datagram& d) { cap(d); return true; };
    ASSERT_TRUE(c.node->client.connect(c.token, c.node->clock.at(0)));
    ASSERT_TRUE(h.connect(c));
    const Datagram request = cap.of(PacketType::request).at(0);

    // Replayed from another address: the token is bound to its first address.
    Datagram moved = request;
    moved.from = addr("198.18.7.7:7");
    h.net.inject(moved);
    h.net.run_for(10 * kMs);
    EXPECT_EQ(h.drops(DropReason::token_in_use), 1u);

    // After the connection ends, the same token cannot connect again (its keys and a
    // restarted sequence counter would repeat nonces).
    ASSERT_TRUE(c.node->client.disconnect(c.node->clock.at(h.net.now())));
    ASSERT_TRUE(h.net.run_while_not([&] { return !c.node->outcomes.empty(); }, 2 * kSec));
    // Our client refuses it itself (it sealed packets under those keys)...
    EXPECT_FALSE(c.node->client.connect(c.token, c.node->clock.at(h.net.now())));
    EXPECT_EQ(c.node->client.outcome(), Outcome::token_already_used);
    // ...and the server refuses the REQUEST of any client that would try (a reference one).
    const uint64_t in_use = h.drops(DropReason::token_in_use);
    for (int i = 0; i < 10; ++i) {
        h.net.inject(request);
        h.net.run_for(150 * kMs);
    }
    EXPECT_EQ(h.drops(DropReason::token_in_use), in_use + 10);
    EXPECT_EQ(h.server->connects.size(), 1u);

    // Past its expiry the captured REQUEST is refused before any decryption.
    h.net.run_until(h.net.now() + 3'601 * kSec, 100 * kMs);
    const uint64_t decrypts = h.server->server.handshake().token_decrypts();
    Datagram late = request;
    late.from = addr("198.18.7.8:8");
    h.net.inject(late);
    h.net.run_for(10 * kMs);
    EXPECT_EQ(h.drops(DropReason::token_expired), 1u);
    EXPECT_EQ(h.server->server.handshake().token_decrypts(), decrypts);
}

TEST(WeakPoint03, PendingRecordsAreBoundedAndFloodsBuyNoDecrypts) {
    // A large rate-limit table: a garbage source whose keyed hash shares the victim's slot is
    // limited with it (the table errs towards fewer replies), so the count below allows that.
    Harness h([](server::Config& c) {
        c.max_pending = 50;
        c.rate_limit_slots = 1u << 22;
    });
    auto victim = h.client(0, 1, false);
    Capture cap;
    h.net.tap = [&](const Datagram& d) { cap(d); return true; };
    ASSERT_TRUE(victim.node->client.connect(victim.token, victim.node->clock.at(0)));
    h.net.run_for(5 * kMs);
    const Datagram request = cap.of(PacketType::request).at(0);
    h.net.tap = {};

    // One valid REQUEST replayed from 1,000 spoofed addresses: one decrypt in all.
    for (int i = 0; i < 1000; ++i) {
        Datagram d = request;
        d.from = addr(("198.18.100." + std::to_string(i % 250) + ":" + std::to_string(1000 + i)).c_str());
        h.net.inject(d);
    }
    h.net.run_for(10 * kMs);
    EXPECT_EQ(h.server->server.handshake().token_decrypts(), 1u);
    EXPECT_EQ(h.drops(DropReason::token_in_use), 1000u);
    EXPECT_EQ(h.tx(PacketType::challenge), 1u);

    // Garbage tokens from 5,000 addresses: no pending record without a decrypted token.
    for (int i = 0; i < 5000; ++i) {
        Datagram d = request;
        d.bytes[100] ^= 0xFF;
        d.bytes[wire::kRequestTagOffset] = static_cast<uint8_t>(i);  // a distinct tag each
        d.bytes[wire::kRequestTagOffset + 1] = static_cast<uint8_t>(i >> 8);
        d.bytes[wire::kRequestTagOffset + 2] ^= 0x5A;
        d.from = addr(("198.18.101." + std::to_string(i % 250) + ":" + std::to_string(1000 + i)).c_str());
        h.net.inject(d);
    }
    h.net.run_for(10 * kMs);
    // Each one failed its decrypt, unless it shared the victim's rate-limit slot (rare).
    EXPECT_EQ(h.drops(wire::WireError::auth_failed) + h.drops(DropReason::rate_limited), 5000u);
    EXPECT_LE(h.drops(DropReason::rate_limited), 2u);
    EXPECT_LE(h.server->server.pending(), 1u);
    EXPECT_EQ(h.tx(PacketType::challenge), 1u);

    // Valid tokens from 200 addresses: the pending pool never exceeds its bound.
    std::vector<Harness::Peer> many;
    for (int i = 0; i < 200; ++i) many.push_back(h.client(10 + i % 200, 1000 + i, false));
    for (auto& p : many) {
        wire::ConnectToken t = p.parsed;
        std::vector<uint8_t> q(wire::kRequestSize);
        wire::write_request(t, q);
        h.net.inject({addr(("198.18.102." + std::to_string(&p - many.data()) + ":9").c_str()), h.server_address, q});
    }
    h.net.run_for(10 * kMs);
    EXPECT_EQ(h.server->server.pending(), 50u);

    // One source resending a valid REQUEST every millisecond gets at most one reply per 50 ms.
    auto flooder = h.client(230, 5000, false);
    std::vector<uint8_t> q(wire::kRequestSize);
    wire::write_request(flooder.parsed, q);
    const uint64_t challenges = h.tx(PacketType::challenge);
    const uint64_t decrypts_before_flooder = h.server->server.handshake().token_decrypts();
    for (int i = 0; i < 1000; ++i) {
        h.net.inject({addr("198.18.103.1:9"), h.server_address, q});
        h.net.run_for(1 * kMs);
    }
    // The pool is full of young records (the 200 above): the flooder's REQUESTs wait for one to
    // age past pending_recycle_ns (pending_full, no decrypt), then are rate-limited.
    EXPECT_LE(h.tx(PacketType::challenge) - challenges, 21u);
    EXPECT_GE(h.drops(DropReason::rate_limited) + h.drops(DropReason::pending_full), 970u);
    EXPECT_LE(h.server->server.handshake().token_decrypts() - decrypts_before_flooder, 21u);
}

TEST(WeakPoint04, RecordedRequestAndResponseCannotRecreateAConnectionLater) {
    Harness h([](server::Config& c) { c.refuse_token_reuse = false; });  // even with reuse allowed
    auto c = h.client(0, 1, false);
    Capture cap;
    h.net.tap = [&](const Datagram& d) { cap(d); return true; };
    ASSERT_TRUE(c.node->client.connect(c.token, c.node->clock.at(0)));
    ASSERT_TRUE(h.connect(c));
    ASSERT_TRUE(c.node->client.disconnect(c.node->clock.at(h.net.now())));
    ASSERT_TRUE(h.net.run_while_not([&] { return !c.node->outcomes.empty(); }, 2 * kSec));
    h.net.tap = {};
    h.net.detach(c.node.get());  // the victim is gone; an attacker replays its handshake later
    h.net.run_for(10 * kSec);
    const Datagram request = cap.of(PacketType::request).at(0);
    const Datagram response = cap.of(PacketType::response).at(0);
    h.net.inject(request);
    h.net.run_for(5 * kMs);
    h.net.inject(response);
    h.net.run_for(5 * kMs);
    EXPECT_EQ(h.server->connects.size(), 1u);  // only the original connection
    EXPECT_EQ(h.drops(DropReason::challenge_mismatch), 1u);
    h.net.attach(c.node.get());
}

TEST(WeakPoint05, NoNonceIsEverReusedUnderAKey) {
    Harness h;
    h.net.link.loss = 0.3;  // forces REQUEST/RESPONSE resends and repeated CHALLENGEs
    h.net.link.duplicate = 0.1;
    h.server->echo = true;
    auto c = h.client(0, 1, false);
    Capture cap;
    int challenges = 0;
    h.net.tap = [&](const Datagram& d) {  // the first two CHALLENGEs are lost: three under one key
        cap(d);
        wire::PacketHeader hd;
        return !(wire::read_header(d.bytes, hd) == wire::WireError::ok && hd.type == PacketType::challenge &&
                 ++challenges <= 2);
    };
    ASSERT_TRUE(c.node->client.connect(c.token, c.node->clock.at(0)));
    ASSERT_TRUE(h.connect(c));
    for (int i = 0; i < 50; ++i) {
        c.node->client.send(std::vector<uint8_t>(10, uint8_t(i)), c.node->clock.at(h.net.now()));
        h.net.run_for(20 * kMs);
    }
    h.server->server.disconnect(h.server->connects[0].id, h.server->clock.at(h.net.now()));
    h.net.run_for(2 * kSec);
    // Key = direction (one token, so one key each way); value = every distinct datagram.
    std::map<std::pair<bool, uint64_t>, std::set<std::vector<uint8_t>>> by_nonce;
    size_t encrypted = 0;
    for (const Datagram& d : cap.seen) {
        wire::PacketHeader hd;
        if (wire::read_header(d.bytes, hd) != wire::WireError::ok || hd.type == PacketType::request) continue;
        ++encrypted;
        by_nonce[{d.from == h.server_address, hd.sequence}].insert(d.bytes);
    }
    EXPECT_GT(encrypted, 100u);
    EXPECT_GE(cap.of(PacketType::challenge).size(), 3u);
    for (const auto& [nonce, datagrams] : by_nonce)
        EXPECT_EQ(datagrams.size(), 1u) << (nonce.first ? "server" : "client") << " sequence " << nonce.second;
}

TEST(WeakPoint06, DeniedIsSealedWithTheTokensKeyAndAZeroKeyDeniedIsIgnored) {
    Harness h([](server::Config& c) { c.max_clients = 1; });
    auto a = h.client(0, 1);
    ASSERT_TRUE(h.connect(a));
    auto b = h.client(1, 2);
    ASSERT_TRUE(h.net.run_while_not([&] { return !b.node->outcomes.empty(); }, 2 * kSec));
    EXPECT_EQ(b.node->outcomes[0], Outcome::denied);

    // A reference-style DENIED (zero key, protocol id 0) is forgeable: ignored by default...
    auto zero_denied = [&](const Harness::Peer& p) {
        wire::Packet d;
        d.type = PacketType::denied;
        d.sequence = 0;
        std::vector<uint8_t> out(64);
        out.resize(wire::write_packet({p.parsed.suite, 0}, crypto::Key{}, d, out));
        return Datagram{h.server_address, p.node->address(), out};
    };
    h.net.link_to[wire::AddressKey::of(h.server_address)] = LinkModel{1.0};  // the real server is silent
    auto c = h.client(2, 3);
    h.net.inject(zero_denied(c));
    h.net.run_for(100 * kMs);
    EXPECT_TRUE(c.node->outcomes.empty());
    EXPECT_EQ(c.node->client.counters().drops_of(wire::WireError::auth_failed), 1u);
    // ...and accepted only with the compatibility switch.
    client::Config compat;
    compat.accept_reference_denied = true;
    auto d = h.client(3, 4, true, {}, compat);
    h.net.inject(zero_denied(d));
    h.net.run_for(100 * kMs);
    ASSERT_EQ(d.node->outcomes.size(), 1u);
    EXPECT_EQ(d.node->outcomes[0], Outcome::denied);
}

TEST(WeakPoint07, ResponseIsCheckedForCapacityStateAndClientId) {
    Harness h([](server::Config& c) { c.max_clients = 1; });
    auto a = h.client(0, 1, false);
    auto b = h.client(1, 2, false);
    // Both are challenged before either responds.
    Capture cap;
    h.net.tap = [&](const Datagram& d) {
        cap(d);
        wire::PacketHeader hd;
        return !(wire::read_header(d.bytes, hd) == wire::WireError::ok && hd.type == PacketType::response &&
                 h.net.now() < 50 * kMs);
    };
    ASSERT_TRUE(a.node->client.connect(a.token, a.node->clock.at(0)));
    ASSERT_TRUE(b.node->client.connect(b.token, b.node->clock.at(0)));
    ASSERT_TRUE(h.net.run_while_not([&] { return a.node->connected || b.node->connected; }, 2 * kSec));
    h.net.run_for(500 * kMs);
    EXPECT_EQ(h.server->connects.size(), 1u);
    EXPECT_EQ(h.server->server.connections(), 1u);
    EXPECT_EQ(a.node->connected + b.node->connected, 1);
    auto& loser = a.node->connected ? b : a;
    ASSERT_EQ(loser.node->outcomes.size(), 1u);
    EXPECT_EQ(loser.node->outcomes[0], Outcome::denied);

    // A RESPONSE carrying another client's challenge token is refused.
    Harness h2;
    auto x = h2.client(0, 10, false);
    auto y = h2.client(1, 11, false);
    Capture cap2;
    h2.net.tap = [&](const Datagram& d) {
        cap2(d);
        wire::PacketHeader hd;
        return !(wire::read_header(d.bytes, hd) == wire::WireError::ok && hd.type == PacketType::response);
    };
    ASSERT_TRUE(x.node->client.connect(x.token, x.node->clock.at(0)));
    ASSERT_TRUE(y.node->client.connect(y.token, y.node->clock.at(0)));
    h2.net.run_for(20 * kMs);
    // Take y's RESPONSE body (its challenge token) and send it under x's keys from x's address.
    const auto responses = cap2.of(PacketType::response);
    const Datagram* from_y = nullptr;
    for (const auto& d : responses)
        if (d.from == y.node->address()) from_y = &d;
    ASSERT_TRUE(from_y);
    std::vector<uint8_t> opened = from_y->bytes;
    wire::Packet body;
    ASSERT_EQ(wire::read_packet({y.parsed.suite, y.parsed.protocol_id}, y.parsed.client_to_server_key, opened, body),
              wire::WireError::ok);
    wire::Packet forged;
    forged.type = PacketType::response;
    forged.sequence = uint64_t{1} << 63;
    forged.challenge = body.challenge;
    h2.net.tap = {};
    h2.net.inject(h2.forge(x, forged));
    h2.net.run_for(5 * kMs);
    EXPECT_EQ(h2.drops(DropReason::challenge_mismatch), 1u);
    EXPECT_EQ(h2.server->connects.size(), 0u);
    // And a RESPONSE from an address that sent no REQUEST finds no pending record.
    Datagram stray = h2.forge(x, forged);
    stray.from = addr("198.18.50.50:50");
    h2.net.inject(stray);
    h2.net.run_for(5 * kMs);
    EXPECT_EQ(h2.drops(DropReason::no_pending), 1u);
}

TEST(WeakPoint10, PongRateLimitHolds) {
    Harness h;
    auto c = h.client(0, 1);
    ASSERT_TRUE(h.connect(c));
    h.net.run_for(500 * kMs);
    const uint64_t pongs = h.tx(PacketType::pong);
    // 200 valid PINGs in one second from the client's address.
    for (int i = 0; i < 200; ++i) {
        h.net.inject(h.forge(c, ping_packet(1'000'000 + i, 1, uint16_t(i))));
        h.net.run_for(5 * kMs);
    }
    const uint64_t sent = h.tx(PacketType::pong) - pongs;
    EXPECT_LE(sent, 21u + 10u);  // ≤ 20 Hz for the flood, plus the client's own 10 Hz PINGs
    EXPECT_GE(sent, 15u);
}

// ---------------------------------------------------------------- correctness

TEST(WeakPoint11, EveryClientPingAndDisconnectIsWellFormed) {
    Harness h;
    auto c = h.client(0, 1);
    ASSERT_TRUE(h.connect(c));
    h.net.run_for(10 * kSec);
    EXPECT_GE(h.rx(PacketType::ping), 95u);
    ASSERT_TRUE(c.node->client.disconnect(c.node->clock.at(h.net.now())));
    h.net.run_for(2 * kSec);
    EXPECT_EQ(c.node->client.counters().tx[static_cast<unsigned>(PacketType::disconnect)], 10u);
    EXPECT_EQ(h.counters().total_drops() - h.drops(DropReason::unknown_peer), 0u);
    EXPECT_EQ(h.drops(DropReason::unknown_peer), 9u);  // the 9 resends after the first closed it
}

TEST(WeakPoint12, LargeClientIdsSurviveTheTrimmedEncoding) {
    for (int64_t id : {int64_t(0x0100000000000000), int64_t(0x00FF000000000000), int64_t(0x1800000000000000),
                       int64_t(-1), INT64_MIN, INT64_MAX}) {
        Harness h;
        auto c = h.client(0, id);
        ASSERT_TRUE(h.connect(c)) << id;
        EXPECT_EQ(c.node->learned_id, id);
        h.net.run_for(300 * kMs);  // our PINGs carry the id back: the server accepts them
        EXPECT_EQ(h.drops(DropReason::wrong_client_id), 0u);
        EXPECT_GE(h.rx(PacketType::ping), 2u);
    }
}

TEST(WeakPoint13, PongMetaCarriesTwoBytePingSequences) {
    Harness h;
    auto c = h.client(0, 1, false);
    Capture cap;
    h.net.tap = [&](const Datagram& d) { cap(d); return true; };
    ASSERT_TRUE(c.node->client.connect(c.token, c.node->clock.at(0)));
    ASSERT_TRUE(h.connect(c));
    h.net.run_for(40 * kSec, 5 * kMs);  // ping sequences pass 255 after 25.6 s
    size_t two_byte = 0;
    for (const Datagram& d : cap.of(PacketType::pong)) {
        std::vector<uint8_t> b = d.bytes;
        const bool from_server = d.from == h.server_address;
        const crypto::Key& key = from_server ? c.parsed.server_to_client_key : c.parsed.client_to_server_key;
        wire::PacketHeader hd;
        ASSERT_EQ(wire::read_header(b, hd), wire::WireError::ok);
        std::span<uint8_t> body;
        ASSERT_EQ(wire::open_packet({c.parsed.suite, c.parsed.protocol_id}, key, hd, b, body), wire::WireError::ok);
        EXPECT_EQ(body[0] & 0x80, 0);
        two_byte += (body[0] & 0x40) != 0;
    }
    EXPECT_GT(two_byte, 100u);
    EXPECT_GT(c.node->client.pings().samples(), 250u);  // PONGs past 255 still match their PINGs
    const server::Peer* p = h.server->server.peer(h.server->connects[0].id);
    ASSERT_TRUE(p);
    EXPECT_GT(p->pings.samples(), 250u);
}

TEST(WeakPoint14, BadPingTimeLengthsAndTrailingBytesAreDroppedWithoutSideEffects) {
    Harness h;
    auto c = h.client(0, 1);
    ASSERT_TRUE(h.connect(c));
    h.net.run_for(200 * kMs);
    h.net.link_to[wire::AddressKey::of(h.server_address)] = LinkModel{1.0};  // silence the real client
    h.net.run_for(5 * kMs);
    const uint64_t pings = h.rx(PacketType::ping);
    auto forge_body = [&](uint64_t seq, std::vector<uint8_t> body) {
        std::vector<uint8_t> out(wire::kMaxDatagramSize);
        const size_t hdr = wire::write_header(PacketType::ping, seq, 0, out);
        std::copy(body.begin(), body.end(), out.begin() + hdr);
        out.resize(wire::seal_packet({c.parsed.suite, c.parsed.protocol_id}, c.parsed.client_to_server_key, seq, out,
                                     hdr, body.size()));
        return Datagram{c.node->address(), h.server_address, out};
    };
    h.net.inject(forge_body(5000, {0x90, 1, 2, 3, 4, 5, 6, 7, 8, 9, 1, 0}));  // T = 9
    h.net.inject(forge_body(5001, {0x00, 1, 0, 0xEE}));                      // trailing byte
    h.net.run_for(5 * kMs);
    EXPECT_EQ(h.drops(wire::WireError::bad_ping_meta), 1u);
    EXPECT_EQ(h.drops(wire::WireError::trailing_bytes), 1u);
    // The same sequences are still fresh: the bad packets consumed no replay state.
    h.net.inject(h.forge(c, ping_packet(5000, 1, 77)));
    h.net.inject(h.forge(c, ping_packet(5001, 1, 78)));
    h.net.run_for(5 * kMs);
    EXPECT_EQ(h.rx(PacketType::ping), pings + 2);
}

TEST(WeakPoint15, TokenParsingIsBounded) {
    Harness h;
    auto c = h.client(0, 1, false);
    auto bad = c.token;
    wire::store_le(bad.data() + 1088, 33, 4);  // N > 32
    EXPECT_FALSE(c.node->client.connect(bad, c.node->clock.at(0)));
    EXPECT_EQ(c.node->client.outcome(), Outcome::invalid_token);
    bad = c.token;
    bad[1092] = 3;  // address type
    EXPECT_FALSE(c.node->client.connect(bad, c.node->clock.at(0)));
    bad = c.token;
    bad[0] = 'X';  // version
    EXPECT_FALSE(c.node->client.connect(bad, c.node->clock.at(0)));
    // A private part with N > 32, sealed with the server key (only the backend could do this).
    wire::PrivateConnectToken priv;
    priv.timeout_seconds = 5;
    priv.addresses.push(h.server_address);
    std::array<uint8_t, wire::kPrivateTokenSize> sealed{};
    ASSERT_EQ(wire::encode_private_token(priv, std::span(sealed).first<wire::kPrivateTokenPlainSize>()),
              wire::WireError::ok);
    wire::store_le(sealed.data() + 12, 40, 4);
    wire::ConnectToken t = c.parsed;
    wire::seal_private_token(t.suite, t.protocol_id, t.expire_ms, t.nonce, h.tokens.private_key, sealed);
    t.encrypted_private = sealed;
    std::vector<uint8_t> q(wire::kRequestSize);
    wire::write_request(t, q);
    h.net.inject({c.node->address(), h.server_address, q});
    h.net.run_for(5 * kMs);
    EXPECT_EQ(h.drops(wire::WireError::bad_address_count), 1u);
}

TEST(WeakPoint16, MultiAddressFallbackReachesTheNextServer) {
    Harness h;
    auto c = h.client(0, 1, true, {addr("198.18.0.200:40000"), h.server_address});
    ASSERT_TRUE(h.net.run_while_not([&] { return c.node->connected; }, 12 * kSec));
    EXPECT_EQ(c.node->client.address_index(), 1u);
    EXPECT_EQ(c.node->client.server_address(), h.server_address);
    // All addresses dead: the final outcome comes after the last one, not past it.
    auto d = h.client(1, 2, true, {addr("198.18.0.201:1"), addr("198.18.0.202:1")});
    ASSERT_TRUE(h.net.run_while_not([&] { return !d.node->outcomes.empty(); }, 12 * kSec));
    EXPECT_EQ(d.node->outcomes[0], Outcome::request_timed_out);
    EXPECT_EQ(d.node->client.address_index(), 1u);
    EXPECT_EQ(d.node->client.state(), client::State::disconnected);
}

TEST(WeakPoint17, ResponsePhaseTimesOutAndExpiryIsRecheckedPerAddress) {
    Harness h;
    h.net.tap = [&](const Datagram& d) {
        wire::PacketHeader hd;
        return !(wire::read_header(d.bytes, hd) == wire::WireError::ok && hd.type == PacketType::response);
    };
    auto c = h.client(0, 1);
    ASSERT_TRUE(h.net.run_while_not([&] { return !c.node->outcomes.empty(); }, 7 * kSec));
    EXPECT_EQ(c.node->outcomes[0], Outcome::response_timed_out);
    h.net.tap = {};
    // A token that expires while the first address is being tried is not carried to the next.
    h.tokens.expire_ms = h.tokens.create_ms + (h.net.now() / kMs) + 2000;
    auto d = h.client(1, 2, true, {addr("198.18.0.200:1"), h.server_address});
    ASSERT_TRUE(h.net.run_while_not([&] { return !d.node->outcomes.empty(); }, 7 * kSec));
    EXPECT_EQ(d.node->outcomes[0], Outcome::token_expired);
}

TEST(WeakPoint18, NegativeTimeoutMeansNeverAndZeroIsRejected) {
    Harness h;
    h.tokens.timeout_seconds = -1;
    auto c = h.client(0, 1);
    ASSERT_TRUE(h.connect(c));
    h.net.link.loss = 1.0;  // a minute of silence both ways
    h.net.run_for(60 * kSec, 10 * kMs);
    h.net.link.loss = 0;
    EXPECT_TRUE(h.server->disconnects.empty());
    EXPECT_TRUE(c.node->outcomes.empty());
    EXPECT_EQ(c.node->client.state(), client::State::connected);
    h.tokens.timeout_seconds = 0;
    EXPECT_THROW(h.tokens.mint(2, {h.server_address}), std::runtime_error);  // mint refuses
}

TEST(WeakPoint19, ManyPeersTimingOutOrDisconnectingTogetherAreEachRemovedOnce) {
    Harness h([](server::Config& c) { c.max_clients = 300; });
    h.tokens.timeout_seconds = 1;
    std::vector<Harness::Peer> peers;
    for (int i = 0; i < 200; ++i) peers.push_back(h.client(i, 100 + i));
    ASSERT_TRUE(h.net.run_while_not([&] { return h.server->server.connections() == 200; }, 3 * kSec));
    h.net.run_for(300 * kMs);
    // Half are told to disconnect, then the network dies: the DISCONNECT phase (1 s) and the
    // timeout (1 s) race for the same peers.
    for (int i = 0; i < 100; ++i)
        h.server->server.disconnect(*h.server->peer_of(100 + i), h.server->clock.at(h.net.now()));
    h.net.link.loss = 1.0;
    h.net.run_for(3 * kSec);
    EXPECT_EQ(h.server->server.connections(), 0u);
    std::map<int64_t, int> closed;
    for (auto& d : h.server->disconnects) ++closed[d.client_id];
    EXPECT_EQ(closed.size(), 200u);
    for (auto& [id, n] : closed) EXPECT_EQ(n, 1) << id;
}

TEST(WeakPoint20, UnconfirmedPeersCanBeDisconnectedAndPayloadConfirms) {
    {
        Harness h;
        bool disconnected = false;
        h.server->on_connect_hook = [&](server::PeerId id, int64_t) {
            disconnected = h.server->server.disconnect(id, h.server->clock.at(h.net.now()));
        };
        auto c = h.client(0, 1);
        ASSERT_TRUE(h.net.run_while_not([&] { return !h.server->disconnects.empty(); }, 3 * kSec));
        EXPECT_TRUE(disconnected);
        EXPECT_EQ(h.server->disconnects[0].reason, CloseReason::server_disconnected);
    }
    {
        Harness h;
        // The client's PINGs and PONGs never arrive; its PAYLOAD alone must confirm.
        h.net.tap = [&](const Datagram& d) {
            wire::PacketHeader hd;
            return !(d.to == h.server_address && wire::read_header(d.bytes, hd) == wire::WireError::ok &&
                     (hd.type == PacketType::ping || hd.type == PacketType::pong));
        };
        auto c = h.client(0, 1);
        ASSERT_TRUE(h.connect(c));
        const server::Peer* p = h.server->server.peer(h.server->connects[0].id);
        ASSERT_TRUE(p);
        h.net.run_for(50 * kMs);
        EXPECT_EQ(p->state, server::PeerState::unconfirmed);
        c.node->client.send(std::vector<uint8_t>{1, 2, 3}, c.node->clock.at(h.net.now()));
        h.net.run_for(20 * kMs);
        EXPECT_EQ(p->state, server::PeerState::connected);
    }
}

TEST(WeakPoint22, ClockStatisticsDoNotOverflowWithFarApartEpochs) {
    Harness h;
    h.net.link.delay_ns = 10 * kMs;
    h.net.link.jitter_ns = 2 * kMs;
    auto c = h.client(0, 1, false);
    h.server->clock.offset_ns = INT64_MAX / 2;  // ~146 years apart
    c.node->clock.offset_ns = 1'000'000;
    ASSERT_TRUE(c.node->client.connect(c.token, c.node->clock.at(0)));
    ASSERT_TRUE(h.connect(c));
    h.net.run_for(30 * kSec);
    const uint64_t server_time = h.server->clock.at(h.net.now()).ns;
    const uint64_t client_view = c.node->client.network_time(c.node->clock.at(h.net.now()).ns);
    EXPECT_LT(std::abs(static_cast<int64_t>(client_view - server_time)), static_cast<int64_t>(kMs));
    EXPECT_LT(c.node->client.clock().jitter_ns(), 5 * kMs);
}

TEST(WeakPoint23, PingWithAWrongClientIdNeitherRefreshesLivenessNorConsumesReplayState) {
    Harness h;
    auto c = h.client(0, 1);
    ASSERT_TRUE(h.connect(c));
    h.net.run_for(100 * kMs);
    const server::Peer* p = h.server->server.peer(h.server->connects[0].id);
    ASSERT_TRUE(p);
    h.net.link_to[wire::AddressKey::of(h.server_address)] = LinkModel{1.0};
    h.net.run_for(5 * kMs);
    const uint64_t last = p->last_recv_ns;
    const uint64_t pings = h.rx(PacketType::ping);
    h.net.link_to[wire::AddressKey::of(h.server_address)] = LinkModel{1.0};  // silence the real client
    h.net.run_for(50 * kMs);
    h.net.inject(h.forge(c, ping_packet(9000, 2, 1)));  // authenticated, wrong id
    h.net.run_for(5 * kMs);
    EXPECT_EQ(h.drops(DropReason::wrong_client_id), 1u);
    EXPECT_EQ(p->last_recv_ns, last);
    h.net.inject(h.forge(c, ping_packet(9000, 1, 1)));  // same sequence, right id
    h.net.run_for(5 * kMs);
    EXPECT_EQ(h.rx(PacketType::ping), pings + 1);
}

TEST(WeakPoint24, PendingRecordsTimeOutWithTheirToken) {
    Harness h;
    h.net.tap = [&](const Datagram& d) {  // CHALLENGEs never reach the client
        wire::PacketHeader hd;
        return !(wire::read_header(d.bytes, hd) == wire::WireError::ok && hd.type == PacketType::challenge);
    };
    auto c = h.client(0, 1);
    h.net.run_for(100 * kMs);
    EXPECT_EQ(h.server->server.pending(), 1u);
    ASSERT_TRUE(h.net.run_while_not([&] { return !c.node->outcomes.empty(); }, 7 * kSec));
    h.net.run_for(5 * kSec + 200 * kMs);  // token timeout is 5 s after the last REQUEST
    EXPECT_EQ(h.server->server.pending(), 0u);
}

}  // namespace
}  // namespace pomelo::test
