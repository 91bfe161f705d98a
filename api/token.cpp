// <pomelo/token.hpp> over protocol/wire and protocol/crypto.
#include <pomelo/token.hpp>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <limits>

#include "protocol/crypto/key.hpp"
#include "protocol/wire/connect_token.hpp"
#include "tools/common/cli.hpp"

namespace pomelo {

static_assert(PrivateKey::kSize == wire::kKeySize);
static_assert(kTokenSize == wire::kConnectTokenSize);
static_assert(kUserDataSize == wire::kUserDataSize);
static_assert(kMaxPayloadSize == wire::kMaxPayloadSize);

PrivateKey::PrivateKey() = default;
PrivateKey::PrivateKey(const PrivateKey&) = default;
PrivateKey& PrivateKey::operator=(const PrivateKey&) = default;
PrivateKey::~PrivateKey() { crypto::secure_wipe(bytes_.data(), bytes_.size()); }

PrivateKey PrivateKey::generate() {
    PrivateKey k;
    crypto::random_bytes(k.bytes_.data(), k.bytes_.size());
    return k;
}

std::optional<PrivateKey> PrivateKey::from_hex(std::string_view hex) {
    while (!hex.empty() && std::isspace(static_cast<unsigned char>(hex.front()))) hex.remove_prefix(1);
    while (!hex.empty() && std::isspace(static_cast<unsigned char>(hex.back()))) hex.remove_suffix(1);
    if (hex.size() != 2 * kSize) return std::nullopt;
    auto nibble = [](char c) -> int {
        if (c >= '0' && c <= '9') return c - '0';
        if (c >= 'a' && c <= 'f') return c - 'a' + 10;
        if (c >= 'A' && c <= 'F') return c - 'A' + 10;
        return -1;
    };
    PrivateKey k;
    for (size_t i = 0; i < kSize; ++i) {
        const int hi = nibble(hex[2 * i]), lo = nibble(hex[2 * i + 1]);
        if (hi < 0 || lo < 0) return std::nullopt;
        k.bytes_[i] = static_cast<uint8_t>(hi << 4 | lo);
    }
    return k;
}

std::optional<PrivateKey> PrivateKey::load(const std::string& path, std::string& error) {
    try {
        const crypto::Key key = cli::load_key_file("key file", path);
        PrivateKey k;
        std::copy(key.bytes.begin(), key.bytes.end(), k.bytes_.begin());
        return k;
    } catch (const cli::Error& e) {
        error = e.what;
        return std::nullopt;
    }
}

bool PrivateKey::valid() const {
    return std::any_of(bytes_.begin(), bytes_.end(), [](uint8_t b) { return b != 0; });
}

bool mint_token(const PrivateKey& key, const TokenParams& params, TokenBytes& out, std::string& error) {
    auto fail = [&](const std::string& what) {
        error = what;
        return false;
    };
    if (!key.valid()) return fail("key: all zero (not a key)");
    if (params.servers.empty() || params.servers.size() > wire::kMaxServerAddresses)
        return fail("servers: want 1.." + std::to_string(wire::kMaxServerAddresses) + " addresses, got " +
                    std::to_string(params.servers.size()));
    if (params.timeout_seconds == 0) return fail("timeout_seconds: 0 is not allowed (negative: no timeout)");
    if (params.expire_seconds == 0 || params.expire_seconds > 10ull * 365 * 24 * 3600)
        return fail("expire_seconds: want 1 second .. 10 years");

    wire::TokenSpec spec;
    spec.suite = params.suite == TokenSuite::aes256gcm ? crypto::Suite::aes256gcm : crypto::Suite::chacha20poly1305;
    spec.protocol_id = params.protocol_id;
    spec.create_ms = params.now_unix_ms;
    if (spec.create_ms == 0)
        spec.create_ms = static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                                   std::chrono::system_clock::now().time_since_epoch())
                                                   .count());
    spec.expire_ms = spec.create_ms + params.expire_seconds * 1000;
    crypto::random_bytes(spec.nonce.data(), spec.nonce.size());
    wire::PrivateConnectToken& priv = spec.private_part;
    priv.client_id = params.client_id;
    priv.timeout_seconds = params.timeout_seconds;
    for (const std::string& text : params.servers) {
        const auto a = wire::Address::parse(text);
        if (!a || a->port == 0) return fail("servers: '" + text + "' is not an address with a port (want a.b.c.d:port or [v6]:port)");
        if (priv.addresses.contains(*a)) return fail("servers: '" + text + "' given twice");
        priv.addresses.push(*a);
    }
    priv.user_data = params.user_data;
    priv.client_to_server_key = crypto::Key::random();
    priv.server_to_client_key = crypto::Key::random();
    const crypto::Key private_key(key.bytes());
    const wire::WireError e = wire::mint_connect_token(spec, private_key, out);
    crypto::secure_wipe(priv.user_data.data(), priv.user_data.size());
    if (e != wire::WireError::ok) return fail(std::string("mint: ") + wire::to_string(e));
    return true;
}

}  // namespace pomelo
