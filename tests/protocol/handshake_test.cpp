// The handshake as the engine runs it: replies queued in a BatchOutbox and sealed later at
// flush(), every reply checked with an independent libsodium decoder (tests/support/
// independent.hpp). These are the faults an outside peer found in the engine (issue 8): a
// DENIED no client could open, a rate limit that did not limit, token history eviction.
#include <gtest/gtest.h>

#include <deque>

#include "protocol/batch_outbox.hpp"
#include "protocol/client/client.hpp"
#include "protocol/server/server.hpp"
#include "protocol/server/token_history.hpp"
#include "protocol/wire/header.hpp"
#include "protocol/wire/request.hpp"
#include "tests/support/independent_peer.hpp"
#include "tests/support/sim_network.hpp"

namespace pomelo::test {
namespace {

constexpr uint64_t kMs = 1'000'000;

struct Sent {
    wire::Address to;
    uint16_t local;
    std::vector<uint8_t> bytes;
};

// The engine's outbox shape over plain buffers: submit() queues, flush() seals the burst.
class VectorBatchOutbox final : public BatchOutbox {
public:
    explicit VectorBatchOutbox(crypto::BurstAead& aead, size_t buffers = 64)
        : BatchOutbox(aead, 32), storage_(buffers, std::vector<uint8_t>(wire::kMaxDatagramSize)) {
        for (auto& b : storage_) free_.push_back(&b);
    }
    std::vector<Sent> sent;
    size_t free_buffers() const { return free_.size(); }

protected:
    Buffer next_buffer() override {
        if (free_.empty()) return {};
        std::vector<uint8_t>* b = free_.back();
        free_.pop_back();
        return {std::span(*b), b};
    }
    void transmit(std::span<SealedDatagram> datagrams) override {
        for (const SealedDatagram& d : datagrams) {
            if (!d.bytes.empty()) sent.push_back({d.to, d.local, {d.bytes.begin(), d.bytes.end()}});
            free_.push_back(static_cast<std::vector<uint8_t>*>(d.context));
        }
    }
    void release(Buffer b) override { free_.push_back(static_cast<std::vector<uint8_t>*>(b.context)); }

private:
    std::vector<std::vector<uint8_t>> storage_;
    std::vector<std::vector<uint8_t>*> free_;
};

// A client's sends, captured.
struct CaptureOutbox final : ImmediateOutbox {
    std::deque<std::vector<uint8_t>> sent;
    void transmit(const wire::Address&, std::span<const uint8_t> d, wire::PacketType) override {
        sent.emplace_back(d.begin(), d.end());
    }
};

struct Bed {
    TokenFactory tokens;
    wire::Address server_address = addr("198.18.0.1:40000");
    server::Events events;
    std::unique_ptr<crypto::BurstAead> aead = crypto::make_best_burst();
    VectorBatchOutbox out{*aead};
    std::unique_ptr<server::Server> server;
    uint64_t t_ns = 1'000 * kMs;

    explicit Bed(std::function<void(server::Config&)> tune = {}) {
        server::Config c = tokens.server_config(server_address);
        if (tune) tune(c);
        server = std::make_unique<server::Server>(c, events, out);
        server->start(now());
    }
    Now now() const { return {t_ns, tokens.create_ms + t_ns / kMs}; }
    // Delivers one datagram to the server, then flushes as the engine does after a pass.
    void deliver(std::vector<uint8_t> bytes, const wire::Address& from, uint16_t local = 0) {
        server::RxDatagram d{std::span(bytes), from, local};
        server->receive(std::span(&d, 1), now());
        out.flush();
    }
};

struct TestClient {
    client::Events events;
    CaptureOutbox out;
    client::Client client{client::Config{}, events, out};
    wire::Address address;
    std::array<uint8_t, wire::kConnectTokenSize> token;
    wire::ConnectToken parsed;

    TestClient(Bed& bed, int64_t id, const char* address_text) : address(addr(address_text)) {
        token = bed.tokens.mint(id, {bed.server_address});
        EXPECT_EQ(wire::decode_connect_token(token, parsed), wire::WireError::ok);
        EXPECT_TRUE(client.connect(token, bed.now()));
    }
    std::vector<uint8_t> take() {
        EXPECT_FALSE(out.sent.empty());
        auto d = out.sent.front();
        out.sent.pop_front();
        return d;
    }
    const indep::Key& s2c() const { return parsed.server_to_client_key.bytes; }
    // Runs the handshake through the server until connected (CHALLENGE, RESPONSE, PING).
    void connect(Bed& bed) {
        bed.deliver(take(), address);  // REQUEST
        ASSERT_FALSE(bed.out.sent.empty());
        for (Sent& s : bed.out.sent) client.receive(s.bytes, bed.server_address, bed.now());
        bed.out.sent.clear();
        bed.deliver(take(), address);  // RESPONSE
        for (Sent& s : bed.out.sent) client.receive(s.bytes, bed.server_address, bed.now());
        bed.out.sent.clear();
        EXPECT_EQ(client.state(), client::State::connected);
        out.sent.clear();
    }
};

// Issue 8 fault 1: with the server full, a DENIED queued for a batch seal was sealed after the
// key it pointed to was destroyed. It must open under the token's server-to-client key with
// the real protocol id (§12.9), and the refused client must end `denied`.
TEST(EngineHandshake, DeniedSealedLaterOpensUnderTheTokenKey) {
    Bed bed([](server::Config& c) { c.max_clients = 1; });
    TestClient first(bed, 1, "198.18.1.1:5000");
    first.connect(bed);
    ASSERT_EQ(bed.server->connections(), 1u);

    for (int i = 0; i < 3; ++i) {
        TestClient refused(bed, 100 + i, ("198.18.1." + std::to_string(2 + i) + ":5000").c_str());
        bed.deliver(refused.take(), refused.address);
        ASSERT_EQ(bed.out.sent.size(), 1u);
        const auto opened = indep::open(bed.out.sent[0].bytes, refused.s2c(), bed.tokens.protocol_id);
        ASSERT_TRUE(opened) << "DENIED does not authenticate under the token's key";
        EXPECT_EQ(opened->type, 1u);  // DENIED
        EXPECT_TRUE(opened->body.empty());
        EXPECT_TRUE(opened->sequence >> 63) << "pre-connection sequences carry bit 63 (§9)";
        refused.client.receive(bed.out.sent[0].bytes, bed.server_address, bed.now());
        EXPECT_EQ(refused.client.outcome(), client::Outcome::denied);
        bed.out.sent.clear();
        bed.t_ns += 200 * kMs;
    }
    EXPECT_EQ(bed.out.free_buffers(), 64u);
}

// A pending record recycled (pool of 1) while the CHALLENGE of its previous owner is still
// queued: each CHALLENGE still opens under its own client's key.
TEST(EngineHandshake, RecycledPendingRecordDoesNotChangeAQueuedChallenge) {
    Bed bed([](server::Config& c) {
        c.max_pending = 1;
        c.pending_recycle_ns = 0;  // recycled however young
    });
    TestClient a(bed, 1, "198.18.1.1:5000"), b(bed, 2, "198.18.1.2:5000");
    std::vector<uint8_t> qa = a.take(), qb = b.take();
    server::RxDatagram burst[2] = {{std::span(qa), a.address, 0}, {std::span(qb), b.address, 0}};
    bed.server->receive(std::span(burst, 2), bed.now());
    bed.out.flush();  // both CHALLENGEs sealed after the second REQUEST recycled the record
    ASSERT_EQ(bed.out.sent.size(), 2u);
    EXPECT_TRUE(indep::open(bed.out.sent[0].bytes, a.s2c(), bed.tokens.protocol_id));
    EXPECT_TRUE(indep::open(bed.out.sent[1].bytes, b.s2c(), bed.tokens.protocol_id));
}

// A storm of connects larger than the pending pool (every client of a restarted server at
// once): handshakes in progress keep their records, the REQUESTs beyond the pool are dropped
// before any decrypt (pending_full) and served when their clients resend, and every client
// connects. Recycling young records instead left RESPONSEs with no record (no_pending):
// connect-storm lost 722 of 5,000 clients that way.
TEST(EngineHandshake, AStormLargerThanThePendingPoolWaitsInsteadOfBreakingHandshakes) {
    constexpr int kClients = 10, kPending = 4;
    Bed bed([](server::Config& c) {
        c.max_pending = kPending;
        c.max_clients = 64;
    });
    std::vector<std::unique_ptr<TestClient>> clients;
    for (int i = 0; i < kClients; ++i)
        clients.push_back(std::make_unique<TestClient>(bed, i + 1, ("198.18.1." + std::to_string(i + 1) + ":5000").c_str()));
    auto& h = bed.server->handshake();
    int connected = 0;
    for (int round = 0; round < 10 && connected < kClients; ++round) {
        const uint64_t decrypts = h.token_decrypts(), full = h.counters().drops_of(DropReason::pending_full);
        // Every client's latest datagram (REQUEST or RESPONSE) in one burst.
        std::vector<std::vector<uint8_t>> bytes;
        std::vector<server::RxDatagram> burst;
        for (auto& c : clients) {
            c->client.update(bed.now());
            while (c->out.sent.size() > 1) c->out.sent.pop_front();
            if (c->client.state() == client::State::connected) continue;
            bytes.push_back(c->take());
        }
        size_t k = 0;
        for (auto& c : clients)
            if (c->client.state() != client::State::connected) burst.push_back({std::span(bytes[k++]), c->address, 0});
        bed.server->receive(std::span(burst), bed.now());
        bed.out.flush();
        EXPECT_LE(h.token_decrypts() - decrypts, uint64_t{kPending}) << "round " << round;  // none wasted
        EXPECT_LE(bed.server->pending(), uint32_t{kPending});
        if (round == 0) {
            EXPECT_EQ(h.counters().drops_of(DropReason::pending_full) - full, uint64_t{kClients - kPending});
        }
        for (Sent& d : bed.out.sent)
            for (auto& c : clients)
                if (d.to == c->address) c->client.receive(std::span(d.bytes), bed.server_address, bed.now());
        bed.out.sent.clear();
        bed.t_ns += 110 * kMs;  // past the clients' resend interval and the per-source reply spacing
        connected = 0;
        for (auto& c : clients) connected += c->client.state() == client::State::connected;
    }
    EXPECT_EQ(connected, kClients);
    EXPECT_EQ(h.counters().drops_of(DropReason::no_pending), 0u);
    EXPECT_EQ(h.token_decrypts(), uint64_t{kClients});  // one each: no record was lost and redone
}

// Holders of valid tokens who fill the pending pool and keep resending their REQUESTs (cheap:
// served from the record, no decrypt) cannot lock others out: a record ages from its first
// REQUEST, so after pending_recycle_ns the oldest is recycled for a newcomer, who connects.
TEST(EngineHandshake, ResendsDoNotKeepAFullPendingPoolFromNewcomers) {
    constexpr int kPending = 4;
    Bed bed([](server::Config& c) { c.max_pending = kPending; });
    std::vector<std::unique_ptr<TestClient>> holders;
    std::vector<std::vector<uint8_t>> requests;
    for (int i = 0; i < kPending; ++i) {
        holders.push_back(std::make_unique<TestClient>(bed, i + 1, ("198.18.2." + std::to_string(i + 1) + ":7000").c_str()));
        requests.push_back(holders.back()->take());
        bed.deliver(requests.back(), holders.back()->address);
    }
    ASSERT_EQ(bed.server->pending(), uint32_t{kPending});
    TestClient newcomer(bed, 100, "198.18.3.1:7000");
    const std::vector<uint8_t> request = newcomer.take();
    bool challenged = false;
    for (int round = 0; round < 20 && !challenged; ++round) {  // 150 ms apart: 3 s
        for (int i = 0; i < kPending; ++i) bed.deliver(requests[i], holders[i]->address);
        bed.out.sent.clear();
        bed.deliver(request, newcomer.address);
        for (Sent& d : bed.out.sent) {
            if (!(d.to == newcomer.address)) continue;
            challenged = true;
            newcomer.client.receive(std::span(d.bytes), bed.server_address, bed.now());
        }
        bed.out.sent.clear();
        bed.t_ns += 150 * kMs;
    }
    ASSERT_TRUE(challenged) << "the holders kept every record by resending";
    EXPECT_GT(bed.server->handshake().counters().drops_of(DropReason::pending_full), 0u);  // it waited first
    bed.deliver(newcomer.take(), newcomer.address);  // its RESPONSE
    EXPECT_EQ(bed.server->handshake().connected(), 1u);
}

// A DENIED at RESPONSE time (capacity re-check, §19.7) after the pending record is released.
TEST(EngineHandshake, DeniedAtResponseOpensUnderTheTokenKey) {
    Bed bed([](server::Config& c) { c.max_clients = 1; });
    TestClient a(bed, 1, "198.18.1.1:5000"), b(bed, 2, "198.18.1.2:5000");
    bed.deliver(a.take(), a.address);
    bed.deliver(b.take(), b.address);
    ASSERT_EQ(bed.out.sent.size(), 2u);
    a.client.receive(bed.out.sent[0].bytes, bed.server_address, bed.now());
    b.client.receive(bed.out.sent[1].bytes, bed.server_address, bed.now());
    bed.out.sent.clear();
    bed.deliver(a.take(), a.address);  // a connects, the server is full
    bed.out.sent.clear();
    bed.deliver(b.take(), b.address);  // b's RESPONSE: DENIED at once (it authenticated)
    ASSERT_EQ(bed.out.sent.size(), 1u);
    const auto opened = indep::open(bed.out.sent[0].bytes, b.s2c(), bed.tokens.protocol_id);
    ASSERT_TRUE(opened);
    EXPECT_EQ(opened->type, 1u);
}

// Issue 8 fault 4: 20 identical valid REQUESTs back to back from one source, 10 rounds 250 ms
// apart: one CHALLENGE per round (§12.11: at least 100 ms between replies per source), and
// the rest counted as rate_limited. Odd and even clock values alike (the old stamp, now | 1,
// made `now - last` wrap for an even `now` read once for the whole burst).
TEST(EngineHandshake, RateLimitAllowsOneReplyPerIntervalPerSource) {
    for (uint64_t start : {uint64_t{1'000'000'000}, uint64_t{1'000'000'001}}) {
        Bed bed;
        bed.t_ns = start;
        TestClient c(bed, 7, "198.18.1.7:5000");
        const std::vector<uint8_t> request = c.take();
        for (int round = 0; round < 10; ++round) {
            // As the control thread sees them: one burst, one clock reading.
            std::vector<std::vector<uint8_t>> copies(20, request);
            std::vector<server::RxDatagram> burst;
            for (auto& r : copies) burst.push_back({std::span(r), c.address});
            bed.server->receive(burst, bed.now());
            bed.out.flush();
            EXPECT_EQ(bed.out.sent.size(), 1u) << "round " << round;
            bed.out.sent.clear();
            bed.t_ns += 250 * kMs + 1;  // odd and even clock readings
        }
        EXPECT_EQ(bed.server->counters().drops_of(DropReason::rate_limited), 10u * 19u);
        EXPECT_EQ(bed.server->handshake().token_decrypts(), 1u) << "resends are served from the pending record";
    }
}

// Key rotation (Config::more_private_keys): a token under any listed key connects, the keys
// tried in order (each try one decrypt); a token under an unlisted key opens under none.
TEST(EngineHandshake, RotatedKeysAreTriedInOrder) {
    const crypto::Key newer = crypto::Key::random(), older = crypto::Key::random();
    Bed bed([&](server::Config& c) {
        c.private_key = newer;
        c.more_private_keys = {older};
    });
    bed.tokens.private_key = newer;
    TestClient first(bed, 1, "198.18.1.1:5000");
    first.connect(bed);
    EXPECT_EQ(bed.server->handshake().token_decrypts(), 1u) << "the first key opens it";
    bed.tokens.private_key = older;
    TestClient second(bed, 2, "198.18.1.2:5000");
    second.connect(bed);
    EXPECT_EQ(bed.server->handshake().token_decrypts(), 3u) << "the first key fails, the second opens it";
    bed.tokens.private_key = crypto::Key::random();
    TestClient stranger(bed, 3, "198.18.1.3:5000");
    bed.deliver(stranger.take(), stranger.address);
    EXPECT_TRUE(bed.out.sent.empty());
    EXPECT_EQ(bed.server->counters().drops_of(wire::WireError::auth_failed), 1u);
    EXPECT_EQ(bed.server->handshake().token_decrypts(), 5u) << "tried under both keys";
}

// A REQUEST replayed from other addresses never gets a reply (token_in_use) and never stamps
// the limiter of the real client.
TEST(EngineHandshake, ReplayFromOtherSourcesNeitherRepliesNorLocksTheClientOut) {
    Bed bed;
    TestClient c(bed, 7, "198.18.1.7:5000");
    const std::vector<uint8_t> request = c.take();
    for (int i = 0; i < 50; ++i) bed.deliver(request, addr(("198.18.2." + std::to_string(i + 1) + ":9").c_str()));
    ASSERT_EQ(bed.out.sent.size(), 1u);  // the first source got its CHALLENGE (it presented the token first)
    bed.out.sent.clear();
    EXPECT_EQ(bed.server->counters().drops_of(DropReason::token_in_use), 49u);
}

// Shutdown: handshake datagrams are refused once the server is stopping.
TEST(EngineHandshake, NoHandshakeIsAcceptedOnceStopping) {
    Bed bed;
    TestClient a(bed, 1, "198.18.1.1:5000"), b(bed, 2, "198.18.1.2:5000");
    a.connect(bed);
    bed.deliver(b.take(), b.address);
    ASSERT_EQ(bed.out.sent.size(), 1u);
    b.client.receive(bed.out.sent[0].bytes, bed.server_address, bed.now());
    bed.out.sent.clear();
    bed.server->shutdown(bed.now());
    bed.out.flush();
    bed.out.sent.clear();
    bed.deliver(b.take(), b.address);  // RESPONSE after shutdown started
    EXPECT_EQ(bed.server->connections(), 1u);  // only a, disconnecting
    EXPECT_EQ(bed.server->handshake().connected(), 1u);
    EXPECT_GE(bed.server->counters().drops_of(DropReason::server_stopped), 1u);
}

// The local endpoint a handshake came in on is where every reply leaves from (several --bind).
TEST(EngineHandshake, RepliesLeaveFromTheEndpointTheHandshakeCameIn) {
    Bed bed;
    TestClient c(bed, 1, "198.18.1.1:5000");
    bed.deliver(c.take(), c.address, 3);
    ASSERT_EQ(bed.out.sent.size(), 1u);
    EXPECT_EQ(bed.out.sent[0].local, 3u);
    c.client.receive(bed.out.sent[0].bytes, bed.server_address, bed.now());
    bed.out.sent.clear();
    bed.deliver(c.take(), c.address, 3);
    ASSERT_FALSE(bed.out.sent.empty());
    for (const Sent& s : bed.out.sent) EXPECT_EQ(s.local, 3u);
}

// A token that expires between its CHALLENGE and its RESPONSE starts no connection (the
// history forgets expired tokens, so expiry must hold at RESPONSE too).
TEST(EngineHandshake, ATokenExpiredByItsResponseStartsNoConnection) {
    Bed bed;
    bed.tokens.expire_ms = bed.tokens.create_ms + 1'000 + 2'000;  // 2 s after the bed's start
    TestClient c(bed, 1, "198.18.1.1:5000");
    bed.deliver(c.take(), c.address);
    ASSERT_EQ(bed.out.sent.size(), 1u);
    c.client.receive(bed.out.sent[0].bytes, bed.server_address, bed.now());
    bed.out.sent.clear();
    const std::vector<uint8_t> response = c.take();
    bed.t_ns += 3'000 * kMs;  // within the pending record's life (5 s token timeout), past expiry
    bed.deliver(response, c.address);
    EXPECT_EQ(bed.server->connections(), 0u);
    EXPECT_EQ(bed.server->counters().drops_of(DropReason::token_expired), 1u);
}

// ---------------------------------------------------------------- token history (§12.10)

server::TokenTag tag(uint8_t i) {
    server::TokenTag t{};
    t[0] = i;
    t[1] = 0x5a;
    return t;
}

TEST(TokenHistory, NeverEvictsALiveConnectedToken) {
    server::TokenHistory h(4);
    const wire::AddressKey a{};
    for (uint8_t i = 0; i < 4; ++i) ASSERT_EQ(h.mark_connected(tag(i), a, 10'000, 0), server::TokenHistory::Mark::marked);
    EXPECT_FALSE(h.remember(tag(9), a, 10'000, 5'000)) << "full of live connected tokens: refuse";
    for (uint8_t i = 0; i < 4; ++i) EXPECT_TRUE(h.find(tag(i)) && h.find(tag(i))->connected);
    EXPECT_TRUE(h.remember(tag(9), a, 20'000, 10'000)) << "once they expired there is room";
    EXPECT_TRUE(h.find(tag(9)));
}

TEST(TokenHistory, EvictsExpiredFirstThenOldestUnconnected) {
    server::TokenHistory h(3);
    const wire::AddressKey a{};
    ASSERT_TRUE(h.remember(tag(1), a, 50'000, 0));       // seen, oldest
    ASSERT_EQ(h.mark_connected(tag(2), a, 1'000, 0), server::TokenHistory::Mark::marked);  // connected, expires soon
    ASSERT_TRUE(h.remember(tag(3), a, 50'000, 0));       // seen
    ASSERT_TRUE(h.remember(tag(4), a, 50'000, 2'000));   // the expired connected one goes
    EXPECT_FALSE(h.find(tag(2)));
    EXPECT_TRUE(h.find(tag(1)) && h.find(tag(3)) && h.find(tag(4)));
    ASSERT_EQ(h.mark_connected(tag(3), a, 50'000, 2'000), server::TokenHistory::Mark::marked);
    EXPECT_EQ(h.mark_connected(tag(3), a, 50'000, 2'000), server::TokenHistory::Mark::already_connected);
    ASSERT_TRUE(h.remember(tag(5), a, 50'000, 2'000));  // the oldest unconnected (1) goes
    EXPECT_FALSE(h.find(tag(1)));
    EXPECT_TRUE(h.find(tag(3)) && h.find(tag(3))->connected);
    ASSERT_TRUE(h.remember(tag(6), a, 50'000, 2'000));  // then 4, never the connected 3
    EXPECT_FALSE(h.find(tag(4)));
    EXPECT_TRUE(h.find(tag(3)));
}

// The reviewer's sequence: an unconnected token, then many tokens that connect and expire one
// after another. The unconnected entry must stay evictable (the old FIFO dropped it once the
// ring filled with stale items, and the table then filled with entries nothing could evict,
// refusing every new token for ever).
TEST(TokenHistory, ChurnNeverStrandsEntries) {
    server::TokenHistory h(4);
    const wire::AddressKey a{};
    uint64_t now = 0;
    for (int i = 0; i < 5000; ++i) {
        now += 10;
        server::TokenTag t{};
        t[0] = static_cast<uint8_t>(i);
        t[1] = static_cast<uint8_t>(i >> 8);
        if (i % 10 == 0) {  // a token that never connects (DENIED, abandoned handshake), long-lived
            ASSERT_TRUE(h.remember(t, a, 1'000'000'000, now)) << "refused at " << i;
            continue;
        }
        ASSERT_TRUE(h.remember(t, a, now + 5, now)) << "refused at " << i;
        ASSERT_EQ(h.mark_connected(t, a, now + 5, now), server::TokenHistory::Mark::marked);
    }
    EXPECT_LE(h.size(), 4u);
    // Unconnected entries also go by expiry.
    server::TokenHistory g(2);
    ASSERT_TRUE(g.remember(tag(1), a, 100, 0));
    ASSERT_TRUE(g.remember(tag(2), a, 100, 0));
    ASSERT_EQ(g.mark_connected(tag(2), a, 100, 0), server::TokenHistory::Mark::marked);
    ASSERT_TRUE(g.remember(tag(3), a, 500, 200));  // both expired: room without evicting
    EXPECT_FALSE(g.find(tag(1)));
    EXPECT_FALSE(g.find(tag(2)));
}

// The interval is 100 ms (§12.11): a resend at +99 ms is limited, at +100 ms answered.
TEST(EngineHandshake, RateLimitIntervalIsOneHundredMilliseconds) {
    Bed bed;
    TestClient c(bed, 7, "198.18.1.7:5000");
    const std::vector<uint8_t> request = c.take();
    bed.deliver(request, c.address);
    ASSERT_EQ(bed.out.sent.size(), 1u);
    bed.t_ns += 99 * kMs;
    bed.deliver(request, c.address);
    EXPECT_EQ(bed.out.sent.size(), 1u) << "answered 99 ms after the last reply";
    bed.t_ns += 1 * kMs;
    bed.deliver(request, c.address);
    EXPECT_EQ(bed.out.sent.size(), 2u) << "not answered 100 ms after the last reply";
}

// Many tokens through a small history: a token that connected is refused until it expires,
// whatever came through in between (the old ring forgot it after `capacity` new tokens and
// the same keys then restarted their sequences at 0, §9).
TEST(EngineHandshake, AConnectedTokenIsRefusedWhateverTrafficFollows) {
    Bed bed([](server::Config& c) {
        c.token_history = 8;
        c.max_clients = 64;
    });
    TestClient first(bed, 1, "198.18.1.1:5000");
    first.connect(bed);
    server::Peer* p = bed.server->shard().find(first.address);
    ASSERT_NE(p, nullptr);
    bed.server->disconnect(bed.server->shard().id_of(*p), bed.now());
    for (int i = 0; i < 20; ++i) {  // 20 other tokens, each opened once
        bed.t_ns += 10 * kMs;
        TestClient other(bed, 100 + i, ("198.18.3." + std::to_string(i + 1) + ":5000").c_str());
        bed.deliver(other.take(), other.address);
    }
    for (int i = 0; i < 20; ++i) {  // the 10 DISCONNECTs at 10 Hz
        bed.t_ns += 100 * kMs;
        bed.server->update(bed.now());
        bed.out.flush();
    }
    bed.out.sent.clear();
    ASSERT_EQ(bed.server->shard().find(first.address), nullptr);
    std::vector<uint8_t> request(wire::kRequestSize);
    ASSERT_EQ(wire::write_request(first.parsed, request), request.size());
    bed.deliver(request, first.address);
    bed.deliver(request, addr("198.18.9.9:777"));
    EXPECT_TRUE(bed.out.sent.empty()) << "a token that connected got a CHALLENGE again";
    EXPECT_EQ(bed.server->counters().drops_of(DropReason::token_in_use), 2u);
}

}  // namespace
}  // namespace pomelo::test

namespace pomelo::test {
namespace {

// The connected sets (client ids, addresses) start at 1024 entries and grow with the
// connections up to max_clients: past the start size, a connected client id and a connected
// address are still recognised, and the limit still holds.
TEST(EngineHandshake, ConnectedSetsGrowPastTheirStartSizeUpToTheLimit) {
    constexpr int kLimit = 2500;
    Bed bed([](server::Config& c) { c.max_clients = kLimit; });
    auto address = [](int i) { return "198.18." + std::to_string(1 + i / 250) + "." + std::to_string(1 + i % 250) + ":5000"; };
    auto connect = [&](int i) {
        bed.t_ns += 101 * kMs;  // past the handshake rate limit of any source sharing its slot
        TestClient c(bed, 1 + i, address(i).c_str());
        c.connect(bed);
    };
    for (int i = 0; i < kLimit - 1; ++i) {
        connect(i);
        ASSERT_FALSE(HasFatalFailure()) << i;
    }
    ASSERT_EQ(bed.server->connections(), static_cast<uint32_t>(kLimit - 1));
    // The last client id to connect (well past the start size), from a new address with a
    // new token: refused, its id is connected.
    bed.t_ns += 101 * kMs;
    TestClient dup(bed, kLimit - 1, "198.18.200.1:5000");
    const uint64_t before = bed.server->counters().drops_of(DropReason::client_id_connected);
    bed.deliver(dup.take(), dup.address);
    EXPECT_TRUE(bed.out.sent.empty());
    EXPECT_EQ(bed.server->counters().drops_of(DropReason::client_id_connected), before + 1);
    // The limit-th connects; one more is DENIED (the server is full).
    connect(kLimit - 1);
    ASSERT_EQ(bed.server->connections(), static_cast<uint32_t>(kLimit));
    bed.t_ns += 101 * kMs;
    TestClient extra(bed, kLimit + 1, "198.18.200.2:5000");
    const uint64_t denied = bed.server->counters().tx[static_cast<unsigned>(wire::PacketType::denied)];
    bed.deliver(extra.take(), extra.address);
    EXPECT_EQ(bed.server->counters().tx[static_cast<unsigned>(wire::PacketType::denied)], denied + 1);
    EXPECT_EQ(bed.server->connections(), static_cast<uint32_t>(kLimit));
}

}  // namespace
}  // namespace pomelo::test
