// The libsodium burst backend: a plain loop over crypto/aead.hpp.
#include "protocol/crypto/aead.hpp"
#include "protocol/crypto/burst.hpp"

#include <cstdlib>
#include <cstring>
#include <string_view>

namespace pomelo::crypto {
namespace {

class SodiumBurst final : public BurstAead {
public:
    const char* name() const override { return "libsodium"; }
    void seal(std::span<AeadOp> ops) override {
        for (AeadOp& op : ops)
            op.ok = packet_seal(op.suite, *op.key, op.sequence, {op.ad, op.ad_size}, {op.text, op.size}, op.tag);
    }
    void open(std::span<AeadOp> ops) override {
        for (AeadOp& op : ops) {
            op.ok = packet_open(op.suite, *op.key, op.sequence, {op.ad, op.ad_size}, {op.text, op.size}, op.tag);
            if (!op.ok && op.size) std::memset(op.text, 0, op.size);
        }
    }
};

}  // namespace

std::unique_ptr<BurstAead> make_sodium_burst() { return std::make_unique<SodiumBurst>(); }

SharedPreparedKey prepare_shared(BurstAead& backend, const Key& key, Suite suite) {
    auto* prepared = new PreparedKey;
    if (!backend.prepare(key, suite, *prepared)) {
        delete prepared;
        return nullptr;
    }
    return SharedPreparedKey(prepared, [](const PreparedKey* k) {
        secure_wipe(const_cast<PreparedKey*>(k)->bytes, sizeof k->bytes);
        delete k;
    });
}

std::unique_ptr<BurstAead> make_best_burst() {
    const char* forced = std::getenv("POMELO_CRYPTO");
    if (forced && std::string_view(forced) == "sodium") return make_sodium_burst();
    if (auto mb = make_ipsec_mb_burst()) return mb;
    return make_sodium_burst();
}

}  // namespace pomelo::crypto
