#include "protocol/wire/connect_token.hpp"

#include "protocol/crypto/aead.hpp"
#include "protocol/wire/bytes.hpp"

namespace pomelo::wire {

bool ServerAddresses::contains(const Address& a) const {
    for (const Address& x : view())
        if (x == a) return true;
    return false;
}

bool ServerAddresses::push(const Address& a) {
    if (count >= list.size()) return false;
    list[count++] = a;
    return true;
}

std::array<uint8_t, 28> private_token_ad(crypto::Suite suite, uint64_t protocol_id, uint64_t expire_ms) {
    std::array<uint8_t, 28> ad{};
    ByteWriter w(ad);
    w.bytes(crypto::version_info(suite));
    w.u64(protocol_id);
    w.u64(expire_ms);
    return ad;
}

// Address list shared by the public and private layouts: count u32, then records.
static WireError write_addresses(ByteWriter& w, const ServerAddresses& a) {
    if (a.count == 0 || a.count > kMaxServerAddresses) return WireError::bad_address_count;
    w.u32(a.count);
    for (const Address& x : a.view()) {
        if (x.type != AddressType::ipv4 && x.type != AddressType::ipv6) return WireError::bad_address_type;
        write_address_record(w, x);
    }
    return w.failed() ? WireError::address_overrun : WireError::ok;
}

static WireError read_addresses(ByteReader& r, ServerAddresses& out) {
    const uint32_t n = r.u32();
    if (r.failed()) return WireError::address_overrun;
    if (n == 0 || n > kMaxServerAddresses) return WireError::bad_address_count;
    out.count = n;
    for (uint32_t i = 0; i < n; ++i)
        if (WireError e = read_address_record(r, out.list[i]); e != WireError::ok) return e;
    return WireError::ok;
}

static void read_key(ByteReader& r, crypto::Key& key) { r.copy(key.bytes.data(), key.bytes.size()); }

WireError encode_private_token(const PrivateConnectToken& t, std::span<uint8_t, kPrivateTokenPlainSize> out) {
    if (t.timeout_seconds == 0) return WireError::bad_timeout;
    ByteWriter w(out);
    w.s64(t.client_id);
    w.s32(t.timeout_seconds);
    if (WireError e = write_addresses(w, t.addresses); e != WireError::ok) return e;
    w.bytes(t.client_to_server_key.bytes);
    w.bytes(t.server_to_client_key.bytes);
    w.bytes(t.user_data);
    if (w.failed()) return WireError::address_overrun;
    w.zeros(out.size() - w.written());
    return WireError::ok;
}

WireError decode_private_token(std::span<const uint8_t, kPrivateTokenPlainSize> plain, PrivateConnectToken& out) {
    ByteReader r(plain);
    out.client_id = r.s64();
    out.timeout_seconds = r.s32();
    if (WireError e = read_addresses(r, out.addresses); e != WireError::ok) return e;
    read_key(r, out.client_to_server_key);
    read_key(r, out.server_to_client_key);
    r.copy(out.user_data.data(), out.user_data.size());
    if (r.failed()) return WireError::address_overrun;
    if (out.timeout_seconds == 0) return WireError::bad_timeout;
    return WireError::ok;
}

void seal_private_token(crypto::Suite suite, uint64_t protocol_id, uint64_t expire_ms, const TokenNonce& nonce,
                        const crypto::Key& private_key, std::span<uint8_t, kPrivateTokenSize> inout) {
    const auto ad = private_token_ad(suite, protocol_id, expire_ms);
    crypto::xchacha_seal(private_key, nonce, ad, inout.first(kPrivateTokenPlainSize),
                         inout.data() + kPrivateTokenPlainSize);
}

WireError open_private_token(crypto::Suite suite, uint64_t protocol_id, uint64_t expire_ms,
                             std::span<const uint8_t, kConnectTokenNonceSize> nonce, const crypto::Key& private_key,
                             std::span<const uint8_t, kPrivateTokenSize> encrypted, PrivateConnectToken& out) {
    const auto ad = private_token_ad(suite, protocol_id, expire_ms);
    std::array<uint8_t, kPrivateTokenPlainSize> plain;
    if (!crypto::xchacha_open(private_key, nonce, ad, encrypted.data(), kPrivateTokenPlainSize, plain.data(),
                              encrypted.data() + kPrivateTokenPlainSize))
        return WireError::auth_failed;
    const WireError e = decode_private_token(plain, out);
    crypto::secure_wipe(plain.data(), plain.size());
    return e;
}

WireError encode_connect_token(const ConnectToken& t, std::span<uint8_t, kConnectTokenSize> out) {
    if (t.create_ms > t.expire_ms) return WireError::bad_timestamps;
    if (t.timeout_seconds == 0) return WireError::bad_timeout;
    ByteWriter w(out);
    w.bytes(crypto::version_info(t.suite));
    w.u64(t.protocol_id);
    w.u64(t.create_ms);
    w.u64(t.expire_ms);
    w.bytes(t.nonce);
    w.bytes(t.encrypted_private);
    w.s32(t.timeout_seconds);
    if (WireError e = write_addresses(w, t.addresses); e != WireError::ok) return e;
    w.bytes(t.client_to_server_key.bytes);
    w.bytes(t.server_to_client_key.bytes);
    if (w.failed()) return WireError::address_overrun;
    w.zeros(out.size() - w.written());
    return WireError::ok;
}

WireError decode_connect_token(std::span<const uint8_t> bytes, ConnectToken& out) {
    if (bytes.size() != kConnectTokenSize) return WireError::bad_body_size;
    ByteReader r(bytes);
    auto suite = crypto::suite_from_version(r.bytes(kVersionInfoSize));
    if (!suite) return WireError::bad_version;
    out.suite = *suite;
    out.protocol_id = r.u64();
    out.create_ms = r.u64();
    out.expire_ms = r.u64();
    r.copy(out.nonce.data(), out.nonce.size());
    r.copy(out.encrypted_private.data(), out.encrypted_private.size());
    out.timeout_seconds = r.s32();
    if (WireError e = read_addresses(r, out.addresses); e != WireError::ok) return e;
    read_key(r, out.client_to_server_key);
    read_key(r, out.server_to_client_key);
    if (r.failed()) return WireError::address_overrun;
    if (out.create_ms > out.expire_ms) return WireError::bad_timestamps;
    if (out.timeout_seconds == 0) return WireError::bad_timeout;
    return WireError::ok;
}

WireError mint_connect_token(const TokenSpec& spec, const crypto::Key& private_key,
                             std::span<uint8_t, kConnectTokenSize> out) {
    if (spec.create_ms > spec.expire_ms) return WireError::bad_timestamps;
    ConnectToken t;
    t.suite = spec.suite;
    t.protocol_id = spec.protocol_id;
    t.create_ms = spec.create_ms;
    t.expire_ms = spec.expire_ms;
    t.nonce = spec.nonce;
    auto priv = std::span<uint8_t, kPrivateTokenSize>(t.encrypted_private);
    if (WireError e = encode_private_token(spec.private_part, priv.first<kPrivateTokenPlainSize>());
        e != WireError::ok)
        return e;
    seal_private_token(spec.suite, spec.protocol_id, spec.expire_ms, spec.nonce, private_key, priv);
    t.timeout_seconds = spec.private_part.timeout_seconds;
    t.addresses = spec.private_part.addresses;
    t.client_to_server_key = spec.private_part.client_to_server_key;
    t.server_to_client_key = spec.private_part.server_to_client_key;
    return encode_connect_token(t, out);
}

}  // namespace pomelo::wire
