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
    // (t1 - t0 + t2 - t3) / 2 as in §14.5, but halved term by term: with epochs 2^62 or more
    // apart the sum itself would overflow.
    const int64_t a = static_cast<int64_t>(t1 - t0), b = static_cast<int64_t>(t2 - t3);
    const int64_t theta = a / 2 + b / 2 + (a % 2 + b % 2) / 2;
    const int64_t delay = static_cast<int64_t>((t3 - t0) - delta);
    // Wrapping difference: timestamps come from the peer (authenticated, not trusted), and a
    // wild one must not overflow (found by fuzz_client).
    if (have_) residuals_.add(static_cast<int64_t>(static_cast<uint64_t>(theta) - static_cast<uint64_t>(offset_at(t3))));
    window_[samples_ % kWindow] = {t3, theta, delay};
    ++samples_;
    fit();
}

void ClockSync::fit() {
    const size_t n = std::min<uint64_t>(samples_, kWindow);
    const Sample& newest = window_[(samples_ - 1) % kWindow];
    int64_t min_delay = INT64_MAX;
    uint64_t oldest_t3 = newest.t3;
    for (size_t i = 0; i < n; ++i) {
        min_delay = std::min(min_delay, window_[i].delay);
        if (static_cast<int64_t>(window_[i].t3 - oldest_t3) < 0) oldest_t3 = window_[i].t3;
    }
    // Weighted least squares of y = θ - θ_newest over x = t3 - t3_newest (seconds, ns).
    double sw = 0, sx = 0, sy = 0, sxx = 0, sxy = 0;
    for (size_t i = 0; i < n; ++i) {
        const Sample& s = window_[i];
        const double excess_ms = static_cast<double>(static_cast<uint64_t>(s.delay) - static_cast<uint64_t>(min_delay)) / 1e6;
        const double w = 1.0 / ((excess_ms + 1.0) * (excess_ms + 1.0));
        const double x = static_cast<double>(static_cast<int64_t>(s.t3 - newest.t3)) / 1e9;
        const double y = static_cast<double>(
            static_cast<int64_t>(static_cast<uint64_t>(s.theta) - static_cast<uint64_t>(newest.theta)));
        sw += w, sx += w * x, sy += w * y, sxx += w * x * x, sxy += w * x * y;
    }
    double slope = 0;  // ns of offset per second of local time
    const double det = sw * sxx - sx * sx;
    if (newest.t3 - oldest_t3 >= kMinDriftSpan && det > 0) slope = (sw * sxy - sx * sy) / det;
    slope = std::clamp(slope, -kMaxDrift * 1e9, kMaxDrift * 1e9);
    const double intercept = (sy - slope * sx) / sw;
    offset_ = static_cast<double>(newest.theta) + intercept;
    frequency_ = slope / 1e9;
    ref_ = newest.t3;
    have_ = true;
}

uint64_t ClockSync::jitter_ns() const {
    return static_cast<uint64_t>(std::sqrt(static_cast<double>(residuals_.variance())));
}

}  // namespace pomelo
