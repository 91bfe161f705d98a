#include "engine/stats.hpp"

#include <algorithm>

namespace pomelo::engine {

const char* name_of(EngineDrop d) {
    switch (d) {
#define POMELO_X(name, text) \
    case EngineDrop::name:   \
        return #name;
        POMELO_ENGINE_DROPS(POMELO_X)
#undef POMELO_X
        case EngineDrop::count_: break;
    }
    return "?";
}

WorkerStats& WorkerStats::operator+=(const WorkerStats& o) {
    protocol += o.protocol;
    port += o.port;
    drops += o.drops;
    for (unsigned k = 0; k < 4; ++k) peers[k] += o.peers[k];
    rtt_sum_ns += o.rtt_sum_ns;
    rtt_peers += o.rtt_peers;
    rtt_max_ns = std::max(rtt_max_ns, o.rtt_max_ns);
    handshakes_forwarded += o.handshakes_forwarded;
    loops += o.loops;
    timer_visits += o.timer_visits;
    messages_posted += o.messages_posted;
    messages_received += o.messages_received;
    ticks += o.ticks;
    for (unsigned b = 0; b < server::Shard::kRttBuckets; ++b) rtt_buckets[b] += o.rtt_buckets[b];
    loop_ns += o.loop_ns;
    busy_ns += o.busy_ns;
    return *this;
}

}  // namespace pomelo::engine
