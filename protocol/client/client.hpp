// The client (spec §13): token validation, REQUEST / RESPONSE with resends and phase
// timeouts, multi-address fallback, the connected phase with PING/PONG, RTT and clock sync,
// and graceful disconnect. Pure: datagrams in, datagrams out through an Outbox, time passed
// in. A load generator runs thousands of these in one process, so it allocates nothing after
// construction and tells when it next needs update() (next_update_ns).
#pragma once

#include <array>
#include <cstdint>
#include <span>

#include "protocol/clock_sync.hpp"
#include "protocol/outbox.hpp"
#include "protocol/replay.hpp"
#include "protocol/rtt.hpp"
#include "protocol/stats.hpp"
#include "protocol/time.hpp"
#include "protocol/wire/connect_token.hpp"

namespace pomelo::client {

enum class State : uint8_t { disconnected, sending_request, sending_response, connected, disconnecting };

// How a connection attempt or a connection ended.
enum class Outcome : uint8_t {
    none,
    invalid_token,           // the token failed §5.5 checks
    token_expired,           // at start or before trying the next address
    denied,                  // the server is full (authenticated DENIED)
    request_timed_out,       // no CHALLENGE within the token timeout
    response_timed_out,      // no PING after our RESPONSE within the token timeout (§19.17)
    connection_lost,         // connected, then nothing authenticated within the timeout
    disconnected_by_server,  // the server sent DISCONNECT
    disconnected,            // we disconnected
    token_already_used,      // this client already sealed packets under the token's keys (§9)
};
inline constexpr unsigned kOutcomeCount = static_cast<unsigned>(Outcome::token_already_used) + 1;
const char* to_string(State s);
const char* to_string(Outcome o);

struct Config {
    uint64_t resend_interval_ns = 100 * kMillisecond;  // REQUEST / RESPONSE
    uint64_t ping_interval_ns = 100 * kMillisecond;
    uint64_t pong_min_interval_ns = 50 * kMillisecond;
    unsigned disconnect_packets = 10;
    // Accept a DENIED sealed with a zero key and protocol id 0, as reference servers send it
    // (§12.9). Anyone can forge that packet, so it is off unless asked for.
    bool accept_reference_denied = false;
};

class Events {
public:
    virtual ~Events() = default;
    virtual void on_connected(int64_t /*client_id*/) {}
    virtual void on_payload(std::span<const uint8_t>) {}
    // The client is DISCONNECTED again; `outcome` says why.
    virtual void on_disconnected(Outcome) {}
};

class Client {
public:
    Client(const Config& config, Events& events, Outbox& out);

    // Validates the public token (§5.5, expiry) and starts with its first address. Returns
    // false (with outcome() set) if the token is unusable.
    bool connect(std::span<const uint8_t> token, const Now& now);

    void receive(std::span<uint8_t> datagram, const wire::Address& from, const Now& now);
    void update(const Now& now);
    // The earliest monotonic time at which update() has work; UINT64_MAX when idle.
    uint64_t next_update_ns() const { return next_ns_; }

    bool send(std::span<const uint8_t> payload, const Now& now);
    // Starts the 10 DISCONNECTs (only when connected); on_disconnected(disconnected) follows.
    bool disconnect(const Now& now);
    // Drops everything at once, nothing sent.
    void reset();

    State state() const { return state_; }
    Outcome outcome() const { return outcome_; }
    int64_t client_id() const { return client_id_; }
    const wire::Address& server_address() const { return token_.addresses.list[address_index_]; }
    uint32_t address_index() const { return address_index_; }
    uint64_t network_time(uint64_t local_ns) const { return clock_.network_time(local_ns); }
    const ClockSync& clock() const { return clock_; }
    const PingTracker& pings() const { return pings_; }
    const Counters& counters() const { return counters_; }

private:
    void start_address(const Now& now);
    void fail_attempt(Outcome why, const Now& now);
    void finish(Outcome why);
    void on_challenge(const wire::Packet& p, const Now& now);
    void on_ping(const wire::Packet& p, const Now& now);
    void send_stored(std::span<const uint8_t> datagram, wire::PacketType type);
    bool send_ping(const Now& now);
    bool send_pong(uint16_t ping_sequence, uint64_t recv_ns, const Now& now);
    bool send_disconnect();
    bool emit_packet(wire::PacketType type, const auto& write_body);

    Config config_;
    Events& events_;
    Outbox& out_;

    State state_ = State::disconnected;
    Outcome outcome_ = Outcome::none;
    wire::ConnectToken token_;
    wire::PacketContext ctx_;
    uint32_t address_index_ = 0;
    uint64_t timeout_ns_ = 0;  // 0: no timeout
    uint64_t phase_start_ns_ = 0;
    uint64_t next_ns_ = UINT64_MAX;

    std::array<uint8_t, wire::kRequestSize> request_{};
    // Tags of the last tokens whose keys this client sealed packets with (connect() refuses
    // them): a game client typically retries with the token it just used.
    std::array<std::array<uint8_t, wire::kTagSize>, 64> used_tokens_{};
    size_t used_next_ = 0;
    std::array<uint8_t, wire::kMaxHeaderSize + wire::kChallengeBodySize + wire::kTagSize> response_{};
    size_t response_size_ = 0;

    int64_t client_id_ = 0;
    uint64_t send_sequence_ = 0;
    ReplayWindow replay_;
    uint64_t last_recv_ns_ = 0;
    uint64_t last_pong_ns_ = 0;
    bool pong_sent_ = false;
    unsigned disconnects_sent_ = 0;
    PingTracker pings_;
    ClockSync clock_;
    Counters counters_;
};

}  // namespace pomelo::client
