#include "tests/engine/engine_bed.hpp"

#include <unistd.h>

#include <filesystem>

#include <gtest/gtest.h>
#include <rte_dev.h>
#include <rte_eth_ring.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>

#include <algorithm>
#include <cstring>
#include <ctime>
#include <map>
#include <stdexcept>

#include "drivers/eal.hpp"
#include "drivers/l2l3.hpp"
#include "engine/mbuf_meta.hpp"
#include "protocol/wire/connect_token.hpp"

namespace pomelo::test::bed {

namespace {

using Clock = std::chrono::steady_clock;

uint64_t unix_ms() {
    timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return uint64_t(ts.tv_sec) * 1000 + uint64_t(ts.tv_nsec) / 1'000'000;
}

rte_ether_addr mac_of(const std::string& device) {
    uint16_t id = 0;
    rte_ether_addr mac{};
    if (rte_eth_dev_get_port_by_name(device.c_str(), &id) != 0 || rte_eth_macaddr_get(id, &mac) != 0)
        throw std::runtime_error("engine bed: no MAC for " + device);
    return mac;
}

std::unique_ptr<drivers::Port> open_port(const std::string& device, std::vector<wire::Address> local, uint16_t queues,
                                         rte_mempool* pool, const rte_ether_addr& gateway) {
    drivers::EthdevConfig c;
    c.device = device;
    c.local = std::move(local);
    c.queues = queues;
    c.pool = pool;
    c.rx_desc = c.tx_desc = 1024;
    c.neighbours = 1024;
    c.gateway = gateway;
    std::string error;
    std::unique_ptr<drivers::Port> p = drivers::open_ethdev_port(c, error);
    if (!p) throw std::runtime_error("engine bed: " + error);
    return p;
}

void drain(rte_ring* r) {
    void* m = nullptr;
    while (r && rte_ring_dequeue(r, &m) == 0) rte_pktmbuf_free(static_cast<rte_mbuf*>(m));
}

}  // namespace

wire::Address server_address(unsigned i) {
    return wire::Address::ipv4({198, 18, 0, static_cast<uint8_t>(1 + i)}, 40000);
}

wire::Address peer_address(unsigned i) {
    return wire::Address::ipv4({198, 19, static_cast<uint8_t>(i / 200), static_cast<uint8_t>(1 + i % 200)},
                               static_cast<uint16_t>(50000 + i));
}

// ---------------------------------------------------------------- clients

BedClient::BedClient(EngineBed& bed, unsigned address_index, const Bytes& token, const wire::Address& server_,
                     uint16_t queue_)
    : peer(token), index(address_index), address(peer_address(address_index)), server(server_), queue(queue_),
      bed_(bed) {
    bed_.attach(this);
}

BedClient::~BedClient() { bed_.detach(this); }

void BedClient::start() {
    send(peer.start());
    last_resend_ = Clock::now();
}

void BedClient::send(const Bytes& datagram) {
    bed_.transmit(*this, datagram);
    ++sent;
}

void BedClient::send_disconnect(unsigned copies) {
    for (unsigned i = 0; i < copies; ++i) send(peer.disconnect());
}

// ---------------------------------------------------------------- the bed

EngineBed::EngineBed(BedOptions options) : options_(std::move(options)) {
    static std::atomic<unsigned> serial{0};
    id_ = std::to_string(serial++);
    for (uint16_t q = 0; q < options_.queues; ++q) {
        const std::string qs = id_ + "_" + std::to_string(q);
        c2s_.push_back(rte_ring_create(("bed_c2s" + qs).c_str(), options_.cable_ring, 0, RING_F_SP_ENQ | RING_F_SC_DEQ));
        s2c_.push_back(rte_ring_create(("bed_s2c" + qs).c_str(), options_.cable_ring, 0, RING_F_SP_ENQ | RING_F_SC_DEQ));
        if (!c2s_.back() || !s2c_.back()) throw std::runtime_error("engine bed: cannot create the cable rings");
    }
    const int s = rte_eth_from_rings(("bsrv" + id_).c_str(), c2s_.data(), options_.queues, s2c_.data(),
                                     options_.queues, 0);
    const int p = rte_eth_from_rings(("bpeer" + id_).c_str(), s2c_.data(), options_.queues, c2s_.data(),
                                     options_.queues, 0);
    if (s < 0 || p < 0) throw std::runtime_error("engine bed: cannot create the ring ports");
    server_dev_ = "net_ring_bsrv" + id_;
    peer_dev_ = "net_ring_bpeer" + id_;
    server_mac_ = mac_of(server_dev_);
    peer_mac_ = mac_of(peer_dev_);

    std::string error;
    server_pool_ = drivers::make_mbuf_pool(("bed_srv" + id_).c_str(), options_.mbufs, error, engine::kMbufPrivSize);
    // Frames the peer sends become the server's received mbufs (net_ring moves, never
    // copies): they need the engine's private area too.
    if (server_pool_)
        peer_pool_ = drivers::make_mbuf_pool(("bed_peer" + id_).c_str(), 16383, error, engine::kMbufPrivSize);
    if (!server_pool_ || !peer_pool_) throw std::runtime_error("engine bed: " + error);

    server_port_ = open_port(server_dev_, options_.binds, options_.queues, server_pool_, peer_mac_);
    std::vector<wire::Address> peers;
    for (unsigned i = 0; i < options_.peer_addresses; ++i) peers.push_back(peer_address(i));
    peer_port_ = open_port(peer_dev_, peers, options_.queues, peer_pool_, server_mac_);
    clients_.assign(options_.peer_addresses, nullptr);
}

EngineBed::~EngineBed() {
    if (!own_journal_.empty())
        for (const char* suffix : {"", ".lock", ".tmp"}) std::filesystem::remove(own_journal_ + suffix);
    destroy_engine();
    server_port_.reset();
    peer_port_.reset();
    for (rte_ring* r : c2s_) drain(r);
    for (rte_ring* r : s2c_) drain(r);
    rte_eal_hotplug_remove("vdev", server_dev_.c_str());
    rte_eal_hotplug_remove("vdev", peer_dev_.c_str());
    for (rte_ring* r : c2s_) rte_ring_free(r);
    for (rte_ring* r : s2c_) rte_ring_free(r);
    // Everything the engine took from its pool must be back once it is gone.
    if (server_pool_) {
        EXPECT_EQ(rte_mempool_avail_count(server_pool_), server_pool_->size) << "engine mbufs not returned";
        rte_mempool_free(server_pool_);
    }
    if (peer_pool_) rte_mempool_free(peer_pool_);
}

void EngineBed::start() {
    if (!engine_) {
        engine::EngineConfig cfg;
        cfg.server.protocol_id = kProtocolId;
        cfg.server.private_key = options_.key;
        cfg.server.max_clients = options_.max_clients;
        cfg.server.public_addresses = options_.binds;
        if (options_.token_journal.empty() && own_journal_.empty()) {
            static int count = 0;
            own_journal_ = (std::filesystem::temp_directory_path() /
                            ("pomelo-bed-" + std::to_string(::getpid()) + "-" + std::to_string(count++) + ".tokens"))
                               .string();
        }
        cfg.token_journal = options_.token_journal.empty() ? own_journal_ : options_.token_journal;
        cfg.workers = options_.workers;
        cfg.mbufs = options_.mbufs;
        cfg.control_ring_size = options_.control_ring_size;
        cfg.shutdown_grace_ns = options_.shutdown_grace_ns;
        cfg.stats_interval_ns = options_.stats_interval_ns;
        cfg.app = options_.app ? options_.app : engine::application_by_name("echo");
        cfg.tick_hz = options_.tick_hz;
        std::string error;
        engine_ = engine::Engine::create(cfg, *server_port_, server_pool_, error);
        if (!engine_) throw std::runtime_error("engine bed: " + error);
    }
    stop_.store(false);
    returned_.store(false);
    runner_ = std::thread([this] {
        rc_ = engine_->run(stop_);
        stop_to_return_ns_ = static_cast<uint64_t>(
            std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - stop_requested_at_).count());
        returned_.store(true);
    });
}

void EngineBed::request_stop() {
    stop_requested_at_ = Clock::now();
    stop_.store(true);
}

int EngineBed::join(uint64_t* stop_to_return_ns) {
    if (!runner_.joinable()) return rc_;
    if (!stop_.load()) request_stop();
    until([&] { return returned_.load(); }, std::chrono::seconds(120));
    runner_.join();
    last_snapshot_ = engine_->snapshot();
    if (stop_to_return_ns) *stop_to_return_ns = stop_to_return_ns_;
    return rc_;
}

void EngineBed::destroy_engine() {
    if (runner_.joinable()) join();
    engine_.reset();
}

engine::EngineSnapshot EngineBed::fresh_snapshot() {
    const uint64_t at = snapshot().at_ns;
    until([&] { return snapshot().at_ns != at; }, std::chrono::seconds(10));
    until([&] { return snapshot().at_ns != at; }, std::chrono::seconds(10));
    return snapshot();
}

Bytes EngineBed::mint(int64_t client_id, std::optional<wire::Address> listed, int32_t timeout_s) const {
    wire::TokenSpec spec;
    spec.protocol_id = kProtocolId;
    spec.create_ms = unix_ms();
    spec.expire_ms = spec.create_ms + 300'000;
    crypto::random_bytes(spec.nonce.data(), spec.nonce.size());
    spec.private_part.client_id = client_id;
    spec.private_part.timeout_seconds = timeout_s ? timeout_s : options_.token_timeout_s;
    spec.private_part.addresses.push(listed ? *listed : options_.binds[0]);
    spec.private_part.client_to_server_key = crypto::Key::random();
    spec.private_part.server_to_client_key = crypto::Key::random();
    for (size_t i = 0; i < spec.private_part.user_data.size(); ++i)
        spec.private_part.user_data[i] = static_cast<uint8_t>(client_id + i);
    Bytes token(wire::kConnectTokenSize);
    if (wire::mint_connect_token(spec, options_.key, std::span<uint8_t, wire::kConnectTokenSize>(token.data(), token.size())) !=
        wire::WireError::ok)
        throw std::runtime_error("engine bed: cannot mint a token");
    return token;
}

void EngineBed::attach(BedClient* c) {
    if (c->index >= clients_.size() || clients_[c->index]) throw std::runtime_error("engine bed: peer address in use");
    clients_[c->index] = c;
}

void EngineBed::detach(BedClient* c) {
    if (c->index < clients_.size() && clients_[c->index] == c) clients_[c->index] = nullptr;
}

void EngineBed::transmit(BedClient& c, const Bytes& datagram) {
    // The peer never loses its own datagrams to a full cable: it waits for the server to read.
    for (unsigned spins = 0; cable_free(c.queue) == 0; ++spins) {
        if (spins > 2'000'000) throw std::runtime_error("engine bed: the server stopped reading the cable");
        rte_pause();
    }
    rte_mbuf* m = rte_pktmbuf_alloc(peer_pool_);
    if (!m) throw std::runtime_error("engine bed: peer pool empty");
    std::memcpy(rte_pktmbuf_append(m, static_cast<uint16_t>(datagram.size())), datagram.data(), datagram.size());
    const uint16_t local = static_cast<uint16_t>(c.index);
    if (peer_port_->tx_burst(c.queue, &m, &c.server, &local, 1) != 1)
        throw std::runtime_error("engine bed: the peer port refused a datagram");
}

void EngineBed::pump(bool busy) {
    constexpr uint16_t kBurst = 32;
    rte_mbuf* pkts[kBurst];
    wire::Address from[kBurst];
    uint16_t local[kBurst];
    std::vector<Bytes> out;
    bool idle = true;
    for (uint16_t q = 0; q < options_.queues; ++q) {
        const uint16_t n = peer_port_->rx_burst(q, pkts, from, local, kBurst);
        if (n) idle = false;
        for (uint16_t i = 0; i < n; ++i) {
            const uint8_t* p = rte_pktmbuf_mtod(pkts[i], const uint8_t*);
            std::span<const uint8_t> bytes(p, rte_pktmbuf_data_len(pkts[i]));
            BedClient* c = local[i] < clients_.size() ? clients_[local[i]] : nullptr;
            if (!c) {
                ++unclaimed_;
            } else if (from[i] != c->server) {
                c->wrong_source.emplace_back(bytes.begin(), bytes.end());
            } else {
                out.clear();
                c->peer.receive(bytes, out);
                for (const Bytes& d : out) {
                    if (c->hold) c->held.push_back(d);
                    else c->send(d);
                }
            }
            rte_pktmbuf_free(pkts[i]);
        }
    }
    // 10 Hz resends of REQUEST / RESPONSE (§13.3, §13.4).
    const auto now = Clock::now();
    for (BedClient* c : clients_) {
        if (!c || c->hold || now - c->last_resend_ < std::chrono::milliseconds(100)) continue;
        for (const Bytes& d : c->peer.resend()) c->send(d);
        c->last_resend_ = now;
    }
    if (idle && !busy) {
        timespec ts{0, 50'000};
        nanosleep(&ts, nullptr);  // leave the CPU to the lcores
    }
}

bool EngineBed::until(const std::function<bool()>& done, std::chrono::milliseconds limit) {
    const auto end = Clock::now() + limit;
    for (;;) {
        pump();
        if (done()) return true;
        if (Clock::now() > end) return false;
    }
}

void EngineBed::pump_for(std::chrono::milliseconds d) {
    until([] { return false; }, d);
}

bool EngineBed::connect(const std::vector<BedClient*>& cs, std::chrono::milliseconds limit) {
    for (BedClient* c : cs) c->start();
    return until([&] { return std::all_of(cs.begin(), cs.end(), [](BedClient* c) { return c->peer.connected(); }); },
                 limit);
}

size_t EngineBed::echo(BedClient& c, size_t n, size_t size, uint32_t seed) {
    const size_t before = c.peer.payloads().size();
    std::vector<Bytes> sent;
    for (size_t i = 0; i < n; ++i) {
        sent.push_back(pattern(size, seed + static_cast<uint32_t>(i)));
        c.send_payload(sent.back());
        pump(true);
    }
    until([&] { return c.peer.payloads().size() >= before + n; }, std::chrono::seconds(5));
    size_t same = 0;
    for (size_t i = 0; i < n && before + i < c.peer.payloads().size(); ++i) same += c.peer.payloads()[before + i] == sent[i];
    return same;
}

Bytes pattern(size_t n, uint32_t seed) {
    Bytes b(n);
    for (size_t i = 0; i < n; ++i) b[i] = static_cast<uint8_t>(seed * 131 + i * 7 + (seed >> 8));
    return b;
}

rte_mbuf* EngineBed::frame(rte_mempool* pool, const wire::Address& from, const wire::Address& to,
                           std::span<const uint8_t> payload) const {
    rte_mbuf* m = rte_pktmbuf_alloc(pool);
    if (!m) return nullptr;
    std::memcpy(rte_pktmbuf_append(m, static_cast<uint16_t>(payload.size())), payload.data(), payload.size());
    if (!drivers::l2l3::prepend_udp(m, peer_mac_, server_mac_, from, to, drivers::l2l3::TxOffloads{})) {
        rte_pktmbuf_free(m);
        return nullptr;
    }
    return m;
}

unsigned EngineBed::inject(rte_mbuf** frames, unsigned n, uint16_t q) {
    return rte_ring_sp_enqueue_burst(c2s_[q], reinterpret_cast<void**>(frames), n, nullptr);
}

EngineBed::Flood EngineBed::make_flood(const wire::Address& from, const wire::Address& to,
                                       std::span<const uint8_t> payload) const {
    Flood f;
    rte_mbuf* m = frame(peer_pool_, from, to, payload);
    if (!m) throw std::runtime_error("engine bed: cannot build the flood frame");
    f.frame.assign(rte_pktmbuf_mtod(m, const uint8_t*), rte_pktmbuf_mtod(m, const uint8_t*) + rte_pktmbuf_data_len(m));
    rte_pktmbuf_free(m);
    constexpr size_t kUdpCksum = 14 + 20 + 6;
    f.frame[kUdpCksum] = f.frame[kUdpCksum + 1] = 0;
    f.next_port = from.port;
    return f;
}

unsigned EngineBed::flood(Flood& f, rte_mempool* pool, unsigned n, uint16_t q) {
    constexpr unsigned kMax = 64;
    constexpr size_t kUdpSrcPort = 14 + 20;
    rte_mbuf* pkts[kMax];
    n = std::min(n, kMax);
    unsigned built = 0;
    if (rte_pktmbuf_alloc_bulk(pool, pkts, n) != 0) {  // all or nothing: fall back to one by one
        for (; built < n; ++built)
            if (!(pkts[built] = rte_pktmbuf_alloc(pool))) break;
    } else {
        built = n;
    }
    for (unsigned i = 0; i < built; ++i) {
        rte_mbuf* m = pkts[i];
        uint8_t* p = reinterpret_cast<uint8_t*>(rte_pktmbuf_append(m, static_cast<uint16_t>(f.frame.size())));
        std::memcpy(p, f.frame.data(), f.frame.size());
        uint16_t port = f.next_port++;
        if (port == 0) port = f.next_port++;  // port 0 is not a source
        p[kUdpSrcPort] = static_cast<uint8_t>(port >> 8);
        p[kUdpSrcPort + 1] = static_cast<uint8_t>(port);
    }
    const unsigned sent = inject(pkts, built, q);
    if (sent < built) rte_pktmbuf_free_bulk(pkts + sent, built - sent);
    f.sent += sent;
    f.not_sent += n - sent;
    return sent;
}

std::vector<std::string> repeated_nonces(const std::vector<const IndependentPeer*>& peers) {
    std::map<std::pair<indep::Key, uint64_t>, std::string> seen;
    std::vector<std::string> repeats;
    for (const IndependentPeer* p : peers) {
        for (const IndependentPeer::Captured& c : p->captured()) {
            if (!c.authenticated) continue;
            const std::string what = std::string(indep::type_name(c.type)) + " of client " +
                                     std::to_string(p->client_id()) + " (" + std::to_string(c.datagram.size()) + " B)";
            auto [it, fresh] = seen.emplace(std::make_pair(p->token().server_to_client, c.sequence), what);
            if (!fresh) repeats.push_back("sequence " + std::to_string(c.sequence) + ": " + it->second + " and " + what);
        }
    }
    return repeats;
}

}  // namespace pomelo::test::bed
