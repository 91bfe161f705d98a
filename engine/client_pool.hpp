// Thousands of protocol clients on one thread over one queue of any port (drivers/port.hpp):
// the load generator's engine (tools/pomelo-client) and the end-to-end tests' client side.
//
// Source endpoints. A server tells its connections apart by source address, so every client
// needs its own (IP, port): client i owns the port's local address `first_local + i`, sends
// from it (tx_burst's local_index) and is found on receive by the local address a datagram
// was addressed to (rx_burst's local_index). Over the socket port that is one UDP socket per
// client (a few thousand per process are fine: raise RLIMIT_NOFILE; the port polls them
// through epoll); over an ethdev port it is one endpoint among thousands on the same
// device, found by a keyed hash of the destination (drivers/l2l3.hpp LocalView).
//
// What each client does: connect with a token from config.token (minted at connect time),
// send `payloads` payloads of `payload_size` bytes with at most `window` unanswered (paced at
// `rate_pps` if set), check every echo byte for byte against what it sent, then disconnect
// gracefully. A payload carries the client index (u32 LE), its sequence (u32 LE) and a
// pattern derived from both, so an echo can be verified without keeping a copy.
//
// Cost per loop: one clock read, receive bursts, the timer wheel's due clients only (each
// client is keyed in a TimerWheel by its next deadline: the client state machine's
// next_update_ns(), its next paced send or its oldest echo's loss deadline), and one AEAD
// burst per 64 datagrams sent (BatchOutbox over mbufs). Nothing is allocated after
// construction except mbufs.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <vector>

#include "drivers/port.hpp"
#include "engine/clock.hpp"
#include "protocol/batch_outbox.hpp"
#include "protocol/client/client.hpp"
#include "protocol/crypto/burst.hpp"
#include "protocol/time.hpp"
#include "protocol/timer_wheel.hpp"

namespace pomelo::engine {

// Fills `out` with a connect token for client `index`, minted now (`unix_ms`). False: no
// token (the client ends with Outcome::invalid_token).
using TokenSource = std::function<bool(uint32_t index, uint64_t unix_ms, std::span<uint8_t, wire::kConnectTokenSize> out)>;

struct ClientPoolConfig {
    uint32_t clients = 1;
    uint16_t first_local = 0;   // client i uses the port's local address first_local + i
    uint32_t payloads = 100;    // per client
    uint32_t payload_size = 64;  // kPayloadHeader..wire::kMaxPayloadSize
    uint64_t rate_pps = 0;       // per client; 0 = as fast as the window allows
    uint32_t window = 32;        // unanswered payloads per client
    // Unanswered payloads of all clients together; 0 = no limit. A device ring holds only so
    // many datagrams: beyond it they are dropped, not queued like in a socket buffer. Clients
    // held back wait their turn in a FIFO.
    uint32_t max_in_flight = 0;
    uint64_t echo_timeout_ns = 2 * kSecond;  // an echo not back by then is given up (lost)
    uint64_t connect_spacing_ns = 0;         // between successive clients' connects; 0 = all at once
    bool disconnect_when_done = true;
    // Soak (churn): a client whose session ended starts a new one (a fresh token) after
    // reconnect_delay_ns, until stop(). Each session sends `payloads` payloads and ends, one in
    // `vanish_every` (0: none) by going silent instead of disconnecting: the client forgets its
    // connection without a DISCONNECT and the server must time it out. A vanished client waits
    // vanish_wait_ns before it reconnects from the same address (a server ignores REQUESTs from
    // an address still connected): make it longer than the token timeout.
    bool reconnect = false;
    uint64_t reconnect_delay_ns = 0;
    uint32_t vanish_every = 0;
    uint64_t vanish_wait_ns = 0;
    client::Config client;
    TokenSource token;
    uint16_t burst = 64;  // receive burst and AEAD burst
};

// Log-linear latency histogram (8 sub-buckets per power of two: +-6% resolution).
class LatencyHistogram {
public:
    void add(uint64_t ns);
    uint64_t count() const { return count_; }
    uint64_t mean() const { return count_ ? static_cast<uint64_t>(sum_ / count_) : 0; }
    uint64_t max() const { return max_; }
    // The q-quantile (0..1), as the middle of its bucket; 0 when empty.
    uint64_t quantile(double q) const;
    LatencyHistogram& operator+=(const LatencyHistogram& o);

private:
    static constexpr unsigned kSub = 8;
    std::array<uint64_t, 64 * kSub> buckets_{};
    uint64_t count_ = 0;
    unsigned __int128 sum_ = 0;
    uint64_t max_ = 0;
};

struct ClientPoolStats {
    static constexpr unsigned kOutcomes = client::kOutcomeCount;

    uint32_t clients = 0;
    // started, connected, disconnecting, connect_failed and ended count sessions: one per
    // client unless ClientPoolConfig::reconnect.
    uint32_t started = 0;          // connect() accepted the token
    uint32_t connected = 0;        // reached CONNECTED
    uint32_t finished = 0;         // clients that ended one way or another (and will not reconnect)
    uint32_t not_started = 0;      // stopped before their turn to connect
    uint32_t aborted = 0;          // stopped while still connecting (nothing sent)
    uint32_t disconnecting = 0;    // connected clients that began their graceful disconnect
    uint32_t vanished = 0;         // sessions ended by going silent (ClientPoolConfig::vanish_every)
    uint32_t clients_served = 0;   // clients that connected at least once
    // How attempts that never connected ended, and how connections ended, by client::Outcome.
    std::array<uint32_t, kOutcomes> connect_failed{};
    std::array<uint32_t, kOutcomes> ended{};

    uint64_t payloads_sent = 0;
    uint64_t payloads_echoed = 0;      // came back byte-identical (late ones included)
    uint64_t payloads_mismatched = 0;  // came back different, of the wrong size, or unknown
    uint64_t payloads_duplicated = 0;  // came back a second time
    uint64_t payloads_given_up = 0;    // not back within echo_timeout (counted lost unless late)
    uint64_t payloads_late = 0;        // came back after being given up
    uint64_t send_blocked = 0;         // client.send refused (no mbuf), retried
    uint64_t in_flight_waits = 0;      // a client held back by max_in_flight
    uint64_t stray_datagrams = 0;      // arrived on a local address that is no client's
    uint64_t seal_failures = 0;
    uint64_t quieted = 0;              // datagrams not sent while quiet (set_quiet)

    std::vector<uint64_t> handshake_ns;  // connect() to CONNECTED, one per connected client
    LatencyHistogram echo_rtt;           // payload sent to its echo verified
    uint64_t ping_rtt_sum_ns = 0;        // sum of the clients' PING RTT means (§14.4)
    uint32_t ping_rtt_clients = 0;

    uint64_t start_ns = 0;
    uint64_t first_send_ns = 0, last_echo_ns = 0;

    uint64_t lost() const {
        const uint64_t back = payloads_echoed + payloads_mismatched;
        return payloads_sent > back ? payloads_sent - back : 0;
    }
    // p in 0..100 over handshake_ns (exact); 0 when empty.
    uint64_t handshake_percentile(double p) const;
    uint64_t ping_rtt_mean_ns() const { return ping_rtt_clients ? ping_rtt_sum_ns / ping_rtt_clients : 0; }
    // Verified echoes per second between the first send and the last echo.
    double echo_rate() const;
    // Every client connected, every payload came back identical, every client disconnected
    // gracefully (Outcome::disconnected).
    bool all_good(uint32_t payloads_per_client) const;
    // all_good, except that payloads may have been lost (never mismatched or duplicated).
    bool all_good_but_loss(uint32_t payloads_per_client) const;
};

// Blast mode's view of a pool (engine/blast.hpp): datagrams that reach a client, and the
// payloads of those it let through decrypted.
class PoolTap {
public:
    virtual ~PoolTap() = default;
    // A datagram for client `index`, before its state machine sees it. True: consumed (not
    // decrypted, not handed on).
    virtual bool on_datagram(uint32_t index, std::span<const uint8_t> datagram) = 0;
    // A PAYLOAD that authenticated for client `index`, in place of the pool's echo check.
    virtual void on_payload(uint32_t index, std::span<const uint8_t> payload) = 0;
};

class ClientPool {
public:
    static constexpr uint32_t kPayloadHeader = 8;  // client index u32 LE, sequence u32 LE
    static constexpr uint32_t kMaxRxBursts = 8;    // receive bursts per poll

    // Throws std::invalid_argument if the config does not fit the port (too few local
    // addresses, payload size out of range, no token source, window 0).
    ClientPool(const ClientPoolConfig& config, drivers::Port& port, uint16_t queue, rte_mempool* pool,
               crypto::BurstAead& aead);
    ~ClientPool();
    ClientPool(const ClientPool&) = delete;
    ClientPool& operator=(const ClientPool&) = delete;

    // Schedules every client's connect (spaced by connect_spacing_ns from now).
    void start(const Now& now);
    // One loop iteration: receive, due timers, send. poll() reads the TSC and the wall clock.
    // Returns the datagrams received.
    uint32_t poll(const Now& now);
    uint32_t poll();
    // Graceful stop: connected clients send nothing more, wait for the echoes in flight (at
    // most echo_timeout_ns) and disconnect (their DISCONNECTs go out over the next polls);
    // connecting ones are dropped, waiting ones never start. Keep polling until done().
    void stop(const Now& now);
    bool stopping() const { return stopping_; }
    // Every client has ended (and everything queued is sent).
    bool done() const { return stats_.finished == config_.clients; }

    const ClientPoolStats& stats() const { return stats_; }
    const ClientPoolConfig& config() const { return config_; }
    uint32_t connected_now() const { return connected_now_; }
    uint32_t in_flight() const { return in_flight_; }  // payloads neither echoed nor given up
    const client::Client& client(uint32_t index) const;
    Now now() const;  // the pool's clock: TSC ns and wall-clock ms

    // The payload client `index` sends as number `sequence` (size bytes, >= kPayloadHeader).
    static void make_payload(uint32_t index, uint32_t sequence, std::span<uint8_t> out);

    // Blast mode (engine/blast.hpp). With a tap set, every received datagram goes to it first
    // and authenticated payloads go to it instead of the echo check; nullptr restores the pool.
    void set_tap(PoolTap* tap) { tap_ = tap; }
    // Has connected client `index` write one PAYLOAD into `out` instead of the pool's outbox:
    // its state machine numbers it (nonces never repeat) and `out` seals it whenever it
    // flushes. False if the client is not connected or `out` has no buffer.
    bool send_via(uint32_t index, Outbox& out, std::span<const uint8_t> payload);
    uint16_t local_of(uint32_t index) const;
    // While quiet, what the clients' state machines send themselves (PINGs, PONGs) is dropped
    // unsent (counted in quieted). A blast trial needs this: those datagrams carry sequences
    // above every pre-sealed payload still queued, and would move the server's replay window
    // past them. Meanwhile only the payloads keep a connection alive on the server: a client
    // with none to send for longer than the token timeout is timed out (keep trials, and the
    // sealing before them, shorter than --timeout).
    void set_quiet(bool quiet) { quiet_ = quiet; }

private:
    struct Slot;
    class MbufOutbox;
    enum class Phase : uint8_t { idle, waiting, connecting, sending, disconnecting, done };

    void service(Slot& s);
    void begin_connect(Slot& s);
    void pump(Slot& s);
    void begin_disconnect(Slot& s);
    void reschedule(Slot& s);
    uint64_t app_due(const Slot& s) const;
    void on_connected(Slot& s);
    void on_echo(Slot& s, std::span<const uint8_t> payload);
    void on_finished(Slot& s, client::Outcome why);
    void vanish(Slot& s);
    void end_session(Slot& s, uint64_t wait_ns);
    bool may_send(Slot& s);
    void grant_credit();

    ClientPoolConfig config_;
    drivers::Port& port_;
    uint16_t queue_;
    uint64_t send_interval_ns_ = 0;

    std::unique_ptr<MbufOutbox> out_;
    std::vector<std::unique_ptr<Slot>> slots_;
    TimerWheel wheel_;

    struct InFlight {
        uint32_t seq = UINT32_MAX;  // UINT32_MAX: free
        uint64_t sent_ns = 0;
    };
    std::vector<InFlight> ring_;     // `window` entries per client
    std::vector<uint64_t> echoed_;   // one bit per payload per client
    uint32_t in_flight_ = 0;         // payloads sent, neither echoed nor given up
    std::vector<uint32_t> waiters_;  // FIFO of clients held back by max_in_flight (ring)
    size_t waiter_head_ = 0, waiter_count_ = 0;
    bool granting_ = false;          // grant_credit() is servicing the FIFO's head
    uint32_t bitmap_words_ = 0;      // per client

    std::vector<rte_mbuf*> rx_pkts_;
    std::vector<wire::Address> rx_from_;
    std::vector<uint16_t> rx_local_;
    std::vector<uint8_t> payload_;  // scratch: the payload being sent
    std::vector<uint8_t> expect_;   // scratch: the payload an echo should equal
    std::array<uint8_t, wire::kConnectTokenSize> token_{};

    PoolTap* tap_ = nullptr;
    Outbox* divert_ = nullptr;  // send_via's outbox while it runs
    bool quiet_ = false;

    Now now_{};
    TscClock clock_;
    bool started_ = false;
    bool stopping_ = false;
    uint32_t connected_now_ = 0;
    ClientPoolStats stats_;
};

}  // namespace pomelo::engine
