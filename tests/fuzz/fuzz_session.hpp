// Shared parts of the state-machine targets (fuzz_server, fuzz_client) and of their seeds in
// make_corpus.cpp: the program reader and writer, the independent AEAD (libsodium called
// directly, not our codec), the (key, nonce) ledger, the buffer-pool BatchOutbox, the token
// identities the harness mints, and named invariants.
//
// A fuzzer input is a program: a few configuration bytes, then ops. Every byte string is a
// valid program (op = byte % count, reads past the end give zeros), so the fuzzer mutates
// programs freely and make_corpus writes seed programs with the same op codes.
#pragma once

#include <sodium.h>

#include <array>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "protocol/batch_outbox.hpp"
#include "protocol/crypto/aead.hpp"
#include "protocol/crypto/burst.hpp"
#include "protocol/time.hpp"
#include "protocol/wire/bytes.hpp"
#include "protocol/wire/connect_token.hpp"
#include "protocol/wire/constants.hpp"
#include "protocol/wire/request.hpp"
#include "tests/fuzz/fuzz_common.hpp"

namespace pomelo::fuzz::session {

// ---------------------------------------------------------------- named invariants
//
// Every check has a name. POMELO_FUZZ_TOLERATE="name,name" turns the named checks into a
// count on stderr (first hit of each name printed) instead of a crash, so that a long run
// can get past a known finding and explore behind it. Unset, every check is fatal.
class Invariants {
public:
    static Invariants& get() {
        static Invariants inv;
        return inv;
    }
    void check(bool ok, const char* name, const char* file, int line, const std::string& detail) {
        if (ok) return;
        if (!tolerated(name)) {
            std::fprintf(stderr, "\n==FUZZ INVARIANT VIOLATED== %s: %s\n    at %s:%d\n", name, detail.c_str(), file,
                         line);
            std::fflush(stderr);
            __builtin_trap();
        }
        uint64_t& n = hits_[name];
        if (n++ == 0) std::fprintf(stderr, "==FUZZ TOLERATED== %s: %s (at %s:%d)\n", name, detail.c_str(), file, line);
    }

private:
    Invariants() {
        if (const char* t = std::getenv("POMELO_FUZZ_TOLERATE")) tolerate_ = std::string(",") + t + ",";
    }
    bool tolerated(const char* name) const {
        return !tolerate_.empty() && tolerate_.find(std::string(",") + name + ",") != std::string::npos;
    }
    std::string tolerate_;
    std::unordered_map<std::string, uint64_t> hits_;
};

#define FUZZ_INVARIANT(name, cond, detail)                                                             \
    do {                                                                                               \
        if (!(cond)) ::pomelo::fuzz::session::Invariants::get().check(false, name, __FILE__, __LINE__, \
                                                                      (detail));                       \
    } while (0)

// POMELO_FUZZ_TRACE=1: one line per step and per datagram sent, to read a finding's program.
inline bool tracing() {
    static const bool on = std::getenv("POMELO_FUZZ_TRACE") != nullptr;
    return on;
}
#define FUZZ_TRACE(...)                                        \
    do {                                                       \
        if (::pomelo::fuzz::session::tracing()) {              \
            std::fprintf(stderr, "trace: " __VA_ARGS__);       \
            std::fputc('\n', stderr);                          \
        }                                                      \
    } while (0)

// ---------------------------------------------------------------- programs

class Program {
public:
    Program(const uint8_t* data, size_t size) : p_(data), end_(data + size) {}
    bool done() const { return p_ >= end_; }
    uint8_t u8() { return p_ < end_ ? *p_++ : 0; }
    uint16_t u16() { return static_cast<uint16_t>(u8() | u8() << 8); }
    uint64_t u64() {
        uint64_t v = 0;
        for (unsigned i = 0; i < 8; ++i) v |= uint64_t{u8()} << (8 * i);
        return v;
    }
    // Up to n bytes (fewer at the end of the input).
    std::span<const uint8_t> bytes(size_t n) {
        const size_t k = std::min<size_t>(n, static_cast<size_t>(end_ - p_));
        std::span<const uint8_t> s(p_, k);
        p_ += k;
        return s;
    }

private:
    const uint8_t* p_;
    const uint8_t* end_;
};

// The writer side, for make_corpus.
struct ProgramWriter {
    std::vector<uint8_t> b;
    ProgramWriter& u8(unsigned v) {
        b.push_back(static_cast<uint8_t>(v));
        return *this;
    }
    ProgramWriter& u16(unsigned v) { return u8(v & 0xff).u8(v >> 8 & 0xff); }
    ProgramWriter& u64(uint64_t v) {
        for (unsigned i = 0; i < 8; ++i) u8(static_cast<uint8_t>(v >> (8 * i)));
        return *this;
    }
    ProgramWriter& bytes(std::span<const uint8_t> s) {
        b.insert(b.end(), s.begin(), s.end());
        return *this;
    }
};

// Clock steps: a byte below kStepTable picks a step around the protocol's intervals;
// larger ones are that many milliseconds plus one nanosecond when odd (odd and even ns both
// occur, which matters to arithmetic on stamps).
inline constexpr uint64_t kSteps[] = {
    0,
    1 * kMillisecond,
    10 * kMillisecond,
    49 * kMillisecond,
    50 * kMillisecond,
    51 * kMillisecond,
    99 * kMillisecond,
    100 * kMillisecond,
    101 * kMillisecond,
    250 * kMillisecond,
    1 * kSecond,
    2 * kSecond,
    5 * kSecond + 1,
    10 * kSecond + 1,
    11 * kSecond,
    61 * kSecond,
};
inline constexpr unsigned kStepTable = sizeof kSteps / sizeof kSteps[0];
inline uint64_t step_of(uint8_t b) { return b < kStepTable ? kSteps[b] : uint64_t{b} * kMillisecond + (b & 1); }

struct Clock {
    static constexpr uint64_t kStartNs = 1'000'000'000;         // even: stamps must not care
    static constexpr uint64_t kStartUnixMs = 1'700'000'000'000;  // tokens expire relative to this
    Now now{kStartNs, kStartUnixMs};
    void advance(uint64_t ns) {
        now.ns += ns;
        now.unix_ms = kStartUnixMs + (now.ns - kStartNs) / kMillisecond;
    }
};

// ---------------------------------------------------------------- independent AEAD

inline bool aes_available() {
    static const bool ok = sodium_init() >= 0 && crypto_aead_aes256gcm_is_available() == 1;
    return ok;
}

// The 21-byte associated data of §7.5, built here from the spec, not from wire::packet_ad.
inline std::array<uint8_t, 21> spec_ad(crypto::Suite suite, uint64_t protocol_id, uint8_t prefix) {
    static constexpr char kChaCha[] = "POMELO 1.03";
    static constexpr char kAes[] = "POMELO 1.3G";
    std::array<uint8_t, 21> ad{};
    std::memcpy(ad.data(), suite == crypto::Suite::aes256gcm ? kAes : kChaCha, 12);  // with its NUL
    for (unsigned i = 0; i < 8; ++i) ad[12 + i] = static_cast<uint8_t>(protocol_id >> (8 * i));
    ad[20] = prefix;
    return ad;
}

inline std::array<uint8_t, 12> spec_nonce(uint64_t sequence) {
    std::array<uint8_t, 12> n{};
    for (unsigned i = 0; i < 8; ++i) n[4 + i] = static_cast<uint8_t>(sequence >> (8 * i));
    return n;
}

// A datagram's clear header, parsed from the spec (§7.2-§7.3).
struct SpecHeader {
    unsigned type = 0;
    unsigned n = 0;
    uint64_t sequence = 0;
    bool ok = false;
};
inline SpecHeader spec_header(std::span<const uint8_t> d) {
    SpecHeader h;
    if (d.empty()) return h;
    h.type = d[0] >> 4;
    h.n = d[0] & 0x0f;
    if (h.type == 0 || h.type >= 8 || h.n < 1 || h.n > 8 || d.size() < 1 + h.n + wire::kTagSize) return h;
    for (unsigned i = 0; i < h.n; ++i) h.sequence |= uint64_t{d[1 + i]} << (8 * i);
    h.ok = true;
    return h;
}

// Opens header || ciphertext || tag under (key, suite, protocol id) with libsodium directly.
// On success `plain` holds the body.
inline bool spec_open(crypto::Suite suite, const crypto::Key& key, uint64_t protocol_id, std::span<const uint8_t> d,
                      std::vector<uint8_t>& plain) {
    const SpecHeader h = spec_header(d);
    if (!h.ok) return false;
    const size_t body = d.size() - 1 - h.n - wire::kTagSize;
    const auto ad = spec_ad(suite, protocol_id, d[0]);
    const auto nonce = spec_nonce(h.sequence);
    plain.resize(body);
    const uint8_t* c = d.data() + 1 + h.n;
    const uint8_t* tag = c + body;
    int rc;
    if (suite == crypto::Suite::aes256gcm) {
        if (!aes_available()) return false;
        rc = crypto_aead_aes256gcm_decrypt_detached(plain.data(), nullptr, c, body, tag, ad.data(), ad.size(),
                                                    nonce.data(), key.data());
    } else {
        rc = crypto_aead_chacha20poly1305_ietf_decrypt_detached(plain.data(), nullptr, c, body, tag, ad.data(),
                                                                ad.size(), nonce.data(), key.data());
    }
    return rc == 0;
}

// Builds prefix || LE sequence (n bytes, canonical when n is 0) || AEAD(body) || tag.
inline std::vector<uint8_t> spec_seal(crypto::Suite suite, const crypto::Key& key, uint64_t protocol_id, unsigned type,
                                      uint64_t sequence, unsigned n, std::span<const uint8_t> body) {
    if (n == 0) n = wire::trimmed_length(sequence);
    std::vector<uint8_t> d(1 + n + body.size() + wire::kTagSize);
    d[0] = static_cast<uint8_t>(type << 4 | n);
    for (unsigned i = 0; i < n; ++i) d[1 + i] = static_cast<uint8_t>(sequence >> (8 * i));
    const auto ad = spec_ad(suite, protocol_id, d[0]);
    const auto nonce = spec_nonce(sequence);
    uint8_t* c = d.data() + 1 + n;
    if (suite == crypto::Suite::aes256gcm && aes_available()) {
        crypto_aead_aes256gcm_encrypt_detached(c, c + body.size(), nullptr, body.data(), body.size(), ad.data(),
                                               ad.size(), nullptr, nonce.data(), key.data());
    } else {
        crypto_aead_chacha20poly1305_ietf_encrypt_detached(c, c + body.size(), nullptr, body.data(), body.size(),
                                                           ad.data(), ad.size(), nullptr, nonce.data(), key.data());
    }
    return d;
}

// ---------------------------------------------------------------- (key, nonce) ledger

// Every sealed datagram seen, by (key id, sequence) -> hash of AD || plaintext. The same
// pair with another hash is a nonce reuse (§9): a keystream leak and, for Poly1305/GHASH,
// a forgery key leak, even when only the AD differs.
class NonceLedger {
public:
    void clear() { seen_.clear(); }
    // Records (key_id, sequence) -> AD || plaintext in `epoch` (a server restart starts a new
    // one). Returns -1 when new or the same bytes again, else the epoch of the other bytes.
    int record(uint32_t key_id, uint64_t sequence, uint8_t prefix, std::span<const uint8_t> plain, int epoch) {
        uint64_t h[2];
        crypto_generichash_state st;
        crypto_generichash_init(&st, nullptr, 0, sizeof h);
        crypto_generichash_update(&st, &prefix, 1);
        crypto_generichash_update(&st, plain.data(), plain.size());
        crypto_generichash_final(&st, reinterpret_cast<unsigned char*>(h), sizeof h);
        const Pair key{key_id, sequence};
        auto [it, fresh] = seen_.emplace(key, Entry{h[0], h[1], epoch});
        if (fresh || (it->second.h0 == h[0] && it->second.h1 == h[1])) return -1;
        return it->second.epoch;
    }

private:
    struct Pair {
        uint32_t key_id;
        uint64_t sequence;
        bool operator==(const Pair&) const = default;
    };
    struct PairHash {
        size_t operator()(const Pair& p) const { return p.sequence * 0x9E3779B97F4A7C15ull ^ p.key_id; }
    };
    struct Entry {
        uint64_t h0, h1;
        int epoch;
    };
    std::unordered_map<Pair, Entry, PairHash> seen_;
};

// ---------------------------------------------------------------- the outbox

// A BatchOutbox over a small fixed pool of buffers, like the engine's mbuf outbox: datagrams
// are sealed at flush() and every buffer must come back (transmitted or released).
class PoolOutbox final : public BatchOutbox {
public:
    static constexpr uint32_t kMaxBuffers = 8;
    struct Sent {
        wire::Address to;
        wire::PacketType type;
        std::vector<uint8_t> bytes;  // empty: the seal failed
    };

    PoolOutbox(crypto::BurstAead& aead, uint32_t burst, uint32_t buffers)
        : BatchOutbox(aead, burst), buffers_(std::min(std::max<uint32_t>(buffers, 1), kMaxBuffers)) {
        for (uint32_t i = buffers_; i-- > 0;) free_.push_back(i);
        sent.reserve(64);
    }
    uint32_t buffers() const { return buffers_; }
    uint32_t free_buffers() const { return static_cast<uint32_t>(free_.size()); }
    bool double_release() const { return double_release_; }
    uint64_t transmitted() const { return transmitted_; }

    std::vector<Sent> sent;  // since the harness last took them

private:
    Buffer next_buffer() override {
        if (free_.empty()) return {};
        const uint32_t i = free_.back();
        free_.pop_back();
        lent_[i] = true;
        // Fill with a pattern: whatever the sender leaves unwritten shows as garbage.
        std::memset(pool_[i].data(), 0xA5, pool_[i].size());
        return {std::span(pool_[i]), reinterpret_cast<void*>(uintptr_t{i} + 1)};
    }
    void give_back(void* context) {
        const uint32_t i = static_cast<uint32_t>(reinterpret_cast<uintptr_t>(context) - 1);
        if (i >= buffers_ || !lent_[i]) {
            double_release_ = true;
            return;
        }
        lent_[i] = false;
        free_.push_back(i);
    }
    void release(Buffer b) override { give_back(b.context); }
    void transmit(std::span<SealedDatagram> datagrams) override {
        for (SealedDatagram& d : datagrams) {
            sent.push_back({d.to, d.type, std::vector<uint8_t>(d.bytes.begin(), d.bytes.end())});
            ++transmitted_;
            give_back(d.context);
        }
    }

    uint32_t buffers_;
    std::array<std::array<uint8_t, wire::kMaxDatagramSize>, kMaxBuffers> pool_{};
    std::array<bool, kMaxBuffers> lent_{};
    std::vector<uint32_t> free_;
    bool double_release_ = false;
    uint64_t transmitted_ = 0;
};

// ---------------------------------------------------------------- identities and tokens

inline constexpr uint64_t kProtocolId = fuzz::kProtocolId;

inline wire::Address server_v4() { return wire::Address::ipv4({198, 18, 0, 1}, 40000); }
inline wire::Address server_v6() {
    return wire::Address::ipv6({0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01}, 40000);
}
inline wire::Address other_v4() { return wire::Address::ipv4({198, 18, 0, 9}, 40000); }

// Client source addresses (IPv4 and IPv6; two share an IP and differ by port).
inline constexpr unsigned kSources = 6;
inline wire::Address source(unsigned k) {
    switch (k % kSources) {
        case 0: return wire::Address::ipv4({198, 18, 1, 1}, 50000);
        case 1: return wire::Address::ipv4({198, 18, 1, 1}, 50001);
        case 2: return wire::Address::ipv4({198, 18, 1, 2}, 50000);
        case 3: return wire::Address::ipv6({0x20, 0x01, 0x0d, 0xb8, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01}, 50000);
        case 4: return wire::Address::ipv6({0x20, 0x01, 0x0d, 0xb8, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01}, 50001);
        default: return wire::Address::ipv6({0x20, 0x01, 0x0d, 0xb8, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02}, 50000);
    }
}

// The tokens the harness mints, all under fuzz::private_key(). Index is what programs name.
enum TokenKind : uint8_t {
    kValid,          // chacha, expires in 60 s, timeout 5 s, both server addresses
    kValidAes,       // AES-256-GCM (chacha when this CPU has no AES-NI), timeout 5 s
    kNoTimeout,      // timeout -1: never times out
    kShortLived,     // expires 3 s after the harness clock starts
    kExpired,        // expired before the clock starts
    kWrongProtocol,  // another protocol id
    kNotListed,      // lists neither server address
    kSameClientId,   // other keys, the client id of identity 0
    kFallback,       // (client) three addresses: other, v6, v4
    kTokenKinds
};
inline constexpr unsigned kIdentities = 4;
inline constexpr unsigned kTokens = kIdentities * kTokenKinds;

struct MintedToken {
    unsigned index = 0;
    TokenKind kind = kValid;
    crypto::Suite suite = crypto::Suite::chacha20poly1305;
    uint64_t protocol_id = kProtocolId;
    uint64_t expire_ms = 0;
    int64_t client_id = 0;
    int32_t timeout_seconds = 0;
    crypto::Key c2s, s2c;
    wire::UserData user_data{};
    std::array<uint8_t, wire::kConnectTokenSize> token{};
    std::array<uint8_t, wire::kRequestSize> request{};
    wire::ServerAddresses addresses;
};

inline crypto::Key derived_key(unsigned token, unsigned role) {
    crypto::Key k;
    for (size_t i = 0; i < k.bytes.size(); ++i) k.bytes[i] = static_cast<uint8_t>(token * 37 + role * 101 + i * 13 + 1);
    return k;
}

inline const std::vector<MintedToken>& tokens() {
    static const std::vector<MintedToken> all = [] {
        if (!crypto::init()) std::abort();
        std::vector<MintedToken> v(kTokens);
        for (unsigned i = 0; i < kTokens; ++i) {
            MintedToken& t = v[i];
            const unsigned identity = i / kTokenKinds;
            t.index = i;
            t.kind = static_cast<TokenKind>(i % kTokenKinds);
            t.client_id = t.kind == kSameClientId ? 1000 : static_cast<int64_t>(1000 + identity * 7);
            t.c2s = derived_key(i, 1);
            t.s2c = derived_key(i, 2);
            for (size_t j = 0; j < t.user_data.size(); ++j) t.user_data[j] = static_cast<uint8_t>(i + j);
            t.timeout_seconds = t.kind == kNoTimeout ? -1 : 5;
            t.expire_ms = Clock::kStartUnixMs + 60'000;
            if (t.kind == kShortLived) t.expire_ms = Clock::kStartUnixMs + 3'000;
            if (t.kind == kExpired) t.expire_ms = Clock::kStartUnixMs - 1;
            if (t.kind == kWrongProtocol) t.protocol_id = kProtocolId ^ 0xff;
            if (t.kind == kValidAes && aes_available()) t.suite = crypto::Suite::aes256gcm;
            if (t.kind == kNotListed) {
                t.addresses.push(other_v4());
            } else if (t.kind == kFallback) {
                t.addresses.push(other_v4());
                t.addresses.push(server_v6());
                t.addresses.push(server_v4());
            } else {
                t.addresses.push(identity % 2 ? server_v6() : server_v4());
                t.addresses.push(identity % 2 ? server_v4() : server_v6());
            }
            wire::TokenSpec spec;
            spec.suite = t.suite;
            spec.protocol_id = t.protocol_id;
            spec.create_ms = std::min(Clock::kStartUnixMs - 1000, t.expire_ms);
            spec.expire_ms = t.expire_ms;
            for (size_t j = 0; j < spec.nonce.size(); ++j) spec.nonce[j] = static_cast<uint8_t>(i * 3 + j);
            spec.private_part.client_id = t.client_id;
            spec.private_part.timeout_seconds = t.timeout_seconds;
            spec.private_part.addresses = t.addresses;
            spec.private_part.client_to_server_key = t.c2s;
            spec.private_part.server_to_client_key = t.s2c;
            spec.private_part.user_data = t.user_data;
            if (wire::mint_connect_token(spec, fuzz::private_key(), t.token) != wire::WireError::ok) std::abort();
            wire::ConnectToken parsed;
            if (wire::decode_connect_token(t.token, parsed) != wire::WireError::ok) std::abort();
            if (wire::write_request(parsed, t.request) != wire::kRequestSize) std::abort();
        }
        return v;
    }();
    return all;
}

inline unsigned token_index(unsigned identity, TokenKind kind) {
    return (identity % kIdentities) * kTokenKinds + kind;
}

// ---------------------------------------------------------------- op codes

// fuzz_server: config bytes [max_clients, max_pending, token_history, flags, outbox], then ops.
namespace server_op {
enum : uint8_t {
    request,     // src, token, mutate[, pos u16, xor u8]
    response,    // src, flags, sequence u64 [, src2][, pos u16, xor u8][, pos u16, xor u8][, token]
    packet,      // src, type, seqmode[, ...], body, keysel, mutate[, pos u16, xor u8]
    raw,         // src, len u16, bytes
    replay,      // index, src (0xff: the datagram's own source)
    pass,        // deliver the burst: receive(), flush, checks
    advance,     // step: update(), flush, checks
    send,        // peer, len, bytes: server.send
    disconnect,  // peer: server.disconnect
    shutdown,    // server.shutdown
    restart,     // stop() and start() 1 s later (a process restart)
    count_
};
}  // namespace server_op

// fuzz_client: config bytes [flags, outbox], then ops.
namespace client_op {
enum : uint8_t {
    connect,     // token
    challenge,   // from, sequence u64, token_sequence u64, fill, keysel, mutate[, pos u16, xor u8]
    denied,      // from, sequence u64, keysel, mutate[, pos u16, xor u8]
    packet,      // from, type, sequence u64, body, keysel, mutate[, pos u16, xor u8]
    raw,         // from, len u16, bytes
    replay,      // index
    advance,     // step: update(), flush, checks
    send,        // len, bytes: client.send
    disconnect,  // client.disconnect
    reset,       // client.reset
    count_
};
}  // namespace client_op

// Packet-body kinds of the `packet` op (both targets): a well-formed body built from a few
// fields, or fuzzer bytes.
enum BodyKind : uint8_t { body_structured = 0, body_bytes = 1 };

}  // namespace pomelo::fuzz::session
