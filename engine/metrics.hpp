// The engine's statistics for Prometheus, over HTTP (prometheus-cpp's exposer, civetweb).
// Every scrape reads the control thread's latest snapshot (at most one stats interval old,
// engine/control.hpp), never the workers: a scrape costs the data path nothing.
//
// Families (all prefixed pomelo_; counters end in _total):
//   packets_received_total{type}, packets_sent_total{type}      by packet type (spec §7)
//   drops_total{layer,reason}     layer wire (wire::WireError), protocol (DropReason),
//                                 engine (EngineDrop): the X-macro lists, every reason listed
//   peers{state}                  unconfirmed, connected, disconnecting
//   pending_handshakes, handshakes_total (connections accepted), token_decrypts_total
//   peer_rtt_seconds              histogram of the peers' current RTT (mean of their last
//                                 PING/PONG samples) at the snapshot: a gauge histogram, it
//                                 goes down when peers leave
//   worker_busy_ratio{worker}     share of the last interval the worker moved datagrams
//   worker_busy_seconds_total{worker}, worker_peers{worker}
//   port_*_total                  the device queues' counters (drivers::PortStats)
//   mbufs_free, mbufs_total, control_ring_used
// plus what hooks add (an application's gauges, e.g. members per room).
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "protocol/wire/address.hpp"

namespace prometheus {
class Exposer;
}

namespace pomelo::engine {

class Engine;

// Gauges an application adds to every scrape: each family a name (pomelo_ prefix advised),
// a help text and its samples (label name/value pairs, value).
struct GaugeSample {
    std::vector<std::pair<std::string, std::string>> labels;
    double value = 0;
};
struct GaugeFamily {
    std::string name;
    std::string help;
    std::vector<GaugeSample> samples;
};
// Called on the HTTP server's thread at each scrape: it must read only what is safe to read
// from another thread (e.g. counts the application publishes through engine::Published).
using MetricsHook = std::function<std::vector<GaugeFamily>()>;

class MetricsServer {
public:
    // Serves `engine`'s statistics at http://ADDRESS/metrics (Prometheus text format);
    // port 0 picks a free port (see url()). `engine` must outlive the server. nullptr with a
    // one-line `error` when it cannot listen there.
    static std::unique_ptr<MetricsServer> start(const Engine& engine, const wire::Address& address,
                                                std::string& error);
    ~MetricsServer();

    void add_hook(MetricsHook hook);
    // http://a.b.c.d:port/metrics, with the port it listens on.
    std::string url() const;

private:
    struct Collector;
    MetricsServer() = default;
    std::shared_ptr<Collector> collector_;
    std::unique_ptr<prometheus::Exposer> exposer_;
    std::string url_;
};

}  // namespace pomelo::engine
