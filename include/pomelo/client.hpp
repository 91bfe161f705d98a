// pomelo/client.hpp: the C++ API of the Pomelo game client library (libpomelo-client).
//
// pomelo::UdpClient is one client connection over kernel UDP: connect with a 2048-byte
// connect token, update() every frame (or start_thread()), send() and receive() payloads of
// 1..1200 bytes, read state, outcome, RTT and the server clock estimate, disconnect(). The C
// API in pomelo.h is the same client; its header comment (time, ownership, thread safety)
// holds here too: times are monotonic nanoseconds, kNow means the library's clock, every
// member may be called from any thread (each takes the client's lock), and nothing throws
// except the constructor (std::bad_alloc).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include <pomelo/pomelo.h>

namespace pomelo {

inline constexpr size_t kConnectTokenBytes = POMELO_CONNECT_TOKEN_BYTES;
inline constexpr size_t kMaxPayloadBytes = POMELO_MAX_PAYLOAD_BYTES;
inline constexpr uint64_t kNow = POMELO_NOW;

enum class ClientResult : int {
    ok = POMELO_OK,
    invalid_argument = POMELO_ERROR_INVALID_ARGUMENT,
    wrong_state = POMELO_ERROR_WRONG_STATE,
    socket_error = POMELO_ERROR_SOCKET,
    buffer_too_small = POMELO_ERROR_BUFFER_TOO_SMALL,
    out_of_memory = POMELO_ERROR_OUT_OF_MEMORY,
    thread_error = POMELO_ERROR_THREAD,
    crypto_error = POMELO_ERROR_CRYPTO,
    internal_error = POMELO_ERROR_INTERNAL,
    token_unusable = POMELO_ERROR_TOKEN,
};

enum class ClientState : int {
    disconnected = POMELO_STATE_DISCONNECTED,
    sending_request = POMELO_STATE_SENDING_REQUEST,
    sending_response = POMELO_STATE_SENDING_RESPONSE,
    connected = POMELO_STATE_CONNECTED,
    disconnecting = POMELO_STATE_DISCONNECTING,
};

enum class ClientOutcome : int {
    none = POMELO_OUTCOME_NONE,
    invalid_token = POMELO_OUTCOME_INVALID_TOKEN,
    token_expired = POMELO_OUTCOME_TOKEN_EXPIRED,
    denied = POMELO_OUTCOME_DENIED,
    request_timed_out = POMELO_OUTCOME_REQUEST_TIMED_OUT,
    response_timed_out = POMELO_OUTCOME_RESPONSE_TIMED_OUT,
    connection_lost = POMELO_OUTCOME_CONNECTION_LOST,
    disconnected_by_server = POMELO_OUTCOME_DISCONNECTED_BY_SERVER,
    disconnected = POMELO_OUTCOME_DISCONNECTED,
    token_already_used = POMELO_OUTCOME_TOKEN_ALREADY_USED,
};

POMELO_API const char* to_string(ClientResult r) noexcept;
POMELO_API const char* to_string(ClientState s) noexcept;
POMELO_API const char* to_string(ClientOutcome o) noexcept;

// Options; see pomelo_client_config for each field.
struct ClientConfig {
    uint32_t receive_queue_payloads = 1024;
    uint32_t socket_buffer_bytes = 1u << 20;
    uint64_t resend_interval_ns = 100'000'000;
    uint64_t ping_interval_ns = 100'000'000;
    bool accept_reference_denied = false;
};

using ClientStats = pomelo_client_stats;

class POMELO_API UdpClient {
public:
    // A disconnected client; no socket is opened yet. Throws std::bad_alloc only; a config
    // out of range (receive_queue_payloads 0, an interval 0) is clamped to the nearest valid.
    explicit UdpClient(const ClientConfig& config = {});
    // Stops the thread, sends the DISCONNECTs at once if connected, closes the sockets.
    ~UdpClient();
    UdpClient(const UdpClient&) = delete;
    UdpClient& operator=(const UdpClient&) = delete;

    // The library's monotonic clock (ns, arbitrary epoch).
    static uint64_t now_ns() noexcept;

    // See pomelo_client_connect / _update / _next_update_ns / _send / _disconnect.
    ClientResult connect(std::span<const uint8_t> token, uint64_t now_ns = kNow) noexcept;
    ClientResult update(uint64_t now_ns = kNow) noexcept;
    uint64_t next_update_ns() const noexcept;
    ClientResult send(std::span<const uint8_t> payload) noexcept;
    // The oldest received payload into `buffer`: `size` is its size, 0 when none is queued
    // (result ok). buffer_too_small: `size` is the size needed, the payload stays queued.
    ClientResult receive(std::span<uint8_t> buffer, size_t& size) noexcept;
    ClientResult disconnect(uint64_t now_ns = kNow) noexcept;

    ClientResult start_thread() noexcept;
    ClientResult stop_thread() noexcept;

    ClientState state() const noexcept;
    ClientOutcome outcome() const noexcept;
    int64_t client_id() const noexcept;
    // "a.b.c.d:port" or "[v6]:port", "" when disconnected. May throw std::bad_alloc.
    std::string server_address() const;
    uint64_t rtt_ns() const noexcept;
    int64_t clock_offset_ns(uint64_t now_ns = kNow) const noexcept;
    double clock_drift_ppm() const noexcept;
    uint64_t network_time_ns(uint64_t now_ns = kNow) const noexcept;
    ClientStats stats() const noexcept;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace pomelo
