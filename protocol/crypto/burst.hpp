// AEAD over a burst of packets. The per-packet cipher is the engine's bottleneck (spec §4:
// ~200-440 ns for ChaCha20-Poly1305, ~40 ns for AES-256-GCM with IPsec-MB), so the data path
// hands whole bursts to a backend that can interleave them (IPsec-MB's multi-buffer burst API)
// instead of one call per packet. Every backend produces the same bytes as crypto/aead.hpp.
//
// A backend instance is not thread-safe: each lcore owns one.
#pragma once

#include <cstdint>
#include <memory>
#include <span>

#include "protocol/crypto/key.hpp"
#include "protocol/crypto/suite.hpp"

namespace pomelo::crypto {

// A key prepared for a backend (AES-256-GCM round keys and GHASH tables). Optional: a backend
// prepares raw keys itself when an op carries none, at a cost per op.
struct alignas(64) PreparedKey {
    uint8_t bytes[1024];
};

// A prepared key shared by its connection and the datagrams queued under it: whichever lets go
// last wipes it (a queued datagram owns its key until sealed, see OutDatagram).
using SharedPreparedKey = std::shared_ptr<const PreparedKey>;

// One AEAD operation of a burst, in place over `text`, with a detached 16-byte tag.
struct AeadOp {
    Suite suite = Suite::chacha20poly1305;
    const Key* key = nullptr;
    const PreparedKey* prepared = nullptr;  // from BurstAead::prepare for this key and suite, or null
    uint64_t sequence = 0;                  // nonce = 00 00 00 00 || sequence u64 LE
    const uint8_t* ad = nullptr;
    uint32_t ad_size = 0;
    uint8_t* text = nullptr;
    uint32_t size = 0;
    uint8_t* tag = nullptr;  // seal: written; open: the received tag
    bool ok = false;         // result: sealed / authenticated
};

class BurstAead {
public:
    virtual ~BurstAead() = default;
    virtual const char* name() const = 0;
    // Encrypts every op; ok is false only if its suite is unavailable.
    virtual void seal(std::span<AeadOp> ops) = 0;
    // Decrypts every op whose tag authenticates (ok = true); a failed op's text is zeroed and
    // never left as unauthenticated plaintext.
    virtual void open(std::span<AeadOp> ops) = 0;
    // Fills `out` for (key, suite); false if this backend has no use for prepared keys.
    virtual bool prepare(const Key&, Suite, PreparedKey&) { return false; }
};

// `key` prepared by `backend` for `suite`, or null when the backend has no use for prepared
// keys (ChaCha20-Poly1305, libsodium): ops then carry the raw key alone.
SharedPreparedKey prepare_shared(BurstAead& backend, const Key& key, Suite suite);

// libsodium, one call per op: available everywhere.
std::unique_ptr<BurstAead> make_sodium_burst();
// Intel IPsec-MB burst API; nullptr when the library cannot run on this CPU.
std::unique_ptr<BurstAead> make_ipsec_mb_burst();
// The fastest backend that works here (IPsec-MB, else libsodium). POMELO_CRYPTO=sodium|ipsec-mb
// in the environment forces one.
std::unique_ptr<BurstAead> make_best_burst();

}  // namespace pomelo::crypto
