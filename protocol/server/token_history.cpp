#include "protocol/server/token_history.hpp"

#include <algorithm>
#include <functional>

namespace pomelo::server {

TokenHistory::TokenHistory(uint32_t capacity)
    : map_(std::max<uint32_t>(capacity, 1)), seen_(2 * size_t{std::max<uint32_t>(capacity, 1)}) {
    heap_.reserve(map_.capacity());
}

void TokenHistory::clear() {
    map_.clear();
    heap_.clear();
    seen_head_ = seen_count_ = 0;
}

bool TokenHistory::make_room(uint64_t now_ms) {
    // 1. Connected tokens that expired.
    while (!heap_.empty() && heap_.front().expire_ms <= now_ms) {
        std::pop_heap(heap_.begin(), heap_.end(), std::greater<>{});
        map_.erase(heap_.back().tag);
        heap_.pop_back();
    }
    if (!map_.full()) return true;
    // 2. The oldest token that never connected (stale ring entries, already gone or since
    //    connected, are skipped).
    while (seen_count_) {
        const TokenTag tag = seen_[seen_head_];
        seen_head_ = (seen_head_ + 1) % seen_.size();
        --seen_count_;
        if (const Entry* e = map_.find(tag); e && !e->connected) {
            map_.erase(tag);
            return true;
        }
    }
    return false;  // 3. every entry is a live connected token
}

void TokenHistory::push_seen(const TokenTag& tag) {
    if (seen_count_ == seen_.size()) {  // only stale entries can fill it twice over: drop one
        seen_head_ = (seen_head_ + 1) % seen_.size();
        --seen_count_;
    }
    seen_[(seen_head_ + seen_count_) % seen_.size()] = tag;
    ++seen_count_;
}

bool TokenHistory::remember(const TokenTag& tag, const wire::AddressKey& from, uint64_t expire_ms, uint64_t now_ms) {
    if (map_.find(tag)) return true;
    if (map_.full() && !make_room(now_ms)) return false;
    map_.insert(tag, Entry{from, expire_ms, false});
    push_seen(tag);
    return true;
}

bool TokenHistory::mark_connected(const TokenTag& tag, const wire::AddressKey& from, uint64_t expire_ms,
                                  uint64_t now_ms) {
    Entry* e = map_.find(tag);
    if (!e) {
        if (map_.full() && !make_room(now_ms)) return false;
        map_.insert(tag, Entry{from, expire_ms, false});
        e = map_.find(tag);
    }
    if (e->connected) return true;
    e->connected = true;
    heap_.push_back({e->expire_ms, tag});
    std::push_heap(heap_.begin(), heap_.end(), std::greater<>{});
    return true;
}

void TokenHistory::unmark_connected(const TokenTag& tag) {
    Entry* e = map_.find(tag);
    if (!e || !e->connected) return;
    e->connected = false;
    // Out of the expiry heap; rare (a connection that could not be handed to its shard).
    auto it = std::find_if(heap_.begin(), heap_.end(), [&](const Expiry& x) { return x.tag == tag; });
    if (it != heap_.end()) {
        heap_.erase(it);
        std::make_heap(heap_.begin(), heap_.end(), std::greater<>{});
    }
    push_seen(tag);
}

}  // namespace pomelo::server
