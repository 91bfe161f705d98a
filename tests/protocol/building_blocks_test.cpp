// Replay window, timer wheel, keyed hash map and sample windows against simple models.
#include <gtest/gtest.h>

#include <map>
#include <random>

#include "protocol/flat_map.hpp"
#include "protocol/replay.hpp"
#include "protocol/rtt.hpp"
#include "protocol/timer_wheel.hpp"

namespace pomelo::test {
namespace {

// The spec's own formulation (§10): 256 slots holding sequence numbers.
struct SpecReplay {
    uint64_t latest = 0;
    std::array<std::optional<uint64_t>, 256> slots{};
    bool test(uint64_t s) const {
        if (s < latest && latest - s > 256) return false;
        const auto& slot = slots[s % 256];
        return !slot || *slot < s;
    }
    void commit(uint64_t s) {
        slots[s % 256] = s;
        if (s > latest) latest = s;
    }
};

TEST(ReplayWindow, MatchesTheSpecSlotModelOnRandomTraffic) {
    std::mt19937_64 rng(7);
    for (int run = 0; run < 50; ++run) {
        ReplayWindow ours;
        SpecReplay spec;
        uint64_t base = run % 2 ? 0 : (uint64_t{1} << 40);
        for (int i = 0; i < 5000; ++i) {
            uint64_t s;
            switch (rng() % 4) {
                case 0: s = base + rng() % 600; break;           // around the window
                case 1: s = spec.latest + rng() % 3; break;       // in order
                case 2: s = spec.latest - std::min<uint64_t>(spec.latest, rng() % 300); break;  // late
                default: s = spec.latest + rng() % 1000; break;   // jumps
            }
            const bool expect = spec.test(s);
            ASSERT_EQ(ours.fresh(s), expect) << "run " << run << " step " << i << " seq " << s;
            if (expect && rng() % 8) {  // most accepted packets authenticate; some do not
                ours.commit(s);
                spec.commit(s);
            }
        }
    }
}

TEST(ReplayWindow, DuplicatesAndOldSequencesAreRejected) {
    ReplayWindow w;
    EXPECT_TRUE(w.fresh(0));
    w.commit(0);
    EXPECT_FALSE(w.fresh(0));
    w.commit(1000);
    EXPECT_FALSE(w.fresh(744));   // latest - 256
    EXPECT_TRUE(w.fresh(745));    // latest - 255
    EXPECT_TRUE(w.fresh(999));
    EXPECT_FALSE(w.fresh(1000));
    EXPECT_TRUE(w.fresh(~0ull));
}

TEST(ReplayWindow, UncommittedTestsChangeNothing) {
    ReplayWindow w;
    w.commit(5);
    for (uint64_t s : {~uint64_t{0}, uint64_t{1} << 62, uint64_t{6}}) EXPECT_TRUE(w.fresh(s));
    // Nothing was committed: a forged huge sequence did not move the window (§19.1).
    EXPECT_EQ(w.latest(), 5u);
    EXPECT_TRUE(w.fresh(6));
}

TEST(TimerWheel, FiresEachTimerOnceAtOrAfterItsDeadline) {
    std::mt19937_64 rng(3);
    TimerWheel wheel(1000, 64, 1'000'000);
    std::map<uint32_t, uint64_t> model;
    uint64_t now = 0;
    for (int step = 0; step < 20000; ++step) {
        const uint32_t id = rng() % 1000;
        switch (rng() % 3) {
            case 0: {
                const uint64_t due = now + rng() % 300'000'000;  // up to 300 ms: beyond one turn (64 ms)
                wheel.schedule(id, due);
                model[id] = due;
                break;
            }
            case 1:
                wheel.cancel(id);
                model.erase(id);
                break;
            default: {
                now += rng() % 5'000'000;
                std::vector<uint32_t> fired;
                wheel.expire(now, [&](uint32_t f) { fired.push_back(f); });
                std::vector<uint32_t> expected;
                for (auto it = model.begin(); it != model.end();) {
                    if (it->second <= now) {
                        expected.push_back(it->first);
                        it = model.erase(it);
                    } else {
                        ++it;
                    }
                }
                std::sort(fired.begin(), fired.end());
                ASSERT_EQ(fired, expected) << "step " << step;
            }
        }
        ASSERT_EQ(wheel.size(), model.size());
    }
}

TEST(TimerWheel, ACallbackMayRescheduleItsOwnTimer) {
    TimerWheel wheel(4, 16, 1'000'000);
    int fired = 0;
    wheel.schedule(2, 5'000'000);
    for (uint64_t t = 0; t <= 1'000'000'000; t += 1'000'000)
        wheel.expire(t, [&](uint32_t id) {
            ++fired;
            wheel.schedule(id, t + 100'000'000);  // every 100 ms
        });
    EXPECT_EQ(fired, 10);
}

TEST(TimerWheel, WorkIsProportionalToTimersDue) {
    TimerWheel wheel(100000, 256, 1'000'000);
    for (uint32_t i = 0; i < 100000; ++i) wheel.schedule(i, 100'000'000 + (i % 100) * 1'000'000);
    uint32_t fired = wheel.expire(100'000'000, [](uint32_t) {});
    EXPECT_EQ(fired, 1000u);  // only the 1 % due in this millisecond
    fired = wheel.expire(150'000'000, [](uint32_t) {});
    EXPECT_EQ(fired, 50'000u);
}

// Counted by visits, not firings: a loop that calls expire() every microsecond must not walk
// the current slot's 1,000 not-yet-due timers each time (it did: cost ~ loops x slot size).
TEST(TimerWheel, VisitsStayProportionalToTimersDueWhenTickedOftenWithinOneTick) {
    TimerWheel wheel(100000, 256, 1'000'000);
    for (uint32_t i = 0; i < 100000; ++i) wheel.schedule(i, 100'000'000 + (i % 100) * 1'000'000 + 500'000);
    uint32_t fired = 0;
    // 1 ms of a busy loop, ticked every microsecond: the timers of this ms fire at 100.5 ms.
    for (uint64_t t = 100'000'000; t < 101'000'000; t += 1'000) fired += wheel.expire(t, [](uint32_t) {});
    EXPECT_EQ(fired, 1000u);
    // The slot holds 1,000 timers: walked at the first call, once more at the firing (and the
    // few calls right after a firing); never 1,000 times.
    EXPECT_LE(wheel.visits(), 5u * 1000u);
}

TEST(FlatMap, MatchesStdMapUnderRandomInsertAndErase) {
    std::mt19937_64 rng(11);
    FlatMap<uint64_t, uint64_t> m(500);
    std::map<uint64_t, uint64_t> model;
    for (int i = 0; i < 200000; ++i) {
        const uint64_t k = rng() % 2000;
        if (rng() % 2) {
            const bool room = model.count(k) || model.size() < 500;
            uint64_t* v = m.insert(k, i);
            ASSERT_EQ(v != nullptr, room);
            if (room) model[k] = i;
        } else {
            ASSERT_EQ(m.erase(k), model.erase(k) == 1);
        }
        const uint64_t probe = rng() % 2000;
        const uint64_t* v = m.find(probe);
        auto it = model.find(probe);
        ASSERT_EQ(v != nullptr, it != model.end());
        if (v) {
            ASSERT_EQ(*v, it->second);
        }
        ASSERT_EQ(m.size(), model.size());
    }
}

// reserve() grows the map in steps, with entries erased along the way (backward shifts in
// the old table), and every entry is found after each rehash, with the room it promised.
TEST(FlatMap, ReserveRehashesKeepingEveryEntry) {
    std::mt19937_64 rng(12);
    FlatMap<uint64_t, uint64_t> m(0);
    std::map<uint64_t, uint64_t> model;
    const size_t bytes0 = m.bytes();
    for (size_t cap = 100; cap <= 12800; cap *= 2) {
        m.reserve(cap);
        ASSERT_EQ(m.capacity(), cap);
        while (model.size() < cap) {
            const uint64_t k = rng();
            ASSERT_NE(m.insert(k, k ^ 7), nullptr);
            model[k] = k ^ 7;
            if (rng() % 4 == 0) {  // erase one now and then
                ASSERT_TRUE(m.erase(model.begin()->first));
                model.erase(model.begin());
            }
        }
        EXPECT_EQ(m.insert(rng(), 0), nullptr);  // full at its capacity
        ASSERT_EQ(m.size(), model.size());
        for (const auto& [k, v] : model) ASSERT_TRUE(m.find(k) && *m.find(k) == v);
    }
    EXPECT_GE(m.bytes(), 2 * 12800 * sizeof(uint64_t) * 2);  // load <= 1/2
    EXPECT_LT(bytes0, m.bytes() / 100);
    m.reserve(10);  // never shrinks
    EXPECT_EQ(m.capacity(), 12800u);
}

TEST(TimerWheel, GrowKeepsPendingTimers) {
    TimerWheel wheel(4, 16, 1'000'000);
    wheel.schedule(3, 5'000'000);
    wheel.grow(5000);
    ASSERT_EQ(wheel.capacity(), 5000u);
    wheel.schedule(4999, 7'000'000);
    wheel.grow(100);  // never shrinks
    EXPECT_TRUE(wheel.armed(3));
    std::vector<uint32_t> fired;
    wheel.expire(0, [&](uint32_t id) { fired.push_back(id); });
    wheel.expire(10'000'000, [&](uint32_t id) { fired.push_back(id); });
    EXPECT_EQ(fired, (std::vector<uint32_t>{3, 4999}));
}

TEST(FlatMap, SeedsDifferPerInstance) {
    // The same keys land in different orders in two maps: the hash is keyed by a secret.
    FlatMap<uint64_t, int> a(64), b(64);
    for (uint64_t k = 0; k < 64; ++k) a.insert(k, 0), b.insert(k, 0);
    std::vector<uint64_t> oa, ob;
    a.for_each([&](uint64_t k, int) { oa.push_back(k); });
    b.for_each([&](uint64_t k, int) { ob.push_back(k); });
    EXPECT_NE(oa, ob);
}

TEST(SampleWindow, SpecFormulasAndFirstSampleFillsAll) {
    SampleWindow<10> w;
    w.add(100);
    EXPECT_EQ(w.mean(), 100);
    EXPECT_EQ(w.variance(), 0u);
    for (int i = 0; i < 9; ++i) w.add(200);
    EXPECT_EQ(w.mean(), 190);  // 100 + 9 × 200, over 10
    EXPECT_EQ(w.variance(), 900u);
}

TEST(SampleWindow, HugeValuesDoNotOverflow) {  // §19.22
    SampleWindow<10> w;
    for (int i = 0; i < 10; ++i) w.add((i % 2 ? 1 : -1) * 300'000'000'000'000'000);
    EXPECT_EQ(w.mean(), 0);
    EXPECT_EQ(w.variance(), UINT64_MAX);  // 9e34 saturates, it does not wrap
    SampleWindow<10> v;
    for (int i = 0; i < 10; ++i) v.add(123'456'789'000'000 + i);
    EXPECT_EQ(v.mean(), 123'456'789'000'004);  // floor of .5
    EXPECT_EQ(v.variance(), 8u);                // 8.25 floored
}

TEST(PingTracker, MatchesOnceAndDiscardsImpossibleSamples) {
    PingTracker t;
    const uint16_t a = t.on_ping_sent(1000);
    auto m = t.on_pong(a, 100, 5000);
    ASSERT_TRUE(m);
    EXPECT_EQ(*m->rtt, 3900u);
    EXPECT_FALSE(t.on_pong(a, 100, 6000));  // duplicate PONG
    const uint16_t b = t.on_ping_sent(7000);
    m = t.on_pong(b, 9000, 8000);  // delta longer than elapsed: no RTT sample
    ASSERT_TRUE(m);
    EXPECT_FALSE(m->rtt);
    EXPECT_EQ(t.samples(), 1u);
    for (int i = 0; i < 25; ++i) t.on_ping_sent(10000 + i);  // wraps the 20-entry table
    EXPECT_FALSE(t.on_pong(static_cast<uint16_t>(b + 1), 0, 20000));  // overwritten
}


TEST(ClockOffsetFilter, TakesTheSampleOfLeastRoundTrip) {
    ClockOffsetFilter f;
    EXPECT_FALSE(f.has_sample());
    // Peer clock = ours + 1'000'000. Sent at t0, out delay `a`, held 100, back delay `b`.
    auto sample = [&](uint64_t t0, uint64_t a, uint64_t b) {
        const uint64_t t1 = t0 + a + 1'000'000;
        f.add(t0, t1, 100, t0 + a + 100 + b);
    };
    sample(5'000, 900, 100);  // asymmetric, long: theta off by 400
    EXPECT_EQ(f.offset_ns(), 1'000'400);
    sample(10'000, 60, 40);  // short round trip: off by 10
    sample(20'000, 500, 700);
    EXPECT_EQ(f.offset_ns(), 1'000'010);
    for (uint64_t i = 0; i < ClockOffsetFilter::kSamples; ++i) sample(30'000 + i * 10'000, 300, 300);
    EXPECT_EQ(f.offset_ns(), 1'000'000);  // the short one aged out; symmetric ones are exact
    // A peer clock far behind ours (unrelated epochs) wraps correctly.
    ClockOffsetFilter g;
    const uint64_t t0 = 1'000'000'000'000'000;
    g.add(t0, t0 + 50 - 999'000'000'000'000, 10, t0 + 110);
    EXPECT_EQ(g.offset_ns(), -999'000'000'000'000);
}

}  // namespace
}  // namespace pomelo::test
