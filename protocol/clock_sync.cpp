#include "protocol/clock_sync.hpp"

#include <algorithm>
#include <cmath>

namespace pomelo {

void ClockSync::initialize(uint64_t server_time, uint64_t local_now) {
    offset_ = static_cast<double>(static_cast<int64_t>(server_time - local_now));
    ref_ = local_now;
    have_ = true;
}

int64_t ClockSync::offset_at(uint64_t local) const {
    const double elapsed = static_cast<double>(static_cast<int64_t>(local - ref_));
    return static_cast<int64_t>(std::llround(offset_ + frequency_ * elapsed));
}

void ClockSync::on_pong(uint64_t t0, uint64_t t1, uint64_t delta, uint64_t t3) {
    const uint64_t t2 = t1 + delta;
    // Wrapping differences reinterpreted as signed, halved toward zero (§14.5).
    const int64_t theta = static_cast<int64_t>((t1 - t0) + (t2 - t3)) / 2;
    const int64_t delay = static_cast<int64_t>((t3 - t0) - delta);
    ++samples_;
    delays_.add(delay);
    if (!have_) {
        offset_ = static_cast<double>(theta);
        ref_ = t3;
        have_ = true;
    }
    const double predicted = static_cast<double>(offset_at(t3));
    const double error = static_cast<double>(theta) - predicted;
    residuals_.add(static_cast<int64_t>(error));

    if (samples_ <= kWarmup) {  // warm-up: trust the least delayed sample seen so far
        if (delay <= best_delay_) {
            best_delay_ = delay;
            offset_ = static_cast<double>(theta);
            ref_ = t3;
        }
        return;
    }
    if (std::fabs(error) > static_cast<double>(kStepNs)) {  // a real jump, not jitter
        if (++far_ >= 3) {
            offset_ = static_cast<double>(theta);
            ref_ = t3;
            far_ = 0;
        }
        return;
    }
    far_ = 0;
    if (delay > delays_.mean()) return;  // more delay, more asymmetry: skip

    const double elapsed = static_cast<double>(static_cast<int64_t>(t3 - ref_));
    offset_ = predicted + kPhaseGain * error;
    if (elapsed > 0 && used_ > 0)
        frequency_ = std::clamp(frequency_ + kFrequencyGain * error / elapsed, -kMaxDrift, kMaxDrift);
    ref_ = t3;
    ++used_;
}

uint64_t ClockSync::jitter_ns() const {
    return static_cast<uint64_t>(std::sqrt(static_cast<double>(residuals_.variance())));
}

}  // namespace pomelo
