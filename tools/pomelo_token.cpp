// pomelo-token: the web backend's connect token tool (spec §5).
//
//   pomelo-token keygen  [-o FILE [--force]]
//   pomelo-token mint    --key FILE --protocol-id ID --client-id ID --server ADDR... [options]
//   pomelo-token inspect [--key FILE] [--json] [--now-ms MS] [FILE|-]
//
// Exit status: 0 success; 1 runtime failure (I/O, a token that does not open with the key or
// whose copies disagree); 2 bad arguments or malformed input. Every error is one stderr line.
//
// Secrets: the server private key and the per-token client keys never go through stdio
// buffers or growing strings; every raw buffer that held them is wiped before it is released.
#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <exception>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "protocol/crypto/aead.hpp"
#include "protocol/crypto/key.hpp"
#include "protocol/crypto/suite.hpp"
#include "protocol/wire/address.hpp"
#include "protocol/wire/connect_token.hpp"
#include "protocol/wire/constants.hpp"
#include "protocol/wire/error.hpp"
#include "tools/common/cli.hpp"

#ifndef POMELO_VERSION
#define POMELO_VERSION "unknown"
#endif

namespace {

using namespace pomelo;

constexpr const char* kProg = "pomelo-token";
constexpr int kExitOk = 0;
constexpr int kExitFailure = 1;  // runtime: I/O, verification
constexpr int kExitUsage = 2;    // bad arguments or malformed input

constexpr size_t kKeyHexSize = 2 * wire::kKeySize;                    // 64
constexpr size_t kTokenHexSize = 2 * wire::kConnectTokenSize;         // 4096
constexpr size_t kNonceHexSize = 2 * wire::kConnectTokenNonceSize;    // 48

// Ends the program: one line on stderr and an exit status. Thrown by the commands, caught in
// main only (together with anything else, so that no exception escapes main).
using Failure = cli::Error;  // status and one-line message, printed by cli::run_main

[[noreturn]] void usage_error(std::string message) { throw Failure{kExitUsage, std::move(message)}; }
[[noreturn]] void runtime_error(std::string message) { throw Failure{kExitFailure, std::move(message)}; }

// Wipes a raw buffer when it goes out of scope, also when a Failure unwinds through.
class Wiper {
public:
    Wiper(void* p, size_t n) : p_(p), n_(n) {}
    ~Wiper() { crypto::secure_wipe(p_, n_); }
    Wiper(const Wiper&) = delete;
    Wiper& operator=(const Wiper&) = delete;

private:
    void* p_;
    size_t n_;
};

// ---------------------------------------------------------------------------------------------
// Text helpers

using cli::quote;

std::string errno_text(int e) { return std::strerror(e); }

constexpr char kHexDigits[] = "0123456789abcdef";

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }

std::string_view trim(std::string_view s) {
    while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
    while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
    return s;
}

// Writes 2*n hex digits to out (no terminator).
void hex_encode(std::span<const uint8_t> in, char* out) {
    for (size_t i = 0; i < in.size(); ++i) {
        out[2 * i] = kHexDigits[in[i] >> 4];
        out[2 * i + 1] = kHexDigits[in[i] & 15];
    }
}

std::string to_hex(std::span<const uint8_t> in) {
    std::string s(2 * in.size(), '0');
    hex_encode(in, s.data());
    return s;
}

// Decodes exactly 2*out.size() hex digits. False (out partly written) on any other input.
bool hex_decode(std::string_view hex, std::span<uint8_t> out) {
    if (hex.size() != 2 * out.size()) return false;
    for (size_t i = 0; i < out.size(); ++i) {
        const int hi = hex_value(hex[2 * i]), lo = hex_value(hex[2 * i + 1]);
        if (hi < 0 || lo < 0) return false;
        out[i] = static_cast<uint8_t>(hi << 4 | lo);
    }
    return true;
}

bool all_hex(std::string_view s) {
    return std::all_of(s.begin(), s.end(), [](char c) { return hex_value(c) >= 0; });
}

using cli::parse_signed;
using cli::parse_u64;

// Signed 64-bit: decimal, or 0x-hex up to 0x7fffffffffffffff.
std::optional<int64_t> parse_i64(std::string_view s) {
    if (s.size() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
        auto v = parse_u64(s);
        if (!v || *v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return std::nullopt;
        return static_cast<int64_t>(*v);
    }
    return parse_signed<int64_t>(s);
}

std::string hex_u64(uint64_t v) {
    char buf[24];
    std::snprintf(buf, sizeof buf, "0x%016" PRIx64, v);
    return buf;
}

// Unix milliseconds as ISO-8601 UTC with milliseconds: 2023-11-14T22:13:20.000Z.
std::string iso_utc(uint64_t ms) {
    const auto seconds = static_cast<time_t>(ms / 1000);
    std::tm tm{};
    if (gmtime_r(&seconds, &tm) == nullptr) return "out-of-range";
    char buf[64];
    const size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
    if (n == 0) return "out-of-range";
    std::snprintf(buf + n, sizeof buf - n, ".%03uZ", static_cast<unsigned>(ms % 1000));
    return buf;
}

// "4m 59s", "2h 0m", "3d 1h": the two largest units.
std::string human_duration(uint64_t ms) {
    const uint64_t s = ms / 1000;
    const uint64_t d = s / 86400, h = s / 3600 % 24, m = s / 60 % 60, sec = s % 60;
    const auto str = [](uint64_t v) { return std::to_string(v); };
    if (d) return str(d) + "d " + str(h) + "h";
    if (h) return str(h) + "h " + str(m) + "m";
    if (m) return str(m) + "m " + str(sec) + "s";
    return str(sec) + "s";
}

uint64_t wall_clock_ms() {
    using namespace std::chrono;
    return static_cast<uint64_t>(duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count());
}

std::string fingerprint(const crypto::Key& key) { return cli::key_fingerprint(key); }

std::string version_text(crypto::Suite suite) {
    const auto& v = crypto::version_info(suite);
    return std::string(reinterpret_cast<const char*>(v.data()), strnlen(reinterpret_cast<const char*>(v.data()), v.size()));
}

// ---------------------------------------------------------------------------------------------
// Command line parsing: --name VALUE, --name=VALUE, short aliases (-o FILE), flags, "--".

struct OptionSpec {
    std::string_view name;   // "--key"
    std::string_view alias;  // "-o", or empty
    bool takes_value;
    bool repeatable;
};

struct Args {
    std::vector<std::pair<std::string_view, std::string>> given;  // canonical name, value
    std::vector<std::string> positional;

    bool has(std::string_view name) const {
        return std::any_of(given.begin(), given.end(), [&](const auto& g) { return g.first == name; });
    }
    const std::string* get(std::string_view name) const {
        for (const auto& g : given)
            if (g.first == name) return &g.second;
        return nullptr;
    }
    std::vector<std::string> all(std::string_view name) const {
        std::vector<std::string> out;
        for (const auto& g : given)
            if (g.first == name) out.push_back(g.second);
        return out;
    }
};

bool wants_help(std::span<char* const> argv) {
    for (const char* a : argv) {
        const std::string_view s = a;
        if (s == "--") return false;
        if (s == "-h" || s == "--help") return true;
    }
    return false;
}

Args parse_args(std::string_view command, std::span<char* const> argv, std::span<const OptionSpec> specs) {
    Args args;
    bool options_done = false;
    for (size_t i = 0; i < argv.size(); ++i) {
        const std::string_view arg = argv[i];
        if (options_done || arg.size() < 2 || arg[0] != '-') {  // "-" is a positional (stdin)
            args.positional.emplace_back(arg);
            continue;
        }
        if (arg == "--") {
            options_done = true;
            continue;
        }
        std::string_view name = arg;
        std::optional<std::string_view> inline_value;
        if (arg.starts_with("--")) {
            if (const auto eq = arg.find('='); eq != std::string_view::npos) {
                name = arg.substr(0, eq);
                inline_value = arg.substr(eq + 1);
            }
        }
        const OptionSpec* spec = nullptr;
        for (const OptionSpec& s : specs)
            if (s.name == name || (!s.alias.empty() && s.alias == name)) spec = &s;
        if (spec == nullptr)
            usage_error(std::string(command) + ": unknown option " + quote(name) + " (see '" + kProg + " " +
                        std::string(command) + " --help')");
        const std::string shown(name);
        std::string value;
        if (!spec->takes_value) {
            if (inline_value) usage_error(shown + ": takes no value");
        } else if (inline_value) {
            value = *inline_value;
        } else {
            // A following "--option" is a forgotten value, not a value; "-1" and "-" are values.
            if (i + 1 >= argv.size() || std::string_view(argv[i + 1]).starts_with("--"))
                usage_error(shown + ": missing value");
            value = argv[++i];
        }
        if (!spec->repeatable && args.has(spec->name)) usage_error(shown + ": given more than once");
        args.given.emplace_back(spec->name, std::move(value));
    }
    return args;
}

void no_positionals(std::string_view command, const Args& args) {
    if (!args.positional.empty())
        usage_error(std::string(command) + ": unexpected argument " + quote(args.positional.front()) + " (see '" +
                    kProg + " " + std::string(command) + " --help')");
}

// ---------------------------------------------------------------------------------------------
// Files

bool write_all(int fd, const void* data, size_t n) {
    const auto* p = static_cast<const uint8_t*>(data);
    while (n > 0) {
        const ssize_t w = ::write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            return false;
        }
        p += w;
        n -= static_cast<size_t>(w);
    }
    return true;
}


// Writes data to path (mode 0600, tightened if the file already existed) or to stdout when
// path is null or "-". With exclusive, an existing file is an error; with durable, the data
// is on disk before we report success (keys: losing one invalidates every token).
void write_output(const std::string* path, std::span<const uint8_t> data, bool exclusive, bool durable) {
    if (path == nullptr || *path == "-") {
        if (!write_all(STDOUT_FILENO, data.data(), data.size()))
            runtime_error("cannot write to stdout: " + errno_text(errno));
        return;
    }
    const int flags = O_WRONLY | O_CREAT | O_CLOEXEC | (exclusive ? O_EXCL : O_TRUNC);
    const int fd = ::open(path->c_str(), flags, 0600);
    if (fd < 0) {
        const int e = errno;
        if (e == EEXIST && exclusive)
            runtime_error("-o: " + quote(*path) + " already exists (use --force to replace it)");
        runtime_error("-o: cannot create " + quote(*path) + ": " + errno_text(e));
    }
    struct stat st{};
    const bool regular = ::fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
    if (regular && (st.st_mode & 0077) != 0 && ::fchmod(fd, 0600) != 0) {
        const int e = errno;
        ::close(fd);
        runtime_error("-o: cannot make " + quote(*path) + " private (mode 0600): " + errno_text(e));
    }
    int e = 0;
    if (!write_all(fd, data.data(), data.size()) || (durable && regular && ::fsync(fd) != 0)) e = errno;
    if (::close(fd) != 0 && e == 0) e = errno;
    if (e != 0) runtime_error("-o: cannot write " + quote(*path) + ": " + errno_text(e));
}

// The server private key: 64 hex digits, surrounding whitespace allowed (keygen's newline).
crypto::Key load_key(const std::string& path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) runtime_error("--key: cannot read " + quote(path) + ": " + errno_text(errno));
    std::array<uint8_t, 256> buf{};
    Wiper wipe_buf(buf.data(), buf.size());
    const ssize_t n = cli::read_up_to(fd, buf.data(), buf.size());
    const int e = errno;
    ::close(fd);
    if (n < 0) runtime_error("--key: cannot read " + quote(path) + ": " + errno_text(e));
    const std::string_view text =
        trim(std::string_view(reinterpret_cast<const char*>(buf.data()), static_cast<size_t>(n)));
    crypto::Key key;
    if (static_cast<size_t>(n) == buf.size() || !hex_decode(text, key.bytes))
        usage_error("--key: " + quote(path) + " is not a server key (want " + std::to_string(kKeyHexSize) +
                    " hex digits, as written by '" + kProg + " keygen')");
    return key;
}

// ---------------------------------------------------------------------------------------------
// Help

constexpr const char* kMainHelp = R"(usage: pomelo-token <command> [options]

Mint and inspect connect tokens of the Pomelo 1.03 secure-UDP protocol (spec section 5).

commands:
  keygen    generate a server private key
  mint      mint a 2048-byte connect token for one client
  inspect   show what a connect token contains (the private part too, given the key)

options:
  -h, --help     show this help; 'pomelo-token <command> --help' for a command
      --version  show the version

Typical use:
  pomelo-token keygen -o server.key
  pomelo-token mint --key server.key --protocol-id 0x1122334455667788 \
      --client-id 42 --server 203.0.113.7:40000 -o token.hex
  pomelo-token inspect --key server.key token.hex

exit status: 0 success, 1 runtime failure (I/O; a token that does not open or whose copies
disagree), 2 bad arguments or malformed input. Errors are one line on stderr.
)";

constexpr const char* kKeygenHelp = R"(usage: pomelo-token keygen [-o FILE [--force]]

Generate a 32-byte server private key from the system CSPRNG and write it as 64 hex
digits and a newline. The backend mints tokens with it and the game servers open them
with it: keep it secret.

options:
  -o, --output FILE  write the key to FILE, created with mode 0600 (default: stdout)
      --force        replace FILE if it exists (default: refuse, an overwritten key
                     invalidates every token minted with it)
  -h, --help         show this help
)";

constexpr const char* kMintHelp = R"(usage: pomelo-token mint --key FILE --protocol-id ID --client-id ID
                         --server ADDR [--server ADDR ...] [options]

Mint a 2048-byte connect token (spec section 5) for one client. Every token gets fresh
random client-to-server and server-to-client keys and a fresh random nonce.

required:
      --key FILE           server private key (64 hex digits, see 'pomelo-token keygen')
      --protocol-id ID     64-bit application id, decimal or 0x-hex
      --client-id ID       64-bit signed client id, decimal (or 0x-hex)
      --server ADDR        game server, a.b.c.d:port or [v6]:port; repeat for up to 32
                           servers, in the order the client tries them

options:
      --timeout SECONDS    connection timeout; negative = no timeout (default 10; 0 is refused)
      --expire-in SECONDS  token lifetime from now (default 300)
      --user-data HEX      up to 256 bytes for the game server, zero padded (default: none)
      --suite NAME         chacha: "POMELO 1.03", the reference suite (default)
                           aesgcm: "POMELO 1.3G", pomelo-engine's AES-256-GCM extension
      --format FORMAT      hex: 4096 hex digits and a newline (default); bin: 2048 raw bytes
  -o, --output FILE        write the token to FILE, mode 0600 (default: stdout)
      --now-ms MS          creation time, Unix milliseconds (default: the wall clock)
      --nonce HEX          the 24-byte nonce as 48 hex digits. TESTS ONLY: a repeated nonce
                           breaks the token encryption (default: random)
  -h, --help               show this help

The token carries the client's session keys: give it to that client only, over TLS.
)";

constexpr const char* kInspectHelp = R"(usage: pomelo-token inspect [--key FILE] [--json] [--now-ms MS] [FILE|-]

Show the public fields of a connect token read from FILE or stdin, raw or hex (detected
automatically). Keys are never printed, only fingerprints: the first 4 bytes of
BLAKE2b-256(key). With --key, also open the private part, show the client id and user
data, and check that the public and private copies of timeout, servers and keys agree.

options:
      --key FILE   server private key: open and check the private part
      --json       print one JSON object instead of text
      --now-ms MS  judge expiry at this Unix time in milliseconds (default: the wall clock)
  -h, --help       show this help

exit status: 0 the token is well formed (and, with --key, opens and its copies agree),
1 it does not open or its copies disagree, or a file cannot be read, 2 malformed token
or bad arguments. An expired token is reported, not an error.
)";

int print_help(const char* text) {
    std::fputs(text, stdout);
    return std::fflush(stdout) == 0 ? kExitOk : kExitFailure;
}

// ---------------------------------------------------------------------------------------------
// keygen

int cmd_keygen(std::span<char* const> argv) {
    static constexpr OptionSpec kSpecs[] = {
        {"--output", "-o", true, false},
        {"--force", "", false, false},
    };
    if (wants_help(argv)) return print_help(kKeygenHelp);
    const Args args = parse_args("keygen", argv, kSpecs);
    no_positionals("keygen", args);
    if (args.has("--force") && !args.has("--output")) usage_error("--force: only meaningful with -o FILE");

    const crypto::Key key = crypto::Key::random();
    std::array<uint8_t, kKeyHexSize + 1> line{};
    Wiper wipe_line(line.data(), line.size());
    hex_encode(key.bytes, reinterpret_cast<char*>(line.data()));
    line[kKeyHexSize] = '\n';
    write_output(args.get("--output"), line, !args.has("--force"), true);
    return kExitOk;
}

// ---------------------------------------------------------------------------------------------
// mint

const std::string& required(const Args& args, std::string_view name, std::string_view what) {
    const std::string* v = args.get(name);
    if (v == nullptr) usage_error(std::string(name) + ": required (" + std::string(what) + ")");
    return *v;
}

wire::Address parse_server(const std::string& text) {
    const auto a = wire::Address::parse(text);
    if (!a) usage_error("--server: " + quote(text) + " is not an address (want a.b.c.d:port or [v6]:port)");
    if (a->port == 0) usage_error("--server: " + quote(text) + " has port 0, which no server listens on");
    const size_t ip_size = a->type == wire::AddressType::ipv4 ? 4 : 16;
    if (std::all_of(a->ip.begin(), a->ip.begin() + static_cast<ptrdiff_t>(ip_size), [](uint8_t b) { return b == 0; }))
        usage_error("--server: " + quote(text) + " is the unspecified address, which a client cannot reach");
    return *a;
}

int cmd_mint(std::span<char* const> argv) {
    static constexpr OptionSpec kSpecs[] = {
        {"--key", "", true, false},        {"--protocol-id", "", true, false}, {"--client-id", "", true, false},
        {"--server", "", true, true},      {"--timeout", "", true, false},     {"--expire-in", "", true, false},
        {"--user-data", "", true, false},  {"--suite", "", true, false},       {"--now-ms", "", true, false},
        {"--nonce", "", true, false},      {"--output", "-o", true, false},    {"--format", "", true, false},
    };
    if (wants_help(argv)) return print_help(kMintHelp);
    const Args args = parse_args("mint", argv, kSpecs);
    no_positionals("mint", args);

    const std::string& key_path = required(args, "--key", "the server private key file, see 'pomelo-token keygen'");
    const std::string& protocol_text = required(args, "--protocol-id", "the application's 64-bit protocol id");
    const std::string& client_text = required(args, "--client-id", "the client's 64-bit id");
    const std::vector<std::string> servers = args.all("--server");
    if (servers.empty()) usage_error("--server: required (at least one game server address)");

    wire::TokenSpec spec;
    wire::PrivateConnectToken& priv = spec.private_part;

    if (const std::string* s = args.get("--suite")) {
        const auto suite = crypto::suite_from_name(*s);
        if (!suite) usage_error("--suite: " + quote(*s) + " is not a suite (want chacha or aesgcm)");
        spec.suite = *suite;
    }

    const auto protocol_id = parse_u64(protocol_text);
    if (!protocol_id)
        usage_error("--protocol-id: " + quote(protocol_text) + " is not a number (want decimal or 0x-hex, 64 bits)");
    spec.protocol_id = *protocol_id;

    const auto client_id = parse_i64(client_text);
    if (!client_id)
        usage_error("--client-id: " + quote(client_text) + " is not a number (want a signed 64-bit decimal)");
    priv.client_id = *client_id;

    priv.timeout_seconds = 10;
    if (const std::string* s = args.get("--timeout")) {
        const auto t = parse_signed<int32_t>(*s);
        if (!t) usage_error("--timeout: " + quote(*s) + " is not a number of seconds (want a 32-bit integer)");
        if (*t == 0)
            usage_error("--timeout: 0 is not allowed (spec 5.4: the connection would time out at once; "
                        "use a negative value for no timeout)");
        priv.timeout_seconds = *t;
    }

    uint64_t expire_in = 300;
    if (const std::string* s = args.get("--expire-in")) {
        const auto v = parse_signed<int64_t>(*s);
        if (!v) usage_error("--expire-in: " + quote(*s) + " is not a number of seconds");
        if (*v <= 0) usage_error("--expire-in: " + quote(*s) + " must be at least 1 second");
        expire_in = static_cast<uint64_t>(*v);
    }

    uint64_t now_ms = 0;
    if (const std::string* s = args.get("--now-ms")) {
        const auto v = parse_u64(*s);
        if (!v) usage_error("--now-ms: " + quote(*s) + " is not a Unix time in milliseconds");
        now_ms = *v;
    } else {
        now_ms = wall_clock_ms();
    }
    constexpr uint64_t kMax = std::numeric_limits<uint64_t>::max();
    if (expire_in > kMax / 1000 || now_ms > kMax - expire_in * 1000)
        usage_error("--expire-in: " + std::to_string(expire_in) +
                    " seconds from now overflows the 64-bit millisecond timestamp");
    spec.create_ms = now_ms;
    spec.expire_ms = now_ms + expire_in * 1000;

    if (servers.size() > wire::kMaxServerAddresses)
        usage_error("--server: " + std::to_string(servers.size()) + " servers given, a token holds at most " +
                    std::to_string(wire::kMaxServerAddresses));
    for (const std::string& text : servers) {
        const wire::Address a = parse_server(text);
        if (priv.addresses.contains(a)) usage_error("--server: " + quote(text) + " given twice");
        priv.addresses.push(a);
    }

    if (const std::string* s = args.get("--user-data")) {
        if (!all_hex(*s)) usage_error("--user-data: " + quote(*s) + " is not hex");
        if (s->size() % 2 != 0) usage_error("--user-data: odd number of hex digits (" + std::to_string(s->size()) + ")");
        if (s->size() / 2 > wire::kUserDataSize)
            usage_error("--user-data: " + std::to_string(s->size() / 2) + " bytes, at most " +
                        std::to_string(wire::kUserDataSize) + " fit");
        hex_decode(*s, std::span(priv.user_data).first(s->size() / 2));  // rest stays zero
    }

    if (const std::string* s = args.get("--nonce")) {
        if (s->size() != kNonceHexSize || !hex_decode(*s, spec.nonce))
            usage_error("--nonce: " + quote(*s) + " is not " + std::to_string(kNonceHexSize) + " hex digits (24 bytes)");
    } else {
        crypto::random_bytes(spec.nonce.data(), spec.nonce.size());
    }

    bool binary = false;
    if (const std::string* s = args.get("--format")) {
        if (*s == "bin") binary = true;
        else if (*s != "hex") usage_error("--format: " + quote(*s) + " is not a format (want hex or bin)");
    }
    const std::string* output = args.get("--output");
    if (binary && (output == nullptr || *output == "-") && ::isatty(STDOUT_FILENO))
        usage_error("--format bin: refusing to write a binary token to a terminal (use -o FILE or a redirect)");

    const crypto::Key private_key = load_key(key_path);
    priv.client_to_server_key = crypto::Key::random();
    priv.server_to_client_key = crypto::Key::random();

    std::array<uint8_t, wire::kConnectTokenSize> token{};
    Wiper wipe_token(token.data(), token.size());
    if (const wire::WireError e = wire::mint_connect_token(spec, private_key, token); e != wire::WireError::ok)
        runtime_error(std::string("mint: ") + wire::to_string(e));

    if (binary) {
        write_output(output, token, false, false);
    } else {
        std::array<uint8_t, kTokenHexSize + 1> text{};
        Wiper wipe_text(text.data(), text.size());
        hex_encode(token, reinterpret_cast<char*>(text.data()));
        text[kTokenHexSize] = '\n';
        write_output(output, text, false, false);
    }
    return kExitOk;
}

// ---------------------------------------------------------------------------------------------
// inspect

std::string trimmed_user_data_hex(const wire::UserData& u) {
    size_t n = u.size();
    while (n > 0 && u[n - 1] == 0) --n;
    return to_hex(std::span(u).first(n));
}

std::vector<std::string> mismatches(const wire::ConnectToken& pub, const wire::PrivateConnectToken& priv) {
    std::vector<std::string> out;
    if (pub.timeout_seconds != priv.timeout_seconds) out.emplace_back("timeout");
    const auto a = pub.addresses.view(), b = priv.addresses.view();
    if (!std::equal(a.begin(), a.end(), b.begin(), b.end())) out.emplace_back("servers");
    if (!(pub.client_to_server_key == priv.client_to_server_key)) out.emplace_back("client_to_server_key");
    if (!(pub.server_to_client_key == priv.server_to_client_key)) out.emplace_back("server_to_client_key");
    return out;
}

std::string join(const std::vector<std::string>& v, std::string_view sep) {
    std::string s;
    for (size_t i = 0; i < v.size(); ++i) (s += i ? std::string(sep) : std::string()) += v[i];
    return s;
}

void line(const char* label, const std::string& value) { std::printf("%-13s%s\n", label, value.c_str()); }

int cmd_inspect(std::span<char* const> argv) {
    static constexpr OptionSpec kSpecs[] = {
        {"--key", "", true, false},
        {"--json", "", false, false},
        {"--now-ms", "", true, false},
    };
    if (wants_help(argv)) return print_help(kInspectHelp);
    const Args args = parse_args("inspect", argv, kSpecs);
    if (args.positional.size() > 1)
        usage_error("inspect: unexpected argument " + quote(args.positional[1]) + " (one token at a time)");
    const std::string source = args.positional.empty() ? "-" : args.positional.front();
    if (args.positional.empty() && ::isatty(STDIN_FILENO))
        usage_error("inspect: no token given (pass FILE, or pipe a token on stdin)");
    const bool json_out = args.has("--json");

    uint64_t now_ms = 0;
    if (const std::string* s = args.get("--now-ms")) {
        const auto v = parse_u64(*s);
        if (!v) usage_error("--now-ms: " + quote(*s) + " is not a Unix time in milliseconds");
        now_ms = *v;
    } else {
        now_ms = wall_clock_ms();
    }

    std::optional<crypto::Key> private_key;
    const std::string* key_path = args.get("--key");
    if (key_path != nullptr) private_key = load_key(*key_path);

    std::array<uint8_t, wire::kConnectTokenSize> raw{};
    Wiper wipe_raw(raw.data(), raw.size());
    const std::string name = cli::load_token_file(source, raw);

    wire::ConnectToken t;
    if (const wire::WireError e = wire::decode_connect_token(raw, t); e != wire::WireError::ok)
        usage_error(name + " is not a valid connect token: " + wire::to_string(e));

    const bool expired = t.expire_ms <= now_ms;  // the server's rule (spec 5.5)
    std::vector<std::string> servers;
    for (const wire::Address& a : t.addresses.view()) servers.push_back(a.to_string());

    // The private part, if we have the key.
    wire::PrivateConnectToken priv;
    wire::WireError open_error = wire::WireError::ok;
    std::vector<std::string> differ;
    std::string failure;  // the stderr line when the private part does not check out
    if (private_key) {
        open_error = wire::open_private_token(t.suite, t.protocol_id, t.expire_ms, t.nonce, *private_key,
                                              t.encrypted_private, priv);
        if (open_error == wire::WireError::auth_failed)
            failure = "--key: the private part does not open with " + quote(*key_path) + " (key fingerprint " +
                      fingerprint(*private_key) + "): wrong key, or protocol id, expiry or nonce altered";
        else if (open_error != wire::WireError::ok)
            failure = std::string("the private part opens but is malformed: ") + wire::to_string(open_error);
        else if (differ = mismatches(t, priv); !differ.empty())
            failure = "public and private copies disagree (" + join(differ, ", ") +
                      "); servers trust the private copy";
    }
    const bool opened = private_key && open_error == wire::WireError::ok;

    if (json_out) {
        nlohmann::ordered_json j;
        j["version"] = version_text(t.suite);
        j["suite"] = crypto::to_string(t.suite);
        j["protocol_id"] = hex_u64(t.protocol_id);
        j["create_ms"] = t.create_ms;
        j["create_utc"] = iso_utc(t.create_ms);
        j["expire_ms"] = t.expire_ms;
        j["expire_utc"] = iso_utc(t.expire_ms);
        j["now_ms"] = now_ms;
        j["expired"] = expired;
        j["timeout_seconds"] = t.timeout_seconds;
        j["nonce"] = to_hex(t.nonce);
        j["servers"] = servers;
        j["client_to_server_key_fingerprint"] = fingerprint(t.client_to_server_key);
        j["server_to_client_key_fingerprint"] = fingerprint(t.server_to_client_key);
        if (private_key) {
            nlohmann::ordered_json p;
            p["key_fingerprint"] = fingerprint(*private_key);
            p["opened"] = opened;
            if (opened) {
                p["client_id"] = priv.client_id;
                p["user_data"] = trimmed_user_data_hex(priv.user_data);
                p["copies_agree"] = differ.empty();
                p["mismatches"] = differ;
            } else {
                p["error"] = wire::name_of(open_error);
            }
            j["private"] = std::move(p);
        }
        std::printf("%s\n", j.dump(2).c_str());
    } else {
        line("version", version_text(t.suite) + " (suite " + crypto::to_string(t.suite) + ")");
        line("protocol id", hex_u64(t.protocol_id));
        line("created", std::to_string(t.create_ms) + "  " + iso_utc(t.create_ms));
        line("expires", std::to_string(t.expire_ms) + "  " + iso_utc(t.expire_ms) + "  " +
                            (expired ? "EXPIRED " + human_duration(now_ms - t.expire_ms) + " ago"
                                     : "valid for " + human_duration(t.expire_ms - now_ms)));
        line("timeout", t.timeout_seconds < 0 ? std::to_string(t.timeout_seconds) + " (no timeout)"
                                              : std::to_string(t.timeout_seconds) + " s");
        line("nonce", to_hex(t.nonce));
        line("servers", std::to_string(servers.size()));
        for (const std::string& s : servers) line("", s);
        line("c2s key", "fingerprint " + fingerprint(t.client_to_server_key));
        line("s2c key", "fingerprint " + fingerprint(t.server_to_client_key));
        if (private_key) {
            const std::string fp = "key fingerprint " + fingerprint(*private_key);
            if (opened) {
                line("private", "opened (" + fp + ")");
                line("client id", std::to_string(priv.client_id));
                const std::string ud = trimmed_user_data_hex(priv.user_data);
                line("user data", ud.empty() ? "(all zero)" : ud);
                line("copies", differ.empty() ? "public and private copies agree"
                                              : "DISAGREE: " + join(differ, ", "));
            } else {
                const char* what = open_error == wire::WireError::auth_failed ? "DOES NOT OPEN: " : "MALFORMED: ";
                line("private", what + std::string(wire::to_string(open_error)) + " (" + fp + ")");
            }
        }
    }
    if (std::fflush(stdout) != 0 || std::ferror(stdout)) runtime_error("cannot write to stdout: " + errno_text(errno));
    if (!failure.empty()) runtime_error(failure);
    return kExitOk;
}

// ---------------------------------------------------------------------------------------------

int run(int argc, char** argv) {
    if (!crypto::init()) runtime_error("cannot initialise libsodium (no entropy source?)");
    const std::span<char* const> args(argv + 1, argc > 1 ? static_cast<size_t>(argc - 1) : 0);
    if (args.empty()) usage_error(std::string("no command given (try '") + kProg + " --help')");
    const std::string_view command = args.front();
    const auto rest = args.subspan(1);

    if (command == "keygen") return cmd_keygen(rest);
    if (command == "mint") return cmd_mint(rest);
    if (command == "inspect") return cmd_inspect(rest);
    if (command == "-h" || command == "--help" || command == "help") {
        if (command == "help" && !rest.empty()) {
            const std::string_view topic = rest.front();
            if (topic == "keygen") return print_help(kKeygenHelp);
            if (topic == "mint") return print_help(kMintHelp);
            if (topic == "inspect") return print_help(kInspectHelp);
            usage_error("help: unknown command " + quote(topic) + " (commands: keygen, mint, inspect)");
        }
        return print_help(kMainHelp);
    }
    if (command == "--version" || command == "version") {
        std::printf("%s %s (Pomelo 1.03 connect tokens; suites chacha, aesgcm)\n", kProg, POMELO_VERSION);
        return std::fflush(stdout) == 0 ? kExitOk : kExitFailure;
    }
    if (command.starts_with("-"))
        usage_error("unknown option " + quote(command) + " (try '" + kProg + " --help')");
    usage_error("unknown command " + quote(command) + " (try '" + kProg + " --help')");
}

}  // namespace

int main(int argc, char** argv) {
    return pomelo::cli::run_main(kProg, [&] { return run(argc, argv); });
}
