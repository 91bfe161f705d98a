#include "engine/flood.hpp"

#include <rte_mbuf.h>

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <string>

#include "protocol/crypto/key.hpp"
#include "protocol/wire/header.hpp"

namespace pomelo::engine {

const char* name_of(FloodKind k) {
    switch (k) {
#define POMELO_X(name) \
    case FloodKind::name: return #name;
        POMELO_FLOOD_KINDS(POMELO_X)
#undef POMELO_X
    }
    return "?";
}

bool flood_kind_from_name(std::string_view name, FloodKind& out) {
    std::string n(name);
    std::replace(n.begin(), n.end(), '-', '_');
    for (unsigned k = 0; k < kFloodKindCount; ++k)
        if (n == name_of(static_cast<FloodKind>(k))) {
            out = static_cast<FloodKind>(k);
            return true;
        }
    return false;
}

namespace {
void put_le(uint8_t* p, uint64_t v) {
    for (unsigned b = 0; b < 8; ++b) p[b] = static_cast<uint8_t>(v >> (8 * b));
}
}  // namespace

Flooder::Flooder(const FloodConfig& config, drivers::Port& port, uint16_t queue, rte_mempool* mbufs)
    : config_(config), port_(port), queue_(queue), mbufs_(mbufs) {
    for (unsigned k = 0; k < kFloodKindCount; ++k)
        if (config_.kinds[k]) order_.push_back(static_cast<FloodKind>(k));
    if (order_.empty()) throw std::invalid_argument("flood: no kind chosen");
    if (config_.sources < (config_.kinds[static_cast<unsigned>(FloodKind::replayed_token)] ? 2 : 1))
        throw std::invalid_argument("flood: too few source endpoints (replayed_token needs 2)");
    if (!(config_.rate_pps > 0)) throw std::invalid_argument("flood: rate must be > 0");
    if (config_.kinds[static_cast<unsigned>(FloodKind::spoofed_sequence)] && config_.victims.empty())
        throw std::invalid_argument("flood: spoofed_sequence needs connected clients to spoof");
    if (config_.kinds[static_cast<unsigned>(FloodKind::replayed_token)] &&
        config_.valid_request.size() != wire::kRequestSize)
        throw std::invalid_argument("flood: replayed_token needs a valid REQUEST");
    if (size_t{config_.first_source} + config_.sources > port.local_addresses().size())
        throw std::invalid_argument("flood: sources run past the port's local endpoints");
    config_.burst = std::clamp<uint16_t>(config_.burst, 1, 64);
    crypto::random_bytes(&rng_, sizeof rng_);
    rng_ |= 1;
    const auto& v = crypto::version_info(config_.suite);
    for (auto* t : {&forged_, &expired_}) {
        (*t)[0] = 0;
        std::memcpy(t->data() + 1, v.data(), v.size());
        put_le(t->data() + 1 + wire::kVersionInfoSize, config_.protocol_id);
        const size_t at = 1 + wire::kVersionInfoSize + 16;
        crypto::random_bytes(t->data() + at, t->size() - at);
    }
    crypto::random_bytes(junk_.data(), junk_.size());
}

uint64_t Flooder::total_sent() const {
    uint64_t n = 0;
    for (uint64_t s : sent_) n += s;
    return n;
}

// Writes one datagram of kind `k` at `out`; returns its size and sets the local endpoint.
uint16_t Flooder::build(FloodKind k, uint8_t* out, uint16_t& local, uint64_t unix_ms) {
    auto next_random = [&] {  // xorshift64*: junk needs no cryptographic randomness
        rng_ ^= rng_ >> 12;
        rng_ ^= rng_ << 25;
        rng_ ^= rng_ >> 27;
        return rng_ * 2685821657736338717ull;
    };
    // With replayed_token chosen, source 0 sends its first copy (the one use the server
    // answers) and nothing else: a source the server answered is rate limited for a while,
    // which would change the drop reason of what it sends next.
    const uint32_t reserved = config_.kinds[static_cast<unsigned>(FloodKind::replayed_token)] ? 1 : 0;
    if (reserved && !first_use_sent_ && k == FloodKind::replayed_token) {
        first_use_sent_ = true;
        local = config_.first_source;
    } else {
        local = static_cast<uint16_t>(config_.first_source + reserved + next_source_);
        if (++next_source_ >= config_.sources - reserved) next_source_ = 0;
    }
    switch (k) {
        case FloodKind::forged_request:
        case FloodKind::expired_request: {
            // From a template (random private token, built once): copying 1077 bytes is all a
            // datagram costs, so one generator core can offer millions per second. The server
            // remembers no tag of a token that failed to open, so repeats are refused as the first.
            const auto& t = k == FloodKind::forged_request ? forged_ : expired_;
            std::memcpy(out, t.data(), t.size());
            // A day ahead, or an hour ago (a valid-looking token that any server refuses unread).
            put_le(out + 1 + wire::kVersionInfoSize + 8,
                   k == FloodKind::forged_request ? unix_ms + 86'400'000 : unix_ms - 3'600'000);
            return static_cast<uint16_t>(wire::kRequestSize);
        }
        case FloodKind::replayed_token:
            std::memcpy(out, config_.valid_request.data(), wire::kRequestSize);
            return static_cast<uint16_t>(wire::kRequestSize);
        case FloodKind::junk: {
            const auto n = static_cast<uint16_t>(wire::kMinDatagramSize + next_random() % (1200 - wire::kMinDatagramSize));
            std::memcpy(out, junk_.data(), n);
            out[0] = static_cast<uint8_t>(0x80 | (next_random() & 0x7f));  // packet type (high nibble) 8..15
            return n;
        }
        case FloodKind::spoofed_sequence: {
            local = config_.victims[next_victim_];
            if (++next_victim_ >= config_.victims.size()) next_victim_ = 0;
            const size_t h = wire::write_header(wire::PacketType::payload, spoof_sequence_++, 0,
                                                std::span<uint8_t>(out, wire::kMaxHeaderSize));
            const size_t n = h + 64 + wire::kTagSize;
            std::memcpy(out + h, junk_.data(), n - h);
            return static_cast<uint16_t>(n);
        }
    }
    return 0;
}

void Flooder::pump(const Now& now) {
    const uint64_t now_ns = now.ns;
    const double step = 1e9 / config_.rate_pps;
    if (next_ns_ == 0) next_ns_ = static_cast<double>(now_ns);
    // Behind by more than a second (a stall): do not burst to catch up.
    if (static_cast<double>(now_ns) - next_ns_ > 1e9) next_ns_ = static_cast<double>(now_ns);
    // At most a few bursts per call: the caller's legitimate clients must get their turn even
    // when the generator cannot keep up with the rate asked for.
    for (int bursts = 0; bursts < 4 && static_cast<double>(now_ns) >= next_ns_; ++bursts) {
        const auto due = static_cast<uint64_t>((static_cast<double>(now_ns) - next_ns_) / step) + 1;
        const auto k = static_cast<uint16_t>(std::min<uint64_t>(due, config_.burst));
        rte_mbuf** pkts = pkts_;
        wire::Address* to = to_;
        uint16_t* local = local_;
        if (rte_pktmbuf_alloc_bulk(mbufs_, pkts, k) != 0) return;  // try again next pump
        for (uint16_t i = 0; i < k; ++i) {
            const FloodKind kind = order_[next_kind_];
            if (++next_kind_ >= order_.size()) next_kind_ = 0;
            const uint16_t n = build(kind, rte_pktmbuf_mtod(pkts[i], uint8_t*), local[i], now.unix_ms);
            pkts[i]->data_len = n;
            pkts[i]->pkt_len = n;
            to[i] = config_.server;
            ++sent_[static_cast<unsigned>(kind)];
        }
        port_.tx_burst(queue_, pkts, to, local, k);
        next_ns_ += step * k;
    }
}

}  // namespace pomelo::engine
