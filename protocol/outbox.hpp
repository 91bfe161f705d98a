// Where the state machines put the datagrams they send. They write header and plaintext body
// into a buffer the outbox lends them and hand back a seal request; the outbox decides when
// to seal (at once, or later for the whole burst) and how to transmit.
#pragma once

#include <cstdint>
#include <span>

#include "protocol/crypto/burst.hpp"
#include "protocol/crypto/key.hpp"
#include "protocol/wire/address.hpp"
#include "protocol/wire/packet.hpp"

namespace pomelo {

using wire::kAnyLocal;

// A datagram queued for sealing. It owns a copy of its key: whatever the state machine does
// after submit() (close the peer, recycle a pending record, destroy a token), the datagram
// still seals under the key it was written for. WireGuard pins keypairs to in-flight packets
// for the same reason. The copy wipes itself when the outbox drops the entry.
struct OutDatagram {
    wire::Address to;
    uint16_t local = kAnyLocal;  // index of the local endpoint it leaves from (several --bind)
    // The link-layer way back to a peer not known yet (a handshake reply goes back where its
    // datagram came from), opaque to the protocol (the engine's drivers::LinkHop); 0: none.
    uint64_t link = 0;
    size_t header_size = 0;  // 0: the buffer holds a finished datagram of body_size bytes (REQUEST)
    size_t body_size = 0;
    wire::PacketType type = wire::PacketType::payload;
    uint64_t sequence = 0;
    wire::PacketContext ctx;
    crypto::Key key;  // unused when header_size is 0
    crypto::SharedPreparedKey prepared;  // key prepared for the burst backend, if the sender keeps one
};

class Outbox {
public:
    virtual ~Outbox() = default;
    // A buffer of at least kMaxDatagramSize bytes for the next datagram, or an empty span if
    // none is free (the caller counts a no_tx_buffer drop).
    virtual std::span<uint8_t> acquire() = 0;
    // Takes the buffer from the last acquire(): seal (unless header_size is 0) and send.
    virtual void submit(OutDatagram&& d) = 0;
};

// Seals into the lent buffer straight away; subclasses only transmit. For the simulation,
// the kernel-socket paths and tests.
class ImmediateOutbox : public Outbox {
public:
    std::span<uint8_t> acquire() override { return buffer_; }
    void submit(OutDatagram&& d) override {
        size_t n = d.body_size;
        if (d.header_size) n = wire::seal_packet(d.ctx, d.key, d.sequence, buffer_, d.header_size, d.body_size);
        if (n) transmit(d.to, std::span<const uint8_t>(buffer_, n), d.type);
    }

protected:
    virtual void transmit(const wire::Address& to, std::span<const uint8_t> datagram, wire::PacketType type) = 0;

private:
    uint8_t buffer_[wire::kMaxDatagramSize];
};

// Writes a packet of an encrypted type through an outbox: header, body via `write_body`
// (returns the body size; 0 is valid only for DENIED/DISCONNECT), then submit.
// `key` is copied into the queued datagram (see OutDatagram), `prepared` shared with it.
template <class WriteBody>
bool emit(Outbox& out, const wire::Address& to, uint16_t local, wire::PacketType type, uint64_t sequence,
          const wire::PacketContext& ctx, const crypto::Key& key, WriteBody&& write_body, uint64_t link = 0,
          const crypto::SharedPreparedKey& prepared = {}) {
    std::span<uint8_t> buf = out.acquire();
    if (buf.size() < wire::kMaxDatagramSize) return false;
    const size_t header = wire::write_header(type, sequence, 0, buf);
    const size_t body = write_body(buf.subspan(header, buf.size() - header - wire::kTagSize));
    out.submit({to, local, link, header, body, type, sequence, ctx, key, prepared});
    return true;
}

}  // namespace pomelo
