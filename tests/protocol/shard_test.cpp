// The shard's peer storage grows in chunks with the peers it holds: a limit of a million
// costs nothing until peers connect, peers stay where they are (pointers, PeerIds, address
// lookups) while it grows, the limit is exact, and freed slots are wiped and reused.
// Real shard, real AEAD, real codec: datagrams are sealed as a client would and the
// shard's replies are opened with the client's keys.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <deque>
#include <memory>
#include <vector>

#include "protocol/server/shard.hpp"

namespace pomelo::test {
namespace {

using server::Peer;
using server::PeerId;
using server::Shard;
using wire::PacketType;

struct Hooks : server::ShardHooks {
    std::vector<std::pair<PeerId, std::vector<uint8_t>>> payloads;
    std::vector<PeerId> closed;
    void on_connect(PeerId, int64_t, const wire::UserData&) override {}
    void on_payload(PeerId id, std::span<const uint8_t> p) override { payloads.push_back({id, {p.begin(), p.end()}}); }
    void on_close(PeerId id, int64_t, const wire::Address&, server::CloseReason) override { closed.push_back(id); }
};

struct Sent {
    wire::Address to;
    std::vector<uint8_t> bytes;
    PacketType type;
};

struct Capture final : ImmediateOutbox {
    std::deque<Sent> sent;
    void transmit(const wire::Address& to, std::span<const uint8_t> d, PacketType type) override {
        sent.push_back({to, {d.begin(), d.end()}, type});
    }
};

constexpr uint64_t kStart = 1'000'000'000;

struct Bed {
    server::Config config;
    Hooks hooks;
    Capture out;
    std::unique_ptr<crypto::BurstAead> aead = crypto::make_best_burst();
    Shard shard;
    std::vector<server::NewPeer> peers;  // what each peer was added with, by index
    std::vector<PeerId> ids;

    explicit Bed(uint32_t limit) : shard(config, limit, hooks, out) {}

    static server::NewPeer peer(uint32_t i) {
        server::NewPeer p;
        // Distinct addresses for up to 2^24 peers.
        p.address = wire::Address::ipv4({10, uint8_t(i >> 16), uint8_t(i >> 8), uint8_t(i)}, uint16_t(1000 + i % 50000));
        p.client_id = 5000 + i;
        p.timeout_seconds = 10;
        p.ctx = {crypto::Suite::chacha20poly1305, 0x1122334455667788ull};
        p.client_to_server_key = crypto::Key::random();
        p.server_to_client_key = crypto::Key::random();
        return p;
    }
    // Adds peers until there are `n`; every add must succeed.
    void add_up_to(uint32_t n) {
        while (peers.size() < n) {
            peers.push_back(peer(static_cast<uint32_t>(peers.size())));
            const auto id = shard.add(peers.back(), {kStart, 0});
            ASSERT_TRUE(id) << "peer " << peers.size() - 1;
            ids.push_back(*id);
        }
    }
    // A datagram peer i's client sends: `type` with `body` at `sequence`, through receive_burst.
    void receive(uint32_t i, PacketType type, std::vector<uint8_t> body, uint64_t sequence, uint64_t at_ns) {
        wire::Packet pk;
        pk.type = type;
        pk.sequence = sequence;
        pk.payload = body;
        std::vector<uint8_t> d(wire::kMaxDatagramSize);
        d.resize(wire::write_packet(peers[i].ctx, peers[i].client_to_server_key, pk, d));
        server::RxDatagram rx{d, peers[i].address};
        uint32_t handshake[1];
        shard.receive_burst(std::span(&rx, 1), {at_ns, 0}, *aead, handshake);
    }
    // Opens the last datagram sent, as peer i's client: its type and body (nullopt if it was
    // not for that client or does not open under its key).
    std::optional<wire::Packet> open_last(uint32_t i, std::vector<uint8_t>& storage) {
        if (out.sent.empty() || !(out.sent.back().to == peers[i].address)) return std::nullopt;
        storage = out.sent.back().bytes;
        wire::Packet pk;
        if (wire::read_packet(peers[i].ctx, peers[i].server_to_client_key, storage, pk) != wire::WireError::ok)
            return std::nullopt;
        return pk;
    }
};

bool all_zero(const crypto::Key& k) {
    return std::all_of(k.bytes.begin(), k.bytes.end(), [](uint8_t b) { return b == 0; });
}

TEST(ShardMemory, ALimitOfAMillionCostsOnlyWhatConnectedPeersNeed) {
    constexpr uint32_t kLimit = 1'000'000;
    Bed b(kLimit);
    EXPECT_EQ(b.shard.capacity(), kLimit);
    EXPECT_EQ(b.shard.chunks(), 0u);
    EXPECT_EQ(b.shard.allocated(), 0u);
    // The empty shard: a small index and timer wheel, no peers (the old shard: ~1 GB here).
    EXPECT_LT(b.shard.bytes_reserved(), 16u * 1024);
    EXPECT_EQ(b.shard.summary().peers[0], kLimit);  // free: what can still connect

    b.add_up_to(1);
    EXPECT_EQ(b.shard.chunks(), 1u);
    EXPECT_EQ(b.shard.allocated(), Shard::kChunkPeers);

    // 3 chunks and 5 peers: 4 chunks made, nothing more.
    b.add_up_to(3 * Shard::kChunkPeers + 5);
    EXPECT_EQ(b.shard.chunks(), 4u);
    EXPECT_EQ(b.shard.allocated(), 4 * Shard::kChunkPeers);
    const size_t bytes = b.shard.bytes_reserved();
    EXPECT_GE(bytes, size_t{4} * Shard::kChunkPeers * sizeof(Peer));
    // Per slot made: the Peer, its index and timer entries and free-list slot, under 1 KiB.
    EXPECT_LT(bytes, size_t{4} * Shard::kChunkPeers * 1024);
    EXPECT_LT(sizeof(Peer), 1024u - 128u);  // room for the index, timers and the rest of the server
    EXPECT_EQ(b.shard.summary().peers[0], kLimit - b.shard.size());
}

TEST(ShardMemory, PeersStayReachableAndWorkingWhileItGrowsPastSeveralChunks) {
    Bed b(1'000'000);
    b.add_up_to(1);
    const Peer* first = b.shard.get(b.ids[0]);
    ASSERT_NE(first, nullptr);
    b.add_up_to(5 * Shard::kChunkPeers + 7);
    ASSERT_EQ(b.shard.chunks(), 6u);
    EXPECT_EQ(b.shard.size(), 5 * Shard::kChunkPeers + 7);
    // Nothing moved: the first peer is where it was, by id and by address.
    EXPECT_EQ(b.shard.get(b.ids[0]), first);
    EXPECT_EQ(b.shard.find(b.peers[0].address), first);

    // Every peer by id and by address, the same one, with its own keys and slot.
    for (uint32_t i = 0; i < b.peers.size(); ++i) {
        Peer* p = b.shard.get(b.ids[i]);
        ASSERT_NE(p, nullptr) << i;
        ASSERT_EQ(b.shard.find(b.peers[i].address), p) << i;
        ASSERT_EQ(b.shard.id_of(*p), b.ids[i]) << i;
        ASSERT_EQ(p->client_id, b.peers[i].client_id) << i;
        ASSERT_TRUE(p->recv_key == b.peers[i].client_to_server_key) << i;
    }

    // Packets in and out for peers at the edges of every chunk.
    const uint32_t n = static_cast<uint32_t>(b.peers.size());
    std::vector<uint32_t> sample;
    for (uint32_t c = 0; c < 6; ++c)
        for (uint32_t i : {c * Shard::kChunkPeers, c * Shard::kChunkPeers + 1, (c + 1) * Shard::kChunkPeers - 1})
            if (i < n) sample.push_back(i);
    sample.push_back(n - 1);
    for (uint32_t i : sample) {
        b.hooks.payloads.clear();
        b.receive(i, PacketType::payload, {uint8_t(i), uint8_t(i >> 8), 7}, 3, kStart + 1000);
        ASSERT_EQ(b.hooks.payloads.size(), 1u) << i;
        EXPECT_EQ(b.hooks.payloads[0].first, b.ids[i]) << i;
        EXPECT_EQ(b.hooks.payloads[0].second, (std::vector<uint8_t>{uint8_t(i), uint8_t(i >> 8), 7})) << i;
        EXPECT_EQ(b.shard.get(b.ids[i])->state, server::PeerState::connected) << i;  // PAYLOAD confirms

        const uint8_t reply[] = {0xab, uint8_t(i)};
        ASSERT_TRUE(b.shard.send(b.ids[i], reply, {kStart + 2000, 0})) << i;
        std::vector<uint8_t> storage;
        const auto pk = b.open_last(i, storage);
        ASSERT_TRUE(pk) << i;
        EXPECT_EQ(pk->type, PacketType::payload);
        EXPECT_TRUE(std::equal(pk->payload.begin(), pk->payload.end(), std::begin(reply), std::end(reply))) << i;
    }

    // The timers cover every slot made: one ping interval on, every peer gets a PING.
    b.out.sent.clear();
    b.shard.update({kStart + b.config.ping_interval_ns, 0});
    EXPECT_EQ(b.out.sent.size(), n);
    std::vector<bool> pinged(n);
    for (const Sent& s : b.out.sent) {
        ASSERT_EQ(s.type, PacketType::ping);
        pinged[b.shard.id_of(*b.shard.find(s.to)).slot] = true;
    }
    EXPECT_EQ(std::count(pinged.begin(), pinged.end(), true), n);

    // Scans visit every chunk.
    uint32_t visited = 0;
    b.shard.for_each_peer([&](const Peer&) { ++visited; });
    EXPECT_EQ(visited, n);
    b.out.sent.clear();
    b.shard.disconnect_all({kStart + 2 * b.config.ping_interval_ns, 0});
    EXPECT_EQ(b.out.sent.size(), n);  // one DISCONNECT each
    EXPECT_EQ(b.shard.count(server::PeerState::disconnecting), n);
}

TEST(ShardMemory, TheLimitIsExactAndItsLastChunkIsCutThere) {
    constexpr uint32_t kLimit = Shard::kChunkPeers + 300;
    Bed b(kLimit);
    b.add_up_to(kLimit);
    EXPECT_EQ(b.shard.allocated(), kLimit);  // the second chunk holds 300, not kChunkPeers
    EXPECT_EQ(b.shard.chunks(), 2u);
    EXPECT_EQ(b.shard.summary().peers[0], 0u);
    const server::NewPeer extra = Bed::peer(kLimit);
    EXPECT_FALSE(b.shard.add(extra, {kStart, 0}));  // the (limit+1)-th
    EXPECT_EQ(b.shard.size(), kLimit);
    EXPECT_EQ(b.shard.allocated(), kLimit);
    // An address already connected is refused too, whatever the room.
    b.shard.clear();
    EXPECT_TRUE(b.shard.add(b.peers[0], {kStart, 0}));
    EXPECT_FALSE(b.shard.add(b.peers[0], {kStart, 0}));
}

TEST(ShardMemory, FreedPeersAreWipedAndTheirSlotsReusedWithoutGrowing) {
    Bed b(1'000'000);
    b.add_up_to(3 * Shard::kChunkPeers);
    ASSERT_EQ(b.shard.chunks(), 3u);
    std::vector<Peer*> where;
    for (PeerId id : b.ids) where.push_back(b.shard.get(id));

    // A client DISCONNECT frees one peer in the last chunk: keys wiped, id stale, address gone.
    const uint32_t gone = 2 * Shard::kChunkPeers + 17;
    b.receive(gone, PacketType::disconnect, {}, 1, kStart + 1000);
    ASSERT_EQ(b.hooks.closed.size(), 1u);
    EXPECT_EQ(b.hooks.closed[0], b.ids[gone]);
    EXPECT_EQ(where[gone]->state, server::PeerState::free);
    EXPECT_TRUE(all_zero(where[gone]->recv_key));
    EXPECT_TRUE(all_zero(where[gone]->send_key));
    EXPECT_EQ(b.shard.get(b.ids[gone]), nullptr);
    EXPECT_EQ(b.shard.find(b.peers[gone].address), nullptr);

    // The next peer takes that slot (a new generation): no chunk is made.
    const server::NewPeer next = Bed::peer(90'000);
    const auto id = b.shard.add(next, {kStart + 2000, 0});
    ASSERT_TRUE(id);
    EXPECT_EQ(id->slot, b.ids[gone].slot);
    EXPECT_NE(id->generation, b.ids[gone].generation);
    EXPECT_EQ(b.shard.get(*id), where[gone]);
    EXPECT_EQ(b.shard.get(b.ids[gone]), nullptr);
    EXPECT_EQ(b.shard.chunks(), 3u);

    // Everyone freed: every key of every chunk wiped; the same number connect again in the
    // same chunks.
    const size_t bytes = b.shard.bytes_reserved();
    b.shard.clear();
    EXPECT_EQ(b.shard.size(), 0u);
    for (uint32_t i = 0; i < where.size(); ++i) {
        ASSERT_TRUE(all_zero(where[i]->recv_key) && all_zero(where[i]->send_key)) << i;
        ASSERT_EQ(where[i]->state, server::PeerState::free) << i;
    }
    for (uint32_t i = 0; i < 3 * Shard::kChunkPeers; ++i) ASSERT_TRUE(b.shard.add(Bed::peer(100'000 + i), {kStart, 0}));
    EXPECT_EQ(b.shard.chunks(), 3u);
    EXPECT_EQ(b.shard.bytes_reserved(), bytes);
    ASSERT_TRUE(b.shard.add(next, {kStart, 0}));  // one more: a 4th chunk
    EXPECT_EQ(b.shard.chunks(), 4u);
}


// Anonymous resident bytes of this process (RssAnon): what the shard's growth costs the system.
size_t resident_anon() {
    FILE* f = std::fopen("/proc/self/status", "r");
    if (!f) return 0;
    char line[256];
    size_t kib = 0;
    while (std::fgets(line, sizeof line, f))
        if (std::sscanf(line, "RssAnon: %zu kB", &kib) == 1) break;
    std::fclose(f);
    return kib * 1024;
}

// The shard's part of the budget (1 KiB of server memory per connected peer, perf/bench.py's
// memory row): at the bench's 60,000 peers, its tables and the memory the process really keeps
// for them stay under 840 B per peer, leaving the rest to the handshake's connected sets and
// the token history. Growth leaves nothing behind: tables a rehash replaced are unmapped.
TEST(ShardMemory, SixtyThousandPeersCostUnder840BytesEachResident) {
    constexpr uint32_t kPeers = 60'000;
    constexpr size_t kBudget = 840;
    std::vector<server::NewPeer> made;
    made.reserve(kPeers);
    for (uint32_t i = 0; i < kPeers; ++i) made.push_back(Bed::peer(i));
    Bed b(1'000'000);
    const size_t before = resident_anon();
    for (uint32_t i = 0; i < kPeers; ++i) {
        ASSERT_TRUE(b.shard.add(made[i], {kStart, 0})) << i;
        b.out.sent.clear();  // the captured first PINGs are the test's memory, not the shard's
    }
    const size_t after = resident_anon();
    EXPECT_LE(b.shard.bytes_reserved() / kPeers, kBudget);
#if defined(__SANITIZE_ADDRESS__)
    GTEST_SKIP() << "resident memory under AddressSanitizer includes its shadow and redzones";
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
    GTEST_SKIP() << "resident memory under AddressSanitizer includes its shadow and redzones";
#endif
#endif
    ASSERT_GT(after, 0u) << "no RssAnon in /proc/self/status";
    EXPECT_LE((after - before) / kPeers, kBudget) << "resident growth " << after - before << " B for " << kPeers
                                                 << " peers; bytes_reserved " << b.shard.bytes_reserved();
}

}  // namespace
}  // namespace pomelo::test
