// /pomelo/* commands on DPDK's telemetry socket, so dpdk-telemetry.py and pomelo-stats read
// the engine's counters. They answer from the control thread's last snapshot, never touching
// the workers.
#include <rte_telemetry.h>

#include <atomic>
#include <optional>
#include <string>

#include "engine/engine.hpp"

namespace pomelo::engine {

namespace {

std::atomic<const Engine*> g_engine{nullptr};

void add(rte_tel_data* d, const std::string& name, uint64_t v) { rte_tel_data_add_dict_u64(d, name.c_str(), v); }

// The last snapshot and the protocol counters of workers and control thread together.
struct View {
    EngineSnapshot s;
    Counters all;
};
std::optional<View> view() {
    const Engine* e = g_engine.load();
    if (!e) return std::nullopt;
    View v{e->snapshot(), {}};
    v.all = v.s.workers.protocol;
    v.all += v.s.control.handshake;
    return v;
}

int cmd_summary(const char*, const char*, rte_tel_data* d) {
    const Engine* e = g_engine.load();
    if (!e) return -1;
    const EngineSnapshot s = e->snapshot();
    rte_tel_data_start_dict(d);
    add(d, "workers", e->workers());
    add(d, "peers_unconfirmed", s.workers.peers[1]);
    add(d, "peers_connected", s.workers.peers[2]);
    add(d, "peers_disconnecting", s.workers.peers[3]);
    add(d, "pending_handshakes", s.control.pending);
    add(d, "connections_accepted", s.control.accepted);
    add(d, "token_decrypts", s.control.token_decrypts);
    add(d, "rx_pps", static_cast<uint64_t>(s.rx_pps));
    add(d, "tx_pps", static_cast<uint64_t>(s.tx_pps));
    add(d, "handshakes_per_s", static_cast<uint64_t>(s.handshakes_per_s));
    add(d, "rtt_mean_ns", s.workers.rtt_peers ? s.workers.rtt_sum_ns / s.workers.rtt_peers : 0);
    add(d, "rtt_max_ns", s.workers.rtt_max_ns);
    add(d, "mbufs_free", s.mbufs_free);
    add(d, "mbufs_total", s.mbufs_total);
    add(d, "control_ring_used", s.control_ring_used);
    add(d, "control_ring_size", s.control_ring_size);
    return 0;
}

int cmd_packets(const char*, const char*, rte_tel_data* d) {
    const auto v = view();
    if (!v) return -1;
    const EngineSnapshot& s = v->s;
    const Counters& c = v->all;
    rte_tel_data_start_dict(d);
    for (unsigned t = 0; t < wire::kPacketTypeCount; ++t) {
        const std::string type = wire::to_string(static_cast<wire::PacketType>(t));
        add(d, "rx_" + type, c.rx[t]);
        add(d, "tx_" + type, c.tx[t]);
    }
    const drivers::PortStats& p = s.workers.port;
    add(d, "port_rx_packets", p.rx_packets);
    add(d, "port_rx_datagrams", p.rx_datagrams);
    add(d, "port_rx_not_ours", p.rx_not_ours);
    add(d, "port_rx_malformed", p.rx_malformed);
    add(d, "port_rx_truncated", p.rx_truncated);
    add(d, "port_arp_replies", p.arp_replies);
    add(d, "port_nd_adverts", p.nd_adverts);
    add(d, "port_tx_datagrams", p.tx_datagrams);
    add(d, "port_tx_dropped", p.tx_dropped);
    return 0;
}

int cmd_drops(const char*, const char*, rte_tel_data* d) {
    const auto v = view();
    if (!v) return -1;
    const EngineSnapshot& s = v->s;
    const Counters& c = v->all;
    rte_tel_data_start_dict(d);
    for (unsigned i = 1; i < wire::kWireErrorCount; ++i)
        add(d, wire::name_of(static_cast<wire::WireError>(i)), c.wire_drops[i]);
    for (unsigned i = 0; i < kDropReasonCount; ++i) add(d, name_of(static_cast<DropReason>(i)), c.drops[i]);
    for (unsigned i = 0; i < kEngineDropCount; ++i)
        add(d, name_of(static_cast<EngineDrop>(i)), s.workers.drops.n[i] + s.control.drops.n[i]);
    return 0;
}

int cmd_workers(const char*, const char*, rte_tel_data* d) {
    const Engine* e = g_engine.load();
    if (!e) return -1;
    const EngineSnapshot s = e->snapshot();
    rte_tel_data_start_dict(d);
    for (size_t w = 0; w < s.per_worker.size(); ++w) {
        const WorkerStats& ws = s.per_worker[w];
        rte_tel_data* c = rte_tel_data_alloc();
        if (!c) return -1;
        rte_tel_data_start_dict(c);
        add(c, "peers", ws.peers[1] + ws.peers[2] + ws.peers[3]);
        uint64_t rx = 0, tx = 0;
        for (unsigned t = 0; t < wire::kPacketTypeCount; ++t) rx += ws.protocol.rx[t], tx += ws.protocol.tx[t];
        add(c, "rx_packets", rx);
        add(c, "tx_packets", tx);
        add(c, "drops", ws.protocol.total_drops());
        add(c, "handshakes_forwarded", ws.handshakes_forwarded);
        for (unsigned i = 0; i < kEngineDropCount; ++i) add(c, name_of(static_cast<EngineDrop>(i)), ws.drops.n[i]);
        add(c, "loops", ws.loops);
        add(c, "timer_visits", ws.timer_visits);
        rte_tel_data_add_dict_container(d, ("worker" + std::to_string(w)).c_str(), c, 0);
    }
    return 0;
}

}  // namespace

void register_telemetry(const Engine* engine) {
    static std::atomic<bool> registered{false};
    g_engine.store(engine);
    if (registered.exchange(true)) return;
    rte_telemetry_register_cmd("/pomelo/summary", cmd_summary, "Peers, rates, RTT, pool and ring use");
    rte_telemetry_register_cmd("/pomelo/packets", cmd_packets, "Packets by type received and sent, port counters");
    rte_telemetry_register_cmd("/pomelo/drops", cmd_drops, "Drops by reason");
    rte_telemetry_register_cmd("/pomelo/workers", cmd_workers, "Per-worker counters");
}

}  // namespace pomelo::engine
