// Operations through the real processes (issue 10): pomelo-server on kernel UDP sockets with
// the load generator as its clients, administered over DPDK telemetry with pomelo-stats.
//  - the connection log: one line per connect, deny and disconnect with its reason, and its
//    rate limit, which counts every line it leaves out;
//  - /pomelo/peers (address, client id, worker, state, RTT; pages of 64) and
//    /pomelo/disconnect (the client ends "disconnected by server", the log says so);
//  - key rotation: --key repeated, tokens under every listed key connect, others do not; the
//    default token journal keeps the first key's name and the other keys' journals are read.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <regex>
#include <set>

#include "tests/integration/process.hpp"
#include "tools/common/cli.hpp"

namespace pomelo::test {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
namespace fs = std::filesystem;

const std::string kServer = POMELO_SERVER_BIN, kClient = POMELO_CLIENT_BIN, kToken = POMELO_TOKEN_BIN,
                  kStats = POMELO_STATS_BIN;
constexpr const char* kProtocolId = "0x0b5";

std::string test_name() { return testing::UnitTest::GetInstance()->current_test_info()->name(); }

// A scratch directory with server keys, removed when the test passed.
struct Scratch {
    fs::path dir = fs::temp_directory_path() / ("pomelo-it-ops-" + std::to_string(::getpid()) + "-" + test_name());
    Scratch() {
        fs::remove_all(dir);
        fs::create_directories(dir);
    }
    ~Scratch() {
        if (!testing::Test::HasFailure()) fs::remove_all(dir);
    }
    std::string path(const std::string& name) const { return (dir / name).string(); }
    std::string key(const std::string& name) const {
        const std::string file = path(name + ".key");
        if (!fs::exists(file)) {
            Process keygen({kToken, "keygen", "-o", file}, path("keygen-" + name));
            EXPECT_TRUE(keygen.wait_for(10s));
            EXPECT_EQ(keygen.exit_code(), 0);
        }
        return file;
    }
};

// pomelo-server on 127.0.0.1, a port the kernel picks, EAL lcores 0@0,1@1,2@1 (two workers
// fit on two CPUs). `address` is what it serves once "serving" was printed.
struct Server {
    std::string prefix = "pomelo-it-ops-" + std::to_string(::getpid()) + "-" + test_name();
    std::unique_ptr<Process> p;
    std::string address;

    Server(const Scratch& s, std::vector<std::string> ours, const std::string& log = "server",
           const std::string& bind = "127.0.0.1:0") {
        std::vector<std::string> a = {kServer, "--no-huge", "--no-pci", "-m", "256", "--file-prefix", prefix,
                                      "--log-level", "error", "--lcores", "0@0,1@1,2@1", "--", "--driver", "socket",
                                      "--bind", bind, "--protocol-id", kProtocolId, "--stats-interval", "0"};
        a.insert(a.end(), ours.begin(), ours.end());
        p = std::make_unique<Process>(a, s.path(log));
        if (!p->wait_output("pomelo-server: serving", 30s)) {
            ADD_FAILURE() << "server did not start:\n" << p->out() << p->err();
            return;
        }
        std::smatch m;
        const std::string out = p->out();
        if (std::regex_search(out, m, std::regex("serving (127\\.0\\.0\\.1:[0-9]+)"))) address = m[1];
    }
    // SIGTERM: every peer gets its DISCONNECTs, the log its last lines; exit 0.
    void stop() {
        p->signal(SIGTERM);
        ASSERT_TRUE(p->wait_for(30s));
        EXPECT_EQ(p->exit_code(), 0) << p->err();
    }
    std::vector<std::string> lines(const std::string& start) const {
        std::vector<std::string> out;
        std::istringstream in(p->out());
        for (std::string l; std::getline(in, l);)
            if (l.rfind(start, 0) == 0) out.push_back(l);
        return out;
    }

    // pomelo-stats --json COMMAND...: the answer's first command, or nullopt (with its stderr).
    std::optional<json> stats(const Scratch& s, std::vector<std::string> command, std::string* err = nullptr) const {
        std::vector<std::string> a = {kStats, "--file-prefix", prefix, "--json"};
        a.insert(a.end(), command.begin(), command.end());
        Process q(a, s.path("stats"));
        if (!q.wait_for(20s)) return std::nullopt;
        if (err) *err = q.err();
        if (q.exit_code() != 0) return std::nullopt;
        try {
            return json::parse(q.out())[command.front()];
        } catch (...) {
            return std::nullopt;
        }
    }
    // Polls `command` until pred holds; the last answer is left in `last`.
    bool wait_stats(const Scratch& s, std::vector<std::string> command, const std::function<bool(const json&)>& pred,
                    json* last = nullptr) const {
        for (int i = 0; i < 150; ++i) {
            if (auto j = stats(s, command); j && pred(*j)) {
                if (last) *last = *j;
                return true;
            }
            std::this_thread::sleep_for(200ms);
        }
        return false;
    }
};

// The load generator: `clients` clients from ephemeral ports, ids from `id_base`.
std::unique_ptr<Process> clients(const Scratch& s, const std::string& server, const std::string& key, int clients,
                                 int id_base, std::vector<std::string> extra, const std::string& log) {
    std::vector<std::string> a = {kClient, "--", "--server", server, "--key", key, "--protocol-id", kProtocolId,
                                  "--clients", std::to_string(clients), "--client-id-base", std::to_string(id_base),
                                  "--base-port", "0", "--json"};
    a.insert(a.end(), extra.begin(), extra.end());
    return std::make_unique<Process>(a, s.path(log));
}

json summary_of(const Process& p) {
    try {
        return json::parse(p.out());
    } catch (...) {
        ADD_FAILURE() << "client output is not JSON:\n" << p.out() << p.err();
        return json::object();
    }
}

// Client ids named in the log lines starting with `start`, with the rest of each line.
std::map<uint64_t, std::string> by_client(const std::vector<std::string>& lines, const std::string& start) {
    std::map<uint64_t, std::string> out;
    const std::regex re(start + " ([0-9]+) (.*)");
    for (const std::string& l : lines) {
        std::smatch m;
        if (std::regex_match(l, m, re)) out[std::stoull(m[1])] = m[2];
    }
    return out;
}

// 70 clients held connected on two workers: /pomelo/peers shows each once (address, worker,
// state, RTT) in pages of 64; a full server's refusals are logged as denies; a disconnect by
// telemetry ends that client "disconnected by server" and the log says so; the clients the
// generator stops say "client disconnected", and the killed ones time out.
TEST(Operations, PeersDisconnectAndTheConnectionLog) {
    Scratch s;
    const std::string key = s.key("server");
    Server server(s, {"--key", key, "--workers", "2", "--max-clients", "70", "--token-journal", s.path("tokens"),
                      "--log-rate", "1000000"});
    ASSERT_FALSE(server.address.empty());
    // Held: 5 payloads a second for a minute; the token timeout (3 s) ends them when killed.
    auto held = clients(s, server.address, key, 70, 1, {"--payloads", "300", "--rate", "5", "--duration", "60",
                                                         "--timeout", "3"}, "held");
    json page1;
    ASSERT_TRUE(server.wait_stats(s, {"peers"}, [](const json& j) {
        if (j["total"] != 70 || j["shown"] != 64) return false;
        for (auto& [k, v] : j.items())  // every shown peer connected and with an RTT sample
            if (v.is_object() && (v["state"] != "connected" || v["rtt_ns"].get<uint64_t>() == 0)) return false;
        return true;
    }, &page1)) << server.p->out();
    EXPECT_EQ(page1["next"], 65);
    std::set<int> workers;
    std::set<std::string> addresses;
    for (uint64_t id = 1; id <= 64; ++id) {
        const json& p = page1[std::to_string(id)];
        ASSERT_TRUE(p.is_object()) << "client " << id << " missing from " << page1.dump();
        EXPECT_EQ(p["client_id"], id);
        EXPECT_TRUE(std::regex_match(p["address"].get<std::string>(), std::regex("127\\.0\\.0\\.1:[0-9]+")));
        addresses.insert(p["address"].get<std::string>());
        workers.insert(p["worker"].get<int>());
    }
    EXPECT_EQ(addresses.size(), 64u);
    EXPECT_EQ(workers, (std::set<int>{0, 1})) << "70 clients by a keyed hash: both workers hold some";
    auto page2 = server.stats(s, {"peers", "65"});
    ASSERT_TRUE(page2);
    EXPECT_EQ((*page2)["shown"], 6) << page2->dump();  // 65..70
    EXPECT_FALSE(page2->contains("next"));
    for (uint64_t id = 65; id <= 70; ++id) EXPECT_TRUE(page2->contains(std::to_string(id))) << page2->dump();

    // The server is full: two more clients are denied, and each deny is logged.
    auto refused = clients(s, server.address, key, 2, 1000, {"--payloads", "1", "--timeout", "3"}, "refused");
    ASSERT_TRUE(refused->wait_for(60s));
    EXPECT_NE(refused->exit_code(), 0);
    EXPECT_EQ(summary_of(*refused)["clients"]["failed_by_outcome"]["denied"], 2) << refused->out();
    std::vector<std::string> denies;
    for (int i = 0; i < 100 && denies.size() < 2; ++i, std::this_thread::sleep_for(100ms))
        denies = server.lines("pomelo-server: deny ");
    ASSERT_GE(denies.size(), 2u) << server.p->out();
    for (const std::string& l : denies)
        EXPECT_TRUE(std::regex_match(l, std::regex("pomelo-server: deny 127\\.0\\.0\\.1:[0-9]+: server full \\(70 clients\\)")))
            << l;

    // Disconnect client 7 by telemetry: it is gone from the peers, its line says why.
    auto answer = server.stats(s, {"disconnect", "7"});
    ASSERT_TRUE(answer);
    EXPECT_EQ((*answer)["disconnected"], 1);
    EXPECT_EQ((*answer)["client_id"], 7);
    ASSERT_TRUE(server.wait_stats(s, {"peers", "7"}, [](const json& j) { return j["total"] == 69 && !j.contains("7"); }));
    answer = server.stats(s, {"disconnect", "7"});  // nobody has it now
    ASSERT_TRUE(answer);
    EXPECT_EQ((*answer)["disconnected"], 0);

    // The generator killed: no DISCONNECT, the server times the rest out (token timeout 3 s).
    held->signal(SIGKILL);
    ASSERT_TRUE(held->wait_for(10s));
    ASSERT_TRUE(server.wait_stats(s, {"summary"}, [](const json& j) { return j["peers_connected"] == 0; }));
    server.stop();

    const auto connects = by_client(server.lines("pomelo-server: connect client"), "pomelo-server: connect client");
    const auto disconnects =
        by_client(server.lines("pomelo-server: disconnect client"), "pomelo-server: disconnect client");
    EXPECT_EQ(connects.size(), 70u) << server.p->out();
    EXPECT_EQ(disconnects.size(), 70u) << server.p->out();
    for (uint64_t id = 1; id <= 70; ++id) {
        ASSERT_TRUE(connects.count(id)) << id;
        EXPECT_TRUE(std::regex_match(connects.at(id), std::regex("127\\.0\\.0\\.1:[0-9]+ \\(worker [01]\\)"))) << connects.at(id);
        ASSERT_TRUE(disconnects.count(id)) << id;
        // Same address and worker as at connect, then the reason.
        const std::string reason = id == 7 ? "disconnected by server" : "timed out";
        EXPECT_EQ(disconnects.at(id), connects.at(id) + ": " + reason);
    }
    EXPECT_TRUE(server.lines("pomelo-server: suppressed").empty());
}

// The generator's own graceful disconnects are logged "client disconnected"; with
// --log-rate 2 most of the 60 events are left out, and every one left out is counted.
TEST(Operations, TheLogRateLimitCountsEveryLineItLeavesOut) {
    Scratch s;
    const std::string key = s.key("server");
    Server server(s, {"--key", key, "--token-journal", s.path("tokens"), "--log-rate", "2"});
    ASSERT_FALSE(server.address.empty());
    auto run = clients(s, server.address, key, 30, 1, {"--payloads", "20"}, "clients");
    ASSERT_TRUE(run->wait_for(60s));
    EXPECT_EQ(run->exit_code(), 0) << run->out() << run->err();
    ASSERT_TRUE(server.wait_stats(s, {"summary"}, [](const json& j) {
        return j["connections_accepted"] == 30 && j["peers_connected"] == 0;
    }));
    server.stop();  // the last second's count is reported at the stop
    const auto printed = server.lines("pomelo-server: connect client").size() +
                         server.lines("pomelo-server: disconnect client").size();
    uint64_t suppressed = 0;
    const std::regex re("pomelo-server: suppressed ([0-9]+) connection log lines \\(more than 2 a second, or repeated denies\\)");
    for (const std::string& l : server.lines("pomelo-server: suppressed")) {
        std::smatch m;
        ASSERT_TRUE(std::regex_match(l, m, re)) << l;
        suppressed += std::stoull(m[1]);
    }
    EXPECT_EQ(printed + suppressed, 60u) << server.p->out();
    EXPECT_GT(suppressed, 0u) << "60 events in less than 30 s at 2 lines a second";
    for (const std::string& l : server.lines("pomelo-server: disconnect client"))
        EXPECT_NE(l.find(": client disconnected"), std::string::npos) << l;
}

// A client refused for its client id resends its REQUEST every 100 ms until its token's
// timeout: its denies are logged with the reason, at most one a second, the rest counted.
TEST(Operations, ARefusedClientsRetriesAreLoggedOnceASecond) {
    Scratch s;
    const std::string key = s.key("server");
    Server server(s, {"--key", key, "--token-journal", s.path("tokens")});
    ASSERT_FALSE(server.address.empty());
    auto held = clients(s, server.address, key, 1, 42, {"--payloads", "300", "--rate", "5", "--duration", "60"}, "held");
    ASSERT_TRUE(server.wait_stats(s, {"summary"}, [](const json& j) { return j["peers_connected"] == 1; }));
    auto twin = clients(s, server.address, key, 1, 42, {"--payloads", "1", "--timeout", "3"}, "twin");
    ASSERT_TRUE(twin->wait_for(60s));
    EXPECT_EQ(summary_of(*twin)["clients"]["connected"], 0) << twin->out();
    held->signal(SIGINT);
    ASSERT_TRUE(held->wait_for(30s));
    server.stop();
    const auto denies = server.lines("pomelo-server: deny ");
    ASSERT_GE(denies.size(), 1u) << server.p->out();
    EXPECT_LE(denies.size(), 5u) << "about 30 REQUESTs in 3 s, one line a second:\n" << server.p->out();
    for (const std::string& l : denies)
        EXPECT_TRUE(std::regex_match(l, std::regex("pomelo-server: deny 127\\.0\\.0\\.1:[0-9]+: client id already connected")))
            << l;
    EXPECT_FALSE(server.lines("pomelo-server: suppressed").empty()) << server.p->out();
}

// --key NEW --key OLD: tokens under either connect, under a third key none does; the default
// token journal ($STATE_DIRECTORY) is named after NEW and records both; OLD's journal, from
// before the rotation, is read at start (its live tokens stay refused) and left as it was.
TEST(Operations, KeyRotationAcceptsTokensUnderEveryListedKey) {
    Scratch s;
    const std::string old_key = s.key("old"), new_key = s.key("new"), other_key = s.key("other");
    const std::string state = s.path("state");
    ::setenv("STATE_DIRECTORY", state.c_str(), 1);
    struct Unset {
        ~Unset() { ::unsetenv("STATE_DIRECTORY"); }
    } unset;
    auto journal = [&](const std::string& key_file, const std::string& address) {
        std::string name = address;
        for (char& c : name)
            if (c == ':') c = '_';
        const std::string fingerprint = cli::key_fingerprint(cli::load_key_file("--key", key_file));
        return fs::path(state) / ("tokens-" + fingerprint + "-" + name);
    };

    // Before the rotation: OLD alone; three of its tokens connect (live for 300 s).
    std::string address;
    {
        Server before(s, {"--key", old_key}, "server-before");
        ASSERT_FALSE(before.address.empty());
        address = before.address;  // every server of this test serves this endpoint
        auto c = clients(s, address, old_key, 3, 1, {"--payloads", "10"}, "before");
        ASSERT_TRUE(c->wait_for(60s));
        EXPECT_EQ(c->exit_code(), 0) << c->out() << c->err();
        before.stop();
    }
    const fs::path old_journal = journal(old_key, address), new_journal = journal(new_key, address);
    ASSERT_TRUE(fs::exists(old_journal)) << old_journal;
    EXPECT_EQ(fs::file_size(old_journal), 3u * 24);

    {
        Server rotated(s, {"--key", new_key, "--key", old_key}, "server-rotated", address);
        ASSERT_FALSE(rotated.address.empty());
        auto under_new = clients(s, address, new_key, 4, 100, {"--payloads", "10"}, "new");
        auto under_old = clients(s, address, old_key, 4, 200, {"--payloads", "10"}, "old");
        auto under_other = clients(s, address, other_key, 2, 300, {"--payloads", "1", "--timeout", "2"}, "other");
        for (auto* c : {under_new.get(), under_old.get()}) {
            ASSERT_TRUE(c->wait_for(60s));
            EXPECT_EQ(c->exit_code(), 0) << c->out() << c->err();
            EXPECT_EQ(summary_of(*c)["clients"]["connected"], 4) << c->out();
        }
        ASSERT_TRUE(under_other->wait_for(60s));
        EXPECT_NE(under_other->exit_code(), 0);
        EXPECT_EQ(summary_of(*under_other)["clients"]["connected"], 0) << under_other->out();
        auto drops = rotated.stats(s, {"drops"});
        ASSERT_TRUE(drops);
        EXPECT_GE((*drops)["auth_failed"].get<int>(), 2) << "the third key's tokens open under neither key";
        rotated.stop();
    }
    ASSERT_TRUE(fs::exists(new_journal)) << "the default journal is named after the first --key";
    EXPECT_EQ(fs::file_size(new_journal), 8u * 24) << "both keys' tokens are journaled in it";
    EXPECT_EQ(fs::file_size(old_journal), 3u * 24) << "the other key's journal is only read";

    // Live tokens: 8 in NEW's journal, 3 in OLD's. A token history of 10 holds NEW's but not
    // both: listing OLD, the server refuses to start; without OLD it starts.
    auto start = [&](std::vector<std::string> keys, const std::string& log) {
        std::vector<std::string> a = {kServer, "--no-huge", "--no-pci", "-m", "256", "--file-prefix",
                                      "pomelo-it-ops-history-" + std::to_string(::getpid()), "--log-level", "error",
                                      "--", "--driver", "socket", "--bind", address, "--protocol-id", kProtocolId,
                                      "--token-history", "10", "--stats-interval", "0"};
        a.insert(a.end(), keys.begin(), keys.end());
        return std::make_unique<Process>(a, s.path(log));
    };
    auto refused = start({"--key", new_key, "--key", old_key}, "server-history-both");
    ASSERT_TRUE(refused->wait_for(30s));
    EXPECT_EQ(refused->exit_code(), 1);
    EXPECT_NE(refused->err().find(new_journal.string() +
                                  " and the other keys' journals hold more live tokens than the token history (10)"),
              std::string::npos)
        << refused->err();
    auto starts = start({"--key", new_key}, "server-history-new");
    ASSERT_TRUE(starts->wait_output("pomelo-server: serving", 30s)) << starts->err();
    starts->signal(SIGTERM);
    ASSERT_TRUE(starts->wait_for(30s));
    EXPECT_EQ(starts->exit_code(), 0);
}

// Bad administration arguments are one line and a non-zero exit, before anything starts.
TEST(Operations, BadOperationsArgumentsAreOneLine) {
    Scratch s;
    const std::string key = s.key("server");
    struct Case {
        std::vector<std::string> args;
        std::string says;
    };
    const Case cases[] = {
        {{"--metrics", "localhost:9464"}, "--metrics: 'localhost:9464' is not an address"},
        {{"--metrics", "127.0.0.1:99999"}, "--metrics: '127.0.0.1:99999' is not an address"},
        {{"--log-rate", "-1"}, "--log-rate: '-1' is not a number"},
        {{"--key", s.path("missing.key")}, "--key: cannot read"},
    };
    for (const Case& c : cases) {
        std::vector<std::string> a = {kServer, "--", "--driver", "socket", "--bind", "127.0.0.1:0", "--protocol-id",
                                      "1", "--key", key};
        a.insert(a.end(), c.args.begin(), c.args.end());
        Process p(a, s.path("bad"));
        ASSERT_TRUE(p.wait_for(30s));
        EXPECT_NE(p.exit_code(), 0);
        const std::string err = p.err();
        EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), 1) << err;
        EXPECT_NE(err.find(c.says), std::string::npos) << err;
    }
    Process stats({kStats, "--file-prefix", "x", "disconnect"}, s.path("stats"));
    ASSERT_TRUE(stats.wait_for(30s));
    EXPECT_EQ(stats.exit_code(), 2);
    EXPECT_NE(stats.err().find("disconnect: needs a value"), std::string::npos) << stats.err();
}

}  // namespace
}  // namespace pomelo::test
