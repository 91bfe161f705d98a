// The load generator's impairment stage: a Port that wraps another and, in each direction,
// loses, duplicates, delays and reorders datagrams, as Linux netem would on a link (this
// kernel has none, and a memif link has no kernel in the path at all).
//
// Each datagram is, independently and in this order:
//   lost        with probability `loss` (freed, counted);
//   duplicated  with probability `duplicate` (a copy follows it, with delays of its own);
//   delayed     by delay_ns plus a uniform 0..jitter_ns;
//   reordered   with probability `reorder`: held reorder_ns longer, so that datagrams sent
//               after it overtake it.
// Datagrams wait in a time-ordered queue per direction (ties in arrival order) and leave at
// the first rx_burst or tx_burst at or after their time: a caller that polls rx_burst every
// loop, as ClientPool does, releases both directions on time. With every probability 0 and
// no delay, datagrams pass straight through in order.
//
// Random numbers come from a seeded generator (ImpairmentConfig::seed): a run can be
// repeated. Not for the data path: a queue costs a heap push and pop per datagram.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "drivers/port.hpp"
#include "engine/clock.hpp"

namespace pomelo::engine {

struct ImpairmentConfig {
    double loss = 0;          // 0..1, per datagram and direction
    double duplicate = 0;     // 0..1
    double reorder = 0;       // 0..1
    uint64_t delay_ns = 0;    // every datagram
    uint64_t jitter_ns = 0;   // plus uniform 0..jitter_ns
    uint64_t reorder_ns = 0;  // extra hold of a reordered datagram; 0: delay + jitter + 1 ms
    uint64_t seed = 1;
    // Datagrams held per direction (at least 256); beyond, they pass at once (counted). Every
    // held datagram is an mbuf out of the caller's pool: at R datagrams/s and a delay D, R x D
    // of them; a pool that runs dry loses datagrams the impairment did not choose to lose.
    uint32_t capacity = 65536;

    bool any() const { return loss > 0 || duplicate > 0 || reorder > 0 || delay_ns || jitter_ns; }
    // "loss=5%,dup=2%,reorder=5%,delay=2ms,jitter=1ms,reorder-delay=3ms,seed=7": percentages or
    // fractions (0.05), durations in ns/us/ms/s. Returns false with `error` naming the bad item.
    static bool parse(const std::string& text, ImpairmentConfig& out, std::string& error);
    std::string to_string() const;
};

// What one direction did to its datagrams.
struct ImpairmentStats {
    uint64_t seen = 0;        // datagrams that entered
    uint64_t lost = 0;
    uint64_t duplicated = 0;  // copies made (a copy that could not be allocated is not counted)
    uint64_t reordered = 0;
    uint64_t delivered = 0;   // left the stage (originals and copies)
    uint64_t overflowed = 0;  // passed at once: the queue was full
};

class ImpairedPort final : public drivers::Port {
public:
    // `inner` must outlive this port and have one queue (std::invalid_argument otherwise).
    // Copies for duplicates come from each mbuf's own pool.
    ImpairedPort(drivers::Port& inner, const ImpairmentConfig& config);
    // Sends what the transmit queue still holds (a held DISCONNECT still leaves), frees the
    // receive queue's.
    ~ImpairedPort() override;

    std::string name() const override { return inner_.name() + " (impaired)"; }
    uint16_t queue_count() const override { return inner_.queue_count(); }
    bool rss() const override { return inner_.rss(); }
    uint32_t mbufs_held() const override;
    const std::vector<wire::Address>& local_addresses() const override { return inner_.local_addresses(); }

    using drivers::Port::rx_burst;
    using drivers::Port::tx_burst;
    uint16_t rx_burst(uint16_t queue, rte_mbuf** pkts, wire::Address* from, uint16_t* local_index,
                      uint16_t n) override;
    uint16_t tx_burst(uint16_t queue, rte_mbuf** pkts, const wire::Address* to, const uint16_t* local_index,
                      uint16_t n) override;

    const ImpairmentStats& tx_stats() const { return tx_stats_; }  // generator -> network
    const ImpairmentStats& rx_stats() const { return rx_stats_; }  // network -> generator
    const ImpairmentConfig& config() const { return config_; }

private:
    struct Held {
        uint64_t due_ns;
        uint64_t order;  // arrival order: ties leave first-in first-out
        rte_mbuf* m;
        wire::Address peer;
        uint16_t local;
    };
    struct Direction {
        std::vector<Held> heap;  // min-heap on (due_ns, order); capacity reserved up front
        uint64_t next_order = 0;
        ImpairmentStats* stats;
    };

    uint64_t random();
    bool chance(uint64_t threshold) { return threshold && random() < threshold; }
    // Impairs one datagram (and its copy, if duplicated) into `d`'s queue.
    void admit(Direction& d, rte_mbuf* m, const wire::Address& peer, uint16_t local, uint64_t now_ns);
    void hold(Direction& d, rte_mbuf* m, const wire::Address& peer, uint16_t local, uint64_t due_ns);
    // Sends what the transmit queue holds that is due by now_ns (everything if `all`).
    void release_tx(uint64_t now_ns, bool all);
    void mirror_stats() { stats_[0] = inner_.stats(0); }

    drivers::Port& inner_;
    ImpairmentConfig config_;
    uint64_t loss_threshold_, duplicate_threshold_, reorder_threshold_;
    uint64_t rng_;
    TscClock clock_;
    ImpairmentStats tx_stats_, rx_stats_;
    Direction tx_, rx_;
    // Scratch for bursts to and from the inner port.
    std::vector<rte_mbuf*> pkts_;
    std::vector<wire::Address> peers_;
    std::vector<uint16_t> locals_;
};

}  // namespace pomelo::engine
