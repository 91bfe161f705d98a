#include "engine/control.hpp"

#include <rte_cycles.h>
#include <rte_mempool.h>

#include <cstdio>
#include <iterator>

#include "engine/mbuf_meta.hpp"
#include "engine/mbuf_outbox.hpp"

namespace pomelo::engine {

namespace {
constexpr unsigned kBurst = 32;
}

Control::Control(const WorkerShared& shared)
    : shared_(shared), handshake_(shared.config->server), aead_(crypto::make_best_burst()), log_(shared.config->log_rate) {
    // Replies (CHALLENGE, DENIED) leave through the TX ring of the worker whose queue received
    // the handshake datagram: a single-queue device cannot be sent on from two threads.
    outbox_ = std::make_unique<MbufOutbox>(
        *aead_, kBurst, shared.mbufs, local_.drops[EngineDrop::no_mbuf],
        [this](rte_mbuf** pkts, wire::Address* to, uint16_t* local, drivers::LinkHop* hops, uint16_t n) {
            Worker* io = shared_.workers[shared_.workers[origin_]->io_worker()];
            for (uint16_t i = 0; i < n; ++i) {
                meta(pkts[i]).address = to[i];
                meta(pkts[i]).local = local[i];
                meta(pkts[i]).hop = hops[i];  // back the way the handshake datagram came
            }
            const unsigned sent = rte_ring_mp_enqueue_burst(io->rings().tx, reinterpret_cast<void**>(pkts), n, nullptr);
            if (sent < n) {
                local_.drops[EngineDrop::tx_ring_full] += n - sent;
                rte_pktmbuf_free_bulk(pkts + sent, n - sent);
            }
        });
}

Control::~Control() { handshake_.stop(); }

bool Control::start(std::string& error) {
    const Now now = clock_.now();
    handshake_.start(now);
    const std::string& path = shared_.config->token_journal;
    if (path.empty()) {
        if (!shared_.config->max_token_lifetime_ms) {
            error = "no token journal: give --token-journal FILE, or --max-token-lifetime (the backend's longest token "
                    "lifetime) so that tokens from before this start are refused";
            return false;
        }
        handshake_.refuse_tokens_expiring_before(now.unix_ms + shared_.config->max_token_lifetime_ms);
        return true;
    }
    std::vector<TokenJournal::Record> live;
    if (!journal_.open(path, now.unix_ms, live, error)) return false;
    for (const std::string& other : shared_.config->more_token_journals) {
        std::vector<TokenJournal::Record> more;
        if (!TokenJournal::read(other, now.unix_ms, more, error)) return false;
        live.insert(live.end(), more.begin(), more.end());
    }
    for (const TokenJournal::Record& r : live) {
        if (!handshake_.restore_connected_token(r.tag, r.expire_ms, now.unix_ms)) {
            error = "token journal " + path +
                    (shared_.config->more_token_journals.empty() ? " holds" : " and the other keys' journals hold") +
                    " more live tokens than the token history (" +
                    std::to_string(shared_.config->server.token_history) + "): raise --token-history";
            return false;
        }
    }
    return true;
}

void Control::handle(rte_mbuf** pkts, unsigned n, const Now& now) {
    server::NewPeer* accepted[kBurst];
    uint16_t owners[kBurst];
    unsigned naccepted = 0;
    for (unsigned i = 0; i < n; ++i) {
        rte_mbuf* m = pkts[i];
        std::span<uint8_t> bytes(rte_pktmbuf_mtod(m, uint8_t*), rte_pktmbuf_data_len(m));
        const MbufMeta info = meta(m);
        server::RxDatagram d{bytes, info.address, info.local, link_of(info.hop)};
        if (info.worker != origin_) outbox_->flush();  // replies leave through the origin's queue
        origin_ = info.worker;
        // A RESPONSE may create a connection: a ring slot and a record must be ready before the
        // handshake consumes its pending record, or the client could not resend. This thread is
        // the ring's only producer. The record is constructed only on success.
        void* record = nullptr;
        if (bytes[0] != 0) {
            if (rte_ring_free_count(shared_.workers[info.worker]->rings().new_peers) <= naccepted) {
                ++local_.drops[EngineDrop::new_peer_ring_full];
                rte_pktmbuf_free(m);
                continue;
            }
            if (rte_mempool_get(shared_.new_peer_pool, &record) != 0) {
                ++local_.drops[EngineDrop::no_new_peer_record];
                rte_pktmbuf_free(m);
                continue;
            }
        }
        const Refusals before = refusals();
        if (handshake_.handle(d, now, *outbox_, scratch_)) {
            // The RESPONSE authenticated: the port learns the way to the peer before its
            // worker sends the first PING.
            shared_.port->learn_neighbours(shared_.workers[info.worker]->io_worker(), &info.address, &info.hop, 1);
            owners[naccepted] = info.worker;
            accepted[naccepted++] = new (record) server::NewPeer(scratch_);
            record = nullptr;
            crypto::secure_wipe(scratch_.user_data.data(), scratch_.user_data.size());
            scratch_.client_to_server_key.wipe();
            scratch_.server_to_client_key.wipe();
        }
        log_refusal(before, info.address, now.ns);
        if (record) rte_mempool_put(shared_.new_peer_pool, record);
        rte_pktmbuf_free(m);
    }
    outbox_->flush();
    if (naccepted) hand_over(accepted, owners, naccepted);
}

// Journals the accepted tokens, then hands each connection to the worker owning its address.
// The journal write comes first: a connection-phase packet is sealed under a token's keys only
// once the token is on disk, so a restarted server can never accept it again (§9).
void Control::hand_over(server::NewPeer** accepted, const uint16_t* owners, unsigned n) {
    if (journal_.is_open()) {
        TokenJournal::Record records[kBurst];
        for (unsigned i = 0; i < n; ++i) records[i] = {accepted[i]->token_tag, accepted[i]->token_expire_ms};
        std::string error;
        if (!journal_.append(std::span(records, n), error)) {
            // Not on disk: do not start these connections (their clients time out and fetch
            // new tokens). Counted and logged once.
            if (local_.journal_errors++ == 0) std::fprintf(stderr, "pomelo-server: %s\n", error.c_str());
            for (unsigned i = 0; i < n; ++i) {
                handshake_.on_connection_closed(accepted[i]->client_id, accepted[i]->address);
                accepted[i]->~NewPeer();
                rte_mempool_put(shared_.new_peer_pool, accepted[i]);
            }
            return;
        }
    }
    for (unsigned i = 0; i < n; ++i) {
        server::NewPeer* np = accepted[i];
        // Room was checked before the handshake ran; this is the ring's only producer.
        if (rte_ring_sp_enqueue(shared_.workers[owners[i]]->rings().new_peers, np) != 0) {
            ++local_.drops[EngineDrop::new_peer_ring_full];
            handshake_.abandon(*np);
            crypto::secure_wipe(np->user_data.data(), np->user_data.size());
            np->~NewPeer();
            rte_mempool_put(shared_.new_peer_pool, np);
            continue;
        }
        ++local_.accepted;
        log_.line(clock_.ns(), "connect client %llu %s (worker %u)", static_cast<unsigned long long>(np->client_id),
                  np->address.to_string().c_str(), owners[i]);
    }
}

// Once per stats interval: sync the journal, and rewrite it when it holds mostly expired
// records (it only grows between rewrites, 24 bytes per connection).
void Control::maintain_journal() {
    if (!journal_.is_open()) return;
    std::string error;
    bool ok = journal_.sync(error);
    if (ok && journal_.records() > 2 * handshake_.tokens().connected() + 4096) {
        std::vector<TokenJournal::Record> live;
        live.reserve(handshake_.tokens().connected());
        handshake_.for_each_connected_token([&](const server::TokenTag& tag, uint64_t expire_ms) {
            live.push_back({tag, expire_ms});
        });
        ok = journal_.rewrite(live, error);
    }
    if (!ok && local_.journal_errors++ == 0) std::fprintf(stderr, "pomelo-server: %s\n", error.c_str());
}

void Control::collect_closed() {
    ClosedPeer closed[256];
    for (Worker* w : shared_.workers) {
        unsigned n;
        while ((n = rte_ring_sc_dequeue_burst_elem(w->rings().closed, closed, sizeof(ClosedPeer), 256, nullptr)) > 0)
            for (unsigned i = 0; i < n; ++i) {
                handshake_.on_connection_closed(closed[i].client_id, closed[i].address);
                const ClosedPeer& c = closed[i];
                log_.line(clock_.ns(), "disconnect client %llu %s (worker %u): %s",
                          static_cast<unsigned long long>(c.client_id), c.address.to_string().c_str(), w->index(),
                          c.reason == ClosedPeer::kNeverStarted
                              ? "never started (its worker was full)"
                              : server::to_string(static_cast<server::CloseReason>(c.reason)));
            }
    }
}

// The refusals an operator wants to see: the token authenticated (or its tag was recognised)
// and the server said no. Junk and unauthenticated datagrams are only counted.
namespace {
constexpr DropReason kLoggedRefusals[] = {DropReason::token_in_use, DropReason::client_id_connected,
                                          DropReason::address_not_in_token, DropReason::token_history_full};
}

Control::Refusals Control::refusals() const {
    const Counters& c = handshake_.counters();
    Refusals r;
    r.n[0] = c.tx[static_cast<unsigned>(wire::PacketType::denied)];
    for (unsigned i = 0; i < std::size(kLoggedRefusals); ++i) r.n[i + 1] = c.drops_of(kLoggedRefusals[i]);
    return r;
}

void Control::log_refusal(const Refusals& before, const wire::Address& from, uint64_t now_ns) {
    const Refusals after = refusals();
    for (unsigned i = 0; i < std::size(after.n); ++i) {
        if (after.n[i] == before.n[i]) continue;
        // A refused client resends its REQUEST every 100 ms: the same source and reason within
        // a second is counted, not printed again.
        const wire::AddressKey key = wire::AddressKey::of(from);
        if (key == last_deny_.address && i == last_deny_.reason && now_ns - last_deny_.at_ns < 1'000'000'000) {
            log_.suppress(now_ns);
            continue;
        }
        last_deny_ = {key, i, now_ns};
        if (i == 0)
            log_.line(now_ns, "deny %s: server full (%u clients)", from.to_string().c_str(),
                      shared_.config->server.max_clients);
        else
            log_.line(now_ns, "deny %s: %s", from.to_string().c_str(), to_string(kLoggedRefusals[i - 1]));
    }
}

void Control::run(const std::atomic<bool>& stop_requested) {
    uint64_t next_stats = clock_.ns() + shared_.config->stats_interval_ns;
    bool shutting_down = false;
    for (;;) {
        const Now now = clock_.now();
        rte_mbuf* pkts[kBurst];
        const unsigned n = rte_ring_sc_dequeue_burst(shared_.control_in, reinterpret_cast<void**>(pkts), kBurst, nullptr);
        if (n) handle(pkts, n, now);
        collect_closed();
        handshake_.update(now);
        log_.tick(now.ns);

        if ((stop_requested.load(std::memory_order_relaxed) || stop_.load(std::memory_order_relaxed)) &&
            !shutting_down) {
            shutting_down = true;
            handshake_.begin_shutdown();  // no connection is accepted from now on
            for (Worker* w : shared_.workers) w->shutdown();
        }
        if (shutting_down) {
            bool all = true;
            for (Worker* w : shared_.workers) all &= w->drained();
            if (all) {
                collect_closed();
                log_.flush();
                journal_.close();
                publish(now, shared_.config->stats_interval_ns != 0);
                return;
            }
        }
        if (now.ns >= next_stats) {
            maintain_journal();
            publish(now, shared_.config->stats_interval_ns != 0);
            next_stats = now.ns + (shared_.config->stats_interval_ns ? shared_.config->stats_interval_ns : 1'000'000'000);
        }
        if (n == 0) rte_delay_us_sleep(50);  // idle: leave the core to others
    }
}

void Control::publish(const Now& now, bool print) {
    EngineSnapshot s;
    s.at_ns = now.ns;
    for (Worker* w : shared_.workers) {
        WorkerStats ws = w->stats();
        s.per_worker.push_back(ws);
        s.workers += ws;
    }
    local_.handshake = handshake_.counters();
    local_.token_decrypts = handshake_.token_decrypts();
    local_.pending = handshake_.pending();
    local_.connected = handshake_.connected();
    s.control = local_;
    s.mbufs_free = rte_mempool_avail_count(shared_.mbufs);
    s.mbufs_total = shared_.mbufs->size;
    s.control_ring_used = rte_ring_count(shared_.control_in);
    s.control_ring_size = rte_ring_get_capacity(shared_.control_in);

    EngineSnapshot prev;
    {
        std::lock_guard lock(snapshot_mutex_);
        prev = snapshot_;
    }
    if (prev.at_ns) {
        s.interval_s = static_cast<double>(s.at_ns - prev.at_ns) / 1e9;
        auto rate = [&](uint64_t a, uint64_t b) { return s.interval_s > 0 ? static_cast<double>(a - b) / s.interval_s : 0; };
        s.rx_pps = rate(s.workers.port.rx_datagrams, prev.workers.port.rx_datagrams);
        s.tx_pps = rate(s.workers.port.tx_datagrams, prev.workers.port.tx_datagrams);
        s.handshakes_per_s = rate(s.control.accepted, prev.control.accepted);
    }
    for (size_t w = 0; w < s.per_worker.size(); ++w) {
        const WorkerStats& now_w = s.per_worker[w];
        const WorkerStats* was = w < prev.per_worker.size() ? &prev.per_worker[w] : nullptr;
        const uint64_t loop = now_w.loop_ns - (was ? was->loop_ns : 0);
        const uint64_t busy = now_w.busy_ns - (was ? was->busy_ns : 0);
        s.busy_share.push_back(loop ? static_cast<double>(busy) / static_cast<double>(loop) : 0);
    }
    if (print) {
        const auto& p = s.workers.peers;
        Counters all = s.workers.protocol;
        all += s.control.handshake;
        const uint64_t rtt = s.workers.rtt_peers ? s.workers.rtt_sum_ns / s.workers.rtt_peers : 0;
        std::printf("peers %u (unconfirmed %u, connected %u, disconnecting %u) pending %u | rx %.0f/s tx %.0f/s | "
                    "handshakes %.0f/s | drops %llu | rtt mean %.2f ms max %.2f ms\n",
                    p[1] + p[2] + p[3], p[1], p[2], p[3], s.control.pending, s.rx_pps, s.tx_pps, s.handshakes_per_s,
                    static_cast<unsigned long long>(all.total_drops() + s.workers.drops.total() + s.control.drops.total()),
                    static_cast<double>(rtt) / 1e6, static_cast<double>(s.workers.rtt_max_ns) / 1e6);
        std::fflush(stdout);
    }
    std::lock_guard lock(snapshot_mutex_);
    snapshot_ = std::move(s);
}

EngineSnapshot Control::snapshot() const {
    std::lock_guard lock(snapshot_mutex_);
    return snapshot_;
}

}  // namespace pomelo::engine
