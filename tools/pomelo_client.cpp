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
#include <csignal>
#include <cstdio>
#include <cstring>
#include <exception>
#include <filesystem>
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
#include "engine/client_pool.hpp"
#include "tools/client_interactive.hpp"
#include "tools/common/cli.hpp"
#include "protocol/crypto/aead.hpp"
#include "protocol/crypto/burst.hpp"
#include "protocol/crypto/key.hpp"
#include "protocol/crypto/suite.hpp"
#include "protocol/wire/address.hpp"
#include "protocol/wire/connect_token.hpp"

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
                             router's): the client does not resolve addresses. Required.
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
      --json                 print the summary as one JSON object
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
      -- --driver ethdev --gateway-mac 02:00:00:00:00:01 --server 198.18.0.1:40000 \
      --bind 198.18.1.1 --key key --protocol-id 0x1 --clients 100 --payloads 100

  memif devargs (DPDK 22.11): role=server|client (default client); socket=NAME, the control
  socket (default /tmp/memif.sock), an abstract socket name unless socket-abstract=no (no file
  then); id=N to tell apart several interfaces on one socket (default 0); mac=MAC, the
  port's MAC (give the server's to the client as --gateway-mac); rsize=LOG2 ring size, 1..14
  (default 10: 1024 slots each way; the client's value is the one used); bsize=buffer bytes
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

exit status: 0 every client connected, every echo came back byte-identical and every
disconnect completed; 1 otherwise; 2 bad arguments.
)";

// ---------------------------------------------------------------------------------------------
// Arguments

struct Options {
    bool ethdev = false;
    std::string device;
    std::optional<rte_ether_addr> gateway;
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
    static constexpr std::array<std::string_view, 17> kValued = {
        "--server",   "--key",      "--protocol-id", "--clients", "--bind",        "--base-port",
        "--payloads", "--size",     "--rate",        "--timeout", "--duration",    "--suite",
        "--client-id-base", "--driver", "--device", "--gateway-mac", "--in-flight"};
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
        if (!valued && name != "--json") usage_error("unknown option " + quote(name) + " (try '" + kProg + " --help')");
        if (std::find(seen.begin(), seen.end(), name) != seen.end()) usage_error(std::string(name) + ": given more than once");
        seen.push_back(name);
        if (name == "--json") {
            if (value) usage_error("--json: takes no value");
            o.json = true;
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
            o.clients = static_cast<uint32_t>(number(name, v, 1, 60000));
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
        if (!o.gateway)
            usage_error("--gateway-mac: required with --driver ethdev (the client does not resolve addresses: "
                        "give the server's MAC, e.g. the mac= of its memif)");
        if (o.base_port == 0) usage_error("--base-port: 0 (ephemeral ports) is for --driver socket only");
    } else {
        for (const char* opt : {"--device", "--gateway-mac"})
            if (std::find(seen.begin(), seen.end(), opt) != seen.end())
                usage_error(std::string(opt) + ": only with --driver ethdev");
        if (o.base_port != 0 && o.base_port + o.clients - 1 > 65535)
            usage_error("--base-port: " + std::to_string(o.base_port) + " + " + std::to_string(o.clients) +
                        " clients runs past port 65535");
    }
    if (!o.bind) o.bind = parse_ip(o.server.type == wire::AddressType::ipv6 ? "::1" : "127.0.0.1");
    if (o.bind->type != o.server.type)
        usage_error("--bind: " + quote(o.bind_text) + " is not of the server's family (" +
                    (o.server.type == wire::AddressType::ipv6 ? "IPv6" : "IPv4") + ")");
    if (o.ethdev && !ip_plus(*o.bind, (o.clients - 1) / ports_per_ip(o.base_port)))
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

void print_summary(const Options& o, const engine::ClientPoolStats& s, const drivers::PortStats& port, bool ok,
                   const std::string& stop_reason, uint64_t elapsed_ns) {
    uint32_t failed = 0;
    for (uint32_t c : s.connect_failed) failed += c;
    const double rate = s.echo_rate();
    if (o.json) {
        nlohmann::json j;
        j["server"] = o.server.to_string();
        j["suite"] = crypto::to_string(o.suite);
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
        j["echo_rate_pps"] = rate;
        j["echo_rtt_ns"] = {{"mean", s.echo_rtt.mean()},
                            {"p50", s.echo_rtt.quantile(0.5)},
                            {"p99", s.echo_rtt.quantile(0.99)},
                            {"max", s.echo_rtt.max()}};
        j["ping_rtt_mean_ns"] = s.ping_rtt_mean_ns();
        j["port"] = {{"driver", o.ethdev ? "ethdev" : "socket"},
                     {"rx_datagrams", port.rx_datagrams},
                     {"rx_truncated", port.rx_truncated},
                     {"rx_not_ours", port.rx_not_ours},
                     {"rx_malformed", port.rx_malformed},
                     {"tx_datagrams", port.tx_datagrams},
                     {"tx_dropped", port.tx_dropped}};
        j["elapsed_ns"] = elapsed_ns;
        j["stopped"] = stop_reason.empty() ? nlohmann::json(nullptr) : nlohmann::json(stop_reason);
        j["ok"] = ok;
        std::printf("%s\n", j.dump().c_str());
        std::fflush(stdout);
        return;
    }
    std::printf("%s: %u clients -> %s (%s, %u payloads of %u bytes each)\n", kProg, s.clients,
                o.server.to_string().c_str(), crypto::to_string(o.suite), o.payloads, o.size);
    std::printf("clients:    %u connected, %u failed to connect (%s)\n", s.connected, failed,
                outcome_list(s.connect_failed).c_str());
    std::printf("ended:      %s", outcome_list(s.ended).c_str());
    if (s.aborted) std::printf(", aborted while connecting %u", s.aborted);
    if (s.not_started) std::printf(", never started %u", s.not_started);
    std::printf("\n");
    std::printf("handshake:  p50 %s, p99 %s\n", duration_text(s.handshake_percentile(50)).c_str(),
                duration_text(s.handshake_percentile(99)).c_str());
    std::printf("payloads:   %" PRIu64 " sent, %" PRIu64 " echoed, %" PRIu64 " mismatched, %" PRIu64 " lost\n",
                s.payloads_sent, s.payloads_echoed, s.payloads_mismatched, s.lost());
    std::printf("echo rate:  %.0f payloads/s (%.3f Mpps)\n", rate, rate / 1e6);
    std::printf("RTT:        echo mean %s (p50 %s, p99 %s), ping mean %s\n", duration_text(s.echo_rtt.mean()).c_str(),
                duration_text(s.echo_rtt.quantile(0.5)).c_str(), duration_text(s.echo_rtt.quantile(0.99)).c_str(),
                duration_text(s.ping_rtt_mean_ns()).c_str());
    if (port.tx_dropped || port.rx_truncated || port.rx_malformed)
        std::printf("port:       %" PRIu64 " sends dropped, %" PRIu64 " datagrams truncated, %" PRIu64
                    " malformed\n",
                    port.tx_dropped, port.rx_truncated, port.rx_malformed);
    std::printf("result:     %s after %s%s\n", ok ? "OK" : "FAILED", duration_text(elapsed_ns).c_str(),
                stop_reason.empty() ? "" : (" (" + stop_reason + ")").c_str());
    std::fflush(stdout);
}

// ---------------------------------------------------------------------------------------------
// Ports

std::unique_ptr<drivers::Port> open_sockets(const Options& o, rte_mempool* mbufs) {
    drivers::SocketConfig sc;
    sc.pool = mbufs;
    sc.local.reserve(o.clients);
    for (uint32_t i = 0; i < o.clients; ++i) {
        wire::Address a = *o.bind;
        a.port = o.base_port ? static_cast<uint16_t>(o.base_port + i) : 0;
        sc.local.push_back(a);
    }
    // 64 MiB of socket buffer in all, 256 KiB..4 MiB per socket.
    sc.rcvbuf = sc.sndbuf = static_cast<int>(std::clamp<uint64_t>((64u << 20) / o.clients, 256u << 10, 4u << 20));
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
    c.local.reserve(o.clients);
    for (uint32_t i = 0; i < o.clients; ++i) {
        wire::Address a = *ip_plus(*o.bind, i / per_ip);  // checked by parse_options
        a.port = static_cast<uint16_t>(o.base_port + i % per_ip);
        c.local.push_back(a);
    }
    c.pool = mbufs;
    c.gateway = o.gateway;
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
    if (!o.ethdev) raise_fd_limit(o.clients);

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
    rte_mempool* mbufs = drivers::make_mbuf_pool("pomelo-client", o.ethdev ? 16383 : 8191, error);
    if (!mbufs) runtime_error(error);

    // Destroyed in reverse order: the pool (which flushes what it queued), then the port
    // (an ethdev port is stopped, then closed: a memif client leaves its server cleanly), then
    // EAL.
    std::unique_ptr<drivers::Port> port = o.ethdev ? open_ethdev(o, mbufs) : open_sockets(o, mbufs);

    auto aead = crypto::make_best_burst();
    engine::ClientPoolConfig pc;
    pc.clients = o.clients;
    pc.payloads = o.payloads;
    pc.payload_size = o.size;
    pc.rate_pps = o.rate;
    pc.window = 32;
    pc.max_in_flight = o.in_flight.value_or(o.ethdev ? kEthdevInFlight : kSocketInFlight);
    pc.token = [&](uint32_t index, uint64_t unix_ms, std::span<uint8_t, wire::kConnectTokenSize> out) {
        wire::TokenSpec spec;
        spec.suite = o.suite;
        spec.protocol_id = o.protocol_id;
        spec.create_ms = unix_ms;
        spec.expire_ms = unix_ms + 300'000;
        crypto::random_bytes(spec.nonce.data(), spec.nonce.size());
        spec.private_part.client_id = o.client_id_base + index;
        spec.private_part.timeout_seconds = o.timeout;
        spec.private_part.addresses.push(o.server);
        spec.private_part.client_to_server_key = crypto::Key::random();
        spec.private_part.server_to_client_key = crypto::Key::random();
        return wire::mint_connect_token(spec, key, out) == wire::WireError::ok;
    };
    engine::ClientPool pool(pc, *port, 0, mbufs, *aead);

    const auto duration_ns = static_cast<uint64_t>(o.duration * 1e9);
    const Now start = pool.now();
    pool.start(start);
    std::string stop_reason;
    uint64_t stop_ns = 0;
    Now now = start;
    while (!pool.done()) {
        now = pool.now();
        pool.poll(now);
        const int signals = g_signals.load(std::memory_order_relaxed);
        if (!pool.stopping()) {
            if (signals) stop_reason = "interrupted";
            else if (now.ns - start.ns >= duration_ns) stop_reason = "--duration reached";
            if (!stop_reason.empty()) {
                pool.stop(now);
                stop_ns = now.ns;
            }
        } else if (signals > 1 || now.ns - stop_ns > kStopGraceNs) {
            stop_reason += signals > 1 ? ", interrupted again" : ", disconnects unfinished";
            break;
        }
    }
    const engine::ClientPoolStats& s = pool.stats();
    const bool ok = pool.done() && s.all_good(o.payloads);
    print_summary(o, s, port->total_stats(), ok, stop_reason, now.ns - start.ns);
    return ok ? kExitOk : kExitFailure;
}

}  // namespace

int main(int argc, char** argv) {
    return pomelo::cli::run_main(kProg, [&] { return run(argc, argv); });
}
