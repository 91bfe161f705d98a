#include "protocol/crypto/aead.hpp"

#include <sodium.h>

#include <string_view>

namespace pomelo::crypto {

bool init() {
    static const bool ok = sodium_init() >= 0;
    return ok;
}

// libsodium picks its SIMD implementations in sodium_init(); run it before main so that no
// caller pays for (or forgets) the check on the data path.
[[maybe_unused]] static const bool kInitialised = init();

void secure_wipe(void* p, size_t n) { sodium_memzero(p, n); }
void random_bytes(void* p, size_t n) { randombytes_buf(p, n); }

bool suite_available(Suite suite) {
    return suite == Suite::chacha20poly1305 || crypto_aead_aes256gcm_is_available() == 1;
}

const char* to_string(Suite suite) { return suite == Suite::aes256gcm ? "aesgcm" : "chacha"; }

std::optional<Suite> suite_from_name(std::string_view name) {
    if (name == "chacha") return Suite::chacha20poly1305;
    if (name == "aesgcm") return Suite::aes256gcm;
    return std::nullopt;
}

bool packet_seal(Suite suite, const Key& key, uint64_t sequence, std::span<const uint8_t> ad,
                 std::span<uint8_t> text, uint8_t* tag) {
    const PacketNonce nonce = packet_nonce(sequence);
    if (suite == Suite::aes256gcm) {
        if (!suite_available(suite)) return false;
        crypto_aead_aes256gcm_encrypt_detached(text.data(), tag, nullptr, text.data(), text.size(), ad.data(),
                                               ad.size(), nullptr, nonce.data(), key.data());
        return true;
    }
    crypto_aead_chacha20poly1305_ietf_encrypt_detached(text.data(), tag, nullptr, text.data(), text.size(),
                                                       ad.data(), ad.size(), nullptr, nonce.data(), key.data());
    return true;
}

bool packet_open(Suite suite, const Key& key, uint64_t sequence, std::span<const uint8_t> ad,
                 std::span<uint8_t> text, const uint8_t* tag) {
    const PacketNonce nonce = packet_nonce(sequence);
    if (suite == Suite::aes256gcm) {
        if (!suite_available(suite)) return false;
        return crypto_aead_aes256gcm_decrypt_detached(text.data(), nullptr, text.data(), text.size(), tag,
                                                      ad.data(), ad.size(), nonce.data(), key.data()) == 0;
    }
    return crypto_aead_chacha20poly1305_ietf_decrypt_detached(text.data(), nullptr, text.data(), text.size(), tag,
                                                              ad.data(), ad.size(), nonce.data(), key.data()) == 0;
}

void chacha_seal(const Key& key, const PacketNonce& nonce, std::span<const uint8_t> ad, const uint8_t* in,
                 size_t len, uint8_t* out, uint8_t* tag) {
    crypto_aead_chacha20poly1305_ietf_encrypt_detached(out, tag, nullptr, in, len, ad.data(), ad.size(), nullptr,
                                                       nonce.data(), key.data());
}

bool chacha_open(const Key& key, const PacketNonce& nonce, std::span<const uint8_t> ad, const uint8_t* in,
                 size_t len, uint8_t* out, const uint8_t* tag) {
    return crypto_aead_chacha20poly1305_ietf_decrypt_detached(out, nullptr, in, len, tag, ad.data(), ad.size(),
                                                              nonce.data(), key.data()) == 0;
}

void xchacha_seal(const Key& key, std::span<const uint8_t, 24> nonce, std::span<const uint8_t> ad,
                  std::span<uint8_t> text, uint8_t* tag) {
    crypto_aead_xchacha20poly1305_ietf_encrypt_detached(text.data(), tag, nullptr, text.data(), text.size(),
                                                        ad.data(), ad.size(), nullptr, nonce.data(), key.data());
}

bool xchacha_open(const Key& key, std::span<const uint8_t, 24> nonce, std::span<const uint8_t> ad,
                  const uint8_t* in, size_t len, uint8_t* out, const uint8_t* tag) {
    return crypto_aead_xchacha20poly1305_ietf_decrypt_detached(out, nullptr, in, len, tag, ad.data(), ad.size(),
                                                               nonce.data(), key.data()) == 0;
}

}  // namespace pomelo::crypto
