#include "protocol/server/token_history.hpp"

#include <algorithm>
#include <functional>

namespace pomelo::server {

TokenHistory::TokenHistory(uint32_t capacity)
    : map_(std::max<uint32_t>(capacity, 1)), fifo_(2 * size_t{std::max<uint32_t>(capacity, 1)}) {
    heap_.reserve(2 * map_.capacity() + 1);
}

void TokenHistory::clear() {
    map_.clear();
    heap_.clear();
    fifo_head_ = fifo_count_ = 0;
    connected_ = 0;
}

void TokenHistory::erase(const TokenTag& tag) {
    if (const Entry* e = map_.find(tag); e && e->connected) --connected_;
    map_.erase(tag);
}

void TokenHistory::push_expiry(const TokenTag& tag, uint64_t expire_ms) {
    if (heap_.size() >= 2 * map_.capacity()) {
        // Mostly stale items (entries evicted through the FIFO): rebuild from the table.
        heap_.clear();
        map_.for_each([&](const TokenTag& t, const Entry& e) { heap_.push_back({e.expire_ms, t}); });
        std::make_heap(heap_.begin(), heap_.end(), std::greater<>{});
    }
    heap_.push_back({expire_ms, tag});
    std::push_heap(heap_.begin(), heap_.end(), std::greater<>{});
}

bool TokenHistory::is_live(const Queued& q) const {
    const Entry* e = map_.find(q.tag);
    return e && !e->connected && e->order == q.order;
}

void TokenHistory::push_unconnected(const TokenTag& tag, Entry& e) {
    e.order = next_order_++;
    if (fifo_count_ == fifo_.size()) {
        // Full of items, at most capacity of them live: squeeze out the stale ones, keeping
        // the order. The ring is full, so rotating it makes it linear; then kept <= i.
        std::rotate(fifo_.begin(), fifo_.begin() + static_cast<std::ptrdiff_t>(fifo_head_), fifo_.end());
        size_t kept = 0;
        for (size_t i = 0; i < fifo_count_; ++i)
            if (is_live(fifo_[i])) fifo_[kept++] = fifo_[i];
        fifo_head_ = 0;
        fifo_count_ = kept;
    }
    fifo_[(fifo_head_ + fifo_count_) % fifo_.size()] = {tag, e.order};
    ++fifo_count_;
}

bool TokenHistory::make_room(uint64_t now_ms) {
    // 1. Expired entries, connected or not.
    while (!heap_.empty() && heap_.front().expire_ms <= now_ms) {
        std::pop_heap(heap_.begin(), heap_.end(), std::greater<>{});
        const Expiry x = heap_.back();
        heap_.pop_back();
        if (const Entry* e = map_.find(x.tag); e && e->expire_ms == x.expire_ms) erase(x.tag);
    }
    if (!map_.full()) return true;
    // 2. The oldest token that never connected.
    while (fifo_count_) {
        const Queued q = fifo_[fifo_head_];
        fifo_head_ = (fifo_head_ + 1) % fifo_.size();
        --fifo_count_;
        if (is_live(q)) {
            erase(q.tag);
            return true;
        }
    }
    return false;  // 3. every entry is a live connected token
}

bool TokenHistory::remember(const TokenTag& tag, const wire::AddressKey& from, uint64_t expire_ms, uint64_t now_ms) {
    if (map_.find(tag)) return true;
    if (map_.full() && !make_room(now_ms)) return false;
    Entry* e = map_.insert(tag, Entry{from, expire_ms, 0, false});
    push_unconnected(tag, *e);
    push_expiry(tag, expire_ms);
    return true;
}

TokenHistory::Mark TokenHistory::mark_connected(const TokenTag& tag, const wire::AddressKey& from, uint64_t expire_ms,
                                                uint64_t now_ms) {
    Entry* e = map_.find(tag);
    if (!e) {
        if (map_.full() && !make_room(now_ms)) return Mark::full;
        e = map_.insert(tag, Entry{from, expire_ms, 0, false});
        push_expiry(tag, expire_ms);
    }
    if (e->connected) return Mark::already_connected;
    e->connected = true;  // its FIFO item turns stale
    ++connected_;
    return Mark::marked;
}

void TokenHistory::unmark_connected(const TokenTag& tag) {
    Entry* e = map_.find(tag);
    if (!e || !e->connected) return;
    e->connected = false;
    --connected_;
    push_unconnected(tag, *e);
}

}  // namespace pomelo::server
