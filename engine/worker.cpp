#include "engine/worker.hpp"

#include <rte_lcore.h>
#include <rte_mbuf.h>

#include <algorithm>
#include <iterator>

#include "engine/mbuf_meta.hpp"
#include "engine/mbuf_outbox.hpp"

namespace pomelo::engine {

namespace {
constexpr uint16_t kMaxBurst = server::Shard::kMaxBurst;
constexpr uint64_t kPublishIntervalNs = 100'000'000;
}  // namespace

Worker::Worker(uint16_t index, const WorkerShared& shared, WorkerRings rings, int io_queue, bool distribute)
    : index_(index),
      shared_(shared),
      rings_(rings),
      io_queue_(io_queue),
      distribute_(distribute),
      io_worker_(index),
      aead_(crypto::make_best_burst()) {
    // Sealed datagrams go straight to the device when this worker owns the queue, otherwise
    // through the queue worker's TX ring.
    outbox_ = std::make_unique<MbufOutbox>(
        *aead_, shared.config->burst, shared.mbufs, local_.drops[EngineDrop::no_mbuf],
        [this](rte_mbuf** p, wire::Address* to, uint16_t* local, drivers::LinkHop* via, uint16_t n) {
            transmit(p, to, local, via, n);
        });
    // Every shard can hold the whole server: the capacity limit is global (the handshake's).
    shard_ = std::make_unique<server::Shard>(shared.config->server, shared.config->server.max_clients,
                                             static_cast<server::ShardHooks&>(*this), *outbox_);
    app_ = shared.config->app ? shared.config->app(index) : std::make_unique<EchoApplication>();
    closed_.reserve(1024);
}

Worker::~Worker() = default;

uint16_t Worker::owner_of(const wire::Address& a) const {
    const auto key = wire::AddressKey::of(a);
    return static_cast<uint16_t>((*shared_.owner_hash)(&key, sizeof key) % shared_.workers.size());
}

void Worker::transmit(rte_mbuf** pkts, wire::Address* to, uint16_t* local, drivers::LinkHop* via, uint16_t n) {
    worked_ = true;
    if (io_queue_ >= 0) {
        shared_.port->tx_burst(static_cast<uint16_t>(io_queue_), pkts, to, local, via, n);
        return;
    }
    for (uint16_t i = 0; i < n; ++i) {
        meta(pkts[i]).address = to[i];
        meta(pkts[i]).local = local[i];
        meta(pkts[i]).hop = via[i];
    }
    rte_ring* ring = shared_.workers[io_worker_]->rings().tx;
    const unsigned sent = rte_ring_mp_enqueue_burst(ring, reinterpret_cast<void**>(pkts), n, nullptr);
    if (sent < n) {
        local_.drops[EngineDrop::tx_ring_full] += n - sent;
        rte_pktmbuf_free_bulk(pkts + sent, n - sent);
    }
}

// ---------------------------------------------------------------- the loop

int Worker::run() {
    const uint16_t burst = std::min<uint16_t>(shared_.config->burst, kMaxBurst);
    uint64_t shutdown_deadline = 0;
    while (!stop_.load(std::memory_order_relaxed)) {
        const uint64_t last_ns = now_.ns;
        now_ = clock_.now();
        if (last_ns) {  // the previous iteration's time, busy if it moved anything
            local_.loop_ns += now_.ns - last_ns;
            if (worked_) local_.busy_ns += now_.ns - last_ns;
        }
        worked_ = false;
        ++local_.loops;
        if (io_queue_ >= 0) poll_device();

        // Datagrams the queues' workers received for this shard.
        if (distribute_) {
            rte_mbuf* pkts[kMaxBurst];
            wire::Address from[kMaxBurst];
            uint16_t local[kMaxBurst];
            drivers::LinkHop hop[kMaxBurst];
            const unsigned n = rte_ring_sc_dequeue_burst(rings_.rx, reinterpret_cast<void**>(pkts), burst, nullptr);
            for (unsigned i = 0; i < n; ++i) {
                from[i] = meta(pkts[i]).address;
                local[i] = meta(pkts[i]).local;
                hop[i] = meta(pkts[i]).hop;
            }
            if (n) receive_pass(pkts, from, local, hop, static_cast<uint16_t>(n));
        }

        accept_new_peers();
        if (!rte_ring_empty(rings_.commands)) serve_commands();
        app_->on_poll(*this);
        shard_->update(now_);

        // Acquire: every new peer the control thread queued before asking for the shutdown is
        // visible in the ring below.
        if (shutdown_.load(std::memory_order_acquire) && !shutdown_started_) {
            shutdown_started_ = true;
            shutdown_deadline = now_.ns + shared_.config->shutdown_grace_ns;
            shard_->disconnect_all(now_);
        }
        outbox_->flush();
        if (!closed_.empty()) {
            const unsigned sent = rte_ring_sp_enqueue_burst_elem(rings_.closed, closed_.data(), sizeof(ClosedPeer),
                                                                 static_cast<unsigned>(closed_.size()), nullptr);
            closed_.erase(closed_.begin(), closed_.begin() + sent);  // the rest goes next loop
        }
        if (shutdown_started_ && !drained_.load(std::memory_order_relaxed) &&
            (now_.ns > shutdown_deadline || (shard_->size() == 0 && rte_ring_empty(rings_.new_peers))) &&
            closed_.empty())
            drained_.store(true, std::memory_order_release);
        if (now_.ns >= next_publish_ns_) publish();
    }
    publish();
    return 0;
}

void Worker::poll_device() {
    const uint16_t burst = std::min<uint16_t>(shared_.config->burst, kMaxBurst);
    const uint16_t q = static_cast<uint16_t>(io_queue_);
    rte_mbuf* pkts[kMaxBurst];
    wire::Address from[kMaxBurst];
    uint16_t local[kMaxBurst];
    drivers::LinkHop hop[kMaxBurst];
    const uint16_t n = shared_.port->rx_burst(q, pkts, from, local, hop, burst);
    if (n) {
        if (!distribute_) {
            receive_pass(pkts, from, local, hop, n);
        } else {
            // Hand each datagram to the shard owning its source, in one burst per shard; keep ours.
            rte_mbuf* by_owner[kMaxWorkers][kMaxBurst];
            uint16_t count[kMaxWorkers] = {};
            rte_mbuf* mine[kMaxBurst];
            wire::Address mine_from[kMaxBurst];
            uint16_t mine_local[kMaxBurst];
            drivers::LinkHop mine_hop[kMaxBurst];
            uint16_t nmine = 0;
            const size_t workers = shared_.workers.size();
            for (uint16_t i = 0; i < n; ++i) {
                const uint16_t owner = owner_of(from[i]);
                if (owner == index_) {
                    mine[nmine] = pkts[i];
                    mine_local[nmine] = local[i];
                    mine_hop[nmine] = hop[i];
                    mine_from[nmine++] = from[i];
                    continue;
                }
                meta(pkts[i]).address = from[i];
                meta(pkts[i]).local = local[i];
                meta(pkts[i]).hop = hop[i];
                by_owner[owner][count[owner]++] = pkts[i];
            }
            for (size_t w = 0; w < workers; ++w) {
                if (!count[w]) continue;
                const unsigned sent = rte_ring_mp_enqueue_burst(shared_.workers[w]->rings().rx,
                                                                reinterpret_cast<void**>(by_owner[w]), count[w], nullptr);
                if (sent < count[w]) {
                    local_.drops[EngineDrop::shard_ring_full] += count[w] - sent;
                    rte_pktmbuf_free_bulk(by_owner[w] + sent, count[w] - sent);
                }
            }
            if (nmine) receive_pass(mine, mine_from, mine_local, mine_hop, nmine);
        }
    }
    // What other workers and the control thread queued for this device queue.
    rte_mbuf* out[kMaxBurst];
    wire::Address to[kMaxBurst];
    uint16_t out_local[kMaxBurst];
    drivers::LinkHop via[kMaxBurst];
    const unsigned m = rte_ring_sc_dequeue_burst(rings_.tx, reinterpret_cast<void**>(out), burst, nullptr);
    if (m) {
        worked_ = true;
        for (unsigned i = 0; i < m; ++i) {
            to[i] = meta(out[i]).address;
            out_local[i] = meta(out[i]).local;
            via[i] = meta(out[i]).hop;
        }
        shared_.port->tx_burst(q, out, to, out_local, via, static_cast<uint16_t>(m));
    }
}

void Worker::receive_pass(rte_mbuf** pkts, const wire::Address* from, const uint16_t* local, const drivers::LinkHop* hop,
                          uint16_t n) {
    worked_ = true;
    server::RxDatagram burst[kMaxBurst];
    for (uint16_t i = 0; i < n; ++i)
        burst[i] = {std::span(rte_pktmbuf_mtod(pkts[i], uint8_t*), rte_pktmbuf_data_len(pkts[i])), from[i], local[i],
                    link_of(hop[i])};
    uint32_t handshake[kMaxBurst];
    const uint32_t nh = shard_->receive_burst(std::span(burst, n), now_, *aead_, handshake);
    // The port learns a peer's way back only from datagrams that authenticated, and only when
    // it changed (the shard compares it with the peer's last): a spoofed frame teaches nothing.
    wire::Address learn_from[kMaxBurst];
    drivers::LinkHop learn_hop[kMaxBurst];
    uint16_t nl = 0;
    for (uint16_t i = 0; i < n; ++i) {
        if (!burst[i].link_changed) continue;
        learn_from[nl] = from[i];
        learn_hop[nl++] = hop[i];
    }
    if (nl) shared_.port->learn_neighbours(io_worker_, learn_from, learn_hop, nl);
    // REQUEST / RESPONSE from unknown addresses go to the control thread, REQUESTs only when
    // they pass the checks that need no state and no crypto: a flood of junk REQUESTs is
    // dropped here at the worker's rate, never holding mbufs in the control ring.
    rte_mbuf* fwd[kMaxBurst];
    unsigned nfwd = 0;
    for (uint32_t k = 0; k < nh; ++k) {
        const uint32_t i = handshake[k];
        if (burst[i].bytes[0] == 0 &&
            !server::Handshake::precheck_request(burst[i].bytes, shared_.config->server, now_.unix_ms,
                                                 shard_->counters()))
            continue;  // freed below with the rest
        rte_mbuf* m = pkts[i];
        meta(m).address = from[i];
        meta(m).local = local[i];
        meta(m).hop = hop[i];
        meta(m).worker = index_;
        pkts[i] = nullptr;
        fwd[nfwd++] = m;
    }
    if (nfwd) {
        const unsigned sent = rte_ring_mp_enqueue_burst(shared_.control_in, reinterpret_cast<void**>(fwd), nfwd, nullptr);
        local_.handshakes_forwarded += sent;
        if (sent < nfwd) {  // a handshake flood beyond the control thread's capacity
            local_.drops[EngineDrop::control_ring_full] += nfwd - sent;
            rte_pktmbuf_free_bulk(fwd + sent, nfwd - sent);
        }
    }
    for (uint16_t i = 0; i < n; ++i)
        if (pkts[i]) rte_pktmbuf_free(pkts[i]);
}

void Worker::accept_new_peers() {
    void* objs[kMaxBurst];
    const unsigned n = rte_ring_sc_dequeue_burst(rings_.new_peers, objs, kMaxBurst, nullptr);
    worked_ |= n != 0;
    for (unsigned i = 0; i < n; ++i) {
        auto* np = static_cast<server::NewPeer*>(objs[i]);
        const std::optional<server::PeerId> id = shard_->add(*np, now_);
        if (!id) {
            closed_.push_back({np->client_id, np->address});  // give the capacity slot back
        } else if (shutdown_started_) {
            shard_->disconnect(*id, now_);  // accepted just before the shutdown: tell it at once
        }
        crypto::secure_wipe(np->user_data.data(), np->user_data.size());
        np->~NewPeer();  // wipes the keys
        rte_mempool_put(shared_.new_peer_pool, np);
    }
}
void Worker::publish() {
    WorkerStats s = local_;
    s.protocol = shard_->counters();
    s.timer_visits = shard_->timer_visits();
    if (io_queue_ >= 0) s.port = shared_.port->stats(static_cast<uint16_t>(io_queue_));
    const server::Shard::Summary sum = shard_->summary();
    for (unsigned k = 0; k < 4; ++k) s.peers[k] = sum.peers[k];
    s.rtt_sum_ns = sum.rtt_sum_ns;
    s.rtt_peers = sum.rtt_peers;
    s.rtt_max_ns = sum.rtt_max_ns;
    std::copy(std::begin(sum.rtt_buckets), std::end(sum.rtt_buckets), s.rtt_buckets);
    published_.write(s);
    next_publish_ns_ = now_.ns + kPublishIntervalNs;
}

// ---------------------------------------------------------------- shard hooks and app calls

void Worker::on_connect(server::PeerId id, int64_t client_id, const wire::UserData& user_data) {
    app_->on_connect(*this, id, client_id, user_data);
}

void Worker::on_payload(server::PeerId id, std::span<const uint8_t> payload) { app_->on_payload(*this, id, payload); }

void Worker::on_close(server::PeerId id, int64_t client_id, const wire::Address& address,
                      server::CloseReason reason) {
    closed_.push_back({client_id, address, static_cast<uint8_t>(reason)});
    app_->on_disconnect(*this, id, client_id, reason);
}

bool Worker::send(server::PeerId peer, std::span<const uint8_t> payload) { return shard_->send(peer, payload, now_); }

bool Worker::disconnect(server::PeerId peer) { return shard_->disconnect(peer, now_); }

// ---------------------------------------------------------------- administration (engine/commands.hpp)

void Worker::serve_commands() {
    void* objs[8];
    const unsigned n = rte_ring_sc_dequeue_burst(rings_.commands, objs, 8, nullptr);
    for (unsigned i = 0; i < n; ++i) {
        std::unique_ptr<CommandBox> box(static_cast<CommandBox*>(objs[i]));
        WorkerCommand& c = **box;
        if (c.kind == WorkerCommand::Kind::list_peers) {
            // The `limit` smallest client ids >= c.client_id: a max-heap (by id) of that size.
            auto by_id = [](const PeerInfo& a, const PeerInfo& b) { return a.client_id < b.client_id; };
            c.peers.reserve(c.limit + 1);
            shard_->for_each_peer([&](const server::Peer& p) {
                ++c.total;
                const auto id = static_cast<uint64_t>(p.client_id);
                if (id < c.client_id || c.limit == 0) return;
                if (c.peers.size() == c.limit && id >= c.peers.front().client_id) return;
                c.peers.push_back({id, p.address, index_, p.state, p.pings.has_rtt() ? p.pings.rtt_mean_ns() : 0});
                std::push_heap(c.peers.begin(), c.peers.end(), by_id);
                if (c.peers.size() > c.limit) {
                    std::pop_heap(c.peers.begin(), c.peers.end(), by_id);
                    c.peers.pop_back();
                }
            });
            std::sort_heap(c.peers.begin(), c.peers.end(), by_id);
        } else {
            std::optional<server::PeerId> id;
            shard_->for_each_peer([&](const server::Peer& p) {
                if (static_cast<uint64_t>(p.client_id) == c.client_id) id = shard_->id_of(p);
            });
            c.found = id && shard_->disconnect(*id, now_);
        }
        c.done.store(true, std::memory_order_release);
    }
}

}  // namespace pomelo::engine
