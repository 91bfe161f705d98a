// One burst interface for packet I/O, whatever moves the bytes: a DPDK ethdev (any PMD:
// memif, af_xdp, af_packet, tap, ring, null, real NICs) or the kernel's UDP sockets.
//
// Buffers are always mbufs. A received mbuf's data is the UDP payload (L2/L3/L4 headers are
// parsed, checked and stripped by the port); a sent mbuf's data is the UDP payload and the
// port prepends whatever headers it needs into the headroom.
#pragma once

#include <rte_ether.h>
#include <rte_mbuf.h>

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "protocol/wire/address.hpp"

namespace pomelo::drivers {

// Headroom a sent mbuf must leave for Ethernet + one 802.1Q tag + IPv6 + UDP.
inline constexpr uint16_t kTxHeadroom = 14 + 4 + 40 + 8;

// The neighbour on the link a datagram came from, and so the way back to it: its MAC and the
// 802.1Q tag its frame carried. All zero: none (kernel sockets; no override on send). A TCI
// of 0 (priority 0, VLAN 0) says no more than no tag at all, so it stands for untagged.
struct LinkHop {
    rte_ether_addr mac;
    uint16_t vlan_tci;

    bool known() const { return rte_is_valid_assigned_ether_addr(&mac); }
};
static_assert(sizeof(LinkHop) == 8);

// Per-queue counters (one writer: the lcore polling that queue).
struct PortStats {
    uint64_t rx_packets = 0;     // frames / datagrams taken from the device
    uint64_t rx_datagrams = 0;   // UDP datagrams for us, handed to the caller
    uint64_t rx_not_ours = 0;    // other protocols, other addresses or ports
    uint64_t rx_malformed = 0;   // truncated or inconsistent L2/L3/L4 headers, bad checksums
    uint64_t arp_replies = 0;    // ARP requests for our IPv4 addresses answered
    uint64_t nd_adverts = 0;     // IPv6 neighbour solicitations for our addresses answered
    uint64_t tx_datagrams = 0;   // accepted by the device
    uint64_t tx_dropped = 0;     // device queue full, no route (unknown neighbour), too big, unresolved
    uint64_t rx_truncated = 0;   // datagram larger than the receive buffer (socket driver)
    uint64_t neighbours_evicted = 0;  // neighbour table full: an entry made room for a new one
    uint64_t neighbours_lost = 0;     // learn_neighbours found the queue's inbox full
    // Address resolution (EthdevConfig::resolve; a server leaves it off):
    uint64_t arp_requests = 0;            // ARP requests we sent for a next hop (RFC 826)
    uint64_t nd_solicits = 0;             // neighbour solicitations we sent for a next hop (RFC 4861)
    uint64_t neighbours_resolved = 0;     // next hops learned from the answer to one of those
    uint64_t neighbours_unsolicited = 0;  // ARP replies / advertisements to us nobody asked for: ignored
    uint64_t neighbours_failed = 0;       // destinations given up on: no answer after every try
    uint64_t tx_unresolved = 0;  // of tx_dropped: datagrams without a next hop (hold full, resolution failed)

    PortStats& operator+=(const PortStats& o);
};

class Port {
public:
    virtual ~Port() = default;

    virtual std::string name() const = 0;
    // Never 0: a port that cannot give a queue does not open.
    virtual uint16_t queue_count() const = 0;
    // True when the device spreads received datagrams over its queues by a hash of the UDP
    // 4-tuple (RSS): one source address then always reaches the same queue.
    virtual bool rss() const { return false; }
    // The most mbufs the port itself can hold at once (receive and transmit descriptors),
    // for checking the pool size against everything that can hold mbufs.
    virtual uint32_t mbufs_held() const { return 0; }
    // The UDP endpoints this port serves (IP + port), as configured.
    virtual const std::vector<wire::Address>& local_addresses() const = 0;

    // Up to `n` datagrams addressed to one of our local addresses, from queue `queue`:
    // pkts[i] holds the UDP payload, from[i] its source and, when local_index is not null,
    // local_index[i] the index into local_addresses() of the endpoint it was addressed to.
    // Everything else that arrives is answered (ARP, ND), counted and freed here.
    virtual uint16_t rx_burst(uint16_t queue, rte_mbuf** pkts, wire::Address* from, uint16_t* local_index,
                              uint16_t n) = 0;

    // Sends `n` datagrams: pkts[i] holds the UDP payload (with kTxHeadroom of headroom), to[i]
    // the destination. Each leaves from local_addresses()[local_index[i]] when local_index is
    // not null (an index out of range, or of an address not of the destination's family, is
    // dropped), else, or when local_index[i] is wire::kAnyLocal, from the first local address
    // of the destination's family. Takes
    // ownership of all n mbufs; those it cannot send are freed and counted in tx_dropped.
    // Returns the number handed to the device.
    virtual uint16_t tx_burst(uint16_t queue, rte_mbuf** pkts, const wire::Address* to, const uint16_t* local_index,
                              uint16_t n) = 0;

    // rx_burst that also reports, when hop is not null, hop[i]: the link neighbour datagram i
    // came from (zero where the port has none). Nothing is learned from it: anyone on the
    // link can send a frame with any source address (see learn_neighbours).
    virtual uint16_t rx_burst(uint16_t queue, rte_mbuf** pkts, wire::Address* from, uint16_t* local_index,
                              LinkHop* hop, uint16_t n);
    // tx_burst where, when via is not null and via[i] is known, datagram i goes to that
    // neighbour without the neighbour table being read or changed: the answer to a peer that
    // has not authenticated (a CHALLENGE answering a REQUEST). Otherwise the learned
    // neighbour of to[i], else the gateway, else it is dropped.
    virtual uint16_t tx_burst(uint16_t queue, rte_mbuf** pkts, const wire::Address* to, const uint16_t* local_index,
                              const LinkHop* via, uint16_t n);
    // Remembers hop[i] as the way to peer[i] for tx_burst on `queue`. Call it only for
    // datagrams that authenticated (or an accepted handshake), with the hop rx_burst reported.
    // Any thread may call it; it takes effect at the next tx_burst on `queue`. Ports without
    // a link layer (kernel sockets) have nothing to learn.
    virtual void learn_neighbours(uint16_t queue, const wire::Address* peer, const LinkHop* hop, uint16_t n);

    const PortStats& stats(uint16_t queue) const { return stats_[queue]; }
    PortStats total_stats() const;

protected:
    explicit Port(uint16_t queues) : stats_(queues) {}
    std::vector<PortStats> stats_;
};

}  // namespace pomelo::drivers
