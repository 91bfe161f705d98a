// The server's private key and connect tokens (spec §5): what a game backend needs to let a
// client in. Public header: standard library only.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <pomelo/app.hpp>

namespace pomelo {

inline constexpr size_t kTokenSize = 2048;  // a public connect token (spec §5.1)
using TokenBytes = std::array<uint8_t, kTokenSize>;

// The 32-byte key shared by the backend (which mints tokens) and the servers (which open
// them). Every copy wipes itself when destroyed.
class PrivateKey {
public:
    static constexpr size_t kSize = 32;

    PrivateKey();  // all zero: not a usable key (valid() is false)
    PrivateKey(const PrivateKey&);
    PrivateKey& operator=(const PrivateKey&);
    ~PrivateKey();

    // 32 bytes from the operating system's random source.
    static PrivateKey generate();
    // 64 hex digits, surrounding whitespace ignored; nullopt otherwise.
    static std::optional<PrivateKey> from_hex(std::string_view hex);
    // A key file as `pomelo-token keygen` writes it (64 hex digits and a newline). nullopt
    // with `error`, one line naming the file and the problem.
    static std::optional<PrivateKey> load(const std::string& path, std::string& error);

    bool valid() const;  // not all zero
    std::span<const uint8_t, kSize> bytes() const { return bytes_; }

private:
    std::array<uint8_t, kSize> bytes_{};
};

// The AEAD a token (and its connection) uses: "POMELO 1.03" (ChaCha20-Poly1305, the
// reference's) or "POMELO 1.3G" (AES-256-GCM, pomelo-engine's extension, spec Appendix B).
enum class TokenSuite : uint8_t { chacha20poly1305, aes256gcm };

// What the backend decides for one client.
struct TokenParams {
    uint64_t protocol_id = 0;
    int64_t client_id = 0;                // unique among the server's connections (§12.10)
    std::vector<std::string> servers;     // 1..32 of "a.b.c.d:port" / "[v6]:port", tried in order
    uint64_t expire_seconds = 300;        // lifetime from `now_unix_ms`, >= 1
    int32_t timeout_seconds = 10;         // connection timeout; negative = none; 0 refused (§5.4)
    UserData user_data{};                 // handed to Application::on_connect
    TokenSuite suite = TokenSuite::chacha20poly1305;
    uint64_t now_unix_ms = 0;             // creation time; 0 = the wall clock
};

// Mints a token under `key` with fresh random session keys and nonce. Give it to that client
// only (it holds the client's session keys), over TLS. false with one line in `error` for a
// bad parameter (names the field).
bool mint_token(const PrivateKey& key, const TokenParams& params, TokenBytes& out, std::string& error);

}  // namespace pomelo
