// Replay protection (spec §10): a 256-sequence window per direction of a connection.
//
// The reference tests and commits in one step before decryption, so a spoofed datagram with
// a huge sequence moves the window and kills the connection (§19.1). Here the two steps are
// separate: `fresh()` is the cheap pre-decryption filter, `commit()` runs only after the
// packet authenticated and decoded. A 256-bit bitmap gives the same accept set as the
// spec's 256 slots (latest-255 .. latest, plus anything newer) in 40 bytes.
#pragma once

#include <array>
#include <cstdint>

namespace pomelo {

class ReplayWindow {
public:
    static constexpr uint64_t kSize = 256;

    // True if `seq` has not been committed and is not too old.
    bool fresh(uint64_t seq) const {
        if (!any_) return true;
        if (seq > latest_) return true;
        const uint64_t age = latest_ - seq;
        if (age >= kSize) return false;
        return !bit(seq);
    }

    // Records `seq` as received. Call only after the packet authenticated, and only if
    // fresh(seq) held.
    void commit(uint64_t seq) {
        if (!any_) {
            any_ = true;
            latest_ = seq;
            bits_ = {};
            set(seq);
            return;
        }
        if (seq > latest_) {
            const uint64_t shift = seq - latest_;
            if (shift >= kSize) {
                bits_ = {};
            } else {
                for (uint64_t s = latest_ + 1; s < seq; ++s) clear(s);  // skipped sequences stay open
            }
            clear(seq);
            latest_ = seq;
        }
        set(seq);
    }

    uint64_t latest() const { return latest_; }
    void reset() { *this = ReplayWindow{}; }

private:
    bool bit(uint64_t s) const { return bits_[(s % kSize) / 64] >> (s % 64) & 1; }
    void set(uint64_t s) { bits_[(s % kSize) / 64] |= uint64_t{1} << (s % 64); }
    void clear(uint64_t s) { bits_[(s % kSize) / 64] &= ~(uint64_t{1} << (s % 64)); }

    std::array<uint64_t, kSize / 64> bits_{};
    uint64_t latest_ = 0;
    bool any_ = false;
};

}  // namespace pomelo
