// What travels with a datagram's mbuf between lcores, in the mbuf's private area: the peer
// address (source on receive, destination on send), our local endpoint, and the worker it
// belongs to.
#pragma once

#include <rte_mbuf.h>

#include "protocol/wire/address.hpp"

namespace pomelo::engine {

struct MbufMeta {
    wire::Address address;
    uint16_t local = 0;   // index of the local endpoint (received on / to leave from)
    uint16_t worker = 0;  // the shard that owns the address
};

inline constexpr uint16_t kMbufPrivSize = (sizeof(MbufMeta) + RTE_MBUF_PRIV_ALIGN - 1) & ~(RTE_MBUF_PRIV_ALIGN - 1);

inline MbufMeta& meta(rte_mbuf* m) { return *static_cast<MbufMeta*>(rte_mbuf_to_priv(m)); }

}  // namespace pomelo::engine
