// pomelo-engine's application interface: what a game server implements (Application) and
// what it may do from its callbacks (WorkerContext). Public header: standard library only.
//
// Threads. The engine runs N worker lcores; each owns a shard of the connections (peers are
// placed on a worker by a keyed hash of their source address) and its own Application
// instance, made by the ApplicationFactory with the worker's index. Every callback of one
// instance runs on its worker's thread, so per-worker state needs no locks.
//
// Reaching a peer on another worker: inter-worker messages. WorkerContext::post() copies a
// message into a ring of the target worker; that worker's loop takes its ring in bursts and
// calls on_message(). Why messages and not placing peers by a routing key: a datagram's owner
// is decided from its source address alone, before anything is decrypted, by whichever worker
// polls the device queue; the routing key would live in the token's encrypted user data,
// which only the control thread opens, and every later datagram of that peer would still
// have to be steered by address. Messages keep that one rule and let an application keep any
// state (a match, a room) on any worker, at the cost of one copy per hop.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

namespace pomelo {

inline constexpr size_t kUserDataSize = 256;     // bytes of user data in a connect token (spec §5.2)
inline constexpr size_t kMaxPayloadSize = 1200;  // bytes of one PAYLOAD (spec §8.7)
inline constexpr size_t kMaxMessageSize = 1200;  // bytes of one inter-worker message

// The backend's bytes for the game server, from the connect token's private part (spec §5.2).
using UserData = std::array<uint8_t, kUserDataSize>;

// A connection on one worker. Valid only on that worker; a closed connection's id never
// matches a later one (the slot's generation changes).
struct PeerId {
    uint32_t slot = UINT32_MAX;
    uint32_t generation = 0;
    bool operator==(const PeerId&) const = default;
    // A 64-bit key for hash maps.
    uint64_t key() const { return uint64_t{generation} << 32 | slot; }
};

// Why a connection ended (spec §12.7, §12.8).
enum class CloseReason : uint8_t {
    client_disconnected,  // the client sent DISCONNECT
    timed_out,            // nothing authenticated from it within the token's timeout
    server_disconnected,  // WorkerContext::disconnect()
    server_stopped,       // the server shut down
};
const char* to_string(CloseReason reason);

// What the engine knows about a connected peer.
struct PeerInfo {
    int64_t client_id = 0;
    std::array<char, 48> address{};  // "a.b.c.d:port" or "[v6]:port", NUL-terminated
    uint64_t connected_ns = 0;       // WorkerContext::now_ns() when it connected
    // Round trip of the engine's PINGs (10 Hz): mean and variance of the last 10 samples
    // (spec §14.4), ns and ns²; nullopt before the first PONG.
    std::optional<uint64_t> rtt_ns;
    uint64_t rtt_variance_ns2 = 0;
    // The peer's monotonic clock minus now_ns(), ns, from the PONGs' receive times (§8.6):
    // the sample of least round trip among the last few (NTP's clock filter), error at most
    // half that round trip. A time t the client stamped on its raw clock is t - offset on
    // ours. (A client that synchronises, as protocol/client does, stamps in network time,
    // which is already our clock.) nullopt before the first PONG.
    std::optional<int64_t> clock_offset_ns;
};

// What an application may do, from its callbacks only (it is its worker's).
class WorkerContext {
public:
    virtual ~WorkerContext() = default;
    virtual uint16_t worker() const = 0;   // this worker's index, 0..workers()-1
    virtual uint16_t workers() const = 0;  // how many workers the server runs
    // The worker's monotonic clock, ns (arbitrary epoch; PING/PONG times use it too).
    virtual uint64_t now_ns() const = 0;

    // Queues a PAYLOAD of 1..kMaxPayloadSize bytes (copied) to `peer`, sealed and sent at the
    // end of this loop iteration. false: unknown peer, bad size, or no buffer (counted).
    virtual bool send(PeerId peer, std::span<const uint8_t> payload) = 0;
    // Ends the connection: DISCONNECTs follow (spec §12.8), then on_disconnect with
    // server_disconnected. false: unknown peer or already disconnecting.
    virtual bool disconnect(PeerId peer) = 0;
    // A connected peer's details; nullopt if `peer` is not one of this worker's.
    virtual std::optional<PeerInfo> peer(PeerId peer) const = 0;

    // Sends `message` (1..kMaxMessageSize bytes, copied) to worker `to`'s on_message, which
    // runs on that worker's loop within a loop iteration or so. Messages from one worker to
    // another arrive in the order posted, none lost; posts are handed over in bursts (at the
    // end of the loop iteration, or when 32 are waiting). false: `to` is this worker or out of
    // range, bad size, or every message buffer of the server is in use (counted in telemetry
    // as no_message_buffer: the receivers are behind).
    virtual bool post(uint16_t to, std::span<const uint8_t> message) = 0;
};

// A game server's logic, one instance per worker. Every callback is optional.
class Application {
public:
    virtual ~Application() = default;
    // A client completed the handshake (spec §12.5). `user_data` is the token's.
    virtual void on_connect(WorkerContext&, PeerId, int64_t /*client_id*/, const UserData& /*user_data*/) {}
    // A PAYLOAD from a connected peer, 1..kMaxPayloadSize bytes, valid during the call.
    virtual void on_payload(WorkerContext&, PeerId, std::span<const uint8_t>) {}
    // The connection ended; it is already gone (peer() returns nullopt for it).
    virtual void on_disconnect(WorkerContext&, PeerId, int64_t /*client_id*/, CloseReason) {}
    // At ServerConfig::tick_hz on every worker. `tick` counts intervals since the worker
    // started: a loop that fell behind skips the missed ticks (tick jumps), never bunches them.
    virtual void on_tick(WorkerContext&, uint64_t /*tick*/) {}
    // A message another worker posted to this one (`from` is its index), valid during the call.
    virtual void on_message(WorkerContext&, uint16_t /*from*/, std::span<const uint8_t>) {}
    // Once per worker loop iteration (thousands of times a second), after receiving.
    virtual void on_poll(WorkerContext&) {}
};

// Makes worker `worker`'s Application (called on the main thread before the workers start).
using ApplicationFactory = std::function<std::unique_ptr<Application>(uint16_t worker)>;

// A telemetry command's answer: a JSON object of named counters and named groups of counters.
struct TelemetryReply {
    using Counters = std::vector<std::pair<std::string, uint64_t>>;
    Counters values;
    std::vector<std::pair<std::string, Counters>> groups;
};

// Registers `command` (e.g. "/game/matches": '/', then letters, digits, '_', '/') on the
// server's telemetry socket (DPDK telemetry: dpdk-telemetry.py, pomelo-stats). `handler` runs
// on the telemetry thread, not on a worker: it must synchronise with the workers itself.
// Names are 1..63 letters, digits or '_' (others are left out of the reply); at most 256
// entries per object. Registering a command again replaces its handler. false with `error` if the
// command is malformed or taken by DPDK.
bool add_telemetry_command(const std::string& command, const std::string& help,
                           std::function<void(TelemetryReply&)> handler, std::string& error);

}  // namespace pomelo
