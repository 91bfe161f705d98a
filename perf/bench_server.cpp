// The server's per-packet cost on its data path, against the bare AEAD of the same burst in
// the same run:
//   receive: a burst of 32 PAYLOADs (64 B) from 32 connections through Shard::receive_burst
//            (header -> lookup -> check -> AEAD open burst -> replay commit -> application)
//            vs BurstAead::open of the same 32 datagrams;
//   send:    32 application sends through the BatchOutbox (header + body -> AEAD seal burst)
//            vs BurstAead::seal of the same 32 bodies.
// Both sides restore their buffers each iteration (memcpy), so the ratio compares like with like.
//   handshake: the control thread's whole share of a handshake through Handshake::handle
//            (REQUEST -> CHALLENGE sealed in a burst -> RESPONSE -> accepted), timed apart from
//            the clients' share; perf/bench.py sets it against the sum of its five crypto
//            operations measured alone (bench_codec).
//
// Run: perf/server.sh (prints the ratio table recorded in perf/RESULTS.md).
#include <benchmark/benchmark.h>

#include <chrono>
#include <cstring>
#include <memory>
#include <vector>

#include "protocol/batch_outbox.hpp"
#include "protocol/client/client.hpp"
#include "protocol/server/handshake.hpp"
#include "protocol/server/shard.hpp"
#include "protocol/wire/connect_token.hpp"

namespace {

using namespace pomelo;
using namespace pomelo::server;

constexpr uint32_t kBurst = 32;
constexpr size_t kPayload = 64;

std::unique_ptr<crypto::BurstAead> backend(int which) {
    return which == 0 ? crypto::make_sodium_burst() : crypto::make_ipsec_mb_burst();
}

struct NullHooks : ShardHooks {
    uint64_t payloads = 0;
    void on_connect(PeerId, int64_t, const wire::UserData&) override {}
    void on_payload(PeerId, std::span<const uint8_t> p) override { payloads += p.size(); }
    void on_close(PeerId, int64_t, const wire::Address&, CloseReason) override {}
};

struct DiscardOutbox : BatchOutbox {
    using BatchOutbox::BatchOutbox;
    uint8_t storage[kBurst * 2][wire::kMaxDatagramSize];
    uint32_t next = 0;
    uint64_t sent = 0;
    Buffer next_buffer() override { return {std::span(storage[next++ % (kBurst * 2)], wire::kMaxDatagramSize), nullptr}; }
    void transmit(std::span<SealedDatagram> d) override { sent += d.size(); }
};

struct Fixture {
    Config config;
    NullHooks hooks;
    std::unique_ptr<crypto::BurstAead> aead;
    DiscardOutbox out;
    Shard shard;
    std::vector<PeerId> ids;
    std::vector<NewPeer> peers;
    std::vector<std::vector<uint8_t>> wire_copy;  // pristine sealed datagrams
    std::vector<std::vector<uint8_t>> work;
    std::vector<RxDatagram> burst;

    Fixture(std::unique_ptr<crypto::BurstAead> backend, crypto::Suite suite)
        : aead(std::move(backend)), out(*aead, kBurst), shard(config, 1024, hooks, out) {
        shard.set_key_preparer(aead.get());  // as the engine's workers do
        const Now now{1'000'000'000, 1'700'000'000'000};
        for (uint32_t i = 0; i < kBurst; ++i) {
            NewPeer p;
            p.address = wire::Address::ipv4({198, 18, 1, uint8_t(i + 1)}, uint16_t(40000 + i));
            p.client_id = 1000 + i;
            p.timeout_seconds = 10;
            p.ctx = {suite, 0x1122334455667788ull};
            p.client_to_server_key = crypto::Key::random();
            p.server_to_client_key = crypto::Key::random();
            ids.push_back(*shard.add(p, now));
            peers.push_back(p);
            // The datagram this peer's client would send: PAYLOAD, sequence 5.
            std::vector<uint8_t> payload(kPayload, uint8_t(i));
            wire::Packet pk;
            pk.type = wire::PacketType::payload;
            pk.sequence = 5;
            pk.payload = payload;
            std::vector<uint8_t> d(wire::kMaxDatagramSize);
            d.resize(wire::write_packet(p.ctx, p.client_to_server_key, pk, d));
            wire_copy.push_back(d);
        }
        out.flush();  // the connect PINGs
        work = wire_copy;
        for (uint32_t i = 0; i < kBurst; ++i) burst.push_back({work[i], peers[i].address});
    }
    void restore() {
        for (uint32_t i = 0; i < kBurst; ++i) {
            std::memcpy(work[i].data(), wire_copy[i].data(), wire_copy[i].size());
            shard.get(ids[i])->replay.reset();  // the same sequence again next iteration
        }
    }
};

void BM_ServerReceive(benchmark::State& s, int which, crypto::Suite suite) {
    auto aead = backend(which);
    if (!aead) return s.SkipWithError("backend unavailable");
    Fixture f(std::move(aead), suite);
    const Now now{2'000'000'000, 1'700'000'000'000};
    uint32_t handshake[kBurst];
    for (auto _ : s) {
        f.restore();
        f.shard.receive_burst(f.burst, now, *f.aead, handshake);
        f.out.flush();
    }
    if (f.hooks.payloads != s.iterations() * kBurst * kPayload) s.SkipWithError("payloads lost");
    s.SetItemsProcessed(s.iterations() * kBurst);
}

void BM_BareOpen(benchmark::State& s, int which, crypto::Suite suite) {
    auto aead = backend(which);
    if (!aead) return s.SkipWithError("backend unavailable");
    Fixture f(std::move(aead), suite);
    crypto::AeadOp ops[kBurst];
    wire::PacketAd ads[kBurst];
    for (auto _ : s) {
        f.restore();
        for (uint32_t i = 0; i < kBurst; ++i) {
            uint8_t* d = f.work[i].data();
            ads[i] = wire::packet_ad(f.peers[i].ctx, d[0]);
            ops[i] = {suite, &f.peers[i].client_to_server_key, f.shard.get(f.ids[i])->recv_prepared.get(), 5,
                      ads[i].data(), 21, d + 2, kPayload, d + 2 + kPayload, false};
        }
        f.aead->open(ops);
        benchmark::DoNotOptimize(ops);
    }
    s.SetItemsProcessed(s.iterations() * kBurst);
}

void BM_ServerSend(benchmark::State& s, int which, crypto::Suite suite) {
    auto aead = backend(which);
    if (!aead) return s.SkipWithError("backend unavailable");
    Fixture f(std::move(aead), suite);
    const Now now{2'000'000'000, 1'700'000'000'000};
    // Confirm every peer so sends are bare PAYLOADs (no extra PING while unconfirmed).
    for (uint32_t i = 0; i < kBurst; ++i) f.shard.get(f.ids[i])->state = PeerState::connected;
    uint8_t payload[kPayload] = {};
    for (auto _ : s) {
        for (uint32_t i = 0; i < kBurst; ++i) f.shard.send(f.ids[i], payload, now);
        f.out.flush();
    }
    s.SetItemsProcessed(s.iterations() * kBurst);
}

void BM_BareSeal(benchmark::State& s, int which, crypto::Suite suite) {
    auto aead = backend(which);
    if (!aead) return s.SkipWithError("backend unavailable");
    Fixture f(std::move(aead), suite);
    crypto::AeadOp ops[kBurst];
    wire::PacketAd ads[kBurst];
    uint64_t seq = 0;
    for (auto _ : s) {
        for (uint32_t i = 0; i < kBurst; ++i) {
            uint8_t* d = f.work[i].data();
            ads[i] = wire::packet_ad(f.peers[i].ctx, d[0]);
            ops[i] = {suite, &f.peers[i].server_to_client_key, f.shard.get(f.ids[i])->send_prepared.get(), seq,
                      ads[i].data(), 21, d + 2, kPayload, d + 2 + kPayload, false};
        }
        ++seq;
        f.aead->seal(ops);
        benchmark::ClobberMemory();
    }
    s.SetItemsProcessed(s.iterations() * kBurst);
}

// The control thread's share of `kClients` handshakes per iteration, manual time: the
// handshake's REQUEST pass (and the CHALLENGE burst seal) and its RESPONSE pass; minting tokens
// and the clients' work happen outside the timed parts.
void BM_Handshake(benchmark::State& s) {
    constexpr uint32_t kClients = 256;
    const crypto::Key key = crypto::Key::random();
    const wire::Address server_address = wire::Address::ipv4({198, 18, 0, 1}, 40000);
    Config config;
    config.protocol_id = 0x1122334455667788ull;
    config.private_key = key;
    config.max_clients = kClients;
    config.max_pending = kClients;
    config.token_history = 1u << 20;
    config.public_addresses = {server_address};
    Handshake handshake(config);
    handshake.start({1'000'000'000, 1'700'000'000'000});
    auto aead = crypto::make_best_burst();

    // The CHALLENGEs stay in their buffers (one per client, nothing copied or allocated while
    // timed); `sent` points at them.
    struct Capture final : BatchOutbox {
        explicit Capture(crypto::BurstAead& a) : BatchOutbox(a, 32), storage(kClients, std::vector<uint8_t>(wire::kMaxDatagramSize)) {
            sent.reserve(kClients);
        }
        std::vector<std::vector<uint8_t>> storage;
        std::vector<std::pair<wire::Address, std::span<uint8_t>>> sent;
        uint32_t next = 0;
        Buffer next_buffer() override { return {std::span(storage[next++ % kClients]), nullptr}; }
        void transmit(std::span<SealedDatagram> d) override {
            for (const SealedDatagram& x : d)  // our own storage: the client opens it in place
                sent.emplace_back(x.to, std::span(const_cast<uint8_t*>(x.bytes.data()), x.bytes.size()));
        }
    } out(*aead);
    struct Sends final : ImmediateOutbox {
        std::vector<uint8_t> last;
        void transmit(const wire::Address&, std::span<const uint8_t> d, wire::PacketType) override { last.assign(d.begin(), d.end()); }
    };
    struct Node {
        Sends out;
        client::Events events;
        client::Client client{client::Config{}, events, out};
        wire::Address address;
    };
    std::vector<std::unique_ptr<Node>> nodes(kClients);
    uint64_t unix_ms = 1'700'000'000'000, ns = 1'000'000'000;
    int64_t next_id = 1;
    uint64_t handshakes = 0;
    for (auto _ : s) {
        const Now now{ns, unix_ms};
        std::vector<std::vector<uint8_t>> requests(kClients), responses(kClients);
        for (uint32_t i = 0; i < kClients; ++i) {
            auto& n = nodes[i];
            n = std::make_unique<Node>();
            n->address = wire::Address::ipv4({198, 19, uint8_t(i >> 8), uint8_t(i)}, 10000);
            wire::TokenSpec spec;
            spec.protocol_id = config.protocol_id;
            spec.create_ms = unix_ms;
            spec.expire_ms = unix_ms + 300'000;
            crypto::random_bytes(spec.nonce.data(), spec.nonce.size());
            spec.private_part.client_id = next_id++;
            spec.private_part.timeout_seconds = 10;
            spec.private_part.addresses.push(server_address);
            spec.private_part.client_to_server_key = crypto::Key::random();
            spec.private_part.server_to_client_key = crypto::Key::random();
            std::array<uint8_t, wire::kConnectTokenSize> token;
            wire::mint_connect_token(spec, key, token);
            n->client.connect(token, now);
            requests[i] = n->out.last;
        }
        out.sent.clear();
        NewPeer accepted;
        auto t0 = std::chrono::steady_clock::now();
        for (uint32_t i = 0; i < kClients; ++i) {
            RxDatagram d{std::span(requests[i]), nodes[i]->address};
            handshake.handle(d, now, out, accepted);
        }
        out.flush();
        auto t1 = std::chrono::steady_clock::now();
        // A client whose keyed rate-limit slot another shares (a lossy table) may get no
        // CHALLENGE this time: it sits the round out.
        if (out.sent.size() < kClients * 9 / 10) {
            s.SkipWithError("most REQUESTs got no CHALLENGE");
            break;
        }
        std::vector<bool> challenged(kClients);
        for (auto& [to, bytes] : out.sent) {
            const uint32_t i = uint32_t{to.ip[2]} << 8 | to.ip[3];
            nodes[i]->client.receive(bytes, server_address, now);
            responses[i] = nodes[i]->out.last;
            challenged[i] = true;
        }
        out.sent.clear();
        uint32_t connected = 0;
        std::vector<NewPeer> peers(kClients);
        auto t2 = std::chrono::steady_clock::now();
        for (uint32_t i = 0; i < kClients; ++i) {
            if (!challenged[i]) continue;
            RxDatagram d{std::span(responses[i]), nodes[i]->address};
            connected += handshake.handle(d, now, out, peers[i]);
        }
        out.flush();
        auto t3 = std::chrono::steady_clock::now();
        if (connected < kClients * 9 / 10) {
            s.SkipWithError("RESPONSEs did not connect");
            break;
        }
        for (uint32_t i = 0; i < kClients; ++i)
            if (challenged[i]) handshake.on_connection_closed(peers[i].client_id, peers[i].address);
        handshakes += connected;
        s.SetIterationTime(std::chrono::duration<double>((t1 - t0) + (t3 - t2)).count());
        ns += 200'000'000;  // past the per-source reply spacing (the addresses repeat)
        ++unix_ms;
    }
    s.SetItemsProcessed(static_cast<int64_t>(handshakes));
}
BENCHMARK(BM_Handshake)->UseManualTime()->Iterations(200);

using pomelo::crypto::Suite;
BENCHMARK_CAPTURE(BM_ServerReceive, sodium_chacha, 0, Suite::chacha20poly1305);
BENCHMARK_CAPTURE(BM_BareOpen, sodium_chacha, 0, Suite::chacha20poly1305);
BENCHMARK_CAPTURE(BM_ServerSend, sodium_chacha, 0, Suite::chacha20poly1305);
BENCHMARK_CAPTURE(BM_BareSeal, sodium_chacha, 0, Suite::chacha20poly1305);
BENCHMARK_CAPTURE(BM_ServerReceive, ipsecmb_chacha, 1, Suite::chacha20poly1305);
BENCHMARK_CAPTURE(BM_BareOpen, ipsecmb_chacha, 1, Suite::chacha20poly1305);
BENCHMARK_CAPTURE(BM_ServerSend, ipsecmb_chacha, 1, Suite::chacha20poly1305);
BENCHMARK_CAPTURE(BM_BareSeal, ipsecmb_chacha, 1, Suite::chacha20poly1305);
BENCHMARK_CAPTURE(BM_ServerReceive, ipsecmb_aesgcm, 1, Suite::aes256gcm);
BENCHMARK_CAPTURE(BM_BareOpen, ipsecmb_aesgcm, 1, Suite::aes256gcm);
BENCHMARK_CAPTURE(BM_ServerSend, ipsecmb_aesgcm, 1, Suite::aes256gcm);
BENCHMARK_CAPTURE(BM_BareSeal, ipsecmb_aesgcm, 1, Suite::aes256gcm);

}  // namespace

BENCHMARK_MAIN();
