// PING bookkeeping and round-trip statistics (spec §14.3, §14.4).
#pragma once

#include <array>
#include <cstdint>
#include <optional>

namespace pomelo {

// Ten samples, circular; the first sample fills every slot. Integer mean and population
// variance as the spec defines them, computed in 128 bits so large values cannot overflow.
template <unsigned N = 10>
class SampleWindow {
public:
    void add(int64_t x) {
        if (count_ == 0) {
            samples_.fill(x);
        } else {
            samples_[next_] = x;
        }
        next_ = (next_ + 1) % N;
        ++count_;
    }
    uint64_t count() const { return count_; }
    int64_t mean() const {
        __int128 sum = 0;
        for (int64_t x : samples_) sum += x;
        return static_cast<int64_t>(floor_div(sum, N));
    }
    // Population variance, saturated to UINT64_MAX.
    uint64_t variance() const {
        const __int128 m = mean();
        unsigned __int128 acc = 0;
        for (int64_t x : samples_) {
            const __int128 d = x - m;
            acc += static_cast<unsigned __int128>(d * d);
        }
        acc /= N;
        return acc > UINT64_MAX ? UINT64_MAX : static_cast<uint64_t>(acc);
    }
    const std::array<int64_t, N>& samples() const { return samples_; }

private:
    static __int128 floor_div(__int128 a, __int128 b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }
    std::array<int64_t, N> samples_{};
    unsigned next_ = 0;
    uint64_t count_ = 0;
};

class PingTracker {
public:
    static constexpr unsigned kOutstanding = 20;

    // Records a PING built at `now_ns`; returns its 16-bit ping sequence.
    uint16_t on_ping_sent(uint64_t now_ns) {
        const uint16_t seq = next_++;
        const unsigned i = seq % kOutstanding;
        seq_[i] = seq;
        t0_[i] = now_ns;
        used_ |= uint32_t{1} << i;
        return seq;
    }

    // Matches a PONG; returns the RTT sample (ns) and the PING's send time, or nothing if the
    // sequence is unknown, already answered, or the delta exceeds the elapsed time.
    struct Match {
        uint64_t t0;
        std::optional<uint64_t> rtt;
    };
    std::optional<Match> on_pong(uint16_t ping_sequence, uint64_t pong_delta_ns, uint64_t now_ns) {
        const unsigned i = ping_sequence % kOutstanding;
        if (!(used_ >> i & 1) || seq_[i] != ping_sequence) return std::nullopt;
        used_ &= ~(uint32_t{1} << i);
        const uint64_t t0 = t0_[i];
        Match m{t0, std::nullopt};
        const uint64_t elapsed = now_ns - t0;
        if (now_ns >= t0 && elapsed >= pong_delta_ns) {
            m.rtt = elapsed - pong_delta_ns;
            rtt_.add(static_cast<int64_t>(*m.rtt));
        }
        return m;
    }

    bool has_rtt() const { return rtt_.count() > 0; }
    uint64_t rtt_mean_ns() const { return static_cast<uint64_t>(rtt_.mean()); }
    uint64_t rtt_variance_ns2() const { return rtt_.variance(); }
    uint64_t samples() const { return rtt_.count(); }

private:
    // The table as parallel arrays and a bitmap rather than {seq, used, t0} records: 206
    // bytes instead of 320 of padding-heavy structs (one per server peer).
    static_assert(kOutstanding <= 32, "used_ is a 32-bit map");
    SampleWindow<10> rtt_;
    std::array<uint64_t, kOutstanding> t0_{};   // send time of the PING in each slot, ns
    std::array<uint16_t, kOutstanding> seq_{};  // its ping sequence
    uint32_t used_ = 0;                         // bit i: slot i awaits its PONG
    uint16_t next_ = 0;
};

// The offset of a peer's clock from ours, for the side that only pings (the server): each PONG
// to our PING gives theta = ((t1 - t0) + (t2 - t3)) / 2 (t0/t3 our send/receive, t1/t2 the
// peer's receive/reply on its raw clock, as §14.5 computes it the other way round) and a
// round-trip delay. Theta is off by at most half the delay's asymmetry, so the estimate is
// the theta of least delay among the last kSamples (NTP's clock filter, RFC 5905 §10):
// small, no floating point, and it follows a drifting clock within kSamples pings.
class ClockOffsetFilter {
public:
    static constexpr unsigned kSamples = 8;

    void add(uint64_t t0, uint64_t t1, uint64_t pong_delta, uint64_t t3) {
        const uint64_t t2 = t1 + pong_delta;
        // Wrapping differences, reinterpreted as signed (two unrelated clocks' epochs).
        const int64_t theta = (static_cast<int64_t>(t1 - t0) / 2) + (static_cast<int64_t>(t2 - t3) / 2);
        const uint64_t delay = (t3 - t0) - pong_delta;
        samples_[next_] = {theta, delay};
        next_ = (next_ + 1) % kSamples;
        if (count_ < kSamples) ++count_;
    }
    bool has_sample() const { return count_ > 0; }
    // The peer's clock minus ours, ns (0 without samples).
    int64_t offset_ns() const {
        const Sample* best = nullptr;
        for (unsigned i = 0; i < count_; ++i)
            if (!best || samples_[i].delay < best->delay) best = &samples_[i];
        return best ? best->theta : 0;
    }

private:
    struct Sample {
        int64_t theta;
        uint64_t delay;
    };
    std::array<Sample, kSamples> samples_{};
    uint8_t next_ = 0, count_ = 0;
};

}  // namespace pomelo
