#include "engine/metrics.hpp"

#include <prometheus/collectable.h>
#include <prometheus/exposer.h>
#include <prometheus/metric_family.h>

#include <limits>

#include "engine/engine.hpp"

namespace pomelo::engine {

namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;
using Labels = std::vector<ClientMetric::Label>;

MetricFamily family(std::string name, std::string help, MetricType type) {
    MetricFamily f;
    f.name = std::move(name);
    f.help = std::move(help);
    f.type = type;
    return f;
}

void add(MetricFamily& f, Labels labels, double value) {
    ClientMetric m;
    m.label = std::move(labels);
    if (f.type == MetricType::Counter) m.counter.value = value;
    else m.gauge.value = value;
    f.metric.push_back(std::move(m));
}

MetricFamily single(std::string name, std::string help, MetricType type, double value) {
    MetricFamily f = family(std::move(name), std::move(help), type);
    add(f, {}, value);
    return f;
}

// The device queues' counters, one counter family each.
struct PortCounter {
    const char* name;
    const char* help;
    uint64_t drivers::PortStats::*field;
};
constexpr PortCounter kPortCounters[] = {
    {"pomelo_port_rx_packets_total", "Frames or datagrams taken from the device", &drivers::PortStats::rx_packets},
    {"pomelo_port_rx_datagrams_total", "UDP datagrams for this server handed to the workers",
     &drivers::PortStats::rx_datagrams},
    {"pomelo_port_rx_not_ours_total", "Frames of other protocols, addresses or ports", &drivers::PortStats::rx_not_ours},
    {"pomelo_port_rx_malformed_total", "Frames with inconsistent headers or bad checksums",
     &drivers::PortStats::rx_malformed},
    {"pomelo_port_rx_truncated_total", "Datagrams larger than the receive buffer", &drivers::PortStats::rx_truncated},
    {"pomelo_port_tx_datagrams_total", "Datagrams the device accepted", &drivers::PortStats::tx_datagrams},
    {"pomelo_port_tx_dropped_total", "Datagrams not sent: queue full, unknown neighbour, too big",
     &drivers::PortStats::tx_dropped},
    {"pomelo_port_neighbours_unsolicited_total", "ARP replies or neighbour advertisements nobody asked for, ignored",
     &drivers::PortStats::neighbours_unsolicited},
};

}  // namespace

struct MetricsServer::Collector final : prometheus::Collectable {
    explicit Collector(const Engine& e) : engine(e) {}
    std::vector<MetricFamily> Collect() const override;

    const Engine& engine;
    mutable std::mutex hooks_mutex;  // add_hook (any thread) against scrapes
    std::vector<MetricsHook> hooks;
};

std::vector<MetricFamily> MetricsServer::Collector::Collect() const {
    const EngineSnapshot s = engine.snapshot();
    Counters all = s.workers.protocol;
    all += s.control.handshake;
    std::vector<MetricFamily> out;

    MetricFamily rx = family("pomelo_packets_received_total", "Packets authenticated and handled, by type",
                             MetricType::Counter);
    MetricFamily tx = family("pomelo_packets_sent_total", "Packets sent, by type", MetricType::Counter);
    for (unsigned t = 0; t < wire::kPacketTypeCount; ++t) {
        const std::string type = wire::to_string(static_cast<wire::PacketType>(t));
        add(rx, {{"type", type}}, static_cast<double>(all.rx[t]));
        add(tx, {{"type", type}}, static_cast<double>(all.tx[t]));
    }
    out.push_back(std::move(rx));
    out.push_back(std::move(tx));

    MetricFamily drops = family("pomelo_drops_total",
                                "Datagrams dropped, by layer (wire: the codec, protocol: state and policy, engine: "
                                "rings and pools) and reason",
                                MetricType::Counter);
    for (unsigned i = 1; i < wire::kWireErrorCount; ++i)  // 0 is ok
        add(drops, {{"layer", "wire"}, {"reason", wire::name_of(static_cast<wire::WireError>(i))}},
            static_cast<double>(all.wire_drops[i]));
    for (unsigned i = 0; i < kDropReasonCount; ++i)
        add(drops, {{"layer", "protocol"}, {"reason", name_of(static_cast<DropReason>(i))}},
            static_cast<double>(all.drops[i]));
    for (unsigned i = 0; i < kEngineDropCount; ++i)
        add(drops, {{"layer", "engine"}, {"reason", name_of(static_cast<EngineDrop>(i))}},
            static_cast<double>(s.workers.drops.n[i] + s.control.drops.n[i]));
    out.push_back(std::move(drops));

    MetricFamily peers = family("pomelo_peers", "Connections by state", MetricType::Gauge);
    for (unsigned k = 1; k < 4; ++k)
        add(peers, {{"state", server::to_string(static_cast<server::PeerState>(k))}},
            static_cast<double>(s.workers.peers[k]));
    out.push_back(std::move(peers));
    out.push_back(single("pomelo_pending_handshakes", "Handshakes between CHALLENGE and RESPONSE", MetricType::Gauge,
                         s.control.pending));
    out.push_back(single("pomelo_handshakes_total", "Handshakes completed: connections accepted", MetricType::Counter,
                         static_cast<double>(s.control.accepted)));
    MetricFamily closed = family("pomelo_connections_closed_total", "Connections closed, by reason", MetricType::Counter);
    for (unsigned r = 0; r < Counters::kCloseReasons; ++r)
        add(closed, {{"reason", server::name_of(static_cast<server::CloseReason>(r))}},
            static_cast<double>(s.workers.protocol.closed[r]));
    out.push_back(std::move(closed));
    out.push_back(single("pomelo_token_decrypts_total", "Private connect tokens decrypted (XChaCha20-Poly1305 opens)",
                         MetricType::Counter, static_cast<double>(s.control.token_decrypts)));

    MetricFamily rtt = family("pomelo_peer_rtt_seconds",
                              "Connections by their current round-trip time (mean of their last PING/PONG samples) "
                              "at the snapshot; a gauge histogram",
                              MetricType::Histogram);
    {
        ClientMetric m;
        uint64_t cumulative = 0;
        for (unsigned b = 0; b < server::Shard::kRttBuckets; ++b) {
            cumulative += s.workers.rtt_buckets[b];
            const double bound = b + 1 < server::Shard::kRttBuckets
                                     ? static_cast<double>(server::Shard::kRttBucketBoundsNs[b]) / 1e9
                                     : std::numeric_limits<double>::infinity();
            m.histogram.bucket.push_back({cumulative, bound});
        }
        m.histogram.sample_count = s.workers.rtt_peers;
        m.histogram.sample_sum = static_cast<double>(s.workers.rtt_sum_ns) / 1e9;
        rtt.metric.push_back(std::move(m));
    }
    out.push_back(std::move(rtt));

    MetricFamily busy = family("pomelo_worker_busy_ratio",
                               "Share of the last stats interval the worker spent in loop iterations that moved "
                               "datagrams or new peers",
                               MetricType::Gauge);
    MetricFamily busy_s = family("pomelo_worker_busy_seconds_total",
                                 "Time the worker spent in loop iterations that moved datagrams or new peers",
                                 MetricType::Counter);
    MetricFamily wpeers = family("pomelo_worker_peers", "Connections owned by the worker", MetricType::Gauge);
    for (size_t w = 0; w < s.per_worker.size(); ++w) {
        const WorkerStats& ws = s.per_worker[w];
        const Labels worker{{"worker", std::to_string(w)}};
        add(busy, worker, w < s.busy_share.size() ? s.busy_share[w] : 0);
        add(busy_s, worker, static_cast<double>(ws.busy_ns) / 1e9);
        add(wpeers, worker, ws.peers[1] + ws.peers[2] + ws.peers[3]);
    }
    out.push_back(std::move(busy));
    out.push_back(std::move(busy_s));
    out.push_back(std::move(wpeers));

    for (const PortCounter& c : kPortCounters)
        out.push_back(single(c.name, c.help, MetricType::Counter, static_cast<double>(s.workers.port.*c.field)));
    out.push_back(single("pomelo_mbufs_free", "Mbufs free in the pool", MetricType::Gauge, s.mbufs_free));
    out.push_back(single("pomelo_mbufs_total", "Mbufs in the pool", MetricType::Gauge, s.mbufs_total));
    out.push_back(single("pomelo_control_ring_used", "Handshake datagrams queued for the control thread",
                         MetricType::Gauge, s.control_ring_used));

    std::vector<MetricsHook> copy;
    {
        std::lock_guard lock(hooks_mutex);
        copy = hooks;
    }
    for (const MetricsHook& hook : copy)
        for (GaugeFamily& g : hook()) {
            MetricFamily f = family(std::move(g.name), std::move(g.help), MetricType::Gauge);
            for (GaugeSample& sample : g.samples) {
                Labels labels;
                for (auto& [k, v] : sample.labels) labels.push_back({std::move(k), std::move(v)});
                add(f, std::move(labels), sample.value);
            }
            out.push_back(std::move(f));
        }
    return out;
}

std::unique_ptr<MetricsServer> MetricsServer::start(const Engine& engine, const wire::Address& address,
                                                     std::string& error) {
    std::unique_ptr<MetricsServer> m(new MetricsServer());
    m->collector_ = std::make_shared<Collector>(engine);
    const std::string listen = address.to_string();  // a.b.c.d:port or [v6]:port, as civetweb wants
    try {
        m->exposer_ = std::make_unique<prometheus::Exposer>(listen, 2);
    } catch (const std::exception& e) {
        error = "--metrics " + listen + ": cannot listen: " + e.what();
        return nullptr;
    }
    m->exposer_->RegisterCollectable(m->collector_);
    const std::vector<int> ports = m->exposer_->GetListeningPorts();
    wire::Address actual = address;
    if (!ports.empty()) actual.port = static_cast<uint16_t>(ports.front());
    m->url_ = "http://" + actual.to_string() + "/metrics";
    return m;
}

MetricsServer::~MetricsServer() = default;

void MetricsServer::add_hook(MetricsHook hook) {
    std::lock_guard lock(collector_->hooks_mutex);
    collector_->hooks.push_back(std::move(hook));
}

std::string MetricsServer::url() const { return url_; }

}  // namespace pomelo::engine
