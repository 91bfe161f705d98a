/*
 * A game client in plain C11 on pomelo.h, against a running pomelo-server with the echo
 * application. Built with -std=c11 -pedantic-errors -Wall -Wextra -Werror.
 *
 *   echo_client [--thread] TOKEN_FILE PAYLOADS SIZE
 *       connect with the 2048-byte token in TOKEN_FILE (pomelo-token mint --format bin),
 *       send PAYLOADS payloads of SIZE bytes (at most 32 unanswered), check that every one
 *       comes back byte for byte, read RTT and clock offset, disconnect. --thread: the
 *       library's thread drives the client instead of update() calls.
 *   echo_client --expect OUTCOME TOKEN_FILE
 *       connect and wait for the attempt to end: exit 0 if it ended with OUTCOME (as
 *       pomelo_outcome_string names it, e.g. "denied", "request timed out").
 *
 * Prints what it sees on stdout; exit status 0 on success, 1 on any failure, 2 bad usage.
 */
#define _POSIX_C_SOURCE 200809L /* nanosleep */

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <pomelo/pomelo.h>

#define WINDOW 32
/* Bounded waits: generous, they only end a run that is failing anyway. */
#define CONNECT_WAIT_NS (20ull * 1000000000ull)
#define PROGRESS_WAIT_NS (10ull * 1000000000ull)

static int use_thread = 0;

static void sleep_ms(long ms) {
    struct timespec ts;
    ts.tv_sec = ms / 1000;
    ts.tv_nsec = (ms % 1000) * 1000000L;
    nanosleep(&ts, NULL);
}

/* One step of the frame loop: update (unless the thread does it), then a short sleep. */
static int step(pomelo_client *client) {
    if (!use_thread) {
        int r = pomelo_client_update(client, POMELO_NOW);
        if (r != POMELO_OK) {
            fprintf(stderr, "echo_client: update: %s\n", pomelo_result_string(r));
            return 0;
        }
    }
    sleep_ms(1);
    return 1;
}

static int read_token(const char *path, uint8_t token[POMELO_CONNECT_TOKEN_BYTES]) {
    FILE *f = fopen(path, "rb");
    size_t n;
    int extra;
    if (!f) {
        fprintf(stderr, "echo_client: cannot open %s\n", path);
        return 0;
    }
    n = fread(token, 1, POMELO_CONNECT_TOKEN_BYTES, f);
    extra = fgetc(f);
    fclose(f);
    if (n != POMELO_CONNECT_TOKEN_BYTES || extra != EOF) {
        fprintf(stderr, "echo_client: %s is not a 2048-byte token (pomelo-token mint --format bin)\n", path);
        return 0;
    }
    return 1;
}

/* Payload i: its index in the first 4 bytes, then a pattern of i. */
static void fill(uint8_t *p, size_t size, uint32_t i) {
    size_t j;
    for (j = 0; j < size; ++j) p[j] = (uint8_t)(j < 4 ? i >> (8 * j) : (i * 31u + j) & 0xffu);
}

static int connect_and_wait(pomelo_client *client, const uint8_t *token) {
    uint64_t start = pomelo_time_ns();
    int r = pomelo_client_connect(client, token, POMELO_CONNECT_TOKEN_BYTES, POMELO_NOW);
    if (r != POMELO_OK) {
        fprintf(stderr, "echo_client: connect: %s (%s)\n", pomelo_result_string(r),
                pomelo_outcome_string(pomelo_client_outcome(client)));
        return 0;
    }
    for (;;) {
        pomelo_state s = pomelo_client_state(client);
        if (s == POMELO_STATE_CONNECTED || s == POMELO_STATE_DISCONNECTED) return 1;
        if (pomelo_time_ns() - start > CONNECT_WAIT_NS) {
            fprintf(stderr, "echo_client: still %s after 20 s\n", pomelo_state_string(s));
            return 0;
        }
        if (!step(client)) return 0;
    }
}

static int expect_outcome(pomelo_client *client, const uint8_t *token, const char *expected) {
    const char *got;
    if (!connect_and_wait(client, token)) return 1;
    if (pomelo_client_state(client) == POMELO_STATE_CONNECTED) {
        fprintf(stderr, "echo_client: connected, expected the attempt to end with '%s'\n", expected);
        return 1;
    }
    got = pomelo_outcome_string(pomelo_client_outcome(client));
    printf("outcome: %s\n", got);
    if (strcmp(got, expected) != 0) {
        fprintf(stderr, "echo_client: outcome '%s', expected '%s'\n", got, expected);
        return 1;
    }
    return 0;
}

static int echo(pomelo_client *client, const uint8_t *token, uint32_t payloads, size_t size) {
    uint8_t out[POMELO_MAX_PAYLOAD_BYTES], in[POMELO_MAX_PAYLOAD_BYTES], want[POMELO_MAX_PAYLOAD_BYTES];
    char address[64];
    uint8_t *seen = calloc(payloads ? payloads : 1, 1);
    uint32_t sent = 0, echoed = 0;
    uint64_t progress = 0, start = 0;
    pomelo_client_stats stats;
    int ok = 0;

    if (!seen) return 1;
    if (!connect_and_wait(client, token)) goto done;
    if (pomelo_client_state(client) != POMELO_STATE_CONNECTED) {
        fprintf(stderr, "echo_client: not connected: %s\n", pomelo_outcome_string(pomelo_client_outcome(client)));
        goto done;
    }
    pomelo_client_server_address(client, address, sizeof address);
    printf("connected: client id %" PRId64 " to %s\n", pomelo_client_id(client), address);

    progress = pomelo_time_ns();
    while (echoed < payloads) {
        int n;
        while (sent < payloads && sent - echoed < WINDOW) {
            int r;
            fill(out, size, sent);
            r = pomelo_client_send(client, out, size);
            if (r != POMELO_OK) {
                fprintf(stderr, "echo_client: send %" PRIu32 ": %s\n", sent, pomelo_result_string(r));
                goto done;
            }
            ++sent;
        }
        if (!step(client)) goto done;
        while ((n = pomelo_client_receive(client, in, sizeof in)) > 0) {
            uint32_t i = (uint32_t)in[0] | (uint32_t)in[1] << 8 | (uint32_t)in[2] << 16 | (uint32_t)in[3] << 24;
            if ((size_t)n != size || i >= sent || seen[i]) {
                fprintf(stderr, "echo_client: unexpected echo (%d bytes, index %" PRIu32 ")\n", n, i);
                goto done;
            }
            fill(want, size, i);
            if (memcmp(in, want, size) != 0) {
                fprintf(stderr, "echo_client: echo %" PRIu32 " differs from what was sent\n", i);
                goto done;
            }
            seen[i] = 1;
            ++echoed;
            progress = pomelo_time_ns();
        }
        if (n < 0) {
            fprintf(stderr, "echo_client: receive: %s\n", pomelo_result_string(n));
            goto done;
        }
        if (pomelo_client_state(client) != POMELO_STATE_CONNECTED) {
            fprintf(stderr, "echo_client: %s after %" PRIu32 " echoes\n",
                    pomelo_outcome_string(pomelo_client_outcome(client)), echoed);
            goto done;
        }
        if (pomelo_time_ns() - progress > PROGRESS_WAIT_NS) {
            fprintf(stderr, "echo_client: no echo for 10 s: %" PRIu32 " of %" PRIu32 " back\n", echoed, sent);
            goto done;
        }
    }
    printf("echoed: %" PRIu32 " payloads of %u bytes, byte for byte\n", echoed, (unsigned)size);

    /* The RTT needs a PONG (PINGs go at 10 Hz). */
    start = pomelo_time_ns();
    while (pomelo_client_rtt_ns(client) == 0 && pomelo_time_ns() - start < PROGRESS_WAIT_NS)
        if (!step(client)) goto done;
    printf("rtt_ns: %" PRIu64 "\n", pomelo_client_rtt_ns(client));
    printf("clock_offset_ns: %" PRId64 "\n", pomelo_client_clock_offset_ns(client, POMELO_NOW));
    printf("clock_drift_ppm: %.3f\n", pomelo_client_clock_drift_ppm(client));
    if (pomelo_client_rtt_ns(client) == 0) {
        fprintf(stderr, "echo_client: no RTT sample\n");
        goto done;
    }
    /* The server's clock starts at 1 s when it starts: the network time is at least that. */
    if (pomelo_client_network_time_ns(client, POMELO_NOW) < 1000000000ull) {
        fprintf(stderr, "echo_client: network time before the server's clock start\n");
        goto done;
    }

    pomelo_client_disconnect(client, POMELO_NOW);
    start = pomelo_time_ns();
    while (pomelo_client_state(client) != POMELO_STATE_DISCONNECTED && pomelo_time_ns() - start < PROGRESS_WAIT_NS)
        if (!step(client)) goto done;
    printf("ended: %s\n", pomelo_outcome_string(pomelo_client_outcome(client)));
    if (pomelo_client_outcome(client) != POMELO_OUTCOME_DISCONNECTED) goto done;

    pomelo_client_get_stats(client, &stats);
    printf("stats: %" PRIu64 " payloads sent, %" PRIu64 " received, %" PRIu64 " dropped, %" PRIu64
           " datagrams rejected\n",
           stats.payloads_sent, stats.payloads_received, stats.payloads_dropped, stats.datagrams_rejected);
    ok = stats.payloads_sent == payloads && stats.payloads_received == payloads && stats.payloads_dropped == 0;
    if (!ok) fprintf(stderr, "echo_client: the counters disagree with what was sent and echoed\n");
done:
    free(seen);
    return ok ? 0 : 1;
}

int main(int argc, char **argv) {
    static uint8_t token[POMELO_CONNECT_TOKEN_BYTES];
    pomelo_client *client = NULL;
    int arg = 1, status, r;
    const char *expected = NULL;

    if (arg < argc && strcmp(argv[arg], "--thread") == 0) {
        use_thread = 1;
        ++arg;
    }
    if (arg + 1 < argc && strcmp(argv[arg], "--expect") == 0) {
        expected = argv[arg + 1];
        arg += 2;
    }
    if (expected ? argc - arg != 1 : argc - arg != 3) {
        fprintf(stderr, "usage: echo_client [--thread] TOKEN_FILE PAYLOADS SIZE\n"
                        "       echo_client [--thread] --expect OUTCOME TOKEN_FILE\n");
        return 2;
    }
    if (!read_token(argv[arg], token)) return 1;

    r = pomelo_client_create(NULL, &client);
    if (r != POMELO_OK) {
        fprintf(stderr, "echo_client: create: %s\n", pomelo_result_string(r));
        return 1;
    }
    if (use_thread && (r = pomelo_client_start_thread(client)) != POMELO_OK) {
        fprintf(stderr, "echo_client: start thread: %s\n", pomelo_result_string(r));
        pomelo_client_destroy(client);
        return 1;
    }
    if (expected) {
        status = expect_outcome(client, token, expected);
    } else {
        long payloads = strtol(argv[arg + 1], NULL, 10), size = strtol(argv[arg + 2], NULL, 10);
        if (payloads < 1 || payloads > 1000000 || size < 4 || size > POMELO_MAX_PAYLOAD_BYTES) {
            fprintf(stderr, "echo_client: PAYLOADS must be 1..1000000 and SIZE 4..1200\n");
            pomelo_client_destroy(client);
            return 2;
        }
        status = echo(client, token, (uint32_t)payloads, (size_t)size);
    }
    pomelo_client_stop_thread(client);
    pomelo_client_destroy(client);
    printf("result: %s\n", status == 0 ? "OK" : "FAILED");
    return status;
}
