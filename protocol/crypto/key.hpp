// A 32-byte secret key that wipes itself. All protocol keys (server private key, challenge
// key, per-connection keys) are held in this type so that no copy outlives its owner.
#pragma once

#include <array>
#include <cstdint>
#include <span>

#include "protocol/wire/constants.hpp"

namespace pomelo::crypto {

void secure_wipe(void* p, size_t n);
void random_bytes(void* p, size_t n);

struct Key {
    std::array<uint8_t, wire::kKeySize> bytes{};

    Key() = default;
    explicit Key(std::span<const uint8_t, wire::kKeySize> b) { std::copy(b.begin(), b.end(), bytes.begin()); }
    Key(const Key&) = default;
    Key& operator=(const Key&) = default;
    ~Key() { wipe(); }

    static Key random() {
        Key k;
        random_bytes(k.bytes.data(), k.bytes.size());
        return k;
    }
    void wipe() { secure_wipe(bytes.data(), bytes.size()); }
    const uint8_t* data() const { return bytes.data(); }
    bool operator==(const Key&) const = default;
};

}  // namespace pomelo::crypto
