// Scenarios on the in-process engine bed (engine_bed.hpp): what a user can do to the server
// from outside, done by independent peers whose every check of the server's bytes is a
// libsodium open of their own. Loops are bounded by progress with generous limits; a limit
// only ends a test that is failing anyway.
#include <gtest/gtest.h>
#include <rte_cycles.h>
#include <rte_mempool.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <map>
#include <mutex>
#include <memory>
#include <string>
#include <vector>

#include "tests/engine/engine_bed.hpp"

namespace pomelo::test::bed {
namespace {

using namespace std::chrono_literals;
using Client = std::unique_ptr<BedClient>;

Client client(EngineBed& bed, unsigned index, int64_t client_id, unsigned bind = 0, uint16_t queue = 0) {
    const wire::Address server = bed.options().binds[bind];
    return std::make_unique<BedClient>(bed, index, bed.mint(client_id, server), server, queue);
}

bool connect_all(EngineBed& bed, const std::vector<BedClient*>& cs, std::chrono::milliseconds limit = 10s) {
    return bed.connect(cs, limit);
}

size_t echo(EngineBed& bed, BedClient& c, size_t n, size_t size = 200, uint32_t seed = 1) {
    return bed.echo(c, n, size, seed);
}

// What the datagrams that failed to open under the token key do open under, for messages.
std::string explain_unopened(const IndependentPeer& p) {
    std::map<std::string, unsigned> kinds;
    const indep::Key zero{};
    for (const auto& c : p.captured()) {
        if (c.authenticated) continue;
        indep::Opened o;
        const char* what = indep::open(c.datagram, zero, kProtocolId, o)                  ? "the zero key, real protocol id"
                           : indep::open(c.datagram, zero, 0, o)                         ? "the zero key, protocol id 0"
                           : indep::open(c.datagram, p.token().server_to_client, 0, o) ? "the token key, protocol id 0"
                                                                                        : "no key we know";
        const std::string type = c.datagram.empty() ? "?" : indep::type_name(c.datagram[0] >> 4);
        ++kinds[std::to_string(c.datagram.size()) + " B " + type + " opening under " + what];
    }
    std::string out;
    for (const auto& [k, n] : kinds) out += " [" + std::to_string(n) + " x " + k + "]";
    return out;
}

using engine::EngineDrop;

// An engine drop counter, workers and control thread together.
uint64_t drops(const engine::EngineSnapshot& s, EngineDrop d) { return s.workers.drops[d] + s.control.drops[d]; }

// The engine drop names other than `expected` whose counters moved between two snapshots.
std::string other_drops(const engine::EngineSnapshot& before, const engine::EngineSnapshot& after, EngineDrop expected) {
    std::string out;
    for (unsigned i = 0; i < engine::kEngineDropCount; ++i) {
        const auto d = static_cast<EngineDrop>(i);
        if (d != expected && drops(after, d) != drops(before, d))
            out += std::string(" ") + engine::name_of(d) + " +" + std::to_string(drops(after, d) - drops(before, d));
    }
    return out;
}

// ---------------------------------------------------------------- the bed itself

TEST(EngineBed, PeerConnectsEchoesAndDisconnects) {
    EngineBed bed({});
    bed.start();
    Client a = client(bed, 0, 1001);
    ASSERT_TRUE(connect_all(bed, {a.get()})) << "state " << int(a->peer.state());
    EXPECT_EQ(echo(bed, *a, 50, 300), 50u);
    EXPECT_EQ(a->peer.unauthenticated(), 0u) << explain_unopened(a->peer);
    EXPECT_EQ(a->peer.malformed_bodies(), 0u);
    EXPECT_TRUE(a->wrong_source.empty());
    a->send_disconnect();
    ASSERT_TRUE(bed.until([&] { return bed.fresh_snapshot().control.connected == 0; }, 10s));
    EXPECT_EQ(bed.join(), 0);
    EXPECT_TRUE(repeated_nonces({&a->peer}).empty());
}

// ---------------------------------------------------------------- 1. full server

// max_clients 1: every further valid REQUEST gets a DENIED that opens under its own token's
// server-to-client key with the real protocol id (§12.9).
TEST(EngineBed, FullServerDeniesUnderTheTokenKey) {
    BedOptions o;
    o.max_clients = 1;
    EngineBed bed(o);
    bed.start();
    Client first = client(bed, 0, 1);
    ASSERT_TRUE(connect_all(bed, {first.get()}));
    ASSERT_EQ(echo(bed, *first, 3), 3u);

    std::vector<Client> refused;
    for (unsigned i = 1; i <= 5; ++i) refused.push_back(client(bed, i, 100 + i));
    for (auto& c : refused) c->start();
    bed.until(
        [&] {
            return std::all_of(refused.begin(), refused.end(),
                               [](const Client& c) { return c->peer.state() == IndependentPeer::State::denied; });
        },
        5s);
    for (auto& c : refused) {
        EXPECT_TRUE(c->peer.state() == IndependentPeer::State::denied)
            << "client " << c->index << ": " << c->peer.captured().size() << " datagrams, "
            << c->peer.received(indep::denied) << " authenticated DENIED;" << explain_unopened(c->peer);
        EXPECT_EQ(c->peer.unauthenticated(), 0u) << "client " << c->index << explain_unopened(c->peer);
        EXPECT_EQ(c->peer.received(indep::challenge), 0u);
    }
    const engine::EngineSnapshot s = bed.fresh_snapshot();
    EXPECT_GE(s.control.handshake.tx[static_cast<unsigned>(wire::PacketType::denied)], refused.size());
    EXPECT_EQ(echo(bed, *first, 3, 100, 50), 3u) << "the connected peer is unaffected";
    bed.join();
}

// ---------------------------------------------------------------- 2. shutdown during handshakes

// Clients hold their RESPONSE until the engine is stopping: none of them may be accepted,
// every connected peer gets DISCONNECTs, and run() returns once they are sent, well within
// the grace (a drain that has to wait out the grace means a peer was never disconnected).
TEST(EngineBed, ShutdownDuringHandshakesAcceptsNothingNew) {
    BedOptions o;
    o.shutdown_grace_ns = 5'000'000'000;
    EngineBed bed(o);
    bed.start();
    std::vector<Client> connected, midway, late;
    for (unsigned i = 0; i < 3; ++i) connected.push_back(client(bed, i, 10 + i));
    std::vector<BedClient*> cs;
    for (auto& c : connected) cs.push_back(c.get());
    ASSERT_TRUE(connect_all(bed, cs));
    for (unsigned i = 0; i < 4; ++i) {
        midway.push_back(client(bed, 10 + i, 20 + i));
        midway.back()->hold = true;  // keeps the RESPONSE its CHALLENGE asks for
        midway.back()->send(midway.back()->peer.start());
    }
    ASSERT_TRUE(bed.until([&] {
        return std::all_of(midway.begin(), midway.end(),
                           [](const Client& c) { return c->peer.state() == IndependentPeer::State::responding; });
    })) << "every midway client has its CHALLENGE";

    bed.request_stop();
    // The first DISCONNECT at every connected peer shows the shutdown has started.
    ASSERT_TRUE(bed.until([&] {
        return std::all_of(connected.begin(), connected.end(),
                           [](const Client& c) { return c->peer.received(indep::disconnect) > 0; });
    })) << "connected peers got no DISCONNECT";
    for (auto& c : midway) c->release();
    for (unsigned i = 0; i < 3; ++i) {
        late.push_back(client(bed, 20 + i, 30 + i));
        late.back()->start();
    }
    uint64_t took_ns = 0;
    const int rc = bed.join(&took_ns);
    EXPECT_EQ(rc, 0);
    for (auto& c : midway)
        EXPECT_FALSE(c->peer.received(indep::ping) || c->peer.received(indep::payload) || c->peer.connected())
            << "client " << c->index << " was accepted after the shutdown started (" << c->peer.received(indep::ping)
            << " PINGs)";
    for (auto& c : late) EXPECT_FALSE(c->peer.connected()) << "client " << c->index << " connected during shutdown";
    for (auto& c : connected) {
        EXPECT_GE(c->peer.received(indep::disconnect), 1u);
        EXPECT_EQ(c->peer.unauthenticated(), 0u) << explain_unopened(c->peer);
    }
    EXPECT_LT(took_ns, o.shutdown_grace_ns) << "run() returned only when the grace ran out";
    std::printf("[ bed      ] shutdown: run() returned %.3f s after the stop request (grace %.1f s); DISCONNECTs "
                "per connected peer %llu\n",
                double(took_ns) / 1e9, double(o.shutdown_grace_ns) / 1e9,
                static_cast<unsigned long long>(connected[0]->peer.received(indep::disconnect)));
}

// ---------------------------------------------------------------- 3. two bind addresses

// A client of the second address must hear everything from the second address (a real
// client drops datagrams from any other source).
TEST(EngineBed, SecondBindAddressRepliesFromItself) {
    BedOptions o;
    o.binds = {server_address(0), server_address(1)};
    EngineBed bed(o);
    bed.start();
    Client first = client(bed, 0, 1, 0);
    Client second = client(bed, 1, 2, 1);
    connect_all(bed, {first.get(), second.get()}, 5s);
    EXPECT_TRUE(first->peer.connected());
    EXPECT_TRUE(second->peer.connected()) << second->wrong_source.size() << " datagrams for the client of "
                                          << server_address(1).to_string() << " came from another address";
    EXPECT_TRUE(second->wrong_source.empty()) << second->wrong_source.size() << " datagrams from another source";
    if (second->peer.connected()) {
        EXPECT_EQ(echo(bed, *second, 10), 10u);
    }
    if (first->peer.connected()) {
        EXPECT_EQ(echo(bed, *first, 10), 10u);
    }
    EXPECT_TRUE(first->wrong_source.empty());
    bed.join();
}

// ---------------------------------------------------------------- 4. full rings, empty pools

// Each resource runs out in turn while a connected peer keeps talking: the engine's mbuf
// pool, the new-peer records, the control ring. Each drop is counted under its own name (not
// as ring_full) and traffic recovers once the resource is back.
TEST(EngineBed, EmptyPoolsAndFullRingsAreCountedByNameAndRecover) {
    BedOptions o;
    o.control_ring_size = 64;
    EngineBed bed(o);
    bed.start();
    Client a = client(bed, 0, 1);
    ASSERT_TRUE(connect_all(bed, {a.get()}));
    ASSERT_EQ(echo(bed, *a, 5), 5u);

    // (a) The engine's mbuf pool: take every mbuf (the workers' caches drain as they send).
    {
        std::vector<rte_mbuf*> taken;
        auto grab = [&] {
            while (rte_mbuf* m = rte_pktmbuf_alloc(bed.server_pool())) taken.push_back(m);
        };
        grab();
        const engine::EngineSnapshot before = bed.fresh_snapshot();
        uint32_t seed = 1000;
        ASSERT_TRUE(bed.until([&] {
            grab();
            a->send_payload(pattern(100, seed++));
            return bed.snapshot().workers.drops[EngineDrop::no_mbuf] > before.workers.drops[EngineDrop::no_mbuf];
        }, 10s)) << "the worker never ran out of mbufs";
        Client b = client(bed, 1, 2);
        b->start();
        bed.until([&] { grab(); return false; }, 500ms);  // REQUESTs resent 5 times
        EXPECT_EQ(b->peer.received(indep::challenge), 0u) << "a CHALLENGE from an empty pool?";
        const engine::EngineSnapshot s = bed.fresh_snapshot();
        EXPECT_EQ(other_drops(before, s, EngineDrop::no_mbuf), "") << "an empty pool counted under another name";
        EXPECT_GT(s.control.drops[EngineDrop::no_mbuf], before.control.drops[EngineDrop::no_mbuf])
            << "CHALLENGEs the control thread could not allocate are not counted";
        for (rte_mbuf* m : taken) rte_pktmbuf_free(m);
        EXPECT_TRUE(bed.until([&] { return b->peer.connected(); }, 5s)) << "no recovery after the pool refilled";
        EXPECT_EQ(echo(bed, *a, 5, 100, 77), 5u);
    }

    // (b) The new-peer records between control and workers.
    {
        rte_mempool* records = rte_mempool_lookup("pomelo_new_peers");
        ASSERT_NE(records, nullptr);
        std::vector<void*> taken;
        void* r = nullptr;
        while (rte_mempool_get(records, &r) == 0) taken.push_back(r);
        const engine::EngineSnapshot before = bed.fresh_snapshot();
        Client c = client(bed, 2, 3);
        c->start();
        bed.until([&] { return c->peer.received(indep::challenge) > 2; }, 5s);  // RESPONSEs resent meanwhile
        EXPECT_FALSE(c->peer.connected());
        const engine::EngineSnapshot s = bed.fresh_snapshot();
        EXPECT_EQ(other_drops(before, s, EngineDrop::no_new_peer_record), "")
            << "no free new-peer record counted under another name";
        EXPECT_GT(drops(s, EngineDrop::no_new_peer_record), drops(before, EngineDrop::no_new_peer_record));
        for (void* p : taken) rte_mempool_put(records, p);
        EXPECT_TRUE(bed.until([&] { return c->peer.connected(); }, 5s)) << "no recovery once records are back";
        EXPECT_EQ(echo(bed, *c, 5), 5u);
    }

    // (c) The control ring (64 here): a burst of valid-looking REQUESTs with forged private
    // tokens, more than the control thread decrypts before the ring fills.
    {
        Bytes req = indep::request_datagram(a->peer.token());
        for (size_t i = 53; i < 53 + 1024; ++i) req[i] ^= 0x5a;  // forged: fails the AEAD
        EngineBed::Flood f = bed.make_flood(wire::Address::ipv4({198, 19, 250, 1}, 1024), server_address(0), req);
        const engine::EngineSnapshot before = bed.fresh_snapshot();
        while (f.sent < 3000) bed.flood(f, bed.peer_pool(), 64);
        bed.until([&] { return bed.towards_server() == 0; }, 10s);
        const engine::EngineSnapshot s = bed.fresh_snapshot();
        const uint64_t forwarded = s.workers.handshakes_forwarded - before.workers.handshakes_forwarded;
        const uint64_t full = drops(s, EngineDrop::control_ring_full) - drops(before, EngineDrop::control_ring_full);
        std::printf("[ bed      ] control ring: %llu of %llu forged REQUESTs forwarded, %llu dropped as control_ring_full\n",
                    static_cast<unsigned long long>(forwarded), static_cast<unsigned long long>(f.sent),
                    static_cast<unsigned long long>(full));
        EXPECT_GT(forwarded, 0u);
        EXPECT_GT(full, 0u) << "the control ring never filled";
        EXPECT_EQ(other_drops(before, s, EngineDrop::control_ring_full), "")
            << "a full control ring counted under another name";
        Client d = client(bed, 3, 4);
        EXPECT_TRUE(connect_all(bed, {d.get()}, 5s)) << "no handshake after the flood";
        EXPECT_EQ(echo(bed, *a, 5, 100, 99), 5u);
    }
    bed.join();
}

// ---------------------------------------------------------------- 5. two queues, no RSS

// net_ring has no RSS: one client address whose datagrams arrive on both queues must still be
// served by one shard, and a second handshake from the connected address must not be
// accepted into the other shard.
TEST(EngineBed, TwoQueuesWithoutRssKeepAnAddressInOneShard) {
    BedOptions o;
    o.workers = 2;
    o.queues = 2;
    EngineBed bed(o);
    bed.start();
    Client x = client(bed, 0, 1, 0, 0);
    ASSERT_TRUE(connect_all(bed, {x.get()}));
    std::vector<Bytes> sent;
    for (uint32_t i = 0; i < 20; ++i) {
        x->queue = static_cast<uint16_t>(i % 2);
        sent.push_back(pattern(100, i));
        x->send_payload(sent.back());
        bed.pump();
    }
    bed.until([&] { return x->peer.payloads().size() >= sent.size(); }, 3s);
    size_t back = 0;
    for (const Bytes& p : x->peer.payloads()) back += std::find(sent.begin(), sent.end(), p) != sent.end();
    EXPECT_EQ(back, sent.size()) << "payloads sent on queue 1 were lost (" << back << " of " << sent.size()
                                 << " echoed)";

    // A second token from the same, connected address, on the other queue.
    IndependentPeer second(bed.mint(2));
    x->queue = 1;
    const size_t seen = x->peer.captured().size();
    x->send(second.start());
    std::vector<Bytes> answers;
    bed.until([&] {
        answers.clear();
        for (size_t i = seen; i < x->peer.captured().size(); ++i)
            if (!x->peer.captured()[i].authenticated) second.receive(x->peer.captured()[i].datagram, answers);
        return second.received(indep::challenge) > 0;
    }, 1s);
    for (const Bytes& d : answers) x->send(d);  // the RESPONSE, if it got a CHALLENGE
    bed.pump_for(300ms);
    EXPECT_EQ(second.received(indep::challenge), 0u) << "a REQUEST from a connected address got a CHALLENGE";
    const engine::EngineSnapshot s = bed.fresh_snapshot();
    EXPECT_EQ(s.control.connected, 1u) << "the address holds two connections";
    uint32_t peers = 0;
    for (const auto& w : s.per_worker) peers += w.peers[1] + w.peers[2] + w.peers[3];
    EXPECT_EQ(peers, 1u) << "peers over both shards";
    bed.join();
}

// ---------------------------------------------------------------- 6. flood vs connected peers

// First measure how many junk REQUESTs per second the worker discards; then flood
// valid-looking REQUESTs (forged tokens, a new source port each, in the engine's own mbufs
// as a NIC would deliver them) at half that rate while connected peers echo: they lose nothing.
TEST(EngineBed, RequestFloodAtHalfThePrefilterRateCostsConnectedPeersNothing) {
    // A pool a real NIC's descriptors and a flood could drain: net_ring holds no receive
    // descriptors, so the pool is sized as if they had taken the rest. With the landed
    // engine's 8192-entry control ring the flood alone would hold every mbuf of it.
    BedOptions o;
    o.mbufs = 8191;
    EngineBed bed(o);
    bed.start();
    std::vector<Client> peers;
    std::vector<BedClient*> cs;
    for (unsigned i = 0; i < 4; ++i) {
        peers.push_back(client(bed, i, 1 + i));
        cs.push_back(peers.back().get());
    }
    ASSERT_TRUE(connect_all(bed, cs));

    Bytes req = indep::request_datagram(peers[0]->peer.token());
    Bytes junk = req;
    junk[1] ^= 0xff;  // wrong version: the cheapest REQUEST to refuse
    for (size_t i = 53; i < 53 + 1024; ++i) req[i] ^= 0x5a;

    // The worker's discard rate: batches that fill the cable, timed until it is empty.
    const uint64_t hz = rte_get_tsc_hz();
    uint64_t cycles = 0, frames = 0;
    for (int round = 0; round < 8; ++round) {
        std::vector<rte_mbuf*> batch;
        for (unsigned i = 0; i < 3000; ++i) batch.push_back(bed.frame(bed.peer_pool(), wire::Address::ipv4({198, 19, 251, 1}, static_cast<uint16_t>(1024 + i)), server_address(0), junk));
        const uint64_t t0 = rte_get_tsc_cycles();
        const unsigned n = bed.inject(batch.data(), static_cast<unsigned>(batch.size()));
        for (size_t i = n; i < batch.size(); ++i) rte_pktmbuf_free(batch[i]);
        while (bed.towards_server() > 0) rte_pause();
        cycles += rte_get_tsc_cycles() - t0;
        frames += n;
    }
    const double discard_rate = double(frames) * double(hz) / double(cycles);
    const double flood_rate = discard_rate / 2;

    // Flood for ~2 s while each peer sends a payload every 2 ms.
    EngineBed::Flood f = bed.make_flood(wire::Address::ipv4({198, 19, 252, 1}, 1024), server_address(0), req);
    std::vector<std::vector<Bytes>> sent(peers.size());
    const uint64_t start = rte_get_tsc_cycles(), end = start + 2 * hz, step = hz / 500;
    uint64_t next_payload = start;
    uint32_t seed = 0;
    while (rte_get_tsc_cycles() < end) {
        const uint64_t now = rte_get_tsc_cycles();
        const uint64_t due = static_cast<uint64_t>(double(now - start) / double(hz) * flood_rate);
        if (f.sent + f.not_sent < due) bed.flood(f, bed.server_pool(), static_cast<unsigned>(std::min<uint64_t>(due - f.sent - f.not_sent, 64)));
        if (now >= next_payload) {
            for (size_t p = 0; p < peers.size(); ++p) {
                sent[p].push_back(pattern(64 + seed % 900, seed));
                ++seed;
                peers[p]->send_payload(sent[p].back());
            }
            next_payload += step;
        }
        bed.pump(true);
    }
    const double seconds = double(rte_get_tsc_cycles() - start) / double(hz);
    bed.until([&] {
        for (size_t p = 0; p < peers.size(); ++p)
            if (peers[p]->peer.payloads().size() < sent[p].size()) return false;
        return true;
    }, 10s);
    const engine::EngineSnapshot s = bed.fresh_snapshot();
    std::printf("[ bed      ] worker discards %.0f junk REQUESTs/s; flood offered %.0f/s, put on the cable %.0f/s "
                "(%llu not sent: engine pool empty or cable full); forwarded to control %llu, control_ring_full %llu, "
                "no_mbuf %llu\n",
                discard_rate, flood_rate, double(f.sent) / seconds, static_cast<unsigned long long>(f.not_sent),
                static_cast<unsigned long long>(s.workers.handshakes_forwarded),
                static_cast<unsigned long long>(drops(s, EngineDrop::control_ring_full)),
                static_cast<unsigned long long>(drops(s, EngineDrop::no_mbuf)));
    for (size_t p = 0; p < peers.size(); ++p) {
        const auto& got = peers[p]->peer.payloads();
        size_t same = 0;
        for (size_t i = 0; i < std::min(got.size(), sent[p].size()); ++i) same += got[i] == sent[p][i];
        EXPECT_EQ(got.size(), sent[p].size()) << "peer " << p << " lost echoes";
        EXPECT_EQ(same, sent[p].size()) << "peer " << p << ": echoes not byte-identical in order";
        EXPECT_EQ(peers[p]->peer.unauthenticated(), 0u);
    }
    bed.join();
}

// ---------------------------------------------------------------- 7. restart, same key

// Token T connects, echoes, disconnects; the engine stops; a new engine with the same key
// (and the token journal, once server::Config has one) sees T again. Across every datagram
// both runs sent under T's server-to-client key, no (key, sequence) pair may repeat (§9).
TEST(EngineBed, RestartWithTheSameKeyNeverRepeatsANonce) {
    BedOptions o;
    const auto journal = std::filesystem::temp_directory_path() / ("pomelo-bed-journal-" + std::to_string(::getpid()));
    std::filesystem::remove(journal);
    o.token_journal = journal.string();
    EngineBed bed(o);
    bed.start();
    const Bytes token = bed.mint(7);
    auto first = std::make_unique<BedClient>(bed, 0, token, server_address(0));
    ASSERT_TRUE(connect_all(bed, {first.get()}));
    ASSERT_EQ(echo(bed, *first, 20), 20u);
    first->send_disconnect();
    ASSERT_TRUE(bed.until([&] { return bed.fresh_snapshot().control.connected == 0; }));
    const IndependentPeer run1 = first->peer;
    first.reset();
    bed.destroy_engine();

    bed.start();  // same key, same port
    BedClient again(bed, 0, token, server_address(0));
    again.start();
    bed.until([&] { return again.peer.connected() || again.peer.state() == IndependentPeer::State::denied; }, 3s);
    const bool reconnected = again.peer.connected();
    if (reconnected) {
        echo(bed, again, 20);
    }
    bed.join();
    const std::vector<std::string> repeats = repeated_nonces({&run1, &again.peer});
    std::string listing;
    for (size_t i = 0; i < std::min<size_t>(repeats.size(), 5); ++i) listing += "\n  " + repeats[i];
    EXPECT_TRUE(repeats.empty()) << repeats.size() << " (key, sequence) pairs repeated after the restart (second run "
                                 << (reconnected ? "T connected again" : "T refused") << "):" << listing;
    std::filesystem::remove(journal);
}

// ---------------------------------------------------------------- 8. timer visits

// Many connected, idle peers: the worker's timer wheel must look only at what is due, not
// re-walk the current slot on every loop (a worker loops millions of times a second; a peer's
// PING is due 10 times a second). What was due is counted independently: the PINGs the peers
// received in the window (one per timer that fired).
TEST(EngineBed, TimerVisitsAreBoundedByTimersDueNotByLoops) {
    BedOptions o;
    o.max_clients = 256;
    EngineBed bed(o);
    bed.start();
    std::vector<Client> peers;
    std::vector<BedClient*> cs;
    for (unsigned i = 0; i < 200; ++i) {
        peers.push_back(client(bed, i, 1 + i));
        cs.push_back(peers.back().get());
    }
    ASSERT_TRUE(connect_all(bed, cs, 20s));
    auto pings = [&] {
        uint64_t n = 0;
        for (auto& p : peers) n += p->peer.received(indep::ping);
        return n;
    };
    const engine::EngineSnapshot a = bed.fresh_snapshot();
    const uint64_t pings_a = pings();
    bed.pump_for(1s);
    const engine::EngineSnapshot b = bed.fresh_snapshot();
    const uint64_t due = pings() - pings_a;
    const uint64_t loops = b.workers.loops - a.workers.loops;
    const uint64_t visits = b.workers.timer_visits - a.workers.timer_visits;
    std::printf("[ bed      ] %llu worker loops, %llu PINGs due and received, %llu timer visits\n",
                static_cast<unsigned long long>(loops), static_cast<unsigned long long>(due),
                static_cast<unsigned long long>(visits));
    EXPECT_GE(due, 200u) << "200 peers pinged at 10 Hz for over a second";
    EXPECT_GT(loops, 10 * due) << "the worker should loop far more often than timers fire";
    // A walk of a slot looks at every timer sharing it (peers that connected together share
    // slots: ~8 visits per timer due here), and the snapshots' window is not exactly the
    // PINGs', hence the wide margin. Re-walking the current slot on every loop instead costs
    // about loops x timers per slot: millions.
    EXPECT_LE(visits, 64 * (due + 200)) << "timers are looked at per loop, not per timer due";
    bed.join();
}


// ---------------------------------------------------------------- the application interface

// What an Application sees on two workers: ticks at tick_hz (never bunched), messages between
// the workers (each payload goes to the other worker and back before it is answered, so its
// answer proves both rings, in order), bad posts refused, and the peer's RTT and clock offset
// (the independent peer's PONGs stamp steady_clock, which the app reads beside now_ns() to
// know the true offset).
struct Recorder {
    std::mutex mutex;
    std::vector<std::vector<std::pair<uint64_t, uint64_t>>> ticks{2};  // per worker: (tick, now_ns)
    std::vector<std::string> errors;
    std::atomic<bool> measured{false};
    uint64_t rtt_ns = 0;
    int64_t offset_error_ns = 0;
};

class ProbeApp final : public pomelo::Application {
public:
    explicit ProbeApp(Recorder& r) : r_(r) {}
    void on_connect(pomelo::WorkerContext& ctx, pomelo::PeerId peer, int64_t, const pomelo::UserData&) override {
        peer_ = peer;
        const uint8_t one = 1;
        std::lock_guard lock(r_.mutex);
        if (ctx.workers() != 2) r_.errors.push_back("workers() is not 2");
        if (ctx.post(ctx.worker(), std::span(&one, 1))) r_.errors.push_back("post to itself accepted");
        if (ctx.post(7, std::span(&one, 1))) r_.errors.push_back("post to worker 7 accepted");
        if (ctx.post(1 - ctx.worker(), {})) r_.errors.push_back("empty post accepted");
        std::vector<uint8_t> big(pomelo::kMaxMessageSize + 1);
        if (ctx.post(1 - ctx.worker(), big)) r_.errors.push_back("oversized post accepted");
        if (ctx.peer({peer.slot, peer.generation + 1})) r_.errors.push_back("peer() knows a stale id");
    }
    // [u8 hops][u32 slot][u32 generation][data]: out to the other worker and back.
    void on_payload(pomelo::WorkerContext& ctx, pomelo::PeerId peer, std::span<const uint8_t> p) override {
        std::vector<uint8_t> m(9);
        std::memcpy(&m[1], &peer.slot, 4);
        std::memcpy(&m[5], &peer.generation, 4);
        m.insert(m.end(), p.begin(), p.end());
        if (!ctx.post(1 - ctx.worker(), m)) error("post failed");
    }
    void on_message(pomelo::WorkerContext& ctx, uint16_t from, std::span<const uint8_t> m) override {
        if (from != 1 - ctx.worker()) error("message from the wrong worker");
        std::vector<uint8_t> copy(m.begin(), m.end());
        if (copy[0] == 0) {  // at the other worker: back, data reversed
            copy[0] = 1;
            std::reverse(copy.begin() + 9, copy.end());
            if (!ctx.post(from, copy)) error("post back failed");
            return;
        }
        pomelo::PeerId peer;
        std::memcpy(&peer.slot, &copy[1], 4);
        std::memcpy(&peer.generation, &copy[5], 4);
        if (!ctx.send(peer, std::span(copy).subspan(9))) error("send failed");
    }
    void on_tick(pomelo::WorkerContext& ctx, uint64_t tick) override {
        const uint64_t steady = static_cast<uint64_t>(
            std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
                .count());
        std::lock_guard lock(r_.mutex);
        r_.ticks[ctx.worker()].emplace_back(tick, ctx.now_ns());
        if (!peer_) return;
        const auto info = ctx.peer(*peer_);
        if (!info || !info->rtt_ns || !info->clock_offset_ns) return;
        r_.rtt_ns = *info->rtt_ns;
        r_.offset_error_ns = *info->clock_offset_ns - static_cast<int64_t>(steady - ctx.now_ns());
        r_.measured = true;
    }
    void on_disconnect(pomelo::WorkerContext&, pomelo::PeerId, int64_t, pomelo::CloseReason) override { peer_.reset(); }

private:
    void error(const std::string& e) {
        std::lock_guard lock(r_.mutex);
        r_.errors.push_back(e);
    }
    Recorder& r_;
    std::optional<pomelo::PeerId> peer_;
};

TEST(EngineBed, ApplicationTicksMessagesAcrossWorkersAndPeerTiming) {
    Recorder rec;
    BedOptions o;
    o.workers = 2;
    o.tick_hz = 100;
    o.app = [&rec](uint16_t) { return std::make_unique<ProbeApp>(rec); };
    EngineBed bed(o);
    bed.start();
    Client a = client(bed, 0, 77);
    ASSERT_TRUE(connect_all(bed, {a.get()}));
    std::vector<Bytes> want;
    for (uint32_t i = 0; i < 40; ++i) {
        Bytes p = pattern(64 + i, i);
        a->send_payload(p);
        std::reverse(p.begin(), p.end());
        want.push_back(p);
        bed.pump();
    }
    ASSERT_TRUE(bed.until([&] { return a->peer.payloads().size() >= want.size(); }, 10s));
    EXPECT_EQ(a->peer.payloads(), want) << "answers missing, changed or out of order";
    ASSERT_TRUE(bed.until([&] { return rec.measured.load(); }, 10s)) << "no RTT and clock offset for the peer";
    const engine::EngineSnapshot s = bed.fresh_snapshot();
    a->send_disconnect();
    EXPECT_EQ(bed.join(), 0);

    std::lock_guard lock(rec.mutex);
    EXPECT_TRUE(rec.errors.empty()) << rec.errors.front();
    EXPECT_EQ(s.workers.messages_posted, 2 * want.size());
    EXPECT_EQ(s.workers.messages_received, 2 * want.size());
    for (const auto& w : s.per_worker) EXPECT_EQ(w.messages_posted, want.size());
    EXPECT_LT(rec.rtt_ns, 100'000'000u);
    EXPECT_LT(std::abs(rec.offset_error_ns), 5'000'000) << "offset off by " << rec.offset_error_ns << " ns";
    for (const auto& ticks : rec.ticks) {
        ASSERT_GT(ticks.size(), 10u);
        for (size_t i = 1; i < ticks.size(); ++i) {
            EXPECT_GT(ticks[i].first, ticks[i - 1].first);
            // Never faster than tick_hz: tick k fires at or after start + k x 10 ms.
            EXPECT_GE(ticks[i].second - ticks[0].second, (ticks[i].first - ticks[0].first - 1) * 10'000'000);
        }
    }
}

}  // namespace
}  // namespace pomelo::test::bed
