#include "protocol/client/client.hpp"

#include <cstring>

#include "protocol/crypto/aead.hpp"
#include "protocol/wire/request.hpp"

namespace pomelo::client {

using wire::PacketType;
using wire::WireError;

const char* to_string(State s) {
    switch (s) {
        case State::disconnected: return "disconnected";
        case State::sending_request: return "sending request";
        case State::sending_response: return "sending response";
        case State::connected: return "connected";
        case State::disconnecting: return "disconnecting";
    }
    return "?";
}

const char* to_string(Outcome o) {
    switch (o) {
        case Outcome::none: return "none";
        case Outcome::invalid_token: return "invalid token";
        case Outcome::token_expired: return "token expired";
        case Outcome::denied: return "denied";
        case Outcome::request_timed_out: return "request timed out";
        case Outcome::response_timed_out: return "response timed out";
        case Outcome::connection_lost: return "connection lost";
        case Outcome::disconnected_by_server: return "disconnected by server";
        case Outcome::disconnected: return "disconnected";
        case Outcome::token_already_used: return "token already used";
    }
    return "?";
}

Client::Client(const Config& config, Events& events, Outbox& out) : config_(config), events_(events), out_(out) {}

void Client::reset() {
    state_ = State::disconnected;
    next_ns_ = UINT64_MAX;
    token_.client_to_server_key.wipe();
    token_.server_to_client_key.wipe();
}

bool Client::connect(std::span<const uint8_t> token, const Now& now) {
    reset();
    outcome_ = Outcome::none;
    if (wire::decode_connect_token(token, token_) != WireError::ok) {
        outcome_ = Outcome::invalid_token;
        return false;
    }
    if (token_.expire_ms < now.unix_ms) {
        outcome_ = Outcome::token_expired;
        return false;
    }
    // A token whose keys this client already sealed connection packets with would restart its
    // sequences at 0 under them (§9: one token, one connection): refused.
    std::array<uint8_t, wire::kRequestSize> request;
    wire::write_request(token_, request);
    std::array<uint8_t, wire::kTagSize> tag;
    std::memcpy(tag.data(), request.data() + wire::kRequestTagOffset, tag.size());
    for (size_t i = 0; i < std::min(used_next_, used_tokens_.size()); ++i)
        if (used_tokens_[i] == tag) {
            token_.client_to_server_key.wipe();
            token_.server_to_client_key.wipe();
            outcome_ = Outcome::token_already_used;
            return false;
        }
    ctx_ = {token_.suite, token_.protocol_id};
    timeout_ns_ = token_.timeout_seconds > 0 ? uint64_t(token_.timeout_seconds) * kSecond : 0;
    wire::write_request(token_, request_);
    // One sequence space per token: the counter is never reset, so no (key, nonce) pair can
    // repeat even across address fallbacks (§9).
    send_sequence_ = 0;
    client_id_ = 0;
    pings_ = PingTracker{};
    clock_.reset();
    address_index_ = 0;
    start_address(now);
    return true;
}

void Client::start_address(const Now& now) {
    replay_.reset();
    pong_sent_ = false;
    state_ = State::sending_request;
    phase_start_ns_ = now.ns;
    send_stored(request_, PacketType::request);
    next_ns_ = now.ns + config_.resend_interval_ns;
}

void Client::fail_attempt(Outcome why, const Now& now) {
    if (address_index_ + 1 >= token_.addresses.count) return finish(why);
    if (token_.expire_ms < now.unix_ms) return finish(Outcome::token_expired);
    ++address_index_;  // the reference runs past the last address here (§19.16)
    start_address(now);
}

void Client::finish(Outcome why) {
    reset();
    outcome_ = why;
    events_.on_disconnected(why);
}

// ---------------------------------------------------------------- sending

void Client::send_stored(std::span<const uint8_t> datagram, PacketType type) {
    std::span<uint8_t> buf = out_.acquire();
    if (buf.size() < datagram.size()) return counters_.drop(DropReason::no_tx_buffer);
    std::memcpy(buf.data(), datagram.data(), datagram.size());
    out_.submit({server_address(), kAnyLocal, 0, 0, datagram.size(), type, 0, ctx_, {}, {}});
    counters_.sent(type);
}

bool Client::emit_packet(PacketType type, const auto& write_body) {
    if (!emit(out_, server_address(), kAnyLocal, type, send_sequence_++, ctx_, token_.client_to_server_key, write_body)) {
        counters_.drop(DropReason::no_tx_buffer);
        return false;
    }
    counters_.sent(type);
    return true;
}

bool Client::send_ping(const Now& now) {
    const wire::PingBody ping{client_id_, pings_.on_ping_sent(now.ns), false, 0};  // clients never attach time
    return emit_packet(PacketType::ping, [&](std::span<uint8_t> b) { return wire::write_ping_body(ping, b); });
}

bool Client::send_pong(uint16_t ping_sequence, uint64_t recv_ns, const Now& now) {
    const wire::PongBody pong{ping_sequence, recv_ns, now.ns - recv_ns};
    if (!emit_packet(PacketType::pong, [&](std::span<uint8_t> b) { return wire::write_pong_body(pong, b); }))
        return false;
    pong_sent_ = true;
    last_pong_ns_ = now.ns;
    return true;
}

bool Client::send_disconnect() {
    return emit_packet(PacketType::disconnect, [](std::span<uint8_t>) { return size_t{0}; });
}

bool Client::send(std::span<const uint8_t> payload, const Now&) {
    if ((state_ != State::connected && state_ != State::disconnecting) || payload.empty() ||
        payload.size() > wire::kMaxPayloadSize)
        return false;
    return emit_packet(PacketType::payload, [&](std::span<uint8_t> b) {
        std::memcpy(b.data(), payload.data(), payload.size());
        return payload.size();
    });
}

bool Client::disconnect(const Now& now) {
    if (state_ != State::connected) return false;
    state_ = State::disconnecting;
    disconnects_sent_ = 1;
    send_disconnect();
    if (disconnects_sent_ >= config_.disconnect_packets) {
        finish(Outcome::disconnected);
        return true;
    }
    next_ns_ = now.ns + config_.resend_interval_ns;
    return true;
}

// ---------------------------------------------------------------- receiving (§11.3)

static bool allowed(State s, PacketType t) {
    switch (t) {
        case PacketType::denied: return s == State::sending_request || s == State::sending_response;
        case PacketType::challenge: return s == State::sending_request;
        case PacketType::ping: return s == State::sending_response || s == State::connected;
        case PacketType::payload:
        case PacketType::pong:
        case PacketType::disconnect: return s == State::connected;
        default: return false;
    }
}

static bool replay_checked(PacketType t) {
    return t == PacketType::ping || t == PacketType::payload || t == PacketType::pong || t == PacketType::disconnect;
}

void Client::receive(std::span<uint8_t> datagram, const wire::Address& from, const Now& now) {
    if (state_ == State::disconnected) return counters_.drop(DropReason::wrong_state);
    wire::PacketHeader h;
    if (WireError e = wire::read_header(datagram, h); e != WireError::ok) return counters_.drop(e);
    if (h.type == PacketType::request || h.type == PacketType::response)
        return counters_.drop(DropReason::wrong_direction);
    if (!(from == server_address())) return counters_.drop(DropReason::wrong_source);
    if (!allowed(state_, h.type)) return counters_.drop(DropReason::wrong_state);
    if (replay_checked(h.type) && !replay_.fresh(h.sequence)) return counters_.drop(DropReason::replayed);

    std::span<uint8_t> body;
    WireError e = wire::open_packet(ctx_, token_.server_to_client_key, h, datagram, body);
    if (e == WireError::auth_failed && h.type == PacketType::denied && config_.accept_reference_denied)
        e = wire::open_packet({ctx_.suite, 0}, crypto::Key{}, h, datagram, body);
    wire::Packet p;
    if (e == WireError::ok) e = wire::read_body(h.type, body, p);
    if (e != WireError::ok) return counters_.drop(e);
    if (h.type == PacketType::ping && state_ == State::connected && p.ping.client_id != client_id_)
        return counters_.drop(DropReason::wrong_client_id);

    if (replay_checked(h.type)) replay_.commit(h.sequence);
    last_recv_ns_ = now.ns;
    counters_.received(h.type);
    p.type = h.type;
    switch (h.type) {
        case PacketType::denied:
            return fail_attempt(Outcome::denied, now);
        case PacketType::challenge:
            return on_challenge(p, now);
        case PacketType::ping:
            return on_ping(p, now);
        case PacketType::pong:
            if (auto m = pings_.on_pong(p.pong.ping_sequence, p.pong.pong_delta_time, now.ns))
                clock_.on_pong(m->t0, p.pong.ping_recv_time, p.pong.pong_delta_time, now.ns);
            return;
        case PacketType::payload:
            return events_.on_payload(p.payload);
        case PacketType::disconnect:
            return finish(Outcome::disconnected_by_server);
        default:
            return;
    }
}

void Client::on_challenge(const wire::Packet& p, const Now& now) {
    // RESPONSE: sequence 2^63 | 62 random bits, drawn once; every resend is the same
    // datagram, so the nonce never meets another plaintext (§9).
    uint64_t r;
    crypto::random_bytes(&r, sizeof r);
    const uint64_t sequence = (uint64_t{1} << 63) | (r >> 2);
    const size_t header = wire::write_header(PacketType::response, sequence, 0, response_);
    const size_t body = wire::write_challenge_body(p.challenge, std::span(response_).subspan(header));
    response_size_ = wire::seal_packet(ctx_, token_.client_to_server_key, sequence, response_, header, body);
    if (state_ == State::sending_request) {  // from now on packets are sealed under the token's keys
        std::array<uint8_t, wire::kTagSize> tag;
        std::memcpy(tag.data(), request_.data() + wire::kRequestTagOffset, tag.size());
        used_tokens_[used_next_++ % used_tokens_.size()] = tag;
    }
    state_ = State::sending_response;
    phase_start_ns_ = now.ns;
    send_stored(std::span(response_.data(), response_size_), PacketType::response);
    next_ns_ = now.ns + config_.resend_interval_ns;
}

void Client::on_ping(const wire::Packet& p, const Now& now) {
    if (state_ == State::sending_response) {
        client_id_ = p.ping.client_id;  // the only place the client learns its id (§5.4)
        if (p.ping.has_time) clock_.initialize(p.ping.time, now.ns);
        state_ = State::connected;
        send_pong(p.ping.ping_sequence, now.ns, now);
        send_ping(now);  // a reference server confirms only on a PING (§18)
        next_ns_ = now.ns + config_.ping_interval_ns;
        events_.on_connected(client_id_);
        return;
    }
    if (!pong_sent_ || now.ns - last_pong_ns_ >= config_.pong_min_interval_ns)
        send_pong(p.ping.ping_sequence, now.ns, now);
}

// ---------------------------------------------------------------- timers (§16)

void Client::update(const Now& now) {
    if (now.ns < next_ns_) return;
    switch (state_) {
        case State::sending_request:
        case State::sending_response: {
            const bool request = state_ == State::sending_request;
            if (timeout_ns_ && now.ns - phase_start_ns_ > timeout_ns_)
                return fail_attempt(request ? Outcome::request_timed_out : Outcome::response_timed_out, now);
            if (request) send_stored(request_, PacketType::request);
            else send_stored(std::span(response_.data(), response_size_), PacketType::response);
            next_ns_ = now.ns + config_.resend_interval_ns;
            return;
        }
        case State::connected:
            if (timeout_ns_ && now.ns - last_recv_ns_ > timeout_ns_) return finish(Outcome::connection_lost);
            send_ping(now);
            next_ns_ = now.ns + config_.ping_interval_ns;
            return;
        case State::disconnecting:
            send_disconnect();
            if (++disconnects_sent_ >= config_.disconnect_packets) return finish(Outcome::disconnected);
            next_ns_ = now.ns + config_.resend_interval_ns;
            return;
        case State::disconnected:
            next_ns_ = UINT64_MAX;
            return;
    }
}

}  // namespace pomelo::client
