// Time for the data path: the TSC, read once per loop iteration and turned into ns.
#pragma once

#include <rte_cycles.h>

#include <ctime>

#include "protocol/time.hpp"

namespace pomelo::engine {

class TscClock {
public:
    TscClock() : hz_(rte_get_tsc_hz()), start_(rte_get_tsc_cycles()) {}

    uint64_t ns() const {
        const unsigned __int128 cycles = rte_get_tsc_cycles() - start_;
        return static_cast<uint64_t>(cycles * 1'000'000'000u / hz_) + 1'000'000'000;  // never 0
    }
    static uint64_t unix_ms() {
        timespec ts;
        clock_gettime(CLOCK_REALTIME_COARSE, &ts);
        return uint64_t(ts.tv_sec) * 1000 + uint64_t(ts.tv_nsec) / 1'000'000;
    }
    Now now() const { return {ns(), unix_ms()}; }

private:
    uint64_t hz_;
    uint64_t start_;
};

}  // namespace pomelo::engine
