// A pomelo-engine game server in a process: configuration, start and stop. Public header:
// standard library only (DPDK, the protocol and the drivers stay inside libpomelo-engine).
//
//   pomelo::ServerConfig config;                 // protocol id, key, bind, app, ...
//   std::string error;
//   auto server = pomelo::Server::create(std::move(config), error);
//   if (!server) { std::fprintf(stderr, "%s\n", error.c_str()); return 1; }
//   return server->run(stop_flag);                // until stop_flag turns true
//
// DPDK's EAL is started by create() (ServerConfig::eal_args) and cleaned up by the destructor:
// one Server per process, and no other DPDK use beside it.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <pomelo/app.hpp>
#include <pomelo/token.hpp>

namespace pomelo {

struct ServerConfig {
    // --- required
    uint64_t protocol_id = 0;       // the game's 64-bit protocol id (tokens must carry it)
    PrivateKey private_key;         // the key tokens are minted with
    std::vector<std::string> bind;  // UDP endpoints, "a.b.c.d:port" / "[v6]:port"; port 0 = any (socket driver)
    ApplicationFactory app;         // one Application per worker

    // --- restart safety (spec §9): a token that connected must never connect again. Give a
    // token journal file (kept across restarts), or, with none, the backend's longest token
    // lifetime: tokens expiring before start + that are refused.
    std::string token_journal;
    uint64_t max_token_lifetime_s = 0;

    // --- packet I/O
    // "socket": kernel UDP sockets (no NIC, no hugepages, no root needed beyond the port).
    // "ethdev": a DPDK port (a NIC bound to vfio-pci, or a vdev given in eal_args).
    std::string driver = "socket";
    std::string device;  // ethdev: device name or port id; empty = the first port
    // DPDK EAL arguments (without a program name). Empty: a host without hugepages or NICs:
    // --no-huge --no-pci -m 256, a per-process --file-prefix, and workers + 1 lcores spread
    // over the CPUs this process may use. Production: e.g. {"-l", "2-4", "-a", "0000:3b:00.0"}.
    std::vector<std::string> eal_args;

    // --- layout and limits
    uint16_t workers = 1;        // worker lcores, one shard of the connections each (EAL needs workers + 1 lcores)
    uint32_t tick_hz = 0;        // Application::on_tick rate per worker, 1..1000; 0 = no ticks
    uint32_t max_clients = 1024;
    // Addresses tokens must list (spec §5.5); empty = the bound addresses. Set address_check
    // false behind NAT or anycast.
    std::vector<std::string> public_addresses;
    bool address_check = true;
    uint32_t message_buffers = 4095;  // inter-worker messages in flight, all workers together
    uint32_t stats_interval_ms = 0;   // a stats line on stdout every so often; 0 = none
};

// A few of the server's counters, at most a second old.
struct ServerStats {
    uint32_t peers_connected = 0;
    uint64_t connections_accepted = 0;
    uint64_t payloads_received = 0;
    uint64_t payloads_sent = 0;
    uint64_t messages_posted = 0;  // inter-worker messages, all workers
};

class Server {
public:
    // Starts EAL, opens the port and builds the workers. nullptr with one line in `error`
    // naming the problem (a field of `config`, or what the system refused).
    static std::unique_ptr<Server> create(ServerConfig config, std::string& error);
    ~Server();  // stops if running, releases the port, cleans EAL up
    Server(const Server&) = delete;
    Server& operator=(const Server&) = delete;

    // Serves until `stop` turns true or stop() is called; then every peer gets its
    // DISCONNECTs (on_disconnect with server_stopped) and run returns 0 (non-zero: a worker
    // failed). Run once.
    int run(const std::atomic<bool>& stop);
    int run();
    // Asks run() to stop. Async-signal-safe: may be called from a signal handler or any thread.
    void stop();

    // The endpoints served ("127.0.0.1:40000"; the kernel's port for a bind to port 0).
    std::vector<std::string> local_addresses() const;
    uint16_t workers() const;
    ServerStats stats() const;

private:
    struct Impl;
    explicit Server(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

}  // namespace pomelo
