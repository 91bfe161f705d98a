// One pomelo-server on one net_memif socket outlives a row of load generators (pomelo-client,
// the DPDK process at the other end), clean ones and ones SIGKILLed at random moments, and
// then still echoes everything. The short version of scripts/memif-lifetimes.sh (200).
//
// What it guards: when a memif peer leaves, DPDK 22.11's PMD unmaps the shared regions from
// its interrupt thread while the worker lcore may be inside rx_burst reading the ring; the
// server died with SIGSEGV about once in 65 killed generators before drivers/quiesce.hpp.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <filesystem>
#include <random>

#include "tests/integration/process.hpp"

namespace pomelo::test {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
namespace fs = std::filesystem;

const std::string kServer = POMELO_SERVER_BIN, kClient = POMELO_CLIENT_BIN, kToken = POMELO_TOKEN_BIN;

constexpr int kLifetimes = 16;

std::vector<std::string> eal(const std::string& file_prefix, const std::string& lcores, const std::string& vdev) {
    return {"--no-huge", "--no-pci", "-m", "256", "--file-prefix", file_prefix, "--log-level", "error",
            "-l", lcores, "--vdev", vdev};
}

TEST(MemifLifetimes, ServerOutlivesKilledGenerators) {
    const std::string tag = "pomelo-it-lt-" + std::to_string(::getpid());
    const fs::path dir = fs::temp_directory_path() / tag;
    fs::remove_all(dir);
    fs::create_directories(dir);
    const std::string key = (dir / "server.key").string(), sock = (dir / "memif.sock").string();
    {
        Process keygen({kToken, "keygen", "-o", key}, (dir / "keygen").string());
        ASSERT_TRUE(keygen.wait_for(30s));
        ASSERT_EQ(keygen.exit_code(), 0);
    }
    const std::string srv_prefix = tag + "-srv";
    std::vector<std::string> server_argv = {kServer};
    for (auto& a : eal(srv_prefix, "0-1", "net_memif0,role=server,socket=" + sock + ",mac=02:00:00:00:00:01"))
        server_argv.push_back(a);
    for (const char* a : {"--", "--driver", "ethdev", "--bind", "198.18.0.1:40000", "--protocol-id", "0x7171", "--key"})
        server_argv.emplace_back(a);
    server_argv.push_back(key);
    server_argv.push_back("--token-journal");
    server_argv.push_back((dir / "tokens").string());
    Process server(server_argv, (dir / "server").string());
    ASSERT_TRUE(server.wait_output("pomelo-server: serving", 30s)) << server.out() << server.err();

    // Generator i has its own file prefix, client ids and addresses: peers a killed one left
    // behind (they time out on the server) never collide with the next generator's.
    auto generator = [&](int i, int clients, int payloads) {
        std::vector<std::string> argv = {kClient};
        for (auto& a : eal(tag + "-cli-" + std::to_string(i), "0",
                           "net_memif0,role=client,socket=" + sock + ",mac=02:00:00:00:00:02,rsize=12"))
            argv.push_back(a);
        for (const std::string& a :
             {std::string("--"), std::string("--driver"), std::string("ethdev"), std::string("--gateway-mac"),
              std::string("02:00:00:00:00:01"), std::string("--server"), std::string("198.18.0.1:40000"),
              std::string("--bind"), "198.18.1." + std::to_string(i + 1), std::string("--client-id-base"),
              std::to_string(1 + i * 100), std::string("--key"), key, std::string("--protocol-id"),
              std::string("0x7171"), std::string("--clients"), std::to_string(clients), std::string("--payloads"),
              std::to_string(payloads), std::string("--size"), std::to_string(100 + 61 * i), std::string("--timeout"),
              std::string("5"), std::string("--json")})
            argv.push_back(a);
        return std::make_unique<Process>(argv, (dir / ("client-" + std::to_string(i))).string());
    };

    // Seeded: the same schedule every run. Every third lifetime is clean; the others are
    // killed early (EAL start, memif handshake, Pomelo handshake) or mid-echo.
    std::mt19937 rng(8);
    int killed = 0, clean = 0;
    for (int i = 1; i <= kLifetimes; ++i) {
        auto client = generator(i, 8, 1500);
        ASSERT_TRUE(client->started());
        if (i % 3 == 0) {
            ASSERT_TRUE(client->wait_for(120s));
            EXPECT_EQ(client->exit_code(), 0) << "lifetime " << i << ": " << client->out() << client->err();
            ++clean;
        } else {
            const int delay_ms = i % 3 == 1 ? static_cast<int>(rng() % 400) : 400 + static_cast<int>(rng() % 1200);
            std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
            client->signal(SIGKILL);
            ASSERT_TRUE(client->wait_for(30s));
            ++killed;
        }
        fs::remove_all("/var/run/dpdk/" + tag + "-cli-" + std::to_string(i));  // a killed one cannot
        // The peer's leaving is handled by the server's interrupt thread: give it the moment
        // it needs before looking (a crash shows as an exit whenever it comes).
        std::this_thread::sleep_for(200ms);
        server.wait_for(0ms);
        ASSERT_TRUE(server.running()) << "lifetime " << i << ": server exited with " << server.exit_code() << "\n"
                                      << server.err();
    }
    EXPECT_GE(killed, 8);
    EXPECT_GE(clean, 5);

    // Still serving: a last generator echoes everything byte-identical.
    auto last = generator(kLifetimes + 1, 10, 1000);
    ASSERT_TRUE(last->wait_for(120s));
    EXPECT_EQ(last->exit_code(), 0) << last->out() << last->err();
    json r;
    try {
        r = json::parse(last->out());
    } catch (...) {
        FAIL() << "client output is not JSON:\n" << last->out() << last->err();
    }
    EXPECT_EQ(r["payloads"]["echoed"], 10000);
    EXPECT_EQ(r["payloads"]["mismatched"], 0);
    EXPECT_EQ(r["clients"]["ended_by_outcome"]["disconnected"], 10);

    server.signal(SIGTERM);
    ASSERT_TRUE(server.wait_for(30s));
    EXPECT_EQ(server.exit_code(), 0) << server.err();
    fs::remove_all("/var/run/dpdk/" + tag + "-cli-" + std::to_string(kLifetimes + 1));
    fs::remove_all("/var/run/dpdk/" + srv_prefix);
    if (!testing::Test::HasFailure()) fs::remove_all(dir);
}

}  // namespace
}  // namespace pomelo::test
