// The client's estimate of the server's clock (spec §14.5): network time = local monotonic
// time + offset, where the offset follows the server's monotonic clock across jitter and
// clock drift. Wire-invisible, so ours differs from the reference (whose 10-sample window
// overflows, §19.22):
//   - each PONG gives an offset sample θ = ((t1 - t0) + (t2 - t3)) / 2 and a delay;
//   - samples with a delay above the recent mean are skipped (their error is larger);
//   - the first kWarmup samples set the offset to the lowest-delay sample seen;
//   - after that a second-order loop (phase + frequency, critically damped) tracks offset and
//     drift, so a constant drift leaves no steady error; a jump larger than kStepNs that
//     persists for 3 samples is taken at once.
// All arithmetic is on differences (residuals), never on squares of absolute offsets.
#pragma once

#include <cstdint>

#include "protocol/rtt.hpp"

namespace pomelo {

class ClockSync {
public:
    static constexpr unsigned kWarmup = 10;
    static constexpr int64_t kStepNs = 50'000'000;
    static constexpr double kPhaseGain = 1.0 / 16;
    static constexpr double kFrequencyGain = kPhaseGain * kPhaseGain / 4;
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
    bool have_ = false;
    double offset_ = 0;     // ns, at local time ref_
    double frequency_ = 0;  // server ns per local ns, minus 1
    uint64_t ref_ = 0;
    uint64_t samples_ = 0;
    uint64_t used_ = 0;
    unsigned far_ = 0;                        // consecutive samples beyond kStepNs
    int64_t best_delay_ = INT64_MAX;          // warm-up: lowest delay seen
    SampleWindow<10> delays_;
    SampleWindow<10> residuals_;
};

}  // namespace pomelo
