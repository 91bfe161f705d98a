#include "protocol/wire/request.hpp"

#include "protocol/wire/bytes.hpp"

namespace pomelo::wire {

size_t write_request(const ConnectToken& t, std::span<uint8_t> out) {
    ByteWriter w(out);
    w.u8(0);
    w.bytes(crypto::version_info(t.suite));
    w.u64(t.protocol_id);
    w.u64(t.expire_ms);
    w.bytes(t.nonce);
    w.bytes(t.encrypted_private);
    return w.failed() ? 0 : w.written();
}

WireError read_request(std::span<const uint8_t> d, RequestPacket& out) {
    if (d.size() < kMinDatagramSize) return WireError::datagram_too_short;
    if (d[0] != 0) return WireError::bad_prefix;
    if (d.size() != kRequestSize) return WireError::bad_body_size;
    ByteReader r(d.subspan(1));
    auto suite = crypto::suite_from_version(r.bytes(kVersionInfoSize));
    if (!suite) return WireError::bad_version;
    out.suite = *suite;
    out.protocol_id = r.u64();
    out.expire_ms = r.u64();
    out.nonce = r.bytes(kConnectTokenNonceSize);
    out.encrypted_private = r.bytes(kPrivateTokenSize);
    return WireError::ok;
}

WireError open_request(const RequestPacket& q, const crypto::Key& private_key, PrivateConnectToken& out) {
    if (q.nonce.size() != kConnectTokenNonceSize || q.encrypted_private.size() != kPrivateTokenSize)
        return WireError::bad_body_size;
    return open_private_token(q.suite, q.protocol_id, q.expire_ms, q.nonce.first<kConnectTokenNonceSize>(),
                              private_key, q.encrypted_private.first<kPrivateTokenSize>(), out);
}

}  // namespace pomelo::wire
