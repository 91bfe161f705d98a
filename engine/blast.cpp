#include "engine/blast.hpp"

#include <rte_mbuf.h>

#include <algorithm>
#include <cstring>
#include <stdexcept>

#include "protocol/batch_outbox.hpp"

namespace pomelo::engine {

// Sealed datagrams laid end to end at a fixed stride, in send order. The clients' state
// machines write into a few scratch buffers (BatchOutbox wants kMaxDatagramSize each); every
// flush seals a burst and copies it here.
class Blaster::Arena final : public BatchOutbox {
public:
    struct Entry {
        uint32_t client;
        uint16_t size;  // 0: the seal failed
        uint16_t local;
    };

    Arena(crypto::BurstAead& aead, uint32_t payload_size, uint32_t clients)
        : BatchOutbox(aead, kScratch),
          stride_((wire::kMaxHeaderSize + payload_size + wire::kTagSize + 15) & ~size_t{15}),
          scratch_(kScratch * wire::kMaxDatagramSize),
          to_(clients) {}

    void reset(uint64_t capacity) {
        entries_.clear();
        entries_.reserve(capacity);
        if (bytes_.size() < capacity * stride_) bytes_.resize(capacity * stride_);
        next_scratch_ = 0;
    }
    // The client whose datagram is submitted next (set before each send_via).
    void expect(uint32_t client) { client_ = client; }

    size_t size() const { return entries_.size(); }
    size_t stride() const { return stride_; }
    const Entry& entry(size_t i) const { return entries_[i]; }
    const uint8_t* bytes(size_t i) const { return bytes_.data() + i * stride_; }
    const wire::Address& to(uint32_t client) const { return to_[client]; }

protected:
    static constexpr uint32_t kScratch = 64;

    Buffer next_buffer() override {
        if (next_scratch_ >= kScratch) return {};
        uint8_t* b = scratch_.data() + size_t{next_scratch_} * wire::kMaxDatagramSize;
        return {std::span<uint8_t>(b, wire::kMaxDatagramSize), reinterpret_cast<void*>(uintptr_t{client_})};
    }
    void transmit(std::span<SealedDatagram> datagrams) override {
        for (const SealedDatagram& d : datagrams) {
            const auto client = static_cast<uint32_t>(reinterpret_cast<uintptr_t>(d.context));
            const size_t i = entries_.size();
            entries_.push_back({client, static_cast<uint16_t>(d.bytes.size()), d.local});
            if (!d.bytes.empty()) std::memcpy(bytes_.data() + i * stride_, d.bytes.data(), d.bytes.size());
            to_[client] = d.to;
        }
        next_scratch_ = 0;
    }

public:
    // BatchOutbox::acquire takes the next scratch buffer; submit keeps it.
    void taken() { ++next_scratch_; }
    // An unsealed datagram, appended as it is (Blaster::prepare_raw).
    void append_raw(uint32_t client, uint16_t local, const wire::Address& to, std::span<const uint8_t> bytes) {
        const size_t i = entries_.size();
        entries_.push_back({client, static_cast<uint16_t>(bytes.size()), local});
        std::memcpy(bytes_.data() + i * stride_, bytes.data(), bytes.size());
        to_[client] = to;
    }

private:
    size_t stride_;
    std::vector<uint8_t> scratch_;
    uint32_t next_scratch_ = 0;
    uint32_t client_ = 0;
    std::vector<Entry> entries_;
    std::vector<uint8_t> bytes_;
    std::vector<wire::Address> to_;
};

Blaster::Blaster(ClientPool& pool, drivers::Port& port, uint16_t queue, rte_mempool* mbufs, crypto::BurstAead& aead,
                 const BlastConfig& config)
    : pool_(pool), port_(port), queue_(queue), mbufs_(mbufs), aead_(aead), config_(config) {
    if (config_.payload_size < ClientPool::kPayloadHeader || config_.payload_size > wire::kMaxPayloadSize)
        throw std::invalid_argument("blast: payload size " + std::to_string(config_.payload_size) + " out of range " +
                                    std::to_string(ClientPool::kPayloadHeader) + ".." +
                                    std::to_string(wire::kMaxPayloadSize));
    if (config_.verify_every == 0) throw std::invalid_argument("blast: verify_every 0");
    if (config_.burst == 0 || config_.burst > 256) throw std::invalid_argument("blast: burst out of range 1..256");
    const uint32_t clients = pool_.config().clients;
    arena_ = std::make_unique<Arena>(aead_, config_.payload_size, clients);
    next_seq_.assign(clients, 0);
    payload_.resize(config_.payload_size);
    expect_.resize(config_.payload_size);
    sample_countdown_ = config_.verify_every;
    pool_.set_tap(this);
}

Blaster::~Blaster() {
    pool_.set_tap(nullptr);
    arena_->flush();
}

uint64_t Blaster::prepare(uint64_t count) {
    count = std::min<uint64_t>(count, config_.max_arena_bytes / arena_->stride());
    arena_->reset(count);
    verify_ = true;
    std::vector<uint32_t> connected;
    for (uint32_t i = 0; i < pool_.config().clients; ++i)
        if (pool_.client(i).state() == client::State::connected) connected.push_back(i);
    if (connected.empty()) return 0;
    // From the first sealed payload to the end of the trial the clients' own datagrams would
    // carry higher sequences than the payloads still queued (see ClientPool::set_quiet).
    pool_.set_quiet(true);
    // The per-datagram Outbox for send_via: counts the scratch buffer it took.
    struct Taking final : Outbox {
        Arena& a;
        explicit Taking(Arena& arena) : a(arena) {}
        std::span<uint8_t> acquire() override { return a.acquire(); }
        void submit(OutDatagram&& d) override {
            a.submit(std::move(d));
            a.taken();
        }
    } out(*arena_);
    for (uint64_t k = 0; k < count; ++k) {
        const uint32_t c = connected[k % connected.size()];
        ClientPool::make_payload(c, next_seq_[c], payload_);
        arena_->expect(c);
        if (!pool_.send_via(c, out, payload_)) continue;  // disconnected meanwhile
        ++next_seq_[c];
        if ((k & 0xffff) == 0xffff) {
            arena_->flush();
            pool_.poll();  // the clients' pings and timeouts go on while sealing
        }
    }
    arena_->flush();
    return arena_->size();
}

uint64_t Blaster::prepare_raw(uint64_t count, const wire::Address& server) {
    count = std::min<uint64_t>(count, config_.max_arena_bytes / arena_->stride());
    arena_->reset(count);
    const uint32_t clients = pool_.config().clients;
    std::vector<uint8_t> d(1 + 8 + config_.payload_size + wire::kTagSize, 0);
    for (uint64_t k = 0; k < count; ++k) {
        const auto c = static_cast<uint32_t>(k % clients);
        const size_t h = wire::write_header(wire::PacketType::payload, k, 8, d);
        ClientPool::make_payload(c, next_seq_[c]++, std::span(d).subspan(h, config_.payload_size));
        arena_->append_raw(c, pool_.local_of(c), server, d);
    }
    verify_ = false;
    return arena_->size();
}

BlastTrial Blaster::run(double rate_pps, const std::function<bool(const BlastTrial&)>& tick) {
    BlastTrial t;
    t.offered_pps = rate_pps;
    rx_payloads_ = verified_ = mismatched_ = sampled_ = 0;
    const uint64_t dropped_before = port_.stats(queue_).tx_dropped;
    const size_t n = arena_->size();
    const uint16_t burst = config_.burst;
    const double ns_per_pkt = rate_pps > 0 ? 1e9 / rate_pps : 0;
    rte_mbuf* pkts[256];
    wire::Address to[256];
    uint16_t local[256];

    Now now = pool_.now();
    const uint64_t start = now.ns;
    double next = static_cast<double>(start);
    uint64_t last_send = start;
    size_t i = 0;
    uint32_t loops = 0;
    while (i < n) {
        now = pool_.now();
        if (static_cast<double>(now.ns) >= next) {
            const auto k = static_cast<uint16_t>(std::min<size_t>(burst, n - i));
            if (rte_pktmbuf_alloc_bulk(mbufs_, pkts, k) == 0) {
                uint16_t m = 0;
                for (uint16_t j = 0; j < k; ++j) {
                    const Arena::Entry& e = arena_->entry(i + j);
                    if (!e.size) {
                        rte_pktmbuf_free(pkts[j]);
                        continue;
                    }
                    rte_mbuf* mb = pkts[j];
                    std::memcpy(rte_pktmbuf_mtod(mb, uint8_t*), arena_->bytes(i + j), e.size);
                    mb->data_len = e.size;
                    mb->pkt_len = e.size;
                    pkts[m] = mb;
                    to[m] = arena_->to(e.client);
                    local[m++] = e.local;
                }
                if (m) port_.tx_burst(queue_, pkts, to, local, m);
                t.sent += m;
                i += k;
                next += ns_per_pkt * k;
                last_send = i < n ? now.ns : pool_.now().ns;  // the last burst's end closes the interval
            }
        }
        pool_.poll(now);
        if (tick && (++loops & 1023) == 0) {
            t.send_ns = now.ns - start;
            t.echoed = rx_payloads_;
            if (!tick(t)) break;
        }
    }
    t.send_ns = std::max<uint64_t>(last_send - start, 1);
    const uint64_t drain_end = last_send + config_.drain_ns;
    while (rx_payloads_ < t.sent && now.ns < drain_end) {
        now = pool_.now();
        pool_.poll(now);
    }
    pool_.set_quiet(false);
    t.sent_pps = t.sent > 1 ? static_cast<double>(t.sent) * 1e9 / static_cast<double>(t.send_ns) : 0;
    t.echoed = rx_payloads_;
    t.verified = verified_;
    // A sampled echo that did not authenticate never reached on_payload: it is no echo of ours.
    t.mismatched = mismatched_ + (sampled_ > verified_ + mismatched_ ? sampled_ - verified_ - mismatched_ : 0);
    // Counted in `sent` and lost: over memif a full ring is the server not keeping up (as a
    // full RX ring on a NIC), so the generator's refused sends are the server's loss too.
    t.tx_dropped = port_.stats(queue_).tx_dropped - dropped_before;
    arena_->reset(0);
    return t;
}

bool Blaster::on_datagram(uint32_t, std::span<const uint8_t> d) {
    if (d.empty() || d[0] >> 4 != static_cast<uint8_t>(wire::PacketType::payload)) return false;  // type: high nibble
    ++rx_payloads_;
    if (!verify_ || --sample_countdown_) return true;  // counted from its header only
    sample_countdown_ = config_.verify_every;
    ++sampled_;
    return false;  // decrypted by the client, checked in on_payload
}

void Blaster::on_payload(uint32_t index, std::span<const uint8_t> p) {
    uint32_t who = 0, seq = 0;
    if (p.size() == config_.payload_size)
        for (unsigned b = 0; b < 4; ++b) {
            who |= uint32_t{p[b]} << (8 * b);
            seq |= uint32_t{p[4 + b]} << (8 * b);
        }
    if (p.size() != config_.payload_size || who != index || seq >= next_seq_[index]) {
        ++mismatched_;
        return;
    }
    ClientPool::make_payload(who, seq, expect_);
    if (std::memcmp(p.data(), expect_.data(), p.size()) != 0) ++mismatched_;
    else ++verified_;
}

CapacityResult find_capacity(double start_pps, double max_pps, unsigned steps,
                             const std::function<BlastTrial(double rate)>& trial) {
    CapacityResult r;
    // A loss counts only when a second trial at the same rate loses too (RFC 2544 allows
    // repeated trials): on a shared host one descheduling of either side drops a burst.
    auto lossless = [&](double rate) {
        BlastTrial t = trial(rate);
        r.trials.push_back(t);
        if (t.sent == 0) return false;  // nothing could be sent: no evidence of capacity
        if (t.lost() == 0 && t.mismatched == 0) return true;
        if (t.mismatched == 0) {
            t = trial(rate);
            r.trials.push_back(t);
            if (t.lost() == 0 && t.mismatched == 0) return true;
        }
        r.loss_above = t.loss_ratio();
        r.lossy_pps = rate;
        return false;
    };
    double good = 0, bad = 0;
    for (double rate = start_pps; rate <= max_pps; rate *= 2) {
        if (!lossless(rate)) {
            bad = rate;
            break;
        }
        // What was sent, not what was asked for: short of the rate, the generator is the limit.
        good = std::min(rate, r.trials.back().sent_pps);
        if (!r.trials.back().kept_up()) {
            r.generator_limited = true;
            break;
        }
    }
    if (bad > 0) {
        double lo = good, hi = bad;
        for (unsigned s = 0; s < steps; ++s) {
            const double mid = lo > 0 ? (lo + hi) / 2 : hi / 2;
            if (lossless(mid)) {
                lo = std::min(mid, r.trials.back().sent_pps);
                if (!r.trials.back().kept_up()) r.generator_limited = true;
            } else {
                hi = mid;
            }
        }
        good = lo;
    }
    r.capacity_pps = good;
    return r;
}

}  // namespace pomelo::engine
