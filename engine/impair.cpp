#include "engine/impair.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <stdexcept>

namespace pomelo::engine {

namespace {

// A probability as a threshold on a uniform 64-bit number.
uint64_t threshold_of(double p) {
    if (p <= 0) return 0;
    if (p >= 1) return UINT64_MAX;
    return static_cast<uint64_t>(std::ldexp(p, 64));
}

bool parse_fraction(std::string_view v, double& out) {
    const bool percent = v.ends_with('%');
    if (percent) v.remove_suffix(1);
    const std::string text(v);
    char* end = nullptr;
    const double x = std::strtod(text.c_str(), &end);
    if (text.empty() || end != text.c_str() + text.size() || !std::isfinite(x)) return false;
    out = percent ? x / 100 : x;
    return out >= 0 && out <= 1;
}

bool parse_duration(std::string_view v, uint64_t& out) {
    static constexpr struct {
        const char* suffix;
        double ns;
    } kUnits[] = {{"ns", 1}, {"us", 1e3}, {"ms", 1e6}, {"s", 1e9}};
    for (const auto& u : kUnits) {
        if (!v.ends_with(u.suffix)) continue;
        const std::string text(v.substr(0, v.size() - std::char_traits<char>::length(u.suffix)));
        char* end = nullptr;
        const double x = std::strtod(text.c_str(), &end);
        if (text.empty() || end != text.c_str() + text.size() || !std::isfinite(x) || x < 0 || x * u.ns > 1e12)
            return false;
        out = static_cast<uint64_t>(x * u.ns);
        return true;
    }
    return false;
}

std::string duration_text(uint64_t ns) {
    char buf[32];
    if (ns % 1'000'000 == 0) std::snprintf(buf, sizeof buf, "%llums", static_cast<unsigned long long>(ns / 1'000'000));
    else std::snprintf(buf, sizeof buf, "%lluus", static_cast<unsigned long long>(ns / 1000));
    return buf;
}

}  // namespace

bool ImpairmentConfig::parse(const std::string& text, ImpairmentConfig& out, std::string& error) {
    ImpairmentConfig c;
    size_t at = 0;
    while (at <= text.size()) {
        const size_t comma = std::min(text.find(',', at), text.size());
        const std::string_view item = std::string_view(text).substr(at, comma - at);
        at = comma + 1;
        const size_t eq = item.find('=');
        const std::string_view name = item.substr(0, eq), value = eq == item.npos ? "" : item.substr(eq + 1);
        bool ok = eq != item.npos;
        if (!ok) {
        } else if (name == "loss") {
            ok = parse_fraction(value, c.loss);
        } else if (name == "dup" || name == "duplicate") {
            ok = parse_fraction(value, c.duplicate);
        } else if (name == "reorder") {
            ok = parse_fraction(value, c.reorder);
        } else if (name == "delay") {
            ok = parse_duration(value, c.delay_ns);
        } else if (name == "jitter") {
            ok = parse_duration(value, c.jitter_ns);
        } else if (name == "reorder-delay") {
            ok = parse_duration(value, c.reorder_ns);
        } else if (name == "seed") {
            const std::string v(value);
            char* end = nullptr;
            c.seed = std::strtoull(v.c_str(), &end, 10);
            ok = !v.empty() && end == v.c_str() + v.size();
        } else {
            error = "'" + std::string(item) + "': unknown item (want loss, dup, reorder, delay, jitter, reorder-delay, seed)";
            return false;
        }
        if (!ok) {
            error = "'" + std::string(item) + "': want NAME=VALUE, a fraction 0..1 or a percentage for loss, dup and "
                    "reorder, a duration (e.g. 2ms, 500us) for delay, jitter and reorder-delay";
            return false;
        }
    }
    out = c;
    return true;
}

std::string ImpairmentConfig::to_string() const {
    char buf[160];
    std::snprintf(buf, sizeof buf, "loss=%g%%,dup=%g%%,reorder=%g%%,delay=%s,jitter=%s,reorder-delay=%s,seed=%llu",
                  loss * 100, duplicate * 100, reorder * 100, duration_text(delay_ns).c_str(),
                  duration_text(jitter_ns).c_str(), reorder_ns ? duration_text(reorder_ns).c_str() : "auto",
                  static_cast<unsigned long long>(seed));
    return buf;
}

ImpairedPort::ImpairedPort(drivers::Port& inner, const ImpairmentConfig& config)
    : drivers::Port(1),
      inner_(inner),
      config_(config),
      loss_threshold_(threshold_of(config.loss)),
      duplicate_threshold_(threshold_of(config.duplicate)),
      reorder_threshold_(threshold_of(config.reorder)),
      rng_(config.seed ? config.seed : 1) {
    if (inner.queue_count() != 1) throw std::invalid_argument("impaired port: the inner port must have one queue");
    if (config_.capacity < 256) throw std::invalid_argument("impaired port: capacity under 256 datagrams");
    if (!config_.reorder_ns) config_.reorder_ns = config_.delay_ns + config_.jitter_ns + 1'000'000;
    tx_.stats = &tx_stats_;
    rx_.stats = &rx_stats_;
    tx_.heap.reserve(config_.capacity);
    rx_.heap.reserve(config_.capacity);
    pkts_.resize(64);
    peers_.resize(64);
    locals_.resize(64);
}

ImpairedPort::~ImpairedPort() {
    release_tx(0, true);
    for (const Held& h : rx_.heap) rte_pktmbuf_free(h.m);
}

uint32_t ImpairedPort::mbufs_held() const { return inner_.mbufs_held() + 2 * config_.capacity; }

// xorshift64*: fast, and good enough to decide a datagram's fate.
uint64_t ImpairedPort::random() {
    rng_ ^= rng_ >> 12;
    rng_ ^= rng_ << 25;
    rng_ ^= rng_ >> 27;
    return rng_ * 0x2545F4914F6CDD1Dull;
}

static bool earlier(const auto& a, const auto& b) {
    return a.due_ns != b.due_ns ? a.due_ns > b.due_ns : a.order > b.order;  // std heaps are max-heaps
}

void ImpairedPort::hold(Direction& d, rte_mbuf* m, const wire::Address& peer, uint16_t local, uint64_t due_ns) {
    if (d.heap.size() >= config_.capacity) {  // full: never grow (no allocation), pass it now
        ++d.stats->overflowed;
        ++d.stats->delivered;
        if (&d == &tx_) {
            inner_.tx_burst(0, &m, &peer, &local, 1);
        } else {
            rte_pktmbuf_free(m);  // rx_burst leaves room for a whole burst and its copies: not reached
        }
        return;
    }
    d.heap.push_back({due_ns, d.next_order++, m, peer, local});
    std::push_heap(d.heap.begin(), d.heap.end(), [](const Held& a, const Held& b) { return earlier(a, b); });
}

void ImpairedPort::admit(Direction& d, rte_mbuf* m, const wire::Address& peer, uint16_t local, uint64_t now_ns) {
    ++d.stats->seen;
    if (chance(loss_threshold_)) {
        ++d.stats->lost;
        rte_pktmbuf_free(m);
        return;
    }
    rte_mbuf* copies[2] = {m, nullptr};
    if (chance(duplicate_threshold_)) {
        copies[1] = rte_pktmbuf_copy(m, m->pool, 0, UINT32_MAX);
        if (copies[1]) ++d.stats->duplicated;
    }
    for (rte_mbuf* c : copies) {
        if (!c) continue;
        uint64_t due = now_ns + config_.delay_ns;
        if (config_.jitter_ns) due += random() % (config_.jitter_ns + 1);
        if (chance(reorder_threshold_)) {
            due += config_.reorder_ns;
            ++d.stats->reordered;
        }
        hold(d, c, peer, local, due);
    }
}

void ImpairedPort::release_tx(uint64_t now_ns, bool all) {
    auto cmp = [](const Held& a, const Held& b) { return earlier(a, b); };
    while (!tx_.heap.empty() && (all || tx_.heap.front().due_ns <= now_ns)) {
        uint16_t k = 0;
        while (k < pkts_.size() && !tx_.heap.empty() && (all || tx_.heap.front().due_ns <= now_ns)) {
            std::pop_heap(tx_.heap.begin(), tx_.heap.end(), cmp);
            const Held& h = tx_.heap.back();
            pkts_[k] = h.m;
            peers_[k] = h.peer;
            locals_[k] = h.local;
            ++k;
            tx_.heap.pop_back();
        }
        tx_stats_.delivered += k;
        inner_.tx_burst(0, pkts_.data(), peers_.data(), locals_.data(), k);
    }
    mirror_stats();
}

uint16_t ImpairedPort::tx_burst(uint16_t queue, rte_mbuf** pkts, const wire::Address* to, const uint16_t* local_index,
                                uint16_t n) {
    const uint64_t now_ns = clock_.ns();
    for (uint16_t i = 0; i < n; ++i)
        admit(tx_, pkts[i], to[i], local_index ? local_index[i] : wire::kAnyLocal, now_ns);
    (void)queue;  // one queue: checked at construction
    release_tx(now_ns, false);
    return n;
}

uint16_t ImpairedPort::rx_burst(uint16_t, rte_mbuf** pkts, wire::Address* from, uint16_t* local_index, uint16_t n) {
    const uint64_t now_ns = clock_.ns();
    release_tx(now_ns, false);  // a caller that only polls still sends what came due
    // Take in what arrived while there is room for a burst and its copies, then hand out what
    // is due.
    if (config_.capacity - rx_.heap.size() >= 2 * pkts_.size()) {
        const uint16_t got =
            inner_.rx_burst(0, pkts_.data(), peers_.data(), locals_.data(), static_cast<uint16_t>(pkts_.size()));
        for (uint16_t i = 0; i < got; ++i) admit(rx_, pkts_[i], peers_[i], locals_[i], now_ns);
    }
    auto cmp = [](const Held& a, const Held& b) { return earlier(a, b); };
    uint16_t k = 0;
    while (k < n && !rx_.heap.empty() && rx_.heap.front().due_ns <= now_ns) {
        std::pop_heap(rx_.heap.begin(), rx_.heap.end(), cmp);
        const Held& h = rx_.heap.back();
        pkts[k] = h.m;
        from[k] = h.peer;
        if (local_index) local_index[k] = h.local;
        ++k;
        rx_.heap.pop_back();
    }
    rx_stats_.delivered += k;
    mirror_stats();
    return k;
}

}  // namespace pomelo::engine
