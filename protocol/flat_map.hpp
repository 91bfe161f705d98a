// A fixed-capacity open-addressing hash map for keys an attacker chooses (addresses, token
// tags, client ids). Hashing is SipHash-2-4 under a secret random key (libsodium's
// crypto_shorthash), so colliding keys cannot be computed offline (§19.8). Linear probing
// with backward-shift deletion: no tombstones. No rehash and no allocation after construction,
// except in reserve(), which a caller uses to grow the map where allocating is allowed.
//
// Keys must be trivially copyable with no padding bytes (they are hashed as raw bytes).
#pragma once

#include <sodium.h>

#include <cstdint>
#include <cstring>
#include <optional>
#include <type_traits>
#include <vector>

#include "protocol/crypto/key.hpp"
#include "protocol/page_alloc.hpp"

namespace pomelo {

class KeyedHash {
public:
    KeyedHash() { crypto::random_bytes(key_, sizeof key_); }
    ~KeyedHash() { crypto::secure_wipe(key_, sizeof key_); }
    KeyedHash(const KeyedHash&) = delete;
    KeyedHash& operator=(const KeyedHash&) = delete;

    uint64_t operator()(const void* p, size_t n) const {
        uint64_t h;
        crypto_shorthash(reinterpret_cast<unsigned char*>(&h), static_cast<const unsigned char*>(p), n, key_);
        return h;
    }

private:
    unsigned char key_[crypto_shorthash_KEYBYTES];
};

template <class K, class V>
class FlatMap {
    static_assert(std::is_trivially_copyable_v<K> && std::has_unique_object_representations_v<K>,
                  "keys are hashed and compared as raw bytes");

public:
    // Holds up to `capacity` entries; the table is sized for a load factor of at most 1/2.
    explicit FlatMap(size_t capacity) : capacity_(capacity) {
        const size_t slots = slots_for(capacity);
        slots_.resize(slots);
        mask_ = slots - 1;
    }

    // Raises the capacity to at least `capacity` entries, rehashing every entry into a table
    // twice as large (or more) when the load factor would pass 1/2: O(size) and an allocation,
    // for a caller's rare path (a shard adding a connection). Pointers from find/insert are
    // invalidated when it rehashes. Throws std::bad_alloc, leaving the map unchanged.
    void reserve(size_t capacity) {
        if (capacity <= capacity_) return;
        const size_t slots = slots_for(capacity);
        if (slots > slots_.size()) {
            Table old(slots);
            old.swap(slots_);
            mask_ = slots - 1;
            for (const Slot& s : old) {
                if (!s.used) continue;
                size_t i = home(s.key);
                while (slots_[i].used) i = (i + 1) & mask_;
                slots_[i] = s;
            }
        }
        capacity_ = capacity;
    }

    size_t size() const { return size_; }
    size_t capacity() const { return capacity_; }
    // Bytes of the table (what the map holds in memory beyond the object itself).
    size_t bytes() const { return slots_.capacity() * sizeof(Slot); }
    bool full() const { return size_ >= capacity_; }

    V* find(const K& key) {
        for (size_t i = home(key);; i = (i + 1) & mask_) {
            Slot& s = slots_[i];
            if (!s.used) return nullptr;
            if (same(s.key, key)) return &s.value;
        }
    }
    const V* find(const K& key) const { return const_cast<FlatMap*>(this)->find(key); }

    // Inserts or overwrites. Returns nullptr if the key is new and the map is full.
    V* insert(const K& key, const V& value) {
        for (size_t i = home(key);; i = (i + 1) & mask_) {
            Slot& s = slots_[i];
            if (!s.used) {
                if (full()) return nullptr;
                s.used = true;
                s.key = key;
                s.value = value;
                ++size_;
                return &s.value;
            }
            if (same(s.key, key)) {
                s.value = value;
                return &s.value;
            }
        }
    }

    bool erase(const K& key) {
        size_t i = home(key);
        for (;; i = (i + 1) & mask_) {
            if (!slots_[i].used) return false;
            if (same(slots_[i].key, key)) break;
        }
        // Backward-shift: pull later entries of the probe run into the hole.
        size_t hole = i;
        for (size_t j = (i + 1) & mask_; slots_[j].used; j = (j + 1) & mask_) {
            const size_t want = home(slots_[j].key);
            const bool movable = hole <= j ? (want <= hole || want > j) : (want <= hole && want > j);
            if (movable) {
                slots_[hole] = slots_[j];
                hole = j;
            }
        }
        slots_[hole].used = false;
        slots_[hole].value = V{};
        --size_;
        return true;
    }

    void clear() {
        for (Slot& s : slots_) s = Slot{};
        size_ = 0;
    }

    template <class Fn>
    void for_each(Fn&& fn) {
        for (Slot& s : slots_)
            if (s.used) fn(s.key, s.value);
    }

private:
    struct Slot {
        K key{};
        V value{};
        bool used = false;
    };

    static size_t slots_for(size_t capacity) {
        size_t slots = 16;
        while (slots < 2 * capacity) slots <<= 1;
        return slots;
    }
    static bool same(const K& a, const K& b) { return std::memcmp(&a, &b, sizeof(K)) == 0; }
    size_t home(const K& key) const { return hash_(&key, sizeof key) & mask_; }

    // Mapped, not malloc'd, when large: the table a rehash leaves is unmapped (page_alloc.hpp).
    using Table = std::vector<Slot, PageAllocator<Slot>>;

    KeyedHash hash_;
    Table slots_;
    size_t mask_ = 0;
    size_t size_ = 0;
    size_t capacity_;
};

}  // namespace pomelo
