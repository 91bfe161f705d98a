// The generator's impairment stage (engine/impair.hpp) between two real kernel-socket ports
// on loopback: what it loses, duplicates, delays and reorders, each datagram numbered so the
// receiver can tell.
#include <gtest/gtest.h>
#include <rte_mbuf.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <map>
#include <thread>
#include <vector>

#include "drivers/socket_port.hpp"
#include "engine/clock.hpp"
#include "engine/impair.hpp"
#include "tests/engine/test_support.hpp"

namespace pomelo::test {
namespace {

using engine::ImpairedPort;
using engine::ImpairmentConfig;

std::unique_ptr<drivers::Port> loopback(rte_mempool* pool) {
    drivers::SocketConfig c;
    c.local = {addr("127.0.0.1:0")};
    c.pool = pool;
    c.rcvbuf = c.sndbuf = 4 << 20;
    std::string error;
    auto port = drivers::open_socket_port(c, error);
    EXPECT_NE(port, nullptr) << error;
    return port;
}

// Datagram i carries i (u32) and the TSC-clock time it was sent (u64).
struct Stamp {
    uint32_t number;
    uint64_t sent_ns;
};

void send(drivers::Port& from, const drivers::Port& to, rte_mempool* pool, uint32_t first, uint32_t count,
          const engine::TscClock& clock) {
    for (uint32_t base = 0; base < count; base += 32) {
        rte_mbuf* pkts[32];
        wire::Address dst[32];
        const uint16_t n = static_cast<uint16_t>(std::min<uint32_t>(32, count - base));
        for (uint16_t j = 0; j < n; ++j) {
            pkts[j] = rte_pktmbuf_alloc(pool);
            ASSERT_NE(pkts[j], nullptr);
            const Stamp s{first + base + j, clock.ns()};
            std::memcpy(rte_pktmbuf_append(pkts[j], sizeof s), &s, sizeof s);
            dst[j] = to.local_addresses()[0];
        }
        EXPECT_EQ(from.tx_burst(0, pkts, dst, nullptr, n), n);
        std::this_thread::sleep_for(std::chrono::microseconds(200));  // no burst overruns a socket buffer
    }
}

// Polls `rx` (and `also`, whose held datagrams leave only when it is polled) until `want`
// datagrams arrived or `quiet` passed with nothing new.
std::vector<Stamp> receive(drivers::Port& rx, drivers::Port* also, size_t want, const engine::TscClock& clock,
                           std::vector<uint64_t>* arrived_ns = nullptr,
                           std::chrono::milliseconds quiet = std::chrono::milliseconds(500)) {
    std::vector<Stamp> got;
    rte_mbuf* pkts[32];
    wire::Address from[32];
    auto last = std::chrono::steady_clock::now();
    while (got.size() < want && std::chrono::steady_clock::now() - last < quiet) {
        if (also) {
            wire::Address f;
            rte_mbuf* m;
            EXPECT_EQ(also->rx_burst(0, &m, &f, nullptr, 1), 0);  // nothing is sent to the sender
        }
        const uint16_t n = rx.rx_burst(0, pkts, from, nullptr, 32);
        for (uint16_t i = 0; i < n; ++i) {
            Stamp s;
            EXPECT_EQ(pkts[i]->data_len, sizeof s);
            std::memcpy(&s, rte_pktmbuf_mtod(pkts[i], const void*), sizeof s);
            got.push_back(s);
            if (arrived_ns) arrived_ns->push_back(clock.ns());
        }
        if (n) {
            rte_pktmbuf_free_bulk(pkts, n);
            last = std::chrono::steady_clock::now();
        } else {
            std::this_thread::sleep_for(std::chrono::microseconds(50));
        }
    }
    return got;
}

TEST(ImpairedPort, WithoutImpairmentPassesEverythingInOrder) {
    MbufPool pool(4096);
    auto a = loopback(pool), b = loopback(pool);
    ASSERT_TRUE(a && b);
    ImpairedPort impaired(*a, ImpairmentConfig{});
    const engine::TscClock clock;
    send(impaired, *b, pool, 0, 500, clock);
    const auto got = receive(*b, &impaired, 500, clock);
    ASSERT_EQ(got.size(), 500u);
    for (uint32_t i = 0; i < 500; ++i) EXPECT_EQ(got[i].number, i);
    EXPECT_EQ(impaired.tx_stats().seen, 500u);
    EXPECT_EQ(impaired.tx_stats().delivered, 500u);
    EXPECT_EQ(impaired.stats(0).tx_datagrams, 500u);  // the inner port's counters, mirrored
}

TEST(ImpairedPort, LosesTheConfiguredShareAndDeliversTheRest) {
    MbufPool pool(4096);
    {
    auto a = loopback(pool), b = loopback(pool);
    ASSERT_TRUE(a && b);
    ImpairmentConfig c;
    c.loss = 0.2;
    c.seed = 42;
    ImpairedPort impaired(*a, c);
    const engine::TscClock clock;
    send(impaired, *b, pool, 0, 3000, clock);
    const auto got = receive(*b, &impaired, 3000, clock);
    const auto& s = impaired.tx_stats();
    EXPECT_EQ(s.seen, 3000u);
    EXPECT_GT(s.lost, 3000 * 0.15);  // 600 expected, sd ~22
    EXPECT_LT(s.lost, 3000 * 0.25);
    EXPECT_EQ(got.size(), 3000 - s.lost);
    EXPECT_TRUE(std::is_sorted(got.begin(), got.end(), [](auto& x, auto& y) { return x.number < y.number; }));
    }
    EXPECT_EQ(pool.available(), 4096u);  // the lost ones were freed (the ports gone: their receive buffers too)
}

TEST(ImpairedPort, DuplicatesEveryDatagramAtFullChance) {
    MbufPool pool(4096);
    auto a = loopback(pool), b = loopback(pool);
    ASSERT_TRUE(a && b);
    ImpairmentConfig c;
    c.duplicate = 1;
    ImpairedPort impaired(*a, c);
    const engine::TscClock clock;
    send(impaired, *b, pool, 0, 300, clock);
    const auto got = receive(*b, &impaired, 600, clock);
    std::map<uint32_t, int> times;
    for (const Stamp& s : got) ++times[s.number];
    ASSERT_EQ(times.size(), 300u);
    for (const auto& [n, k] : times) EXPECT_EQ(k, 2) << n;
    EXPECT_EQ(impaired.tx_stats().duplicated, 300u);
}

TEST(ImpairedPort, DelaysEveryDatagramAndReordersSome) {
    MbufPool pool(4096);
    auto a = loopback(pool), b = loopback(pool);
    ASSERT_TRUE(a && b);
    ImpairmentConfig c;
    c.delay_ns = 5'000'000;
    c.jitter_ns = 1'000'000;
    c.reorder = 0.2;
    c.reorder_ns = 10'000'000;
    c.seed = 7;
    ImpairedPort impaired(*a, c);
    const engine::TscClock clock;
    send(impaired, *b, pool, 0, 1000, clock);
    std::vector<uint64_t> arrived;
    const auto got = receive(*b, &impaired, 1000, clock, &arrived);
    ASSERT_EQ(got.size(), 1000u);  // nothing lost
    uint64_t min_delay = UINT64_MAX;
    for (size_t i = 0; i < got.size(); ++i) min_delay = std::min(min_delay, arrived[i] - got[i].sent_ns);
    EXPECT_GE(min_delay, c.delay_ns);  // a lower bound: nothing leaves before its time
    size_t overtaken = 0;  // datagrams that arrived after a later-numbered one
    uint32_t highest = 0;
    for (const Stamp& s : got) {
        if (s.number < highest) ++overtaken;
        highest = std::max(highest, s.number);
    }
    EXPECT_GT(overtaken, 100u);  // ~200 reordered
    EXPECT_GT(impaired.tx_stats().reordered, 150u);
    EXPECT_LT(impaired.tx_stats().reordered, 250u);
}

TEST(ImpairedPort, ImpairsTheReceiveDirectionToo) {
    MbufPool pool(4096);
    {
    auto a = loopback(pool), b = loopback(pool);
    ASSERT_TRUE(a && b);
    const engine::TscClock clock;
    {
        ImpairmentConfig c;
        c.loss = 1;
        ImpairedPort receiver(*b, c);
        send(*a, receiver, pool, 0, 200, clock);
        EXPECT_TRUE(receive(receiver, nullptr, 200, clock, nullptr, std::chrono::milliseconds(300)).empty());
        EXPECT_EQ(receiver.rx_stats().seen, 200u);
        EXPECT_EQ(receiver.rx_stats().lost, 200u);
    }
    {
        // Held datagrams still queued when the port goes are freed with it.
        ImpairmentConfig c;
        c.delay_ns = 10'000'000'000;
        ImpairedPort receiver(*b, c);
        send(*a, receiver, pool, 0, 100, clock);
        EXPECT_TRUE(receive(receiver, nullptr, 100, clock, nullptr, std::chrono::milliseconds(300)).empty());
        EXPECT_EQ(receiver.rx_stats().seen, 100u);
    }
    }
    EXPECT_EQ(pool.available(), 4096u);  // the ports gone: their receive buffers too
}

TEST(ImpairmentConfig, ParsesASpecAndNamesWhatIsWrong) {
    ImpairmentConfig c;
    std::string error;
    ASSERT_TRUE(ImpairmentConfig::parse("loss=5%,dup=0.02,reorder=5%,delay=2ms,jitter=500us,reorder-delay=3ms,seed=9",
                                        c, error))
        << error;
    EXPECT_DOUBLE_EQ(c.loss, 0.05);
    EXPECT_DOUBLE_EQ(c.duplicate, 0.02);
    EXPECT_DOUBLE_EQ(c.reorder, 0.05);
    EXPECT_EQ(c.delay_ns, 2'000'000u);
    EXPECT_EQ(c.jitter_ns, 500'000u);
    EXPECT_EQ(c.reorder_ns, 3'000'000u);
    EXPECT_EQ(c.seed, 9u);
    for (const char* bad : {"loss=150%", "loss=x", "delay=5", "drop=1%", "loss", "delay=-1ms", ""}) {
        EXPECT_FALSE(ImpairmentConfig::parse(bad, c, error)) << bad;
        EXPECT_FALSE(error.empty()) << bad;
    }
}

}  // namespace
}  // namespace pomelo::test
