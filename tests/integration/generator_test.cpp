// The load generator's modes against a real pomelo-server over net_memif, at a modest load:
// blast below capacity loses nothing and its sampled echoes verify; the capacity search
// reports a capacity; connect-storm connects every client of every round; a flood's datagrams
// show up in the server's drop counters under the reason each kind must get, one for one,
// while the legitimate clients lose nothing; soak churns over an impaired link and the
// server's counts agree; a server that corrupts echoes fails the run.
#include <gtest/gtest.h>

#include <fstream>

#include "tests/integration/harness.hpp"

namespace pomelo::test {
namespace {

// A memif server and the generator's EAL and port arguments to reach it.
struct MemifPair {
    Scratch& s;
    int n = ++count();  // several pairs in one test, one after the other
    std::string srv = prefix("srv" + std::to_string(n)), cli = prefix("cli" + std::to_string(n));
    std::string sock = (s.dir / ("memif" + std::to_string(n) + ".sock")).string();
    static int& count() {
        static int c = 0;
        return c;
    }
    std::unique_ptr<Process> server;

    explicit MemifPair(Scratch& scratch, std::vector<std::string> extra = {}) : s(scratch) {
        std::vector<std::string> ours = {"--driver", "ethdev", "--bind", "198.18.0.1:40000", "--protocol-id", "0x7070",
                                         "--key", s.key, "--stats-interval", "1"};
        ours.insert(ours.end(), extra.begin(), extra.end());
        server = std::make_unique<Process>(
            server_args(srv, {"-l", "0-1", "--vdev", "net_memif0,role=server,socket=" + sock + ",mac=02:00:00:00:00:01"},
                        ours),
            s.log("server"));
        EXPECT_TRUE(server->wait_output("pomelo-server: serving", 20s)) << server->out() << server->err();
    }
    // With `gateway_mac` false the generator finds the server's MAC itself (ARP).
    std::vector<std::string> client(std::vector<std::string> ours, bool gateway_mac = true) const {
        std::vector<std::string> a = {kClient, "--no-huge", "--no-pci", "-m", "512", "--file-prefix", cli,
                                      "--log-level", "error", "-l", "0", "--vdev",
                                      "net_memif0,role=client,socket=" + sock + ",mac=02:00:00:00:00:02,rsize=12", "--",
                                      "--driver", "ethdev", "--server", "198.18.0.1:40000", "--bind", "198.18.1.1",
                                      "--key", s.key, "--protocol-id", "0x7070", "--quiet"};
        if (gateway_mac) a.insert(a.end(), {"--gateway-mac", "02:00:00:00:00:01"});
        a.insert(a.end(), ours.begin(), ours.end());
        return a;
    }
    void stop() {
        server->signal(SIGTERM);
        ASSERT_TRUE(server->wait_for(15s));
        EXPECT_EQ(server->exit_code(), 0) << server->err();
    }
};

json read_json(const std::string& path) {
    std::ifstream f(path);
    try {
        return json::parse(f);
    } catch (...) {
        ADD_FAILURE() << "no JSON in " << path;
        return json::object();
    }
}

// Polls a telemetry command until pred holds (the server's snapshot is refreshed every second).
std::optional<json> wait_stats(const std::string& file_prefix, const std::string& command,
                               const std::function<bool(const json&)>& pred) {
    std::optional<json> last;
    for (int i = 0; i < 50; ++i) {
        last = stats(file_prefix, command);
        if (last && pred(*last)) return last;
        std::this_thread::sleep_for(200ms);
    }
    return last;
}

TEST(Generator, BlastBelowCapacityLosesNothing) {
    Scratch s;
    MemifPair m(s);
    const std::string out = s.log("blast.json");
    Process client(m.client({"--mode", "blast", "--clients", "20", "--blast-rate", "20000", "--trial", "1",
                             "--verify-every", "4", "--json", out}),
                   s.log("client"));
    ASSERT_TRUE(client.wait_for(60s));
    EXPECT_EQ(client.exit_code(), 0) << client.out() << client.err();
    json r = read_json(out);
    EXPECT_EQ(r["clients"]["connected"], 20);
    EXPECT_EQ(r["clients"]["ended_by_outcome"]["disconnected"], 20);
    EXPECT_EQ(r["blast"]["sent"], 20000);
    EXPECT_EQ(r["blast"]["echoed"], 20000);
    EXPECT_EQ(r["blast"]["lost"], 0);
    EXPECT_EQ(r["blast"]["mismatched"], 0);
    EXPECT_EQ(r["blast"]["verified"], 5000);  // one in four, every one byte-identical
    EXPECT_TRUE(r["ok"].get<bool>());
    // The server received and echoed exactly those payloads.
    auto packets = wait_stats(m.srv, "packets", [](const json& p) { return p["rx_payload"] == 20000; });
    ASSERT_TRUE(packets);
    EXPECT_EQ((*packets)["rx_payload"], 20000);
    EXPECT_EQ((*packets)["tx_payload"], 20000);
    auto drops = stats(m.srv, "drops");
    ASSERT_TRUE(drops);
    EXPECT_EQ((*drops)["replayed"], 0);
    EXPECT_EQ((*drops)["auth_failed"], 0);
    m.stop();
}

// No --gateway-mac: the generator asks for the server's MAC by ARP, the server's port
// answers, and the echo run is as clean as with the MAC given.
TEST(Generator, EchoWithoutAGatewayMacResolvesTheServerByArp) {
    Scratch s;
    MemifPair m(s);
    const std::string out = s.log("echo.json");
    Process client(m.client({"--clients", "20", "--payloads", "20", "--json", out}, false), s.log("client"));
    ASSERT_TRUE(client.wait_for(60s));
    EXPECT_EQ(client.exit_code(), 0) << client.out() << client.err();
    json r = read_json(out);
    EXPECT_EQ(r["clients"]["connected"], 20);
    EXPECT_EQ(r["payloads"]["echoed"], 400);
    EXPECT_EQ(r["port"]["arp_requests"], 1);
    EXPECT_EQ(r["port"]["neighbours_resolved"], 1);
    EXPECT_EQ(r["port"]["neighbours_failed"], 0);
    EXPECT_EQ(r["port"]["neighbours_unsolicited"], 0);
    EXPECT_TRUE(r["ok"].get<bool>());
    auto packets = wait_stats(m.srv, "packets", [](const json& p) { return p["port_arp_replies"] >= 1; });
    ASSERT_TRUE(packets);
    EXPECT_EQ((*packets)["port_arp_replies"], 1);
    m.stop();
}

TEST(Generator, CapacitySearchFindsALosslessRate) {
    Scratch s;
    MemifPair m(s);
    const std::string out = s.log("capacity.json");
    Process client(m.client({"--mode", "blast", "--clients", "10", "--trial", "0.1", "--max-rate", "1600000",
                             "--json", out}),
                   s.log("client"));
    ASSERT_TRUE(client.wait_for(120s));
    EXPECT_EQ(client.exit_code(), 0) << client.out() << client.err();
    json r = read_json(out);
    ASSERT_TRUE(r.contains("blast")) << r.dump();
    const double capacity = r["blast"]["capacity_pps"].get<double>();
    EXPECT_GT(capacity, 0);
    // The capacity is a rate some trial sent with nothing lost (a loss counts only when the
    // rate's second trial loses too), and no lower rate lost twice in a row.
    bool seen = false;
    for (const json& t : r["blast"]["trials"])
        seen |= t["lost"] == 0 && t["sent_pps"].get<double>() >= 0.97 * capacity &&
                t["offered_pps"].get<double>() <= capacity * 1.04;
    EXPECT_TRUE(seen) << r["blast"].dump();
    EXPECT_GT(r["blast"]["generator_max_pps"].get<double>(), capacity);
    EXPECT_EQ(r["blast"]["mismatched"], 0);
    EXPECT_GT(r["blast"]["verified"].get<uint64_t>(), 0u);
    m.stop();
}

TEST(Generator, StormConnectsEveryRound) {
    Scratch s;
    MemifPair m(s);
    const std::string out = s.log("storm.json");
    Process client(m.client({"--mode", "connect-storm", "--clients", "200", "--duration", "2", "--json", out}),
                   s.log("client"));
    ASSERT_TRUE(client.wait_for(60s));
    EXPECT_EQ(client.exit_code(), 0) << client.out() << client.err();
    json r = read_json(out);
    const int rounds = r["storm"]["rounds"].get<int>();
    EXPECT_GE(rounds, 1);
    EXPECT_EQ(r["storm"]["handshakes"], rounds * 200);
    EXPECT_EQ(r["clients"]["ended_by_outcome"]["disconnected"], rounds * 200);
    EXPECT_GT(r["storm"]["handshakes_per_s"].get<double>(), 0);
    EXPECT_GT(r["storm"]["setup_ns"]["p99"].get<uint64_t>(), 0u);
    auto summary = wait_stats(m.srv, "summary", [&](const json& j) {
        return j["connections_accepted"] == rounds * 200 && j["peers_connected"] == 0;
    });
    ASSERT_TRUE(summary);
    EXPECT_EQ((*summary)["connections_accepted"], rounds * 200);
    m.stop();
}

TEST(Generator, FloodDropsOneForOneClientsUnharmed) {
    Scratch s;
    MemifPair m(s);
    const std::string out = s.log("flood.json");
    Process client(m.client({"--mode", "flood", "--clients", "10", "--payloads", "600", "--rate", "200",
                             "--flood-rate", "2000", "--flood-sources", "64", "--json", out}),
                   s.log("client"));
    ASSERT_TRUE(client.wait_for(60s));
    EXPECT_EQ(client.exit_code(), 0) << client.out() << client.err();
    json r = read_json(out);
    // The legitimate clients: all connected, every echo back and identical, clean ends.
    EXPECT_EQ(r["clients"]["connected"], 10);
    EXPECT_EQ(r["payloads"]["echoed"], 6000);
    EXPECT_EQ(r["payloads"]["lost"], 0);
    EXPECT_EQ(r["payloads"]["mismatched"], 0);
    EXPECT_EQ(r["clients"]["ended_by_outcome"]["disconnected"], 10);
    const json& k = r["flood"]["sent_by_kind"];
    for (const char* kind : {"forged_request", "expired_request", "replayed_token", "junk", "spoofed_sequence"})
        EXPECT_GT(k[kind].get<uint64_t>(), 100u) << kind;
    const uint64_t junk = k["junk"], expired = k["expired_request"], replayed = k["replayed_token"],
                   forged = k["forged_request"], spoofed = k["spoofed_sequence"];
    auto drops = wait_stats(m.srv, "drops", [&](const json& d) {
        return d["bad_packet_type"] == junk && d["auth_failed"] == forged + spoofed;
    });
    ASSERT_TRUE(drops);
    SCOPED_TRACE(drops->dump());
    EXPECT_EQ((*drops)["bad_packet_type"], junk);
    EXPECT_EQ((*drops)["token_expired"], expired);
    EXPECT_EQ((*drops)["token_in_use"], replayed - 1);  // the first copy connects its source's handshake
    EXPECT_EQ((*drops)["auth_failed"], forged + spoofed);
    EXPECT_EQ((*drops)["replayed"], 0);
    EXPECT_EQ((*drops)["rate_limited"], 0);
    EXPECT_EQ((*drops)["control_ring_full"], 0);
    auto packets = stats(m.srv, "packets");
    ASSERT_TRUE(packets);
    EXPECT_EQ((*packets)["rx_payload"], 6000);
    m.stop();
}

// Soak over the generator's impaired link: sessions churn (disconnect, vanish, reconnect),
// every client is served, no echo differs or comes twice, and the server's own counts agree:
// every session it accepted closed, the vanished ones by timing out.
TEST(Generator, SoakChurnsThroughAnImpairedLink) {
    Scratch s;
    MemifPair m(s);
    const std::string out = s.log("soak.json");
    Process client(m.client({"--mode", "soak", "--clients", "20", "--payloads", "20", "--rate", "50", "--timeout", "2",
                             "--duration", "6", "--impair", "loss=5%,dup=5%,reorder=5%,delay=1ms,jitter=1ms",
                             "--json", out}),
                   s.log("client"));
    ASSERT_TRUE(client.wait_for(60s));
    EXPECT_EQ(client.exit_code(), 0) << client.out() << client.err();
    json r = read_json(out);
    SCOPED_TRACE(r.dump());
    EXPECT_TRUE(r["ok"].get<bool>());
    const json& soak = r["soak"];
    EXPECT_EQ(soak["clients_served"], 20);
    EXPECT_GT(soak["vanished"].get<int>(), 0);
    EXPECT_GT(soak["disconnected"].get<int>(), 20);  // more sessions than clients: they reconnected
    EXPECT_EQ(soak["ended_otherwise"], 0);
    EXPECT_EQ(r["clients"]["failed"], 0);
    EXPECT_EQ(r["payloads"]["mismatched"], 0);
    EXPECT_EQ(r["payloads"]["duplicated"], 0);  // duplicated datagrams stopped by replay protection
    EXPECT_GT(r["payloads"]["lost"].get<uint64_t>(), 0u);
    for (const char* dir : {"tx", "rx"})
        for (const char* what : {"lost", "duplicated", "reordered"})
            EXPECT_GT(r["impairment"][dir][what].get<uint64_t>(), 0u) << dir << " " << what;
    const int connected = soak["connected"], aborted = r["clients"]["aborted"], vanished = soak["vanished"];
    auto summary = wait_stats(m.srv, "summary", [](const json& j) {
        return j["peers_connected"] == 0 && j["peers_unconfirmed"] == 0 && j["peers_disconnecting"] == 0;
    });
    ASSERT_TRUE(summary);
    SCOPED_TRACE(summary->dump());
    const int accepted = (*summary)["connections_accepted"];
    EXPECT_GE(accepted, connected);
    EXPECT_LE(accepted, connected + aborted);  // one accepted as the generator stopped is timed out
    EXPECT_EQ((*summary)["peers_connected"], 0);
    EXPECT_GE((*summary)["closed_timed_out"].get<int>(), vanished);
    EXPECT_EQ((*summary)["closed_client_disconnected"].get<int>() + (*summary)["closed_timed_out"].get<int>(), accepted);
    m.stop();
}

TEST(Generator, AServerThatCorruptsEchoesFailsTheRun) {
    Scratch s;
    {
        MemifPair m(s, {"--app", "corrupt-echo"});
        const std::string out = s.log("echo.json");
        Process client(m.client({"--clients", "5", "--payloads", "400", "--json", out}), s.log("echo"));
        ASSERT_TRUE(client.wait_for(60s));
        EXPECT_EQ(client.exit_code(), 1) << client.out() << client.err();
        json r = read_json(out);
        EXPECT_EQ(r["payloads"]["mismatched"], 4);  // every 500th of 2000
        EXPECT_FALSE(r["ok"].get<bool>());
        m.stop();
    }
    {
        MemifPair m(s, {"--app", "corrupt-echo"});  // a fresh count of echoes
        const std::string out = s.log("blast.json");
        Process client(m.client({"--mode", "blast", "--clients", "5", "--blast-rate", "10000", "--trial", "0.2",
                                 "--verify-every", "1", "--json", out}),
                       s.log("blast"));
        ASSERT_TRUE(client.wait_for(60s));
        EXPECT_EQ(client.exit_code(), 1) << client.out() << client.err();
        json r = read_json(out);
        EXPECT_EQ(r["blast"]["mismatched"], 4);  // 2000 payloads, the server flipped every 500th
        EXPECT_FALSE(r["ok"].get<bool>());
        m.stop();
    }
    {
        MemifPair m(s, {"--app", "corrupt-echo"});
        const std::string out = s.log("soak.json");
        Process client(m.client({"--mode", "soak", "--clients", "5", "--payloads", "100", "--rate", "500",
                                 "--vanish-every", "0", "--duration", "2", "--json", out}),
                       s.log("soak"));
        ASSERT_TRUE(client.wait_for(60s));
        EXPECT_EQ(client.exit_code(), 1) << client.out() << client.err();
        json r = read_json(out);
        EXPECT_GE(r["payloads"]["mismatched"].get<int>(), 1);  // thousands of payloads, every 500th flipped
        EXPECT_FALSE(r["ok"].get<bool>());
        m.stop();
    }
}

}  // namespace
}  // namespace pomelo::test
