// Flood mode of the load generator: attack traffic at a set rate, from many forged source
// endpoints, while legitimate clients run beside it. Each kind is built so that a correct
// server drops every datagram of it for one known reason, so a run can compare the server's
// per-reason drop counters with what was sent:
//
//   kind              what is sent                                     server drop reason
//   forged_request    REQUEST, right framing and protocol id, future   auth_failed (the control
//                     expiry, random private token, from many sources  thread's one decrypt)
//   expired_request   the same with an expiry in the past              token_expired (worker
//                                                                      pre-filter, no decrypt)
//   replayed_token    one valid token's REQUEST from many sources      token_in_use (all but the
//                                                                      first, from source 0 only,
//                                                                      which is answered)
//   junk              random bytes, 18..1200 long, packet type >= 8    bad_packet_type
//   spoofed_sequence  PAYLOAD from a connected client's own address,   auth_failed (one AEAD
//                     sequence 2^40 + k, random body and tag           open; no replay state moves)
//
// Kinds are sent round-robin; the sources (local endpoints of the generator's port) in turn.
// The reasons hold while the server keeps up: above the control thread's decrypt rate (about
// 700 k/s) forged REQUESTs are also dropped as control_ring_full, and a forged source that
// shares a rate-limit slot with source 0 (a 65,536-slot table) may see rate_limited.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "drivers/port.hpp"
#include "protocol/crypto/suite.hpp"
#include "protocol/time.hpp"
#include "protocol/wire/constants.hpp"

namespace pomelo::engine {

#define POMELO_FLOOD_KINDS(X) \
    X(forged_request)         \
    X(expired_request)        \
    X(replayed_token)         \
    X(junk)                   \
    X(spoofed_sequence)

enum class FloodKind : uint8_t {
#define POMELO_X(name) name,
    POMELO_FLOOD_KINDS(POMELO_X)
#undef POMELO_X
};
inline constexpr unsigned kFloodKindCount = 5;
const char* name_of(FloodKind k);
// "forged_request" or "forged-request"; false for an unknown name.
bool flood_kind_from_name(std::string_view name, FloodKind& out);

struct FloodConfig {
    double rate_pps = 1000;  // all kinds together
    std::array<bool, kFloodKindCount> kinds{};  // which kinds are sent
    wire::Address server;
    uint64_t protocol_id = 0;
    crypto::Suite suite = crypto::Suite::chacha20poly1305;
    uint16_t first_source = 0;   // forged sources: the port's local endpoints first_source..+sources
    uint16_t sources = 1;
    // spoofed_sequence: the local endpoints of connected legitimate clients to spoof
    std::vector<uint16_t> victims;
    // replayed_token: the REQUEST of one valid token (wire::kRequestSize bytes)
    std::vector<uint8_t> valid_request;
    uint16_t burst = 32;
};

class Flooder {
public:
    // Throws std::invalid_argument if a chosen kind lacks what it needs (victims, request).
    Flooder(const FloodConfig& config, drivers::Port& port, uint16_t queue, rte_mempool* mbufs);

    // Sends what is due at `now` (paced from the first call).
    void pump(const Now& now);
    const std::array<uint64_t, kFloodKindCount>& sent() const { return sent_; }
    uint64_t total_sent() const;

private:
    uint16_t build(FloodKind k, uint8_t* out, uint16_t& local, uint64_t unix_ms);

    FloodConfig config_;
    drivers::Port& port_;
    uint16_t queue_;
    rte_mempool* mbufs_;
    std::vector<FloodKind> order_;
    size_t next_kind_ = 0;
    uint32_t next_source_ = 0, next_victim_ = 0;
    uint64_t spoof_sequence_ = uint64_t{1} << 40;
    bool first_use_sent_ = false;  // replayed_token: the one copy from source 0
    double next_ns_ = 0;
    uint64_t rng_;
    std::array<uint8_t, wire::kRequestSize> forged_{}, expired_{};  // templates
    std::array<uint8_t, 1200> junk_{};
    std::array<uint64_t, kFloodKindCount> sent_{};
    rte_mbuf* pkts_[64];  // one burst (members: wire::Address zero-initialises)
    wire::Address to_[64];
    uint16_t local_[64];
};

}  // namespace pomelo::engine
