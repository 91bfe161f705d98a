// Bounded little-endian byte reader/writer and the trimmed integers of spec §3.2.
//
// Both classes are sticky: the first out-of-bounds access sets failed() and every later
// access is a no-op, so a codec can run a whole layout and check once at the end.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>

namespace pomelo::wire {

inline void store_le(uint8_t* p, uint64_t v, unsigned n) {
    for (unsigned i = 0; i < n; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}

inline uint64_t load_le(const uint8_t* p, unsigned n) {
    uint64_t v = 0;
    for (unsigned i = 0; i < n; ++i) v |= static_cast<uint64_t>(p[i]) << (8 * i);
    return v;
}

// Canonical trimmed length (§3.2): the smallest n >= 1 with v < 2^(8n).
constexpr unsigned trimmed_length(uint64_t v) {
    unsigned n = 1;
    while (n < 8 && (v >> (8 * n)) != 0) ++n;
    return n;
}

// The reference's length function (Appendix A.6), kept only to reproduce reference
// bytes in tests: canonical below 2^48; above, 8 if byte 6 is non-zero, else 7.
constexpr unsigned reference_trimmed_length(uint64_t v) {
    if (v < (uint64_t{1} << 48)) return trimmed_length(v);
    return (v & 0x00FF000000000000ull) ? 8 : 7;
}

class ByteReader {
public:
    explicit ByteReader(std::span<const uint8_t> bytes) : p_(bytes.data()), end_(bytes.data() + bytes.size()) {}

    bool failed() const { return failed_; }
    size_t remaining() const { return failed_ ? 0 : static_cast<size_t>(end_ - p_); }
    const uint8_t* position() const { return p_; }

    uint64_t le(unsigned n) {
        if (!take(n)) return 0;
        uint64_t v = load_le(p_ - n, n);
        return v;
    }
    uint8_t u8() { return static_cast<uint8_t>(le(1)); }
    uint16_t u16() { return static_cast<uint16_t>(le(2)); }
    uint32_t u32() { return static_cast<uint32_t>(le(4)); }
    uint64_t u64() { return le(8); }
    int32_t s32() { return static_cast<int32_t>(u32()); }
    int64_t s64() { return static_cast<int64_t>(u64()); }

    // A view of the next n bytes (no copy); empty on overrun.
    std::span<const uint8_t> bytes(size_t n) {
        if (!take(n)) return {};
        return {p_ - n, n};
    }
    void copy(void* dst, size_t n) {
        auto b = bytes(n);
        if (!b.empty()) std::memcpy(dst, b.data(), n);
    }
    void skip(size_t n) { take(n); }

private:
    bool take(size_t n) {
        if (failed_ || static_cast<size_t>(end_ - p_) < n) {
            failed_ = true;
            return false;
        }
        p_ += n;
        return true;
    }
    const uint8_t* p_;
    const uint8_t* end_;
    bool failed_ = false;
};

class ByteWriter {
public:
    explicit ByteWriter(std::span<uint8_t> out) : begin_(out.data()), p_(out.data()), end_(out.data() + out.size()) {}

    bool failed() const { return failed_; }
    size_t written() const { return static_cast<size_t>(p_ - begin_); }
    uint8_t* position() { return p_; }

    void le(uint64_t v, unsigned n) {
        if (uint8_t* d = take(n)) store_le(d, v, n);
    }
    void u8(uint8_t v) { le(v, 1); }
    void u16(uint16_t v) { le(v, 2); }
    void u32(uint32_t v) { le(v, 4); }
    void u64(uint64_t v) { le(v, 8); }
    void s32(int32_t v) { u32(static_cast<uint32_t>(v)); }
    void s64(int64_t v) { u64(static_cast<uint64_t>(v)); }
    void bytes(std::span<const uint8_t> b) {
        if (uint8_t* d = take(b.size()); d && !b.empty()) std::memcpy(d, b.data(), b.size());
    }
    void zeros(size_t n) {
        if (uint8_t* d = take(n); d && n) std::memset(d, 0, n);
    }
    // Marks the writer failed: for values that have no encoding.
    void fail() { failed_ = true; }

private:
    uint8_t* take(size_t n) {
        if (failed_ || static_cast<size_t>(end_ - p_) < n) {
            failed_ = true;
            return nullptr;
        }
        uint8_t* d = p_;
        p_ += n;
        return d;
    }
    uint8_t* begin_;
    uint8_t* p_;
    uint8_t* end_;
    bool failed_ = false;
};

}  // namespace pomelo::wire
