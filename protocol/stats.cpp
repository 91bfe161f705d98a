#include "protocol/stats.hpp"

namespace pomelo {

const char* name_of(DropReason r) {
    switch (r) {
#define POMELO_X(name, text) \
    case DropReason::name:   \
        return #name;
        POMELO_DROP_REASONS(POMELO_X)
#undef POMELO_X
        case DropReason::count_:
            break;
    }
    return "unknown";
}

const char* to_string(DropReason r) {
    switch (r) {
#define POMELO_X(name, text) \
    case DropReason::name:   \
        return text;
        POMELO_DROP_REASONS(POMELO_X)
#undef POMELO_X
        case DropReason::count_:
            break;
    }
    return "unknown";
}

uint64_t Counters::total_drops() const {
    uint64_t n = 0;
    for (uint64_t v : wire_drops) n += v;
    for (uint64_t v : drops) n += v;
    return n;
}

Counters& Counters::operator+=(const Counters& o) {
    for (size_t i = 0; i < rx.size(); ++i) rx[i] += o.rx[i], tx[i] += o.tx[i];
    for (size_t i = 0; i < wire_drops.size(); ++i) wire_drops[i] += o.wire_drops[i];
    for (size_t i = 0; i < drops.size(); ++i) drops[i] += o.drops[i];
    for (size_t i = 0; i < closed.size(); ++i) closed[i] += o.closed[i];
    return *this;
}

}  // namespace pomelo
