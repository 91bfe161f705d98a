// A BatchOutbox whose buffers are mbufs from a pool: sealed datagrams come out as finished
// mbufs (data_len set, failed seals freed) in bursts, for the owner to put on a device queue
// or a ring. The worker and the control thread differ only in deliver().
#pragma once

#include <rte_mbuf.h>

#include <functional>

#include "engine/mbuf_meta.hpp"
#include "protocol/batch_outbox.hpp"

namespace pomelo::engine {

class MbufOutbox final : public BatchOutbox {
public:
    static constexpr uint16_t kMaxBurst = 64;
    // Takes finished mbufs, their destinations and local endpoints; owns the mbufs from then on.
    // via[i]: the next hop for a reply to a peer not known yet (zero: the port's table).
    using Deliver =
        std::function<void(rte_mbuf** pkts, wire::Address* to, uint16_t* local, drivers::LinkHop* via, uint16_t n)>;

    MbufOutbox(crypto::BurstAead& aead, uint16_t burst, rte_mempool* pool, uint64_t& no_mbuf, Deliver deliver)
        : BatchOutbox(aead, std::min<uint16_t>(burst, kMaxBurst)),
          pool_(pool),
          no_mbuf_(no_mbuf),
          deliver_(std::move(deliver)) {}

private:
    Buffer next_buffer() override {
        rte_mbuf* m = rte_pktmbuf_alloc(pool_);
        if (!m) {
            ++no_mbuf_;
            return {};
        }
        return {std::span(rte_pktmbuf_mtod(m, uint8_t*), rte_pktmbuf_tailroom(m)), m};
    }
    void release(Buffer b) override { rte_pktmbuf_free(static_cast<rte_mbuf*>(b.context)); }
    void transmit(std::span<SealedDatagram> sealed) override {
        rte_mbuf* pkts[kMaxBurst];
        wire::Address to[kMaxBurst];
        uint16_t local[kMaxBurst];
        drivers::LinkHop via[kMaxBurst];
        uint16_t n = 0;
        for (SealedDatagram& d : sealed) {
            rte_mbuf* m = static_cast<rte_mbuf*>(d.context);
            if (d.bytes.empty()) {  // the seal failed (suite unavailable)
                rte_pktmbuf_free(m);
                continue;
            }
            m->data_len = static_cast<uint16_t>(d.bytes.size());
            m->pkt_len = m->data_len;
            pkts[n] = m;
            local[n] = d.local;
            via[n] = hop_of(d.link);
            to[n++] = d.to;
            if (n == kMaxBurst) {
                deliver_(pkts, to, local, via, n);
                n = 0;
            }
        }
        if (n) deliver_(pkts, to, local, via, n);
    }

    rte_mempool* pool_;
    uint64_t& no_mbuf_;
    Deliver deliver_;
};

}  // namespace pomelo::engine
