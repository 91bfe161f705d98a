#include "engine/worker.hpp"

#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>

#include <cstring>

#include <algorithm>
#include <iterator>

#include "engine/mbuf_meta.hpp"
#include "engine/mbuf_outbox.hpp"
#include "protocol/wire/bytes.hpp"

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
    // Its memory grows in chunks with the peers it holds, so the limit costs nothing upfront.
    shard_ = std::make_unique<server::Shard>(shared.config->server, shared.config->server.max_clients,
                                             static_cast<server::ShardHooks&>(*this), *outbox_);
    shard_->set_key_preparer(aead_.get());
    app_ = shared.config->app ? shared.config->app(index) : std::make_unique<EchoApplication>();
    if (shared.config->bare_loop) bare_scratch_ = std::make_unique<BareScratch>();
    closed_.reserve(1024);
    if (shared.config->tick_hz) tick_interval_ns_ = 1'000'000'000 / shared.config->tick_hz;
}

void Worker::set_shared_workers(const std::vector<Worker*>& all) {
    shared_.workers = all;
    outgoing_.resize(all.size());
}

Worker::~Worker() = default;

uint16_t Worker::owner_of(const wire::Address& a) const {
    const auto key = wire::AddressKey::of(a);
    // Multiply-shift onto 0..workers-1 (Lemire's fastrange): no division per datagram.
    const auto h = static_cast<uint32_t>((*shared_.owner_hash)(&key, sizeof key));
    return static_cast<uint16_t>((uint64_t{h} * shared_.workers.size()) >> 32);
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
    tick_start_ns_ = next_tick_ns_ = clock_.now().ns;
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
            Burst& b = ring_in_;
            const unsigned n = rte_ring_sc_dequeue_burst(rings_.rx, reinterpret_cast<void**>(b.pkts), burst, nullptr);
            for (unsigned i = 0; i < n; ++i) {
                const MbufMeta& m = meta(b.pkts[i]);
                b.addr[i] = m.address;
                b.local[i] = m.local;
                b.hop[i] = m.hop;
            }
            if (n) deliver(b.pkts, b.addr, b.local, b.hop, static_cast<uint16_t>(n));
        }

        accept_new_peers();
        deliver_messages();
        if (!rte_ring_empty(rings_.commands)) serve_commands();
        app_->on_poll(*this);
        if (tick_interval_ns_ && now_.ns >= next_tick_ns_) tick();
        shard_->update(now_);

        // Acquire: every new peer the control thread queued before asking for the shutdown is
        // visible in the ring below.
        if (shutdown_.load(std::memory_order_acquire) && !shutdown_started_) {
            shutdown_started_ = true;
            shutdown_deadline = now_.ns + shared_.config->shutdown_grace_ns;
            shard_->disconnect_all(now_);
        }
        flush_messages();
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
    Burst& r = rx_;
    const uint16_t n = shared_.port->rx_burst(q, r.pkts, r.addr, r.local, r.hop, burst);
    if (n) {
        if (!distribute_) {
            deliver(r.pkts, r.addr, r.local, r.hop, n);
        } else {
            // Hand each datagram to the shard owning its source, in one burst per shard; keep ours.
            uint16_t count[kMaxWorkers] = {};
            Burst& mine = mine_;
            uint16_t nmine = 0;
            const size_t workers = shared_.workers.size();
            for (uint16_t i = 0; i < n; ++i) {
                const uint16_t owner = owner_of(r.addr[i]);
                if (owner == index_) {
                    mine.pkts[nmine] = r.pkts[i];
                    mine.local[nmine] = r.local[i];
                    mine.hop[nmine] = r.hop[i];
                    mine.addr[nmine++] = r.addr[i];
                    continue;
                }
                MbufMeta& m = meta(r.pkts[i]);
                m.address = r.addr[i];
                m.local = r.local[i];
                m.hop = r.hop[i];
                by_owner_[owner][count[owner]++] = r.pkts[i];
            }
            for (size_t w = 0; w < workers; ++w) {
                if (!count[w]) continue;
                const unsigned sent = rte_ring_mp_enqueue_burst(shared_.workers[w]->rings().rx,
                                                                reinterpret_cast<void**>(by_owner_[w]), count[w], nullptr);
                if (sent < count[w]) {
                    local_.drops[EngineDrop::shard_ring_full] += count[w] - sent;
                    rte_pktmbuf_free_bulk(by_owner_[w] + sent, count[w] - sent);
                }
            }
            if (nmine) deliver(mine.pkts, mine.addr, mine.local, mine.hop, nmine);
        }
    }
    // What other workers and the control thread queued for this device queue.
    Burst& t = tx_;
    const unsigned m = rte_ring_sc_dequeue_burst(rings_.tx, reinterpret_cast<void**>(t.pkts), burst, nullptr);
    if (m) {
        worked_ = true;
        for (unsigned i = 0; i < m; ++i) {
            const MbufMeta& mm = meta(t.pkts[i]);
            t.addr[i] = mm.address;
            t.local[i] = mm.local;
            t.hop[i] = mm.hop;
        }
        shared_.port->tx_burst(q, t.pkts, t.addr, t.local, t.hop, static_cast<uint16_t>(m));
    }
}

void Worker::bare_pass(rte_mbuf** pkts, const wire::Address* from, const uint16_t* local, const drivers::LinkHop* hop,
                       uint16_t n) {
    BareScratch& x = *bare_scratch_;
    worked_ = true;
    Burst& out = bare_;
    Burst& rest = bare_rest_;
    uint16_t nb = 0, nr = 0;
    for (uint16_t i = 0; i < n; ++i) {
        uint8_t* d = rte_pktmbuf_mtod(pkts[i], uint8_t*);
        const uint16_t len = rte_pktmbuf_data_len(pkts[i]);
        wire::PacketHeader h;
        server::Peer* p = nullptr;
        if (len >= wire::kMinDatagramSize && d[0] >> 4 == static_cast<uint8_t>(wire::PacketType::payload) &&
            wire::read_header(std::span<const uint8_t>(d, len), h) == wire::WireError::ok)
            p = shard_->find(from[i]);
        if (!p || p->state == server::PeerState::disconnecting) {
            rest.pkts[nr] = pkts[i];
            rest.addr[nr] = from[i];
            rest.local[nr] = local[i];
            rest.hop[nr++] = hop[i];
            continue;
        }
        const uint32_t body = static_cast<uint32_t>(len - h.size - wire::kTagSize);
        x.ads[nb] = wire::packet_ad(p->ctx, d[0]);
        x.ops[nb] = {p->ctx.suite, &p->recv_key, p->recv_prepared.get(), h.sequence, x.ads[nb].data(),
                     static_cast<uint32_t>(x.ads[nb].size()), d + h.size, body, d + h.size + body, false};
        x.peers[nb] = p;
        out.pkts[nb] = pkts[i];
        out.addr[nb] = from[i];
        out.local[nb] = p->local;
        out.hop[nb++] = hop[i];
    }
    aead_->open(std::span(x.ops, nb));
    uint16_t ns = 0;
    for (uint16_t k = 0; k < nb; ++k) {
        crypto::AeadOp& op = x.ops[k];
        server::Peer* p = x.peers[k];
        if (!op.ok) {
            rte_pktmbuf_free(out.pkts[k]);
            continue;
        }
        // The reply is sealed in place: its header ends where the request's did, longer by
        // the bytes its sequence needs beyond the request's (taken from the headroom).
        uint8_t* d = rte_pktmbuf_mtod(out.pkts[k], uint8_t*);
        const unsigned have = d[0] & 0x0f;
        const uint64_t seq = p->send_sequence++;
        const unsigned need = wire::trimmed_length(seq);
        if (need > have) {
            d = reinterpret_cast<uint8_t*>(rte_pktmbuf_prepend(out.pkts[k], static_cast<uint16_t>(need - have)));
            if (!d) {  // no headroom (never with the engine's pools)
                rte_pktmbuf_free(out.pkts[k]);
                continue;
            }
        }
        p->last_recv_ns = now_.ns;  // it authenticated: the connection is alive
        const unsigned bytes = std::max(need, have);
        wire::write_header(wire::PacketType::payload, seq, bytes, std::span<uint8_t>(d, 1 + bytes));
        x.ads[ns] = wire::packet_ad(p->ctx, d[0]);
        x.ops[ns] = {p->ctx.suite, &p->send_key, p->send_prepared.get(), seq, x.ads[ns].data(), static_cast<uint32_t>(x.ads[ns].size()),
                     op.text, op.size, op.tag, false};
        out.pkts[ns] = out.pkts[k];
        out.addr[ns] = out.addr[k];
        out.local[ns] = out.local[k];
        out.hop[ns++] = out.hop[k];
    }
    aead_->seal(std::span(x.ops, ns));
    if (ns) transmit(out.pkts, out.addr, out.local, out.hop, ns);
    if (nr) receive_pass(rest.pkts, rest.addr, rest.local, rest.hop, nr);
}

void Worker::receive_pass(rte_mbuf** pkts, const wire::Address* from, const uint16_t* local, const drivers::LinkHop* hop,
                          uint16_t n) {
    worked_ = true;
    server::RxDatagram* burst = datagrams_;
    for (uint16_t i = 0; i < n; ++i)
        burst[i] = {std::span(rte_pktmbuf_mtod(pkts[i], uint8_t*), rte_pktmbuf_data_len(pkts[i])), from[i], local[i],
                    link_of(hop[i])};
    uint32_t handshake[kMaxBurst];
    const uint32_t nh = shard_->receive_burst(std::span(burst, n), now_, *aead_, handshake);
    // The port learns a peer's way back only from datagrams that authenticated, and only when
    // it changed (the shard compares it with the peer's last): a spoofed frame teaches nothing.
    uint16_t nl = 0;
    for (uint16_t i = 0; i < n; ++i) {
        if (!burst[i].link_changed) continue;
        learn_.addr[nl] = from[i];
        learn_.hop[nl++] = hop[i];
    }
    if (nl) shared_.port->learn_neighbours(io_worker_, learn_.addr, learn_.hop, nl);
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
    // The largest RTT seen over the last second (the control thread reads once a second).
    if (now_.ns >= rtt_max_reset_ns_) {
        rtt_max_ns_ = 0;
        rtt_max_reset_ns_ = now_.ns + 1'000'000'000;
    }
    rtt_max_ns_ = std::max(rtt_max_ns_, shard_->take_rtt_max());
    s.rtt_max_ns = std::max(rtt_max_ns_, published_max_);
    published_max_ = rtt_max_ns_;
    std::copy(std::begin(sum.rtt_buckets), std::end(sum.rtt_buckets), s.rtt_buckets);
    published_.write(s);
    next_publish_ns_ = now_.ns + kPublishIntervalNs;
}

// ---------------------------------------------------------------- shard hooks and app calls

void Worker::on_connect(server::PeerId id, int64_t client_id, const wire::UserData& user_data) {
    app_->on_connect(*this, to_public(id), client_id, user_data);
}

void Worker::on_payload(server::PeerId id, std::span<const uint8_t> payload) {
    app_->on_payload(*this, to_public(id), payload);
}

void Worker::on_close(server::PeerId id, int64_t client_id, const wire::Address& address,
                      server::CloseReason reason) {
    closed_.push_back({client_id, address, static_cast<uint8_t>(reason)});
    app_->on_disconnect(*this, to_public(id), client_id, to_public(reason));
}

bool Worker::send(pomelo::PeerId peer, std::span<const uint8_t> payload) {
    return shard_->send(to_internal(peer), payload, now_);
}

bool Worker::disconnect(pomelo::PeerId peer) { return shard_->disconnect(to_internal(peer), now_); }

std::optional<pomelo::PeerInfo> Worker::peer(pomelo::PeerId id) const {
    const server::Peer* p = shard_->get(to_internal(id));
    if (!p) return std::nullopt;
    pomelo::PeerInfo info;
    info.client_id = p->client_id;
    const std::string a = p->address.to_string();
    std::memcpy(info.address.data(), a.data(), std::min(a.size(), info.address.size() - 1));
    info.connected_ns = p->connected_ns;
    if (p->pings.has_rtt()) {
        info.rtt_ns = p->pings.rtt_mean_ns();
        info.rtt_variance_ns2 = p->pings.rtt_variance_ns2();
    }
    if (p->clock_offset.has_sample()) info.clock_offset_ns = p->clock_offset.offset_ns();
    return info;
}

// ---------------------------------------------------------------- ticks and messages

void Worker::tick() {
    const uint64_t tick = (now_.ns - tick_start_ns_) / tick_interval_ns_;
    next_tick_ns_ = tick_start_ns_ + (tick + 1) * tick_interval_ns_;  // missed ticks are skipped
    ++local_.ticks;
    app_->on_tick(*this, tick);
}

bool Worker::post(uint16_t to, std::span<const uint8_t> message) {
    if (to >= outgoing_.size() || to == index_ || message.empty() || message.size() > kMaxMessageSize) return false;
    void* obj;
    if (rte_mempool_get(shared_.message_pool, &obj) != 0) {
        ++local_.drops[EngineDrop::no_message_buffer];
        return false;
    }
    auto* m = static_cast<AppMessage*>(obj);
    m->from = index_;
    m->size = static_cast<uint16_t>(message.size());
    std::memcpy(m->data, message.data(), message.size());
    Outgoing& q = outgoing_[to];
    q.items[q.n++] = m;
    if (q.n == kMessageBurst) flush_messages_to(to);
    return true;
}

void Worker::flush_messages_to(uint16_t to) {
    Outgoing& q = outgoing_[to];
    // Never short: every ring holds the whole pool (Engine::create).
    const unsigned sent = rte_ring_mp_enqueue_burst(shared_.workers[to]->rings().messages,
                                                    reinterpret_cast<void**>(q.items), q.n, nullptr);
    local_.messages_posted += sent;
    if (sent < q.n) {
        local_.drops[EngineDrop::no_message_buffer] += q.n - sent;
        rte_mempool_put_bulk(shared_.message_pool, reinterpret_cast<void**>(q.items + sent), q.n - sent);
    }
    q.n = 0;
}

void Worker::flush_messages() {
    for (uint16_t w = 0; w < outgoing_.size(); ++w)
        if (outgoing_[w].n) flush_messages_to(w);
}

void Worker::deliver_messages() {
    void* objs[kMessageBurst];
    for (unsigned round = 0; round < 8; ++round) {  // bounded: the loop's other work must go on
        const unsigned n = rte_ring_sc_dequeue_burst(rings_.messages, objs, kMessageBurst, nullptr);
        if (!n) break;
        for (unsigned i = 0; i < n; ++i) {
            const auto* m = static_cast<const AppMessage*>(objs[i]);
            app_->on_message(*this, m->from, std::span(m->data, m->size));
        }
        rte_mempool_put_bulk(shared_.message_pool, objs, n);
        local_.messages_received += n;
        if (n < kMessageBurst) break;
    }
}

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
