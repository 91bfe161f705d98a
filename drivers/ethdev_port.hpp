// A Port over a DPDK ethdev: any PMD (memif, af_xdp, af_packet, tap, ring, null, real NICs).
// The port speaks just enough Ethernet / IPv4 / IPv6 to be a UDP endpoint on a link: it
// answers ARP and neighbour solicitations for its addresses and hands over only UDP payloads
// addressed to its endpoints, each with the MAC and VLAN tag it came from. By default it
// learns nothing by itself: a frame proves nothing about its source address, so the caller
// teaches it (learn_neighbours) the peers whose datagrams authenticated, and answers the
// others through tx_burst's per-datagram next hop. That is the server's model.
//
// A client or load generator instead turns on address resolution (EthdevConfig::resolve): a
// datagram with no next hop is held (a few per destination) while the port asks for the
// destination's, or the configured gateway's, MAC (an ARP request, RFC 826, or a neighbour
// solicitation, RFC 4861), once a second by default, giving up after three. Only the answer
// to an outstanding request is learned (into the queue's neighbour table); anything else
// claiming an address is counted and ignored. Learned next hops do not age out.
//
// Threading: queue q's rx_burst and tx_burst run on one lcore; different queues may run on
// different lcores concurrently. Each queue therefore has its own neighbour table (a plain
// rte_hash with no locks, written only by that lcore): a reply normally leaves on the queue
// its request came in on, which is how the engine's workers use the port. learn_neighbours
// may run anywhere: it posts to the queue's inbox (a multi-producer ring), which the queue's
// lcore empties into the table at its next tx_burst. A destination learned on another queue
// only costs a fallback to the gateway.
#pragma once

#include <rte_ether.h>
#include <rte_hash.h>
#include <rte_mempool.h>
#include <rte_ring.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "drivers/l2l3.hpp"
#include "drivers/port.hpp"
#include "protocol/wire/address.hpp"

namespace pomelo::drivers {

// Address resolution of next hops (see the header comment). Off by default.
struct ResolveConfig {
    bool enabled = false;
    // When set: every destination of this IP's family goes through it (the router), and it
    // is this IP that is resolved (port ignored). Otherwise each destination is resolved
    // itself (all on the link).
    std::optional<wire::Address> gateway;
    uint32_t retry_ms = 1000;   // between two requests for one IP (RFC 1122 §2.3.2.1: 1 s); 10..60000
    uint32_t tries = 3;         // requests before giving up on it (as Linux); 1..10
    uint32_t hold = 4;          // datagrams held per IP being resolved; more are dropped; 1..64
    uint32_t destinations = 64; // IPs being resolved at once, per queue; 1..4096
};

struct EthdevConfig {
    std::string device;                     // DPDK port name ("net_memif0") or numeric port id
    std::vector<wire::Address> local;       // UDP endpoints served; 1..65535 (hashed when many)
    uint16_t queues = 1;                    // rx/tx queue pairs; RSS on the UDP 4-tuple if > 1
    uint16_t rx_desc = 1024;                // both clamped to what the device accepts
    uint16_t tx_desc = 1024;
    rte_mempool* pool = nullptr;            // receive buffers
    std::optional<rte_ether_addr> gateway;  // next hop for destinations not learned
    bool promiscuous = false;
    uint32_t neighbours = 16384;            // neighbour table capacity, per queue (at least 64)
    ResolveConfig resolve;                  // excludes `gateway`; needs queues == 1
};

// IP -> next hop (MAC and VLAN tag) for the peers one queue was taught. Bounded: when full,
// a new peer evicts the one taught longest ago (a still active peer is taught again by its
// next authenticated datagram, and until then goes to the gateway). Teaching a known peer a
// new hop updates it in place.
class NeighbourTable {
public:
    // 16 bytes: IPv6 as is, IPv4 as ::ffff:a.b.c.d so the families never collide.
    struct Key {
        uint8_t ip[16];
        static Key of(const wire::Address& a);
    };

    NeighbourTable() = default;
    NeighbourTable(NeighbourTable&& o) noexcept
        : hash_(o.hash_), order_(std::move(o.order_)), oldest_(o.oldest_), count_(o.count_) {
        o.hash_ = nullptr;
    }
    NeighbourTable& operator=(NeighbourTable&&) = delete;
    ~NeighbourTable();

    bool create(const char* name, uint32_t entries, int socket, std::string& error);
    // Remembers keys[i] -> hops[i]: bulk lookups, writes only for new or changed entries.
    // Returns how many entries were evicted to make room.
    uint32_t learn(const Key* keys, const LinkHop* hops, uint32_t n);
    // Up to RTE_HASH_LOOKUP_BULK_MAX keys at once; bit i of the result is set when hops[i]
    // was found.
    uint64_t lookup(const Key* keys, uint32_t n, LinkHop* hops) const;

    uint32_t size() const { return count_; }

private:
    bool insert(const Key& key, const LinkHop& hop);  // a new key; true if an entry was evicted
    bool evict_oldest();

    rte_hash* hash_ = nullptr;
    // The keys in the order they were first taught: a circular buffer of the table's capacity
    // (entries are only ever removed by eviction, so it holds exactly the table's keys).
    std::vector<Key> order_;
    uint32_t oldest_ = 0;
    uint32_t count_ = 0;
};

class EthdevPort final : public Port {
public:
    // rx_burst takes at most this many frames from the device per call.
    static constexpr uint16_t kMaxBurst = 256;

    ~EthdevPort() override;
    EthdevPort(const EthdevPort&) = delete;  // view_ and the sources point into local_
    EthdevPort& operator=(const EthdevPort&) = delete;

    std::string name() const override { return name_; }
    uint16_t queue_count() const override { return static_cast<uint16_t>(stats_.size()); }
    const std::vector<wire::Address>& local_addresses() const override { return local_; }
    uint16_t rx_burst(uint16_t queue, rte_mbuf** pkts, wire::Address* from, uint16_t* local_index,
                      uint16_t n) override;
    uint16_t tx_burst(uint16_t queue, rte_mbuf** pkts, const wire::Address* to, const uint16_t* local_index,
                      uint16_t n) override;
    uint16_t rx_burst(uint16_t queue, rte_mbuf** pkts, wire::Address* from, uint16_t* local_index, LinkHop* hop,
                      uint16_t n) override;
    uint16_t tx_burst(uint16_t queue, rte_mbuf** pkts, const wire::Address* to, const uint16_t* local_index,
                      const LinkHop* via, uint16_t n) override;
    void learn_neighbours(uint16_t queue, const wire::Address* peer, const LinkHop* hop, uint16_t n) override;

    // Entries each queue's learn inbox holds between two of its tx_bursts.
    static constexpr unsigned kLearnInbox = 4096;

    uint16_t port_id() const { return port_id_; }
    const rte_ether_addr& mac() const { return view_.mac; }
    l2l3::TxOffloads tx_offloads() const { return offloads_; }
    bool rss() const override { return rss_; }
    uint32_t mbufs_held() const override { return mbufs_held_; }
    bool resolves() const { return !resolution_.empty(); }
    // The next hop queue `queue`'s neighbour table holds for `ip` (port ignored), if any.
    // Reads the table: call it on the queue's lcore (or when nothing else runs).
    std::optional<LinkHop> neighbour(uint16_t queue, const wire::Address& ip) const;

private:
    friend std::unique_ptr<Port> open_ethdev_port(const EthdevConfig&, std::string&);
    EthdevPort(uint16_t port_id, const EthdevConfig& config);

    bool start(const EthdevConfig& config, std::string& error);
    bool configure(const EthdevConfig& config, std::string& error);
    bool setup_queues(const EthdevConfig& config, std::string& error);
    void accept_solicited_node_multicast();
    bool create_neighbour_tables(const EthdevConfig& config, std::string& error);

    void send_replies(uint16_t queue, rte_mbuf** replies, uint16_t n);
    // Moves what learn_neighbours posted for `queue` into its table (on the queue's lcore).
    void absorb_learned(uint16_t queue);
    uint16_t prepare_tx(uint16_t queue, rte_mbuf** pkts, const wire::Address* to, const uint16_t* local_index,
                        const LinkHop* via, uint16_t n);
    const wire::Address* source_for(wire::AddressType family) const {
        return family == wire::AddressType::ipv4 ? source4_ : family == wire::AddressType::ipv6 ? source6_ : nullptr;
    }
    // local_[index] if it exists and is of the destination's family.
    const wire::Address* source_at(uint16_t index, wire::AddressType family) const {
        if (index == wire::kAnyLocal) return source_for(family);
        return index < local_.size() && local_[index].type == family ? &local_[index] : nullptr;
    }
    bool fits_mtu(const rte_mbuf* m, wire::AddressType family) const;

    // Address resolution, on the queue's lcore. One IP being resolved and what waits for it.
    struct Pending {
        NeighbourTable::Key key{};  // the IP asked for
        wire::Address ip;
        uint64_t next_tsc = 0;  // when the next request goes, or (after the last) we give up
        uint32_t tries = 0;     // requests sent
        uint32_t held = 0;      // datagrams held, at hold_at(slot, 0 .. held - 1)
        bool gateway = false;   // the family's gateway: its answer serves every destination
        bool active = false;
    };
    struct Held {
        rte_mbuf* m;
        wire::Address to;
        const wire::Address* from;  // into local_
    };
    struct Resolution {
        std::vector<Pending> pending;  // config.resolve.destinations slots
        std::vector<Held> held;        // `hold` per slot
        uint32_t active = 0;
        LinkHop gateway_hop[2]{};      // the resolved gateway, IPv4 and IPv6; zero: not yet
    };
    bool setup_resolution(const EthdevConfig& config, std::string& error);
    const LinkHop* resolved_gateway(uint16_t queue, wire::AddressType family) const {
        const LinkHop& g = resolution_[queue].gateway_hop[family == wire::AddressType::ipv6];
        return g.known() ? &g : nullptr;
    }
    // Holds `m` for `to` (from `from`) until its next hop answers, asking for it if nobody
    // has yet. False when it cannot be held (no slot, hold full): the caller drops it.
    bool hold(uint16_t queue, rte_mbuf* m, const wire::Address& to, const wire::Address* from, uint64_t now);
    // Sends the request for slot `p` (and counts it).
    void solicit(uint16_t queue, Pending& p, uint64_t now);
    // Retries requests that are due and gives up on those tried enough (reads the TSC once).
    void resolve_due(uint16_t queue);
    // An ARP reply or neighbour advertisement to us: learned if we asked, else counted.
    void on_answer(uint16_t queue, const l2l3::RxFrame& f);
    void release(uint16_t queue, Pending& p, const LinkHop* hop);  // sends (hop) or drops what p holds

    uint16_t port_id_;
    std::string name_;
    std::vector<wire::Address> local_;
    l2l3::LocalView view_;  // endpoint and IP lookups (hash maps when many), read-only once open
    const wire::Address* source4_ = nullptr;  // first local address of each family: what we send from
    const wire::Address* source6_ = nullptr;
    std::optional<rte_ether_addr> gateway_;
    l2l3::TxOffloads offloads_{};
    bool rss_ = false;
    uint32_t mbufs_held_ = 0;
    bool started_ = false;
    uint16_t mtu_ = RTE_ETHER_MTU;
    std::vector<NeighbourTable> neighbours_;
    std::vector<rte_ring*> learn_inbox_;  // per queue: NeighbourEntry elements, any producer
    // Per queue: entries learn_neighbours could not post (written by any thread; the queue's
    // lcore copies it into its stats).
    std::unique_ptr<std::atomic<uint64_t>[]> learn_lost_;
    // Resolution (empty when off): per queue, written by the queue's lcore only.
    std::vector<Resolution> resolution_;
    std::optional<wire::Address> resolve_gateway_;
    uint32_t resolve_hold_ = 0, resolve_tries_ = 0;
    uint64_t resolve_retry_tsc_ = 0;
    rte_mempool* pool_ = nullptr;  // requests are built in its mbufs
};

// Configures, starts and returns the port, or nullptr with `error` set to one line naming the
// problem (unknown device, no local address, too many queues, a DPDK call that failed).
std::unique_ptr<Port> open_ethdev_port(const EthdevConfig& config, std::string& error);

}  // namespace pomelo::drivers
