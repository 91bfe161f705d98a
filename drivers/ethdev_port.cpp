#include "drivers/ethdev_port.hpp"

#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_jhash.h>
#include <rte_random.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <cstdio>
#include <cstring>

#include "drivers/quiesce.hpp"

namespace pomelo::drivers {

using wire::Address;
using wire::AddressType;

namespace {

constexpr uint32_t kLookupChunk = RTE_HASH_LOOKUP_BULK_MAX;

// A next hop (MAC and VLAN tag, 8 bytes) fits in the hash's data pointer itself: no
// per-entry storage to allocate or free.
static_assert(sizeof(void*) >= sizeof(LinkHop));

void* pack(const LinkHop& hop) {
    uintptr_t v = 0;
    std::memcpy(&v, &hop, sizeof hop);
    return reinterpret_cast<void*>(v);
}

LinkHop unpack(const void* data) {
    const auto v = reinterpret_cast<uintptr_t>(data);
    LinkHop hop;
    std::memcpy(&hop, &v, sizeof hop);
    return hop;
}

bool same_hop(const LinkHop& a, const LinkHop& b) {
    return rte_is_same_ether_addr(&a.mac, &b.mac) && a.vlan_tci == b.vlan_tci;
}

// What learn_neighbours posts to a queue's inbox.
struct NeighbourEntry {
    NeighbourTable::Key key;
    LinkHop hop;
};
static_assert(sizeof(NeighbourEntry) % 4 == 0);  // rte_ring element sizes are multiples of 4

std::optional<uint16_t> find_port(const std::string& device) {
    uint16_t id = 0;
    if (rte_eth_dev_get_port_by_name(device.c_str(), &id) == 0) return id;
    const char* end = device.data() + device.size();
    auto [ptr, ec] = std::from_chars(device.data(), end, id);
    if (!device.empty() && ec == std::errc() && ptr == end && rte_eth_dev_is_valid_port(id)) return id;
    return std::nullopt;
}

bool valid_local(const Address& a) { return a.type != AddressType::none && a.port != 0; }

std::string dpdk_error(const char* what, int rc) { return std::string(what) + ": " + rte_strerror(rc < 0 ? -rc : rc); }

std::atomic<unsigned> g_table_serial{0};

// Why config.resolve cannot work, or "".
std::string check_resolve(const EthdevConfig& c) {
    const ResolveConfig& r = c.resolve;
    if (!r.enabled) return r.gateway ? "a gateway IP needs address resolution enabled" : "";
    if (c.gateway)
        return "a gateway MAC and address resolution exclude each other (give the MAC or let the port resolve)";
    if (c.queues != 1)
        return "address resolution needs 1 queue, " + std::to_string(c.queues) +
               " requested (ARP replies are not spread by RSS: they would reach a queue that did not ask)";
    if (r.gateway) {
        if (r.gateway->type == AddressType::none || r.gateway->ip == Address{}.ip)
            return "gateway IP " + r.gateway->to_string() + " is not a station's address";
        const bool have_family = std::any_of(c.local.begin(), c.local.end(),
                                             [&](const Address& a) { return a.type == r.gateway->type; });
        if (!have_family)
            return "gateway IP " + r.gateway->to_string() + ": no local address of its family to ask from";
    }
    if (r.retry_ms < 10 || r.retry_ms > 60000)
        return "resolve retry interval " + std::to_string(r.retry_ms) + " ms, want 10..60000";
    if (r.tries < 1 || r.tries > 10) return "resolve tries " + std::to_string(r.tries) + ", want 1..10";
    if (r.hold < 1 || r.hold > 64) return "resolve hold " + std::to_string(r.hold) + " datagrams, want 1..64";
    if (r.destinations < 1 || r.destinations > 4096)
        return "resolve destinations " + std::to_string(r.destinations) + ", want 1..4096";
    return "";
}

}  // namespace

// --- NeighbourTable ---

NeighbourTable::Key NeighbourTable::Key::of(const Address& a) {
    Key k{};
    if (a.type == AddressType::ipv6) {
        std::memcpy(k.ip, a.ip.data(), 16);
    } else {
        k.ip[10] = k.ip[11] = 0xff;
        std::memcpy(k.ip + 12, a.ip.data(), 4);
    }
    return k;
}

NeighbourTable::~NeighbourTable() { rte_hash_free(hash_); }

bool NeighbourTable::create(const char* name, uint32_t entries, int socket, std::string& error) {
    rte_hash_parameters p{};
    p.name = name;
    p.entries = std::max<uint32_t>(entries, 64);
    p.key_len = sizeof(Key);
    p.hash_func = rte_jhash;
    // Source addresses are chosen by whoever sends to us: a secret seed keeps them from
    // aiming at one bucket.
    p.hash_func_init_val = static_cast<uint32_t>(rte_rand());
    p.socket_id = socket;
    // Bucket overflow goes to extension buckets: adding fails only when every entry is taken,
    // which is when one is evicted.
    p.extra_flag = RTE_HASH_EXTRA_FLAGS_EXT_TABLE;
    hash_ = rte_hash_create(&p);
    if (hash_ == nullptr) return error = dpdk_error("cannot create neighbour table", rte_errno), false;
    order_.resize(p.entries);
    return true;
}

uint32_t NeighbourTable::learn(const Key* keys, const LinkHop* hops, uint32_t n) {
    LinkHop known[kLookupChunk];
    uint32_t evicted = 0;
    for (uint32_t base = 0; base < n; base += kLookupChunk) {
        const uint32_t chunk = std::min(kLookupChunk, n - base);
        const uint64_t hits = lookup(keys + base, chunk, known);
        for (uint32_t i = 0; i < chunk; ++i) {
            if (!((hits >> i) & 1))
                evicted += insert(keys[base + i], hops[base + i]);
            else if (!same_hop(known[i], hops[base + i]))
                rte_hash_add_key_data(hash_, &keys[base + i], pack(hops[base + i]));  // moved: in place
        }
    }
    return evicted;
}

bool NeighbourTable::insert(const Key& key, const LinkHop& hop) {
    const auto capacity = static_cast<uint32_t>(order_.size());
    bool evicted = false;
    if (count_ == capacity) evicted = evict_oldest();
    if (rte_hash_add_key_data(hash_, &key, pack(hop)) == -ENOSPC) {
        if (!evict_oldest()) return evicted;
        evicted = true;
        if (rte_hash_add_key_data(hash_, &key, pack(hop)) != 0) return evicted;
    }
    uint32_t tail = oldest_ + count_;
    if (tail >= capacity) tail -= capacity;
    order_[tail] = key;
    ++count_;
    return evicted;
}

bool NeighbourTable::evict_oldest() {
    if (count_ == 0) return false;
    rte_hash_del_key(hash_, &order_[oldest_]);
    if (++oldest_ == order_.size()) oldest_ = 0;
    --count_;
    return true;
}

uint64_t NeighbourTable::lookup(const Key* keys, uint32_t n, LinkHop* hops) const {
    const void* key_ptrs[kLookupChunk];
    void* data[kLookupChunk];
    n = std::min(n, kLookupChunk);
    if (n == 0) return 0;
    for (uint32_t i = 0; i < n; ++i) key_ptrs[i] = &keys[i];
    uint64_t hits = 0;
    if (rte_hash_lookup_bulk_data(hash_, key_ptrs, n, &hits, data) < 0) return 0;
    for (uint32_t i = 0; i < n; ++i)
        if (hits & (uint64_t{1} << i)) hops[i] = unpack(data[i]);
    return hits;
}

// --- EthdevPort: setup ---

EthdevPort::EthdevPort(uint16_t port_id, const EthdevConfig& config)
    : Port(config.queues), port_id_(port_id), local_(config.local), gateway_(config.gateway), pool_(config.pool) {
    char name[RTE_ETH_NAME_MAX_LEN] = {};
    rte_eth_dev_get_name_by_port(port_id, name);
    name_ = name;
    view_ = l2l3::LocalView(rte_ether_addr{}, local_);  // the MAC is read at start
    for (const Address& a : local_) {
        if (a.type == AddressType::ipv4 && !source4_) source4_ = &a;
        if (a.type == AddressType::ipv6 && !source6_) source6_ = &a;
    }
}

EthdevPort::~EthdevPort() {
    for (Resolution& r : resolution_)
        for (Pending& p : r.pending)
            if (p.active) release(static_cast<uint16_t>(&r - resolution_.data()), p, nullptr);
    for (rte_ring* r : learn_inbox_) rte_ring_free(r);
    // A port that never started is left configured, so the caller can retry other settings.
    if (!started_) return;
    rte_eth_dev_stop(port_id_);
    rte_eth_dev_close(port_id_);
}

bool EthdevPort::configure(const EthdevConfig& config, std::string& error) {
    rte_eth_dev_info info{};
    int rc = rte_eth_dev_info_get(port_id_, &info);
    if (rc != 0) return error = dpdk_error("cannot query device", rc), false;
    if (config.queues == 0) return error = "0 queues requested, at least 1 needed", false;
    if (config.queues > info.max_rx_queues || config.queues > info.max_tx_queues) {
        error = "device supports at most " + std::to_string(std::min(info.max_rx_queues, info.max_tx_queues)) +
                " queue(s), " + std::to_string(config.queues) + " requested";
        return false;
    }
    rte_eth_conf conf{};
    if (config.queues > 1) {
        // Spread clients over queues by their UDP 4-tuple; devices hashing addresses only
        // still spread them by IP. Devices without RSS (memif, ring) split however they do.
        const uint64_t wanted = RTE_ETH_RSS_NONFRAG_IPV4_UDP | RTE_ETH_RSS_NONFRAG_IPV6_UDP | RTE_ETH_RSS_IPV4 |
                                RTE_ETH_RSS_IPV6;
        const uint64_t hf = wanted & info.flow_type_rss_offloads;
        if (hf != 0) {
            conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
            conf.rx_adv_conf.rss_conf.rss_hf = hf;
            rss_ = true;
        }
    }
    conf.rxmode.offloads = info.rx_offload_capa & (RTE_ETH_RX_OFFLOAD_IPV4_CKSUM | RTE_ETH_RX_OFFLOAD_UDP_CKSUM);
    conf.txmode.offloads = info.tx_offload_capa & (RTE_ETH_TX_OFFLOAD_IPV4_CKSUM | RTE_ETH_TX_OFFLOAD_UDP_CKSUM |
                                                   RTE_ETH_TX_OFFLOAD_MULTI_SEGS);
    offloads_.ipv4_cksum = conf.txmode.offloads & RTE_ETH_TX_OFFLOAD_IPV4_CKSUM;
    offloads_.udp_cksum = conf.txmode.offloads & RTE_ETH_TX_OFFLOAD_UDP_CKSUM;
    rc = rte_eth_dev_configure(port_id_, config.queues, config.queues, &conf);
    if (rc != 0) return error = dpdk_error("configure failed", rc), false;
    return true;
}

bool EthdevPort::setup_queues(const EthdevConfig& config, std::string& error) {
    uint16_t rx_desc = config.rx_desc, tx_desc = config.tx_desc;
    int rc = rte_eth_dev_adjust_nb_rx_tx_desc(port_id_, &rx_desc, &tx_desc);
    if (rc != 0) return error = dpdk_error("cannot adjust descriptor counts", rc), false;
    const auto socket = static_cast<unsigned>(rte_eth_dev_socket_id(port_id_));  // -1: any
    mbufs_held_ = uint32_t{config.queues} * (uint32_t{rx_desc} + tx_desc);
    for (uint16_t q = 0; q < config.queues; ++q) {
        rc = rte_eth_rx_queue_setup(port_id_, q, rx_desc, socket, nullptr, config.pool);
        if (rc != 0) return error = dpdk_error(("rx queue " + std::to_string(q) + " setup failed").c_str(), rc), false;
        rc = rte_eth_tx_queue_setup(port_id_, q, tx_desc, socket, nullptr);
        if (rc != 0) return error = dpdk_error(("tx queue " + std::to_string(q) + " setup failed").c_str(), rc), false;
    }
    return true;
}

// Neighbour solicitations go to a multicast MAC a filtering NIC would drop: ask for ours, or
// for all multicast when the device has no filter list. Best effort: virtual devices filter
// nothing and support neither.
void EthdevPort::accept_solicited_node_multicast() {
    std::vector<rte_ether_addr> macs;
    for (const Address& a : local_) {
        if (a.type != AddressType::ipv6) continue;
        const rte_ether_addr mac = l2l3::solicited_node_mac(a.ip.data());
        if (std::none_of(macs.begin(), macs.end(), [&](const rte_ether_addr& m) { return rte_is_same_ether_addr(&m, &mac); }))
            macs.push_back(mac);
    }
    if (macs.empty()) return;
    if (rte_eth_dev_set_mc_addr_list(port_id_, macs.data(), static_cast<uint32_t>(macs.size())) != 0)
        rte_eth_allmulticast_enable(port_id_);
}

bool EthdevPort::create_neighbour_tables(const EthdevConfig& config, std::string& error) {
    neighbours_.reserve(config.queues);
    learn_inbox_.reserve(config.queues);
    learn_lost_ = std::make_unique<std::atomic<uint64_t>[]>(config.queues);
    const int socket = rte_eth_dev_socket_id(port_id_);
    for (uint16_t q = 0; q < config.queues; ++q) {
        const unsigned serial = g_table_serial.fetch_add(1);
        char name[RTE_HASH_NAMESIZE];
        std::snprintf(name, sizeof name, "pomelo_nb%u", serial);
        neighbours_.emplace_back();
        if (!neighbours_.back().create(name, config.neighbours, socket, error)) return false;
        std::snprintf(name, sizeof name, "pomelo_nl%u", serial);
        // Any producer (workers, the control thread), one consumer: the queue's lcore.
        learn_inbox_.push_back(rte_ring_create_elem(name, sizeof(NeighbourEntry), kLearnInbox, socket, RING_F_SC_DEQ));
        if (learn_inbox_.back() == nullptr) return error = dpdk_error("cannot create neighbour inbox", rte_errno), false;
    }
    return true;
}

bool EthdevPort::setup_resolution(const EthdevConfig& config, std::string& error) {
    const ResolveConfig& r = config.resolve;
    if (!r.enabled) return true;
    resolve_gateway_ = r.gateway;
    resolve_hold_ = r.hold;
    resolve_tries_ = r.tries;
    resolve_retry_tsc_ = rte_get_tsc_hz() / 1000 * r.retry_ms;
    if (resolve_retry_tsc_ == 0) return error = "cannot read the TSC frequency (needed to time requests)", false;
    resolution_.resize(config.queues);
    for (Resolution& q : resolution_) {
        q.pending.resize(r.destinations);
        q.held.resize(size_t{r.destinations} * r.hold);
    }
    mbufs_held_ += uint32_t{config.queues} * r.destinations * r.hold;
    return true;
}

bool EthdevPort::start(const EthdevConfig& config, std::string& error) {
    if (!configure(config, error) || !setup_queues(config, error) || !create_neighbour_tables(config, error) ||
        !setup_resolution(config, error))
        return false;
    if (config.promiscuous) {
        const int rc = rte_eth_promiscuous_enable(port_id_);
        if (rc != 0) return error = dpdk_error("cannot enable promiscuous mode", rc), false;
    }
    int rc = rte_eth_macaddr_get(port_id_, &view_.mac);
    if (rc != 0) return error = dpdk_error("cannot read MAC address", rc), false;
    if (rte_eth_dev_get_mtu(port_id_, &mtu_) != 0) mtu_ = RTE_ETHER_MTU;
    rc = rte_eth_dev_start(port_id_);
    if (rc != 0) return error = dpdk_error("start failed", rc), false;
    started_ = true;
    accept_solicited_node_multicast();
    return true;
}

std::unique_ptr<Port> open_ethdev_port(const EthdevConfig& config, std::string& error) {
    const std::string prefix = "ethdev port '" + config.device + "': ";
    if (config.local.empty() || !std::all_of(config.local.begin(), config.local.end(), valid_local)) {
        error = prefix + "no local address to serve (need at least one IP:port, port not 0)";
        return nullptr;
    }
    if (config.local.size() >= l2l3::LocalView::kNone) {
        error = prefix + std::to_string(config.local.size()) + " local addresses, at most " +
                std::to_string(l2l3::LocalView::kNone - 1);
        return nullptr;
    }
    if (config.pool == nullptr) {
        error = prefix + "no mbuf pool";
        return nullptr;
    }
    if (const std::string why = check_resolve(config); !why.empty()) {
        error = prefix + why;
        return nullptr;
    }
    const std::optional<uint16_t> id = find_port(config.device);
    if (!id) {
        error = prefix + "unknown device (no DPDK port by that name or id)";
        return nullptr;
    }
    std::unique_ptr<EthdevPort> port(new EthdevPort(*id, config));
    if (!port->start(config, error)) {
        error = prefix + error;
        return nullptr;
    }
    return port;
}

// --- EthdevPort: data path ---

uint16_t EthdevPort::rx_burst(uint16_t queue, rte_mbuf** pkts, Address* from, uint16_t* local_index, uint16_t n) {
    return rx_burst(queue, pkts, from, local_index, nullptr, n);
}

uint16_t EthdevPort::rx_burst(uint16_t queue, rte_mbuf** pkts, Address* from, uint16_t* local_index, LinkHop* hop,
                              uint16_t n) {
    PortStats& st = stats_[queue];
    if (!resolution_.empty() && resolution_[queue].active) resolve_due(queue);
    uint16_t got;
    {
        const quiesce::BurstScope in_burst;  // the PMD may be unmapping its rings (quiesce.hpp)
        got = rte_eth_rx_burst(port_id_, queue, pkts, std::min(n, kMaxBurst));
    }
    st.rx_packets += got;

    rte_mbuf* replies[kMaxBurst];
    rte_mbuf* drops[kMaxBurst];
    uint16_t kept = 0, n_replies = 0, n_drops = 0;

    for (uint16_t i = 0; i < got; ++i) {
        rte_mbuf* m = pkts[i];
        const l2l3::RxFrame f = l2l3::parse_frame(m, view_);
        switch (f.kind) {
            case l2l3::FrameKind::udp:
                if (!l2l3::strip_to_payload(m, f)) {
                    drops[n_drops++] = m;
                    ++st.rx_malformed;
                    break;
                }
                pkts[kept] = m;  // kept <= i: compacting in place
                from[kept] = f.src;
                if (local_index) local_index[kept] = f.local_index;
                if (hop) hop[kept] = LinkHop{f.link_addr, f.vlan_tci};
                ++kept;
                break;
            case l2l3::FrameKind::arp_request:
                l2l3::make_arp_reply(m, f, view_.mac);
                replies[n_replies++] = m;
                ++st.arp_replies;  // answered; should the device refuse it, tx_dropped says so
                break;
            case l2l3::FrameKind::neighbour_solicit:
                if (l2l3::make_neighbour_advert(m, f, view_.mac)) {
                    replies[n_replies++] = m;
                    ++st.nd_adverts;
                } else {
                    drops[n_drops++] = m;
                    ++st.tx_dropped;
                }
                break;
            case l2l3::FrameKind::arp_reply:
            case l2l3::FrameKind::neighbour_advert:
                if (resolution_.empty()) ++st.neighbours_unsolicited;
                else on_answer(queue, f);
                drops[n_drops++] = m;
                break;
            case l2l3::FrameKind::not_ours:
                drops[n_drops++] = m;
                ++st.rx_not_ours;
                break;
            case l2l3::FrameKind::malformed:
                drops[n_drops++] = m;
                ++st.rx_malformed;
                break;
        }
    }
    st.rx_datagrams += kept;
    if (n_drops) rte_pktmbuf_free_bulk(drops, n_drops);
    if (n_replies) send_replies(queue, replies, n_replies);
    return kept;
}

// ARP / ND answers leave on the queue their request came in on (same lcore, no locking).
void EthdevPort::send_replies(uint16_t queue, rte_mbuf** replies, uint16_t n) {
    uint16_t sent;
    {
        const quiesce::BurstScope in_burst;
        sent = rte_eth_tx_burst(port_id_, queue, replies, n);
    }
    if (sent < n) {
        rte_pktmbuf_free_bulk(replies + sent, n - sent);
        stats_[queue].tx_dropped += n - sent;
    }
}

bool EthdevPort::fits_mtu(const rte_mbuf* m, AddressType family) const {
    return rte_pktmbuf_pkt_len(m) + l2l3::udp_header_bytes(family) - sizeof(rte_ether_hdr) <= mtu_;
}

void EthdevPort::learn_neighbours(uint16_t queue, const Address* peer, const LinkHop* hop, uint16_t n) {
    if (queue >= learn_inbox_.size()) return;
    NeighbourEntry entries[kLookupChunk];
    uint64_t lost = 0;
    for (uint16_t base = 0; base < n; base = static_cast<uint16_t>(base + kLookupChunk)) {
        const auto chunk = static_cast<uint16_t>(std::min<uint32_t>(kLookupChunk, n - base));
        unsigned k = 0;
        for (uint16_t i = base; i < base + chunk; ++i) {
            if (!hop[i].known() || peer[i].type == AddressType::none) continue;
            const NeighbourTable::Key key = NeighbourTable::Key::of(peer[i]);
            // A burst often holds several datagrams of one peer: post it once.
            if (k && std::memcmp(&entries[k - 1].key, &key, sizeof key) == 0 && same_hop(entries[k - 1].hop, hop[i]))
                continue;
            entries[k++] = {key, hop[i]};
        }
        lost += k - rte_ring_mp_enqueue_burst_elem(learn_inbox_[queue], entries, sizeof(NeighbourEntry), k, nullptr);
    }
    if (lost) learn_lost_[queue].fetch_add(lost, std::memory_order_relaxed);
}

void EthdevPort::absorb_learned(uint16_t queue) {
    NeighbourEntry entries[kLookupChunk];
    NeighbourTable::Key keys[kLookupChunk];
    LinkHop hops[kLookupChunk];
    PortStats& st = stats_[queue];
    for (unsigned round = 0; round < kLearnInbox / kLookupChunk; ++round) {
        const unsigned k = rte_ring_sc_dequeue_burst_elem(learn_inbox_[queue], entries, sizeof(NeighbourEntry),
                                                          kLookupChunk, nullptr);
        for (unsigned i = 0; i < k; ++i) {
            keys[i] = entries[i].key;
            hops[i] = entries[i].hop;
        }
        if (k) st.neighbours_evicted += neighbours_[queue].learn(keys, hops, k);
        if (k < kLookupChunk) break;
    }
    st.neighbours_lost = learn_lost_[queue].load(std::memory_order_relaxed);
}

// Puts headers on every datagram that has a source, a next hop and fits, compacting them to
// the front of pkts; frees and counts the others.
uint16_t EthdevPort::prepare_tx(uint16_t queue, rte_mbuf** pkts, const Address* to, const uint16_t* local_index,
                                const LinkHop* via, uint16_t n) {
    absorb_learned(queue);
    NeighbourTable::Key keys[kLookupChunk];
    LinkHop next_hops[kLookupChunk];
    rte_mbuf* drops[kLookupChunk];
    const LinkHop gateway = gateway_ ? LinkHop{*gateway_, 0} : LinkHop{};
    const bool resolving = !resolution_.empty();
    uint64_t now = 0;  // the TSC, read once per burst and only when something is to be resolved
    uint32_t unresolved = 0;
    uint16_t ready = 0;
    for (uint16_t base = 0; base < n; base = static_cast<uint16_t>(base + kLookupChunk)) {
        const auto chunk = static_cast<uint16_t>(std::min<uint32_t>(kLookupChunk, n - base));
        for (uint16_t i = 0; i < chunk; ++i) keys[i] = NeighbourTable::Key::of(to[base + i]);
        const uint64_t hits = neighbours_[queue].lookup(keys, chunk, next_hops);
        uint16_t n_drops = 0;
        for (uint16_t i = 0; i < chunk; ++i) {
            rte_mbuf* m = pkts[base + i];
            const Address& dst = to[base + i];
            const LinkHop* hop = via && via[base + i].known() ? &via[base + i]
                                 : (hits >> i) & 1                ? &next_hops[i]
                                 : gateway_                       ? &gateway
                                                                  : nullptr;
            const Address* src = local_index ? source_at(local_index[base + i], dst.type) : source_for(dst.type);
            if (!hop && resolving) hop = resolved_gateway(queue, dst.type);
            if (!hop && resolving && src && fits_mtu(m, dst.type)) {
                if (now == 0) now = rte_rdtsc();
                if (!hold(queue, m, dst, src, now)) {
                    drops[n_drops++] = m;
                    ++unresolved;
                }
                continue;
            }
            if (hop && src && fits_mtu(m, dst.type) &&
                l2l3::prepend_udp(m, view_.mac, hop->mac, *src, dst, offloads_, hop->vlan_tci))
                pkts[ready++] = m;
            else
                drops[n_drops++] = m;
        }
        if (n_drops) rte_pktmbuf_free_bulk(drops, n_drops);
        stats_[queue].tx_dropped += n_drops;
    }
    stats_[queue].tx_unresolved += unresolved;
    return ready;
}

uint16_t EthdevPort::tx_burst(uint16_t queue, rte_mbuf** pkts, const Address* to, const uint16_t* local_index,
                              uint16_t n) {
    return tx_burst(queue, pkts, to, local_index, nullptr, n);
}

uint16_t EthdevPort::tx_burst(uint16_t queue, rte_mbuf** pkts, const Address* to, const uint16_t* local_index,
                              const LinkHop* via, uint16_t n) {
    PortStats& st = stats_[queue];
    if (!resolution_.empty() && resolution_[queue].active) resolve_due(queue);
    const uint16_t ready = prepare_tx(queue, pkts, to, local_index, via, n);
    uint16_t sent = 0;
    if (ready) {
        const quiesce::BurstScope in_burst;
        sent = rte_eth_tx_burst(port_id_, queue, pkts, ready);
    }
    if (sent < ready) {
        rte_pktmbuf_free_bulk(pkts + sent, ready - sent);
        st.tx_dropped += ready - sent;
    }
    st.tx_datagrams += sent;
    return sent;
}

std::optional<LinkHop> EthdevPort::neighbour(uint16_t queue, const Address& ip) const {
    if (queue >= neighbours_.size()) return std::nullopt;
    const NeighbourTable::Key key = NeighbourTable::Key::of(ip);
    LinkHop hop{};
    if (neighbours_[queue].lookup(&key, 1, &hop) & 1) return hop;
    return std::nullopt;
}

// --- EthdevPort: address resolution (only when configured; never on the known-neighbour path) ---

bool EthdevPort::hold(uint16_t queue, rte_mbuf* m, const Address& to, const Address* from, uint64_t now) {
    Resolution& r = resolution_[queue];
    const bool via_gateway = resolve_gateway_ && resolve_gateway_->type == to.type;
    const Address& target = via_gateway ? *resolve_gateway_ : to;
    const NeighbourTable::Key key = NeighbourTable::Key::of(target);
    Pending* slot = nullptr;
    Pending* free_slot = nullptr;
    // A linear scan: few IPs are ever being resolved at once, and only datagrams without a
    // next hop come here.
    for (uint32_t seen = 0, i = 0; i < r.pending.size() && (seen < r.active || !free_slot); ++i) {
        Pending& p = r.pending[i];
        if (!p.active) {
            if (!free_slot) free_slot = &p;
            continue;
        }
        ++seen;
        if (std::memcmp(&p.key, &key, sizeof key) == 0) {
            slot = &p;
            break;
        }
    }
    if (!slot) {
        if (!free_slot) return false;  // too many IPs being resolved at once
        slot = free_slot;
        *slot = Pending{};
        slot->key = key;
        slot->ip = target;
        slot->ip.port = 0;
        slot->gateway = via_gateway;
        slot->active = true;
        ++r.active;
        solicit(queue, *slot, now);
    }
    if (slot->held == resolve_hold_) return false;
    const size_t at = static_cast<size_t>(slot - r.pending.data()) * resolve_hold_ + slot->held++;
    r.held[at] = Held{m, to, from};
    return true;
}

void EthdevPort::solicit(uint16_t queue, Pending& p, uint64_t now) {
    PortStats& st = stats_[queue];
    ++p.tries;
    p.next_tsc = now + resolve_retry_tsc_;
    const Address* from = source_for(p.ip.type);  // checked by hold's caller: a datagram had one
    rte_mbuf* m = rte_pktmbuf_alloc(pool_);
    const bool ipv4 = p.ip.type == AddressType::ipv4;
    bool built = m && from &&
                 (ipv4 ? l2l3::make_arp_request(m, view_.mac, *from, p.ip)
                       : l2l3::make_neighbour_solicit(m, view_.mac, *from, p.ip));
    uint16_t sent = 0;
    if (built) {
        const quiesce::BurstScope in_burst;
        sent = rte_eth_tx_burst(port_id_, queue, &m, 1);
    }
    if (sent == 0) {  // this try is spent all the same: a pool or ring that stays full still ends
        if (m) rte_pktmbuf_free(m);
        ++st.tx_dropped;
        return;
    }
    ++(ipv4 ? st.arp_requests : st.nd_solicits);
}

void EthdevPort::resolve_due(uint16_t queue) {
    Resolution& r = resolution_[queue];
    const uint64_t now = rte_rdtsc();
    for (uint32_t seen = 0, i = 0; i < r.pending.size() && seen < r.active; ++i) {
        Pending& p = r.pending[i];
        if (!p.active) continue;
        ++seen;
        if (now < p.next_tsc) continue;
        if (p.tries < resolve_tries_) {
            solicit(queue, p, now);
        } else {
            ++stats_[queue].neighbours_failed;
            release(queue, p, nullptr);
            --seen;  // release took it out of r.active
        }
    }
}

void EthdevPort::on_answer(uint16_t queue, const l2l3::RxFrame& f) {
    Resolution& r = resolution_[queue];
    const NeighbourTable::Key key = NeighbourTable::Key::of(f.src);
    for (uint32_t seen = 0, i = 0; i < r.pending.size() && seen < r.active; ++i) {
        Pending& p = r.pending[i];
        if (!p.active) continue;
        ++seen;
        if (std::memcmp(&p.key, &key, sizeof key) != 0) continue;
        const LinkHop hop{f.link_addr, f.vlan_tci};
        PortStats& st = stats_[queue];
        ++st.neighbours_resolved;
        st.neighbours_evicted += neighbours_[queue].learn(&key, &hop, 1);
        if (p.gateway) r.gateway_hop[p.ip.type == AddressType::ipv6] = hop;
        release(queue, p, &hop);
        return;
    }
    ++stats_[queue].neighbours_unsolicited;  // not asked for, or no longer: a frame proves nothing
}

void EthdevPort::release(uint16_t queue, Pending& p, const LinkHop* hop) {
    Resolution& r = resolution_[queue];
    PortStats& st = stats_[queue];
    Held* held = &r.held[static_cast<size_t>(&p - r.pending.data()) * resolve_hold_];
    rte_mbuf* out[64];  // hold <= 64
    uint16_t n_out = 0, lost = 0;
    for (uint32_t i = 0; i < p.held; ++i) {
        Held& h = held[i];
        if (hop && l2l3::prepend_udp(h.m, view_.mac, hop->mac, *h.from, h.to, offloads_, hop->vlan_tci)) {
            out[n_out++] = h.m;
        } else {
            rte_pktmbuf_free(h.m);
            ++lost;
        }
        h.m = nullptr;
    }
    uint16_t sent = 0;
    if (n_out) {
        const quiesce::BurstScope in_burst;
        sent = rte_eth_tx_burst(port_id_, queue, out, n_out);
    }
    if (sent < n_out) rte_pktmbuf_free_bulk(out + sent, n_out - sent);
    st.tx_datagrams += sent;
    st.tx_dropped += lost + (n_out - sent);
    if (!hop) st.tx_unresolved += lost;
    p = Pending{};
    --r.active;
}

}  // namespace pomelo::drivers
