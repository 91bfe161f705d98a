// Sizes and identifiers of the Pomelo 1.03 wire format (spec §2, §7.4).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

namespace pomelo::wire {

inline constexpr size_t kVersionInfoSize = 12;
inline constexpr size_t kKeySize = 32;
inline constexpr size_t kTagSize = 16;
inline constexpr size_t kUserDataSize = 256;

inline constexpr size_t kConnectTokenSize = 2048;
inline constexpr size_t kConnectTokenNonceSize = 24;
inline constexpr size_t kPrivateTokenSize = 1024;                            // ciphertext + tag
inline constexpr size_t kPrivateTokenPlainSize = kPrivateTokenSize - kTagSize;  // 1008
inline constexpr size_t kPrivateTokenOffset = 60;     // in the public token
inline constexpr size_t kPublicTrailerOffset = 1084;  // timeout, addresses, keys
inline constexpr uint32_t kMaxServerAddresses = 32;

inline constexpr size_t kChallengeTokenSize = 300;
inline constexpr size_t kChallengeTokenPlainSize = kChallengeTokenSize - kTagSize;  // 284

inline constexpr size_t kRequestSize = 1077;
inline constexpr size_t kRequestTagOffset = kRequestSize - kTagSize;  // 1061: token reuse key
inline constexpr size_t kChallengeBodySize = 8 + kChallengeTokenSize;  // 308, RESPONSE too
inline constexpr size_t kMaxPayloadSize = 1200;
// Largest payload a reference peer can receive (1209-byte buffers, 8-byte sequence), §15.
inline constexpr size_t kReferenceSafePayloadSize = 1184;
inline constexpr size_t kMaxHeaderSize = 9;
inline constexpr size_t kMinDatagramSize = 18;
inline constexpr size_t kMaxDatagramSize = kMaxHeaderSize + kMaxPayloadSize + kTagSize;  // 1225

inline constexpr size_t kPingBodyMin = 3, kPingBodyMax = 19;
inline constexpr size_t kPongBodyMin = 4, kPongBodyMax = 25;  // 19 real max; 25 accepted (§8.6)

// The packet type, high nibble of the prefix byte (§7.2).
enum class PacketType : uint8_t {
    request = 0,
    denied = 1,
    challenge = 2,
    response = 3,
    ping = 4,
    payload = 5,
    disconnect = 6,
    pong = 7,
};
inline constexpr unsigned kPacketTypeCount = 8;

const char* to_string(PacketType type);

}  // namespace pomelo::wire
