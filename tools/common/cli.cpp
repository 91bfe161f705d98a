#include "tools/common/cli.hpp"

#include <sodium.h>

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <vector>

#include "protocol/crypto/key.hpp"

namespace pomelo::cli {

int run_main(const char* prog, const std::function<int()>& body) {
    try {
        return body();
    } catch (const Error& e) {
        std::fflush(stdout);
        if (!e.what.empty()) std::fprintf(stderr, "%s: %s\n", prog, e.what.c_str());
        return e.status;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "%s: internal error: %s\n", prog, e.what());
    } catch (...) {
        std::fprintf(stderr, "%s: internal error\n", prog);
    }
    return 1;
}

std::string quote(std::string_view s) {
    constexpr size_t kMax = 60;
    std::string out = "'";
    for (size_t i = 0; i < s.size() && i < kMax; ++i) {
        const auto c = static_cast<unsigned char>(s[i]);
        if (c < 0x20 || c == 0x7f) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\x%02x", c);
            out += buf;
        } else {
            out += static_cast<char>(c);
        }
    }
    if (s.size() > kMax) out += "...";
    out += '\'';
    return out;
}

void bad_argument(const std::string& option, const std::string& reason) { throw Error{2, option + ": " + reason}; }
void failure(const std::string& message) { throw Error{1, message}; }

std::optional<uint64_t> parse_u64(std::string_view s) {
    int base = 10;
    if (s.size() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
        base = 16;
        s.remove_prefix(2);
    }
    if (s.empty() || s.front() == '+' || s.front() == '-') return std::nullopt;
    uint64_t v = 0;
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v, base);
    if (ec != std::errc{} || end != s.data() + s.size()) return std::nullopt;
    return v;
}

uint64_t parse_uint(const std::string& option, std::string_view text, uint64_t min, uint64_t max) {
    const auto v = parse_u64(text);
    if (!v) bad_argument(option, "'" + std::string(text) + "' is not a number");
    if (*v < min || *v > max)
        bad_argument(option, "'" + std::string(text) + "' is out of range (" + std::to_string(min) + ".." +
                                 std::to_string(max) + ")");
    return *v;
}

double parse_seconds(const std::string& option, std::string_view text) {
    try {
        size_t used = 0;
        const double v = std::stod(std::string(text), &used);
        if (used == text.size() && v >= 0) return v;
    } catch (...) {
    }
    bad_argument(option, "'" + std::string(text) + "' is not a number of seconds");
}

wire::Address parse_address(const std::string& option, std::string_view text) {
    auto a = wire::Address::parse(text);
    if (!a) bad_argument(option, "'" + std::string(text) + "' is not an address (want a.b.c.d:port or [v6]:port)");
    return *a;
}

crypto::Key load_key_file(const std::string& option, const std::string& path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) failure(option + ": cannot read '" + path + "': " + std::strerror(errno));
    std::array<char, 256> buf{};
    const ssize_t n = ::read(fd, buf.data(), buf.size());
    ::close(fd);
    crypto::Key key;
    size_t digits = 0;
    bool ok = n > 0 && n < static_cast<ssize_t>(buf.size());
    for (ssize_t i = 0; ok && i < n; ++i) {
        const char c = buf[i];
        if (c == ' ' || c == '\n' || c == '\r' || c == '\t') continue;
        int v = (c >= '0' && c <= '9') ? c - '0' : (c >= 'a' && c <= 'f') ? c - 'a' + 10 : (c >= 'A' && c <= 'F') ? c - 'A' + 10 : -1;
        if (v < 0 || digits >= 64) {
            ok = false;
            break;
        }
        key.bytes[digits / 2] = static_cast<uint8_t>(digits % 2 ? key.bytes[digits / 2] | v : v << 4);
        ++digits;
    }
    crypto::secure_wipe(buf.data(), buf.size());
    if (!ok || digits != 64)
        bad_argument(option, "'" + path + "' is not a server key (want 64 hex digits, as 'pomelo-token keygen' writes)");
    return key;
}

SplitArgs split_eal_args(int argc, char** argv, const std::vector<std::string>& default_eal) {
    SplitArgs s;
    int dash = -1;
    for (int i = 1; i < argc; ++i)
        if (std::strcmp(argv[i], "--") == 0) {
            dash = i;
            break;
        }
    s.eal.push_back(argv[0]);
    const int ours_from = dash < 0 ? 1 : dash + 1;
    for (int i = 1; i < dash; ++i) s.eal.push_back(argv[i]);
    if (s.eal.size() == 1) s.eal.insert(s.eal.end(), default_eal.begin(), default_eal.end());
    for (int i = ours_from; i < argc; ++i) s.ours.push_back(argv[i]);
    return s;
}

std::vector<std::string> read_config_file(const std::string& path) {
    std::ifstream f(path);
    if (!f) failure("--config: cannot read '" + path + "': " + std::strerror(errno));
    std::vector<std::string> args;
    std::string line;
    for (int number = 1; std::getline(f, line); ++number) {
        if (auto hash = line.find('#'); hash != std::string::npos) line.resize(hash);
        auto trim = [](std::string s) {
            const auto b = s.find_first_not_of(" \t\r");
            const auto e = s.find_last_not_of(" \t\r");
            return b == std::string::npos ? std::string() : s.substr(b, e - b + 1);
        };
        line = trim(line);
        if (line.empty()) continue;
        const auto eq = line.find('=');
        if (eq == std::string::npos)
            bad_argument("--config", "'" + path + "' line " + std::to_string(number) + ": want 'key = value'");
        args.push_back("--" + trim(line.substr(0, eq)));
        const std::string value = trim(line.substr(eq + 1));
        if (!value.empty()) args.push_back(value);
    }
    return args;
}

namespace {

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }


}  // namespace

ssize_t read_up_to(int fd, uint8_t* p, size_t cap) {
    size_t n = 0;
    while (n < cap) {
        const ssize_t r = ::read(fd, p + n, cap - n);
        if (r < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        if (r == 0) break;
        n += static_cast<size_t>(r);
    }
    return static_cast<ssize_t>(n);
}

std::string load_token_file(const std::string& source, std::span<uint8_t, wire::kConnectTokenSize> out) {
    constexpr size_t kMaxTokenInput = 64 * 1024;  // a token file is never larger
    constexpr size_t kTokenHexSize = 2 * wire::kConnectTokenSize;
    const bool from_stdin = source == "-";
    const std::string name = from_stdin ? "stdin" : quote(source);
    const int fd = from_stdin ? STDIN_FILENO : ::open(source.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) failure("cannot read " + name + ": " + std::strerror(errno));
    std::vector<uint8_t> data(kMaxTokenInput + 1);  // never reallocated: the wipe covers it all
    struct Wipe {
        std::vector<uint8_t>& d;
        ~Wipe() { crypto::secure_wipe(d.data(), d.size()); }
    } wipe{data};
    const ssize_t got = read_up_to(fd, data.data(), data.size());
    const int e = errno;
    if (!from_stdin) ::close(fd);
    if (got < 0) failure("cannot read " + name + ": " + std::strerror(e));
    const auto n = static_cast<size_t>(got);
    const std::string_view text(reinterpret_cast<const char*>(data.data()), n);
    const auto not_a_token = [](const std::string& m) { throw Error{2, m}; };

    if (n == 0) not_a_token(name + " is empty (want a connect token: 2048 bytes, or 4096 hex digits)");
    if (n > kMaxTokenInput) not_a_token(name + " is not a connect token (larger than 64 KiB)");

    const bool is_hex = std::all_of(text.begin(), text.end(), [](char c) { return hex_value(c) >= 0 || is_space(c); });
    if (is_hex) {
        const auto digits =
            static_cast<size_t>(std::count_if(text.begin(), text.end(), [](char c) { return hex_value(c) >= 0; }));
        if (digits != kTokenHexSize)
            not_a_token(name + " is not a connect token: " + std::to_string(digits) + " hex digits, want " +
                        std::to_string(kTokenHexSize) + (digits < kTokenHexSize ? " (truncated?)" : ""));
        size_t k = 0;
        int hi = -1;
        for (char c : text) {
            const int v = hex_value(c);
            if (v < 0) continue;
            if (hi < 0) {
                hi = v;
            } else {
                out[k++] = static_cast<uint8_t>(hi << 4 | v);
                hi = -1;
            }
        }
    } else {
        if (n != wire::kConnectTokenSize)
            not_a_token(name + " is not a connect token: " + std::to_string(n) + " bytes, want " +
                        std::to_string(wire::kConnectTokenSize) + (n < wire::kConnectTokenSize ? " (truncated?)" : ""));
        std::copy_n(data.begin(), n, out.begin());
    }
    return name;
}

std::string key_fingerprint(const crypto::Key& key) {
    std::array<uint8_t, 32> hash{};
    crypto_generichash(hash.data(), hash.size(), key.data(), key.bytes.size(), nullptr, 0);
    static const char* digits = "0123456789abcdef";
    std::string out;
    for (size_t i = 0; i < 4; ++i) {
        out += digits[hash[i] >> 4];
        out += digits[hash[i] & 15];
    }
    return out;
}

}  // namespace pomelo::cli
