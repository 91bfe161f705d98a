// Time as the state machines receive it: they never read a clock themselves.
#pragma once

#include <cstdint>

namespace pomelo {

inline constexpr uint64_t kMillisecond = 1'000'000;  // ns
inline constexpr uint64_t kSecond = 1'000'000'000;    // ns

struct Now {
    uint64_t ns = 0;       // monotonic clock, arbitrary epoch (timers, timeouts, PING/PONG times)
    uint64_t unix_ms = 0;  // wall clock, only for connect token expiry
};

}  // namespace pomelo
