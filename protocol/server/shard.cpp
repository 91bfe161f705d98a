#include "protocol/server/shard.hpp"

#include <new>

namespace pomelo::server {

using wire::PacketType;
using wire::WireError;

const char* to_string(PeerState s) {
    switch (s) {
        case PeerState::free: return "free";
        case PeerState::unconfirmed: return "unconfirmed";
        case PeerState::connected: return "connected";
        case PeerState::disconnecting: return "disconnecting";
    }
    return "?";
}

const char* to_string(CloseReason r) {
    switch (r) {
        case CloseReason::client_disconnected: return "client disconnected";
        case CloseReason::timed_out: return "timed out";
        case CloseReason::server_disconnected: return "disconnected by server";
        case CloseReason::server_stopped: return "server stopped";
    }
    return "?";
}

const char* name_of(CloseReason r) {
    switch (r) {
        case CloseReason::client_disconnected: return "client_disconnected";
        case CloseReason::timed_out: return "timed_out";
        case CloseReason::server_disconnected: return "server_disconnected";
        case CloseReason::server_stopped: return "server_stopped";
    }
    return "?";
}

Shard::Shard(const Config& config, uint32_t capacity, ShardHooks& hooks, Outbox& out)
    : config_(config),
      hooks_(hooks),
      out_(out),
      limit_(std::max<uint32_t>(capacity, 1)),
      index_(0),
      timers_(0) {}

// One more chunk of peers (cut at the limit), the index and the timer wheel sized for every
// slot made, and the new slots on the free list. Everything is allocated before anything is
// committed, so a failed allocation leaves the shard as it was (at most a larger index).
bool Shard::grow() {
    if (allocated_ >= limit_) return false;
    const uint32_t n = std::min(kChunkPeers, limit_ - allocated_);
    const uint32_t total = allocated_ + n;
    try {
        Chunk chunk(n);  // value-initialised: its pages are touched now
        index_.reserve(total);
        timers_.grow(total);
        // close() pushes back without allocating; doubling keeps growth O(1) per slot.
        if (free_.capacity() < total) free_.reserve(std::max<size_t>(total, 2 * free_.capacity()));
        for (uint32_t i = 0; i < n; ++i) chunk[i].slot = allocated_ + i;
        chunks_.push_back(std::move(chunk));
    } catch (const std::bad_alloc&) {
        return false;
    }
    // Lowest slot on top: peers fill a chunk in order.
    for (uint32_t i = total; i-- > allocated_;) free_.push_back(i);
    allocated_ = total;
    return true;
}

size_t Shard::bytes_reserved() const {
    return size_t{allocated_} * sizeof(Peer) + chunks_.capacity() * sizeof(Chunk) +
           free_.capacity() * sizeof(uint32_t) + index_.bytes() + timers_.bytes();
}

std::optional<PeerId> Shard::add(const NewPeer& np, const Now& now) {
    if (index_.find(wire::AddressKey::of(np.address))) return std::nullopt;
    if (free_.empty() && !grow()) return std::nullopt;
    const uint32_t slot = free_.back();
    free_.pop_back();
    Peer& p = at(slot);
    const uint32_t generation = p.generation + 1;
    p = Peer{};
    p.generation = generation;
    p.slot = slot;
    p.state = PeerState::unconfirmed;
    ++live_.peers[static_cast<unsigned>(PeerState::unconfirmed)];
    p.address = np.address;
    p.local = np.local;
    p.link = np.link;
    p.client_id = np.client_id;
    p.ctx = np.ctx;
    p.recv_key = np.client_to_server_key;
    p.send_key = np.server_to_client_key;
    if (preparer_) {
        p.recv_prepared = crypto::prepare_shared(*preparer_, p.recv_key, p.ctx.suite);
        p.send_prepared = crypto::prepare_shared(*preparer_, p.send_key, p.ctx.suite);
    }
    p.connected_ns = p.last_recv_ns = now.ns;
    p.timeout_ns = np.timeout_seconds > 0 ? uint64_t(np.timeout_seconds) * kSecond : 0;
    index_.insert(wire::AddressKey::of(np.address), slot);
    ++size_;
    const PeerId id{slot, generation};
    hooks_.on_connect(id, np.client_id, np.user_data);
    if (p.state == PeerState::unconfirmed) {  // the application may have disconnected it already
        send_ping(p, now);                    // "connected" PING with time (§12.5 step 3)
        timers_.schedule(slot, now.ns + config_.ping_interval_ns);
    }
    return id;
}

Peer* Shard::find(const wire::Address& address) {
    const uint32_t* slot = index_.find(wire::AddressKey::of(address));
    return slot ? &at(*slot) : nullptr;
}

Peer* Shard::get(PeerId id) {
    if (id.slot >= allocated_) return nullptr;
    Peer& p = at(id.slot);
    return p.state != PeerState::free && p.generation == id.generation ? &p : nullptr;
}

PeerId Shard::id_of(const Peer& p) const { return {p.slot, p.generation}; }

Shard::Summary Shard::summary() const {
    Summary s = live_;
    s.peers[static_cast<unsigned>(PeerState::free)] = capacity() - size_;
    return s;
}

uint64_t Shard::take_rtt_max() {
    const uint64_t m = rtt_max_;
    rtt_max_ = 0;
    return m;
}

void Shard::set_state(Peer& p, PeerState s) {
    --live_.peers[static_cast<unsigned>(p.state)];
    ++live_.peers[static_cast<unsigned>(s)];
    p.state = s;
}

unsigned Shard::rtt_bucket(uint64_t rtt) {
    unsigned b = 0;
    while (b + 1 < kRttBuckets && rtt > kRttBucketBoundsNs[b]) ++b;
    return b;
}

// The peer's RTT mean enters (sign 1) or leaves (-1) the live summary.
void Shard::count_rtt(const Peer& p, int sign) {
    if (!p.pings.has_rtt()) return;
    const uint64_t rtt = p.pings.rtt_mean_ns();
    if (sign > 0) {
        live_.rtt_sum_ns += rtt;
        ++live_.rtt_peers;
        ++live_.rtt_buckets[rtt_bucket(rtt)];
        rtt_max_ = std::max(rtt_max_, rtt);
    } else {
        live_.rtt_sum_ns -= rtt;
        --live_.rtt_peers;
        --live_.rtt_buckets[rtt_bucket(rtt)];
    }
}

// ---------------------------------------------------------------- receive

std::optional<DropReason> Shard::check(const Peer& p, const wire::PacketHeader& h) const {
    switch (h.type) {
        case PacketType::ping:
        case PacketType::pong:
        case PacketType::payload:
        case PacketType::disconnect:
            break;
        case PacketType::request:
        case PacketType::response:
            return DropReason::handshake_from_connected;
        case PacketType::challenge:
        case PacketType::denied:
            return DropReason::wrong_direction;
    }
    if (p.state == PeerState::disconnecting) return DropReason::peer_disconnecting;
    if (p.state == PeerState::free) return DropReason::unknown_peer;
    if (!p.replay.fresh(h.sequence)) return DropReason::replayed;
    return std::nullopt;
}

void Shard::confirm(Peer& p) {
    if (p.state == PeerState::unconfirmed) set_state(p, PeerState::connected);
}

void Shard::deliver(Peer& p, const wire::PacketHeader& h, std::span<const uint8_t> body, const Now& now) {
    wire::Packet packet;
    if (WireError e = wire::read_body(h.type, body, packet); e != WireError::ok) return counters_.drop(e);
    // A PING must name this connection's client id; the reference lets a wrong one refresh
    // liveness and consume replay state (§19.23).
    if (h.type == PacketType::ping && packet.ping.client_id != p.client_id)
        return counters_.drop(DropReason::wrong_client_id);

    p.replay.commit(h.sequence);
    p.last_recv_ns = now.ns;
    counters_.received(h.type);
    switch (h.type) {
        case PacketType::ping:
            confirm(p);
            if (!p.pong_sent || now.ns - p.last_pong_ns >= config_.pong_min_interval_ns)
                send_pong(p, packet.ping.ping_sequence, now.ns, now);
            break;
        case PacketType::pong:
            confirm(p);  // §18: PONG and PAYLOAD confirm too
            count_rtt(p, -1);  // the statistics follow the peer's RTT mean as it moves
            if (const auto m = p.pings.on_pong(packet.pong.ping_sequence, packet.pong.pong_delta_time, now.ns);
                m && m->rtt)
                p.clock_offset.add(m->t0, packet.pong.ping_recv_time, packet.pong.pong_delta_time, now.ns);
            count_rtt(p, 1);
            break;
        case PacketType::payload:
            confirm(p);
            hooks_.on_payload(id_of(p), packet.payload);
            break;
        case PacketType::disconnect:
            close(p, CloseReason::client_disconnected);
            break;
        default:
            break;
    }
}

// ---------------------------------------------------------------- send

bool Shard::send_ping(Peer& p, const Now& now) {
    const uint16_t ping_sequence = p.pings.on_ping_sent(now.ns);
    // Time only while unconfirmed, as the reference: the client initialises its clock from it.
    const wire::PingBody ping{p.client_id, ping_sequence, p.state == PeerState::unconfirmed, now.ns};
    if (!emit(out_, p.address, p.local, PacketType::ping, p.send_sequence++, p.ctx, p.send_key,
              [&](std::span<uint8_t> b) { return wire::write_ping_body(ping, b); }, 0, p.send_prepared)) {
        counters_.drop(DropReason::no_tx_buffer);
        return false;
    }
    counters_.sent(PacketType::ping);
    return true;
}

bool Shard::send_pong(Peer& p, uint16_t ping_sequence, uint64_t recv_ns, const Now& now) {
    const wire::PongBody pong{ping_sequence, recv_ns, now.ns - recv_ns};
    if (!emit(out_, p.address, p.local, PacketType::pong, p.send_sequence++, p.ctx, p.send_key,
              [&](std::span<uint8_t> b) { return wire::write_pong_body(pong, b); }, 0, p.send_prepared)) {
        counters_.drop(DropReason::no_tx_buffer);
        return false;
    }
    p.pong_sent = true;
    p.last_pong_ns = now.ns;
    counters_.sent(PacketType::pong);
    return true;
}

bool Shard::send_disconnect(Peer& p) {
    if (!emit(out_, p.address, p.local, PacketType::disconnect, p.send_sequence++, p.ctx, p.send_key,
              [](std::span<uint8_t>) { return 0; }, 0, p.send_prepared)) {
        counters_.drop(DropReason::no_tx_buffer);
        return false;
    }
    counters_.sent(PacketType::disconnect);
    return true;
}

bool Shard::send(PeerId id, std::span<const uint8_t> payload, const Now& now) {
    Peer* p = get(id);
    if (!p || payload.empty() || payload.size() > wire::kMaxPayloadSize) return false;
    // Until the client confirms, every PAYLOAD rides behind a PING with time, so a client that
    // lost the first PING still completes its handshake (§12.6).
    if (p->state == PeerState::unconfirmed && !send_ping(*p, now)) return false;
    if (!emit(out_, p->address, p->local, PacketType::payload, p->send_sequence++, p->ctx, p->send_key,
              [&](std::span<uint8_t> b) {
                  std::memcpy(b.data(), payload.data(), payload.size());
                  return payload.size();
              },
              0, p->send_prepared)) {
        counters_.drop(DropReason::no_tx_buffer);
        return false;
    }
    counters_.sent(PacketType::payload);
    return true;
}

bool Shard::disconnect(PeerId id, const Now& now) {
    Peer* p = get(id);
    if (!p || p->state == PeerState::disconnecting) return false;
    // Any live state, UNCONFIRMED included (§19.20).
    set_state(*p, PeerState::disconnecting);
    p->disconnects_sent = 1;
    send_disconnect(*p);
    if (p->disconnects_sent >= config_.disconnect_packets) {
        close(*p, CloseReason::server_disconnected);
    } else {
        timers_.schedule(p->slot, now.ns + config_.ping_interval_ns);
    }
    return true;
}

void Shard::disconnect_all(const Now& now) {
    for (uint32_t slot = 0; slot < allocated_; ++slot)
        if (Peer& p = at(slot); p.state == PeerState::unconfirmed || p.state == PeerState::connected)
            disconnect(id_of(p), now);
}

void Shard::clear() {
    for (uint32_t slot = 0; slot < allocated_; ++slot)
        if (Peer& p = at(slot); p.state != PeerState::free) close(p, CloseReason::server_stopped);
}

void Shard::close(Peer& p, CloseReason reason) {
    const uint32_t slot = p.slot;
    const PeerId id{slot, p.generation};
    const int64_t client_id = p.client_id;
    const wire::Address address = p.address;
    timers_.cancel(slot);
    index_.erase(wire::AddressKey::of(p.address));
    count_rtt(p, -1);
    --live_.peers[static_cast<unsigned>(p.state)];
    p.state = PeerState::free;
    // Datagrams already queued own copies of the send key (OutDatagram): wipe at once.
    p.recv_key.wipe();
    p.send_key.wipe();
    p.recv_prepared.reset();  // wiped once the datagrams queued under it are sealed
    p.send_prepared.reset();
    free_.push_back(slot);
    --size_;
    ++counters_.closed[static_cast<unsigned>(reason)];
    hooks_.on_close(id, client_id, address, reason);
}

uint32_t Shard::receive_burst(std::span<RxDatagram> burst, const Now& now, crypto::BurstAead& aead,
                              std::span<uint32_t> handshake) {
    uint32_t handshakes = 0;
    for (size_t base = 0; base < burst.size(); base += kMaxBurst) {
        const size_t n = std::min<size_t>(kMaxBurst, burst.size() - base);
        wire::PacketHeader* headers = scratch_.headers;
        Peer* owners[kMaxBurst];
        wire::PacketAd* ads = scratch_.ads;
        crypto::AeadOp* ops = scratch_.ops;
        uint32_t op_of[kMaxBurst];
        uint32_t nops = 0;
        // Stage 1: everything that needs no cryptography, counted by reason.
        for (size_t i = 0; i < n; ++i) {
            RxDatagram& d = burst[base + i];
            owners[i] = nullptr;
            if (WireError e = wire::read_header(d.bytes, headers[i]); e != WireError::ok) {
                counters_.drop(e);
                continue;
            }
            const PacketType type = headers[i].type;
            Peer* p = find(d.from);
            if (!p) {
                if (type == PacketType::request || type == PacketType::response) {
                    if (handshakes < handshake.size()) handshake[handshakes++] = static_cast<uint32_t>(base + i);
                } else {
                    counters_.drop(type == PacketType::challenge || type == PacketType::denied
                                       ? DropReason::wrong_direction
                                       : DropReason::unknown_peer);
                }
                continue;
            }
            if (auto reason = check(*p, headers[i])) {
                counters_.drop(*reason);
                continue;
            }
            owners[i] = p;
            const size_t body = wire::body_size_of(headers[i], d.bytes.size());
            ads[i] = wire::packet_ad(p->ctx, d.bytes[0]);
            op_of[i] = nops;
            ops[nops++] = {p->ctx.suite, &p->recv_key, p->recv_prepared.get(), headers[i].sequence, ads[i].data(),
                           static_cast<uint32_t>(ads[i].size()), d.bytes.data() + headers[i].size,
                           static_cast<uint32_t>(body), d.bytes.data() + headers[i].size + body, false};
        }
        // Stage 2: one AEAD burst.
        aead.open(std::span(ops, nops));
        // Stage 3: in arrival order, so a DISCONNECT after a PAYLOAD is seen after it.
        for (size_t i = 0; i < n; ++i) {
            Peer* p = owners[i];
            if (!p) continue;
            const crypto::AeadOp& op = ops[op_of[i]];
            if (!op.ok) {
                counters_.drop(WireError::auth_failed);
                continue;
            }
            if (p->state == PeerState::free || p->state == PeerState::disconnecting) {
                counters_.drop(DropReason::peer_disconnecting);  // closed earlier in this burst
                continue;
            }
            if (!p->replay.fresh(headers[i].sequence)) {  // a duplicate within this burst
                counters_.drop(DropReason::replayed);
                continue;
            }
            RxDatagram& d = burst[base + i];
            if (d.link != p->link) {  // authenticated: the peer's way back is this one now
                p->link = d.link;
                d.link_changed = true;
            }
            deliver(*p, headers[i], std::span<const uint8_t>(op.text, op.size), now);
        }
    }
    return handshakes;
}

// ---------------------------------------------------------------- timers (§12.6-§12.8, §16)

void Shard::on_timer(uint32_t slot, const Now& now) {
    Peer& p = at(slot);
    if (p.state == PeerState::free) return;
    if (p.timeout_ns && now.ns - p.last_recv_ns > p.timeout_ns) return close(p, CloseReason::timed_out);
    if (p.state == PeerState::disconnecting) {
        send_disconnect(p);
        if (++p.disconnects_sent >= config_.disconnect_packets) return close(p, CloseReason::server_disconnected);
    } else {
        send_ping(p, now);
    }
    timers_.schedule(slot, now.ns + config_.ping_interval_ns);
}

void Shard::update(const Now& now) {
    timers_.expire(now.ns, [&](uint32_t slot) { on_timer(slot, now); });
}

}  // namespace pomelo::server
