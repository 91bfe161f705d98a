// Cipher suites (spec §4 and Appendix B). The suite is chosen by the version info that the
// token issuer writes into the connect token; everything but the per-packet AEAD is shared.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

#include "protocol/wire/constants.hpp"

namespace pomelo::crypto {

enum class Suite : uint8_t {
    chacha20poly1305 = 0,  // "POMELO 1.03": the reference's only suite
    aes256gcm = 1,         // "POMELO 1.3G": pomelo-engine extension (Appendix B)
};
inline constexpr unsigned kSuiteCount = 2;

using VersionInfo = std::array<uint8_t, wire::kVersionInfoSize>;

inline constexpr VersionInfo kVersionChaCha = {'P', 'O', 'M', 'E', 'L', 'O', ' ', '1', '.', '0', '3', 0};
inline constexpr VersionInfo kVersionAesGcm = {'P', 'O', 'M', 'E', 'L', 'O', ' ', '1', '.', '3', 'G', 0};

constexpr const VersionInfo& version_info(Suite suite) {
    return suite == Suite::aes256gcm ? kVersionAesGcm : kVersionChaCha;
}

// The suite whose version info is exactly these 12 bytes, if any.
inline std::optional<Suite> suite_from_version(std::span<const uint8_t> v) {
    if (v.size() != wire::kVersionInfoSize) return std::nullopt;
    for (unsigned s = 0; s < kSuiteCount; ++s) {
        const auto& want = version_info(static_cast<Suite>(s));
        bool same = true;
        for (size_t i = 0; i < want.size(); ++i) same &= (v[i] == want[i]);
        if (same) return static_cast<Suite>(s);
    }
    return std::nullopt;
}

const char* to_string(Suite suite);
std::optional<Suite> suite_from_name(std::string_view name);

}  // namespace pomelo::crypto
