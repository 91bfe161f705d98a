// The C API (pomelo.h) over pomelo::UdpClient. Nothing may unwind into C: every entry point
// that could throw catches everything and returns an error code.
#include <cstring>
#include <new>
#include <string>

#include "pomelo/client.hpp"
#include "pomelo/pomelo.h"
#include "protocol/crypto/aead.hpp"

#ifndef POMELO_VERSION
#define POMELO_VERSION "unknown"
#endif

struct pomelo_client {
    explicit pomelo_client(const pomelo::ClientConfig& c) : client(c) {}
    pomelo::UdpClient client;
};

namespace {

using pomelo::ClientResult;

int code(ClientResult r) { return static_cast<int>(r); }

}  // namespace

extern "C" {

const char* pomelo_version(void) { return POMELO_VERSION; }

uint64_t pomelo_time_ns(void) { return pomelo::UdpClient::now_ns(); }

const char* pomelo_state_string(pomelo_state state) {
    if (state < POMELO_STATE_DISCONNECTED || state > POMELO_STATE_DISCONNECTING) return "unknown state";
    return pomelo::to_string(static_cast<pomelo::ClientState>(state));
}

const char* pomelo_outcome_string(pomelo_outcome outcome) {
    if (outcome < POMELO_OUTCOME_NONE || outcome > POMELO_OUTCOME_TOKEN_ALREADY_USED) return "unknown outcome";
    return pomelo::to_string(static_cast<pomelo::ClientOutcome>(outcome));
}

const char* pomelo_result_string(int result) {
    switch (result) {
        case POMELO_OK: return "ok";
        case POMELO_ERROR_INVALID_ARGUMENT: return "invalid argument";
        case POMELO_ERROR_WRONG_STATE: return "wrong state";
        case POMELO_ERROR_SOCKET: return "no UDP socket could be opened";
        case POMELO_ERROR_BUFFER_TOO_SMALL: return "buffer too small";
        case POMELO_ERROR_OUT_OF_MEMORY: return "out of memory";
        case POMELO_ERROR_THREAD: return "cannot start a thread";
        case POMELO_ERROR_CRYPTO: return "cannot initialise libsodium";
        case POMELO_ERROR_INTERNAL: return "internal error";
        case POMELO_ERROR_TOKEN: return "the connect token is unusable";
        default: return "unknown result";
    }
}

void pomelo_client_config_init(pomelo_client_config* config) {
    if (!config) return;
    const pomelo::ClientConfig d;
    config->receive_queue_payloads = d.receive_queue_payloads;
    config->socket_buffer_bytes = d.socket_buffer_bytes;
    config->resend_interval_ns = d.resend_interval_ns;
    config->ping_interval_ns = d.ping_interval_ns;
    config->accept_reference_denied = d.accept_reference_denied ? 1 : 0;
}

int pomelo_client_create(const pomelo_client_config* config, pomelo_client** out) {
    if (!out) return POMELO_ERROR_INVALID_ARGUMENT;
    *out = nullptr;
    pomelo::ClientConfig c;
    if (config) {
        if (config->receive_queue_payloads == 0 || config->resend_interval_ns == 0 || config->ping_interval_ns == 0 ||
            config->socket_buffer_bytes > INT32_MAX)
            return POMELO_ERROR_INVALID_ARGUMENT;
        c.receive_queue_payloads = config->receive_queue_payloads;
        c.socket_buffer_bytes = config->socket_buffer_bytes;
        c.resend_interval_ns = config->resend_interval_ns;
        c.ping_interval_ns = config->ping_interval_ns;
        c.accept_reference_denied = config->accept_reference_denied != 0;
    }
    if (!pomelo::crypto::init()) return POMELO_ERROR_CRYPTO;
    try {
        *out = new pomelo_client(c);
    } catch (const std::bad_alloc&) {
        return POMELO_ERROR_OUT_OF_MEMORY;
    } catch (...) {
        return POMELO_ERROR_INTERNAL;
    }
    return POMELO_OK;
}

void pomelo_client_destroy(pomelo_client* client) { delete client; }

int pomelo_client_connect(pomelo_client* client, const uint8_t* token, size_t token_size, uint64_t now_ns) {
    if (!client || !token) return POMELO_ERROR_INVALID_ARGUMENT;
    return code(client->client.connect(std::span(token, token_size), now_ns));
}

int pomelo_client_update(pomelo_client* client, uint64_t now_ns) {
    if (!client) return POMELO_ERROR_INVALID_ARGUMENT;
    return code(client->client.update(now_ns));
}

uint64_t pomelo_client_next_update_ns(pomelo_client* client) {
    return client ? client->client.next_update_ns() : UINT64_MAX;
}

int pomelo_client_send(pomelo_client* client, const uint8_t* data, size_t size) {
    if (!client || !data) return POMELO_ERROR_INVALID_ARGUMENT;
    return code(client->client.send(std::span(data, size)));
}

int pomelo_client_receive(pomelo_client* client, uint8_t* buffer, size_t capacity) {
    if (!client || (!buffer && capacity)) return POMELO_ERROR_INVALID_ARGUMENT;
    size_t size = 0;
    const ClientResult r = client->client.receive(std::span(buffer, capacity), size);
    return r == ClientResult::ok ? static_cast<int>(size) : code(r);
}

int pomelo_client_disconnect(pomelo_client* client, uint64_t now_ns) {
    if (!client) return POMELO_ERROR_INVALID_ARGUMENT;
    return code(client->client.disconnect(now_ns));
}

int pomelo_client_start_thread(pomelo_client* client) {
    if (!client) return POMELO_ERROR_INVALID_ARGUMENT;
    return code(client->client.start_thread());
}

int pomelo_client_stop_thread(pomelo_client* client) {
    if (!client) return POMELO_ERROR_INVALID_ARGUMENT;
    return code(client->client.stop_thread());
}

pomelo_state pomelo_client_state(pomelo_client* client) {
    return client ? static_cast<pomelo_state>(client->client.state()) : POMELO_STATE_DISCONNECTED;
}

pomelo_outcome pomelo_client_outcome(pomelo_client* client) {
    return client ? static_cast<pomelo_outcome>(client->client.outcome()) : POMELO_OUTCOME_NONE;
}

int64_t pomelo_client_id(pomelo_client* client) { return client ? client->client.client_id() : 0; }

int pomelo_client_server_address(pomelo_client* client, char* buffer, size_t capacity) {
    if (!client || !buffer) return POMELO_ERROR_INVALID_ARGUMENT;
    try {
        const std::string a = client->client.server_address();
        if (a.size() + 1 > capacity) return POMELO_ERROR_BUFFER_TOO_SMALL;
        std::memcpy(buffer, a.c_str(), a.size() + 1);
        return static_cast<int>(a.size());
    } catch (const std::bad_alloc&) {
        return POMELO_ERROR_OUT_OF_MEMORY;
    } catch (...) {
        return POMELO_ERROR_INTERNAL;
    }
}

uint64_t pomelo_client_rtt_ns(pomelo_client* client) { return client ? client->client.rtt_ns() : 0; }

int64_t pomelo_client_clock_offset_ns(pomelo_client* client, uint64_t now_ns) {
    return client ? client->client.clock_offset_ns(now_ns) : 0;
}

double pomelo_client_clock_drift_ppm(pomelo_client* client) { return client ? client->client.clock_drift_ppm() : 0; }

uint64_t pomelo_client_network_time_ns(pomelo_client* client, uint64_t now_ns) {
    return client ? client->client.network_time_ns(now_ns) : 0;
}

int pomelo_client_get_stats(pomelo_client* client, pomelo_client_stats* out) {
    if (!client || !out) return POMELO_ERROR_INVALID_ARGUMENT;
    *out = client->client.stats();
    return POMELO_OK;
}

}  // extern "C"
