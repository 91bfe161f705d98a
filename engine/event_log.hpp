// The connection log: one stdout line per connect, deny and disconnect (with its reason), at
// most `per_second` lines a second, so a flood of handshakes cannot flood the log. Lines over
// the limit are counted and reported in one "suppressed" line once their second is over (or
// at flush()): every event is either printed or counted. The caller may leave out repeats
// the same way (suppress()). Used by the control thread only.
#pragma once

#include <cstdint>

namespace pomelo::engine {

class EventLog {
public:
    // 0 lines a second: no connection log at all.
    explicit EventLog(uint32_t per_second) : per_second_(per_second) {}

    // One line, printf-style, prefixed "pomelo-server: "; `now_ns` is the caller's clock.
    void line(uint64_t now_ns, const char* format, ...) __attribute__((format(printf, 3, 4)));
    // Counts a line left out for another reason (a repeat), reported with the others.
    void suppress(uint64_t now_ns);
    // Reports the lines suppressed in a second that is over. Call regularly.
    void tick(uint64_t now_ns);
    // Reports the lines suppressed so far (at the end).
    void flush();

    uint64_t printed() const { return printed_total_; }
    uint64_t suppressed() const { return suppressed_total_; }

private:
    void report();

    uint32_t per_second_;
    uint64_t window_start_ns_ = 0;
    uint32_t in_window_ = 0;   // lines printed in the current second
    uint64_t suppressed_ = 0;  // not yet reported
    uint64_t printed_total_ = 0, suppressed_total_ = 0;
};

}  // namespace pomelo::engine
