// Codec cost per operation: each packet type's body codec alone ("body"), the full packet
// with AEAD ("packet"), the tokens, and the bare AEAD of the same sizes as the baseline.
//
// Run: perf/codec.sh (prints the ratio table recorded in perf/RESULTS.md).
#include <benchmark/benchmark.h>

#include <cstring>
#include <vector>

#include "protocol/crypto/aead.hpp"
#include "protocol/wire/challenge_token.hpp"
#include "protocol/wire/connect_token.hpp"
#include "protocol/wire/packet.hpp"
#include "protocol/wire/request.hpp"

namespace {

using namespace pomelo;
using namespace pomelo::wire;

const PacketContext kCtx{crypto::Suite::chacha20poly1305, 0x1122334455667788ull};
const crypto::Key kKey = crypto::Key::random();
uint8_t g_token[kChallengeTokenSize] = {1, 2, 3};
uint8_t g_payload[kMaxPayloadSize] = {7};

Packet sample(PacketType type, size_t payload_size) {
    Packet p;
    p.type = type;
    p.sequence = 123456;
    p.challenge = {42, std::span<const uint8_t>(g_token, sizeof g_token)};
    p.ping = {0x0102030405060708, 300, true, 123456789012345ull};
    p.pong = {300, 987654321098ull, 15000};
    p.payload = std::span<const uint8_t>(g_payload, payload_size);
    return p;
}

// ---- packets with AEAD

void BM_PacketWrite(benchmark::State& s, PacketType type, size_t payload_size) {
    const Packet p = sample(type, payload_size);
    uint8_t out[kMaxDatagramSize];
    for (auto _ : s) {
        size_t n = write_packet(kCtx, kKey, p, out);
        benchmark::DoNotOptimize(n);
        benchmark::ClobberMemory();
    }
}

// Reading decrypts in place, so each iteration restores the ciphertext first; the restore
// is measured by BM_Restore and subtracted in perf/codec.sh.
void BM_PacketRead(benchmark::State& s, PacketType type, size_t payload_size) {
    uint8_t wire[kMaxDatagramSize], work[kMaxDatagramSize];
    const size_t n = write_packet(kCtx, kKey, sample(type, payload_size), wire);
    Packet p;
    for (auto _ : s) {
        std::memcpy(work, wire, n);
        WireError e = read_packet(kCtx, kKey, std::span(work, n), p);
        if (e != WireError::ok) s.SkipWithError("read failed");
        benchmark::DoNotOptimize(p);
    }
}

void BM_Restore(benchmark::State& s, size_t n) {
    uint8_t wire[kMaxDatagramSize] = {}, work[kMaxDatagramSize];
    for (auto _ : s) {
        std::memcpy(work, wire, n);
        benchmark::DoNotOptimize(work);
        benchmark::ClobberMemory();
    }
}

// ---- bodies only (no AEAD)

void BM_HeaderRead(benchmark::State& s) {
    uint8_t wire[kMaxDatagramSize];
    const size_t n = write_packet(kCtx, kKey, sample(PacketType::payload, 64), wire);
    PacketHeader h;
    for (auto _ : s) {
        benchmark::DoNotOptimize(read_header(std::span(wire, n), h));
        benchmark::DoNotOptimize(h);
    }
}

void BM_BodyWrite(benchmark::State& s, PacketType type) {
    const Packet p = sample(type, 64);
    uint8_t out[kMaxDatagramSize];
    for (auto _ : s) {
        size_t n = 0;
        if (type == PacketType::ping) n = write_ping_body(p.ping, out);
        if (type == PacketType::pong) n = write_pong_body(p.pong, out);
        if (type == PacketType::challenge) n = write_challenge_body(p.challenge, out);
        benchmark::DoNotOptimize(n);
        benchmark::ClobberMemory();
    }
}

void BM_BodyRead(benchmark::State& s, PacketType type) {
    const Packet p = sample(type, 64);
    uint8_t body[kMaxDatagramSize];
    size_t n = 0;
    if (type == PacketType::ping) n = write_ping_body(p.ping, body);
    if (type == PacketType::pong) n = write_pong_body(p.pong, body);
    if (type == PacketType::challenge) n = write_challenge_body(p.challenge, body);
    Packet out;
    for (auto _ : s) {
        benchmark::DoNotOptimize(read_body(type, std::span(body, n), out));
        benchmark::DoNotOptimize(out);
    }
}

// ---- bare AEAD baseline (what the codec adds is measured against this)

void BM_AeadSeal(benchmark::State& s, crypto::Suite suite, size_t size) {
    if (!crypto::suite_available(suite)) return s.SkipWithError("suite unavailable");
    uint8_t buf[kMaxDatagramSize] = {}, tag[16];
    const uint8_t ad[21] = {};
    for (auto _ : s) {
        crypto::packet_seal(suite, kKey, 123456, ad, std::span(buf, size), tag);
        benchmark::ClobberMemory();
    }
}

// ---- tokens

TokenSpec token_spec() {
    TokenSpec t;
    t.protocol_id = 1;
    t.create_ms = 1;
    t.expire_ms = 2;
    t.private_part.timeout_seconds = 10;
    t.private_part.addresses.push(*Address::parse("198.18.0.1:40000"));
    t.private_part.addresses.push(*Address::parse("[2001:db8::1]:40000"));
    return t;
}

void BM_TokenMint(benchmark::State& s) {
    const TokenSpec t = token_spec();
    std::array<uint8_t, kConnectTokenSize> out;
    for (auto _ : s) {
        benchmark::DoNotOptimize(mint_connect_token(t, kKey, out));
        benchmark::ClobberMemory();
    }
}

void BM_TokenDecodePublic(benchmark::State& s) {
    std::array<uint8_t, kConnectTokenSize> bytes;
    mint_connect_token(token_spec(), kKey, bytes);
    ConnectToken t;
    for (auto _ : s) benchmark::DoNotOptimize(decode_connect_token(bytes, t));
}

void BM_RequestOpen(benchmark::State& s) {  // the server's XChaCha20 token decrypt + parse
    std::array<uint8_t, kConnectTokenSize> bytes;
    mint_connect_token(token_spec(), kKey, bytes);
    ConnectToken t;
    decode_connect_token(bytes, t);
    std::array<uint8_t, kRequestSize> q;
    write_request(t, q);
    RequestPacket r;
    read_request(q, r);
    PrivateConnectToken p;
    for (auto _ : s) {
        if (open_request(r, kKey, p) != WireError::ok) s.SkipWithError("open failed");
        benchmark::DoNotOptimize(p);
    }
}

void BM_ChallengeTokenSeal(benchmark::State& s) {
    ChallengeToken c;
    std::array<uint8_t, kChallengeTokenSize> out;
    uint64_t seq = 0;
    for (auto _ : s) {
        seal_challenge_token(c, kKey, seq++, out);
        benchmark::ClobberMemory();
    }
}

void BM_ChallengeTokenOpen(benchmark::State& s) {
    ChallengeToken c;
    std::array<uint8_t, kChallengeTokenSize> sealed;
    seal_challenge_token(c, kKey, 9, sealed);
    for (auto _ : s) benchmark::DoNotOptimize(open_challenge_token(sealed, kKey, 9, c));
}

}  // namespace

BENCHMARK(BM_HeaderRead);
BENCHMARK_CAPTURE(BM_BodyWrite, ping, PacketType::ping);
BENCHMARK_CAPTURE(BM_BodyRead, ping, PacketType::ping);
BENCHMARK_CAPTURE(BM_BodyWrite, pong, PacketType::pong);
BENCHMARK_CAPTURE(BM_BodyRead, pong, PacketType::pong);
BENCHMARK_CAPTURE(BM_BodyWrite, challenge, PacketType::challenge);
BENCHMARK_CAPTURE(BM_BodyRead, challenge, PacketType::challenge);

BENCHMARK_CAPTURE(BM_PacketWrite, denied, PacketType::denied, 0);
BENCHMARK_CAPTURE(BM_PacketRead, denied, PacketType::denied, 0);
BENCHMARK_CAPTURE(BM_PacketWrite, disconnect, PacketType::disconnect, 0);
BENCHMARK_CAPTURE(BM_PacketRead, disconnect, PacketType::disconnect, 0);
BENCHMARK_CAPTURE(BM_PacketWrite, ping, PacketType::ping, 0);
BENCHMARK_CAPTURE(BM_PacketRead, ping, PacketType::ping, 0);
BENCHMARK_CAPTURE(BM_PacketWrite, pong, PacketType::pong, 0);
BENCHMARK_CAPTURE(BM_PacketRead, pong, PacketType::pong, 0);
BENCHMARK_CAPTURE(BM_PacketWrite, challenge, PacketType::challenge, 0);
BENCHMARK_CAPTURE(BM_PacketRead, challenge, PacketType::challenge, 0);
BENCHMARK_CAPTURE(BM_PacketWrite, response, PacketType::response, 0);
BENCHMARK_CAPTURE(BM_PacketRead, response, PacketType::response, 0);
BENCHMARK_CAPTURE(BM_PacketWrite, payload64, PacketType::payload, 64);
BENCHMARK_CAPTURE(BM_PacketRead, payload64, PacketType::payload, 64);
BENCHMARK_CAPTURE(BM_PacketWrite, payload1200, PacketType::payload, 1200);
BENCHMARK_CAPTURE(BM_PacketRead, payload1200, PacketType::payload, 1200);
BENCHMARK_CAPTURE(BM_Restore, 83, 83);
BENCHMARK_CAPTURE(BM_Restore, 1219, 1219);

BENCHMARK_CAPTURE(BM_AeadSeal, chacha0, pomelo::crypto::Suite::chacha20poly1305, 0);
BENCHMARK_CAPTURE(BM_AeadSeal, chacha10, pomelo::crypto::Suite::chacha20poly1305, 10);
BENCHMARK_CAPTURE(BM_AeadSeal, chacha17, pomelo::crypto::Suite::chacha20poly1305, 17);
BENCHMARK_CAPTURE(BM_AeadSeal, chacha64, pomelo::crypto::Suite::chacha20poly1305, 64);
BENCHMARK_CAPTURE(BM_AeadSeal, chacha308, pomelo::crypto::Suite::chacha20poly1305, 308);
BENCHMARK_CAPTURE(BM_AeadSeal, chacha1200, pomelo::crypto::Suite::chacha20poly1305, 1200);
BENCHMARK_CAPTURE(BM_AeadSeal, aesgcm64, pomelo::crypto::Suite::aes256gcm, 64);
BENCHMARK_CAPTURE(BM_AeadSeal, aesgcm1200, pomelo::crypto::Suite::aes256gcm, 1200);

BENCHMARK(BM_TokenMint);
BENCHMARK(BM_TokenDecodePublic);
BENCHMARK(BM_RequestOpen);
BENCHMARK(BM_ChallengeTokenSeal);
BENCHMARK(BM_ChallengeTokenOpen);

BENCHMARK_MAIN();

// ---- burst AEAD backends (issue 4): crypto::BurstAead seal/open over bursts of 32 packets of
// 64 B, one key per packet (a burst from 32 peers), the AD of a real packet (21 bytes). Keys
// are prepared when the backend uses prepared keys (IPsec-MB's AES-GCM round keys and GHASH
// tables), as a peer would keep them; the "_unprepared" rows expand all 32 keys in every burst.
// Items are packets: perf/codec.sh prints real_time / 32.

#include <memory>

#include "protocol/crypto/burst.hpp"

namespace {

constexpr size_t kBurstPackets = 32;
constexpr size_t kBurstBody = 64;

struct BurstBench {
    std::unique_ptr<crypto::BurstAead> aead;
    std::vector<crypto::Key> keys = std::vector<crypto::Key>(kBurstPackets);
    std::vector<crypto::PreparedKey> prepared = std::vector<crypto::PreparedKey>(kBurstPackets);
    uint8_t ad[kBurstPackets][21] = {};
    uint8_t text[kBurstPackets][kBurstBody] = {};
    uint8_t sealed[kBurstPackets][kBurstBody] = {};
    uint8_t tags[kBurstPackets][16] = {};
    crypto::AeadOp ops[kBurstPackets];

    // Empty `aead` when the backend cannot run here.
    BurstBench(const std::string& backend, crypto::Suite suite, bool prepare) {
        aead = backend == "sodium" ? crypto::make_sodium_burst() : crypto::make_ipsec_mb_burst();
        if (!aead || !crypto::suite_available(suite)) {
            aead.reset();
            return;
        }
        for (size_t i = 0; i < kBurstPackets; ++i) {
            keys[i] = crypto::Key::random();
            crypto::random_bytes(ad[i], sizeof ad[i]);
            crypto::random_bytes(text[i], sizeof text[i]);
            const bool use = prepare && aead->prepare(keys[i], suite, prepared[i]);
            ops[i] = {suite, &keys[i], use ? &prepared[i] : nullptr, 1000 + i, ad[i], 21, text[i], kBurstBody,
                      tags[i], false};
        }
    }
};

void BM_BurstSeal(benchmark::State& s, const char* backend, crypto::Suite suite, bool prepare) {
    BurstBench b(backend, suite, prepare);
    if (!b.aead) return s.SkipWithError("backend or suite unavailable");
    for (auto _ : s) {
        b.aead->seal(b.ops);
        benchmark::ClobberMemory();
    }
    for (const crypto::AeadOp& op : b.ops)
        if (!op.ok) s.SkipWithError("seal failed");
    s.SetItemsProcessed(static_cast<int64_t>(kBurstPackets) * s.iterations());
    s.SetLabel(b.aead->name());
}

// Open decrypts in place, so each iteration restores the 32 ciphertexts first (BM_BurstRestore,
// subtracted in perf/codec.sh).
void BM_BurstOpen(benchmark::State& s, const char* backend, crypto::Suite suite, bool prepare) {
    BurstBench b(backend, suite, prepare);
    if (!b.aead) return s.SkipWithError("backend or suite unavailable");
    b.aead->seal(b.ops);
    std::memcpy(b.sealed, b.text, sizeof b.text);
    for (auto _ : s) {
        std::memcpy(b.text, b.sealed, sizeof b.text);
        b.aead->open(b.ops);
        benchmark::ClobberMemory();
    }
    for (const crypto::AeadOp& op : b.ops)
        if (!op.ok) s.SkipWithError("open failed");
    s.SetItemsProcessed(static_cast<int64_t>(kBurstPackets) * s.iterations());
    s.SetLabel(b.aead->name());
}

void BM_BurstRestore(benchmark::State& s) {
    static uint8_t sealed[kBurstPackets][kBurstBody] = {{1}}, text[kBurstPackets][kBurstBody];
    for (auto _ : s) {
        std::memcpy(text, sealed, sizeof text);
        benchmark::DoNotOptimize(text);
        benchmark::ClobberMemory();
    }
    s.SetItemsProcessed(static_cast<int64_t>(kBurstPackets) * s.iterations());
}

constexpr auto kChaCha = crypto::Suite::chacha20poly1305;
constexpr auto kAesGcm = crypto::Suite::aes256gcm;

}  // namespace

BENCHMARK_CAPTURE(BM_BurstSeal, sodium_chacha, "sodium", kChaCha, true);
BENCHMARK_CAPTURE(BM_BurstSeal, ipsecmb_chacha, "ipsec-mb", kChaCha, true);
BENCHMARK_CAPTURE(BM_BurstSeal, sodium_aesgcm, "sodium", kAesGcm, true);
BENCHMARK_CAPTURE(BM_BurstSeal, ipsecmb_aesgcm, "ipsec-mb", kAesGcm, true);
BENCHMARK_CAPTURE(BM_BurstSeal, ipsecmb_aesgcm_unprepared, "ipsec-mb", kAesGcm, false);
BENCHMARK_CAPTURE(BM_BurstOpen, sodium_chacha, "sodium", kChaCha, true);
BENCHMARK_CAPTURE(BM_BurstOpen, ipsecmb_chacha, "ipsec-mb", kChaCha, true);
BENCHMARK_CAPTURE(BM_BurstOpen, sodium_aesgcm, "sodium", kAesGcm, true);
BENCHMARK_CAPTURE(BM_BurstOpen, ipsecmb_aesgcm, "ipsec-mb", kAesGcm, true);
BENCHMARK_CAPTURE(BM_BurstOpen, ipsecmb_aesgcm_unprepared, "ipsec-mb", kAesGcm, false);
BENCHMARK(BM_BurstRestore);
