#include "drivers/port.hpp"

namespace pomelo::drivers {

PortStats& PortStats::operator+=(const PortStats& o) {
    rx_packets += o.rx_packets;
    rx_datagrams += o.rx_datagrams;
    rx_not_ours += o.rx_not_ours;
    rx_malformed += o.rx_malformed;
    arp_replies += o.arp_replies;
    nd_adverts += o.nd_adverts;
    tx_datagrams += o.tx_datagrams;
    tx_dropped += o.tx_dropped;
    rx_truncated += o.rx_truncated;
    neighbours_evicted += o.neighbours_evicted;
    neighbours_lost += o.neighbours_lost;
    arp_requests += o.arp_requests;
    nd_solicits += o.nd_solicits;
    neighbours_resolved += o.neighbours_resolved;
    neighbours_unsolicited += o.neighbours_unsolicited;
    neighbours_failed += o.neighbours_failed;
    tx_unresolved += o.tx_unresolved;
    return *this;
}

uint16_t Port::rx_burst(uint16_t queue, rte_mbuf** pkts, wire::Address* from, uint16_t* local_index, LinkHop* hop,
                        uint16_t n) {
    const uint16_t got = rx_burst(queue, pkts, from, local_index, n);
    for (uint16_t i = 0; hop && i < got; ++i) hop[i] = LinkHop{};
    return got;
}

uint16_t Port::tx_burst(uint16_t queue, rte_mbuf** pkts, const wire::Address* to, const uint16_t* local_index,
                        const LinkHop*, uint16_t n) {
    return tx_burst(queue, pkts, to, local_index, n);
}

void Port::learn_neighbours(uint16_t, const wire::Address*, const LinkHop*, uint16_t) {}

PortStats Port::total_stats() const {
    PortStats t;
    for (const PortStats& s : stats_) t += s;
    return t;
}

}  // namespace pomelo::drivers
