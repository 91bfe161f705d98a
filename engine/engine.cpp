#include "engine/engine.hpp"

#include <rte_errno.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_mempool.h>

#include "examples/rooms/rooms.hpp"
#include <algorithm>
#include <thread>

namespace pomelo::engine {

namespace {

rte_ring* make_ring(const std::string& name, unsigned size, unsigned flags, std::string& error) {
    rte_ring* r = rte_ring_create(name.c_str(), size, static_cast<int>(rte_socket_id()), flags);
    if (!r) error = "cannot create ring " + name + ": " + rte_strerror(rte_errno);
    return r;
}

rte_ring* make_elem_ring(const std::string& name, unsigned esize, unsigned size, std::string& error) {
    rte_ring* r = rte_ring_create_elem(name.c_str(), esize, size, static_cast<int>(rte_socket_id()),
                                       RING_F_SP_ENQ | RING_F_SC_DEQ);
    if (!r) error = "cannot create ring " + name + ": " + rte_strerror(rte_errno);
    return r;
}

int worker_main(void* arg) { return static_cast<Worker*>(arg)->run(); }

}  // namespace

std::unique_ptr<Engine> Engine::create(const EngineConfig& config, drivers::Port& port, rte_mempool* mbufs,
                                       std::string& error) {
    std::unique_ptr<Engine> e(new Engine());
    e->config_ = config;
    unsigned lcore;
    RTE_LCORE_FOREACH_WORKER(lcore) e->lcores_.push_back(lcore);
    if (config.workers == 0 || config.workers > kMaxWorkers) {
        error = "--workers must be 1.." + std::to_string(kMaxWorkers);
        return nullptr;
    }
    if (port.queue_count() == 0) {
        error = "port " + port.name() + " has no queues";
        return nullptr;
    }
    if (e->lcores_.size() < config.workers) {
        error = "--workers " + std::to_string(config.workers) + " needs as many worker lcores, EAL has " +
                std::to_string(e->lcores_.size()) + " (give EAL -l with more cores)";
        return nullptr;
    }
    if (config.burst == 0 || config.burst > server::Shard::kMaxBurst) {
        error = "--burst must be 1.." + std::to_string(server::Shard::kMaxBurst);
        return nullptr;
    }
    e->new_peer_pool_ = rte_mempool_create("pomelo_new_peers", 1023, sizeof(server::NewPeer), 0, 0, nullptr, nullptr,
                                           nullptr, nullptr, static_cast<int>(rte_socket_id()), 0);
    if (!e->new_peer_pool_) {
        error = std::string("cannot create the new-peer pool: ") + rte_strerror(rte_errno);
        return nullptr;
    }
    rte_ring* control_in = make_ring("pomelo_control", config.control_ring_size, RING_F_SC_DEQ, error);
    if (!control_in) return nullptr;
    e->rings_.push_back(control_in);

    WorkerShared& shared = e->shared_;
    shared.config = &e->config_;
    shared.port = &port;
    shared.mbufs = mbufs;
    shared.new_peer_pool = e->new_peer_pool_;
    shared.control_in = control_in;
    shared.owner_hash = &e->owner_hash_;

    // Queue q is polled by worker q. Each worker owns its queue's datagrams outright only when
    // the device's RSS guarantees that one address always reaches one queue; otherwise (fewer
    // queues than workers, or queues the sender chooses, as on memif or net_ring) the queues'
    // workers hand every datagram to the shard that owns its source by a keyed address hash,
    // so an address belongs to exactly one shard.
    const uint16_t queues = std::min<uint16_t>(port.queue_count(), config.workers);
    const bool distribute = config.workers > 1 && (queues < config.workers || !port.rss());

    // Everything that can hold mbufs at once must leave some in the pool, or a flood that
    // fills the rings stops all traffic.
    const uint64_t cache = 384u * (config.workers + 1);  // per-lcore caches (flushed at 1.5 x 256)
    const uint64_t held = uint64_t{config.control_ring_size} +
                          (distribute ? uint64_t{config.workers} * config.ring_size : 0) +  // shard rx rings
                          uint64_t{queues} * config.ring_size +  // queue workers' tx rings (control replies too)
                          port.mbufs_held() + cache + (uint64_t{config.workers} + 1) * 2 * server::Shard::kMaxBurst;
    if (held >= config.mbufs) {
        error = "--mbufs " + std::to_string(config.mbufs) + " is too small: rings, descriptors and caches can hold " +
                std::to_string(held) + " mbufs (give at least " + std::to_string(held + held / 4) + ")";
        return nullptr;
    }
    if (config.tick_hz > 1000) {
        error = "tick rate " + std::to_string(config.tick_hz) + " Hz is above 1000";
        return nullptr;
    }
    if (config.message_buffers == 0 || config.message_buffers > (1u << 20)) {
        error = "message buffers must be 1.." + std::to_string(1u << 20);
        return nullptr;
    }
    e->message_pool_ = rte_mempool_create("pomelo_app_msgs", config.message_buffers, sizeof(AppMessage),
                                          config.message_buffers >= 1024 ? 32 : 0, 0, nullptr, nullptr, nullptr,
                                          nullptr, static_cast<int>(rte_socket_id()), 0);
    if (!e->message_pool_) {
        error = std::string("cannot create the message pool: ") + rte_strerror(rte_errno);
        return nullptr;
    }
    shared.message_pool = e->message_pool_;
    // A message ring holds every buffer of the pool, so a post is never lost to a full ring.
    const unsigned message_ring_size = rte_align32pow2(config.message_buffers + 1);
    std::vector<WorkerRings> rings(config.workers);
    for (uint16_t w = 0; w < config.workers; ++w) {
        const std::string n = std::to_string(w);
        rings[w].rx = make_ring("pomelo_rx" + n, config.ring_size, RING_F_SC_DEQ, error);
        rings[w].tx = make_ring("pomelo_tx" + n, config.ring_size, RING_F_SC_DEQ, error);
        rings[w].new_peers = make_ring("pomelo_np" + n, 1024, RING_F_SP_ENQ | RING_F_SC_DEQ, error);
        rings[w].closed = make_elem_ring("pomelo_cl" + n, sizeof(ClosedPeer), 16384, error);
        rings[w].messages = make_ring("pomelo_msg" + n, message_ring_size, RING_F_SC_DEQ, error);
        rings[w].commands = make_ring("pomelo_cmd" + n, 64, RING_F_SC_DEQ, error);
        if (!rings[w].rx || !rings[w].tx || !rings[w].new_peers || !rings[w].closed || !rings[w].messages ||
            !rings[w].commands)
            return nullptr;
        for (rte_ring* r : {rings[w].rx, rings[w].tx, rings[w].new_peers, rings[w].closed, rings[w].messages,
                            rings[w].commands})
            e->rings_.push_back(r);
    }
    for (uint16_t w = 0; w < config.workers; ++w)
        e->workers_.push_back(
            std::make_unique<Worker>(w, shared, rings[w], w < queues ? static_cast<int>(w) : -1, distribute));
    for (auto& w : e->workers_) shared.workers.push_back(w.get());
    for (auto& w : e->workers_) w->set_io_worker(static_cast<uint16_t>(w->index() % queues));
    // Workers copied `shared` before the list was complete: give them the final one.
    for (auto& w : e->workers_) w->set_shared_workers(shared.workers);
    e->control_ = std::make_unique<Control>(shared);
    if (!e->control_->start(error)) return nullptr;
    return e;
}

Engine::~Engine() {
    control_.reset();
    // What the rings still hold: mbufs go back to the pool, new-peer records are wiped first.
    for (auto& w : workers_) {
        void* obj;
        while (rte_ring_sc_dequeue(w->rings().new_peers, &obj) == 0) {
            auto* np = static_cast<server::NewPeer*>(obj);
            crypto::secure_wipe(np->user_data.data(), np->user_data.size());
            np->~NewPeer();  // wipes the keys
            rte_mempool_put(new_peer_pool_, np);
        }
        for (rte_ring* r : {w->rings().rx, w->rings().tx})
            while (rte_ring_sc_dequeue(r, &obj) == 0) rte_pktmbuf_free(static_cast<rte_mbuf*>(obj));
        while (rte_ring_sc_dequeue(w->rings().commands, &obj) == 0) delete static_cast<CommandBox*>(obj);
    }
    if (shared_.control_in) {
        void* obj;
        while (rte_ring_sc_dequeue(shared_.control_in, &obj) == 0) rte_pktmbuf_free(static_cast<rte_mbuf*>(obj));
    }
    workers_.clear();
    for (rte_ring* r : rings_) rte_ring_free(r);
    if (new_peer_pool_) rte_mempool_free(new_peer_pool_);
    if (message_pool_) rte_mempool_free(message_pool_);  // with the messages still in rings
}

int Engine::run(const std::atomic<bool>& stop) {
    for (size_t i = 0; i < workers_.size(); ++i)
        if (rte_eal_remote_launch(worker_main, workers_[i].get(), lcores_[i]) != 0) return 1;
    control_->run(stop);
    for (auto& w : workers_) w->stop();
    int rc = 0;
    for (size_t i = 0; i < workers_.size(); ++i) rc |= rte_eal_wait_lcore(lcores_[i]);
    return rc;
}

// ---------------------------------------------------------------- administration

namespace {

// Puts one command per worker into the workers' command rings and waits until every worker
// answered. False when a ring was full or a worker did not answer within `wait`.
bool command_workers(const std::vector<Worker*>& workers, const std::vector<CommandBox>& commands,
                     std::chrono::milliseconds wait) {
    for (size_t w = 0; w < workers.size(); ++w) {
        auto* box = new CommandBox(commands[w]);
        if (rte_ring_mp_enqueue(workers[w]->rings().commands, box) != 0) {
            delete box;
            return false;
        }
    }
    const auto deadline = std::chrono::steady_clock::now() + wait;
    for (const CommandBox& c : commands)
        while (!c->done.load(std::memory_order_acquire)) {
            if (std::chrono::steady_clock::now() > deadline) return false;
            std::this_thread::sleep_for(std::chrono::microseconds(200));
        }
    return true;
}

}  // namespace

std::optional<Engine::PeerPage> Engine::list_peers(uint64_t from_client_id, unsigned limit,
                                                   std::chrono::milliseconds wait) const {
    std::vector<CommandBox> commands;
    for (size_t w = 0; w < workers_.size(); ++w) {
        auto c = std::make_shared<WorkerCommand>();
        c->kind = WorkerCommand::Kind::list_peers;
        c->client_id = from_client_id;
        c->limit = limit + 1;  // one more than shown: whether there is a next page
        commands.push_back(std::move(c));
    }
    if (!command_workers(shared_.workers, commands, wait)) return std::nullopt;
    PeerPage page;
    for (const CommandBox& c : commands) {
        page.total += c->total;
        page.peers.insert(page.peers.end(), c->peers.begin(), c->peers.end());
    }
    std::sort(page.peers.begin(), page.peers.end(),
              [](const PeerInfo& a, const PeerInfo& b) { return a.client_id < b.client_id; });
    if (page.peers.size() > limit) {
        page.next = page.peers[limit].client_id;
        page.peers.resize(limit);
    }
    return page;
}

std::optional<bool> Engine::disconnect_client(uint64_t client_id, std::chrono::milliseconds wait) const {
    std::vector<CommandBox> commands;
    for (size_t w = 0; w < workers_.size(); ++w) {
        auto c = std::make_shared<WorkerCommand>();
        c->kind = WorkerCommand::Kind::disconnect;
        c->client_id = client_id;
        commands.push_back(std::move(c));
    }
    if (!command_workers(shared_.workers, commands, wait)) return std::nullopt;
    bool found = false;
    for (const CommandBox& c : commands) found |= c->found;
    return found;
}

ApplicationFactory application_by_name(std::string_view name) {
    if (name == "echo") return [](uint16_t) { return std::make_unique<EchoApplication>(); };
    if (name == "corrupt-echo") return [](uint16_t) { return std::make_unique<CorruptEchoApplication>(); };
    if (name == "rooms") return examples::rooms::factory();
    return nullptr;
}

const char* application_names() { return "echo, rooms, corrupt-echo"; }

void Engine::request_stop() { control_->request_stop(); }

}  // namespace pomelo::engine
