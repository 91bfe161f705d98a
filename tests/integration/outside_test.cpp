// The real pomelo-server tried from outside, as an independent peer would (issue 8): clients
// in this process on kernel UDP sockets (our client state machine, or raw bytes), every reply
// opened with an independent libsodium decoder (tests/support/independent.hpp).
//  - a full server's DENIED authenticates under the refused token's key (§12.9);
//  - the per-source rate limit gives one reply per interval (§12.11);
//  - restart safety (§9): a token that produced a connection never produces a second one,
//    across a SIGTERM and a restart with the same key and port, so no (key, sequence) pair
//    carries two plaintexts.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <filesystem>
#include <fstream>
#include <map>

#include "protocol/client/client.hpp"
#include "protocol/wire/connect_token.hpp"
#include "protocol/wire/request.hpp"
#include "tests/integration/process.hpp"
#include "tools/common/cli.hpp"
#include "tests/support/independent_peer.hpp"

namespace pomelo::test {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

const std::string kServer = POMELO_SERVER_BIN, kToken = POMELO_TOKEN_BIN;
constexpr uint64_t kProtocolId = 0x5e57a27;

uint64_t mono_ns() {
    return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                     std::chrono::steady_clock::now().time_since_epoch())
                                     .count());
}
uint64_t unix_ms() {
    return static_cast<uint64_t>(
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
            .count());
}
Now now() { return {mono_ns(), unix_ms()}; }

// The key file as pomelo-server reads it (tools/common/cli).
crypto::Key read_key(const std::string& path) { return cli::load_key_file("--key", path); }

// Our client state machine over a kernel UDP socket on 127.0.0.1.
struct UdpClient final : ImmediateOutbox, client::Events {
    int fd = -1;
    wire::Address server;
    client::Client client{client::Config{}, *this, *this};
    std::vector<std::vector<uint8_t>> received;  // every datagram from the server, as it came
    uint64_t echoed = 0;
    bool connected = false, ended = false;

    explicit UdpClient(const wire::Address& s) : server(s) {
        fd = ::socket(AF_INET, SOCK_DGRAM, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    }
    ~UdpClient() override { ::close(fd); }
    void transmit(const wire::Address& to, std::span<const uint8_t> d, wire::PacketType) override {
        sockaddr_in a{};
        a.sin_family = AF_INET;
        std::memcpy(&a.sin_addr, to.ip.data(), 4);
        a.sin_port = htons(to.port);
        ::sendto(fd, d.data(), d.size(), 0, reinterpret_cast<sockaddr*>(&a), sizeof a);
    }
    void on_connected(int64_t) override { connected = true; }
    void on_payload(std::span<const uint8_t>) override { ++echoed; }
    void on_disconnected(client::Outcome) override { ended = true; }

    // Runs until `done` or the client ended; bounded by `limit` of steps of <= 10 ms.
    template <class Done>
    void run(Done done, int limit = 1000) {
        for (int i = 0; i < limit && !done() && !ended; ++i) {
            pollfd p{fd, POLLIN, 0};
            ::poll(&p, 1, 10);
            uint8_t buf[2048];
            for (;;) {
                const ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
                if (n <= 0) break;
                received.emplace_back(buf, buf + n);
                std::vector<uint8_t> copy(buf, buf + n);
                client.receive(copy, server, now());
            }
            client.update(now());
        }
    }
};

struct Server {
    std::unique_ptr<Process> p;
    Server(const fs::path& dir, const std::string& key, uint16_t port, const std::string& journal, int run,
           std::vector<std::string> extra = {}) {
        std::vector<std::string> args{kServer, "--no-huge", "--no-pci", "-m", "256", "--file-prefix",
                                      "pomelo-it-outside-" + std::to_string(::getpid()), "--log-level", "error", "--",
                                      "--driver", "socket", "--bind", "127.0.0.1:" + std::to_string(port),
                                      "--protocol-id", std::to_string(kProtocolId), "--key", key, "--token-journal",
                                      journal, "--stats-interval", "0"};
        args.insert(args.end(), extra.begin(), extra.end());
        p = std::make_unique<Process>(args, (dir / ("server" + std::to_string(run))).string());
        EXPECT_TRUE(p->wait_output("serving", 30s)) << p->err();
    }
    void stop() {
        p->signal(SIGTERM);
        EXPECT_TRUE(p->wait_for(30s));
        EXPECT_EQ(p->exit_code(), 0) << p->err();
    }
};

// A scratch directory with a server key, a port and a journal path; removed on success.
struct Scratch {
    fs::path dir = fs::temp_directory_path() / ("pomelo-it-outside-" + std::to_string(::getpid()) + "-" +
                                                testing::UnitTest::GetInstance()->current_test_info()->name());
    std::string key_file = (dir / "server.key").string();
    std::string journal = (dir / "tokens.journal").string();
    uint16_t port = static_cast<uint16_t>(45000 + (::getpid() % 500) * 4 + counter()++);
    wire::Address server_address = *wire::Address::parse("127.0.0.1:" + std::to_string(port));
    crypto::Key key;

    static int& counter() {
        static int n = 0;
        return n;
    }
    Scratch() {
        fs::remove_all(dir);
        fs::create_directories(dir);
        Process keygen({kToken, "keygen", "-o", key_file}, (dir / "keygen").string());
        EXPECT_TRUE(keygen.wait_for(10s));
        EXPECT_EQ(keygen.exit_code(), 0);
        key = read_key(key_file);
    }
    ~Scratch() {
        if (!testing::Test::HasFailure()) fs::remove_all(dir);
    }
    // A token for this server: 10 minutes of life, timeout 5 s.
    std::array<uint8_t, wire::kConnectTokenSize> mint(int64_t client_id, wire::TokenSpec& spec) const {
        spec.protocol_id = kProtocolId;
        spec.create_ms = unix_ms();
        spec.expire_ms = spec.create_ms + 600'000;
        crypto::random_bytes(spec.nonce.data(), spec.nonce.size());
        spec.private_part.client_id = client_id;
        spec.private_part.timeout_seconds = 5;
        spec.private_part.addresses.push(server_address);
        spec.private_part.client_to_server_key = crypto::Key::random();
        spec.private_part.server_to_client_key = crypto::Key::random();
        std::array<uint8_t, wire::kConnectTokenSize> token{};
        EXPECT_EQ(wire::mint_connect_token(spec, key, token), wire::WireError::ok);
        return token;
    }
};

// `--max-clients 1`, one client connected: every further valid REQUEST gets a DENIED that
// opens under the refused token's server-to-client key with the real protocol id, and the
// refused client ends `denied` (the landed engine's DENIED opened under no key: the refused
// client ended request_timed_out).
TEST(FromOutside, AFullServersDeniedAuthenticatesAndTheClientEndsDenied) {
    Scratch sc;
    Server s(sc.dir, sc.key_file, sc.port, sc.journal, 1, {"--max-clients", "1"});
    wire::TokenSpec first_spec;
    UdpClient first(sc.server_address);
    ASSERT_TRUE(first.client.connect(sc.mint(1, first_spec), now()));
    first.run([&] { return first.connected; });
    ASSERT_TRUE(first.connected);
    for (int i = 0; i < 3; ++i) {
        wire::TokenSpec spec;
        UdpClient refused(sc.server_address);
        ASSERT_TRUE(refused.client.connect(sc.mint(10 + i, spec), now()));
        refused.run([] { return false; }, 600);  // ends by itself: denied, or the 5 s timeout
        EXPECT_EQ(refused.client.outcome(), client::Outcome::denied) << "refused client " << i;
        size_t denied = 0;
        for (const auto& d : refused.received) {
            const auto o = indep::open(d, spec.private_part.server_to_client_key.bytes,
                                             kProtocolId);
            denied += o && o->type == 1;
        }
        EXPECT_GE(denied, 1u) << "no DENIED opened under the token's key";
        first.run([] { return false; }, 5);  // keep the first connection alive
    }
    s.stop();
}

// 20 identical valid REQUESTs back to back from one socket, 10 rounds 250 ms apart: exactly
// one CHALLENGE per round (the landed engine answered [20, 11, 5, 3, 11, 20, ...]).
TEST(FromOutside, TheRateLimitGivesOneReplyPerRoundPerSource) {
    Scratch sc;
    Server s(sc.dir, sc.key_file, sc.port, sc.journal, 1);
    wire::TokenSpec spec;
    const auto token = sc.mint(77, spec);
    wire::ConnectToken parsed;
    ASSERT_EQ(wire::decode_connect_token(token, parsed), wire::WireError::ok);
    std::vector<uint8_t> request(wire::kRequestSize);
    ASSERT_EQ(wire::write_request(parsed, request), request.size());
    UdpClient raw(sc.server_address);
    std::vector<size_t> per_round;
    for (int round = 0; round < 10; ++round) {
        raw.received.clear();
        for (int i = 0; i < 20; ++i) raw.transmit(sc.server_address, request, wire::PacketType::request);
        // Collect replies for 250 ms (the server answers within microseconds; the count, not
        // the time, is what is checked).
        const uint64_t until = mono_ns() + 250'000'000;
        while (mono_ns() < until) {
            pollfd p{raw.fd, POLLIN, 0};
            ::poll(&p, 1, 10);
            uint8_t buf[2048];
            ssize_t n;
            while ((n = ::recv(raw.fd, buf, sizeof buf, MSG_DONTWAIT)) > 0) raw.received.emplace_back(buf, buf + n);
        }
        size_t challenges = 0;
        for (const auto& d : raw.received) {
            const auto o = indep::open(d, spec.private_part.server_to_client_key.bytes,
                                             kProtocolId);
            challenges += o && o->type == 2;
        }
        per_round.push_back(challenges);
    }
    EXPECT_EQ(per_round, std::vector<size_t>(10, 1));
    s.stop();
}

TEST(FromOutside, AfterARestartAConnectedTokenNeverConnectsAgainAndNoNonceRepeats) {
    Scratch sc;
    const fs::path& dir = sc.dir;
    const std::string& key_file = sc.key_file;
    const uint16_t port = sc.port;
    const wire::Address server_address = sc.server_address;
    const std::string journal = sc.journal;
    wire::TokenSpec spec;
    const auto token = sc.mint(4242, spec);

    std::vector<std::vector<uint8_t>> all;  // every datagram received, both runs
    {
        Server s(dir, key_file, port, journal, 1);
        UdpClient c(server_address);
        ASSERT_TRUE(c.client.connect(token, now()));
        c.run([&] { return c.connected; });
        ASSERT_TRUE(c.connected) << "first connection with T";
        std::vector<uint8_t> payload(64);
        for (int i = 0; i < 20; ++i) {
            payload[0] = static_cast<uint8_t>(i);
            ASSERT_TRUE(c.client.send(payload, now()));
            c.run([&] { return c.echoed > static_cast<uint64_t>(i); }, 200);
        }
        EXPECT_EQ(c.echoed, 20u);
        all.insert(all.end(), c.received.begin(), c.received.end());
        // SIGKILL mid-connection: nothing written at a clean exit can help; the token is on
        // disk only if it was journaled before the connection started.
        s.p->signal(SIGKILL);
        ASSERT_TRUE(s.p->wait_for(30s));
    }
    {
        Server s(dir, key_file, port, journal, 2);  // same key, same port, same journal
        UdpClient c(server_address);
        ASSERT_TRUE(c.client.connect(token, now()));
        c.run([&] { return c.connected; }, 600);  // request phase: 5 s token timeout bounds it
        EXPECT_FALSE(c.connected) << "T connected again after the restart";
        size_t challenges = 0;
        for (const auto& d : c.received) {
            const auto o = indep::open(d, spec.private_part.server_to_client_key.bytes,
                                             kProtocolId);
            challenges += o && o->type == 2;
        }
        EXPECT_EQ(challenges, 0u) << "the restarted server answered T's REQUEST";
        EXPECT_EQ(c.client.outcome(), client::Outcome::request_timed_out);
        all.insert(all.end(), c.received.begin(), c.received.end());
        s.stop();
    }

    // Independent check: (s2c key, sequence) -> plaintext, over both runs.
    std::map<uint64_t, std::vector<uint8_t>> seen;
    size_t opened = 0, repeats = 0;
    const indep::Key& s2c = spec.private_part.server_to_client_key.bytes;
    for (const auto& d : all) {
        const auto o = indep::open(d, s2c, kProtocolId);
        if (!o) continue;
        ++opened;
        std::vector<uint8_t> plain = o->body;
        plain.insert(plain.begin(), static_cast<uint8_t>(o->type));
        auto [it, fresh] = seen.emplace(o->sequence, plain);
        if (!fresh && it->second != plain) ++repeats;
    }
    EXPECT_GE(opened, 20u) << "the first run's echoes opened under T's key";
    EXPECT_EQ(repeats, 0u) << "a (key, sequence) pair carried two different plaintexts";
}

}  // namespace
}  // namespace pomelo::test
