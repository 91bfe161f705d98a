// The client's estimate of the server's clock (spec §14.5): network time = local monotonic
// time + offset, where the offset follows the server's monotonic clock through jitter and
// clock drift. Wire-invisible, so ours differs from the reference, whose statistics overflow
// (§19.22) and which cannot follow drift:
//   - each PONG gives an offset sample θ = ((t1 - t0) + (t2 - t3)) / 2 and a round-trip delay;
//   - a sample's error is at most half its delay above the smallest delay seen, so samples
//     are weighted by 1 / (excess delay + 1 ms)²: near-minimum round trips dominate;
//   - a weighted least-squares line through the last kWindow samples gives offset and drift
//     (drift only once the window spans kMinDriftSpan; clamped to ±500 ppm).
// Arithmetic is on differences from the newest sample, never on squares of absolute offsets.
#pragma once

#include <array>
#include <cstdint>

#include "protocol/rtt.hpp"

namespace pomelo {

class ClockSync {
public:
    static constexpr unsigned kWindow = 256;
    static constexpr uint64_t kMinDriftSpan = 5'000'000'000;  // ns
    static constexpr double kMaxDrift = 500e-6;

    void reset() { *this = ClockSync{}; }

    // From the PING that completes the handshake: offset := time - local (§14.5).
    void initialize(uint64_t server_time, uint64_t local_now);

    // One PONG matched to our PING: t0 = our PING send time, t1 = server receive time,
    // delta = server hold time, t3 = our PONG receive time (local raw clocks).
    void on_pong(uint64_t t0, uint64_t t1, uint64_t delta, uint64_t t3);

    bool synchronised() const { return have_; }
    int64_t offset_at(uint64_t local) const;
    uint64_t network_time(uint64_t local) const { return local + static_cast<uint64_t>(offset_at(local)); }
    double drift_ppm() const { return frequency_ * 1e6; }
    uint64_t samples() const { return samples_; }
    // Spread of recent offset samples around the estimate (sqrt of their variance), ns.
    uint64_t jitter_ns() const;

private:
    struct Sample {
        uint64_t t3;
        int64_t theta;
        int64_t delay;
    };
    void fit();

    bool have_ = false;
    double offset_ = 0;     // ns, at local time ref_
    double frequency_ = 0;  // server ns per local ns, minus 1
    uint64_t ref_ = 0;
    uint64_t samples_ = 0;
    std::array<Sample, kWindow> window_{};
    SampleWindow<10> residuals_;
};

}  // namespace pomelo
