// Time for the data path: the TSC, read once per loop iteration and turned into ns.
#pragma once

#include <rte_cycles.h>

#include <ctime>

#include "protocol/time.hpp"

namespace pomelo::engine {

class TscClock {
public:
    // ns = cycles x (10^9 x 2^32 / hz) >> 32: one 64x64->128 multiply per reading, no
    // division (a 128-bit division per clock read showed up in profiles as __udivti3).
    TscClock()
        : mult_(static_cast<uint64_t>((static_cast<unsigned __int128>(1'000'000'000) << 32) / rte_get_tsc_hz())),
          start_(rte_get_tsc_cycles()) {}

    uint64_t ns() const {
        const unsigned __int128 cycles = rte_get_tsc_cycles() - start_;
        return static_cast<uint64_t>((cycles * mult_) >> 32) + 1'000'000'000;  // never 0
    }
    static uint64_t unix_ms() {
        timespec ts;
        clock_gettime(CLOCK_REALTIME_COARSE, &ts);
        return uint64_t(ts.tv_sec) * 1000 + uint64_t(ts.tv_nsec) / 1'000'000;
    }
    Now now() const { return {ns(), unix_ms()}; }

private:
    uint64_t mult_;
    uint64_t start_;
};

}  // namespace pomelo::engine
