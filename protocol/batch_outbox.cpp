#include "protocol/batch_outbox.hpp"

namespace pomelo {

BatchOutbox::BatchOutbox(crypto::BurstAead& aead, uint32_t burst) : aead_(aead), burst_(burst) {
    queued_.reserve(burst);
    buffers_.reserve(burst);
    ads_.resize(burst);
    ops_.reserve(burst);
    sealed_.reserve(burst);
}

std::span<uint8_t> BatchOutbox::acquire() {
    if (lent_valid_) release(lent_);  // acquired before but never submitted
    if (queued_.size() >= burst_) flush();
    lent_ = next_buffer();
    lent_valid_ = lent_.bytes.size() >= wire::kMaxDatagramSize;
    if (!lent_valid_) {
        if (!lent_.bytes.empty()) release(lent_);
        return {};
    }
    return lent_.bytes;
}

void BatchOutbox::submit(OutDatagram&& d) {
    if (!lent_valid_) return;
    queued_.push_back(std::move(d));
    buffers_.push_back(lent_);
    lent_valid_ = false;
}

void BatchOutbox::flush() {
    if (queued_.empty()) return;
    ops_.clear();
    for (size_t i = 0; i < queued_.size(); ++i) {
        const OutDatagram& d = queued_[i];
        if (!d.header_size) continue;  // already a finished datagram
        uint8_t* base = buffers_[i].bytes.data();
        ads_[i] = wire::packet_ad(d.ctx, base[0]);
        ops_.push_back({d.ctx.suite, &d.key, d.prepared.get(), d.sequence, ads_[i].data(), static_cast<uint32_t>(ads_[i].size()),
                        base + d.header_size, static_cast<uint32_t>(d.body_size),
                        base + d.header_size + d.body_size, false});
    }
    aead_.seal(ops_);
    sealed_.clear();
    size_t op = 0;
    for (size_t i = 0; i < queued_.size(); ++i) {
        const OutDatagram& d = queued_[i];
        size_t size = d.body_size;
        if (d.header_size) size = ops_[op++].ok ? d.header_size + d.body_size + wire::kTagSize : 0;
        sealed_.push_back({d.to, d.local, d.link, std::span<const uint8_t>(buffers_[i].bytes.data(), size), d.type, buffers_[i].context});
    }
    queued_.clear();  // wipes the keys
    buffers_.clear();
    transmit(sealed_);
}

}  // namespace pomelo
