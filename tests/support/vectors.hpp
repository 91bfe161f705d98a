// Access to the reference implementation's vectors (../shared/vectors/pomelo-1.03.json).
#pragma once

#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "protocol/crypto/key.hpp"

namespace pomelo::test {

using Bytes = std::vector<uint8_t>;

inline Bytes hex(const std::string& s) {
    if (s.size() % 2) throw std::invalid_argument("odd hex length");
    Bytes out(s.size() / 2);
    for (size_t i = 0; i < out.size(); ++i) out[i] = static_cast<uint8_t>(std::stoul(s.substr(2 * i, 2), nullptr, 16));
    return out;
}

inline std::string to_hex(const uint8_t* p, size_t n) {
    static const char* d = "0123456789abcdef";
    std::string s;
    for (size_t i = 0; i < n; ++i) (s += d[p[i] >> 4]) += d[p[i] & 15];
    return s;
}
template <class C>
std::string to_hex(const C& c) {
    return to_hex(c.data(), c.size());
}

inline crypto::Key key_of(const std::string& s) {
    Bytes b = hex(s);
    if (b.size() != 32) throw std::invalid_argument("key is not 32 bytes");
    crypto::Key k;
    std::copy(b.begin(), b.end(), k.bytes.begin());
    return k;
}

// Decimal or 0x-hex string, as the vectors write 64-bit values.
inline uint64_t u64_of(const nlohmann::json& j) {
    if (j.is_number()) return j.get<uint64_t>();
    const std::string s = j.get<std::string>();
    if (s.rfind("0x", 0) == 0) return std::stoull(s.substr(2), nullptr, 16);
    if (!s.empty() && s[0] == '-') return static_cast<uint64_t>(std::stoll(s));
    return std::stoull(s);
}
inline int64_t s64_of(const nlohmann::json& j) { return static_cast<int64_t>(u64_of(j)); }

inline std::string vectors_path() {
    if (const char* env = std::getenv("POMELO_VECTORS")) return env;
#ifdef POMELO_VECTORS_FILE
    return POMELO_VECTORS_FILE;
#else
    return "../shared/vectors/pomelo-1.03.json";
#endif
}

// Loaded once; throws (failing test registration loudly) if the file is missing.
inline const nlohmann::json& vectors() {
    static const nlohmann::json doc = [] {
        std::ifstream f(vectors_path());
        if (!f) throw std::runtime_error("cannot open vectors file " + vectors_path());
        return nlohmann::json::parse(f);
    }();
    return doc;
}

}  // namespace pomelo::test
