#include "tests/support/independent_peer.hpp"

#include <sodium.h>

#include <chrono>
#include <cstring>
#include <stdexcept>

namespace pomelo::test {

namespace indep {

namespace {

uint64_t le(std::span<const uint8_t> b) {
    uint64_t v = 0;
    for (size_t i = 0; i < b.size(); ++i) v |= uint64_t(b[i]) << (8 * i);
    return v;
}
void put_le(Bytes& out, uint64_t v, unsigned n) {
    for (unsigned i = 0; i < n; ++i) out.push_back(static_cast<uint8_t>(v >> (8 * i)));
}
std::array<uint8_t, 12> nonce_of(uint64_t sequence) {
    std::array<uint8_t, 12> n{};
    for (unsigned i = 0; i < 8; ++i) n[4 + i] = static_cast<uint8_t>(sequence >> (8 * i));
    return n;
}
std::array<uint8_t, 21> ad_of(uint64_t protocol_id, uint8_t prefix) {
    std::array<uint8_t, 21> ad{};
    std::memcpy(ad.data(), kVersion.data(), 12);
    for (unsigned i = 0; i < 8; ++i) ad[12 + i] = static_cast<uint8_t>(protocol_id >> (8 * i));
    ad[20] = prefix;
    return ad;
}

}  // namespace

const char* type_name(uint8_t type) {
    static const char* names[8] = {"REQUEST", "DENIED", "CHALLENGE", "RESPONSE", "PING", "PAYLOAD", "DISCONNECT", "PONG"};
    return names[type & 7];
}

unsigned canonical_length(uint64_t v) {
    unsigned n = 1;
    while (n < 8 && v >= (uint64_t(1) << (8 * n))) ++n;
    return n;
}

bool PublicToken::parse(std::span<const uint8_t> t, std::string& error) {
    if (t.size() != kTokenSize) return error = "token is not 2048 bytes", false;
    if (std::memcmp(t.data(), kVersion.data(), 12) != 0) return error = "token version is not POMELO 1.03", false;
    protocol_id = le(t.subspan(12, 8));
    create_ms = le(t.subspan(20, 8));
    expire_ms = le(t.subspan(28, 8));
    std::memcpy(nonce.data(), t.data() + 36, 24);
    std::memcpy(private_part.data(), t.data() + 60, 1024);
    timeout_seconds = static_cast<int32_t>(le(t.subspan(1084, 4)));
    address_count = static_cast<uint32_t>(le(t.subspan(1088, 4)));
    if (address_count == 0 || address_count > 32) return error = "token address count out of 1..32", false;
    size_t off = 1092;
    for (uint32_t i = 0; i < address_count; ++i) {
        if (t[off] == 1) off += 7;
        else if (t[off] == 2) off += 19;
        else return error = "token address type not 1 or 2", false;
    }
    std::memcpy(client_to_server.data(), t.data() + off, 32);
    std::memcpy(server_to_client.data(), t.data() + off + 32, 32);
    return true;
}

Bytes seal(uint8_t type, uint64_t sequence, std::span<const uint8_t> body, const Key& key, uint64_t protocol_id,
           unsigned sequence_bytes) {
    const unsigned n = sequence_bytes ? sequence_bytes : canonical_length(sequence);
    const uint8_t prefix = static_cast<uint8_t>(type << 4 | n);
    Bytes out;
    out.reserve(1 + n + body.size() + 16);
    out.push_back(prefix);
    put_le(out, sequence, n);
    const size_t header = out.size();
    out.resize(header + body.size() + 16);
    const auto nonce = nonce_of(sequence);
    const auto ad = ad_of(protocol_id, prefix);
    unsigned long long clen = 0;
    crypto_aead_chacha20poly1305_ietf_encrypt(out.data() + header, &clen, body.data(), body.size(), ad.data(),
                                              ad.size(), nullptr, nonce.data(), key.data());
    out.resize(header + clen);
    return out;
}

bool open(std::span<const uint8_t> d, const Key& key, uint64_t protocol_id, Opened& out) {
    if (d.size() < 18) return false;
    const uint8_t prefix = d[0];
    const uint8_t type = prefix >> 4;
    const unsigned n = prefix & 0x0f;
    if (prefix == 0 || type >= 8 || n < 1 || n > 8 || d.size() < 1 + n + 16) return false;
    out.type = type;
    out.sequence = le(d.subspan(1, n));
    const auto nonce = nonce_of(out.sequence);
    const auto ad = ad_of(protocol_id, prefix);
    const size_t clen = d.size() - 1 - n;
    out.body.resize(clen - 16);
    unsigned long long mlen = 0;
    if (crypto_aead_chacha20poly1305_ietf_decrypt(out.body.data(), &mlen, nullptr, d.data() + 1 + n, clen, ad.data(),
                                                  ad.size(), nonce.data(), key.data()) != 0)
        return false;
    out.body.resize(mlen);
    return true;
}

Bytes request_datagram(const PublicToken& t) {
    Bytes out;
    out.reserve(kRequestSize);
    out.push_back(0x00);
    out.insert(out.end(), kVersion.begin(), kVersion.end());
    put_le(out, t.protocol_id, 8);
    put_le(out, t.expire_ms, 8);
    out.insert(out.end(), t.nonce.begin(), t.nonce.end());
    out.insert(out.end(), t.private_part.begin(), t.private_part.end());
    return out;
}

}  // namespace indep

using namespace indep;

namespace {
uint64_t indep_le(const Bytes& b, size_t off, unsigned n) {
    uint64_t v = 0;
    for (unsigned i = 0; i < n; ++i) v |= uint64_t(b[off + i]) << (8 * i);
    return v;
}
}  // namespace

IndependentPeer::IndependentPeer(std::span<const uint8_t> token) {
    std::string error;
    if (!token_.parse(token, error)) throw std::runtime_error("IndependentPeer: " + error);
    request_ = indep::request_datagram(token_);
}

Bytes IndependentPeer::start() {
    state_ = State::requesting;
    return request_;
}

std::vector<Bytes> IndependentPeer::resend() const {
    if (state_ == State::requesting) return {request_};
    if (state_ == State::responding) return {response_};
    return {};
}

Bytes IndependentPeer::seal_next(uint8_t type, std::span<const uint8_t> body) {
    return seal(type, sequence_++, body, token_.client_to_server, token_.protocol_id);
}

Bytes IndependentPeer::ping() {
    const uint64_t id = static_cast<uint64_t>(client_id_);
    const unsigned c = canonical_length(id);
    const uint16_t ps = ping_sequence_++;
    const unsigned s = canonical_length(ps);
    Bytes body;
    body.push_back(static_cast<uint8_t>((c - 1) << 1 | (s - 1)));  // T = 0: a client sends no time
    for (unsigned i = 0; i < c; ++i) body.push_back(static_cast<uint8_t>(id >> (8 * i)));
    for (unsigned i = 0; i < s; ++i) body.push_back(static_cast<uint8_t>(ps >> (8 * i)));
    return seal_next(indep::ping, body);
}

Bytes IndependentPeer::pong_for(uint16_t ping_sequence) {
    const uint64_t received_ns = static_cast<uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
            .count());
    const unsigned s = canonical_length(ping_sequence), r = canonical_length(received_ns);
    Bytes body;
    body.push_back(static_cast<uint8_t>((s - 1) << 6 | (r - 1) << 3 | 0));  // D = 1: delta 0
    for (unsigned i = 0; i < s; ++i) body.push_back(static_cast<uint8_t>(ping_sequence >> (8 * i)));
    for (unsigned i = 0; i < r; ++i) body.push_back(static_cast<uint8_t>(received_ns >> (8 * i)));
    body.push_back(0);
    return seal_next(indep::pong, body);
}

Bytes IndependentPeer::payload(std::span<const uint8_t> data) { return seal_next(indep::payload, data); }

Bytes IndependentPeer::disconnect() { return seal_next(indep::disconnect, {}); }

void IndependentPeer::receive(std::span<const uint8_t> d, std::vector<Bytes>& out) {
    Captured c;
    c.datagram.assign(d.begin(), d.end());
    Opened o;
    if (!open(d, token_.server_to_client, token_.protocol_id, o)) {
        ++unauthenticated_;
        captured_.push_back(std::move(c));
        return;
    }
    c.authenticated = true;
    c.type = o.type;
    c.sequence = o.sequence;
    c.body = o.body;
    captured_.push_back(std::move(c));
    ++by_type_[o.type];
    const Bytes& b = o.body;
    switch (o.type) {
        case indep::challenge:
            if (b.size() != kChallengeBody) {
                ++malformed_;
                return;
            }
            if (state_ == State::requesting || state_ == State::responding) {
                // §9 (ours): RESPONSE sequence 2^63 | r, r random per attempt; resends identical.
                uint64_t r = 0;
                randombytes_buf(&r, sizeof r);
                response_ = seal(indep::response, (uint64_t(1) << 63) | (r >> 2), b, token_.client_to_server,
                                 token_.protocol_id, 8);
                state_ = State::responding;
                out.push_back(response_);
            }
            return;
        case indep::denied:
            if (!b.empty()) ++malformed_;
            if (state_ == State::requesting || state_ == State::responding) state_ = State::denied;
            return;
        case indep::ping: {
            if (b.size() < 3) {
                ++malformed_;
                return;
            }
            const unsigned t = b[0] >> 4, cb = ((b[0] >> 1) & 7) + 1, s = (b[0] & 1) + 1;
            if (t > 8 || b.size() != 1 + t + cb + s) {
                ++malformed_;
                return;
            }
            const int64_t id = static_cast<int64_t>(indep_le(b, 1 + t, cb));
            const uint16_t ps = static_cast<uint16_t>(indep_le(b, 1 + t + cb, s));
            if (client_id_known_ && id != client_id_) ++malformed_;
            client_id_ = id;
            client_id_known_ = true;
            if (state_ == State::responding) {
                state_ = State::connected;
                out.push_back(pong_for(ps));
                out.push_back(ping());  // a reference server confirms on PING only
                return;
            }
            if (state_ == State::connected) out.push_back(pong_for(ps));
            return;
        }
        case indep::payload:
            if (b.empty() || b.size() > 1200) ++malformed_;
            payloads_.push_back(b);
            return;
        case indep::disconnect:
            if (!b.empty()) ++malformed_;
            state_ = State::disconnected;
            return;
        case indep::pong:
            return;
        default:  // REQUEST / RESPONSE are never sent to a client
            ++malformed_;
            return;
    }
}

}  // namespace pomelo::test
