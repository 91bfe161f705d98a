// Small pieces every pomelo tool needs: numbers, addresses and key files from the command
// line, each failing with a one-line reason that names the option.
#pragma once

#include <sys/types.h>

#include <charconv>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/crypto/key.hpp"
#include "protocol/wire/address.hpp"
#include "protocol/wire/constants.hpp"

namespace pomelo::cli {

// Thrown for bad arguments (exit 2) and runtime failures (exit 1); main prints `what` alone.
struct Error {
    int status;
    std::string what;
};
// A tool's main: runs `body`; an Error prints "prog: what" (nothing when empty) and exits
// with its status; any other exception is an internal error (status 1).
int run_main(const char* prog, const std::function<int()>& body);

[[noreturn]] void bad_argument(const std::string& option, const std::string& reason);
[[noreturn]] void failure(const std::string& message);

// 'text' for an error message: control bytes escaped and long values cut, so that the message
// stays one short line whatever the user typed.
std::string quote(std::string_view text);

// Unsigned 64-bit, decimal or 0x-hex; no sign, no spaces. nullopt if not exactly that.
std::optional<uint64_t> parse_u64(std::string_view text);
// Signed decimal of type T; no '+', no spaces.
template <typename T>
std::optional<T> parse_signed(std::string_view text) {
    if (text.empty() || text.front() == '+') return std::nullopt;
    T v = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v, 10);
    if (ec != std::errc{} || end != text.data() + text.size()) return std::nullopt;
    return v;
}

// Decimal or 0x-hex, within [min, max].
uint64_t parse_uint(const std::string& option, std::string_view text, uint64_t min = 0, uint64_t max = UINT64_MAX);
double parse_seconds(const std::string& option, std::string_view text);
wire::Address parse_address(const std::string& option, std::string_view text);
// Up to `cap` bytes from `fd`, or to end of file (EINTR retried); -1 on a read error (errno set).
ssize_t read_up_to(int fd, uint8_t* p, size_t cap);
// 64 hex digits, as `pomelo-token keygen` writes them; the read buffer is wiped.
crypto::Key load_key_file(const std::string& option, const std::string& path);

// A connect token file as `pomelo-token mint` writes it: 2048 raw bytes (--format bin) or
// 4096 hex digits (--format hex; whitespace and line breaks allowed); "-" reads stdin.
// Returns the source as messages name it ('path' or stdin). Unreadable: exit 1; not a token
// (empty, truncated, too long): exit 2. Every buffer that held the token is wiped.
std::string load_token_file(const std::string& source, std::span<uint8_t, wire::kConnectTokenSize> out);

// First 4 bytes of BLAKE2b-256(key), as 8 hex digits: enough to tell keys apart, useless to
// an attacker.
std::string key_fingerprint(const crypto::Key& key);

// Splits argv at "--": EAL's arguments before (argv[0] first), ours after. With no "--",
// everything is ours. With no EAL arguments, EAL gets `default_eal`.
struct SplitArgs {
    std::vector<std::string> eal;
    std::vector<std::string> ours;
};
SplitArgs split_eal_args(int argc, char** argv, const std::vector<std::string>& default_eal);

// Reads "key = value" lines ('#' comments) into "--key value" pairs, for a --config file.
std::vector<std::string> read_config_file(const std::string& path);

}  // namespace pomelo::cli
