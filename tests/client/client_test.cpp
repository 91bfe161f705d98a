// The game client library (libpomelo-client) against a real pomelo-server (kernel socket
// driver, echo application) on loopback:
//  - the plain-C program echo_client.c (C API): echo over IPv4 and IPv6 (update() and the
//    library's thread), multi-address fallback past an address that never answers, DENIED
//    from a full server, a request timeout with no server;
//  - the C++ API in this process: echo with RTT, clock offset checked against the server's
//    start, disconnect, token reuse refused, connection lost when the server is killed,
//    disconnected by the server's shutdown;
//  - the wire: a relay between the library and the server opens every datagram with the
//    independent libsodium decoder (tests/support/independent_peer);
//  - pomelo-client --interactive with stdin piped.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <thread>

#include "pomelo/client.hpp"
#include "protocol/crypto/aead.hpp"
#include "protocol/wire/connect_token.hpp"
#include "tests/integration/process.hpp"
#include "tests/support/independent_peer.hpp"
#include "tools/common/cli.hpp"

namespace pomelo::test {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

const std::string kServer = POMELO_SERVER_BIN, kToken = POMELO_TOKEN_BIN, kClientTool = POMELO_CLIENT_BIN,
                  kEchoC = ECHO_CLIENT_C_BIN;
constexpr uint64_t kProtocolId = 0xc11e47;

std::string test_name() { return testing::UnitTest::GetInstance()->current_test_info()->name(); }

uint64_t unix_ms() {
    return static_cast<uint64_t>(
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
            .count());
}

// A scratch directory with a server key (written by pomelo-token keygen); removed on success.
struct Scratch {
    fs::path dir = fs::temp_directory_path() / ("pomelo-client-test-" + std::to_string(::getpid()) + "-" + test_name());
    std::string key_file = (dir / "server.key").string();
    crypto::Key key;
    Scratch() {
        fs::remove_all(dir);
        fs::create_directories(dir);
        Process keygen({kToken, "keygen", "-o", key_file}, log("keygen"));
        EXPECT_TRUE(keygen.wait_for(10s));
        EXPECT_EQ(keygen.exit_code(), 0) << keygen.err();
        key = cli::load_key_file("--key", key_file);
    }
    ~Scratch() {
        if (!testing::Test::HasFailure()) fs::remove_all(dir);
    }
    std::string log(const std::string& name) const { return (dir / name).string(); }

    // A token file as the backend tool writes it (`pomelo-token mint`), raw or hex.
    std::string mint_file(const std::string& name, const std::vector<wire::Address>& servers, int64_t client_id,
                          int timeout_s = 10, bool binary = true) const {
        const std::string file = (dir / name).string();
        std::vector<std::string> args{kToken, "mint", "--key", key_file, "--protocol-id", std::to_string(kProtocolId),
                                      "--client-id", std::to_string(client_id), "--timeout", std::to_string(timeout_s),
                                      "--format", binary ? "bin" : "hex", "-o", file};
        for (const auto& s : servers) {
            args.push_back("--server");
            args.push_back(s.to_string());
        }
        Process mint(args, log("mint-" + name));
        EXPECT_TRUE(mint.wait_for(10s));
        EXPECT_EQ(mint.exit_code(), 0) << mint.err();
        return file;
    }
    // A token minted in this process (wire::mint_connect_token); `spec` keeps its keys.
    std::vector<uint8_t> mint(const std::vector<wire::Address>& servers, int64_t client_id, int timeout_s,
                              wire::TokenSpec& spec) const {
        spec.protocol_id = kProtocolId;
        spec.create_ms = unix_ms();
        spec.expire_ms = spec.create_ms + 600'000;
        crypto::random_bytes(spec.nonce.data(), spec.nonce.size());
        spec.private_part.client_id = client_id;
        spec.private_part.timeout_seconds = timeout_s;
        for (const auto& s : servers) spec.private_part.addresses.push(s);
        spec.private_part.client_to_server_key = crypto::Key::random();
        spec.private_part.server_to_client_key = crypto::Key::random();
        std::vector<uint8_t> token(wire::kConnectTokenSize);
        EXPECT_EQ(wire::mint_connect_token(spec, key, std::span<uint8_t, wire::kConnectTokenSize>(token.data(), token.size())),
                  wire::WireError::ok);
        return token;
    }
};

// pomelo-server on the kernel socket driver, echo application, bound to port 0 of `ip`: the
// address it serves is read from its "serving" line.
struct Server {
    std::unique_ptr<Process> p;
    wire::Address address;
    uint64_t spawned_ns = 0, serving_ns = 0;  // UdpClient::now_ns() around its clock's start

    Server(const Scratch& s, const std::string& ip, std::vector<std::string> extra = {}) {
        static int count = 0;
        const std::string n = std::to_string(++count);
        std::vector<std::string> args{kServer, "--no-huge", "--no-pci", "-m", "256", "--file-prefix",
                                      "pomelo-client-test-" + std::to_string(::getpid()) + "-" + n, "--log-level",
                                      "error", "--", "--driver", "socket", "--bind", ip + ":0", "--protocol-id",
                                      std::to_string(kProtocolId), "--key", s.key_file, "--token-journal",
                                      s.log("journal-" + n), "--stats-interval", "0"};
        args.insert(args.end(), extra.begin(), extra.end());
        spawned_ns = UdpClient::now_ns();
        p = std::make_unique<Process>(args, s.log("server-" + n));
        EXPECT_TRUE(p->wait_output("pomelo-server: serving", 30s)) << p->out() << p->err();
        serving_ns = UdpClient::now_ns();
        const std::string out = p->out();
        const auto at = out.find("serving ");
        const auto end = out.find(' ', at + 8);
        if (at != std::string::npos && end != std::string::npos)
            address = wire::Address::parse(out.substr(at + 8, end - at - 8)).value_or(wire::Address{});
        EXPECT_NE(address.port, 0) << out;
    }
    void stop() {
        p->signal(SIGTERM);
        EXPECT_TRUE(p->wait_for(30s));
        EXPECT_EQ(p->exit_code(), 0) << p->err();
    }
};

// A UDP socket bound to an ephemeral port of 127.0.0.1 or ::1; `address` is where it is.
int loopback_socket(bool v6, wire::Address& address) {
    const int fd = ::socket(v6 ? AF_INET6 : AF_INET, SOCK_DGRAM, 0);
    sockaddr_storage ss{};
    socklen_t len = 0;
    if (v6) {
        auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
        a->sin6_family = AF_INET6;
        a->sin6_addr = in6addr_loopback;
        len = sizeof *a;
    } else {
        auto* a = reinterpret_cast<sockaddr_in*>(&ss);
        a->sin_family = AF_INET;
        a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        len = sizeof *a;
    }
    EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&ss), len), 0);
    len = sizeof ss;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len);
    const uint16_t port = ntohs(v6 ? reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port : reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
    address = *wire::Address::parse((v6 ? "[::1]:" : "127.0.0.1:") + std::to_string(port));
    return fd;
}

// A bound UDP socket that never answers: datagrams to it vanish without an ICMP error.
struct BlackHole {
    wire::Address address;
    int fd;
    explicit BlackHole(bool v6) : fd(loopback_socket(v6, address)) {}
    ~BlackHole() { ::close(fd); }
};

struct Ran {
    int status;
    std::string out, err;
};
Ran run_c(const Scratch& s, const std::string& name, std::vector<std::string> args) {
    args.insert(args.begin(), kEchoC);
    Process p(args, s.log(name));
    EXPECT_TRUE(p.wait_for(120s)) << name << " did not finish";
    return {p.exit_code(), p.out(), p.err()};
}
bool has(const std::string& text, const std::string& what) { return text.find(what) != std::string::npos; }

// Drives `c` with update() (unless its thread runs) until `done`, at most `limit`.
template <class Done>
bool drive(UdpClient& c, Done done, std::chrono::seconds limit = 20s, bool thread = false) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (!done()) {
        if (std::chrono::steady_clock::now() > deadline) return false;
        if (!thread) {
            EXPECT_EQ(c.update(), ClientResult::ok);
        }
        std::this_thread::sleep_for(1ms);
    }
    return true;
}

std::vector<uint8_t> payload_of(uint32_t i, size_t size) {
    std::vector<uint8_t> p(size);
    for (size_t j = 0; j < size; ++j) p[j] = static_cast<uint8_t>(j < 4 ? i >> (8 * j) : (i * 7 + j) & 0xff);
    return p;
}

// ---------------------------------------------------------------------------------------------
// The C program (pomelo.h)

TEST(CApi, EchoesEveryPayloadOverIpv4ThenDisconnects) {
    Scratch s;
    Server server(s, "127.0.0.1");
    const std::string token = s.mint_file("token.bin", {server.address}, 101);
    const Ran r = run_c(s, "echo", {token, "1000", "100"});
    EXPECT_EQ(r.status, 0) << r.out << r.err;
    EXPECT_TRUE(has(r.out, "connected: client id 101 to " + server.address.to_string())) << r.out;
    EXPECT_TRUE(has(r.out, "echoed: 1000 payloads of 100 bytes, byte for byte")) << r.out;
    EXPECT_TRUE(has(r.out, "ended: disconnected")) << r.out;
    EXPECT_TRUE(has(r.out, "stats: 1000 payloads sent, 1000 received, 0 dropped")) << r.out;
    server.stop();
    EXPECT_TRUE(has(server.p->out(), "stopped; 1 connections served")) << server.p->out();
}

TEST(CApi, EchoesOverIpv6OnTheLibrarysThread) {
    Scratch s;
    Server server(s, "[::1]");
    ASSERT_EQ(server.address.type, wire::AddressType::ipv6);
    const std::string token = s.mint_file("token.bin", {server.address}, 102);
    const Ran r = run_c(s, "echo", {"--thread", token, "500", "1200"});
    EXPECT_EQ(r.status, 0) << r.out << r.err;
    EXPECT_TRUE(has(r.out, "to " + server.address.to_string())) << r.out;
    EXPECT_TRUE(has(r.out, "echoed: 500 payloads of 1200 bytes")) << r.out;
    server.stop();
}

// The token lists an IPv6 address that never answers, then the IPv4 server: the REQUESTs to
// the first time out (1 s), the second address connects, on the other family's socket.
TEST(CApi, FallsBackPastAnAddressThatNeverAnswers) {
    Scratch s;
    Server server(s, "127.0.0.1");
    BlackHole dead(true);
    const std::string token = s.mint_file("token.bin", {dead.address, server.address}, 103, 1);
    const auto start = std::chrono::steady_clock::now();
    const Ran r = run_c(s, "echo", {token, "100", "64"});
    EXPECT_EQ(r.status, 0) << r.out << r.err;
    EXPECT_TRUE(has(r.out, "connected: client id 103 to " + server.address.to_string())) << r.out;
    EXPECT_TRUE(has(r.out, "echoed: 100 payloads")) << r.out;
    EXPECT_GE(std::chrono::steady_clock::now() - start, 1s);  // the first address's timeout passed
    // The dead address got the REQUESTs (1077 bytes each) before the fallback.
    uint8_t buf[2048];
    const ssize_t n = ::recv(dead.fd, buf, sizeof buf, MSG_DONTWAIT);
    EXPECT_EQ(n, 1077);
    server.stop();
}

TEST(CApi, AFullServerDeniesAndTheOutcomeSaysSo) {
    Scratch s;
    Server server(s, "127.0.0.1", {"--max-clients", "1"});
    wire::TokenSpec spec;
    UdpClient holder;  // takes the only slot, kept alive by its thread
    ASSERT_EQ(holder.connect(s.mint({server.address}, 1, 10, spec)), ClientResult::ok);
    ASSERT_EQ(holder.start_thread(), ClientResult::ok);
    ASSERT_TRUE(drive(holder, [&] { return holder.state() == ClientState::connected; }, 20s, true));
    const std::string token = s.mint_file("token.bin", {server.address}, 104);
    const Ran r = run_c(s, "denied", {"--expect", "denied", token});
    EXPECT_EQ(r.status, 0) << r.out << r.err;
    EXPECT_TRUE(has(r.out, "outcome: denied")) << r.out;
    EXPECT_EQ(holder.state(), ClientState::connected);
    server.stop();
}

TEST(CApi, WithNoServerTheRequestTimesOut) {
    Scratch s;
    BlackHole dead(false);
    const std::string token = s.mint_file("token.bin", {dead.address}, 105, 1);
    const Ran r = run_c(s, "timeout", {"--expect", "request timed out", token});
    EXPECT_EQ(r.status, 0) << r.out << r.err;
    // And the program fails when the outcome is not the one expected.
    const Ran wrong = run_c(s, "wrong", {"--expect", "denied", s.mint_file("token2.bin", {dead.address}, 106, 1)});
    EXPECT_EQ(wrong.status, 1) << wrong.out << wrong.err;
    EXPECT_TRUE(has(wrong.err, "outcome 'request timed out', expected 'denied'")) << wrong.err;
}

// ---------------------------------------------------------------------------------------------
// The C++ API

// Echo with byte checks, RTT, the server clock estimate and a graceful disconnect; then the
// API's refusals: a too-small receive buffer, sending while disconnected, the same token twice.
TEST(CppApi, EchoRttClockOffsetAndDisconnect) {
    Scratch s;
    Server server(s, "127.0.0.1");
    wire::TokenSpec spec;
    const auto token = s.mint({server.address}, 201, 10, spec);
    UdpClient c;
    EXPECT_EQ(c.state(), ClientState::disconnected);
    EXPECT_EQ(c.send(payload_of(0, 10)), ClientResult::wrong_state);
    EXPECT_EQ(c.connect(std::span(token).first(100)), ClientResult::invalid_argument);
    ASSERT_EQ(c.connect(token), ClientResult::ok);
    EXPECT_EQ(c.connect(token), ClientResult::wrong_state);
    ASSERT_TRUE(drive(c, [&] { return c.state() != ClientState::sending_request && c.state() != ClientState::sending_response; }));
    ASSERT_EQ(c.state(), ClientState::connected) << to_string(c.outcome());
    EXPECT_EQ(c.client_id(), 201);
    EXPECT_EQ(c.server_address(), server.address.to_string());

    constexpr uint32_t kPayloads = 200;
    uint32_t echoed = 0;
    std::array<uint8_t, kMaxPayloadBytes> buf;
    for (uint32_t i = 0; i < kPayloads; ++i) {
        const auto p = payload_of(i, 4 + i);
        ASSERT_EQ(c.send(p), ClientResult::ok);
        ASSERT_TRUE(drive(c, [&] {
            size_t n = 0;
            if (c.receive(buf, n) != ClientResult::ok || n == 0) return false;
            EXPECT_TRUE(std::equal(buf.begin(), buf.begin() + n, p.begin(), p.end())) << "echo " << i << " differs";
            ++echoed;
            return true;
        })) << "no echo of payload " << i;
    }
    EXPECT_EQ(echoed, kPayloads);

    // A payload waits for a buffer large enough.
    ASSERT_EQ(c.send(payload_of(7, 300)), ClientResult::ok);
    size_t n = 0;
    std::array<uint8_t, 100> small;
    ASSERT_TRUE(drive(c, [&] { return c.receive(small, n) == ClientResult::buffer_too_small; }));
    EXPECT_EQ(n, 300u);
    ASSERT_EQ(c.receive(buf, n), ClientResult::ok);
    EXPECT_EQ(n, 300u);
    EXPECT_EQ(c.send({}), ClientResult::invalid_argument);
    EXPECT_EQ(c.send(std::vector<uint8_t>(kMaxPayloadBytes + 1)), ClientResult::invalid_argument);

    // RTT from PONGs (10 Hz); loopback is far below a second.
    ASSERT_TRUE(drive(c, [&] { return c.rtt_ns() != 0; }));
    EXPECT_LT(c.rtt_ns(), 1'000'000'000u);
    // The server's clock reads 1 s when it starts, which was between spawning it and its
    // "serving" line: the network time minus 1 s lies between the times since those two
    // (plus a margin for the estimate's error: half an RTT and the clocks' rate difference).
    const uint64_t now = UdpClient::now_ns();
    const auto server_uptime = static_cast<int64_t>(c.network_time_ns(now)) - 1'000'000'000;
    constexpr int64_t kMargin = 100'000'000;
    EXPECT_GE(server_uptime, static_cast<int64_t>(now - server.serving_ns) - kMargin);
    EXPECT_LE(server_uptime, static_cast<int64_t>(now - server.spawned_ns) + kMargin);
    EXPECT_EQ(c.clock_offset_ns(now), static_cast<int64_t>(c.network_time_ns(now) - now));

    ASSERT_EQ(c.disconnect(), ClientResult::ok);
    EXPECT_EQ(c.state(), ClientState::disconnecting);
    ASSERT_TRUE(drive(c, [&] { return c.state() == ClientState::disconnected; }));
    EXPECT_EQ(c.outcome(), ClientOutcome::disconnected);
    EXPECT_EQ(c.send(payload_of(1, 10)), ClientResult::wrong_state);
    const ClientStats st = c.stats();
    EXPECT_EQ(st.payloads_sent, kPayloads + 1);
    EXPECT_EQ(st.payloads_received, kPayloads + 1);
    EXPECT_EQ(st.payloads_dropped, 0u);
    EXPECT_GE(st.datagrams_sent, st.payloads_sent + 10);  // REQUEST, RESPONSE, PINGs, 10 DISCONNECTs

    // One token, one connection (spec §9).
    EXPECT_EQ(c.connect(token), ClientResult::token_unusable);
    EXPECT_EQ(c.outcome(), ClientOutcome::token_already_used);
    // A new token connects the same client object again.
    wire::TokenSpec spec2;
    ASSERT_EQ(c.connect(s.mint({server.address}, 202, 10, spec2)), ClientResult::ok);
    ASSERT_TRUE(drive(c, [&] { return c.state() == ClientState::connected; }));
    EXPECT_EQ(c.client_id(), 202);
    server.stop();  // the server's DISCONNECTs end it
    ASSERT_TRUE(drive(c, [&] { return c.state() == ClientState::disconnected; }));
    EXPECT_EQ(c.outcome(), ClientOutcome::disconnected_by_server);
}

// A killed server sends nothing: the connection ends after the token's timeout (2 s), not before.
TEST(CppApi, ConnectionLostWhenTheServerIsKilled) {
    Scratch s;
    Server server(s, "127.0.0.1");
    wire::TokenSpec spec;
    UdpClient c;
    ASSERT_EQ(c.start_thread(), ClientResult::ok);
    EXPECT_EQ(c.start_thread(), ClientResult::wrong_state);
    EXPECT_EQ(c.update(), ClientResult::wrong_state);
    ASSERT_EQ(c.connect(s.mint({server.address}, 301, 2, spec)), ClientResult::ok);
    ASSERT_TRUE(drive(c, [&] { return c.state() == ClientState::connected; }, 20s, true));
    server.p->signal(SIGKILL);
    ASSERT_TRUE(server.p->wait_for(10s));
    const auto killed = std::chrono::steady_clock::now();
    ASSERT_TRUE(drive(c, [&] { return c.state() == ClientState::disconnected; }, 20s, true));
    EXPECT_GE(std::chrono::steady_clock::now() - killed, 1900ms);
    EXPECT_EQ(c.outcome(), ClientOutcome::connection_lost);
    EXPECT_EQ(c.stop_thread(), ClientResult::ok);
    EXPECT_EQ(c.stop_thread(), ClientResult::ok);
}

// Abandoning an attempt is immediate and reported as our disconnect.
TEST(CppApi, DisconnectWhileConnectingAbandonsTheAttempt) {
    Scratch s;
    BlackHole dead(false);
    wire::TokenSpec spec;
    UdpClient c;
    ASSERT_EQ(c.connect(s.mint({dead.address}, 401, 10, spec)), ClientResult::ok);
    EXPECT_EQ(c.state(), ClientState::sending_request);
    EXPECT_EQ(c.disconnect(), ClientResult::ok);
    EXPECT_EQ(c.state(), ClientState::disconnected);
    EXPECT_EQ(c.outcome(), ClientOutcome::disconnected);
    EXPECT_EQ(c.next_update_ns(), UINT64_MAX);
    std::vector<uint8_t> garbage(wire::kConnectTokenSize, 0xab);
    EXPECT_EQ(c.connect(garbage), ClientResult::token_unusable);
    EXPECT_EQ(c.outcome(), ClientOutcome::invalid_token);
}

// ---------------------------------------------------------------------------------------------
// The wire, through the independent decoder

// Forwards datagrams between the library (on `front`) and the server (from `back`), keeping a
// copy of each, in order, with the time it passed (UdpClient::now_ns(), the library's clock).
struct Relay {
    struct Seen {
        Bytes d;
        uint64_t ns;
    };
    int front = -1, back = -1;
    wire::Address front_address, server;
    std::mutex m;
    std::vector<Seen> to_server, to_client;
    std::atomic<bool> stop{false};
    std::thread t;

    explicit Relay(const wire::Address& server_address) : server(server_address) {
        front = loopback_socket(false, front_address);
        back = ::socket(AF_INET, SOCK_DGRAM, 0);
        t = std::thread([this] { loop(); });
    }
    ~Relay() {
        stop = true;
        t.join();
        ::close(front);
        ::close(back);
    }
    void loop() {
        sockaddr_storage client{};
        socklen_t client_len = 0;
        sockaddr_in srv{};
        srv.sin_family = AF_INET;
        std::memcpy(&srv.sin_addr, server.ip.data(), 4);
        srv.sin_port = htons(server.port);
        while (!stop) {
            pollfd p[2] = {{front, POLLIN, 0}, {back, POLLIN, 0}};
            if (::poll(p, 2, 10) <= 0) continue;
            uint8_t buf[2048];
            if (p[0].revents & POLLIN) {
                sockaddr_storage from{};
                socklen_t len = sizeof from;
                const ssize_t n = ::recvfrom(front, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &len);
                if (n > 0) {
                    client = from;
                    client_len = len;
                    std::lock_guard lock(m);
                    to_server.push_back({Bytes(buf, buf + n), UdpClient::now_ns()});
                    ::sendto(back, buf, n, 0, reinterpret_cast<sockaddr*>(&srv), sizeof srv);
                }
            }
            if (p[1].revents & POLLIN) {
                const ssize_t n = ::recv(back, buf, sizeof buf, 0);
                if (n > 0 && client_len) {
                    std::lock_guard lock(m);
                    to_client.push_back({Bytes(buf, buf + n), UdpClient::now_ns()});
                    ::sendto(front, buf, n, 0, reinterpret_cast<sockaddr*>(&client), client_len);
                }
            }
        }
    }
};

TEST(Wire, TheIndependentDecoderOpensEverythingTheLibrarySendsAndReceives) {
    Scratch s;
    Server server(s, "127.0.0.1");
    Relay relay(server.address);
    wire::TokenSpec spec;
    // The relay first: the library talks to it; the server finds its own address listed too.
    const auto token = s.mint({relay.front_address, server.address}, 501, 10, spec);
    indep::PublicToken pub;
    std::string error;
    ASSERT_TRUE(pub.parse(token, error)) << error;

    UdpClient c;
    ASSERT_EQ(c.connect(token), ClientResult::ok);
    ASSERT_TRUE(drive(c, [&] { return c.state() == ClientState::connected; })) << to_string(c.outcome());
    EXPECT_EQ(c.server_address(), relay.front_address.to_string());
    std::vector<std::vector<uint8_t>> sent;
    std::array<uint8_t, kMaxPayloadBytes> buf;
    for (uint32_t i = 0; i < 50; ++i) {
        sent.push_back(payload_of(i, 20 + i));
        ASSERT_EQ(c.send(sent.back()), ClientResult::ok);
        size_t n = 0;
        ASSERT_TRUE(drive(c, [&] { return c.receive(buf, n) == ClientResult::ok && n > 0; }));
    }
    ASSERT_TRUE(drive(c, [&] { return c.rtt_ns() != 0; }));
    ASSERT_EQ(c.disconnect(), ClientResult::ok);
    ASSERT_TRUE(drive(c, [&] { return c.state() == ClientState::disconnected; }));
    std::this_thread::sleep_for(50ms);  // the relay's last copies

    std::lock_guard lock(relay.m);
    // Client to server: REQUESTs byte-identical to the spec's (§8.1), one RESPONSE resent
    // unchanged, then one sequence counter from 0 with no gap and no repeat (§9).
    const Bytes request = indep::request_datagram(pub);
    std::map<uint8_t, size_t> types;
    std::vector<uint64_t> sequences;
    std::vector<Bytes> payloads;
    std::optional<Bytes> response;
    std::map<uint16_t, uint64_t> ping_sent_ns;  // ping sequence -> when the relay passed it
    for (const auto& [d, ns] : relay.to_server) {
        if (d.size() == request.size() && d[0] == 0) {
            EXPECT_EQ(d, request);
            ++types[indep::request];
            continue;
        }
        const auto o = indep::open(d, pub.client_to_server, kProtocolId);
        ASSERT_TRUE(o) << "a datagram to the server does not open under the token's key";
        ++types[o->type];
        if (o->type == indep::response) {
            EXPECT_EQ(o->sequence >> 63, 1u);  // RESPONSE sequences have the top bit set
            if (response) {
                EXPECT_EQ(*response, d);
            }
            response = d;
            continue;
        }
        sequences.push_back(o->sequence);
        if (o->type == indep::ping) {  // §8.5: meta (T, C-1, S-1), time, client id, ping sequence
            ASSERT_GE(o->body.size(), 3u);
            const uint8_t meta = o->body[0];
            const size_t t = meta >> 4, c = ((meta >> 1) & 7) + 1, sz = (meta & 1) + 1;
            EXPECT_EQ(t, 0u) << "a client PING carries no time";
            ASSERT_EQ(o->body.size(), 1 + t + c + sz);
            ping_sent_ns[static_cast<uint16_t>(o->body[1 + t + c] | (sz == 2 ? o->body[2 + t + c] << 8 : 0))] = ns;
        }
        if (o->type == indep::payload) payloads.push_back(o->body);
        if (o->type == indep::disconnect) {
            EXPECT_TRUE(o->body.empty());
        }
    }
    EXPECT_GE(types[indep::request], 1u);
    EXPECT_GE(types[indep::response], 1u);
    EXPECT_GE(types[indep::ping], 1u);
    EXPECT_GE(types[indep::pong], 1u);
    EXPECT_EQ(types[indep::disconnect], 10u);
    for (size_t i = 0; i < sequences.size(); ++i) EXPECT_EQ(sequences[i], i) << "sequence " << i;
    ASSERT_EQ(payloads.size(), sent.size());
    for (size_t i = 0; i < sent.size(); ++i) EXPECT_EQ(payloads[i], sent[i]) << "payload " << i;

    // Server to client: everything opens under the server-to-client key; the echoes are ours.
    size_t echoes = 0;
    // Each PONG's ping receive time t1 (§8.6) is the server's clock between the relay passing
    // the PING and passing the PONG: offset = server clock - ours lies in [t1 - pong, t1 - ping].
    struct Bound {
        uint64_t ns;
        int64_t lo, hi;
    };
    std::vector<Bound> bounds;
    for (const auto& [d, ns] : relay.to_client) {
        const auto o = indep::open(d, pub.server_to_client, kProtocolId);
        ASSERT_TRUE(o) << "a datagram from the server does not open under the token's key";
        if (o->type == indep::pong) {  // meta (S-1, R-1, D-1), ping sequence, receive time, delta
            ASSERT_GE(o->body.size(), 4u);
            const uint8_t meta = o->body[0];
            const size_t sz = ((meta >> 6) & 3) + 1, r = ((meta >> 3) & 7) + 1;
            ASSERT_LE(1 + sz + r, o->body.size());
            const auto seq = static_cast<uint16_t>(o->body[1] | (sz == 2 ? o->body[2] << 8 : 0));
            uint64_t t1 = 0;
            for (size_t k = 0; k < r; ++k) t1 |= uint64_t{o->body[1 + sz + k]} << (8 * k);
            const auto sent = ping_sent_ns.find(seq);
            ASSERT_NE(sent, ping_sent_ns.end()) << "a PONG for a PING the client never sent";
            bounds.push_back({ns, static_cast<int64_t>(t1 - ns), static_cast<int64_t>(t1 - sent->second)});
        }
        if (o->type == indep::payload) {
            ASSERT_LT(echoes, sent.size());
            EXPECT_EQ(o->body, sent[echoes]);
            ++echoes;
        }
    }
    EXPECT_EQ(echoes, sent.size());
    ASSERT_FALSE(bounds.empty());
    // The intersection over the last 300 ms of PONGs (over longer, the clocks' rate difference
    // shows: the server's is TSC-based, up to ~1000 ppm off on a VM).
    const uint64_t last_pong_ns = bounds.back().ns;
    int64_t lo = INT64_MIN, hi = INT64_MAX;
    for (const Bound& b : bounds)
        if (b.ns + 300'000'000 >= last_pong_ns) {
            lo = std::max(lo, b.lo);
            hi = std::min(hi, b.hi);
        }
    EXPECT_LE(lo, hi + 1'000'000) << "the PONGs disagree about the server's clock";
    // The library's estimate lags the rate difference a little (no drift term before 5 s).
    const int64_t offset = c.clock_offset_ns(last_pong_ns);
    EXPECT_GE(offset, lo - 3'000'000) << "reference interval [" << lo << ", " << hi << "]";
    EXPECT_LE(offset, hi + 3'000'000) << "reference interval [" << lo << ", " << hi << "]";
    server.stop();
}

// Destroying a connected client tells the server at once (10 DISCONNECTs), rather than leaving
// it to time the connection out.
TEST(Wire, DestroyingAConnectedClientSendsItsDisconnects) {
    Scratch s;
    Server server(s, "127.0.0.1");
    Relay relay(server.address);
    wire::TokenSpec spec;
    const auto token = s.mint({relay.front_address, server.address}, 502, 10, spec);
    indep::PublicToken pub;
    std::string error;
    ASSERT_TRUE(pub.parse(token, error)) << error;
    {
        UdpClient c;
        ASSERT_EQ(c.connect(token), ClientResult::ok);
        ASSERT_EQ(c.start_thread(), ClientResult::ok);
        ASSERT_TRUE(drive(c, [&] { return c.state() == ClientState::connected; }, 20s, true));
    }
    const auto count = [&] {
        std::lock_guard lock(relay.m);
        size_t n = 0;
        for (const auto& [d, ns] : relay.to_server) {
            const auto o = indep::open(d, pub.client_to_server, kProtocolId);
            n += o && o->type == indep::disconnect;
        }
        return n;
    };
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (count() < 10 && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(10ms);
    EXPECT_EQ(count(), 10u);
    server.stop();
}

// ---------------------------------------------------------------------------------------------
// pomelo-client --interactive

TEST(Interactive, StdinLinesAreSentAndTheRepliesPrintedWithStatusLines) {
    Scratch s;
    Server server(s, "127.0.0.1");
    const std::string token = s.mint_file("token.hex", {server.address}, 601, 10, false);  // the tool's default format
    Process client({kClientTool, "--interactive", "--token", token, "--status-interval", "0.2"}, s.log("interactive"),
                   true);
    ASSERT_TRUE(client.wait_output("status: connected " + server.address.to_string() + ", client id 601", 20s))
        << client.out() << client.err();
    ASSERT_TRUE(client.write_stdin("hello pomelo\n"));
    EXPECT_TRUE(client.wait_output("< hello pomelo\n", 20s)) << client.out() << client.err();
    ASSERT_TRUE(client.write_stdin("tab\there\r\n\nsecond\n"));
    EXPECT_TRUE(client.wait_output("< tab\\x09here\n< second\n", 20s)) << client.out() << client.err();
    EXPECT_TRUE(client.wait_output(", rtt 0.", 20s)) << client.out();  // a status line with a measured RTT
    EXPECT_TRUE(has(client.out(), "clock offset ")) << client.out();
    client.close_stdin();  // end of input: linger 1 s, disconnect, exit 0
    ASSERT_TRUE(client.wait_for(20s));
    EXPECT_EQ(client.exit_code(), 0) << client.out() << client.err();
    EXPECT_TRUE(has(client.out(), "status: disconnecting")) << client.out();
    EXPECT_TRUE(has(client.out(), "status: disconnected (disconnected)\n")) << client.out();
    EXPECT_EQ(client.err(), "");
    server.stop();
}

TEST(Interactive, BadArgumentsAreOneLineAndStatusTwo) {
    Scratch s;
    const auto run = [&](std::vector<std::string> args) {
        args.insert(args.begin(), kClientTool);
        Process p(args, s.log("bad"));
        EXPECT_TRUE(p.wait_for(10s));
        return Ran{p.exit_code(), p.out(), p.err()};
    };
    struct Case {
        std::vector<std::string> args;
        int status;
        std::string what;
    };
    const std::string bad_token = (s.dir / "bad.hex").string();
    std::ofstream(bad_token) << "abcd\n";
    for (const Case& c : std::vector<Case>{
             {{"--interactive"}, 2, "--token: missing"},
             {{"--interactive", "--token", "t", "--server", "127.0.0.1:1"}, 2, "--token: the token names its servers"},
             {{"--interactive", "--server", "127.0.0.1:1", "--key", s.key_file}, 2, "--protocol-id: missing"},
             {{"--interactive", "--token", "-"}, 2, "--token: want a file"},
             {{"--interactive", "--token", bad_token}, 2, "is not a connect token: 4 hex digits"},
             {{"--interactive", "--token", (s.dir / "nope").string()}, 1, "cannot read"},
             {{"--no-huge", "--", "--interactive", "--token", bad_token}, 2, "takes no EAL arguments"},
         }) {
        const Ran r = run(c.args);
        EXPECT_EQ(r.status, c.status) << c.what << ": " << r.err;
        EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
        EXPECT_TRUE(has(r.err, "pomelo-client: ") && has(r.err, c.what)) << r.err;
        EXPECT_EQ(r.out, "");
    }
}

}  // namespace
}  // namespace pomelo::test
