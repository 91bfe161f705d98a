#include "engine/control.hpp"

#include <rte_cycles.h>
#include <rte_mempool.h>

#include <cstdio>

#include "engine/mbuf_meta.hpp"
#include "engine/mbuf_outbox.hpp"

namespace pomelo::engine {

namespace {
constexpr unsigned kBurst = 32;
}

Control::Control(const WorkerShared& shared)
    : shared_(shared), handshake_(shared.config->server), aead_(crypto::make_best_burst()) {
    // Replies (CHALLENGE, DENIED) leave through the TX ring of the worker whose queue received
    // the handshake datagram: a single-queue device cannot be sent on from two threads.
    outbox_ = std::make_unique<MbufOutbox>(*aead_, kBurst, shared.mbufs, no_mbuf_,
                                           [this](rte_mbuf** pkts, wire::Address* to, uint16_t n) {
                                               Worker* via = shared_.workers[shared_.workers[origin_]->io_worker()];
                                               for (uint16_t i = 0; i < n; ++i) meta(pkts[i]).address = to[i];
                                               const unsigned sent = rte_ring_mp_enqueue_burst(
                                                   via->rings().tx, reinterpret_cast<void**>(pkts), n, nullptr);
                                               if (sent < n) {
                                                   local_.ring_full += n - sent;
                                                   rte_pktmbuf_free_bulk(pkts + sent, n - sent);
                                               }
                                           });
    handshake_.start(clock_.now());
}

Control::~Control() { handshake_.stop(); }

void Control::handle(rte_mbuf** pkts, unsigned n, const Now& now) {
    for (unsigned i = 0; i < n; ++i) {
        rte_mbuf* m = pkts[i];
        std::span<uint8_t> bytes(rte_pktmbuf_mtod(m, uint8_t*), rte_pktmbuf_data_len(m));
        const MbufMeta info = meta(m);
        if (info.worker != origin_) outbox_->flush();  // replies leave through the origin's queue
        origin_ = info.worker;
        if (bytes[0] == 0) {
            handshake_.on_request(bytes, info.address, now, *outbox_);
        } else {
            wire::PacketHeader h;
            wire::read_header(bytes, h);  // parsed once already by the worker
            server::NewPeer* np = nullptr;
            if (rte_mempool_get(shared_.new_peer_pool, reinterpret_cast<void**>(&np)) != 0) {
                ++local_.ring_full;  // no record free: the client will resend its RESPONSE
            } else {
                new (np) server::NewPeer{};
                if (handshake_.on_response(bytes, h, info.address, now, *outbox_, *np)) {
                    if (rte_ring_sp_enqueue(shared_.workers[info.worker]->rings().new_peers, np) == 0) {
                        ++local_.accepted;
                        np = nullptr;
                    } else {
                        ++local_.ring_full;
                        handshake_.on_connection_closed(np->client_id);
                    }
                }
                if (np) {
                    np->~NewPeer();  // wipes the keys
                    rte_mempool_put(shared_.new_peer_pool, np);
                }
            }
        }
        rte_pktmbuf_free(m);
    }
    outbox_->flush();
}

void Control::collect_closed() {
    int64_t ids[256];
    for (Worker* w : shared_.workers) {
        unsigned n;
        while ((n = rte_ring_sc_dequeue_burst_elem(w->rings().closed, ids, sizeof(int64_t), 256, nullptr)) > 0)
            for (unsigned i = 0; i < n; ++i) handshake_.on_connection_closed(ids[i]);
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

        if (stop_requested.load(std::memory_order_relaxed) && !shutting_down) {
            shutting_down = true;
            for (Worker* w : shared_.workers) w->shutdown();
        }
        if (shutting_down) {
            bool all = true;
            for (Worker* w : shared_.workers) all &= w->drained();
            if (all) {
                collect_closed();
                publish(now, shared_.config->stats_interval_ns != 0);
                return;
            }
        }
        if (now.ns >= next_stats) {
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
    if (print) {
        const auto& p = s.workers.peers;
        Counters all = s.workers.protocol;
        all += s.control.handshake;
        const uint64_t rtt = s.workers.rtt_peers ? s.workers.rtt_sum_ns / s.workers.rtt_peers : 0;
        std::printf("peers %u (unconfirmed %u, connected %u, disconnecting %u) pending %u | rx %.0f/s tx %.0f/s | "
                    "handshakes %.0f/s | drops %llu | rtt mean %.2f ms max %.2f ms\n",
                    p[1] + p[2] + p[3], p[1], p[2], p[3], s.control.pending, s.rx_pps, s.tx_pps, s.handshakes_per_s,
                    static_cast<unsigned long long>(all.total_drops() + s.workers.ring_full + s.control.ring_full),
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

WorkerStats& WorkerStats::operator+=(const WorkerStats& o) {
    protocol += o.protocol;
    port += o.port;
    for (unsigned k = 0; k < 4; ++k) peers[k] += o.peers[k];
    rtt_sum_ns += o.rtt_sum_ns;
    rtt_peers += o.rtt_peers;
    rtt_max_ns = std::max(rtt_max_ns, o.rtt_max_ns);
    ring_full += o.ring_full;
    no_mbuf += o.no_mbuf;
    handshakes_forwarded += o.handshakes_forwarded;
    loops += o.loops;
    return *this;
}

}  // namespace pomelo::engine
