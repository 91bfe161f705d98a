// pomelo-server: the Pomelo game-protocol server daemon on the engine.
//
//   pomelo-server [EAL args] -- --bind ADDR --protocol-id ID --key FILE [options]
//
// Every DPDK application takes EAL arguments before "--"; with no "--" at all, the defaults
// for a host without hugepages or NICs apply (--no-huge --no-pci -m 256 and a per-process
// file prefix). SIGINT/SIGTERM/SIGHUP send DISCONNECT to every peer, then exit 0.
#include <csignal>
#include <cstdlib>
#include <cstdio>
#include <cstring>
#include <unistd.h>

#include <atomic>
#include <rte_ethdev.h>
#include <rte_ether.h>

#include "drivers/eal.hpp"
#include "drivers/ethdev_port.hpp"
#include "drivers/socket_port.hpp"
#include "engine/engine.hpp"
#include "engine/mbuf_meta.hpp"
#include "examples/rooms/rooms.hpp"
#include "engine/metrics.hpp"
#include "tools/common/cli.hpp"

namespace {

using namespace pomelo;

std::atomic<bool> g_stop{false};
void on_signal(int) { g_stop.store(true); }

const char* kUsage = R"(usage: pomelo-server [EAL args] -- --bind ADDR --protocol-id ID --key FILE [options]

Serves the Pomelo 1.03 protocol on a DPDK port (any PMD) or on kernel UDP sockets.

  --bind ADDR           UDP endpoint to serve, a.b.c.d:port or [v6]:port (repeatable)
  --protocol-id ID      the application's 64-bit protocol id (decimal or 0x-hex)
  --key FILE            server private key (64 hex digits, from 'pomelo-token keygen');
                        repeatable for key rotation: tokens sealed under any listed key are
                        accepted (tried in order). Put the new key first: the default token
                        journal is named after the first key, the other keys' journals are
                        read at start (see README, Operations)
  --driver NAME         ethdev (default) or socket (kernel UDP, no DPDK port)
  --device NAME         ethdev device name or port id (default: the first port)
  --gateway-mac MAC     next hop for peers whose MAC was not learned (ethdev)
  --workers N           worker lcores, one shard each (default 1; EAL needs N+1 lcores)
  --max-clients N       connections at once (default 1024)
  --max-pending N       handshakes in flight (default 4096); when all are in progress, a new
                        REQUEST is dropped (pending_full) and served at its resend
  --public ADDR         address clients are told in tokens (repeatable; default: the bound
                        addresses, with the port the kernel chose for a --bind port 0)
  --no-address-check    accept tokens that do not list our address (NAT, anycast)
  --allow-token-reuse   let a token connect again after its connection ended (repeats nonces
                        under its keys: only for clients that cannot fetch a new token)
  --token-history N     tokens remembered for reuse detection (default 65536); tokens that
                        connected are kept until they expire, new ones are refused when full
  --token-journal FILE  where tokens that connected are kept across restarts, so a restarted
                        server refuses them too (default: $STATE_DIRECTORY or
                        /var/lib/pomelo-engine, file tokens-<key fingerprint>-<first --bind>);
                        'none' keeps none: then --max-token-lifetime is required
  --max-token-lifetime S  the backend's longest token lifetime; with --token-journal none,
                        tokens expiring before start + S are refused (they may predate it)
  --suites LIST         accepted cipher suites: chacha,aesgcm (default both)
  --app NAME            application: echo (default), rooms (examples/rooms: room relay), or
                        corrupt-echo (flips a bit of every 500th echo: for checking that a
                        load generator notices)
  --tick-hz N           application ticks per second per worker, 0..1000 (default: 30
                        for rooms, none for echo)
  --mbufs N             mbuf pool size (default 16383)
  --burst N             packets per burst (default 32)
  --bare-loop           benchmark baseline, not a server: connected peers' PAYLOADs are echoed
                        by rx -> AEAD open -> AEAD seal -> tx and nothing else (no replay
                        window, no application); see perf/bench.sh
  --stats-interval S    seconds between stats lines, 0 = none (default 1)
  --metrics ADDR        serve Prometheus metrics at http://ADDR/metrics: PORT (on 127.0.0.1),
                        a.b.c.d:PORT or [v6]:PORT; port 0 picks a free one (printed)
  --log-rate N          connection log lines (connect, deny, disconnect) a second at most,
                        the rest counted in a "suppressed" line; 0 = none (default 20)
  --config FILE         'option = value' lines; command-line options override them
  --help                this text
)";

struct Options {
    engine::EngineConfig engine;
    std::string driver = "ethdev";
    std::string device;
    std::vector<wire::Address> bind;
    std::vector<wire::Address> public_addresses;
    bool address_check = true;
    std::optional<rte_ether_addr> gateway;
    bool have_protocol_id = false, have_key = false;
    std::string token_journal;  // empty: the default path
    std::string app_name = "echo";
    bool have_tick_hz = false;
    std::optional<wire::Address> metrics;
};

rte_ether_addr parse_mac(const std::string& text) {
    rte_ether_addr mac;
    if (rte_ether_unformat_addr(text.c_str(), &mac) != 0)
        cli::bad_argument("--gateway-mac", "'" + text + "' is not a MAC address (want aa:bb:cc:dd:ee:ff)");
    return mac;
}

void apply_options(Options& o, const std::vector<std::string>& args) {
    for (size_t i = 0; i < args.size(); ++i) {
        const std::string& opt = args[i];
        auto value = [&]() -> const std::string& {
            if (i + 1 >= args.size() || args[i + 1].rfind("--", 0) == 0) cli::bad_argument(opt, "needs a value");
            return args[++i];
        };
        auto& s = o.engine.server;
        if (opt == "--help" || opt == "-h") {
            std::fputs(kUsage, stdout);
            throw cli::Error{0, ""};
        } else if (opt == "--config") {
            apply_options(o, cli::read_config_file(value()));
        } else if (opt == "--bind") {
            o.bind.push_back(cli::parse_address(opt, value()));
        } else if (opt == "--public") {
            o.public_addresses.push_back(cli::parse_address(opt, value()));
        } else if (opt == "--protocol-id") {
            s.protocol_id = cli::parse_uint(opt, value());
            o.have_protocol_id = true;
        } else if (opt == "--key") {
            crypto::Key key = cli::load_key_file(opt, value());
            if (!o.have_key) s.private_key = key;
            else s.more_private_keys.push_back(key);
            o.have_key = true;
        } else if (opt == "--driver") {
            o.driver = value();
            if (o.driver != "ethdev" && o.driver != "socket")
                cli::bad_argument(opt, "'" + o.driver + "' is not a driver (want ethdev or socket)");
        } else if (opt == "--device") {
            o.device = value();
        } else if (opt == "--gateway-mac") {
            o.gateway = parse_mac(value());
        } else if (opt == "--workers") {
            o.engine.workers = static_cast<uint16_t>(cli::parse_uint(opt, value(), 1, RTE_MAX_LCORE - 1));
        } else if (opt == "--max-clients") {
            s.max_clients = static_cast<uint32_t>(cli::parse_uint(opt, value(), 1, 1u << 24));
        } else if (opt == "--max-pending") {
            s.max_pending = static_cast<uint32_t>(cli::parse_uint(opt, value(), 1, 1u << 24));
        } else if (opt == "--no-address-check") {
            o.address_check = false;
        } else if (opt == "--allow-token-reuse") {
            s.refuse_token_reuse = false;
        } else if (opt == "--token-history") {
            s.token_history = static_cast<uint32_t>(cli::parse_uint(opt, value(), 1, 1u << 26));
        } else if (opt == "--token-journal") {
            o.token_journal = value();
        } else if (opt == "--max-token-lifetime") {
            o.engine.max_token_lifetime_ms = static_cast<uint64_t>(cli::parse_seconds(opt, value()) * 1000);
        } else if (opt == "--suites") {
            const std::string list = value();
            s.accepted_suites = 0;
            size_t start = 0;
            while (start <= list.size()) {
                const size_t comma = std::min(list.find(',', start), list.size());
                const std::string name = list.substr(start, comma - start);
                auto suite = crypto::suite_from_name(name);
                if (!suite) cli::bad_argument(opt, "'" + name + "' is not a suite (want chacha or aesgcm)");
                s.accepted_suites |= 1u << static_cast<unsigned>(*suite);
                start = comma + 1;
            }
        } else if (opt == "--app") {
            const std::string name = value();
            o.engine.app = engine::application_by_name(name);
            if (!o.engine.app)
                cli::bad_argument(opt, "'" + name + "' is not an application (want one of " +
                                           engine::application_names() + ")");
            o.app_name = name;
        } else if (opt == "--tick-hz") {
            o.engine.tick_hz = static_cast<uint32_t>(cli::parse_uint(opt, value(), 0, 1000));
            o.have_tick_hz = true;
        } else if (opt == "--mbufs") {
            o.engine.mbufs = static_cast<uint32_t>(cli::parse_uint(opt, value(), 1023, 1u << 24));
        } else if (opt == "--bare-loop") {
            o.engine.bare_loop = true;
        } else if (opt == "--burst") {
            o.engine.burst = static_cast<uint16_t>(cli::parse_uint(opt, value(), 1, server::Shard::kMaxBurst));
        } else if (opt == "--stats-interval") {
            o.engine.stats_interval_ns = static_cast<uint64_t>(cli::parse_seconds(opt, value()) * 1e9);
        } else if (opt == "--metrics") {
            std::string text = value();
            if (!text.empty() && text.find_first_not_of("0123456789") == std::string::npos)
                text = "127.0.0.1:" + text;  // a port alone: loopback only
            o.metrics = cli::parse_address(opt, text);
        } else if (opt == "--log-rate") {
            o.engine.log_rate = static_cast<uint32_t>(cli::parse_uint(opt, value(), 0, 1'000'000));
        } else {
            cli::bad_argument(opt, "unknown option (see --help)");
        }
    }
}

Options parse(const std::vector<std::string>& args) {
    Options o;
    o.engine.app = engine::application_by_name("echo");
    o.engine.server.max_clients = 1024;  // the documented default (server::Config's own is 256)
    apply_options(o, args);
    if (o.bind.empty()) cli::bad_argument("--bind", "missing: give at least one address to serve");
    if (!o.have_protocol_id) cli::bad_argument("--protocol-id", "missing");
    if (!o.have_key) cli::bad_argument("--key", "missing");
    if (!o.have_tick_hz && o.app_name == "rooms") o.engine.tick_hz = examples::rooms::kTickHz;
    // Port 0 asks the kernel for a port; a DPDK port has no kernel to ask.
    if (o.driver == "ethdev")
        for (const wire::Address& a : o.bind)
            if (a.port == 0)
                cli::bad_argument("--bind", "'" + a.to_string() + "': port 0 (any port) needs --driver socket; give a port");
    // Without --public, the own-address check uses the port's bound addresses, once open.
    o.engine.server.public_addresses = o.public_addresses;
    return o;
}

std::unique_ptr<drivers::Port> open_port(const Options& o, rte_mempool* pool, std::string& error) {
    if (o.driver == "socket") {
        drivers::SocketConfig c;
        c.local = o.bind;
        c.pool = pool;
        return drivers::open_socket_port(c, error);
    }
    if (rte_eth_dev_count_avail() == 0) {
        error = "--driver ethdev: no DPDK port (give EAL a device, e.g. --vdev net_memif0, or use --driver socket)";
        return nullptr;
    }
    drivers::EthdevConfig c;
    if (o.device.empty()) {
        uint16_t first = 0;
        RTE_ETH_FOREACH_DEV(first) break;
        c.device = std::to_string(first);
    } else {
        c.device = o.device;
    }
    c.local = o.bind;
    c.queues = o.engine.workers;
    c.pool = pool;
    c.gateway = o.gateway;
    return drivers::open_ethdev_port(c, error);
}

int serve(int argc, char** argv) {
    const std::string prefix = "pomelo-server-" + std::to_string(::getpid());
    cli::SplitArgs args = cli::split_eal_args(
        argc, argv, {"--no-huge", "--no-pci", "-m", "256", "--file-prefix", prefix, "--log-level", "error"});
    Options o = parse(args.ours);  // before EAL: bad arguments fail fast, without DPDK noise

    // From here a stop request is graceful (DISCONNECTs sent) and every exit path runs
    // eal_cleanup() or exit(), which remove EAL's runtime directory.
    std::signal(SIGINT, on_signal);
    std::signal(SIGTERM, on_signal);
    std::signal(SIGHUP, on_signal);  // a closed terminal: stop as gracefully as SIGTERM
    std::string error;
    if (drivers::eal_init(args.eal, error) < 0) cli::failure(error);
    rte_mempool* pool = drivers::make_mbuf_pool("pomelo_mbufs", o.engine.mbufs, error, engine::kMbufPrivSize);
    if (!pool) cli::failure(error);
    std::unique_ptr<drivers::Port> port = open_port(o, pool, error);
    if (!port) cli::failure(error);
    // The addresses tokens must list: --public, else what the port is bound to (the kernel's
    // port for a --bind port 0, which is also what we announce below).
    if (!o.address_check) o.engine.server.public_addresses.clear();
    else if (o.engine.server.public_addresses.empty()) o.engine.server.public_addresses = port->local_addresses();
    // The default token journal is named after the key and the first bound endpoint (the
    // kernel's port for --bind ADDR:0), so servers sharing a host and a key keep theirs apart.
    if (o.token_journal.empty()) {
        const char* dir = std::getenv("STATE_DIRECTORY");  // systemd's StateDirectory=
        std::string name = port->local_addresses().front().to_string();
        for (char& c : name)
            if (c == ':' || c == '[' || c == ']') c = '_';
        auto journal_of = [&](const crypto::Key& key) {
            return std::string(dir && *dir ? dir : "/var/lib/pomelo-engine") + "/tokens-" + cli::key_fingerprint(key) +
                   "-" + name;
        };
        o.token_journal = journal_of(o.engine.server.private_key);
        // Key rotation: the other keys' journals hold their tokens that connected before.
        for (const crypto::Key& k : o.engine.server.more_private_keys)
            o.engine.more_token_journals.push_back(journal_of(k));
    }
    o.engine.token_journal = o.token_journal == "none" ? "" : o.token_journal;
    auto eng = engine::Engine::create(o.engine, *port, pool, error);
    if (!eng) cli::failure(error);
    engine::register_telemetry(eng.get());
    std::unique_ptr<engine::MetricsServer> metrics;
    if (o.metrics) {
        metrics = engine::MetricsServer::start(*eng, *o.metrics, error);
        if (!metrics) cli::failure(error);
        std::printf("pomelo-server: metrics at %s\n", metrics->url().c_str());
        if (o.app_name == "rooms")
            metrics->add_hook([] {
                engine::GaugeFamily f{"pomelo_room_members", "Rooms application: members by room", {}};
                for (const auto& [room, n] : examples::rooms::members_by_room())
                    f.samples.push_back({{{"room", room}}, static_cast<double>(n)});
                return std::vector<engine::GaugeFamily>{f};
            });
    }

    std::printf("pomelo-server: serving");
    for (const auto& a : port->local_addresses()) std::printf(" %s", a.to_string().c_str());
    std::printf(" on %s with %u worker(s), protocol id 0x%016llx\n", port->name().c_str(), eng->workers(),
                static_cast<unsigned long long>(o.engine.server.protocol_id));
    std::fflush(stdout);
    const int rc = eng->run(g_stop);
    const engine::EngineSnapshot s = eng->snapshot();
    std::printf("pomelo-server: stopped; %llu connections served, %llu datagrams in, %llu out\n",
                static_cast<unsigned long long>(s.control.accepted),
                static_cast<unsigned long long>(s.workers.port.rx_datagrams),
                static_cast<unsigned long long>(s.workers.port.tx_datagrams));
    metrics.reset();
    engine::register_telemetry(nullptr);  // telemetry answers nothing from here
    eng.reset();
    port.reset();
    drivers::eal_cleanup();
    return rc;
}

}  // namespace

int main(int argc, char** argv) {
    return pomelo::cli::run_main("pomelo-server", [&] { return serve(argc, argv); });
}
