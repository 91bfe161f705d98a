// pomelo-client --interactive: one client for trying a server by hand, on the game client
// library (libpomelo-client, kernel UDP, no DPDK). Each line read from stdin is sent as one
// PAYLOAD; each payload that comes back is printed as "< text"; a status line shows state,
// RTT and the server clock estimate. See kInteractiveHelp.
#include "tools/client_interactive.hpp"

#include <poll.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cinttypes>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "pomelo/client.hpp"
#include "protocol/crypto/aead.hpp"
#include "protocol/wire/connect_token.hpp"
#include "tools/common/cli.hpp"

namespace pomelo::tools {

namespace {

constexpr const char* kHelp = R"(usage: pomelo-client --interactive --token FILE [options]
       pomelo-client --interactive --server ADDR --key FILE --protocol-id ID [options]

Connect one client to a Pomelo 1.03 server over kernel UDP (the game client library, no
DPDK) and try it by hand: every line typed (or piped) on stdin is sent as one PAYLOAD (its
bytes without the newline, 1..1200 of them; empty lines are skipped); every payload that
comes back is printed as "< text" (bytes outside printable ASCII as \xNN). A status line,
"status: STATE ...", shows the state, the server address, the round-trip time and the
server clock offset, at every change of state and every --status-interval seconds.

The token: --token FILE, as 'pomelo-token mint' writes it (hex, the default, or
--format bin); it names the servers to try, in order. Or the tool mints one itself with the
server's key, as the load generator does: --server ADDR --key FILE --protocol-id ID.

options:
      --token FILE           connect token file (hex or raw 2048 bytes)
      --server ADDR          mint: the server, a.b.c.d:port or [v6]:port
      --key FILE             mint: server private key (64 hex digits)
      --protocol-id ID       mint: 64-bit application id, decimal or 0x-hex
      --client-id N          mint: the client id (default 1)
      --timeout S            mint: connection timeout in seconds (default 10)
      --status-interval S    seconds between status lines while connected; 0 = only at
                             changes of state (default 1)
      --linger S             after end of input, wait this long for replies before
                             disconnecting (default 1)
  -h, --help                 show this help

End of input (Ctrl-D), SIGINT or SIGTERM disconnects gracefully; a second signal exits at once.
exit status: 0 the session ended with our disconnect; 1 the connection failed or was lost
or the server disconnected; 2 bad arguments.
)";

std::atomic<int> g_signals{0};
void on_signal(int) { g_signals.fetch_add(1, std::memory_order_relaxed); }

struct Options {
    std::string token_file;
    std::optional<wire::Address> server;
    std::string key_file;
    std::optional<uint64_t> protocol_id;
    int64_t client_id = 1;
    int32_t timeout = 10;
    double status_interval = 1;
    double linger = 1;
};

Options parse(const std::vector<std::string>& args) {
    Options o;
    std::vector<std::string> seen;
    for (size_t i = 0; i < args.size(); ++i) {
        const std::string& opt = args[i];
        if (opt == "--interactive") continue;
        if (!opt.starts_with("--")) cli::bad_argument("--interactive", "unexpected argument " + cli::quote(opt));
        for (const auto& s : seen)
            if (s == opt) cli::bad_argument(opt, "given more than once");
        seen.push_back(opt);
        if (i + 1 >= args.size()) cli::bad_argument(opt, "needs a value");
        const std::string& v = args[++i];
        if (opt == "--token") {
            if (v.empty() || v == "-") cli::bad_argument(opt, "want a file (stdin carries the payloads)");
            o.token_file = v;
        } else if (opt == "--server") {
            o.server = cli::parse_address(opt, v);
            if (o.server->port == 0) cli::bad_argument(opt, cli::quote(v) + " has port 0");
        } else if (opt == "--key") {
            o.key_file = v;
        } else if (opt == "--protocol-id") {
            o.protocol_id = cli::parse_uint(opt, v);
        } else if (opt == "--client-id") {
            const auto id = cli::parse_signed<int64_t>(v);
            if (!id) cli::bad_argument(opt, cli::quote(v) + " is not a 64-bit signed number");
            o.client_id = *id;
        } else if (opt == "--timeout") {
            const auto t = cli::parse_signed<int32_t>(v);
            if (!t || *t == 0) cli::bad_argument(opt, cli::quote(v) + " is not a number of seconds (nonzero; negative: none)");
            o.timeout = *t;
        } else if (opt == "--status-interval") {
            o.status_interval = cli::parse_seconds(opt, v);
        } else if (opt == "--linger") {
            o.linger = cli::parse_seconds(opt, v);
        } else {
            cli::bad_argument(opt, "unknown option with --interactive (try 'pomelo-client --interactive --help')");
        }
    }
    const bool mint = o.server || !o.key_file.empty() || o.protocol_id;
    if (!o.token_file.empty() && mint)
        cli::bad_argument("--token", "the token names its servers: give --token, or --server/--key/--protocol-id to mint one");
    if (o.token_file.empty() && !mint) cli::bad_argument("--token", "missing (or --server, --key and --protocol-id to mint one)");
    if (mint) {
        if (!o.server) cli::bad_argument("--server", "missing");
        if (o.key_file.empty()) cli::bad_argument("--key", "missing");
        if (!o.protocol_id) cli::bad_argument("--protocol-id", "missing");
    }
    return o;
}

std::array<uint8_t, wire::kConnectTokenSize> make_token(const Options& o) {
    std::array<uint8_t, wire::kConnectTokenSize> token{};
    if (!o.token_file.empty()) {
        cli::load_token_file(o.token_file, token);
        return token;
    }
    const crypto::Key key = cli::load_key_file("--key", o.key_file);
    wire::TokenSpec spec;
    spec.protocol_id = *o.protocol_id;
    spec.create_ms = static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                               std::chrono::system_clock::now().time_since_epoch())
                                               .count());
    spec.expire_ms = spec.create_ms + 300'000;
    crypto::random_bytes(spec.nonce.data(), spec.nonce.size());
    spec.private_part.client_id = o.client_id;
    spec.private_part.timeout_seconds = o.timeout;
    spec.private_part.addresses.push(*o.server);
    spec.private_part.client_to_server_key = crypto::Key::random();
    spec.private_part.server_to_client_key = crypto::Key::random();
    if (wire::mint_connect_token(spec, key, token) != wire::WireError::ok) cli::failure("cannot mint a connect token");
    return token;
}

std::string printable(std::span<const uint8_t> p) {
    std::string out;
    for (uint8_t c : p) {
        if (c >= 0x20 && c < 0x7f && c != '\\') {
            out += static_cast<char>(c);
        } else {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\x%02x", c);
            out += buf;
        }
    }
    return out;
}

void print_status(const UdpClient& c) {
    std::string line = std::string("status: ") + to_string(c.state());
    const ClientState s = c.state();
    if (s == ClientState::disconnected) {
        line += std::string(" (") + to_string(c.outcome()) + ")";
    } else {
        line += " " + c.server_address();
    }
    if (s == ClientState::connected) {
        char buf[160];
        const uint64_t rtt = c.rtt_ns();
        if (rtt) std::snprintf(buf, sizeof buf, ", client id %" PRId64 ", rtt %.3f ms", c.client_id(), rtt / 1e6);
        else std::snprintf(buf, sizeof buf, ", client id %" PRId64 ", rtt -", c.client_id());
        line += buf;
        std::snprintf(buf, sizeof buf, ", clock offset %+.6f s, drift %+.1f ppm", c.clock_offset_ns() / 1e9,
                      c.clock_drift_ppm());
        line += buf;
    }
    std::printf("%s\n", line.c_str());
    std::fflush(stdout);
}

}  // namespace

int run_interactive(const std::vector<std::string>& args) {
    for (const auto& a : args)
        if (a == "-h" || a == "--help") {
            std::fputs(kHelp, stdout);
            return std::fflush(stdout) == 0 ? 0 : 1;
        }
    const Options o = parse(args);
    if (!crypto::init()) cli::failure("cannot initialise libsodium (no entropy source?)");
    std::array<uint8_t, wire::kConnectTokenSize> token = make_token(o);

    struct sigaction sa{};
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    ::sigaction(SIGINT, &sa, nullptr);
    ::sigaction(SIGTERM, &sa, nullptr);

    UdpClient client;
    const ClientResult started = client.connect(token);
    crypto::secure_wipe(token.data(), token.size());
    if (started == ClientResult::token_unusable)
        cli::failure(std::string("the connect token is unusable: ") + to_string(client.outcome()));
    if (started != ClientResult::ok) cli::failure(std::string("cannot connect: ") + to_string(started));
    if (client.start_thread() != ClientResult::ok) cli::failure("cannot start the client's thread");

    std::deque<std::string> lines;  // read, not sent yet
    std::string partial;
    bool input_done = false, disconnect_asked = false;
    uint64_t last_send_ns = UdpClient::now_ns(), last_status_ns = 0;
    const auto interval_ns = static_cast<uint64_t>(o.status_interval * 1e9);
    const auto linger_ns = static_cast<uint64_t>(o.linger * 1e9);
    ClientState shown = ClientState::disconnected;
    bool shown_any = false;
    uint64_t line_number = 0;
    std::array<uint8_t, kMaxPayloadBytes> buf;

    for (;;) {
        const uint64_t now = UdpClient::now_ns();
        const ClientState state = client.state();
        if (!shown_any || state != shown || (state == ClientState::connected && interval_ns && now - last_status_ns >= interval_ns)) {
            print_status(client);
            shown = state;
            shown_any = true;
            last_status_ns = now;
        }
        size_t n = 0;
        while (client.receive(buf, n) == ClientResult::ok && n) {
            std::printf("< %s\n", printable(std::span(buf.data(), n)).c_str());
            std::fflush(stdout);
        }
        if (state == ClientState::disconnected) break;

        const int signals = g_signals.load(std::memory_order_relaxed);
        if (signals > 1) break;
        if (signals == 1 && !disconnect_asked) {
            client.disconnect();
            disconnect_asked = true;
        }
        if (state == ClientState::connected && !disconnect_asked) {
            while (!lines.empty()) {
                const std::string& l = lines.front();
                if (client.send(std::span(reinterpret_cast<const uint8_t*>(l.data()), l.size())) != ClientResult::ok)
                    std::fprintf(stderr, "pomelo-client: a line could not be sent\n");
                lines.pop_front();
                last_send_ns = now;
            }
            if (input_done && now - last_send_ns >= linger_ns) {
                client.disconnect();
                disconnect_asked = true;
            }
        }

        // Wait for input (or 10 ms: replies and state changes are polled).
        pollfd p{STDIN_FILENO, POLLIN, 0};
        const int ready = input_done ? (::usleep(10'000), 0) : ::poll(&p, 1, 10);
        if (ready > 0) {
            char chunk[4096];
            const ssize_t got = ::read(STDIN_FILENO, chunk, sizeof chunk);
            if (got < 0 && errno != EINTR && errno != EAGAIN) cli::failure(std::string("stdin: ") + std::strerror(errno));
            const auto take_line = [&] {
                ++line_number;
                if (!partial.empty() && partial.back() == '\r') partial.pop_back();
                if (partial.size() > kMaxPayloadBytes)
                    std::fprintf(stderr, "pomelo-client: line %" PRIu64 ": %zu bytes, a payload is at most %zu: not sent\n",
                                 line_number, partial.size(), kMaxPayloadBytes);
                else if (!partial.empty())
                    lines.push_back(partial);
                partial.clear();
            };
            for (ssize_t i = 0; i < got; ++i) {
                if (chunk[i] == '\n') take_line();
                else partial += chunk[i];
            }
            if (got == 0) {
                input_done = true;
                if (!partial.empty()) take_line();
            }
        }
    }
    client.stop_thread();
    const ClientOutcome outcome = client.outcome();
    return outcome == ClientOutcome::disconnected ? 0 : 1;
}

}  // namespace pomelo::tools
