// The token-reuse history (spec §12.10): the 16-byte tag of every private connect token the
// server opened, with the address it came from, its expiry and whether it produced a
// connection.
//
// A token that produced a connection must be remembered until it expires: its keys already
// sealed connection-phase packets from sequence 0, so a second connection with it would
// repeat (key, nonce) pairs (§9). Such entries are never evicted while live. Entries of
// tokens that never connected only save a decrypt and a replay from another address; they
// are evicted oldest first when room is needed. Expired entries go first of all. When the
// table is full of live connected tokens, remember() refuses the new token (the caller drops
// the REQUEST, counted as token_history_full): the server then serves fewer new clients
// rather than risk a nonce repeat. Size it for connections per token lifetime.
//
// Cost: O(log n) per insertion (an expiry heap), amortised O(1) eviction; no allocation
// after construction.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "protocol/flat_map.hpp"
#include "protocol/wire/address.hpp"
#include "protocol/wire/constants.hpp"

namespace pomelo::server {

using TokenTag = std::array<uint8_t, wire::kTagSize>;

class TokenHistory {
public:
    struct Entry {
        wire::AddressKey address;
        uint64_t expire_ms = 0;
        uint64_t order = 0;  // position in the unconnected FIFO (valid while !connected)
        bool connected = false;
    };

    // capacity >= 1 entries.
    explicit TokenHistory(uint32_t capacity);

    const Entry* find(const TokenTag& tag) const { return map_.find(tag); }
    // Records a token opened from `from`, not connected. False when no room can be made
    // without forgetting a live connected token. A tag already present is left as it is.
    bool remember(const TokenTag& tag, const wire::AddressKey& from, uint64_t expire_ms, uint64_t now_ms);
    enum class Mark : uint8_t { marked, already_connected, full };
    // The token produced a connection: kept until it expires (inserted if missing, e.g. when
    // restored from a journal after a restart).
    Mark mark_connected(const TokenTag& tag, const wire::AddressKey& from, uint64_t expire_ms, uint64_t now_ms);
    // The connection never started (no packet was sealed under its keys): the token may be
    // used again.
    void unmark_connected(const TokenTag& tag);
    void clear();

    // Calls fn(tag, expire_ms) for every connected token (for compacting a journal).
    template <class Fn>
    void for_each_connected(Fn&& fn) {
        map_.for_each([&](const TokenTag& tag, const Entry& e) {
            if (e.connected) fn(tag, e.expire_ms);
        });
    }

    size_t size() const { return map_.size(); }
    size_t connected() const { return connected_; }

private:
    struct Expiry {
        uint64_t expire_ms;
        TokenTag tag;
        bool operator>(const Expiry& o) const { return expire_ms > o.expire_ms; }
    };
    struct Queued {
        TokenTag tag;
        uint64_t order;
    };
    bool make_room(uint64_t now_ms);
    void push_expiry(const TokenTag& tag, uint64_t expire_ms);
    void push_unconnected(const TokenTag& tag, Entry& e);
    bool is_live(const Queued& q) const;
    void erase(const TokenTag& tag);

    FlatMap<TokenTag, Entry> map_;
    // Every entry by expiry (stale items, whose entry is gone, are skipped and purged).
    std::vector<Expiry> heap_;
    // Unconnected entries in insertion order; an item is stale unless its entry is still
    // unconnected with the same order number. Compacted when full, never truncated.
    std::vector<Queued> fifo_;
    size_t fifo_head_ = 0, fifo_count_ = 0;
    uint64_t next_order_ = 1;
    size_t connected_ = 0;
};

}  // namespace pomelo::server
