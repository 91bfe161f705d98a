#include "engine/event_log.hpp"

#include <cstdarg>
#include <cstdio>

namespace pomelo::engine {

namespace {
constexpr uint64_t kSecondNs = 1'000'000'000;
}

void EventLog::line(uint64_t now_ns, const char* format, ...) {
    if (per_second_ == 0) return;
    tick(now_ns);
    if (in_window_ == 0 && suppressed_ == 0) window_start_ns_ = now_ns;  // a new second starts here
    if (in_window_ >= per_second_) {
        ++suppressed_;
        ++suppressed_total_;
        return;
    }
    ++in_window_;
    ++printed_total_;
    // One line, whole: an application's workers print to stdout too, and a line of theirs
    // must not land between our prefix and our text.
    flockfile(stdout);
    std::fputs("pomelo-server: ", stdout);
    va_list args;
    va_start(args, format);
    std::vfprintf(stdout, format, args);
    va_end(args);
    std::fputc('\n', stdout);
    std::fflush(stdout);
    funlockfile(stdout);
}

void EventLog::suppress(uint64_t now_ns) {
    if (per_second_ == 0) return;
    tick(now_ns);
    if (in_window_ == 0 && suppressed_ == 0) window_start_ns_ = now_ns;
    ++suppressed_;
    ++suppressed_total_;
}

void EventLog::tick(uint64_t now_ns) {
    if (now_ns - window_start_ns_ < kSecondNs) return;
    report();
    in_window_ = 0;
}

void EventLog::flush() { report(); }

void EventLog::report() {
    if (suppressed_ == 0) return;
    std::printf("pomelo-server: suppressed %llu connection log lines (more than %u a second, or repeated denies)\n",
                static_cast<unsigned long long>(suppressed_), per_second_);
    std::fflush(stdout);
    suppressed_ = 0;
}

}  // namespace pomelo::engine
