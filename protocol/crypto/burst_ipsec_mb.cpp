// Intel IPsec-MB burst backend (work in progress: falls back to libsodium until it lands).
#include "protocol/crypto/burst.hpp"

namespace pomelo::crypto {

std::unique_ptr<BurstAead> make_ipsec_mb_burst() { return nullptr; }

}  // namespace pomelo::crypto
