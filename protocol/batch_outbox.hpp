// An Outbox that seals in bursts: submit() only records the datagram; flush() seals every
// recorded datagram with one BurstAead call and hands them to transmit(). The engine's send
// pass is this outbox over mbufs; the state machines never know the difference.
//
// Each queued datagram owns a copy of its key (OutDatagram), so nothing the state machines do
// between submit() and flush() can change what a datagram is sealed with.
#pragma once

#include <vector>

#include "protocol/crypto/burst.hpp"
#include "protocol/outbox.hpp"

namespace pomelo {

struct SealedDatagram {
    wire::Address to;
    uint16_t local;  // OutDatagram::local
    uint64_t link;   // OutDatagram::link
    std::span<const uint8_t> bytes;
    wire::PacketType type;
    void* context;  // what next_buffer() returned it with (e.g. the mbuf)
};

class BatchOutbox : public Outbox {
public:
    BatchOutbox(crypto::BurstAead& aead, uint32_t burst);

    std::span<uint8_t> acquire() final;
    void submit(OutDatagram&& d) final;
    // Seals what was submitted and transmits it. Call at the end of every pass.
    void flush();
    size_t queued() const { return queued_.size(); }

protected:
    struct Buffer {
        std::span<uint8_t> bytes;  // at least kMaxDatagramSize
        void* context = nullptr;
    };
    // A buffer for the next datagram; empty bytes when none is free.
    virtual Buffer next_buffer() = 0;
    // Takes every sealed datagram of a flush, in submit order; a datagram whose seal failed
    // has empty bytes (its buffer must still be released).
    virtual void transmit(std::span<SealedDatagram> datagrams) = 0;
    // Gives back a buffer acquired but never submitted.
    virtual void release(Buffer) {}

private:
    crypto::BurstAead& aead_;
    uint32_t burst_;
    Buffer lent_{};
    bool lent_valid_ = false;
    std::vector<OutDatagram> queued_;
    std::vector<Buffer> buffers_;
    std::vector<wire::PacketAd> ads_;
    std::vector<crypto::AeadOp> ops_;
    std::vector<SealedDatagram> sealed_;
};

}  // namespace pomelo
