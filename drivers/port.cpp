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
    return *this;
}

PortStats Port::total_stats() const {
    PortStats t;
    for (const PortStats& s : stats_) t += s;
    return t;
}

}  // namespace pomelo::drivers
