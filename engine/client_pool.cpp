#include "engine/client_pool.hpp"

#include <algorithm>
#include <bit>
#include <cstring>
#include <stdexcept>
#include <string>

namespace pomelo::engine {

// ------------------------------------------------------------------------------ statistics

void LatencyHistogram::add(uint64_t ns) {
    unsigned index;
    if (ns < kSub) {
        index = static_cast<unsigned>(ns);
    } else {
        const unsigned top = 63u - static_cast<unsigned>(std::countl_zero(ns));  // >= 3
        const unsigned sub = static_cast<unsigned>(ns >> (top - 3)) & (kSub - 1);
        index = (top - 2) * kSub + sub;
    }
    ++buckets_[std::min<unsigned>(index, buckets_.size() - 1)];
    ++count_;
    sum_ += ns;
    max_ = std::max(max_, ns);
}

uint64_t LatencyHistogram::quantile(double q) const {
    if (!count_) return 0;
    const auto rank = static_cast<uint64_t>(std::clamp(q, 0.0, 1.0) * static_cast<double>(count_ - 1)) + 1;
    uint64_t seen = 0;
    for (unsigned i = 0; i < buckets_.size(); ++i) {
        seen += buckets_[i];
        if (seen < rank) continue;
        if (i < kSub) return i;
        const unsigned top = i / kSub + 2, sub = i % kSub;
        const uint64_t low = (uint64_t{kSub} | sub) << (top - 3);
        const uint64_t width = uint64_t{1} << (top - 3);
        return std::min(low + width / 2, max_);
    }
    return max_;
}

LatencyHistogram& LatencyHistogram::operator+=(const LatencyHistogram& o) {
    for (size_t i = 0; i < buckets_.size(); ++i) buckets_[i] += o.buckets_[i];
    count_ += o.count_;
    sum_ += o.sum_;
    max_ = std::max(max_, o.max_);
    return *this;
}

bool ClientPoolStats::all_good_but_loss(uint32_t payloads_per_client) const {
    return connected == clients && finished == clients &&
           ended[static_cast<unsigned>(client::Outcome::disconnected)] == clients &&
           payloads_sent == uint64_t{clients} * payloads_per_client && payloads_mismatched == 0 &&
           payloads_duplicated == 0;
}

uint64_t ClientPoolStats::handshake_percentile(double p) const {
    if (handshake_ns.empty()) return 0;
    std::vector<uint64_t> sorted = handshake_ns;  // summary time only
    std::sort(sorted.begin(), sorted.end());
    const auto rank = static_cast<size_t>(std::clamp(p, 0.0, 100.0) / 100.0 * static_cast<double>(sorted.size() - 1) + 0.5);
    return sorted[rank];
}

double ClientPoolStats::echo_rate() const {
    if (!payloads_echoed || last_echo_ns <= first_send_ns) return 0;
    return static_cast<double>(payloads_echoed) * 1e9 / static_cast<double>(last_echo_ns - first_send_ns);
}

bool ClientPoolStats::all_good(uint32_t payloads_per_client) const {
    return connected == clients && finished == clients &&
           ended[static_cast<unsigned>(client::Outcome::disconnected)] == clients &&
           payloads_sent == uint64_t{clients} * payloads_per_client && payloads_echoed == payloads_sent &&
           payloads_mismatched == 0 && payloads_duplicated == 0;
}

// ------------------------------------------------------------------------------ plumbing

// One client: its state machine, and the Outbox and Events it talks to (both forward to the
// pool, tagged with the client).
struct ClientPool::Slot final : Outbox, client::Events {
    Slot(ClientPool& p, uint32_t i, uint16_t l) : pool(p), index(i), local(l), client(p.config_.client, *this, *this) {}

    std::span<uint8_t> acquire() override;
    void submit(OutDatagram&& d) override;
    void on_connected(int64_t) override { pool.on_connected(*this); }
    void on_payload(std::span<const uint8_t> p) override { pool.on_echo(*this, p); }
    void on_disconnected(client::Outcome o) override { pool.on_finished(*this, o); }

    ClientPool& pool;
    const uint32_t index;
    const uint16_t local;  // index of this client's endpoint in the port's local addresses
    client::Client client;
    Phase phase = Phase::idle;
    bool was_connected = false;
    bool blocked = false;  // the last send found no mbuf
    bool waiting = false;  // in the pool's max_in_flight FIFO
    uint64_t start_at = 0;
    uint64_t connect_ns = 0;
    uint64_t next_send_ns = 0;
    uint32_t sent = 0;  // payloads sent: sequences 0..sent-1
    uint32_t low = 0;   // lowest sequence that may still be awaited; [low, sent) spans < window
    uint32_t sessions = 0;  // sessions started (ClientPoolConfig::reconnect)
    bool served = false;    // connected at least once
};

// The pool's send pass: mbufs as buffers, one AEAD burst per flush, sent from each
// datagram's client endpoint (OutDatagram::local).
class ClientPool::MbufOutbox final : public BatchOutbox {
public:
    MbufOutbox(crypto::BurstAead& aead, uint16_t burst, drivers::Port& port, uint16_t queue, rte_mempool* pool,
               ClientPoolStats& stats)
        : BatchOutbox(aead, burst),
          port_(port),
          queue_(queue),
          pool_(pool),
          stats_(stats),
          pkts_(burst),
          to_(burst),
          index_(burst) {}

protected:
    Buffer next_buffer() override {
        rte_mbuf* m = rte_pktmbuf_alloc(pool_);
        if (!m) return {};
        if (rte_pktmbuf_headroom(m) < drivers::kTxHeadroom || rte_pktmbuf_tailroom(m) < wire::kMaxDatagramSize) {
            rte_pktmbuf_free(m);
            return {};
        }
        return {std::span<uint8_t>(rte_pktmbuf_mtod(m, uint8_t*), rte_pktmbuf_tailroom(m)), m};
    }

    void transmit(std::span<SealedDatagram> datagrams) override {
        uint16_t k = 0;
        for (size_t i = 0; i < datagrams.size(); ++i) {
            const SealedDatagram& d = datagrams[i];
            auto* m = static_cast<rte_mbuf*>(d.context);
            if (d.bytes.empty()) {
                ++stats_.seal_failures;
                rte_pktmbuf_free(m);
                continue;
            }
            m->data_len = static_cast<uint16_t>(d.bytes.size());
            m->pkt_len = m->data_len;
            pkts_[k] = m;
            to_[k] = d.to;
            index_[k] = d.local;
            ++k;
        }
        if (k) port_.tx_burst(queue_, pkts_.data(), to_.data(), index_.data(), k);
    }

    void release(Buffer b) override { rte_pktmbuf_free(static_cast<rte_mbuf*>(b.context)); }

private:
    drivers::Port& port_;
    uint16_t queue_;
    rte_mempool* pool_;
    ClientPoolStats& stats_;
    std::vector<rte_mbuf*> pkts_;
    std::vector<wire::Address> to_;
    std::vector<uint16_t> index_;
};

std::span<uint8_t> ClientPool::Slot::acquire() { return (pool.divert_ ? pool.divert_ : pool.out_.get())->acquire(); }

void ClientPool::Slot::submit(OutDatagram&& d) {
    if (pool.quiet_ && !pool.divert_) {  // see set_quiet; the unsubmitted buffer goes back at the next acquire
        ++pool.stats_.quieted;
        return;
    }
    d.local = local;  // sent from this client's own endpoint
    (pool.divert_ ? pool.divert_ : pool.out_.get())->submit(std::move(d));
}

bool ClientPool::send_via(uint32_t index, Outbox& out, std::span<const uint8_t> payload) {
    Slot& s = *slots_.at(index);
    if (s.client.state() != client::State::connected) return false;
    divert_ = &out;
    const bool ok = s.client.send(payload, now_);
    divert_ = nullptr;
    return ok;
}

uint16_t ClientPool::local_of(uint32_t index) const { return slots_.at(index)->local; }


// ------------------------------------------------------------------------------ pool

ClientPool::ClientPool(const ClientPoolConfig& config, drivers::Port& port, uint16_t queue, rte_mempool* pool,
                       crypto::BurstAead& aead)
    : config_(config),
      port_(port),
      queue_(queue),
      // 100 us ticks, 4096 slots: a turn of ~410 ms covers resend, ping and pacing deadlines.
      wheel_(std::max<uint32_t>(config.clients, 1), 4096, 100'000) {
    if (config_.clients == 0) throw std::invalid_argument("client pool: no clients");
    if (size_t{config_.first_local} + config_.clients > port.local_addresses().size())
        throw std::invalid_argument("client pool: " + std::to_string(config_.clients) + " clients need " +
                                    std::to_string(config_.clients) + " local addresses from index " +
                                    std::to_string(config_.first_local) + ", the port has " +
                                    std::to_string(port.local_addresses().size()));
    if (config_.payload_size < kPayloadHeader || config_.payload_size > wire::kMaxPayloadSize)
        throw std::invalid_argument("client pool: payload size " + std::to_string(config_.payload_size) +
                                    " out of range " + std::to_string(kPayloadHeader) + ".." +
                                    std::to_string(wire::kMaxPayloadSize));
    if (config_.window == 0) throw std::invalid_argument("client pool: window 0");
    if (config_.burst == 0) throw std::invalid_argument("client pool: burst 0");
    if (!config_.token) throw std::invalid_argument("client pool: no token source");
    if (config_.rate_pps) send_interval_ns_ = std::max<uint64_t>(1, kSecond / config_.rate_pps);

    out_ = std::make_unique<MbufOutbox>(aead, config_.burst, port, queue, pool, stats_);
    slots_.reserve(config_.clients);
    for (uint32_t i = 0; i < config_.clients; ++i)
        slots_.push_back(std::make_unique<Slot>(*this, i, static_cast<uint16_t>(config_.first_local + i)));
    ring_.resize(size_t{config_.clients} * config_.window);
    bitmap_words_ = (config_.payloads + 63) / 64;
    echoed_.assign(size_t{config_.clients} * bitmap_words_, 0);
    if (config_.max_in_flight) waiters_.resize(config_.clients);
    rx_pkts_.resize(config_.burst);
    rx_from_.resize(config_.burst);
    rx_local_.resize(config_.burst);
    payload_.resize(config_.payload_size);
    expect_.resize(config_.payload_size);
    stats_.clients = config_.clients;
    stats_.handshake_ns.reserve(config_.clients);
}

ClientPool::~ClientPool() {
    if (out_) out_->flush();  // nothing queued stays in an mbuf
    crypto::secure_wipe(token_.data(), token_.size());
}

Now ClientPool::now() const { return clock_.now(); }

const client::Client& ClientPool::client(uint32_t index) const { return slots_.at(index)->client; }

void ClientPool::make_payload(uint32_t index, uint32_t sequence, std::span<uint8_t> out) {
    for (unsigned b = 0; b < 4; ++b) {
        out[b] = static_cast<uint8_t>(index >> (8 * b));
        out[4 + b] = static_cast<uint8_t>(sequence >> (8 * b));
    }
    // A 32-bit LCG seeded by (index, sequence): every payload differs from its neighbours'.
    uint32_t x = index * 2654435761u ^ (sequence * 2246822519u + 0x9e3779b9u);
    for (size_t j = kPayloadHeader; j < out.size(); ++j) {
        if ((j & 3) == 0) x = x * 1664525u + 1013904223u;
        out[j] = static_cast<uint8_t>(x >> (8 * (j & 3))) ^ static_cast<uint8_t>(j);
    }
}

void ClientPool::start(const Now& now) {
    if (started_) return;
    started_ = true;
    now_ = now;
    stats_.start_ns = now.ns;
    // Starts the wheel's cursor here: timers scheduled before its first expire() would be
    // placed by absolute tick and, were the cursor to start later, wait a whole turn.
    wheel_.expire(now.ns, [](uint32_t) {});
    for (auto& sp : slots_) {
        Slot& s = *sp;
        if (s.phase != Phase::idle) continue;
        s.phase = Phase::waiting;
        s.start_at = now.ns + uint64_t{s.index} * config_.connect_spacing_ns;
        reschedule(s);
    }
}

uint32_t ClientPool::poll() { return poll(clock_.now()); }

uint32_t ClientPool::poll(const Now& now) {
    now_ = now;
    uint32_t received = 0;
    for (uint32_t b = 0; b < kMaxRxBursts; ++b) {
        const uint16_t n =
            port_.rx_burst(queue_, rx_pkts_.data(), rx_from_.data(), rx_local_.data(), config_.burst);
        received += n;
        for (uint16_t i = 0; i < n; ++i) {
            const uint32_t c = static_cast<uint32_t>(rx_local_[i]) - config_.first_local;
            if (rx_local_[i] < config_.first_local || c >= config_.clients) {
                ++stats_.stray_datagrams;
                continue;
            }
            Slot& s = *slots_[c];
            rte_mbuf* m = rx_pkts_[i];
            if (tap_ && tap_->on_datagram(c, std::span<const uint8_t>(rte_pktmbuf_mtod(m, uint8_t*), m->data_len)))
                continue;
            s.client.receive(std::span<uint8_t>(rte_pktmbuf_mtod(m, uint8_t*), m->data_len), rx_from_[i], now);
            service(s);
        }
        if (n) rte_pktmbuf_free_bulk(rx_pkts_.data(), n);
        if (n < config_.burst) break;
    }
    wheel_.expire(now.ns, [&](uint32_t id) { service(*slots_[id]); });
    grant_credit();
    out_->flush();
    return received;
}

// Under max_in_flight, a client may send while there is credit and nobody waits ahead of it;
// otherwise it joins the FIFO (once) and is serviced again when credit frees up.
bool ClientPool::may_send(Slot& s) {
    if (!config_.max_in_flight) return true;
    if (in_flight_ < config_.max_in_flight && (waiter_count_ == 0 || granting_)) return true;
    if (!s.waiting) {
        s.waiting = true;
        waiters_[(waiter_head_ + waiter_count_) % waiters_.size()] = s.index;
        ++waiter_count_;
        ++stats_.in_flight_waits;
    }
    return false;
}

void ClientPool::grant_credit() {
    while (waiter_count_ && in_flight_ < config_.max_in_flight) {
        Slot& s = *slots_[waiters_[waiter_head_]];
        waiter_head_ = (waiter_head_ + 1) % waiters_.size();
        --waiter_count_;
        s.waiting = false;
        granting_ = true;
        service(s);  // a client with nothing more to send just leaves the FIFO
        granting_ = false;
    }
}

void ClientPool::stop(const Now& now) {
    if (stopping_) return;
    stopping_ = true;
    now_ = now;
    for (auto& sp : slots_) {
        Slot& s = *sp;
        if (s.phase == Phase::idle) {
            s.phase = Phase::done;
            ++stats_.not_started;
            ++stats_.finished;
            continue;
        }
        if (s.phase == Phase::waiting || s.phase == Phase::connecting || s.phase == Phase::sending) service(s);
    }
    out_->flush();
}

// Everything a client does at `now_`: its state machine's timers, then the pool's part.
void ClientPool::service(Slot& s) {
    s.client.update(now_);  // returns at once unless due
    switch (s.phase) {
        case Phase::waiting:
            if (stopping_) {
                wheel_.cancel(s.index);
                s.phase = Phase::done;
                if (s.sessions == 0) ++stats_.not_started;  // else between two sessions
                ++stats_.finished;
                return;
            }
            if (now_.ns >= s.start_at) begin_connect(s);
            break;
        case Phase::connecting:
            if (stopping_) begin_disconnect(s);
            break;
        case Phase::sending:
            pump(s);
            break;
        default:
            break;
    }
    reschedule(s);
}

void ClientPool::begin_connect(Slot& s) {
    s.connect_ns = now_.ns;
    const bool minted = config_.token(s.index, now_.unix_ms, token_);
    const bool ok = minted && s.client.connect(token_, now_);
    crypto::secure_wipe(token_.data(), token_.size());
    if (!ok) {
        const client::Outcome why = minted ? s.client.outcome() : client::Outcome::invalid_token;
        ++stats_.connect_failed[static_cast<unsigned>(why)];
        ++stats_.finished;
        s.phase = Phase::done;
        return;
    }
    ++stats_.started;
    ++s.sessions;
    s.phase = Phase::connecting;
}

void ClientPool::on_connected(Slot& s) {
    s.was_connected = true;
    if (!s.served) {
        s.served = true;
        ++stats_.clients_served;
    }
    s.phase = Phase::sending;
    s.next_send_ns = now_.ns;
    ++stats_.connected;
    ++connected_now_;
    stats_.handshake_ns.push_back(now_.ns - s.connect_ns);
    // Payloads go out from service(), which runs right after the receive that got us here.
}

// Gives up echoes past their deadline, sends what the window and the pacing allow, and
// disconnects when everything is answered.
void ClientPool::pump(Slot& s) {
    if (s.client.state() != client::State::connected) return;
    InFlight* ring = &ring_[size_t{s.index} * config_.window];
    while (s.low < s.sent) {
        InFlight& e = ring[s.low % config_.window];
        if (e.seq == s.low) {
            if (e.sent_ns + config_.echo_timeout_ns > now_.ns) break;
            e.seq = UINT32_MAX;
            ++stats_.payloads_given_up;
            --in_flight_;
        }
        ++s.low;
    }
    s.blocked = false;
    while (!stopping_ && s.sent < config_.payloads && s.sent - s.low < config_.window &&
           (!send_interval_ns_ || now_.ns >= s.next_send_ns) && may_send(s)) {
        make_payload(s.index, s.sent, payload_);
        if (!s.client.send(payload_, now_)) {
            s.blocked = true;
            ++stats_.send_blocked;
            break;
        }
        if (!stats_.payloads_sent) stats_.first_send_ns = now_.ns;
        ring[s.sent % config_.window] = {s.sent, now_.ns};
        ++s.sent;
        ++in_flight_;
        ++stats_.payloads_sent;
        if (send_interval_ns_) {
            s.next_send_ns += send_interval_ns_;
            // Behind by more than a window's worth (a stall): do not burst to catch up.
            if (now_.ns > s.next_send_ns + send_interval_ns_ * config_.window) s.next_send_ns = now_.ns;
        }
    }
    // Everything answered (or given up): done, or stopping and drained.
    if (s.low == s.sent && (stopping_ || (s.sent == config_.payloads && config_.disconnect_when_done))) {
        // Spread over clients and sessions: every client vanishes now and then.
        if (!stopping_ && config_.vanish_every && (s.index + s.sessions) % config_.vanish_every == 0) return vanish(s);
        begin_disconnect(s);
    }
}

// Forgets the connection without a word to the server, which times it out (spec §12.8).
void ClientPool::vanish(Slot& s) {
    s.client.reset();
    ++stats_.vanished;
    --connected_now_;
    end_session(s, config_.vanish_wait_ns);
}

void ClientPool::begin_disconnect(Slot& s) {
    switch (s.client.state()) {
        case client::State::connected:
            s.phase = Phase::disconnecting;
            ++stats_.disconnecting;
            s.client.disconnect(now_);  // may end at once (disconnect_packets 1): on_finished
            return;
        case client::State::sending_request:
        case client::State::sending_response:
            s.client.reset();  // nothing to tell a server that never accepted us
            ++stats_.aborted;
            ++stats_.finished;
            s.phase = Phase::done;
            return;
        default:
            return;
    }
}

void ClientPool::on_echo(Slot& s, std::span<const uint8_t> p) {
    if (tap_) return tap_->on_payload(s.index, p);
    uint32_t index = 0, seq = 0;
    if (p.size() == config_.payload_size) {
        for (unsigned b = 0; b < 4; ++b) {
            index |= uint32_t{p[b]} << (8 * b);
            seq |= uint32_t{p[4 + b]} << (8 * b);
        }
    }
    if (p.size() != config_.payload_size || index != s.index || seq >= s.sent) {
        ++stats_.payloads_mismatched;
        return;
    }
    make_payload(index, seq, expect_);
    if (std::memcmp(p.data(), expect_.data(), p.size()) != 0) {
        ++stats_.payloads_mismatched;
        return;
    }
    uint64_t& word = echoed_[size_t{s.index} * bitmap_words_ + seq / 64];
    const uint64_t bit = uint64_t{1} << (seq % 64);
    if (word & bit) {
        ++stats_.payloads_duplicated;
        return;
    }
    word |= bit;
    ++stats_.payloads_echoed;
    stats_.last_echo_ns = now_.ns;
    InFlight& e = ring_[size_t{s.index} * config_.window + seq % config_.window];
    if (e.seq == seq) {
        stats_.echo_rtt.add(now_.ns - e.sent_ns);
        e.seq = UINT32_MAX;
        --in_flight_;
    } else {
        ++stats_.payloads_late;  // given up before it came back
    }
}

void ClientPool::on_finished(Slot& s, client::Outcome why) {
    if (s.phase == Phase::done) return;
    // What it still awaited will never come: give its credit back.
    InFlight* ring = &ring_[size_t{s.index} * config_.window];
    for (uint32_t k = 0; k < config_.window; ++k)
        if (ring[k].seq != UINT32_MAX) {
            ring[k].seq = UINT32_MAX;
            --in_flight_;
        }
    if (s.was_connected) {
        ++stats_.ended[static_cast<unsigned>(why)];
        --connected_now_;
    } else {
        ++stats_.connect_failed[static_cast<unsigned>(why)];
    }
    if (s.client.pings().has_rtt()) {
        stats_.ping_rtt_sum_ns += s.client.pings().rtt_mean_ns();
        ++stats_.ping_rtt_clients;
    }
    end_session(s, config_.reconnect_delay_ns);
}

// A session is over: the client starts the next one after `wait_ns` (soak), or is done.
void ClientPool::end_session(Slot& s, uint64_t wait_ns) {
    if (!config_.reconnect || stopping_) {
        ++stats_.finished;
        s.phase = Phase::done;
        return;
    }
    s.was_connected = false;
    s.sent = s.low = 0;
    std::fill_n(echoed_.begin() + static_cast<ptrdiff_t>(size_t{s.index} * bitmap_words_), bitmap_words_, 0);
    s.phase = Phase::waiting;
    s.start_at = now_.ns + wait_ns;
}

uint64_t ClientPool::app_due(const Slot& s) const {
    switch (s.phase) {
        case Phase::waiting:
            return s.start_at;
        case Phase::sending: {
            uint64_t due = UINT64_MAX;
            if (s.low < s.sent) {
                const InFlight& e = ring_[size_t{s.index} * config_.window + s.low % config_.window];
                due = e.sent_ns + config_.echo_timeout_ns;
            }
            if (!stopping_ && s.sent < config_.payloads && s.sent - s.low < config_.window) {
                if (s.blocked) due = std::min(due, now_.ns + kMillisecond);
                else if (send_interval_ns_) due = std::min(due, s.next_send_ns);
            }
            return due;
        }
        default:
            return UINT64_MAX;
    }
}

void ClientPool::reschedule(Slot& s) {
    const uint64_t due = std::min(s.client.next_update_ns(), app_due(s));
    if (due == UINT64_MAX || s.phase == Phase::done) wheel_.cancel(s.index);
    else wheel_.schedule(s.index, due);
}

}  // namespace pomelo::engine
