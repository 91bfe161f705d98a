// /pomelo/* commands on DPDK's telemetry socket, so dpdk-telemetry.py and pomelo-stats read
// the engine's counters. They answer from the control thread's last snapshot, never touching
// the workers.
#include <rte_telemetry.h>

#include <rte_errno.h>

#include <atomic>
#include <cctype>
#include <functional>
#include <map>
#include <mutex>
#include <charconv>
#include <chrono>
#include <optional>
#include <string>

#include "engine/engine.hpp"

namespace pomelo::engine {

namespace {

std::atomic<const Engine*> g_engine{nullptr};

void add(rte_tel_data* d, const std::string& name, uint64_t v) { rte_tel_data_add_dict_u64(d, name.c_str(), v); }

// A client id parameter: decimal digits only.
std::optional<uint64_t> parse_client_id(std::string_view s) {
    uint64_t v = 0;
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (s.empty() || ec != std::errc{} || end != s.data() + s.size()) return std::nullopt;
    return v;
}

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
    for (unsigned r = 0; r < Counters::kCloseReasons; ++r)  // closed_client_disconnected, closed_timed_out, ...
        add(d, ("closed_" + std::string(server::name_of(static_cast<server::CloseReason>(r)))).c_str(),
            s.workers.protocol.closed[r]);
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
    add(d, "port_arp_requests", p.arp_requests);
    add(d, "port_nd_solicits", p.nd_solicits);
    add(d, "port_neighbours_resolved", p.neighbours_resolved);
    add(d, "port_neighbours_unsolicited", p.neighbours_unsolicited);
    add(d, "port_neighbours_failed", p.neighbours_failed);
    add(d, "port_tx_unresolved", p.tx_unresolved);
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
        add(c, "busy_ns", ws.busy_ns);
        // Share of the last stats interval spent in iterations that moved datagrams.
        add(c, "busy_percent", w < s.busy_share.size() ? static_cast<uint64_t>(s.busy_share[w] * 100 + 0.5) : 0);
        add(c, "timer_visits", ws.timer_visits);
        add(c, "ticks", ws.ticks);
        add(c, "messages_posted", ws.messages_posted);
        add(c, "messages_received", ws.messages_received);
        rte_tel_data_add_dict_container(d, ("worker" + std::to_string(w)).c_str(), c, 0);
    }
    return 0;
}

// Application commands (pomelo::add_telemetry_command): DPDK's callback carries no context,
// but gets the command's name, by which one trampoline finds the handler.
std::mutex g_app_commands_mutex;
std::map<std::string, std::function<void(pomelo::TelemetryReply&)>> g_app_commands;

bool valid_telemetry_name(const std::string& name) {
    if (name.empty() || name.size() > 63) return false;
    for (char c : name)
        if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_') return false;  // what DPDK 22.11 accepts
    return true;
}

void add_counters(rte_tel_data* d, const pomelo::TelemetryReply::Counters& counters, unsigned& room) {
    for (const auto& [name, value] : counters) {
        if (room == 0) return;
        if (!valid_telemetry_name(name)) continue;
        rte_tel_data_add_dict_u64(d, name.c_str(), value);
        --room;
    }
}

int cmd_application(const char* cmd, const char*, rte_tel_data* d) {
    std::function<void(pomelo::TelemetryReply&)> handler;
    {
        std::lock_guard lock(g_app_commands_mutex);
        const auto it = g_app_commands.find(cmd);
        if (it == g_app_commands.end()) return -1;
        handler = it->second;
    }
    pomelo::TelemetryReply reply;
    handler(reply);
    rte_tel_data_start_dict(d);
    unsigned room = RTE_TEL_MAX_DICT_ENTRIES;
    add_counters(d, reply.values, room);
    for (const auto& [name, counters] : reply.groups) {
        if (room == 0) break;
        if (!valid_telemetry_name(name)) continue;
        rte_tel_data* c = rte_tel_data_alloc();
        if (!c) return -1;
        rte_tel_data_start_dict(c);
        unsigned inner = RTE_TEL_MAX_DICT_ENTRIES;
        add_counters(c, counters, inner);
        rte_tel_data_add_dict_container(d, name.c_str(), c, 0);
        --room;
    }
    return 0;
}

// The answers of the administration commands, asked of the workers (engine/commands.hpp).
// At most ~190 bytes each (an IPv6 address, 20-digit numbers): inside telemetry's 16 KB answer.
constexpr unsigned kPeersPerPage = 64;
constexpr auto kWorkerWait = std::chrono::seconds(2);

int error_reply(rte_tel_data* d, const std::string& what) {
    rte_tel_data_start_dict(d);
    rte_tel_data_add_dict_string(d, "error", what.c_str());
    return 0;
}

// "/pomelo/peers[,FROM]": connections in ascending client id from FROM (default 0), at most
// kPeersPerPage; "total" counts every connection and "next", when present, is the FROM of
// the next page. Each connection is a dict under its client id.
int cmd_peers(const char*, const char* params, rte_tel_data* d) {
    const Engine* e = g_engine.load();
    if (!e) return -1;
    uint64_t from = 0;
    if (params && *params) {
        const auto v = parse_client_id(params);
        if (!v) return error_reply(d, "want /pomelo/peers or /pomelo/peers,FROM_CLIENT_ID");
        from = *v;
    }
    const auto page = e->list_peers(from, kPeersPerPage, kWorkerWait);
    if (!page) return error_reply(d, "the workers did not answer (server stopping?)");
    rte_tel_data_start_dict(d);
    add(d, "total", page->total);
    add(d, "shown", page->peers.size());
    if (page->next) add(d, "next", *page->next);
    for (const PeerInfo& p : page->peers) {
        rte_tel_data* c = rte_tel_data_alloc();
        if (!c) return -1;
        rte_tel_data_start_dict(c);
        rte_tel_data_add_dict_string(c, "address", p.address.to_string().c_str());
        add(c, "client_id", p.client_id);
        add(c, "worker", p.worker);
        rte_tel_data_add_dict_string(c, "state", server::to_string(p.state));
        add(c, "rtt_ns", p.rtt_ns);
        rte_tel_data_add_dict_container(d, std::to_string(p.client_id).c_str(), c, 0);
    }
    return 0;
}

// "/pomelo/disconnect,CLIENT_ID": the server disconnects that client (DISCONNECT packets, then
// the close is logged). "disconnected" is 1 when a worker had it, 0 when nobody did.
int cmd_disconnect(const char*, const char* params, rte_tel_data* d) {
    const Engine* e = g_engine.load();
    if (!e) return -1;
    const auto id = params ? parse_client_id(params) : std::nullopt;
    if (!id) return error_reply(d, "want /pomelo/disconnect,CLIENT_ID");
    const auto found = e->disconnect_client(*id, kWorkerWait);
    if (!found) return error_reply(d, "the workers did not answer (server stopping?)");
    rte_tel_data_start_dict(d);
    add(d, "client_id", *id);
    add(d, "disconnected", *found ? 1 : 0);
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
    rte_telemetry_register_cmd("/pomelo/peers", cmd_peers,
                               "Connections by client id (address, worker, state, RTT). Param: first client id");
    rte_telemetry_register_cmd("/pomelo/disconnect", cmd_disconnect, "Disconnects a client. Param: client id");
}

}  // namespace pomelo::engine

namespace pomelo {

bool add_telemetry_command(const std::string& command, const std::string& help,
                           std::function<void(TelemetryReply&)> handler, std::string& error) {
    bool ok = command.size() >= 2 && command.size() < 56 && command[0] == '/' && help.size() < 128 && handler;
    for (char c : command)
        ok = ok && (std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '/');
    if (!ok) {
        error = "telemetry command '" + command +
                "': want '/' then up to 54 letters, digits, '_' or '/', a help text under 128 characters and a handler";
        return false;
    }
    std::lock_guard lock(engine::g_app_commands_mutex);
    const bool known = engine::g_app_commands.count(command) != 0;
    engine::g_app_commands[command] = std::move(handler);
    if (known) return true;
    if (const int rc = rte_telemetry_register_cmd(command.c_str(), engine::cmd_application, help.c_str()); rc != 0) {
        engine::g_app_commands.erase(command);
        error = "telemetry command '" + command + "': " + rte_strerror(-rc);
        return false;
    }
    return true;
}

}  // namespace pomelo
