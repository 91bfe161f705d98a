// The real daemons end to end: pomelo-server and pomelo-client as separate processes, talking
// over kernel UDP sockets (IPv4, IPv6), net_memif, and net_af_packet on a veth pair in network
// namespaces this test creates; statistics read back through DPDK telemetry with pomelo-stats.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <regex>
#include <set>

#include "protocol/crypto/aead.hpp"
#include "protocol/wire/connect_token.hpp"
#include "protocol/wire/request.hpp"
#include "tests/integration/harness.hpp"
#include "tools/common/cli.hpp"

namespace pomelo::test {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
namespace fs = std::filesystem;

// Connect, echo 10,000 payloads byte-identical, disconnect; then the server's telemetry must
// agree with what the client saw, and SIGTERM must stop it cleanly.
void echo_round(const std::string& bind) {
    Scratch s;
    const std::string srv = prefix("srv");
    Process server(server_args(srv, {"-l", "0-1"},
                               {"--driver", "socket", "--bind", bind, "--protocol-id", "0x7070", "--key", s.key}),
                   s.log("server"));
    ASSERT_TRUE(server.wait_output("pomelo-server: serving", 20s)) << server.out() << server.err();
    Process client({kClient, "--", "--server", bind, "--key", s.key, "--protocol-id", "0x7070", "--clients", "10",
                    "--payloads", "1000", "--size", "100", "--json"},
                   s.log("client"));
    ASSERT_TRUE(client.wait_for(60s));
    EXPECT_EQ(client.exit_code(), 0) << client.out() << client.err();
    json r = client_json(client);
    EXPECT_EQ(r["clients"]["connected"], 10);
    EXPECT_EQ(r["payloads"]["echoed"], 10000);
    EXPECT_EQ(r["payloads"]["mismatched"], 0);
    EXPECT_EQ(r["clients"]["ended_by_outcome"]["disconnected"], 10);

    // The server counted the same traffic (its snapshot is at most a second old).
    ASSERT_TRUE(wait_summary(srv, [](const json& j) { return j["peers_connected"] == 0 && j["connections_accepted"] == 10; },
                             10s));
    auto packets = stats(srv, "packets");
    ASSERT_TRUE(packets);
    EXPECT_EQ((*packets)["rx_payload"], 10000);
    EXPECT_EQ((*packets)["tx_payload"], 10000);
    EXPECT_EQ((*packets)["rx_request"].get<int>() >= 10, true);
    auto drops = stats(srv, "drops");
    ASSERT_TRUE(drops);
    EXPECT_EQ((*drops)["auth_failed"], 0);
    EXPECT_EQ((*drops)["replayed"], 0);

    server.signal(SIGTERM);
    ASSERT_TRUE(server.wait_for(15s));
    EXPECT_EQ(server.exit_code(), 0) << server.err();
    EXPECT_NE(server.out().find("pomelo-server: stopped; 10 connections served"), std::string::npos) << server.out();
}

TEST(EndToEnd, SocketDriverIpv4EchoesTenThousandPayloads) { echo_round("127.0.0.1:" + std::to_string(test_port(0))); }

TEST(EndToEnd, SocketDriverIpv6EchoesTenThousandPayloads) { echo_round("[::1]:" + std::to_string(test_port(1))); }

TEST(EndToEnd, KilledClientIsTimedOutByTheServer) {
    Scratch s;
    const std::string srv = prefix("srv");
    const std::string bind = "127.0.0.1:" + std::to_string(test_port(2));
    Process server(server_args(srv, {"-l", "0-1"},
                               {"--driver", "socket", "--bind", bind, "--protocol-id", "9", "--key", s.key}),
                   s.log("server"));
    ASSERT_TRUE(server.wait_output("pomelo-server: serving", 20s)) << server.err();
    Process client({kClient, "--", "--server", bind, "--key", s.key, "--protocol-id", "9", "--clients", "5",
                    "--payloads", "100000", "--rate", "5", "--timeout", "2", "--duration", "60"},
                   s.log("client"));
    ASSERT_TRUE(wait_summary(srv, [](const json& j) { return j["peers_connected"] == 5; }, 20s));
    client.signal(SIGKILL);  // no DISCONNECT: only the token timeout (2 s) can end these
    ASSERT_TRUE(client.wait_for(5s));
    const auto killed = std::chrono::steady_clock::now();
    ASSERT_TRUE(wait_summary(srv, [](const json& j) { return j["peers_connected"] == 0; }, 10s));
    EXPECT_GE(std::chrono::steady_clock::now() - killed, 1s);
    server.signal(SIGINT);
    ASSERT_TRUE(server.wait_for(15s));
    EXPECT_EQ(server.exit_code(), 0);
}

// A graceful stop: every connected client is told (DISCONNECT), whichever signal asked.
void stopped_server_disconnects_its_clients(int sig, int port_k) {
    Scratch s;
    const std::string srv = prefix("srv");
    const std::string bind = "127.0.0.1:" + std::to_string(test_port(port_k));
    Process server(server_args(srv, {"-l", "0-1"},
                               {"--driver", "socket", "--bind", bind, "--protocol-id", "9", "--key", s.key}),
                   s.log("server"));
    ASSERT_TRUE(server.wait_output("pomelo-server: serving", 20s)) << server.err();
    Process client({kClient, "--", "--server", bind, "--key", s.key, "--protocol-id", "9", "--clients", "5",
                    "--payloads", "100000", "--rate", "5", "--duration", "60", "--json"},
                   s.log("client"));
    ASSERT_TRUE(wait_summary(srv, [](const json& j) { return j["peers_connected"] == 5; }, 20s));
    server.signal(sig);
    ASSERT_TRUE(server.wait_for(15s));
    EXPECT_EQ(server.exit_code(), 0) << server.err();
    EXPECT_NE(server.out().find("pomelo-server: stopped;"), std::string::npos) << server.out();
    ASSERT_TRUE(client.wait_for(20s));
    json r = client_json(client);
    EXPECT_EQ(r["clients"]["ended_by_outcome"]["disconnected_by_server"], 5) << client.out();
}

TEST(EndToEnd, TerminatedServerDisconnectsItsClients) { stopped_server_disconnects_its_clients(SIGTERM, 3); }

// A closed terminal (SIGHUP) stops the server as gracefully as SIGTERM.
TEST(EndToEnd, HungUpServerDisconnectsItsClients) { stopped_server_disconnects_its_clients(SIGHUP, 5); }

TEST(EndToEnd, TwoWorkersShareThePeersAndTelemetryAgrees) {
    Scratch s;
    const std::string srv = prefix("srv");
    const std::string bind = "127.0.0.1:" + std::to_string(test_port(4));
    // Three lcores on two CPUs: the control thread on CPU 0, both workers on CPU 1.
    Process server(server_args(srv, {"--lcores", "0@0,1@1,2@1"},
                               {"--driver", "socket", "--bind", bind, "--protocol-id", "9", "--key", s.key,
                                "--workers", "2"}),
                   s.log("server"));
    ASSERT_TRUE(server.wait_output("with 2 worker(s)", 20s)) << server.out() << server.err();
    Process client({kClient, "--", "--server", bind, "--key", s.key, "--protocol-id", "9", "--clients", "40",
                    "--payloads", "30", "--rate", "10", "--json"},
                   s.log("client"));
    // While they are connected, both shards hold some of them.
    json workers;
    const bool spread = [&] {
        for (int i = 0; i < 100; ++i) {
            auto w = stats(srv, "workers");
            if (w && w->contains("worker0") && w->contains("worker1") &&
                (*w)["worker0"]["peers"].get<int>() + (*w)["worker1"]["peers"].get<int>() == 40) {
                workers = *w;
                return true;
            }
            std::this_thread::sleep_for(100ms);
        }
        return false;
    }();
    ASSERT_TRUE(spread) << server.out();
    EXPECT_GT(workers["worker0"]["peers"].get<int>(), 0);
    EXPECT_GT(workers["worker1"]["peers"].get<int>(), 0);
    ASSERT_TRUE(client.wait_for(60s));
    EXPECT_EQ(client.exit_code(), 0) << client.out();
    json r = client_json(client);
    ASSERT_TRUE(wait_summary(srv, [](const json& j) { return j["connections_accepted"] == 40 && j["peers_connected"] == 0; }, 10s));
    auto packets = stats(srv, "packets");
    ASSERT_TRUE(packets);
    EXPECT_EQ((*packets)["rx_payload"], r["payloads"]["sent"]);
    EXPECT_EQ((*packets)["tx_payload"], r["payloads"]["echoed"]);
    EXPECT_EQ(r["payloads"]["echoed"], 1200);
    server.signal(SIGTERM);
    ASSERT_TRUE(server.wait_for(15s));
}

// The generator and the server as two DPDK processes joined by net_memif (shared memory).
TEST(EndToEnd, MemifEchoesTenThousandPayloads) {
    Scratch s;
    const std::string srv = prefix("srv"), cli = prefix("cli");
    const std::string sock = (s.dir / "memif.sock").string();
    Process server(server_args(srv, {"-l", "0-1", "--vdev", "net_memif0,role=server,socket=" + sock + ",mac=02:00:00:00:00:01"},
                               {"--driver", "ethdev", "--bind", "198.18.0.1:40000", "--protocol-id", "0x7070", "--key",
                                s.key}),
                   s.log("server"));
    ASSERT_TRUE(server.wait_output("pomelo-server: serving", 20s)) << server.out() << server.err();
    Process client({kClient, "--no-huge", "--no-pci", "-m", "256", "--file-prefix", cli, "--log-level", "error", "-l", "0",
                    "--vdev", "net_memif0,role=client,socket=" + sock + ",mac=02:00:00:00:00:02", "--", "--driver",
                    "ethdev", "--gateway-mac", "02:00:00:00:00:01", "--server", "198.18.0.1:40000", "--bind",
                    "198.18.1.1", "--key", s.key, "--protocol-id", "0x7070", "--clients", "10", "--payloads", "1000",
                    "--size", "200", "--json"},
                   s.log("client"));
    ASSERT_TRUE(client.wait_for(60s));
    EXPECT_EQ(client.exit_code(), 0) << client.out() << client.err();
    json r = client_json(client);
    EXPECT_EQ(r["payloads"]["echoed"], 10000);
    EXPECT_EQ(r["payloads"]["mismatched"], 0);
    EXPECT_EQ(r["clients"]["ended_by_outcome"]["disconnected"], 10);
    ASSERT_TRUE(wait_summary(srv, [](const json& j) { return j["connections_accepted"] == 10; }, 10s));
    auto packets = stats(srv, "packets");
    ASSERT_TRUE(packets);
    EXPECT_EQ((*packets)["rx_payload"], 10000);
    EXPECT_EQ((*packets)["tx_payload"], 10000);
    server.signal(SIGTERM);
    ASSERT_TRUE(server.wait_for(15s));
    EXPECT_EQ(server.exit_code(), 0) << server.err();
}

// Runs a shell command; true on exit status 0.
bool sh(const std::string& command) { return std::system((command + " >/dev/null 2>&1").c_str()) == 0; }

// Two network namespaces joined by a veth pair, deleted on destruction.
struct VethPair {
    std::string a, b, ifa, ifb;
    bool ok = false;
    VethPair() {
        const std::string id = std::to_string(::getpid());
        a = "pomelo-e2e-" + id + "-a";
        b = "pomelo-e2e-" + id + "-b";
        ifa = "pe" + id + "a";
        ifb = "pe" + id + "b";
        ok = sh("ip netns add " + a) && sh("ip netns add " + b) &&
             sh("ip link add " + ifa + " type veth peer name " + ifb) && sh("ip link set " + ifa + " netns " + a) &&
             sh("ip link set " + ifb + " netns " + b) && sh("ip -n " + a + " link set lo up") &&
             sh("ip -n " + a + " link set " + ifa + " up") && sh("ip -n " + b + " link set lo up") &&
             sh("ip -n " + b + " addr add 198.18.0.2/30 dev " + ifb) && sh("ip -n " + b + " link set " + ifb + " up") &&
             // The kernel leaves UDP checksums to a veth offload that af_packet never completes.
             sh("ip netns exec " + b + " ethtool -K " + ifb + " tx off");
    }
    ~VethPair() {
        sh("ip netns del " + a);
        sh("ip netns del " + b);
    }
};

TEST(EndToEnd, AfPacketOnVethBetweenNamespaces) {
    VethPair net;
    if (!net.ok) GTEST_SKIP() << "cannot create network namespaces here (needs root and iproute2)";
    Scratch s;
    const std::string srv = prefix("srv");
    std::vector<std::string> server_cmd = {"ip", "netns", "exec", net.a};
    for (auto& a : server_args(srv, {"-l", "0-1", "--vdev", "net_af_packet0,iface=" + net.ifa},
                               {"--bind", "198.18.0.1:40000", "--protocol-id", "0x7070", "--key", s.key}))
        server_cmd.push_back(a);
    server_cmd[0] = "/usr/sbin/ip";
    Process server(server_cmd, s.log("server"));
    ASSERT_TRUE(server.wait_output("pomelo-server: serving", 20s)) << server.out() << server.err();
    Process client({"/usr/sbin/ip", "netns", "exec", net.b, kClient, "--", "--server", "198.18.0.1:40000", "--bind",
                    "198.18.0.2", "--key", s.key, "--protocol-id", "0x7070", "--clients", "10", "--payloads", "1000",
                    "--size", "300", "--json"},
                   s.log("client"));
    ASSERT_TRUE(client.wait_for(60s));
    EXPECT_EQ(client.exit_code(), 0) << client.out() << client.err();
    json r = client_json(client);
    EXPECT_EQ(r["payloads"]["echoed"], 10000);
    EXPECT_EQ(r["payloads"]["mismatched"], 0);
    ASSERT_TRUE(wait_summary(srv, [](const json& j) { return j["connections_accepted"] == 10; }, 10s));
    auto packets = stats(srv, "packets");
    ASSERT_TRUE(packets);
    EXPECT_GE((*packets)["port_arp_replies"].get<int>(), 1);  // the kernel found us by ARP
    EXPECT_EQ((*packets)["port_rx_malformed"], 0);
    server.signal(SIGTERM);
    ASSERT_TRUE(server.wait_for(15s));
    EXPECT_EQ(server.exit_code(), 0) << server.err();
}

TEST(EndToEnd, BadConfigurationIsOneLineAndNonZero) {
    Scratch s;
    struct Case {
        std::vector<std::string> args;
        std::string needle;
    };
    const std::vector<Case> cases = {
        {{"--bind", "1.2.3:80", "--protocol-id", "1", "--key", s.key}, "--bind"},
        {{"--bind", "127.0.0.1:1", "--key", s.key}, "--protocol-id"},
        {{"--bind", "127.0.0.1:1", "--protocol-id", "x", "--key", s.key}, "--protocol-id"},
        {{"--bind", "127.0.0.1:1", "--protocol-id", "1", "--key", "/nonexistent"}, "--key"},
        {{"--bind", "127.0.0.1:1", "--protocol-id", "1", "--key", s.key, "--driver", "carrier-pigeon"}, "--driver"},
        {{"--bind", "127.0.0.1:1", "--protocol-id", "1", "--key", s.key, "--frobnicate"}, "--frobnicate"},
        {{"--bind", "127.0.0.1:1", "--protocol-id", "1", "--key", s.key, "--suites", "rot13"}, "--suites"},
        {{"--bind", "127.0.0.1:1", "--protocol-id", "1", "--key", s.key, "--workers", "0"}, "--workers"},
        // A DPDK port has no kernel to pick a port for it.
        {{"--bind", "198.18.0.1:0", "--protocol-id", "1", "--key", s.key, "--driver", "ethdev"}, "port 0"},
    };
    for (const Case& c : cases) {
        std::vector<std::string> argv = {kServer};
        argv.insert(argv.end(), c.args.begin(), c.args.end());
        Process p(argv, s.log("bad"));
        ASSERT_TRUE(p.wait_for(10s));
        EXPECT_NE(p.exit_code(), 0) << c.needle;
        const std::string err = p.err();
        EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), 1) << err;
        EXPECT_NE(err.find(c.needle), std::string::npos) << err;
    }
    // Too few lcores for the workers asked: refused after EAL starts, still one line.
    Process p(server_args(prefix("srv"), {"-l", "0-1"},
                          {"--driver", "socket", "--bind", "127.0.0.1:1", "--protocol-id", "1", "--key", s.key,
                           "--workers", "4"}),
              s.log("lcores"));
    ASSERT_TRUE(p.wait_for(20s));
    EXPECT_EQ(p.exit_code(), 1);
    EXPECT_NE(p.err().find("--workers 4 needs"), std::string::npos) << p.err();
}

// ---------------------------------------------------------------------------------------------
// EAL's runtime directories (<base>/<file-prefix>, ~3 MB each): none may outlive its process.

std::string dpdk_runtime_base() {
    const char* xdg = std::getenv("XDG_RUNTIME_DIR");
    return ::getuid() == 0 ? "/var/run/dpdk" : std::string(xdg ? xdg : "/tmp") + "/dpdk";
}

std::set<std::string> dpdk_runtime_listing() {
    std::set<std::string> names;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(dpdk_runtime_base(), ec)) names.insert(e.path().filename().string());
    return names;
}

// True if a live primary process holds its config lock (another engineer's process on a shared
// host, say): such an entry is not a leftover.
bool runtime_dir_live(const std::string& name) {
    const int fd = ::open((dpdk_runtime_base() + "/" + name + "/config").c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return false;
    struct flock lock{};
    lock.l_type = F_WRLCK;
    lock.l_whence = SEEK_SET;
    const bool live = ::fcntl(fd, F_GETLK, &lock) == 0 && lock.l_type != F_UNLCK;
    ::close(fd);
    return live;
}

// What is in the listing now and was not in `before`, other than live processes' directories.
std::vector<std::string> leftovers(const std::set<std::string>& before) {
    std::vector<std::string> left;
    for (const std::string& name : dpdk_runtime_listing())
        if (!before.count(name) && !runtime_dir_live(name)) left.push_back(name);
    return left;
}

bool runtime_dir_exists(const std::string& file_prefix) { return fs::exists(dpdk_runtime_base() + "/" + file_prefix); }

std::string joined(const std::vector<std::string>& v) {
    std::string s;
    for (const auto& x : v) s += x + " ";
    return s;
}

size_t lines(const std::string& text) { return static_cast<size_t>(std::count(text.begin(), text.end(), '\n')); }

// A server and a client (default EAL args, so its own prefix), then a graceful stop: both
// runtime directories are gone.
TEST(DpdkRuntime, CleanExitsOfServerAndClientLeaveNothing) {
    const auto before = dpdk_runtime_listing();
    {
        Scratch s;
        const std::string srv = prefix("srv");
        const std::string bind = "127.0.0.1:" + std::to_string(test_port(6));
        Process server(server_args(srv, {"-l", "0-1"},
                                   {"--driver", "socket", "--bind", bind, "--protocol-id", "9", "--key", s.key}),
                       s.log("server"));
        ASSERT_TRUE(server.wait_output("pomelo-server: serving", 20s)) << server.out() << server.err();
        EXPECT_TRUE(runtime_dir_exists(srv));  // the check below would pass vacuously otherwise
        Process client({kClient, "--", "--server", bind, "--key", s.key, "--protocol-id", "9", "--clients", "3",
                        "--payloads", "100", "--json"},
                       s.log("client"));
        ASSERT_TRUE(client.wait_for(60s));
        EXPECT_EQ(client.exit_code(), 0) << client.out() << client.err();
        server.signal(SIGTERM);
        ASSERT_TRUE(server.wait_for(15s));
        EXPECT_EQ(server.exit_code(), 0) << server.err();
        EXPECT_FALSE(runtime_dir_exists(srv));
    }
    EXPECT_EQ(joined(leftovers(before)), "");
}

// A second server with the same --file-prefix: one line naming the cause, a non-zero exit,
// and the first server's directory untouched (it keeps serving telemetry).
TEST(DpdkRuntime, PrefixInUseIsOneLineAndLeavesNothing) {
    const auto before = dpdk_runtime_listing();
    {
        Scratch s;
        const std::string srv = prefix("srv");
        Process first(server_args(srv, {"-l", "0-1"},
                                  {"--driver", "socket", "--bind", "127.0.0.1:0", "--protocol-id", "9", "--key", s.key}),
                      s.log("first"));
        ASSERT_TRUE(first.wait_output("pomelo-server: serving", 20s)) << first.out() << first.err();
        Process second(server_args(srv, {"-l", "0-1"},
                                   {"--driver", "socket", "--bind", "127.0.0.1:0", "--protocol-id", "9", "--key", s.key}),
                       s.log("second"));
        ASSERT_TRUE(second.wait_for(20s));
        EXPECT_EQ(second.exit_code(), 1);
        EXPECT_EQ(lines(second.err()), 1u) << second.err();
        EXPECT_NE(second.err().find("in use"), std::string::npos) << second.err();
        EXPECT_EQ(second.out(), "");
        EXPECT_TRUE(stats(srv, "summary").has_value());  // the first one's telemetry socket is still there
        first.signal(SIGTERM);
        ASSERT_TRUE(first.wait_for(15s));
        EXPECT_EQ(first.exit_code(), 0) << first.err();
    }
    EXPECT_EQ(joined(leftovers(before)), "");
}

// EAL refusing its own arguments, and our configuration refused after EAL started: one line,
// non-zero, nothing left.
TEST(DpdkRuntime, FailedStartsAreOneLineAndLeaveNothing) {
    const auto before = dpdk_runtime_listing();
    {
        Scratch s;
        const std::vector<std::string> ours = {"--driver", "socket", "--bind", "127.0.0.1:0", "--protocol-id", "9",
                                               "--key", s.key};
        struct Case {
            std::vector<std::string> eal, extra;
            int status;
            std::string needle;
        };
        const std::vector<Case> cases = {
            {{"-l", "0-1", "--no-such-eal-option"}, {}, 1, "EAL initialisation failed"},  // EAL refuses
            {{"-l", "0-1"}, {"--workers", "4"}, 1, "--workers 4 needs"},            // ours, after EAL
            {{"-l", "0-1", "--vdev", "net_nonesuch0"}, {}, 1, "EAL initialisation failed"},
        };
        for (size_t i = 0; i < cases.size(); ++i) {
            const Case& c = cases[i];
            const std::string srv = prefix("srv") + "-" + std::to_string(i);
            std::vector<std::string> args = ours;
            args.insert(args.end(), c.extra.begin(), c.extra.end());
            Process p(server_args(srv, c.eal, args), s.log("fail" + std::to_string(i)));
            ASSERT_TRUE(p.wait_for(20s));
            EXPECT_EQ(p.exit_code(), c.status) << i;
            EXPECT_EQ(lines(p.err()), 1u) << i << ": " << p.err();
            EXPECT_NE(p.err().find(c.needle), std::string::npos) << i << ": " << p.err();
            EXPECT_EQ(p.err().find("Success"), std::string::npos) << p.err();
            EXPECT_FALSE(runtime_dir_exists(srv)) << i;
        }
        // The client's EAL failure too (a port that does not exist).
        const std::string cli = prefix("cli");
        Process client({kClient, "--no-huge", "--no-pci", "-m", "256", "--file-prefix", cli, "--log-level", "error",
                        "-l", "0", "--vdev", "net_nonesuch0", "--", "--server", "127.0.0.1:1", "--key", s.key,
                        "--protocol-id", "9"},
                       s.log("client"));
        ASSERT_TRUE(client.wait_for(20s));
        EXPECT_EQ(client.exit_code(), 1);
        EXPECT_EQ(lines(client.err()), 1u) << client.err();
        EXPECT_FALSE(runtime_dir_exists(cli));
    }
    EXPECT_EQ(joined(leftovers(before)), "");
}

// What a SIGKILL leaves (no exit path runs) is swept by the next DPDK start, once its owner is
// provably gone (nobody holds the config lock).
TEST(DpdkRuntime, KilledServersDirectoryIsSweptByTheNextStart) {
    Scratch s;
    const std::string srv = prefix("srv");
    {
        Process server(server_args(srv, {"-l", "0-1"},
                                   {"--driver", "socket", "--bind", "127.0.0.1:0", "--protocol-id", "9", "--key", s.key}),
                       s.log("server"));
        ASSERT_TRUE(server.wait_output("pomelo-server: serving", 20s)) << server.out() << server.err();
        server.signal(SIGKILL);
        ASSERT_TRUE(server.wait_for(15s));
    }
    ASSERT_TRUE(runtime_dir_exists(srv));  // nothing ran: it is still there
    // A start sweeps directories untouched for 2 s (a starting primary locks its config a
    // moment after creating it); bounded by attempts, each a whole process start.
    bool swept = false;
    for (int attempt = 0; attempt < 30 && !swept; ++attempt) {
        Process next(server_args(prefix("next"), {"-l", "0-1"},
                                 {"--driver", "socket", "--bind", "127.0.0.1:0", "--protocol-id", "9", "--key",
                                  s.key, "--workers", "4"}),
                     s.log("next"));
        ASSERT_TRUE(next.wait_for(20s));
        swept = !runtime_dir_exists(srv);
        if (!swept) std::this_thread::sleep_for(500ms);
    }
    EXPECT_TRUE(swept);
    EXPECT_FALSE(runtime_dir_exists(prefix("next")));
}

// ---------------------------------------------------------------------------------------------
// --bind with port 0: the kernel picks the port, the server announces it, and the own-address
// check uses it (a token must list the announced address, not port 0).

// The key file as pomelo-server reads it (tools/common/cli).
crypto::Key read_key(const std::string& path) { return cli::load_key_file("--key", path); }

// A REQUEST (spec §8.1) for a fresh token listing `listed`, sent from a new UDP socket to
// `to`. Returns the socket (the caller reads the reply, if any, and closes it).
int send_request(const wire::Address& listed, const wire::Address& to, const crypto::Key& key, uint64_t protocol_id) {
    wire::TokenSpec spec;
    spec.protocol_id = protocol_id;
    spec.create_ms = static_cast<uint64_t>(
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count());
    spec.expire_ms = spec.create_ms + 60'000;
    crypto::random_bytes(spec.nonce.data(), spec.nonce.size());
    spec.private_part.client_id = 77;
    spec.private_part.timeout_seconds = 5;
    spec.private_part.addresses.push(listed);
    spec.private_part.client_to_server_key = crypto::Key::random();
    spec.private_part.server_to_client_key = crypto::Key::random();
    std::array<uint8_t, wire::kConnectTokenSize> bytes{};
    wire::ConnectToken token;
    if (wire::mint_connect_token(spec, key, bytes) != wire::WireError::ok ||
        wire::decode_connect_token(bytes, token) != wire::WireError::ok) {
        ADD_FAILURE() << "cannot mint a token";
        return -1;
    }
    std::array<uint8_t, 2048> request{};
    const size_t n = wire::write_request(token, request);
    const bool v6 = to.type == wire::AddressType::ipv6;
    sockaddr_storage sa{};
    socklen_t len = 0;
    if (v6) {
        auto* s6 = reinterpret_cast<sockaddr_in6*>(&sa);
        s6->sin6_family = AF_INET6;
        std::memcpy(&s6->sin6_addr, to.ip.data(), 16);
        s6->sin6_port = htons(to.port);
        len = sizeof *s6;
    } else {
        auto* s4 = reinterpret_cast<sockaddr_in*>(&sa);
        s4->sin_family = AF_INET;
        std::memcpy(&s4->sin_addr, to.ip.data(), 4);
        s4->sin_port = htons(to.port);
        len = sizeof *s4;
    }
    const int fd = ::socket(v6 ? AF_INET6 : AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    EXPECT_GE(fd, 0);
    EXPECT_EQ(::sendto(fd, request.data(), n, 0, reinterpret_cast<sockaddr*>(&sa), len), static_cast<ssize_t>(n));
    return fd;
}

void bind_port_zero(const std::string& bind) {
    ASSERT_TRUE(crypto::init());
    Scratch s;
    const std::string srv = prefix("srv");
    Process server(server_args(srv, {"-l", "0-1"},
                               {"--driver", "socket", "--bind", bind, "--protocol-id", "0x5150", "--key", s.key}),
                   s.log("server"));
    ASSERT_TRUE(server.wait_output(" on socket", 20s)) << server.out() << server.err();
    // "pomelo-server: serving ADDR on socket ..."
    const std::string out = server.out();
    const size_t from = out.find("serving ") + 8;
    const auto announced = wire::Address::parse(out.substr(from, out.find(" on ", from) - from));
    ASSERT_TRUE(announced) << out;
    ASSERT_NE(announced->port, 0);

    // A token for the announced address connects and echoes (pomelo-client lists --server).
    Process client({kClient, "--", "--server", announced->to_string(), "--key", s.key, "--protocol-id", "0x5150",
                    "--clients", "3", "--payloads", "100", "--json"},
                   s.log("client"));
    ASSERT_TRUE(client.wait_for(60s));
    EXPECT_EQ(client.exit_code(), 0) << client.out() << client.err();
    json r = client_json(client);
    EXPECT_EQ(r["clients"]["connected"], 3);
    EXPECT_EQ(r["payloads"]["echoed"], 300);

    // A token for port 0, sent to the announced address: dropped as not ours, no reply.
    wire::Address port_zero = *announced;
    port_zero.port = 0;
    const crypto::Key key = read_key(s.key);
    const int fd = send_request(port_zero, *announced, key, 0x5150);
    ASSERT_GE(fd, 0);
    EXPECT_TRUE(wait_summary(srv, [](const json&) { return true; }, 10s));
    bool dropped = false;
    for (int i = 0; i < 100 && !dropped; ++i) {
        auto d = stats(srv, "drops");
        dropped = d && (*d)["address_not_in_token"].get<int>() >= 1;
        if (!dropped) std::this_thread::sleep_for(200ms);
    }
    EXPECT_TRUE(dropped);
    uint8_t reply[1500];
    EXPECT_LT(::recv(fd, reply, sizeof reply, MSG_DONTWAIT), 0);  // no CHALLENGE came back
    ::close(fd);

    server.signal(SIGTERM);
    ASSERT_TRUE(server.wait_for(15s));
    EXPECT_EQ(server.exit_code(), 0) << server.err();
    EXPECT_NE(server.out().find("3 connections served"), std::string::npos) << server.out();
}

TEST(EndToEnd, BindPortZeroIpv4ChecksTokensAgainstTheAnnouncedAddress) { bind_port_zero("127.0.0.1:0"); }
TEST(EndToEnd, BindPortZeroIpv6ChecksTokensAgainstTheAnnouncedAddress) { bind_port_zero("[::1]:0"); }


// ---------------------------------------------------------------------------------------------
// The rooms example (examples/rooms) on two workers: 50 clients in 5 rooms of 10, one client
// process per room (rooms_client.cpp: protocol/client on kernel UDP sockets, 127.0.0.1).

// GET http://127.0.0.1:PORT/PATH with a plain socket: the body, or "" on failure.
std::string http_get_local(int port, const std::string& path) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    std::string page;
    if (fd >= 0 && ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) {
        const std::string req = "GET " + path + " HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
        if (::send(fd, req.data(), req.size(), 0) == static_cast<ssize_t>(req.size())) {
            char buf[4096];
            ssize_t n;
            while ((n = ::recv(fd, buf, sizeof buf, 0)) > 0) page.append(buf, static_cast<size_t>(n));
        }
    }
    if (fd >= 0) ::close(fd);
    return page;
}

TEST(Rooms, TwoWorkersRelayEveryUpdateInOrderAndOnlyWithinItsRoom) {
    Scratch s;
    const std::string srv = prefix("srv");
    const std::string bind = "127.0.0.1:" + std::to_string(test_port(7));
    Process server(server_args(srv, {"--lcores", "0@0,1@1,2@1"},
                               {"--driver", "socket", "--bind", bind, "--protocol-id", "0x52", "--key", s.key,
                                "--workers", "2", "--app", "rooms", "--max-clients", "100", "--metrics",
                                "127.0.0.1:0"}),
                   s.log("server"));
    ASSERT_TRUE(server.wait_output("with 2 worker(s)", 20s)) << server.out() << server.err();
    const std::vector<std::string> names = {"lobby", "arena", "red_team", "blue_team", "Room5"};
    constexpr int kMembers = 10, kUpdates = 60;
    std::vector<std::unique_ptr<Process>> rooms;
    for (size_t r = 0; r < names.size(); ++r)
        rooms.push_back(std::make_unique<Process>(
            std::vector<std::string>{kRoomsClient, "--server", bind, "--key", s.key, "--protocol-id", "0x52", "--room",
                                     names[r], "--room-index", std::to_string(r + 1), "--members",
                                     std::to_string(kMembers), "--updates", std::to_string(kUpdates), "--rate", "20",
                                     "--hold", "2", "--hold-step", "0.2", "--limit", "90"},
            s.log("room-" + names[r])));

    // While everyone is in: 10 members in each room, and both workers hold some of them.
    json by_room, workers;
    for (int i = 0; i < 300 && !(by_room.size() == names.size() && workers.size() == 2); ++i) {
        if (auto r = stats(srv, "rooms"); r && r->contains("members") && (*r)["members"] == 50) by_room = (*r)["by_room"];
        if (auto w = stats(srv, "workers"); w && w->contains("worker0") && w->contains("worker1") &&
                                            (*w)["worker0"]["peers"].get<int>() + (*w)["worker1"]["peers"].get<int>() == 50)
            workers = *w;
        std::this_thread::sleep_for(50ms);
    }
    ASSERT_EQ(by_room.size(), names.size()) << by_room.dump() << server.out();
    for (const std::string& n : names) EXPECT_EQ(by_room[n], kMembers) << n << " " << by_room.dump();
    ASSERT_EQ(workers.size(), 2u);
    // The same counts on the Prometheus endpoint (pomelo_room_members{room=...}).
    {
        const std::string out = server.out();
        const auto at = out.find("metrics at http://127.0.0.1:");
        ASSERT_NE(at, std::string::npos) << out;
        const int port = std::atoi(out.c_str() + at + std::strlen("metrics at http://127.0.0.1:"));
        const std::string page = http_get_local(port, "/metrics");
        for (const std::string& n : names)
            EXPECT_TRUE(std::regex_search(page, std::regex("pomelo_room_members\\{room=\"" + n + "\"\\} 10(\\.0+)?\\s")))
                << n << "\n" << page.substr(0, 4000);
    }
    EXPECT_GT(workers["worker0"]["peers"].get<int>(), 0) << workers.dump();
    EXPECT_GT(workers["worker1"]["peers"].get<int>(), 0) << workers.dump();

    // Every member saw every other member's updates of its room, in order, and nothing else.
    for (size_t r = 0; r < rooms.size(); ++r) {
        ASSERT_TRUE(rooms[r]->wait_for(120s)) << names[r];
        EXPECT_EQ(rooms[r]->exit_code(), 0) << rooms[r]->out() << rooms[r]->err();
        json j = client_json(*rooms[r]);
        EXPECT_EQ(j["connected"], kMembers) << names[r];
        EXPECT_EQ(j["updates_received"], kMembers * (kMembers - 1) * kUpdates) << names[r];
        EXPECT_EQ(j["out_of_order"], 0) << names[r];
        EXPECT_EQ(j["foreign"], 0) << names[r];
        EXPECT_EQ(j["own"], 0) << names[r];
        EXPECT_GE(j["joined_records"].get<int>(), kMembers * (kMembers - 1)) << names[r];
        // Members leave one by one (--hold-step): those still in are told.
        EXPECT_GT(j["left_records"].get<int>(), 0) << names[r];
        EXPECT_EQ(j["bad_left"], 0) << names[r];
    }

    // The workers relayed to each other, and everyone has left.
    ASSERT_TRUE(wait_summary(srv, [](const json& j) { return j["peers_connected"] == 0; }, 20s));
    json final_rooms, final_workers;
    for (int i = 0; i < 100; ++i) {
        auto r = stats(srv, "rooms");
        auto w = stats(srv, "workers");
        if (r && w && r->contains("members") && (*r)["members"] == 0 &&
            (*r)["messages_posted"] == (*r)["messages_received"]) {
            final_rooms = *r;
            final_workers = *w;
            break;
        }
        std::this_thread::sleep_for(100ms);
    }
    ASSERT_FALSE(final_rooms.is_null()) << stats(srv, "rooms")->dump();
    for (const char* w : {"worker0", "worker1"}) {
        EXPECT_GT(final_workers[w]["messages_posted"].get<uint64_t>(), 0u) << final_workers.dump();
        EXPECT_GT(final_workers[w]["messages_received"].get<uint64_t>(), 0u) << final_workers.dump();
        EXPECT_GT(final_workers[w]["ticks"].get<uint64_t>(), 0u) << final_workers.dump();
        EXPECT_EQ(final_workers[w]["no_message_buffer"], 0) << final_workers.dump();
    }
    EXPECT_EQ(final_rooms["updates"], 50 * kUpdates) << final_rooms.dump();
    for (const char* zero : {"bad_room", "oversized", "overflow", "send_failed", "post_failed"})
        EXPECT_EQ(final_rooms[zero], 0) << zero << " " << final_rooms.dump();

    server.signal(SIGTERM);
    ASSERT_TRUE(server.wait_for(15s));
    EXPECT_EQ(server.exit_code(), 0) << server.err();
}

}  // namespace
}  // namespace pomelo::test
