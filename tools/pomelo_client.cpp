// pomelo-client: a load generator and end-to-end check for a Pomelo echo server.
//
//   pomelo-client [EAL args] -- --server ADDR --key FILE --protocol-id ID [options]
//
// It plays the web backend too: it mints each client's connect token with the server's
// private key. Every client gets its own source endpoint (the server tells connections apart
// by it): a UDP socket of its own (--driver socket), or an IP:port of its own on a DPDK port
// (--driver ethdev, e.g. net_memif to a pomelo-server). It connects, sends its payloads,
// checks every echo byte for byte, and disconnects gracefully. See engine/client_pool.hpp.
//
// Exit status: 0 every client connected, every payload came back identical and every
// disconnect completed; 1 anything else (including runtime failures); 2 bad arguments.
// Every error is one stderr line.
#include <fcntl.h>
#include <rte_eal.h>
#include <rte_ethdev.h>
#include <rte_ether.h>
#include <sched.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <cinttypes>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <exception>
#include <filesystem>
#include <functional>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "drivers/eal.hpp"
#include "drivers/ethdev_port.hpp"
#include "drivers/socket_port.hpp"
#include "engine/blast.hpp"
#include "engine/client_pool.hpp"
#include "engine/flood.hpp"
#include "engine/impair.hpp"
#include "tools/client_interactive.hpp"
#include "tools/common/cli.hpp"
#include "protocol/crypto/aead.hpp"
#include "protocol/crypto/burst.hpp"
#include "protocol/crypto/key.hpp"
#include "protocol/crypto/suite.hpp"
#include "protocol/wire/address.hpp"
#include "protocol/wire/connect_token.hpp"
#include "protocol/wire/request.hpp"

#ifndef POMELO_VERSION
#define POMELO_VERSION "unknown"
#endif

namespace {

using namespace pomelo;

constexpr const char* kProg = "pomelo-client";
constexpr int kExitOk = 0;
constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;

// Fewer sockets than this stay below any sane open-file limit; the rest is DPDK's and ours.
constexpr uint64_t kSpareFds = 128;
// Echo bookkeeping is a bit per payload: cap the total (128 MiB of bitmap).
constexpr uint64_t kMaxTotalPayloads = uint64_t{1} << 30;
// After a stop (SIGINT, --duration), how long draining the echoes in flight (at most the
// pool's echo timeout) and the graceful disconnects (1 s) may take.
constexpr uint64_t kStopGraceNs = 4 * kSecond;
// --driver ethdev: local ports per IP (base_port + i), and how long the link may take to come
// up (a memif client waits for its server).
constexpr uint32_t kPortsPerIp = 16384;
constexpr uint64_t kLinkWaitNs = 10 * kSecond;
// --driver ethdev: default --in-flight. A device ring (memif: 1024 slots each way by default)
// holds far fewer datagrams than 32 per client for thousands of clients, and must leave room
// for the clients' pings and the server's (10 Hz each way per client): what does not fit is
// dropped, not queued as in a socket buffer.
constexpr uint32_t kEthdevInFlight = 256;
// --driver socket: default --in-flight. The server's socket receive buffer (4 MiB) holds a few
// thousand small datagrams; 1000 clients x 32 overflow it.
constexpr uint32_t kSocketInFlight = 2048;

using Failure = cli::Error;  // status and one-line message, printed by cli::run_main
[[noreturn]] void usage_error(std::string m) { throw Failure{kExitUsage, std::move(m)}; }
[[noreturn]] void runtime_error(std::string m) { throw Failure{kExitFailure, std::move(m)}; }

std::atomic<int> g_signals{0};
void on_signal(int) { g_signals.fetch_add(1, std::memory_order_relaxed); }

using cli::quote;

constexpr const char* kHelp = R"(usage: pomelo-client [EAL args] -- --server ADDR --key FILE --protocol-id ID [options]
       pomelo-client --interactive --token FILE   (one client by hand: --interactive --help)

Connect N clients to a Pomelo 1.03 server running an echo application, send each client's
payloads, verify every echo byte for byte, disconnect gracefully and print a summary. The
tool mints the connect tokens itself with the server's private key (it plays the backend).
Every client has a source endpoint of its own: a UDP socket bound to --bind:--base-port+i
(--driver socket), or the endpoint --bind:--base-port+i on a DPDK port (--driver ethdev).

required:
      --server ADDR          the server, a.b.c.d:port or [v6]:port
      --key FILE             server private key (64 hex digits, see 'pomelo-token keygen')
      --protocol-id ID       64-bit application id, decimal or 0x-hex

options:
      --driver NAME          socket (kernel UDP, default) or ethdev (a DPDK port given to EAL)
      --clients N            clients (default 1)
      --bind IP              the clients' (first) local IP. socket: default 127.0.0.1, or ::1
                             for an IPv6 server. ethdev: required; client i gets
                             IP+(i / P):base-port+(i % P), P = min(16384, 65536 - base-port)
                             ports per IP, the next IPs (IPv4 +1, IPv6 +1 in the low 32 bits)
                             for more clients than that
      --base-port P          client i binds port P+i; 0 = ephemeral ports, socket only
                             (default 50000)
      --device NAME          ethdev: DPDK device name or port id (default: the first port)
      --gateway-mac MAC      ethdev: the MAC every datagram is sent to (the server's, or the
                             router's); nothing is resolved. Without it the port resolves the
                             next hop itself: ARP (IPv4) or neighbour solicitation (IPv6), one
                             request a second, three tries, first datagrams held meanwhile
      --gateway IP           ethdev: the router to resolve and send through, when the server
                             is not on the link (default: resolve the server's own address)
      --payloads K           payloads per client (default 100)
      --size BYTES           payload size, 8..1200 (default 64)
      --rate PPS             payloads per second per client; 0 = as fast as the window of
                             32 unanswered payloads allows (default 0)
      --in-flight N          unanswered payloads of all clients together; 0 = no limit
                             (default 2048 for socket: a server's socket buffer holds a few
                             thousand; 256 for ethdev: a device ring is all the buffering)
      --timeout S            connect token timeout in seconds; negative = none (default 10)
      --duration S           stop (gracefully) after this many seconds (default 30)
      --client-id-base N     client i gets client id N+i (default 1)
      --suite NAME           chacha (default) or aesgcm
      --connect-rate N       new connections per second; 0 = all at once (default 0)
      --json [FILE]          the summary as one JSON object: on stdout instead of the text,
                             or written to FILE beside it
      --quiet                no progress line on stderr (one a second by default)

modes (--mode, default echo):
  echo                       the above: payloads, every echo checked byte for byte
  blast                      the server's capacity. Every client connects; then payloads
                             sealed ahead of time are sent round-robin at an offered rate and
                             their echoes counted from the header, one in --verify-every
                             decrypted and checked byte for byte. Without --blast-rate, an
                             RFC 2544 search: the highest rate with no loss, doubling from
                             100k/s then bisecting, and one trial flat out for the generator's
                             own send rate (the table says which side was the bottleneck).
      --blast-rate PPS       one trial at this total rate instead of the search
      --trial S              seconds per trial (default 0.5)
      --max-rate PPS         the search's ceiling (default 20000000)
      --verify-every N       decrypt and check one echo in N (default 64; 1 = all)
      --raw                  against a plain UDP echo (perf/udp_echo): no handshake, unsealed
                             datagrams, echoes counted only
  connect-storm              rounds of --clients connecting at once (or at --connect-rate) and
                             disconnecting, until --duration: handshakes/s, setup p50/p99
  flood                      echo clients, and once all are connected, attack traffic beside
                             them from forged source endpoints (engine/flood.hpp): the report
                             puts their loss and RTT next to what was sent of each kind
      --flood-rate PPS       attack datagrams per second, all kinds (default 1000)
      --flood-kinds LIST     forged-request, expired-request, replayed-token, junk,
                             spoofed-sequence (default all), comma-separated
      --flood-sources N      forged source endpoints after the clients' (default 256)
  soak                       churn until --duration: every client connects, sends --payloads
                             payloads (at --rate) and ends its session, then starts another
                             with a fresh token. One session in --vanish-every ends with the
                             client going silent (no DISCONNECT: the server must time it out;
                             it reconnects after --timeout + 1 s); the others disconnect.
      --vanish-every N       (default 4; 0 = never)
      --impair SPEC          (every mode but blast) impair the generator's own link, each way,
                             as netem would: loss=P,dup=P,reorder=P,delay=D,jitter=D,
                             reorder-delay=D,seed=N (P a fraction or a percentage, D e.g. 2ms
                             or 500us; a reordered datagram is held reorder-delay longer,
                             default delay + jitter + 1ms). E.g. --impair loss=5%,dup=5%,
                             reorder=5%,delay=1ms,jitter=1ms
  -h, --help                 show this help
      --version              show the version

EAL args default to: --no-huge --no-pci -m 256 --file-prefix pomelo-client-<pid> --log-level error
and then the tool is not pinned to an lcore (the OS places it); give -l CPU to pin it, away
from the server's CPU. --driver ethdev needs EAL args naming a device (--vdev ...).

Against pomelo-server over net_memif (shared memory, two processes on one host):

  pomelo-server --no-huge --no-pci -m 256 --file-prefix srv -l 0-1 \
      --vdev net_memif0,role=server,socket=/tmp/pomelo-memif.sock,mac=02:00:00:00:00:01 \
      -- --bind 198.18.0.1:40000 --protocol-id 0x1 --key key
  pomelo-client --no-huge --no-pci -m 256 --file-prefix cli -l 0 \
      --vdev net_memif0,role=client,socket=/tmp/pomelo-memif.sock,mac=02:00:00:00:00:02 \
      -- --driver ethdev --server 198.18.0.1:40000 \
      --bind 198.18.1.1 --key key --protocol-id 0x1 --clients 100 --payloads 100

  (the client finds the server's MAC by ARP; --gateway-mac 02:00:00:00:00:01 would skip that)

  memif devargs (DPDK 22.11): role=server|client (default client); socket=NAME, the control
  socket (default /tmp/memif.sock), an abstract socket name unless socket-abstract=no (no file
  then); id=N to tell apart several interfaces on one socket (default 0); mac=MAC, the
  port's MAC (the server's may be given to the client as --gateway-mac); rsize=LOG2 ring
  size, 1..14 (default 10: 1024 slots each way; the client's value is the one used); bsize=buffer bytes
  (default 2048); secret=STRING, to be matched by the peer; zero-copy=yes (client only, needs
  EAL --single-file-segments; works with --no-huge). Start the server first (it listens);
  the client waits up to 10 s for the link to come up.

  With hundreds of clients or more give the client's memif rsize=12 (or more): the ring is all
  the buffering there is, and when either process stalls for a few ms (a shared CPU) the
  payloads in flight and both sides' pings (10 Hz per client each way) overflow 1024 slots:
  lost echoes, exit status 1. IPv6 works the same way (e.g. --bind [fd00:198:18::1]:40000 on
  the server, --bind fd00:198:18::1:1 here).

SIGINT, SIGTERM or SIGHUP stops gracefully (clients stop sending, wait up to 2 s for the echoes in
flight, then disconnect) and prints the summary; a second one exits at once.

exit status: 0 every client connected, every echo checked came back byte-identical, none
was lost (echo, flood, blast at a fixed --blast-rate; a search expects loss above the
capacity) and every disconnect completed; soak: every client was served, every session
connected and ended as its client chose, no echo mismatched or came twice, and the echoes
lost are within what --impair explains (binomial: at most the expected count + 5 sigma;
none without loss in --impair);
1 otherwise; 2 bad arguments.
)";

// ---------------------------------------------------------------------------------------------
// Arguments

enum class Mode { echo, blast, storm, flood, soak };

const char* mode_name(Mode m) {
    switch (m) {
        case Mode::echo: return "echo";
        case Mode::blast: return "blast";
        case Mode::storm: return "storm";
        case Mode::flood: return "flood";
        case Mode::soak: return "soak";
    }
    return "?";
}

struct Options {
    bool ethdev = false;
    std::string device;
    std::optional<rte_ether_addr> gateway;
    std::optional<wire::Address> gateway_ip;  // --gateway: the router to resolve
    std::string gateway_text;
    std::optional<uint32_t> in_flight;
    wire::Address server;
    std::string key_file;
    uint64_t protocol_id = 0;
    uint32_t clients = 1;
    std::optional<wire::Address> bind;
    std::string bind_text;
    uint32_t base_port = 50000;
    uint32_t payloads = 100;
    uint32_t size = 64;
    uint64_t rate = 0;
    int32_t timeout = 10;
    double duration = 30;
    int64_t client_id_base = 1;
    crypto::Suite suite = crypto::Suite::chacha20poly1305;
    bool json = false;
    std::string json_file;  // --json FILE ("-" or none: stdout)
    bool quiet = false;     // no progress lines
    Mode mode = Mode::echo;
    // blast
    double blast_rate = 0;  // total offered pps; 0 = capacity search
    double trial = 0.5;     // seconds per blast trial
    double max_rate = 20e6;
    uint32_t verify_every = 64;
    bool raw = false;  // blast unsealed datagrams at a plain UDP echo (perf/udp_echo), no handshake
    // flood
    double flood_rate = 1000;
    // connect-storm (and every mode's connects): new connections per second; 0 = all at once
    uint64_t connect_rate = 0;
    std::array<bool, engine::kFloodKindCount> flood_kinds{};
    uint32_t flood_sources = 256;
    // soak
    uint32_t vanish_every = 4;
    // every mode but blast
    engine::ImpairmentConfig impair;

    // Local endpoints: one per client, then the flood's forged sources.
    uint32_t endpoints() const { return clients + (mode == Mode::flood ? flood_sources : 0); }
};

using cli::parse_signed;
using cli::parse_u64;

uint64_t number(std::string_view name, std::string_view value, uint64_t min, uint64_t max) {
    const auto v = parse_u64(value);
    if (!v || *v < min || *v > max)
        usage_error(std::string(name) + ": " + quote(value) + " is not a number in " + std::to_string(min) + ".." +
                    std::to_string(max));
    return *v;
}

// An IP literal without port: 127.0.0.1 or ::1 (brackets allowed).
std::optional<wire::Address> parse_ip(std::string_view s) {
    if (s.empty()) return std::nullopt;
    std::string text;
    if (s.front() == '[') text = std::string(s) + ":0";
    else if (s.find(':') != std::string_view::npos) text = "[" + std::string(s) + "]:0";
    else text = std::string(s) + ":0";
    return wire::Address::parse(text);
}

// `a` with k added to its IP (IPv4 as a 32-bit number, IPv6 in its low 32 bits); nullopt
// when that runs past the end.
std::optional<wire::Address> ip_plus(wire::Address a, uint32_t k) {
    const size_t at = a.type == wire::AddressType::ipv4 ? 0 : 12;
    uint32_t v = 0;
    for (size_t b = 0; b < 4; ++b) v = v << 8 | a.ip[at + b];
    if (v > UINT32_MAX - k) return std::nullopt;
    v += k;
    for (size_t b = 0; b < 4; ++b) a.ip[at + b] = static_cast<uint8_t>(v >> (8 * (3 - b)));
    return a;
}

// --driver ethdev: ports per local IP.
uint32_t ports_per_ip(uint32_t base_port) { return std::min<uint32_t>(kPortsPerIp, 65536 - base_port); }

Options parse_options(std::span<char* const> argv) {
    static constexpr std::array<std::string_view, 29> kValued = {
        "--server",   "--key",      "--protocol-id", "--clients", "--bind",        "--base-port",
        "--payloads", "--size",     "--rate",        "--timeout", "--duration",    "--suite",
        "--client-id-base", "--driver", "--device", "--gateway-mac", "--in-flight", "--mode",
        "--blast-rate", "--trial", "--max-rate", "--verify-every", "--flood-rate", "--flood-kinds",
        "--flood-sources", "--connect-rate", "--impair", "--vanish-every", "--gateway"};
    Options o;
    std::vector<std::string_view> seen;
    bool have_server = false, have_key = false, have_protocol = false;
    for (size_t i = 0; i < argv.size(); ++i) {
        const std::string_view arg = argv[i];
        if (!arg.starts_with("--")) usage_error("unexpected argument " + quote(arg) + " (try '" + kProg + " --help')");
        std::string_view name = arg;
        std::optional<std::string_view> value;
        if (const auto eq = arg.find('='); eq != std::string_view::npos) {
            name = arg.substr(0, eq);
            value = arg.substr(eq + 1);
        }
        const bool valued = std::find(kValued.begin(), kValued.end(), name) != kValued.end();
        if (!valued && name != "--json" && name != "--quiet" && name != "--raw")
            usage_error("unknown option " + quote(name) + " (try '" + kProg + " --help')");
        if (std::find(seen.begin(), seen.end(), name) != seen.end()) usage_error(std::string(name) + ": given more than once");
        seen.push_back(name);
        if (name == "--quiet" || name == "--raw") {
            if (value) usage_error(std::string(name) + ": takes no value");
            (name == "--quiet" ? o.quiet : o.raw) = true;
            continue;
        }
        if (name == "--json") {  // --json, --json FILE, --json=FILE
            o.json = true;
            if (!value && i + 1 < argv.size() && !std::string_view(argv[i + 1]).starts_with("--")) value = argv[++i];
            if (value && value->empty()) usage_error("--json: empty file name");
            if (value && *value != "-") o.json_file = std::string(*value);
            continue;
        }
        if (!value) {
            if (i + 1 >= argv.size() || std::string_view(argv[i + 1]).starts_with("--"))
                usage_error(std::string(name) + ": missing value");
            value = argv[++i];
        }
        const std::string_view v = *value;
        if (name == "--driver") {
            if (v != "socket" && v != "ethdev") usage_error("--driver: " + quote(v) + " is not a driver (want socket or ethdev)");
            o.ethdev = v == "ethdev";
        } else if (name == "--device") {
            if (v.empty()) usage_error("--device: empty name");
            o.device = std::string(v);
        } else if (name == "--gateway-mac") {
            rte_ether_addr mac;
            if (rte_ether_unformat_addr(std::string(v).c_str(), &mac) != 0 || !rte_is_unicast_ether_addr(&mac) ||
                rte_is_zero_ether_addr(&mac))
                usage_error("--gateway-mac: " + quote(v) + " is not a unicast MAC address (want aa:bb:cc:dd:ee:ff)");
            o.gateway = mac;
        } else if (name == "--gateway") {
            o.gateway_ip = parse_ip(v);
            o.gateway_text = std::string(v);
            if (!o.gateway_ip) usage_error("--gateway: " + quote(v) + " is not an IPv4 or IPv6 address");
        } else if (name == "--in-flight") {
            o.in_flight = static_cast<uint32_t>(number(name, v, 0, 1u << 30));
        } else if (name == "--server") {
            const auto a = wire::Address::parse(v);
            if (!a || a->type == wire::AddressType::none)
                usage_error("--server: " + quote(v) + " is not an address (want a.b.c.d:port or [v6]:port)");
            if (a->port == 0) usage_error("--server: " + quote(v) + " has port 0");
            o.server = *a;
            have_server = true;
        } else if (name == "--key") {
            o.key_file = std::string(v);
            have_key = true;
        } else if (name == "--protocol-id") {
            const auto id = parse_u64(v);
            if (!id) usage_error("--protocol-id: " + quote(v) + " is not a 64-bit number (decimal or 0x-hex)");
            o.protocol_id = *id;
            have_protocol = true;
        } else if (name == "--clients") {
            o.clients = static_cast<uint32_t>(number(name, v, 1, 1'000'000));
        } else if (name == "--bind") {
            o.bind = parse_ip(v);
            o.bind_text = std::string(v);
            if (!o.bind) usage_error("--bind: " + quote(v) + " is not an IPv4 or IPv6 address");
        } else if (name == "--base-port") {
            o.base_port = static_cast<uint32_t>(number(name, v, 0, 65535));
        } else if (name == "--payloads") {
            o.payloads = static_cast<uint32_t>(number(name, v, 0, UINT32_MAX - 1));
        } else if (name == "--size") {
            o.size = static_cast<uint32_t>(number(name, v, engine::ClientPool::kPayloadHeader, wire::kMaxPayloadSize));
        } else if (name == "--rate") {
            o.rate = number(name, v, 0, 1'000'000'000);
        } else if (name == "--timeout") {
            const auto t = parse_signed<int32_t>(v);
            if (!t || *t == 0) usage_error("--timeout: " + quote(v) + " is not a nonzero number of seconds");
            o.timeout = *t;
        } else if (name == "--duration") {
            double d = 0;
            const auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), d);
            if (ec != std::errc{} || end != v.data() + v.size() || !(d > 0) || d > 1e6)
                usage_error("--duration: " + quote(v) + " is not a number of seconds in (0, 1000000]");
            o.duration = d;
        } else if (name == "--client-id-base") {
            const auto b = parse_signed<int64_t>(v);
            if (!b) usage_error("--client-id-base: " + quote(v) + " is not a 64-bit signed number");
            o.client_id_base = *b;
        } else if (name == "--mode") {
            if (v == "echo") o.mode = Mode::echo;
            else if (v == "blast") o.mode = Mode::blast;
            else if (v == "storm" || v == "connect-storm") o.mode = Mode::storm;
            else if (v == "flood") o.mode = Mode::flood;
            else if (v == "soak") o.mode = Mode::soak;
            else usage_error("--mode: " + quote(v) + " is not a mode (want echo, blast, connect-storm, flood or soak)");
        } else if (name == "--impair") {
            std::string error;
            if (!engine::ImpairmentConfig::parse(std::string(v), o.impair, error)) usage_error("--impair: " + error);
        } else if (name == "--vanish-every") {
            o.vanish_every = static_cast<uint32_t>(number(name, v, 0, 1'000'000));
        } else if (name == "--blast-rate" || name == "--max-rate" || name == "--flood-rate") {
            const double r = number(name, v, 1, 1'000'000'000);
            (name == "--blast-rate" ? o.blast_rate : name == "--max-rate" ? o.max_rate : o.flood_rate) = r;
        } else if (name == "--trial") {
            double d = 0;
            const auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), d);
            if (ec != std::errc{} || end != v.data() + v.size() || !(d >= 0.01) || d > 60)
                usage_error("--trial: " + quote(v) + " is not a number of seconds in [0.01, 60]");
            o.trial = d;
        } else if (name == "--connect-rate") {
            o.connect_rate = number(name, v, 1, 100'000'000);
        } else if (name == "--verify-every") {
            o.verify_every = static_cast<uint32_t>(number(name, v, 1, 1u << 20));
        } else if (name == "--flood-sources") {
            o.flood_sources = static_cast<uint32_t>(number(name, v, 1, 16384));
        } else if (name == "--flood-kinds") {
            size_t at = 0;
            while (at <= v.size()) {
                const size_t comma = std::min(v.find(',', at), v.size());
                engine::FloodKind k;
                if (!engine::flood_kind_from_name(v.substr(at, comma - at), k))
                    usage_error("--flood-kinds: " + quote(v.substr(at, comma - at)) +
                                " is not a kind (want forged-request, expired-request, replayed-token, junk, "
                                "spoofed-sequence)");
                o.flood_kinds[static_cast<unsigned>(k)] = true;
                at = comma + 1;
            }
        } else if (name == "--suite") {
            const auto s = crypto::suite_from_name(v);
            if (!s) usage_error("--suite: " + quote(v) + " is not a suite (chacha or aesgcm)");
            o.suite = *s;
        }
    }
    if (!have_server) usage_error("--server is required (try '" + std::string(kProg) + " --help')");
    if (!have_key) usage_error("--key is required (try '" + std::string(kProg) + " --help')");
    if (!have_protocol) usage_error("--protocol-id is required (try '" + std::string(kProg) + " --help')");
    if (o.ethdev) {
        if (!o.bind) usage_error("--bind: required with --driver ethdev (the clients' first local IP)");
        if (o.gateway && o.gateway_ip)
            usage_error("--gateway: not with --gateway-mac (the MAC is the next hop: nothing to resolve)");
        if (o.gateway_ip && o.gateway_ip->type != o.server.type)
            usage_error("--gateway: " + quote(o.gateway_text) + " is not of the server's family (" +
                        o.server.to_string() + ")");
        if (o.base_port == 0) usage_error("--base-port: 0 (ephemeral ports) is for --driver socket only");
    } else {
        for (const char* opt : {"--device", "--gateway-mac", "--gateway"})
            if (std::find(seen.begin(), seen.end(), opt) != seen.end())
                usage_error(std::string(opt) + ": only with --driver ethdev");
        if (o.base_port != 0 && o.base_port + o.endpoints() - 1 > 65535)
            usage_error("--base-port: " + std::to_string(o.base_port) + " + " + std::to_string(o.endpoints()) +
                        " endpoints (clients and flood sources) runs past port 65535");
    }
    auto only_in = [&](Mode m, std::initializer_list<const char*> opts) {
        for (const char* opt : opts)
            if (o.mode != m && std::find(seen.begin(), seen.end(), opt) != seen.end())
                usage_error(std::string(opt) + ": only with --mode " + mode_name(m));
    };
    only_in(Mode::blast, {"--blast-rate", "--trial", "--max-rate", "--verify-every", "--raw"});
    only_in(Mode::flood, {"--flood-rate", "--flood-kinds", "--flood-sources"});
    only_in(Mode::soak, {"--vanish-every"});
    if (o.mode == Mode::blast && std::find(seen.begin(), seen.end(), "--impair") != seen.end())
        usage_error("--impair: not with --mode blast (a capacity search counts every loss against the server)");
    if (o.mode == Mode::soak && o.vanish_every && o.timeout < 0)
        usage_error("--vanish-every: a server never times out a token with a negative --timeout (give "
                    "--vanish-every 0 or a positive --timeout)");
    if (o.mode == Mode::flood && std::none_of(o.flood_kinds.begin(), o.flood_kinds.end(), [](bool b) { return b; }))
        o.flood_kinds.fill(true);
    if (o.mode == Mode::blast && std::find(seen.begin(), seen.end(), "--payloads") != seen.end())
        usage_error("--payloads: not with --mode blast (it sends until the trial ends)");
    // Endpoints are 16-bit indices on a port (wire::kAnyLocal is the last).
    if (o.endpoints() > 65534)
        usage_error("--clients: " + std::to_string(o.clients) + " clients" +
                    (o.mode == Mode::flood ? " and " + std::to_string(o.flood_sources) + " flood sources" : "") +
                    " need more than 65534 endpoints, the most one port has (run more generators)");
    if (!o.bind) o.bind = parse_ip(o.server.type == wire::AddressType::ipv6 ? "::1" : "127.0.0.1");
    if (o.bind->type != o.server.type)
        usage_error("--bind: " + quote(o.bind_text) + " is not of the server's family (" +
                    (o.server.type == wire::AddressType::ipv6 ? "IPv6" : "IPv4") + ")");
    if (o.ethdev && !ip_plus(*o.bind, (o.endpoints() - 1) / ports_per_ip(o.base_port)))
        usage_error("--bind: " + quote(o.bind_text) + " + " + std::to_string(o.clients) +
                    " clients runs past the last address");
    if (o.client_id_base > std::numeric_limits<int64_t>::max() - static_cast<int64_t>(o.clients))
        usage_error("--client-id-base: client ids would overflow");
    if (uint64_t{o.payloads} * o.clients > kMaxTotalPayloads)
        usage_error("--payloads: " + std::to_string(o.payloads) + " x " + std::to_string(o.clients) +
                    " clients is more than " + std::to_string(kMaxTotalPayloads) + " payloads in total");
    return o;
}

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

// The server private key: 64 hex digits, surrounding whitespace allowed.
crypto::Key load_key(const std::string& path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) runtime_error("--key: cannot read " + quote(path) + ": " + std::strerror(errno));
    std::array<char, 256> buf{};
    size_t n = 0;
    while (n < buf.size()) {
        const ssize_t r = ::read(fd, buf.data() + n, buf.size() - n);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            const int e = errno;
            ::close(fd);
            crypto::secure_wipe(buf.data(), buf.size());
            runtime_error("--key: cannot read " + quote(path) + ": " + std::strerror(e));
        }
        if (r == 0) break;
        n += static_cast<size_t>(r);
    }
    ::close(fd);
    size_t b = 0, e = n;
    const auto space = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; };
    while (b < e && space(buf[b])) ++b;
    while (e > b && space(buf[e - 1])) --e;
    crypto::Key key;
    bool ok = n < buf.size() && e - b == 2 * wire::kKeySize;
    for (size_t i = 0; ok && i < wire::kKeySize; ++i) {
        const int hi = hex_value(buf[b + 2 * i]), lo = hex_value(buf[b + 2 * i + 1]);
        ok = hi >= 0 && lo >= 0;
        if (ok) key.bytes[i] = static_cast<uint8_t>(hi << 4 | lo);
    }
    crypto::secure_wipe(buf.data(), buf.size());
    if (!ok) usage_error("--key: " + quote(path) + " is not a server key (want 64 hex digits, as written by 'pomelo-token keygen')");
    return key;
}

// Enough open files for one socket per client.
void raise_fd_limit(uint32_t clients) {
    rlimit lim{};
    if (::getrlimit(RLIMIT_NOFILE, &lim) != 0) return;
    const rlim_t want = clients + kSpareFds;
    if (lim.rlim_cur != RLIM_INFINITY && lim.rlim_cur >= want) return;
    if (lim.rlim_max != RLIM_INFINITY && lim.rlim_max < want)
        runtime_error("--clients: " + std::to_string(clients) + " clients need " + std::to_string(want) +
                      " open files, the hard limit is " + std::to_string(lim.rlim_max) + " (raise 'ulimit -Hn')");
    lim.rlim_cur = want;
    if (::setrlimit(RLIMIT_NOFILE, &lim) != 0)
        runtime_error("cannot raise the open-file limit to " + std::to_string(want) + ": " + std::strerror(errno));
}

// ---------------------------------------------------------------------------------------------
// Summary

std::string duration_text(uint64_t ns) {
    char buf[32];
    if (ns < 10'000) std::snprintf(buf, sizeof buf, "%" PRIu64 " ns", ns);
    else if (ns < 10'000'000) std::snprintf(buf, sizeof buf, "%.1f us", static_cast<double>(ns) / 1e3);
    else if (ns < 10'000'000'000ull) std::snprintf(buf, sizeof buf, "%.2f ms", static_cast<double>(ns) / 1e6);
    else std::snprintf(buf, sizeof buf, "%.2f s", static_cast<double>(ns) / 1e9);
    return buf;
}

std::string outcome_key(client::Outcome o) {
    std::string s = client::to_string(o);
    std::replace(s.begin(), s.end(), ' ', '_');
    return s;
}

// "denied 3, request timed out 2", only the nonzero ones; "none" when all are zero.
std::string outcome_list(const std::array<uint32_t, engine::ClientPoolStats::kOutcomes>& counts) {
    std::string out;
    for (unsigned i = 0; i < counts.size(); ++i) {
        if (!counts[i]) continue;
        if (!out.empty()) out += ", ";
        out += std::string(client::to_string(static_cast<client::Outcome>(i))) + " " + std::to_string(counts[i]);
    }
    return out.empty() ? "none" : out;
}

nlohmann::json outcome_json(const std::array<uint32_t, engine::ClientPoolStats::kOutcomes>& counts) {
    nlohmann::json j = nlohmann::json::object();
    for (unsigned i = 0; i < counts.size(); ++i)
        if (counts[i]) j[outcome_key(static_cast<client::Outcome>(i))] = counts[i];
    return j;
}

// Writes the JSON summary to --json FILE, or to stdout (then instead of the text summary).
void emit_json(const Options& o, const nlohmann::json& j) {
    if (o.json_file.empty()) {
        std::printf("%s\n", j.dump().c_str());
        std::fflush(stdout);
        return;
    }
    FILE* f = std::fopen(o.json_file.c_str(), "w");
    if (!f) runtime_error("--json: cannot write " + quote(o.json_file) + ": " + std::strerror(errno));
    const std::string text = j.dump(2) + "\n";
    const bool ok = std::fwrite(text.data(), 1, text.size(), f) == text.size();
    if (std::fclose(f) != 0 || !ok) runtime_error("--json: cannot write " + quote(o.json_file));
}

// The clients' part of every mode's summary: connections, payloads and RTT.
nlohmann::json pool_json(const Options& o, const engine::ClientPoolStats& s, const drivers::PortStats& port) {
    uint32_t failed = 0;
    for (uint32_t c : s.connect_failed) failed += c;
    nlohmann::json j;
    j["clients"] = {{"total", s.clients},
                    {"connected", s.connected},
                    {"failed", failed},
                    {"failed_by_outcome", outcome_json(s.connect_failed)},
                    {"ended_by_outcome", outcome_json(s.ended)},
                    {"aborted", s.aborted},
                    {"not_started", s.not_started}};
    j["handshake_ns"] = {{"p50", s.handshake_percentile(50)}, {"p99", s.handshake_percentile(99)}};
    j["payloads"] = {{"per_client", o.payloads},
                     {"size", o.size},
                     {"sent", s.payloads_sent},
                     {"echoed", s.payloads_echoed},
                     {"mismatched", s.payloads_mismatched},
                     {"duplicated", s.payloads_duplicated},
                     {"lost", s.lost()},
                     {"late", s.payloads_late}};
    j["echo_rate_pps"] = s.echo_rate();
    j["echo_rtt_ns"] = {{"mean", s.echo_rtt.mean()},
                        {"p50", s.echo_rtt.quantile(0.5)},
                        {"p99", s.echo_rtt.quantile(0.99)},
                        {"p999", s.echo_rtt.quantile(0.999)},
                        {"max", s.echo_rtt.max()}};
    j["ping_rtt_mean_ns"] = s.ping_rtt_mean_ns();
    j["port"] = {{"driver", o.ethdev ? "ethdev" : "socket"},
                 {"rx_datagrams", port.rx_datagrams},
                 {"rx_truncated", port.rx_truncated},
                 {"rx_not_ours", port.rx_not_ours},
                 {"rx_malformed", port.rx_malformed},
                 {"tx_datagrams", port.tx_datagrams},
                 {"tx_dropped", port.tx_dropped},
                 {"tx_unresolved", port.tx_unresolved},
                 {"arp_requests", port.arp_requests},
                 {"nd_solicits", port.nd_solicits},
                 {"neighbours_resolved", port.neighbours_resolved},
                 {"neighbours_unsolicited", port.neighbours_unsolicited},
                 {"neighbours_failed", port.neighbours_failed}};
    return j;
}

void print_pool_text(const Options& o, const engine::ClientPoolStats& s, const drivers::PortStats& port) {
    uint32_t failed = 0;
    for (uint32_t c : s.connect_failed) failed += c;
    std::printf("%s: %s, %u clients -> %s (%s, payloads of %u bytes)\n", kProg, mode_name(o.mode), s.clients,
                o.server.to_string().c_str(), crypto::to_string(o.suite), o.size);
    std::printf("clients:    %u connected, %u failed to connect (%s)\n", s.connected, failed,
                outcome_list(s.connect_failed).c_str());
    std::printf("ended:      %s", outcome_list(s.ended).c_str());
    if (s.aborted) std::printf(", aborted while connecting %u", s.aborted);
    if (s.not_started) std::printf(", never started %u", s.not_started);
    std::printf("\n");
    std::printf("handshake:  p50 %s, p99 %s\n", duration_text(s.handshake_percentile(50)).c_str(),
                duration_text(s.handshake_percentile(99)).c_str());
    if (o.mode != Mode::blast && o.mode != Mode::storm) {
        std::printf("payloads:   %" PRIu64 " sent, %" PRIu64 " echoed, %" PRIu64 " mismatched, %" PRIu64 " lost\n",
                    s.payloads_sent, s.payloads_echoed, s.payloads_mismatched, s.lost());
        std::printf("echo rate:  %.0f payloads/s (%.3f Mpps)\n", s.echo_rate(), s.echo_rate() / 1e6);
        std::printf("RTT:        echo p50 %s, p99 %s, p99.9 %s; ping mean %s\n",
                    duration_text(s.echo_rtt.quantile(0.5)).c_str(), duration_text(s.echo_rtt.quantile(0.99)).c_str(),
                    duration_text(s.echo_rtt.quantile(0.999)).c_str(), duration_text(s.ping_rtt_mean_ns()).c_str());
    }
    if (port.tx_dropped || port.rx_truncated || port.rx_malformed)
        std::printf("port:       %" PRIu64 " sends dropped (%" PRIu64 " without a next hop), %" PRIu64
                    " datagrams truncated, %" PRIu64 " malformed\n",
                    port.tx_dropped, port.tx_unresolved, port.rx_truncated, port.rx_malformed);
    if (port.neighbours_failed || port.neighbours_unsolicited)
        std::printf("resolution: %" PRIu64 " next hops resolved, %" PRIu64 " never answered (%" PRIu64
                    " ARP requests, %" PRIu64 " neighbour solicitations sent), %" PRIu64 " unsolicited answers ignored\n",
                    port.neighbours_resolved, port.neighbours_failed, port.arp_requests, port.nd_solicits,
                    port.neighbours_unsolicited);
}

void print_result(const Options& o, nlohmann::json& j, bool ok, const std::string& stop_reason, uint64_t elapsed_ns) {
    j["mode"] = mode_name(o.mode);
    j["server"] = o.server.to_string();
    j["suite"] = crypto::to_string(o.suite);
    j["elapsed_ns"] = elapsed_ns;
    j["stopped"] = stop_reason.empty() ? nlohmann::json(nullptr) : nlohmann::json(stop_reason);
    j["ok"] = ok;
    if (o.json) emit_json(o, j);
    if (o.json && o.json_file.empty()) return;
    std::printf("result:     %s after %s%s\n", ok ? "OK" : "FAILED", duration_text(elapsed_ns).c_str(),
                stop_reason.empty() ? "" : (" (" + stop_reason + ")").c_str());
    std::fflush(stdout);
}

// One progress line a second on stderr (rates over the last second).
class Progress {
public:
    Progress(const Options& o, uint64_t start_ns) : on_(!o.quiet), start_(start_ns), next_(start_ns + kSecond) {}
    bool due(uint64_t now_ns) const { return on_ && now_ns >= next_; }
    void line(uint64_t now_ns, const std::string& text) {
        std::fprintf(stderr, "[%6.1fs] %s\n", static_cast<double>(now_ns - start_) / 1e9, text.c_str());
        next_ = now_ns + kSecond;
    }
    void pool_line(uint64_t now_ns, const engine::ClientPool& pool, const std::string& extra = "") {
        const engine::ClientPoolStats& s = pool.stats();
        const double dt = static_cast<double>(now_ns - last_ns_) / 1e9;
        char buf[256];
        std::snprintf(buf, sizeof buf, "connected %u/%u  sent %.3f Mpps  echoed %.3f Mpps  lost %" PRIu64
                      "  rtt p50 %s p99 %s%s",
                      pool.connected_now(), s.clients, static_cast<double>(s.payloads_sent - last_sent_) / dt / 1e6,
                      static_cast<double>(s.payloads_echoed - last_echoed_) / dt / 1e6, s.payloads_given_up,
                      duration_text(s.echo_rtt.quantile(0.5)).c_str(), duration_text(s.echo_rtt.quantile(0.99)).c_str(),
                      extra.c_str());
        last_ns_ = now_ns;
        last_sent_ = s.payloads_sent;
        last_echoed_ = s.payloads_echoed;
        line(now_ns, buf);
    }

private:
    bool on_;
    uint64_t start_, next_;
    uint64_t last_ns_ = start_, last_sent_ = 0, last_echoed_ = 0;
};

// ---------------------------------------------------------------------------------------------
// Ports

std::unique_ptr<drivers::Port> open_sockets(const Options& o, rte_mempool* mbufs) {
    drivers::SocketConfig sc;
    sc.pool = mbufs;
    sc.local.reserve(o.endpoints());
    for (uint32_t i = 0; i < o.endpoints(); ++i) {
        wire::Address a = *o.bind;
        a.port = o.base_port ? static_cast<uint16_t>(o.base_port + i) : 0;
        sc.local.push_back(a);
    }
    // 64 MiB of socket buffer in all, 256 KiB..4 MiB per socket.
    sc.rcvbuf = sc.sndbuf = static_cast<int>(std::clamp<uint64_t>((64u << 20) / o.endpoints(), 256u << 10, 4u << 20));
    std::string error;
    auto port = drivers::open_socket_port(sc, error);
    if (!port) runtime_error(error);
    return port;
}

std::unique_ptr<drivers::Port> open_ethdev(const Options& o, rte_mempool* mbufs) {
    if (rte_eth_dev_count_avail() == 0)
        runtime_error("--driver ethdev: no DPDK port (give EAL a device before '--', e.g. --vdev "
                      "net_memif0,role=client,socket=/tmp/pomelo-memif.sock; see --help)");
    drivers::EthdevConfig c;
    if (o.device.empty()) {
        uint16_t first = 0;
        RTE_ETH_FOREACH_DEV(first) break;
        char name[RTE_ETH_NAME_MAX_LEN] = {};
        c.device = rte_eth_dev_get_name_by_port(first, name) == 0 ? name : std::to_string(first);
    } else {
        c.device = o.device;
    }
    const uint32_t per_ip = ports_per_ip(o.base_port);
    c.local.reserve(o.endpoints());
    for (uint32_t i = 0; i < o.endpoints(); ++i) {
        wire::Address a = *ip_plus(*o.bind, i / per_ip);  // checked by parse_options
        a.port = static_cast<uint16_t>(o.base_port + i % per_ip);
        c.local.push_back(a);
    }
    c.pool = mbufs;
    c.gateway = o.gateway;
    // Without a MAC the port finds the next hop itself (ARP / ND), as a host on the link would.
    c.resolve.enabled = !o.gateway;
    c.resolve.gateway = o.gateway_ip;
    c.queues = 1;
    c.neighbours = 1024;  // the server (and whatever else talks to us)
    std::string error;
    auto port = drivers::open_ethdev_port(c, error);
    if (!port) {
        if (c.device.starts_with("net_memif")) error += " (a memif client needs its server: start pomelo-server first)";
        runtime_error(error);
    }

    // A memif client connects to its server after the start: wait for the link (sending
    // earlier would only lose the first handshakes).
    const uint16_t id = static_cast<drivers::EthdevPort&>(*port).port_id();
    engine::TscClock clock;
    const uint64_t deadline = clock.now().ns + kLinkWaitNs;
    for (;;) {
        rte_eth_link link{};
        if (rte_eth_link_get_nowait(id, &link) == 0 && link.link_status == RTE_ETH_LINK_UP) break;
        if (g_signals.load(std::memory_order_relaxed)) runtime_error("interrupted while waiting for the link");
        if (clock.now().ns > deadline)
            runtime_error("ethdev port '" + port->name() + "': link still down after " +
                          std::to_string(kLinkWaitNs / kSecond) + " s (is the server up? a memif client needs its server)");
        ::usleep(1000);
    }
    return port;
}

// ---------------------------------------------------------------------------------------------

// ---------------------------------------------------------------------------------------------
// Modes

// What every mode works with.
struct Session {
    const Options& o;
    const crypto::Key& key;
    drivers::Port& port;
    rte_mempool* mbufs;
    crypto::BurstAead& aead;
    int64_t id_offset = 0;  // added to client ids (connect-storm rounds)

    bool mint(int64_t client_id, uint64_t unix_ms, std::span<uint8_t, wire::kConnectTokenSize> out) const {
        wire::TokenSpec spec;
        spec.suite = o.suite;
        spec.protocol_id = o.protocol_id;
        spec.create_ms = unix_ms;
        spec.expire_ms = unix_ms + 300'000;
        crypto::random_bytes(spec.nonce.data(), spec.nonce.size());
        spec.private_part.client_id = client_id;
        spec.private_part.timeout_seconds = o.timeout;
        spec.private_part.addresses.push(o.server);
        spec.private_part.client_to_server_key = crypto::Key::random();
        spec.private_part.server_to_client_key = crypto::Key::random();
        return wire::mint_connect_token(spec, key, out) == wire::WireError::ok;
    }

    engine::ClientPoolConfig pool_config() {
        engine::ClientPoolConfig pc;
        pc.clients = o.clients;
        pc.payloads = o.payloads;
        pc.payload_size = o.size;
        pc.rate_pps = o.rate;
        pc.window = 32;
        pc.max_in_flight = o.in_flight.value_or(o.ethdev ? kEthdevInFlight : kSocketInFlight);
        pc.connect_spacing_ns = o.connect_rate ? std::max<uint64_t>(1, kSecond / o.connect_rate) : 0;
        pc.token = [this](uint32_t index, uint64_t unix_ms, std::span<uint8_t, wire::kConnectTokenSize> out) {
            return mint(o.client_id_base + id_offset + index, unix_ms, out);
        };
        return pc;
    }
};

bool connections_kept(const engine::ClientPoolStats& s) {
    for (unsigned k = 0; k < s.ended.size(); ++k)
        if (k != static_cast<unsigned>(client::Outcome::disconnected) && s.ended[k]) return false;
    return true;
}

// Polls until the pool is done: stops it at a signal or when `deadline_ns` passes, gives it
// kStopGraceNs to finish. `each` runs every iteration. Returns the stop reason ("" if done).
// With `yield_when_idle`, a poll that received nothing gives the CPU away (sched_yield): on a
// host with fewer cores than busy threads, the server's control thread may share this CPU.
std::string drive(engine::ClientPool& pool, uint64_t deadline_ns, const std::function<void(const Now&)>& each,
                  bool yield_when_idle = false) {
    std::string stop_reason;
    uint64_t stop_ns = 0;
    while (!pool.done()) {
        const Now now = pool.now();
        if (pool.poll(now) == 0 && yield_when_idle) ::sched_yield();
        if (each) each(now);
        const int signals = g_signals.load(std::memory_order_relaxed);
        if (!pool.stopping()) {
            if (signals) stop_reason = "interrupted";
            else if (now.ns >= deadline_ns) stop_reason = "--duration reached";
            if (!stop_reason.empty()) {
                pool.stop(now);
                stop_ns = now.ns;
            }
        } else if (signals > 1 || now.ns - stop_ns > kStopGraceNs) {
            stop_reason += signals > 1 ? ", interrupted again" : ", disconnects unfinished";
            break;
        }
    }
    return stop_reason;
}

// The verdict on echo loss over an impaired link: a payload or its echo is lost with
// q = 1 - (1 - loss)^2 (a duplicate is made only of a datagram that was not lost), so the
// echoes lost are binomial(sent, q); more than its mean + 5 standard deviations (+1) is
// loss the impairment does not explain. Without loss in the impairment, none is allowed.
bool loss_explained(const engine::ImpairmentConfig& impair, const engine::ClientPoolStats& s, double& expected) {
    expected = 1 - (1 - impair.loss) * (1 - impair.loss);
    const double n = static_cast<double>(s.payloads_sent);
    const double bound = n * expected + 5 * std::sqrt(n * expected * (1 - expected)) + (expected > 0 ? 1 : 0);
    return static_cast<double>(s.lost()) <= bound;
}

nlohmann::json impairment_json(const engine::ImpairedPort& p) {
    auto dir = [](const engine::ImpairmentStats& d) {
        return nlohmann::json{{"seen", d.seen},           {"lost", d.lost},           {"duplicated", d.duplicated},
                              {"reordered", d.reordered}, {"delivered", d.delivered}, {"overflowed", d.overflowed}};
    };
    const engine::ImpairmentConfig& c = p.config();
    return {{"config",
             {{"loss", c.loss}, {"duplicate", c.duplicate}, {"reorder", c.reorder}, {"delay_ns", c.delay_ns},
              {"jitter_ns", c.jitter_ns}, {"reorder_ns", c.reorder_ns}, {"seed", c.seed}}},
            {"tx", dir(p.tx_stats())},
            {"rx", dir(p.rx_stats())}};
}

// echo (and flood: echo clients with attack traffic beside them).
int run_echo(Session& ss) {
    const Options& o = ss.o;
    engine::ClientPool pool(ss.pool_config(), ss.port, 0, ss.mbufs, ss.aead);
    const Now start = pool.now();
    pool.start(start);
    Progress progress(o, start.ns);

    std::unique_ptr<engine::Flooder> flood;
    uint64_t flood_from_ns = 0, flood_to_ns = 0;
    if (o.mode == Mode::flood) {
        engine::FloodConfig fc;
        fc.rate_pps = o.flood_rate;
        fc.kinds = o.flood_kinds;
        fc.server = o.server;
        fc.protocol_id = o.protocol_id;
        fc.suite = o.suite;
        fc.first_source = static_cast<uint16_t>(o.clients);
        fc.sources = static_cast<uint16_t>(o.flood_sources);
        for (uint32_t i = 0; i < o.clients; ++i) fc.victims.push_back(pool.local_of(i));
        // replayed_token: a token of its own (client id just past the clients'), never used by a client.
        std::array<uint8_t, wire::kConnectTokenSize> token{};
        wire::ConnectToken decoded;
        if (!ss.mint(o.client_id_base + o.clients, start.unix_ms, token) ||
            wire::decode_connect_token(token, decoded) != wire::WireError::ok)
            runtime_error("flood: cannot mint the token to replay");
        fc.valid_request.resize(wire::kRequestSize);
        wire::write_request(decoded, fc.valid_request);
        crypto::secure_wipe(token.data(), token.size());
        flood = std::make_unique<engine::Flooder>(fc, ss.port, 0, ss.mbufs);
    }

    const uint64_t deadline = start.ns + static_cast<uint64_t>(o.duration * 1e9);
    const std::string stop_reason = drive(pool, deadline, [&](const Now& now) {
        // The attack runs while every client is connected: their handshakes are measured apart
        // from it, and a spoofed datagram always has a connection to attack.
        if (flood && !pool.stopping() && pool.connected_now() == o.clients && pool.stats().disconnecting == 0) {
            if (!flood_from_ns) flood_from_ns = now.ns;
            flood_to_ns = now.ns;
            flood->pump(now);
        }
        if (progress.due(now.ns))
            progress.pool_line(now.ns, pool, flood ? "  flood sent " + std::to_string(flood->total_sent()) : "");
    });
    const Now end = pool.now();
    const engine::ClientPoolStats& s = pool.stats();
    // Over an impaired link, echoes may be lost, as many as the impairment explains.
    double expected_loss = 0;
    const bool ok = pool.done() && (o.impair.any() ? s.all_good_but_loss(o.payloads) && loss_explained(o.impair, s, expected_loss)
                                                   : s.all_good(o.payloads));
    const drivers::PortStats port = ss.port.total_stats();
    nlohmann::json j = pool_json(o, s, port);
    if (auto* imp = dynamic_cast<engine::ImpairedPort*>(&ss.port)) j["impairment"] = impairment_json(*imp);
    if (flood) {
        nlohmann::json kinds = nlohmann::json::object();
        for (unsigned k = 0; k < engine::kFloodKindCount; ++k)
            if (o.flood_kinds[k]) kinds[engine::name_of(static_cast<engine::FloodKind>(k))] = flood->sent()[k];
        const double secs = static_cast<double>(std::max<uint64_t>(flood_to_ns - flood_from_ns, 1)) / 1e9;
        j["flood"] = {{"rate_pps", o.flood_rate},
                      {"achieved_pps", flood_from_ns ? static_cast<double>(flood->total_sent()) / secs : 0.0},
                      {"sources", o.flood_sources},
                      {"sent", flood->total_sent()},
                      {"sent_by_kind", kinds}};
    }
    if (!o.json || !o.json_file.empty()) {
        print_pool_text(o, s, port);
        if (flood) {
            std::printf("flood:      %" PRIu64 " sent at %.0f pps from %u sources:", flood->total_sent(), o.flood_rate,
                        o.flood_sources);
            for (unsigned k = 0; k < engine::kFloodKindCount; ++k)
                if (o.flood_kinds[k])
                    std::printf(" %s %" PRIu64, engine::name_of(static_cast<engine::FloodKind>(k)), flood->sent()[k]);
            std::printf("\n");
        }
    }
    print_result(o, j, ok, stop_reason, end.ns - start.ns);
    return ok ? kExitOk : kExitFailure;
}

// blast: pre-sealed payloads at an offered rate, or the capacity search.
int run_blast(Session& ss) {
    const Options& o = ss.o;
    engine::ClientPoolConfig pc = ss.pool_config();
    pc.payloads = 0;
    pc.disconnect_when_done = false;
    engine::ClientPool pool(pc, ss.port, 0, ss.mbufs, ss.aead);
    const Now start = pool.now();
    if (!o.raw) pool.start(start);
    Progress progress(o, start.ns);
    // Connect everyone first (at most the token timeout, or until nobody is left connecting).
    const uint64_t connect_deadline = start.ns + std::max<uint64_t>(10, static_cast<uint64_t>(std::abs(o.timeout))) * kSecond;
    for (Now now = start; !o.raw && pool.stats().connected + pool.stats().finished < o.clients && now.ns < connect_deadline &&
                          !g_signals.load(std::memory_order_relaxed);
         now = pool.now())
        pool.poll(now);

    engine::BlastConfig bc;
    bc.payload_size = o.size;
    bc.verify_every = o.verify_every;
    engine::Blaster blaster(pool, ss.port, 0, ss.mbufs, ss.aead, bc);
    const uint64_t max_trial_packets = (uint64_t{1} << 30) / (o.size + 48);
    double generator_max = 0;
    auto trial = [&](double rate, uint64_t most = UINT64_MAX) {
        if (g_signals.load(std::memory_order_relaxed)) return engine::BlastTrial{rate};
        const auto want = static_cast<uint64_t>(rate * o.trial);
        if (o.raw) blaster.prepare_raw(std::min({want, max_trial_packets, most}), o.server);
        else blaster.prepare(std::min({want, max_trial_packets, most}));
        engine::BlastTrial t = blaster.run(rate, [&](const engine::BlastTrial&) {
            return !g_signals.load(std::memory_order_relaxed);
        });
        generator_max = std::max(generator_max, t.sent_pps);
        if (!o.quiet)
            progress.line(pool.now().ns, [&] {
                char buf[256];
                std::snprintf(buf, sizeof buf,
                              "trial offered %.3f Mpps  sent %.3f Mpps  echoed %" PRIu64 "/%" PRIu64
                              "  loss %.4f %%  verified %" PRIu64 " mismatched %" PRIu64 "  connected %u",
                              t.offered_pps / 1e6, t.sent_pps / 1e6, t.echoed, t.sent, t.loss_ratio() * 100,
                              t.verified, t.mismatched, pool.connected_now());
                return std::string(buf);
            }());
        return t;
    };

    engine::CapacityResult cap;
    if (pool.connected_now() > 0 || o.raw) {
        if (o.blast_rate > 0) cap.trials.push_back(trial(o.blast_rate));
        else cap = engine::find_capacity(100'000, o.max_rate, 5, [&](double r) { return trial(r); });
    }
    // How fast the generator itself sends: one short trial flat out (its loss is expected).
    std::optional<engine::BlastTrial> probe;
    if ((pool.connected_now() > 0 || o.raw) && o.blast_rate == 0 && !cap.generator_limited && !g_signals.load())
        probe = trial(o.max_rate, 2'000'000);
    const std::string interrupted = g_signals.load(std::memory_order_relaxed) ? "interrupted" : "";
    // Disconnect everyone.
    std::string stop_reason = drive(pool, pool.now().ns, {});
    if (stop_reason == "--duration reached") stop_reason.clear();
    if (!interrupted.empty()) stop_reason = interrupted + (stop_reason.empty() ? "" : ", " + stop_reason);
    const Now end = pool.now();

    const engine::ClientPoolStats& s = pool.stats();
    uint64_t sent = 0, echoed = 0, mismatched = 0, verified = 0;
    nlohmann::json trials = nlohmann::json::array();
    if (probe) mismatched += probe->mismatched;
    for (const engine::BlastTrial& t : cap.trials) {
        sent += t.sent;
        echoed += t.echoed;
        mismatched += t.mismatched;
        verified += t.verified;
        trials.push_back({{"offered_pps", t.offered_pps},
                          {"sent_pps", t.sent_pps},
                          {"sent", t.sent},
                          {"echoed", t.echoed},
                          {"lost", t.lost()},
                          {"loss_ratio", t.loss_ratio()},
                          {"verified", t.verified},
                          {"mismatched", t.mismatched},
                          {"generator_tx_dropped", t.tx_dropped}});
    }
    const bool fixed = o.blast_rate > 0;
    const bool all_connected = o.raw || s.connected == o.clients;
    bool ok = all_connected && pool.done() && connections_kept(s) && mismatched == 0 && !cap.trials.empty() &&
              interrupted.empty();
    if (fixed && !cap.trials.empty() && cap.trials[0].lost()) ok = false;
    const char* bottleneck = cap.generator_limited ? "generator" : cap.lossy_pps > 0 ? "server" : "unknown";
    nlohmann::json j = pool_json(o, s, ss.port.total_stats());
    j["blast"] = {{"offered_pps", fixed ? nlohmann::json(o.blast_rate) : nlohmann::json(nullptr)},
                  {"capacity_pps", fixed ? nlohmann::json(nullptr) : nlohmann::json(cap.capacity_pps)},
                  {"loss_above_capacity", cap.loss_above},
                  {"lossy_pps", cap.lossy_pps},
                  {"generator_limited", cap.generator_limited},
                  {"generator_max_pps", generator_max},
                  {"generator_probe", probe ? nlohmann::json{{"offered_pps", probe->offered_pps},
                                                             {"sent_pps", probe->sent_pps},
                                                             {"sent", probe->sent},
                                                             {"echoed", probe->echoed}}
                                            : nlohmann::json(nullptr)},
                  {"bottleneck", fixed ? "n/a" : bottleneck},
                  {"sent", sent},
                  {"echoed", echoed},
                  {"lost", sent > echoed ? sent - echoed : 0},
                  {"verified", verified},
                  {"mismatched", mismatched},
                  {"verify_every", o.verify_every},
                  {"trials", trials}};
    if (!o.json || !o.json_file.empty()) {
        print_pool_text(o, s, ss.port.total_stats());
        std::printf("\n%-14s %12s %12s %12s %12s %10s %9s\n", "trial", "offered Mpps", "sent Mpps", "sent", "echoed",
                    "loss %", "mismatch");
        for (size_t i = 0; i < cap.trials.size(); ++i) {
            const engine::BlastTrial& t = cap.trials[i];
            std::printf("%-14zu %12.3f %12.3f %12" PRIu64 " %12" PRIu64 " %10.4f %9" PRIu64 "\n", i + 1,
                        t.offered_pps / 1e6, t.sent_pps / 1e6, t.sent, t.echoed, t.loss_ratio() * 100, t.mismatched);
        }
        if (fixed) {
            const engine::BlastTrial* t = cap.trials.empty() ? nullptr : &cap.trials[0];
            std::printf("\nblast:      offered %.3f Mpps, sent %.3f Mpps, loss %.4f %%, %" PRIu64
                        " echoes decrypted and verified (1 in %u), %" PRIu64 " mismatched\n",
                        o.blast_rate / 1e6, t ? t->sent_pps / 1e6 : 0.0, t ? t->loss_ratio() * 100 : 0.0, verified,
                        o.verify_every, mismatched);
        } else {
            std::printf("\ncapacity:   %.3f M echoes/s with no loss (RFC 2544 search, %.1f s trials)", cap.capacity_pps / 1e6,
                        o.trial);
            if (cap.lossy_pps > 0)
                std::printf("; at %.3f Mpps %.4f %% lost", cap.lossy_pps / 1e6, cap.loss_above * 100);
            std::printf("\ngenerator:  sends up to %.3f Mpps (%.1fx the capacity); bottleneck: %s\n",
                        generator_max / 1e6, cap.capacity_pps > 0 ? generator_max / cap.capacity_pps : 0.0, bottleneck);
            std::printf("verified:   %" PRIu64 " echoes decrypted and checked byte for byte (1 in %u), %" PRIu64
                        " mismatched\n",
                        verified, o.verify_every, mismatched);
        }
    }
    print_result(o, j, ok, stop_reason, end.ns - start.ns);
    return ok ? kExitOk : kExitFailure;
}

// soak: churn (sessions that connect, talk, and disconnect or vanish) until --duration.
int run_soak(Session& ss) {
    const Options& o = ss.o;
    engine::ClientPoolConfig pc = ss.pool_config();
    pc.reconnect = true;
    pc.reconnect_delay_ns = 100 * kMillisecond;
    pc.vanish_every = o.vanish_every;
    pc.vanish_wait_ns = o.timeout > 0 ? uint64_t(o.timeout) * kSecond + kSecond : 0;
    engine::ClientPool pool(pc, ss.port, 0, ss.mbufs, ss.aead);
    const Now start = pool.now();
    pool.start(start);
    Progress progress(o, start.ns);
    const uint64_t deadline = start.ns + static_cast<uint64_t>(o.duration * 1e9);
    const std::string stop_reason = drive(pool, deadline, [&](const Now& now) {
        if (!progress.due(now.ns)) return;
        const engine::ClientPoolStats& s = pool.stats();
        progress.pool_line(now.ns, pool, "  sessions " + std::to_string(s.connected) + " vanished " +
                                             std::to_string(s.vanished));
    });
    const Now end = pool.now();
    const engine::ClientPoolStats& s = pool.stats();
    uint32_t failed = 0, ended_otherwise = 0;
    for (uint32_t c : s.connect_failed) failed += c;
    for (unsigned k = 0; k < s.ended.size(); ++k)
        if (k != static_cast<unsigned>(client::Outcome::disconnected)) ended_otherwise += s.ended[k];
    double expected_loss = 0;
    const bool loss_ok = loss_explained(o.impair, s, expected_loss);
    const bool ok = stop_reason == "--duration reached" && pool.done() && s.clients_served == s.clients &&
                    failed == 0 && ended_otherwise == 0 && s.payloads_mismatched == 0 && s.payloads_duplicated == 0 &&
                    loss_ok;
    const drivers::PortStats port = ss.port.total_stats();
    nlohmann::json j = pool_json(o, s, port);
    j["soak"] = {{"sessions", s.started},
                 {"connected", s.connected},
                 {"vanished", s.vanished},
                 {"disconnected", s.ended[static_cast<unsigned>(client::Outcome::disconnected)]},
                 {"ended_otherwise", ended_otherwise},
                 {"clients_served", s.clients_served},
                 {"expected_loss", expected_loss},
                 {"loss_explained", loss_ok}};
    if (auto* imp = dynamic_cast<engine::ImpairedPort*>(&ss.port)) j["impairment"] = impairment_json(*imp);
    if (!o.json || !o.json_file.empty()) {
        print_pool_text(o, s, port);
        std::printf("soak:       %u sessions connected (%u vanished, %u disconnected, %u ended otherwise), "
                    "%u of %u clients served\n",
                    s.connected, s.vanished, s.ended[static_cast<unsigned>(client::Outcome::disconnected)],
                    ended_otherwise, s.clients_served, s.clients);
        if (auto* imp = dynamic_cast<engine::ImpairedPort*>(&ss.port)) {
            const auto& t = imp->tx_stats();
            const auto& r = imp->rx_stats();
            std::printf("impaired:   %s; out %" PRIu64 " lost %" PRIu64 " dup %" PRIu64 " reordered %" PRIu64
                        "; in %" PRIu64 " lost %" PRIu64 " dup %" PRIu64 " reordered %" PRIu64 "\n",
                        imp->config().to_string().c_str(), t.seen, t.lost, t.duplicated, t.reordered, r.seen, r.lost,
                        r.duplicated, r.reordered);
        }
        std::printf("echo loss:  %.2f %% (%.2f %% expected from the impairment: %s)\n",
                    s.payloads_sent ? 100.0 * static_cast<double>(s.lost()) / static_cast<double>(s.payloads_sent) : 0.0,
                    100 * expected_loss, loss_ok ? "explained" : "NOT explained");
    }
    print_result(o, j, ok, stop_reason == "--duration reached" ? "" : stop_reason, end.ns - start.ns);
    return ok ? kExitOk : kExitFailure;
}

// connect-storm: rounds of --clients connecting at once and disconnecting at once, until
// --duration; each round has fresh tokens and client ids.
int run_storm(Session& ss) {
    const Options& o = ss.o;
    const engine::TscClock clock;
    const Now start = clock.now();
    const uint64_t deadline = start.ns + static_cast<uint64_t>(o.duration * 1e9);
    Progress progress(o, start.ns);
    std::vector<uint64_t> setup;
    engine::ClientPoolStats total;
    uint64_t connect_ns = 0;  // time spent in rounds
    uint32_t rounds = 0;
    std::string stop_reason;
    bool kept = true;
    while (!g_signals.load(std::memory_order_relaxed)) {
        engine::ClientPoolConfig pc = ss.pool_config();
        pc.payloads = 0;
        engine::ClientPool pool(pc, ss.port, 0, ss.mbufs, ss.aead);
        const Now t0 = pool.now();
        pool.start(t0);
        uint64_t all_connected_ns = 0;
        stop_reason = drive(pool, t0.ns + 30 * kSecond, [&](const Now& now) {
            if (all_connected_ns) return;
            const engine::ClientPoolStats& s = pool.stats();
            uint32_t settled = s.connected;  // attempts that ended one way or the other
            for (uint32_t f : s.connect_failed) settled += f;
            if (settled >= o.clients) all_connected_ns = now.ns;
        }, true);
        const engine::ClientPoolStats& s = pool.stats();
        connect_ns += (all_connected_ns ? all_connected_ns : pool.now().ns) - t0.ns;
        setup.insert(setup.end(), s.handshake_ns.begin(), s.handshake_ns.end());
        total.clients += s.clients;
        total.connected += s.connected;
        total.finished += s.finished;
        for (unsigned k = 0; k < s.ended.size(); ++k) {
            total.ended[k] += s.ended[k];
            total.connect_failed[k] += s.connect_failed[k];
        }
        kept = kept && s.all_good(0);
        ++rounds;
        ss.id_offset += o.clients;
        const uint64_t now_ns = clock.now().ns;
        if (progress.due(now_ns)) {
            char buf[160];
            std::snprintf(buf, sizeof buf, "rounds %u  handshakes %u  %.0f handshakes/s", rounds, total.connected,
                          total.connected * 1e9 / static_cast<double>(std::max<uint64_t>(connect_ns, 1)));
            progress.line(now_ns, buf);
        }
        if (!stop_reason.empty() || now_ns >= deadline) break;
    }
    const Now end = clock.now();
    total.handshake_ns = std::move(setup);
    const double rate = total.connected * 1e9 / static_cast<double>(std::max<uint64_t>(connect_ns, 1));
    const bool ok = kept && total.connected == total.clients && stop_reason.empty() &&
                    !g_signals.load(std::memory_order_relaxed);
    nlohmann::json j = pool_json(o, total, ss.port.total_stats());
    j["storm"] = {{"rounds", rounds},
                  {"clients_per_round", o.clients},
                  {"handshakes", total.connected},
                  {"handshakes_per_s", rate},
                  {"setup_ns", {{"p50", total.handshake_percentile(50)}, {"p99", total.handshake_percentile(99)}}}};
    if (!o.json || !o.json_file.empty()) {
        print_pool_text(o, total, ss.port.total_stats());
        std::printf("storm:      %u rounds of %u clients, %u handshakes, %.0f handshakes/s (connect phases only)\n",
                    rounds, o.clients, total.connected, rate);
    }
    print_result(o, j, ok, stop_reason, end.ns - start.ns);
    return ok ? kExitOk : kExitFailure;
}

int run(int argc, char** argv) {
    const std::span<char* const> all(argv + 1, argc > 1 ? static_cast<size_t>(argc - 1) : 0);
    // EAL args before "--", ours after; without "--" everything is ours.
    const auto dashes = std::find_if(all.begin(), all.end(), [](const char* a) { return std::string_view(a) == "--"; });
    std::span<char* const> eal_args, tool_args = all;
    if (dashes != all.end()) {
        eal_args = all.first(static_cast<size_t>(dashes - all.begin()));
        tool_args = all.subspan(eal_args.size() + 1);
    }
    // One client by hand, on the game client library: no DPDK at all.
    if (std::any_of(all.begin(), all.end(), [](const char* a) { return std::string_view(a) == "--interactive"; })) {
        if (!eal_args.empty()) usage_error("--interactive: runs on kernel UDP without DPDK, takes no EAL arguments");
        return tools::run_interactive(std::vector<std::string>(tool_args.begin(), tool_args.end()));
    }
    for (const char* a : tool_args) {
        const std::string_view s = a;
        if (s == "-h" || s == "--help") {
            std::fputs(kHelp, stdout);
            return std::fflush(stdout) == 0 ? kExitOk : kExitFailure;
        }
        if (s == "--version") {
            std::printf("%s %s\n", kProg, POMELO_VERSION);
            return kExitOk;
        }
    }
    const Options o = parse_options(tool_args);
    if (!crypto::init()) runtime_error("cannot initialise libsodium (no entropy source?)");
    const crypto::Key key = load_key(o.key_file);
    if (!o.ethdev) raise_fd_limit(o.endpoints());

    std::vector<std::string> eal = {argv[0]};
    if (eal_args.empty()) {
        for (const char* a : {"--no-huge", "--no-pci", "-m", "256", "--file-prefix"}) eal.emplace_back(a);
        eal.push_back("pomelo-client-" + std::to_string(::getpid()));
        eal.emplace_back("--log-level");
        eal.emplace_back("error");
    } else {
        for (const char* a : eal_args) eal.emplace_back(a);
    }
    // EAL pins the main thread to its first lcore (CPU 0 unless told otherwise), where a
    // server started with default EAL args polls too: the two would share one CPU and every
    // hop would wait for a time slice. With the default args we keep the affinity we had.
    cpu_set_t affinity;
    CPU_ZERO(&affinity);
    const bool restore_affinity = eal_args.empty() && ::sched_getaffinity(0, sizeof affinity, &affinity) == 0;
    // A stop request from here on is graceful (clients disconnect), and every way out runs
    // the EAL guard below, which removes EAL's runtime directory.
    struct sigaction sa{};
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    ::sigaction(SIGINT, &sa, nullptr);
    ::sigaction(SIGTERM, &sa, nullptr);
    ::sigaction(SIGHUP, &sa, nullptr);

    std::string error;
    if (drivers::eal_init(eal, error) < 0) runtime_error(error);
    if (restore_affinity) (void)::sched_setaffinity(0, sizeof affinity, &affinity);
    struct EalGuard {
        ~EalGuard() { drivers::eal_cleanup(); }  // also removes EAL's runtime directory
    } eal_guard;

    // ethdev: the receive descriptors hold mbufs of their own.
    const uint32_t pool_size = o.ethdev ? (o.mode == Mode::blast ? 65535 : 16383) : 8191;
    rte_mempool* mbufs = drivers::make_mbuf_pool("pomelo-client", pool_size, error);
    if (!mbufs) runtime_error(error);

    // Destroyed in reverse order: the pool (which flushes what it queued), then the port
    // (an ethdev port is stopped, then closed: a memif client leaves its server cleanly), then
    // EAL.
    std::unique_ptr<drivers::Port> port = o.ethdev ? open_ethdev(o, mbufs) : open_sockets(o, mbufs);

    // The impairment stage sits between the clients and the port (destroyed first: it sends
    // what it still holds).
    std::unique_ptr<engine::ImpairedPort> impaired;
    if (o.impair.any()) {
        engine::ImpairmentConfig ic = o.impair;
        ic.capacity = pool_size / 4;  // each way: half the pool at most held back
        impaired = std::make_unique<engine::ImpairedPort>(*port, ic);
    }
    auto aead = crypto::make_best_burst();
    Session session{o, key, impaired ? *impaired : *port, mbufs, *aead};
    switch (o.mode) {
        case Mode::echo:
        case Mode::flood: return run_echo(session);
        case Mode::blast: return run_blast(session);
        case Mode::storm: return run_storm(session);
        case Mode::soak: return run_soak(session);
    }
    return kExitFailure;
}

}  // namespace

int main(int argc, char** argv) {
    return pomelo::cli::run_main(kProg, [&] { return run(argc, argv); });
}
