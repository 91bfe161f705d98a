/*
 * pomelo.h: the C API of the Pomelo game client library (libpomelo-client).
 *
 * A game client connects to a Pomelo 1.03 server (pomelo-engine, or any netcode.io-style
 * server speaking Pomelo 1.03) over kernel UDP with a 2048-byte connect token that its web
 * backend minted (`pomelo-token mint`, spec section 5), then exchanges encrypted payloads of
 * 1..1200 bytes. The library does the handshake, tries the token's server addresses in order
 * (IPv4 and IPv6), keeps the connection alive (PING/PONG at 10 Hz), measures the round-trip
 * time, estimates the server's clock, and disconnects gracefully.
 *
 * Plain C (C99 and later, C++ too): opaque handles, no exceptions, no callbacks; every
 * function that can fail returns a pomelo_result (0 = POMELO_OK, negative = an error). Made
 * for bindings (C#, Rust, Godot, Unity): fixed-width integers, no structs passed by value.
 *
 * Time: every duration and time is in nanoseconds (uint64_t). The functions that take a time
 * (connect, update, disconnect) take a monotonic time in ns, or POMELO_NOW for the library's
 * own monotonic clock (pomelo_time_ns). Give one client one clock: either always POMELO_NOW,
 * or always your own monotonic clock, never going backwards (a smaller time is taken as the
 * previous one). The clock offset and network time below are relative to that clock.
 *
 * Ownership: pomelo_client_create allocates a client; pomelo_client_destroy frees it. Data
 * passed in (tokens, payloads, configs) is copied before the call returns; the caller keeps
 * ownership of its buffers. Strings returned (pomelo_*_string, pomelo_version) are static:
 * never freed, valid for the life of the process.
 *
 * Thread safety: the functions on one client may be called from any thread, and from several
 * threads at once (each call takes the client's lock), except pomelo_client_destroy, which
 * must be the last call on it. Different clients share nothing. The library starts no thread
 * unless asked (pomelo_client_start_thread).
 *
 * Typical frame loop:
 *
 *     pomelo_client *c;
 *     pomelo_client_create(NULL, &c);
 *     pomelo_client_connect(c, token, POMELO_CONNECT_TOKEN_BYTES, POMELO_NOW);
 *     for (;;) {                                    // once per frame
 *         pomelo_client_update(c, POMELO_NOW);      // receive, resend, ping, time out
 *         if (pomelo_client_state(c) == POMELO_STATE_CONNECTED)
 *             pomelo_client_send(c, input, input_size);
 *         uint8_t buf[POMELO_MAX_PAYLOAD_BYTES];
 *         int n;
 *         while ((n = pomelo_client_receive(c, buf, sizeof buf)) > 0) apply_snapshot(buf, n);
 *         if (pomelo_client_state(c) == POMELO_STATE_DISCONNECTED) break;  // see outcome
 *     }
 *     pomelo_client_destroy(c);
 */
#ifndef POMELO_POMELO_H
#define POMELO_POMELO_H

#include <stddef.h>
#include <stdint.h>

#if defined(_WIN32)
#if defined(POMELO_CLIENT_BUILD)
#define POMELO_API __declspec(dllexport)
#else
#define POMELO_API
#endif
#elif defined(__GNUC__)
#define POMELO_API __attribute__((visibility("default")))
#else
#define POMELO_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* A connect token is exactly this many bytes (spec section 5.1). */
#define POMELO_CONNECT_TOKEN_BYTES 2048
/* A payload is 1..POMELO_MAX_PAYLOAD_BYTES bytes (spec section 8.6). */
#define POMELO_MAX_PAYLOAD_BYTES 1200
/* As a time argument: the library's monotonic clock (pomelo_time_ns) now. */
#define POMELO_NOW UINT64_MAX

typedef enum pomelo_result {
    POMELO_OK = 0,
    POMELO_ERROR_INVALID_ARGUMENT = -1, /* a NULL handle or buffer, a bad size or config */
    POMELO_ERROR_WRONG_STATE = -2,      /* e.g. send while not connected, update while the thread runs */
    POMELO_ERROR_SOCKET = -3,           /* no UDP socket could be opened for the token's addresses */
    POMELO_ERROR_BUFFER_TOO_SMALL = -4, /* receive: the payload stays queued */
    POMELO_ERROR_OUT_OF_MEMORY = -5,
    POMELO_ERROR_THREAD = -6, /* the background thread could not be started */
    POMELO_ERROR_CRYPTO = -7, /* libsodium could not initialise (no entropy source) */
    POMELO_ERROR_INTERNAL = -8,
    POMELO_ERROR_TOKEN = -9 /* connect: the token is unusable, pomelo_client_outcome says why */
} pomelo_result;

/* A client: one connection at a time, made with pomelo_client_create. */
typedef struct pomelo_client pomelo_client;

/* Connection state (spec section 13). */
typedef enum pomelo_state {
    POMELO_STATE_DISCONNECTED = 0, /* idle, or ended: pomelo_client_outcome says why */
    POMELO_STATE_SENDING_REQUEST = 1,
    POMELO_STATE_SENDING_RESPONSE = 2,
    POMELO_STATE_CONNECTED = 3,
    POMELO_STATE_DISCONNECTING = 4 /* sending its DISCONNECTs (about 1 s) */
} pomelo_state;

/* How the last connection attempt or connection ended. */
typedef enum pomelo_outcome {
    POMELO_OUTCOME_NONE = 0,                   /* not ended (or never connected) */
    POMELO_OUTCOME_INVALID_TOKEN = 1,          /* the token is malformed */
    POMELO_OUTCOME_TOKEN_EXPIRED = 2,          /* at connect, or before the next address */
    POMELO_OUTCOME_DENIED = 3,                 /* the server is full */
    POMELO_OUTCOME_REQUEST_TIMED_OUT = 4,      /* no server answered (every address tried) */
    POMELO_OUTCOME_RESPONSE_TIMED_OUT = 5,     /* handshake began, never completed */
    POMELO_OUTCOME_CONNECTION_LOST = 6,        /* connected, then nothing within the token's timeout */
    POMELO_OUTCOME_DISCONNECTED_BY_SERVER = 7, /* the server sent DISCONNECT */
    POMELO_OUTCOME_DISCONNECTED = 8,           /* we disconnected (pomelo_client_disconnect) */
    POMELO_OUTCOME_TOKEN_ALREADY_USED = 9      /* this client already connected with this token: get a new one */
} pomelo_outcome;

/* Options, copied by pomelo_client_create. Fill with pomelo_client_config_init first. */
typedef struct pomelo_client_config {
    uint32_t receive_queue_payloads; /* payloads kept until received; more are dropped and
                                        counted (default 1024, minimum 1) */
    uint32_t socket_buffer_bytes;    /* SO_RCVBUF/SO_SNDBUF, 0 = system default (default 1 MiB) */
    uint64_t resend_interval_ns;     /* REQUEST/RESPONSE/DISCONNECT resend (default 100 ms) */
    uint64_t ping_interval_ns;       /* keep-alive PING while connected (default 100 ms) */
    int32_t accept_reference_denied; /* nonzero: accept the unauthenticated DENIED that
                                        reference servers send (spec 12.9; forgeable). Default 0 */
} pomelo_client_config;

/* Counters of one client since it was created. */
typedef struct pomelo_client_stats {
    uint64_t payloads_sent;
    uint64_t payloads_received;       /* queued for pomelo_client_receive */
    uint64_t payloads_dropped;        /* received while the queue was full */
    uint64_t datagrams_sent;          /* every packet type */
    uint64_t datagrams_received;      /* read from the sockets */
    uint64_t datagrams_rejected;      /* received but dropped (not from the server, not
                                         authentic, replayed, wrong state, oversized) */
    uint64_t send_failures;           /* sends the operating system refused */
} pomelo_client_stats;

/* "0.1.0". */
POMELO_API const char *pomelo_version(void);
/* The library's monotonic clock, ns since an arbitrary epoch. */
POMELO_API uint64_t pomelo_time_ns(void);
/* Static English names: "connected", "request timed out", "invalid argument", ... */
POMELO_API const char *pomelo_state_string(pomelo_state state);
POMELO_API const char *pomelo_outcome_string(pomelo_outcome outcome);
POMELO_API const char *pomelo_result_string(int result);

/* Sets every field to its default. */
POMELO_API void pomelo_client_config_init(pomelo_client_config *config);

/* Creates a disconnected client in *out (config NULL: defaults). No socket is opened yet.
   Errors: INVALID_ARGUMENT (out NULL, a config field out of range), OUT_OF_MEMORY, CRYPTO. */
POMELO_API int pomelo_client_create(const pomelo_client_config *config, pomelo_client **out);
/* Stops the background thread, sends the DISCONNECTs at once if connected, closes the
   sockets and frees the client. NULL is ignored. */
POMELO_API void pomelo_client_destroy(pomelo_client *client);

/* Starts connecting with a connect token of POMELO_CONNECT_TOKEN_BYTES bytes (copied; the
   client wipes its copy of the keys when done). Opens fresh sockets (new source ports) for
   the token's address families, sends the first REQUEST and returns: the handshake goes on
   in pomelo_client_update (or the thread) until the state is CONNECTED or DISCONNECTED.
   Only from POMELO_STATE_DISCONNECTED. Errors: INVALID_ARGUMENT (NULL, size), WRONG_STATE,
   TOKEN (the outcome says why: INVALID_TOKEN, TOKEN_EXPIRED, TOKEN_ALREADY_USED), SOCKET. */
POMELO_API int pomelo_client_connect(pomelo_client *client, const uint8_t *token, size_t token_size, uint64_t now_ns);

/* Reads the datagrams waiting on the sockets (up to 256 per socket and call), then runs the
   timers due at now_ns (resends, PING, timeouts, next address). Call it often (every frame; at least every 10 ms while
   connecting or connected). Never blocks. WRONG_STATE while the background thread runs. */
POMELO_API int pomelo_client_update(pomelo_client *client, uint64_t now_ns);
/* The earliest monotonic time (ns, the client's clock) at which update has work to do;
   UINT64_MAX when disconnected. Datagrams arriving earlier are read by update too. */
POMELO_API uint64_t pomelo_client_next_update_ns(pomelo_client *client);

/* Sends one payload of 1..POMELO_MAX_PAYLOAD_BYTES bytes (copied, encrypted, sent now).
   Unreliable and unordered, as UDP is. Errors: INVALID_ARGUMENT (size), WRONG_STATE (not
   connected). */
POMELO_API int pomelo_client_send(pomelo_client *client, const uint8_t *data, size_t size);

/* Takes the oldest received payload: copies it into buffer and returns its size (1..1200);
   0 when none is queued. BUFFER_TOO_SMALL (the payload stays queued) when capacity is less
   than its size: POMELO_MAX_PAYLOAD_BYTES always fits. Payloads received in a connection
   stay queued after it ends and are dropped by the next connect. */
POMELO_API int pomelo_client_receive(pomelo_client *client, uint8_t *buffer, size_t capacity);

/* Connected: starts the graceful disconnect (10 DISCONNECTs over 1 s, then
   DISCONNECTED with outcome DISCONNECTED). Connecting: abandons the attempt at once
   (outcome DISCONNECTED). Disconnected or disconnecting: nothing. Returns OK. */
POMELO_API int pomelo_client_disconnect(pomelo_client *client, uint64_t now_ns);

/* Runs update on a thread of the library's own, on the library's clock, waking for every
   datagram and timer (at least every 10 ms). Then pass POMELO_NOW to connect/disconnect, and
   do not call update. Errors: WRONG_STATE (already running), THREAD. */
POMELO_API int pomelo_client_start_thread(pomelo_client *client);
/* Stops and joins the thread (returns within about 10 ms). OK also when not running. */
POMELO_API int pomelo_client_stop_thread(pomelo_client *client);

POMELO_API pomelo_state pomelo_client_state(pomelo_client *client);
POMELO_API pomelo_outcome pomelo_client_outcome(pomelo_client *client);
/* The id the server assigned (from the token), once connected; 0 before. */
POMELO_API int64_t pomelo_client_id(pomelo_client *client);
/* The server address in use, as "a.b.c.d:port" or "[v6]:port", NUL-terminated into buffer
   (64 bytes are always enough); "" when disconnected. Returns the length, or
   BUFFER_TOO_SMALL / INVALID_ARGUMENT. */
POMELO_API int pomelo_client_server_address(pomelo_client *client, char *buffer, size_t capacity);

/* Round-trip time: mean of the last 10 PING/PONG samples (spec 14.4), ns; 0 before the first
   PONG of this connection. */
POMELO_API uint64_t pomelo_client_rtt_ns(pomelo_client *client);
/* Server clock estimate (spec 14.5): the server's monotonic time minus the client's clock,
   ns, at local time now_ns (POMELO_NOW: the library's clock). 0 until connected.
   Drift in parts per million (server ns per client ns - 1, times 1e6), once the PONGs span
   5 s; 0 before. */
POMELO_API int64_t pomelo_client_clock_offset_ns(pomelo_client *client, uint64_t now_ns);
POMELO_API double pomelo_client_clock_drift_ppm(pomelo_client *client);
/* The server's clock at local time now_ns: now_ns + offset. */
POMELO_API uint64_t pomelo_client_network_time_ns(pomelo_client *client, uint64_t now_ns);

/* Copies the counters into *out. INVALID_ARGUMENT if either pointer is NULL. */
POMELO_API int pomelo_client_get_stats(pomelo_client *client, pomelo_client_stats *out);

#ifdef __cplusplus
}
#endif

#endif /* POMELO_POMELO_H */
