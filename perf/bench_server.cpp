// The server's per-packet cost on its data path, against the bare AEAD of the same burst in
// the same run:
//   receive: a burst of 32 PAYLOADs (64 B) from 32 connections through Shard::receive_burst
//            (header -> lookup -> check -> AEAD open burst -> replay commit -> application)
//            vs BurstAead::open of the same 32 datagrams;
//   send:    32 application sends through the BatchOutbox (header + body -> AEAD seal burst)
//            vs BurstAead::seal of the same 32 bodies.
// Both sides restore their buffers each iteration (memcpy), so the ratio compares like with like.
//
// Run: perf/server.sh (prints the ratio table recorded in perf/RESULTS.md).
#include <benchmark/benchmark.h>

#include <cstring>
#include <memory>
#include <vector>

#include "protocol/batch_outbox.hpp"
#include "protocol/server/shard.hpp"

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
