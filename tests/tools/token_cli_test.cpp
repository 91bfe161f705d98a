// pomelo-token, tested as a black box: every test runs the real binary in a subprocess (stdin,
// stdout and stderr redirected to files in a private temp dir) and checks what it writes
// against the protocol library, never against the tool itself.
#include <fcntl.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <array>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "protocol/crypto/key.hpp"
#include "protocol/crypto/suite.hpp"
#include "protocol/wire/address.hpp"
#include "protocol/wire/connect_token.hpp"
#include "protocol/wire/constants.hpp"

extern char** environ;

namespace pomelo::test {
namespace {

namespace fs = std::filesystem;
using Bytes = std::vector<uint8_t>;
using wire::kConnectTokenSize;

// ---------------------------------------------------------------------------------------------
// Helpers

std::string tool_path() {
    if (const char* e = std::getenv("POMELO_TOKEN_BIN"); e != nullptr && *e != '\0') return e;
#ifdef POMELO_TOKEN_DEFAULT_BIN
    return POMELO_TOKEN_DEFAULT_BIN;
#else
    return "pomelo-token";
#endif
}

std::string read_file(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_file(const fs::path& p, const std::string& data) {
    std::ofstream out(p, std::ios::binary | std::ios::trunc);
    out << data;
}

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

std::optional<Bytes> from_hex(const std::string& s) {
    if (s.size() % 2) return std::nullopt;
    Bytes out(s.size() / 2);
    for (size_t i = 0; i < out.size(); ++i) {
        const int hi = hex_value(s[2 * i]), lo = hex_value(s[2 * i + 1]);
        if (hi < 0 || lo < 0) return std::nullopt;
        out[i] = static_cast<uint8_t>(hi << 4 | lo);
    }
    return out;
}

std::string to_hex(const uint8_t* p, size_t n) {
    static constexpr char d[] = "0123456789abcdef";
    std::string s;
    for (size_t i = 0; i < n; ++i) (s += d[p[i] >> 4]) += d[p[i] & 15];
    return s;
}
template <typename C>
std::string to_hex(const C& c) {
    return to_hex(c.data(), c.size());
}

bool is_lower_hex(const std::string& s) {
    for (char c : s)
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
    return true;
}

bool contains(const std::string& haystack, const std::string& needle) {
    return haystack.find(needle) != std::string::npos;
}

struct Result {
    int status = -1;
    std::string out;
    std::string err;

    std::vector<std::string> err_lines() const {
        std::vector<std::string> lines;
        std::istringstream in(err);
        for (std::string l; std::getline(in, l);) lines.push_back(l);
        return lines;
    }
};

std::ostream& operator<<(std::ostream& os, const Result& r) {
    return os << "status " << r.status << ", stderr: " << r.err << ", stdout: " << r.out.substr(0, 400);
}

// One token as the library sees it, plus the bytes.
struct Decoded {
    Bytes bytes;
    wire::ConnectToken token;
    wire::PrivateConnectToken priv;
};

// ---------------------------------------------------------------------------------------------
// Fixture: a private temp dir with a server key made by `pomelo-token keygen`.

class TokenCli : public ::testing::Test {
protected:
    void SetUp() override {
        std::string tmpl = (fs::temp_directory_path() / "pomelo-token-test-XXXXXX").string();
        ASSERT_NE(::mkdtemp(tmpl.data()), nullptr) << std::strerror(errno);
        dir_ = tmpl;
        key_ = path("server.key");
        const Result r = run({"keygen", "-o", key_});
        ASSERT_EQ(r.status, 0) << r;
    }
    void TearDown() override {
        std::error_code ec;
        fs::remove_all(dir_, ec);
    }

    std::string path(const std::string& name) const { return (dir_ / name).string(); }

    Result run(const std::vector<std::string>& args, const std::string& stdin_path = "/dev/null") const {
        const std::string bin = tool_path();
        const std::string out_path = path(".stdout"), err_path = path(".stderr");
        std::vector<std::string> full{bin};
        full.insert(full.end(), args.begin(), args.end());
        std::vector<char*> argv;
        for (std::string& s : full) argv.push_back(s.data());
        argv.push_back(nullptr);

        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_addopen(&fa, 0, stdin_path.c_str(), O_RDONLY, 0);
        posix_spawn_file_actions_addopen(&fa, 1, out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
        posix_spawn_file_actions_addopen(&fa, 2, err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
        pid_t pid = 0;
        const int rc = posix_spawn(&pid, bin.c_str(), &fa, nullptr, argv.data(), environ);
        posix_spawn_file_actions_destroy(&fa);
        Result r;
        if (rc != 0) {
            ADD_FAILURE() << "cannot run " << bin << ": " << std::strerror(rc);
            return r;
        }
        int ws = 0;
        while (::waitpid(pid, &ws, 0) < 0 && errno == EINTR) {
        }
        r.status = WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
        r.out = read_file(out_path);
        r.err = read_file(err_path);
        return r;
    }

    crypto::Key server_key(const std::string& file = "") const {
        std::string text = read_file(file.empty() ? key_ : file);
        while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
        crypto::Key k;
        auto b = from_hex(text);
        EXPECT_TRUE(b && b->size() == k.bytes.size()) << "key file: " << text;
        if (b && b->size() == k.bytes.size()) std::copy(b->begin(), b->end(), k.bytes.begin());
        return k;
    }

    // A valid mint command line; tests append to it or replace parts of it.
    std::vector<std::string> mint_args() const {
        return {"mint", "--key", key_, "--protocol-id", "0x1122334455667788", "--client-id", "42",
                "--server", "127.0.0.1:8888"};
    }

    static std::vector<std::string> plus(std::vector<std::string> a, const std::vector<std::string>& b) {
        a.insert(a.end(), b.begin(), b.end());
        return a;
    }

    // Runs a mint that must succeed and returns the token from stdout (hex).
    Bytes mint(const std::vector<std::string>& args) const {
        const Result r = run(args);
        EXPECT_EQ(r.status, 0) << r;
        EXPECT_EQ(r.err, "");
        EXPECT_EQ(r.out.size(), 2 * kConnectTokenSize + 1);
        if (r.out.empty() || r.out.back() != '\n') {
            ADD_FAILURE() << "no trailing newline";
            return {};
        }
        auto b = from_hex(r.out.substr(0, r.out.size() - 1));
        EXPECT_TRUE(b.has_value()) << "not hex";
        return b.value_or(Bytes{});
    }

    // Decodes with the library and opens the private part with the key file.
    Decoded decode(const Bytes& bytes, const std::string& key_file = "") const {
        Decoded d;
        d.bytes = bytes;
        EXPECT_EQ(bytes.size(), kConnectTokenSize);
        EXPECT_EQ(wire::decode_connect_token(bytes, d.token), wire::WireError::ok);
        const crypto::Key key = server_key(key_file);
        EXPECT_EQ(wire::open_private_token(d.token.suite, d.token.protocol_id, d.token.expire_ms, d.token.nonce, key,
                                           d.token.encrypted_private, d.priv),
                  wire::WireError::ok);
        return d;
    }

    // Checks the error contract: the status, exactly one stderr line naming `what`, no stdout.
    void expect_error(const std::vector<std::string>& args, int status, const std::string& what) const {
        std::string cmdline;
        for (const auto& a : args) cmdline += a + " ";
        SCOPED_TRACE(cmdline);
        const Result r = run(args);
        EXPECT_EQ(r.status, status) << r;
        const auto lines = r.err_lines();
        ASSERT_EQ(lines.size(), 1u) << r.err;
        EXPECT_EQ(lines[0].rfind("pomelo-token: ", 0), 0u) << lines[0];
        EXPECT_TRUE(contains(lines[0], what)) << "'" << lines[0] << "' does not name " << what;
        EXPECT_EQ(r.out, "");
    }

    fs::path dir_;
    std::string key_;
};

// ---------------------------------------------------------------------------------------------
// help

TEST_F(TokenCli, HelpDescribesEveryCommand) {
    Result r = run({"--help"});
    EXPECT_EQ(r.status, 0) << r;
    EXPECT_EQ(r.err, "");
    for (const char* word : {"keygen", "mint", "inspect", "exit status"}) EXPECT_TRUE(contains(r.out, word)) << word;

    r = run({"mint", "--help"});
    EXPECT_EQ(r.status, 0) << r;
    for (const char* opt : {"--key", "--protocol-id", "--client-id", "--server", "--timeout", "--expire-in",
                            "--user-data", "--suite", "--now-ms", "--nonce", "--format", "-o"})
        EXPECT_TRUE(contains(r.out, opt)) << opt;

    r = run({"help", "inspect"});
    EXPECT_EQ(r.status, 0) << r;
    EXPECT_TRUE(contains(r.out, "--json"));

    r = run({"keygen", "-h"});
    EXPECT_EQ(r.status, 0) << r;
    EXPECT_TRUE(contains(r.out, "0600"));

    r = run({"--version"});
    EXPECT_EQ(r.status, 0) << r;
    EXPECT_EQ(r.out.rfind("pomelo-token ", 0), 0u) << r.out;
}

// ---------------------------------------------------------------------------------------------
// keygen

TEST_F(TokenCli, KeygenWritesSixtyFourHexDigitsWithModeSixHundred) {
    const std::string text = read_file(key_);
    ASSERT_EQ(text.size(), 65u);
    EXPECT_EQ(text.back(), '\n');
    EXPECT_TRUE(is_lower_hex(text.substr(0, 64))) << text;
    EXPECT_NE(text.substr(0, 64), std::string(64, '0'));

    struct stat st{};
    ASSERT_EQ(::stat(key_.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 0600u);
}

TEST_F(TokenCli, KeygenToStdoutGivesAFreshKeyEachTime) {
    const Result a = run({"keygen"}), b = run({"keygen"});
    ASSERT_EQ(a.status, 0) << a;
    ASSERT_EQ(b.status, 0) << b;
    for (const Result* r : {&a, &b}) {
        ASSERT_EQ(r->out.size(), 65u);
        EXPECT_TRUE(is_lower_hex(r->out.substr(0, 64)));
        EXPECT_EQ(r->out.back(), '\n');
        EXPECT_EQ(r->err, "");
    }
    EXPECT_NE(a.out, b.out);
}

TEST_F(TokenCli, KeygenRefusesToOverwriteAKeyWithoutForce) {
    const std::string before = read_file(key_);
    expect_error({"keygen", "-o", key_}, 1, "-o");
    EXPECT_EQ(read_file(key_), before);

    ASSERT_EQ(::chmod(key_.c_str(), 0644), 0);
    const Result r = run({"keygen", "-o", key_, "--force"});
    ASSERT_EQ(r.status, 0) << r;
    EXPECT_NE(read_file(key_), before);
    struct stat st{};
    ASSERT_EQ(::stat(key_.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 0600u) << "--force must also make a pre-existing file private";
}

// ---------------------------------------------------------------------------------------------
// mint, checked against the library

TEST_F(TokenCli, MintedTokenDecodesAndOpensWithTheLibrary) {
    const Bytes bytes = mint(plus(mint_args(), {"--server", "[2001:db8::1]:40000", "--timeout", "15", "--now-ms",
                                                "1700000000000", "--expire-in", "3600", "--user-data", "0102ff"}));
    const Decoded d = decode(bytes);
    EXPECT_EQ(d.token.suite, crypto::Suite::chacha20poly1305);
    EXPECT_EQ(d.token.protocol_id, 0x1122334455667788u);
    EXPECT_EQ(d.token.create_ms, 1700000000000u);
    EXPECT_EQ(d.token.expire_ms, 1700003600000u);
    EXPECT_EQ(d.token.timeout_seconds, 15);
    ASSERT_EQ(d.token.addresses.count, 2u);
    EXPECT_EQ(d.token.addresses.list[0].to_string(), "127.0.0.1:8888");
    EXPECT_EQ(d.token.addresses.list[1].to_string(), "[2001:db8::1]:40000");

    EXPECT_EQ(d.priv.client_id, 42);
    EXPECT_EQ(d.priv.timeout_seconds, 15);
    wire::UserData want{};
    want[0] = 0x01, want[1] = 0x02, want[2] = 0xff;
    EXPECT_EQ(d.priv.user_data, want) << "user data must be zero padded to 256 bytes";
    EXPECT_EQ(d.priv.addresses.count, 2u);
    EXPECT_EQ(d.priv.addresses.list[1], d.token.addresses.list[1]);
    EXPECT_EQ(d.priv.client_to_server_key, d.token.client_to_server_key);
    EXPECT_EQ(d.priv.server_to_client_key, d.token.server_to_client_key);
    EXPECT_NE(d.token.client_to_server_key, d.token.server_to_client_key);
    EXPECT_NE(d.token.client_to_server_key, crypto::Key{});
}

TEST_F(TokenCli, MintDefaultsAreTenSecondTimeoutAndFiveMinuteExpiry) {
    const Decoded d = decode(mint(mint_args()));
    EXPECT_EQ(d.token.timeout_seconds, 10);
    EXPECT_EQ(d.token.expire_ms - d.token.create_ms, 300'000u);
    const auto now = static_cast<uint64_t>(
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
            .count());
    EXPECT_LE(d.token.create_ms, now);
    EXPECT_GT(d.token.create_ms, now - 60'000) << "create must be the wall clock by default";
    EXPECT_EQ(d.priv.user_data, wire::UserData{});
}

TEST_F(TokenCli, ProtocolIdAcceptsDecimalAndHexAndClientIdMayBeNegative) {
    auto args = mint_args();
    args[4] = "1234605616436508552";  // == 0x1122334455667788
    args[6] = "-9223372036854775808";
    const Decoded d = decode(mint(args));
    EXPECT_EQ(d.token.protocol_id, 0x1122334455667788u);
    EXPECT_EQ(d.priv.client_id, INT64_MIN);

    args[4] = "0XFFFFFFFFFFFFFFFF";
    args[6] = "0x0102030405060708";
    const Decoded e = decode(mint(args));
    EXPECT_EQ(e.token.protocol_id, UINT64_MAX);
    EXPECT_EQ(e.priv.client_id, 0x0102030405060708);
}

TEST_F(TokenCli, FixedNowAndNonceGiveTheSpecHeaderBytes) {
    // Spec Appendix A.1 inputs: bytes 0..59 of the token are fixed by them (A.2).
    auto args = plus(mint_args(), {"--now-ms", "1700000000000", "--expire-in", "3600", "--nonce",
                                   "c0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7"});
    const Bytes a = mint(args), b = mint(args);
    ASSERT_EQ(a.size(), kConnectTokenSize);
    ASSERT_EQ(b.size(), kConnectTokenSize);
    const std::string header = "504f4d454c4f20312e303300"
                               "8877665544332211"
                               "0068e5cf8b010000"
                               "80561cd08b010000"
                               "c0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7";
    EXPECT_EQ(to_hex(a.data(), 60), header);
    EXPECT_EQ(to_hex(b.data(), 60), header);
    // Public trailer: timeout 10, one IPv4 record 127.0.0.1:8888 (spec 3.4 example).
    EXPECT_EQ(to_hex(a.data() + 1084, 15), "0a00000001000000017f000001b822");
    // The session keys are still random, so the rest differs.
    EXPECT_NE(a, b);
    decode(a);
}

TEST_F(TokenCli, TwoMintsDifferInNonceKeysAndCiphertext) {
    const Decoded a = decode(mint(mint_args())), b = decode(mint(mint_args()));
    EXPECT_NE(a.token.nonce, b.token.nonce);
    EXPECT_NE(a.token.client_to_server_key, b.token.client_to_server_key);
    EXPECT_NE(a.token.server_to_client_key, b.token.server_to_client_key);
    EXPECT_NE(a.token.encrypted_private, b.token.encrypted_private);
    EXPECT_EQ(a.priv.client_id, b.priv.client_id);
}

TEST_F(TokenCli, BinaryFormatIsTheRaw2048Bytes) {
    const std::string out = path("token.bin");
    Result r = run(plus(mint_args(), {"--format", "bin", "-o", out}));
    ASSERT_EQ(r.status, 0) << r;
    EXPECT_EQ(r.out, "");
    const std::string file = read_file(out);
    ASSERT_EQ(file.size(), kConnectTokenSize);
    decode(Bytes(file.begin(), file.end()));
    struct stat st{};
    ASSERT_EQ(::stat(out.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 0600u) << "a token holds the client's keys";

    r = run(plus(mint_args(), {"--format", "bin"}));  // stdout is a file here, not a terminal
    ASSERT_EQ(r.status, 0) << r;
    ASSERT_EQ(r.out.size(), kConnectTokenSize);
    decode(Bytes(r.out.begin(), r.out.end()));
}

TEST_F(TokenCli, NegativeTimeoutMeansNoTimeout) {
    EXPECT_EQ(decode(mint(plus(mint_args(), {"--timeout", "-1"}))).priv.timeout_seconds, -1);
    EXPECT_EQ(decode(mint(plus(mint_args(), {"--timeout=-30"}))).token.timeout_seconds, -30);
}

TEST_F(TokenCli, AesGcmSuiteMintsPomelo13G) {
    const Decoded d = decode(mint(plus(mint_args(), {"--suite", "aesgcm"})));
    EXPECT_EQ(d.token.suite, crypto::Suite::aes256gcm);
    EXPECT_EQ(std::string(d.bytes.begin(), d.bytes.begin() + 12), std::string("POMELO 1.3G\0", 12));

    const std::string file = path("gcm.hex");
    write_file(file, to_hex(d.bytes) + "\n");
    const Result r = run({"inspect", file});
    ASSERT_EQ(r.status, 0) << r;
    EXPECT_TRUE(contains(r.out, "POMELO 1.3G")) << r.out;
    EXPECT_TRUE(contains(r.out, "aesgcm")) << r.out;
}

TEST_F(TokenCli, ThirtyTwoServersAndFullUserDataFit) {
    auto args = mint_args();
    for (int i = 2; i <= 32; ++i) args.insert(args.end(), {"--server", "[2001:db8::" + std::to_string(i) + "]:9"});
    const std::string user_data = [] {
        std::string s;
        for (int i = 0; i < 256; ++i) s += to_hex(std::array<uint8_t, 1>{static_cast<uint8_t>(255 - i)});
        return s;
    }();
    args.insert(args.end(), {"--user-data", user_data});
    const Decoded d = decode(mint(args));
    EXPECT_EQ(d.token.addresses.count, 32u);
    EXPECT_EQ(d.priv.addresses.list[31].to_string(), "[2001:db8::32]:9");
    EXPECT_EQ(to_hex(d.priv.user_data), user_data);
}

// ---------------------------------------------------------------------------------------------
// inspect

TEST_F(TokenCli, MintThenInspectWithKeyShowsEveryField) {
    const std::string token = path("token.hex");
    Result r = run(plus(mint_args(), {"--server", "[2001:db8::1]:40000", "--user-data", "deadbeef00", "--timeout",
                                      "-1", "--now-ms", "1700000000000", "--expire-in", "3600", "-o", token}));
    ASSERT_EQ(r.status, 0) << r;
    EXPECT_EQ(r.out, "");
    struct stat st{};
    ASSERT_EQ(::stat(token.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 0600u);

    r = run({"inspect", "--key", key_, "--now-ms", "1700000001000", token});
    ASSERT_EQ(r.status, 0) << r;
    EXPECT_EQ(r.err, "");
    for (const char* want : {"POMELO 1.03", "0x1122334455667788", "1700000000000", "2023-11-14T22:13:20.000Z",
                             "1700003600000", "2023-11-14T23:13:20.000Z", "valid for 59m 59s", "no timeout",
                             "127.0.0.1:8888", "[2001:db8::1]:40000", "client id    42", "deadbeef",
                             "agree"})
        EXPECT_TRUE(contains(r.out, want)) << "missing '" << want << "' in\n" << r.out;
    EXPECT_FALSE(contains(r.out, "deadbeef00")) << "trailing zeros of user data are trimmed";
}

TEST_F(TokenCli, InspectJsonIsOneObjectWithTheSameFields) {
    const std::string token = path("token.hex");
    auto args = mint_args();
    args[6] = "-3";
    ASSERT_EQ(run(plus(args, {"--server", "[::1]:7", "--user-data", "abcd", "--now-ms", "1700000000000",
                              "--expire-in", "60", "-o", token}))
                  .status,
              0);
    const Result r = run({"inspect", "--json", "--key", key_, "--now-ms", "1700000060000", token});
    ASSERT_EQ(r.status, 0) << r;
    const auto j = nlohmann::json::parse(r.out);
    ASSERT_TRUE(j.is_object());
    EXPECT_EQ(j["version"], "POMELO 1.03");
    EXPECT_EQ(j["suite"], "chacha");
    EXPECT_EQ(j["protocol_id"], "0x1122334455667788");
    EXPECT_EQ(j["create_ms"], 1700000000000u);
    EXPECT_EQ(j["create_utc"], "2023-11-14T22:13:20.000Z");
    EXPECT_EQ(j["expire_ms"], 1700000060000u);
    EXPECT_EQ(j["expired"], true) << "expire == now is expired for the server (spec 5.5)";
    EXPECT_EQ(j["timeout_seconds"], 10);
    EXPECT_EQ(j["servers"], nlohmann::json::array({"127.0.0.1:8888", "[::1]:7"}));
    EXPECT_EQ(j["client_to_server_key_fingerprint"].get<std::string>().size(), 8u);
    EXPECT_EQ(j["nonce"].get<std::string>().size(), 48u);
    const auto& p = j["private"];
    EXPECT_EQ(p["opened"], true);
    EXPECT_EQ(p["client_id"], -3);
    EXPECT_EQ(p["user_data"], "abcd");
    EXPECT_EQ(p["copies_agree"], true);
    EXPECT_TRUE(p["mismatches"].empty());

    // Without --key there is no private section.
    const Result pub = run({"inspect", "--json", token});
    ASSERT_EQ(pub.status, 0) << pub;
    EXPECT_FALSE(nlohmann::json::parse(pub.out).contains("private"));
}

TEST_F(TokenCli, InspectNeverPrintsKeys) {
    const std::string token = path("token.hex");
    ASSERT_EQ(run(plus(mint_args(), {"-o", token})).status, 0);
    const std::string hex = read_file(token);
    const Decoded d = decode(from_hex(hex.substr(0, hex.size() - 1)).value_or(Bytes{}));
    const crypto::Key server = server_key();
    for (const auto& args : std::vector<std::vector<std::string>>{
             {"inspect", token}, {"inspect", "--key", key_, token}, {"inspect", "--json", "--key", key_, token}}) {
        const Result r = run(args);
        ASSERT_EQ(r.status, 0) << r;
        for (const crypto::Key* k : {&d.token.client_to_server_key, &d.token.server_to_client_key, &server}) {
            const std::string secret = to_hex(k->bytes);
            // Not the key, nor any 8-byte window of it.
            for (size_t i = 0; i + 16 <= secret.size(); i += 2) {
                EXPECT_FALSE(contains(r.out, secret.substr(i, 16))) << "key bytes leaked by " << args[1];
                EXPECT_FALSE(contains(r.err, secret.substr(i, 16)));
            }
        }
    }
}

TEST_F(TokenCli, InspectDetectsBinaryWrappedHexAndStdin) {
    const std::string bin = path("token.bin");
    ASSERT_EQ(run(plus(mint_args(), {"--format", "bin", "-o", bin})).status, 0);
    Result r = run({"inspect", "--key", key_, bin});
    ASSERT_EQ(r.status, 0) << r;
    EXPECT_TRUE(contains(r.out, "client id    42")) << r.out;

    // Hex wrapped at 60 columns, as `xxd -p` writes it, upper case.
    const std::string raw = read_file(bin);
    std::string wrapped;
    const std::string hex = to_hex(reinterpret_cast<const uint8_t*>(raw.data()), raw.size());
    for (size_t i = 0; i < hex.size(); i += 60) {
        for (char c : hex.substr(i, 60)) wrapped += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
        wrapped += '\n';
    }
    const std::string wrapped_path = path("wrapped.hex");
    write_file(wrapped_path, wrapped);
    r = run({"inspect", "--key", key_, wrapped_path});
    ASSERT_EQ(r.status, 0) << r;
    EXPECT_TRUE(contains(r.out, "client id    42")) << r.out;

    r = run({"inspect", "--key", key_}, bin);  // stdin by default
    ASSERT_EQ(r.status, 0) << r;
    EXPECT_TRUE(contains(r.out, "127.0.0.1:8888"));
    r = run({"inspect", "-"}, wrapped_path);
    ASSERT_EQ(r.status, 0) << r;
    EXPECT_TRUE(contains(r.out, "127.0.0.1:8888"));
}

TEST_F(TokenCli, InspectReportsExpiry) {
    const std::string token = path("token.hex");
    ASSERT_EQ(run(plus(mint_args(), {"--now-ms", "1700000000000", "--expire-in", "300", "-o", token})).status, 0);
    Result r = run({"inspect", "--now-ms", "1700000300000", token});
    ASSERT_EQ(r.status, 0) << "expiry is reported, not an error: " << r;
    EXPECT_TRUE(contains(r.out, "EXPIRED")) << r.out;
    r = run({"inspect", "--now-ms", "1700000299999", token});
    ASSERT_EQ(r.status, 0) << r;
    EXPECT_FALSE(contains(r.out, "EXPIRED")) << r.out;
    EXPECT_TRUE(contains(r.out, "valid for 0s")) << r.out;
}

TEST_F(TokenCli, InspectWithTheWrongKeyFails) {
    const std::string token = path("token.hex"), other = path("other.key");
    ASSERT_EQ(run(plus(mint_args(), {"-o", token})).status, 0);
    ASSERT_EQ(run({"keygen", "-o", other}).status, 0);
    Result r = run({"inspect", "--key", other, token});
    EXPECT_EQ(r.status, 1) << r;
    ASSERT_EQ(r.err_lines().size(), 1u) << r.err;
    EXPECT_TRUE(contains(r.err, "--key")) << r.err;
    EXPECT_TRUE(contains(r.out, "127.0.0.1:8888")) << "the public fields are still shown";
    EXPECT_FALSE(contains(r.out, "client id"));

    r = run({"inspect", "--json", "--key", other, token});
    EXPECT_EQ(r.status, 1) << r;
    const auto j = nlohmann::json::parse(r.out);
    EXPECT_EQ(j["private"]["opened"], false);
    EXPECT_EQ(j["private"]["error"], "auth_failed");
}

TEST_F(TokenCli, InspectFlagsPublicCopiesThatDisagreeWithThePrivatePart) {
    Bytes bytes = mint(plus(mint_args(), {"--timeout", "10"}));
    ASSERT_EQ(bytes.size(), kConnectTokenSize);
    bytes[1084] = 99;  // public timeout: not authenticated, the server ignores it
    const std::string token = path("tampered.hex");
    write_file(token, to_hex(bytes) + "\n");

    Result r = run({"inspect", "--key", key_, token});
    EXPECT_EQ(r.status, 1) << r;
    ASSERT_EQ(r.err_lines().size(), 1u) << r.err;
    EXPECT_TRUE(contains(r.err, "disagree")) << r.err;
    EXPECT_TRUE(contains(r.err, "timeout")) << r.err;
    EXPECT_TRUE(contains(r.out, "DISAGREE")) << r.out;

    r = run({"inspect", "--json", "--key", key_, token});
    EXPECT_EQ(r.status, 1) << r;
    const auto j = nlohmann::json::parse(r.out);
    EXPECT_EQ(j["private"]["copies_agree"], false);
    EXPECT_EQ(j["private"]["mismatches"], nlohmann::json::array({"timeout"}));

    r = run({"inspect", token});  // without the key nothing can be compared
    EXPECT_EQ(r.status, 0) << r;
}

TEST_F(TokenCli, InspectRejectsTruncatedAndMalformedTokens) {
    const std::string good = path("good.hex");
    ASSERT_EQ(run(plus(mint_args(), {"-o", good})).status, 0);
    const std::string hex = read_file(good);

    const auto expect_bad = [&](const std::string& name, const std::string& content, const std::string& what) {
        SCOPED_TRACE(name);
        const std::string file = path(name);
        write_file(file, content);
        const Result r = run({"inspect", file});
        EXPECT_NE(r.status, 0) << r;
        EXPECT_EQ(r.status, 2) << r;
        const auto lines = r.err_lines();
        ASSERT_EQ(lines.size(), 1u) << r.err;
        EXPECT_EQ(lines[0].rfind("pomelo-token: ", 0), 0u);
        EXPECT_TRUE(contains(lines[0], what)) << lines[0];
        EXPECT_EQ(r.out, "");
    };
    expect_bad("short.hex", hex.substr(0, 4000) + "\n", "truncated");
    const Bytes bytes = from_hex(hex.substr(0, 4096)).value_or(Bytes{});
    ASSERT_EQ(bytes.size(), kConnectTokenSize);
    expect_bad("short.bin", std::string(bytes.begin(), bytes.begin() + 1000), "truncated");
    expect_bad("long.bin", std::string(bytes.begin(), bytes.end()) + "x", "2049 bytes");
    expect_bad("empty", "", "empty");
    expect_bad("odd.hex", hex.substr(0, 4095), "truncated");
    Bytes bad_version = bytes;
    bad_version[10] = '4';  // "POMELO 1.04"
    expect_bad("version.bin", std::string(bad_version.begin(), bad_version.end()), "version");
    Bytes no_servers = bytes;
    no_servers[1088] = 0;  // N = 0
    expect_bad("noservers.hex", to_hex(no_servers), "address count");

    const Result missing = run({"inspect", path("nope.hex")});
    EXPECT_EQ(missing.status, 1) << missing;
    EXPECT_EQ(missing.err_lines().size(), 1u);
    EXPECT_TRUE(contains(missing.err, "nope.hex"));
}

// ---------------------------------------------------------------------------------------------
// bad arguments: exit 2, one stderr line naming the problem, nothing on stdout

TEST_F(TokenCli, EveryBadArgumentIsOneLineAndStatusTwo) {
    const std::string short_key = path("short.key"), text_key = path("text.key"), long_key = path("long.key"),
                      empty_key = path("empty.key");
    write_file(short_key, std::string(63, 'a') + "\n");
    write_file(text_key, "this is not a key, this is a sentence of sixty-four characters!\n");
    write_file(long_key, std::string(65, 'a') + "\n");
    write_file(empty_key, "");

    auto with = [&](std::vector<std::string> extra) { return plus(mint_args(), extra); };
    auto replace = [&](size_t index, const std::string& value) {
        auto a = mint_args();
        a[index] = value;
        return a;
    };
    auto without = [&](const std::string& option) {
        auto a = mint_args();
        for (size_t i = 0; i < a.size(); ++i)
            if (a[i] == option) a.erase(a.begin() + static_cast<ptrdiff_t>(i), a.begin() + static_cast<ptrdiff_t>(i) + 2);
        return a;
    };
    std::vector<std::string> too_many = mint_args();
    for (int i = 2; i <= 33; ++i) too_many.insert(too_many.end(), {"--server", "10.0.0." + std::to_string(i) + ":1"});

    struct Case {
        std::vector<std::string> args;
        std::string names;
    };
    const std::vector<Case> cases = {
        {with({"--frobnicate"}), "--frobnicate"},
        {with({"-x"}), "-x"},
        {with({"--timeout"}), "--timeout"},                                 // missing value at the end
        {{"mint", "--key", "--protocol-id", "1"}, "--key"},                 // value forgotten
        {with({"--server", "1.2.3:80"}), "--server: '1.2.3:80' is not an address"},
        {with({"--server", "1.2.3.4"}), "--server"},
        {with({"--server", "::1:80"}), "--server"},
        {with({"--server", "[::1]"}), "--server"},
        {with({"--server", "example.com:80"}), "--server"},
        {with({"--server", "1.2.3.4:65536"}), "--server"},
        {with({"--server", "1.2.3.4:0"}), "--server"},
        {with({"--server", "0.0.0.0:80"}), "--server"},
        {with({"--server", "127.0.0.1:8888"}), "--server"},                 // duplicate
        {too_many, "--server"},
        {replace(6, "abc"), "--client-id"},
        {replace(6, "12x"), "--client-id"},
        {replace(6, ""), "--client-id"},
        {replace(6, "9223372036854775808"), "--client-id"},
        {replace(6, "1.5"), "--client-id"},
        {replace(4, "-1"), "--protocol-id"},
        {replace(4, "0x"), "--protocol-id"},
        {replace(4, "18446744073709551616"), "--protocol-id"},
        {replace(4, "0x1g"), "--protocol-id"},
        {with({"--timeout", "0"}), "--timeout"},
        {with({"--timeout", "-0"}), "--timeout"},
        {with({"--timeout", "ten"}), "--timeout"},
        {with({"--timeout", "2147483648"}), "--timeout"},
        {with({"--expire-in", "0"}), "--expire-in"},
        {with({"--expire-in", "-5"}), "--expire-in"},
        {with({"--expire-in", "18446744073709551"}), "--expire-in"},        // overflows ms
        {with({"--now-ms", "yesterday"}), "--now-ms"},
        {with({"--user-data", std::string(514, 'a')}), "--user-data"},      // 257 bytes
        {with({"--user-data", "zz"}), "--user-data"},
        {with({"--user-data", "abc"}), "--user-data"},
        {with({"--suite", "aes"}), "--suite"},
        {with({"--format", "base64"}), "--format"},
        {with({"--nonce", "00"}), "--nonce"},
        {with({"--nonce", std::string(48, 'g')}), "--nonce"},
        {with({"--key", key_}), "--key"},                                   // given twice
        {with({"extra"}), "'extra'"},
        {replace(2, short_key), "--key"},
        {replace(2, text_key), "--key"},
        {replace(2, long_key), "--key"},
        {replace(2, empty_key), "--key"},
        {without("--key"), "--key"},
        {without("--protocol-id"), "--protocol-id"},
        {without("--client-id"), "--client-id"},
        {without("--server"), "--server"},
        {{"frob"}, "'frob'"},
        {{"--frob"}, "'--frob'"},
        {{}, "command"},
        {{"help", "frob"}, "'frob'"},
        {{"keygen", "extra"}, "'extra'"},
        {{"keygen", "--force"}, "--force"},
        {{"keygen", "-o"}, "-o"},
        {{"inspect", "--frob", key_}, "--frob"},
        {{"inspect", "--json=yes", key_}, "--json"},
        {{"inspect", "--now-ms", "soon", key_}, "--now-ms"},
        {{"inspect", "a.hex", "b.hex"}, "'b.hex'"},
        {{"inspect", "--key", short_key, key_}, "--key"},
    };
    for (const Case& c : cases) expect_error(c.args, 2, c.names);
}

TEST_F(TokenCli, RuntimeFailuresAreOneLineAndStatusOne) {
    expect_error(plus({"mint", "--key", path("missing.key")}, {"--protocol-id", "1", "--client-id", "1", "--server",
                                                               "1.2.3.4:5"}),
                 1, "--key: cannot read");
    expect_error(plus({"mint", "--key", dir_.string()}, {"--protocol-id", "1", "--client-id", "1", "--server",
                                                         "1.2.3.4:5"}),
                 1, "--key");
    expect_error(plus(mint_args(), {"-o", path("no/such/dir/token.hex")}), 1, "-o");
    expect_error({"keygen", "-o", path("no/such/dir/server.key")}, 1, "-o");
    expect_error({"inspect", "--key", path("missing.key"), key_}, 1, "--key");
    EXPECT_FALSE(fs::exists(path("no")));
}

}  // namespace
}  // namespace pomelo::test
