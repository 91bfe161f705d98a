// <pomelo/server.hpp> over the engine: what tools/pomelo_server.cpp does for the daemon,
// behind a pimpl so that no DPDK, protocol or driver header reaches the application.
#include <pomelo/server.hpp>

#include <sched.h>
#include <unistd.h>

#include <rte_ethdev.h>

#include "drivers/eal.hpp"
#include "drivers/ethdev_port.hpp"
#include "drivers/socket_port.hpp"
#include "engine/engine.hpp"
#include "engine/mbuf_meta.hpp"

namespace pomelo {

namespace {

std::atomic<bool> g_eal_used{false};  // EAL starts once per process

// workers + 1 lcores over the CPUs this process may run on, round robin (lcore 0, the
// control thread, on the first).
std::string default_lcores(uint16_t workers) {
    cpu_set_t set;
    std::vector<int> cpus;
    if (sched_getaffinity(0, sizeof set, &set) == 0)
        for (int c = 0; c < CPU_SETSIZE; ++c)
            if (CPU_ISSET(c, &set)) cpus.push_back(c);
    if (cpus.empty()) cpus.push_back(0);
    std::string map;
    for (unsigned l = 0; l <= workers; ++l)
        map += (l ? "," : "") + std::to_string(l) + "@" + std::to_string(cpus[l % cpus.size()]);
    return map;
}

std::optional<wire::Address> address(const std::string& field, const std::string& text, std::string& error) {
    const auto a = wire::Address::parse(text);
    if (!a) error = field + ": '" + text + "' is not an address (want a.b.c.d:port or [v6]:port)";
    return a;
}

}  // namespace

struct Server::Impl {
    engine::EngineConfig config;
    rte_mempool* pool = nullptr;
    std::unique_ptr<drivers::Port> port;
    std::unique_ptr<engine::Engine> engine;
    std::atomic<bool> never{false};
    bool eal = false;

    ~Impl() {
        engine.reset();
        port.reset();
        if (pool) rte_mempool_free(pool);
        if (eal) drivers::eal_cleanup();
    }
};

Server::Server(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Server::~Server() {
    if (impl_->engine) engine::register_telemetry(nullptr);
}

std::unique_ptr<Server> Server::create(ServerConfig config, std::string& error) {
    auto impl = std::make_unique<Impl>();
    engine::EngineConfig& e = impl->config;
    server::Config& s = e.server;

    // Everything that needs no EAL first: a bad field fails fast, without DPDK's noise.
    if (!config.private_key.valid()) {
        error = "private_key: missing (all zero)";
        return nullptr;
    }
    if (config.bind.empty()) {
        error = "bind: give at least one address to serve";
        return nullptr;
    }
    if (!config.app) {
        error = "app: no application factory";
        return nullptr;
    }
    if (config.driver != "socket" && config.driver != "ethdev") {
        error = "driver: '" + config.driver + "' is not a driver (want socket or ethdev)";
        return nullptr;
    }
    if (config.workers == 0 || config.workers > engine::kMaxWorkers) {
        error = "workers: want 1.." + std::to_string(engine::kMaxWorkers);
        return nullptr;
    }
    if (config.tick_hz > 1000) {
        error = "tick_hz: want 0..1000";
        return nullptr;
    }
    if (config.max_clients == 0 || config.max_clients > (1u << 24)) {
        error = "max_clients: want 1.." + std::to_string(1u << 24);
        return nullptr;
    }
    if (config.token_journal.empty() && config.max_token_lifetime_s == 0) {
        error = "token_journal: give a file (tokens that connected, kept across restarts), or "
                "max_token_lifetime_s for none";
        return nullptr;
    }
    std::vector<wire::Address> bind, announced;
    for (const std::string& text : config.bind) {
        const auto a = address("bind", text, error);
        if (!a) return nullptr;
        if (a->port == 0 && config.driver == "ethdev") {
            error = "bind: '" + text + "': port 0 (any port) needs the socket driver";
            return nullptr;
        }
        bind.push_back(*a);
    }
    for (const std::string& text : config.public_addresses) {
        const auto a = address("public_addresses", text, error);
        if (!a) return nullptr;
        announced.push_back(*a);
    }
    s.protocol_id = config.protocol_id;
    s.private_key = crypto::Key(config.private_key.bytes());
    s.max_clients = config.max_clients;
    e.workers = config.workers;
    e.tick_hz = config.tick_hz;
    e.app = std::move(config.app);
    e.message_buffers = config.message_buffers;
    e.stats_interval_ns = uint64_t{config.stats_interval_ms} * 1'000'000;
    e.token_journal = config.token_journal;
    e.max_token_lifetime_ms = config.max_token_lifetime_s * 1000;

    if (g_eal_used.exchange(true)) {
        error = "one pomelo::Server per process (DPDK's EAL starts only once)";
        return nullptr;
    }
    std::vector<std::string> eal = {"pomelo"};
    if (config.eal_args.empty()) {
        eal.insert(eal.end(), {"--no-huge", "--no-pci", "-m", "256", "--file-prefix",
                               "pomelo-" + std::to_string(::getpid()), "--log-level", "error", "--lcores",
                               default_lcores(config.workers)});
    } else {
        eal.insert(eal.end(), config.eal_args.begin(), config.eal_args.end());
    }
    if (drivers::eal_init(eal, error) < 0) return nullptr;
    impl->eal = true;
    impl->pool = drivers::make_mbuf_pool("pomelo_mbufs", e.mbufs, error, engine::kMbufPrivSize);
    if (!impl->pool) return nullptr;
    if (config.driver == "socket") {
        drivers::SocketConfig c;
        c.local = bind;
        c.pool = impl->pool;
        impl->port = drivers::open_socket_port(c, error);
    } else {
        if (rte_eth_dev_count_avail() == 0) {
            error = "driver ethdev: no DPDK port (give EAL a device in eal_args, or use the socket driver)";
            return nullptr;
        }
        drivers::EthdevConfig c;
        if (config.device.empty()) {
            uint16_t first = 0;
            RTE_ETH_FOREACH_DEV(first) break;
            c.device = std::to_string(first);
        } else {
            c.device = config.device;
        }
        c.local = bind;
        c.queues = config.workers;
        c.pool = impl->pool;
        impl->port = drivers::open_ethdev_port(c, error);
    }
    if (!impl->port) return nullptr;
    if (config.address_check) s.public_addresses = announced.empty() ? impl->port->local_addresses() : announced;
    impl->engine = engine::Engine::create(e, *impl->port, impl->pool, error);
    if (!impl->engine) return nullptr;
    engine::register_telemetry(impl->engine.get());
    return std::unique_ptr<Server>(new Server(std::move(impl)));
}

int Server::run(const std::atomic<bool>& stop) { return impl_->engine->run(stop); }
int Server::run() { return impl_->engine->run(impl_->never); }
void Server::stop() { impl_->engine->request_stop(); }

std::vector<std::string> Server::local_addresses() const {
    std::vector<std::string> out;
    for (const wire::Address& a : impl_->port->local_addresses()) out.push_back(a.to_string());
    return out;
}

uint16_t Server::workers() const { return impl_->engine->workers(); }

ServerStats Server::stats() const {
    const engine::EngineSnapshot s = impl_->engine->snapshot();
    ServerStats out;
    out.peers_connected = s.workers.peers[static_cast<unsigned>(server::PeerState::connected)];
    out.connections_accepted = s.control.accepted;
    out.payloads_received = s.workers.protocol.rx[static_cast<unsigned>(wire::PacketType::payload)];
    out.payloads_sent = s.workers.protocol.tx[static_cast<unsigned>(wire::PacketType::payload)];
    out.messages_posted = s.workers.messages_posted;
    return out;
}

}  // namespace pomelo
