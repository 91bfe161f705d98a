#include "tools/common/cli.hpp"

#include <sodium.h>

#include <fcntl.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <fstream>

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
