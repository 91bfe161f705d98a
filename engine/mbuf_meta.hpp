// What travels with a datagram's mbuf between lcores, in the mbuf's private area: the peer
// address (source on receive, destination on send), our local endpoint, and the worker it
// belongs to.
#pragma once

#include <rte_mbuf.h>

#include <cstring>

#include "drivers/port.hpp"
#include "protocol/wire/address.hpp"

namespace pomelo::engine {

struct MbufMeta {
    wire::Address address;
    uint16_t local = 0;   // index of the local endpoint (received on / to leave from)
    uint16_t worker = 0;  // the shard that owns the address
    // Received: the link neighbour it came from. To send: the next hop to use instead of the
    // port's neighbour table (a reply to a peer not authenticated yet); zero: none.
    drivers::LinkHop hop;
};

// The protocol carries a datagram's link hop as an opaque 64-bit value (RxDatagram::link,
// OutDatagram::link).
inline uint64_t link_of(const drivers::LinkHop& h) {
    uint64_t v;
    std::memcpy(&v, &h, sizeof v);
    return v;
}
inline drivers::LinkHop hop_of(uint64_t link) {
    drivers::LinkHop h;
    std::memcpy(&h, &link, sizeof h);
    return h;
}

inline constexpr uint16_t kMbufPrivSize = (sizeof(MbufMeta) + RTE_MBUF_PRIV_ALIGN - 1) & ~(RTE_MBUF_PRIV_ALIGN - 1);

inline MbufMeta& meta(rte_mbuf* m) { return *static_cast<MbufMeta*>(rte_mbuf_to_priv(m)); }

}  // namespace pomelo::engine
