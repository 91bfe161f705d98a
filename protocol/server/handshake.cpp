#include "protocol/server/handshake.hpp"

#include <new>

#include <algorithm>
#include <cstring>

#include "protocol/wire/challenge_token.hpp"
#include "protocol/wire/request.hpp"

namespace pomelo::server {

using wire::PacketType;
using wire::WireError;

Handshake::Handshake(const Config& config)
    : config_(config),
      pending_(std::max<uint32_t>(config.max_pending, 1)),
      pending_index_(std::max<uint32_t>(config.max_pending, 1)),
      tokens_(std::max<uint32_t>(config.token_history, 1)),
      // The connected sets start small and grow with the connections (room_for_one_more).
      client_ids_(std::min<uint32_t>(std::max<uint32_t>(config.max_clients, 1), kConnectedStart)),
      addresses_(std::min<uint32_t>(std::max<uint32_t>(config.max_clients, 1), kConnectedStart)),
      last_reply_ns_(std::max<uint32_t>(config.rate_limit_slots, 1), 0) {
    free_pending_.reserve(pending_.size());
    for (uint32_t i = static_cast<uint32_t>(pending_.size()); i-- > 0;) free_pending_.push_back(i);
}

void Handshake::start(const Now& now) {
    stop();
    challenge_key_ = crypto::Key::random();
    challenge_sequence_ = 0;
    // Unix ms × 2^16 leaves room for 65,536 pre-connection packets per millisecond of uptime
    // before a restart could meet an old value (§9).
    preconnect_sequence_ = (uint64_t{1} << 63) | ((now.unix_ms << 16) & ~(uint64_t{1} << 63));
    state_ = HandshakeState::running;
}

void Handshake::begin_shutdown() {
    if (state_ != HandshakeState::running) return;
    state_ = HandshakeState::stopping;
    for (Pending& p : pending_)
        if (p.used) release_pending(p);
}

void Handshake::stop() {
    state_ = HandshakeState::stopped;
    challenge_key_.wipe();
    for (Pending& p : pending_)
        if (p.used) release_pending(p);
    // The token history is kept: a token that connected must not connect again after a
    // stop and start of this object either (§9). A new process restores it from the journal.
    client_ids_.clear();
    addresses_.clear();
    connected_ = 0;
    std::fill(last_reply_ns_.begin(), last_reply_ns_.end(), 0);
}

// ---------------------------------------------------------------- rate limit (§12.11)

// A slot holds the time of the last reply + 1 (0: never replied). Stamped only when a reply
// is sent, i.e. after the token authenticated: nothing unauthenticated locks a source out.
// The table is lossy (sources sharing a slot share a limit), never a false "allowed".

bool Handshake::rate_limited(const wire::Address& from, uint64_t now_ns) {
    const auto key = wire::AddressKey::of(from);
    const uint64_t last = last_reply_ns_[rate_hash_(&key, sizeof key) % last_reply_ns_.size()];
    return last != 0 && now_ns + 1 - last < config_.handshake_interval_ns;
}

void Handshake::stamp_rate_limit(const wire::Address& from, uint64_t now_ns) {
    const auto key = wire::AddressKey::of(from);
    last_reply_ns_[rate_hash_(&key, sizeof key) % last_reply_ns_.size()] = now_ns + 1;
}

// ---------------------------------------------------------------- pending records (§12.3)

uint64_t Handshake::pending_life_ns(const Pending& p) const {
    if (p.timeout_seconds > 0)
        return std::min<uint64_t>(config_.pending_timeout_ns, uint64_t(p.timeout_seconds) * kSecond);
    return config_.pending_timeout_ns;
}

void Handshake::expire_pending(uint64_t now_ns) {
    // Oldest first; records with a shorter token timeout are also caught at their RESPONSE.
    while (oldest_ != kNil && now_ns - pending_[oldest_].created_ns > pending_life_ns(pending_[oldest_]))
        release_pending(pending_[oldest_]);
}

Handshake::Pending* Handshake::find_pending(const wire::AddressKey& key) {
    const uint32_t* i = pending_index_.find(key);
    return i ? &pending_[*i] : nullptr;
}

void Handshake::unlink(uint32_t i) {
    Pending& p = pending_[i];
    if (p.prev != kNil) pending_[p.prev].next = p.next;
    else oldest_ = p.next;
    if (p.next != kNil) pending_[p.next].prev = p.prev;
    else newest_ = p.prev;
    p.prev = p.next = kNil;
}

void Handshake::append(uint32_t i) {
    Pending& p = pending_[i];
    p.prev = newest_;
    p.next = kNil;
    if (newest_ != kNil) pending_[newest_].next = i;
    else oldest_ = i;
    newest_ = i;
}

// A REQUEST from `key` may take a pending record: it has one, one is free, or the oldest is
// older than pending_recycle_ns (Config::max_pending).
bool Handshake::pending_room(const wire::AddressKey& key, uint64_t now_ns) {
    if (!free_pending_.empty() || find_pending(key)) return true;
    return now_ns - pending_[oldest_].created_ns >= config_.pending_recycle_ns;
}

Handshake::Pending& Handshake::take_pending_slot(const wire::AddressKey& key) {
    if (Pending* p = find_pending(key)) {
        const uint32_t i = static_cast<uint32_t>(p - pending_.data());
        unlink(i);
        append(i);
        return *p;
    }
    if (free_pending_.empty()) release_pending(pending_[oldest_]);  // stalled: see pending_room
    const uint32_t i = free_pending_.back();
    free_pending_.pop_back();
    Pending& p = pending_[i];
    p.used = true;
    p.address = key;
    pending_index_.insert(key, i);
    append(i);
    return p;
}

void Handshake::release_pending(Pending& p) {
    const uint32_t i = static_cast<uint32_t>(&p - pending_.data());
    pending_index_.erase(p.address);
    unlink(i);
    p.client_to_server_key.wipe();
    p.server_to_client_key.wipe();
    crypto::secure_wipe(p.user_data.data(), p.user_data.size());
    p.used = false;
    free_pending_.push_back(i);
}

// ---------------------------------------------------------------- sending

void Handshake::send_challenge(Pending& p, uint64_t link, const Now& now, Outbox& out) {
    // The challenge token dies with the pending record: a recorded RESPONSE cannot be
    // replayed into a later handshake (§19.4).
    wire::ChallengeToken token{p.client_id, p.user_data, now.ns + pending_life_ns(p)};
    std::array<uint8_t, wire::kChallengeTokenSize> sealed;
    const uint64_t token_sequence = challenge_sequence_++;
    wire::seal_challenge_token(token, challenge_key_, token_sequence, sealed);
    crypto::secure_wipe(token.user_data.data(), token.user_data.size());
    const uint64_t seq = preconnect_sequence_++;
    if (!emit(out, p.reply_to, p.local, PacketType::challenge, seq, p.ctx, p.server_to_client_key,
              [&](std::span<uint8_t> body) { return wire::write_challenge_body({token_sequence, sealed}, body); },
              link)) {
        counters_.drop(DropReason::no_tx_buffer);
        return;
    }
    counters_.sent(PacketType::challenge);
}

void Handshake::send_denied(const RxDatagram& to, const wire::PacketContext& ctx, const crypto::Key& key,
                            Outbox& out) {
    // Encrypted with the token's own key and protocol id, so the client can authenticate it
    // (the reference uses a zero key, §12.9). The outbox keeps its own copy of the key.
    if (!emit(
            out, to.from, to.local, PacketType::denied, preconnect_sequence_++, ctx, key,
            [](std::span<uint8_t>) { return 0; }, to.link)) {
        counters_.drop(DropReason::no_tx_buffer);
        return;
    }
    counters_.sent(PacketType::denied);
}

// ---------------------------------------------------------------- the dispatcher

bool Handshake::handle(RxDatagram& d, const Now& now, Outbox& out, NewPeer& accepted) {
    if (state_ != HandshakeState::running) {
        counters_.drop(DropReason::server_stopped);
        return false;
    }
    if (addresses_.find(wire::AddressKey::of(d.from))) {  // connected in some shard
        counters_.drop(DropReason::handshake_from_connected);
        return false;
    }
    expire_pending(now.ns);
    if (!d.bytes.empty() && d.bytes[0] == 0) {
        on_request(d, now, out);
        return false;
    }
    return on_response(d, now, out, accepted);
}

// ---------------------------------------------------------------- REQUEST (§12.4, our order §11.4)

bool Handshake::precheck_request(std::span<const uint8_t> datagram, const Config& config, uint64_t now_unix_ms,
                                 Counters& counters) {
    wire::RequestPacket q;
    if (WireError e = wire::read_request(datagram, q); e != WireError::ok) {
        counters.drop(e);
        return false;
    }
    DropReason r;
    if (!config.accepts(q.suite)) r = DropReason::suite_not_accepted;
    else if (q.protocol_id != config.protocol_id) r = DropReason::wrong_protocol_id;
    else if (q.expire_ms <= now_unix_ms) r = DropReason::token_expired;
    else return true;
    counters.drop(r);
    return false;
}

void Handshake::on_request(const RxDatagram& d, const Now& now, Outbox& out) {
    const wire::Address& from = d.from;
    if (!precheck_request(d.bytes, config_, now.unix_ms, counters_)) return;
    wire::RequestPacket q;
    wire::read_request(d.bytes, q);  // passed in precheck_request
    // Without a token journal, tokens that may have connected before this start are refused
    // (see refuse_tokens_expiring_before).
    if (q.expire_ms < min_expire_ms_) return counters_.drop(DropReason::token_predates_start);
    if (rate_limited(from, now.ns)) return counters_.drop(DropReason::rate_limited);

    const auto from_key = wire::AddressKey::of(from);
    TokenTag tag;
    std::memcpy(tag.data(), q.token_tag().data(), tag.size());

    // A token already opened is recognised by its tag before any decryption: from another
    // address it is a replay (no XChaCha20 for the attacker), from the same address a resend
    // served from the pending record.
    // A resend is served from the pending record only if it is the very REQUEST that
    // authenticated (same bytes, by keyed hash): the tag alone would let a REQUEST with any
    // other ciphertext, nonce, expiry or protocol id through unauthenticated (§12.11).
    Pending* cached = nullptr;
    auto digest = [&] { return request_hash_(d.bytes.data(), d.bytes.size()); };
    if (const TokenHistory::Entry* use = tokens_.find(tag)) {
        if (use->connected && config_.refuse_token_reuse) return counters_.drop(DropReason::token_in_use);
        if (!(use->address == from_key)) return counters_.drop(DropReason::token_in_use);
        Pending* p = find_pending(from_key);
        if (p && p->tag == tag && p->request_digest == digest()) cached = p;
    }

    if (!cached) {
        if (!pending_room(from_key, now.ns)) return counters_.drop(DropReason::pending_full);
        wire::PrivateConnectToken token;
        ++token_decrypts_;
        WireError e = wire::open_request(q, config_.private_key, token);
        for (size_t k = 0; e == WireError::auth_failed && k < config_.more_private_keys.size(); ++k) {
            ++token_decrypts_;
            e = wire::open_request(q, config_.more_private_keys[k], token);
        }
        if (e != WireError::ok) return counters_.drop(e);
        if (!config_.public_addresses.empty()) {
            bool listed = false;
            for (const wire::Address& a : config_.public_addresses) listed |= token.addresses.contains(a);
            if (!listed) return counters_.drop(DropReason::address_not_in_token);
        }
        if (!tokens_.remember(tag, from_key, q.expire_ms, now.unix_ms))
            return counters_.drop(DropReason::token_history_full);
        if (connected_ >= config_.max_clients) {
            stamp_rate_limit(from, now.ns);
            counters_.received(PacketType::request);
            return send_denied(d, {q.suite, q.protocol_id}, token.server_to_client_key, out);
        }
        if (client_ids_.find(token.client_id)) return counters_.drop(DropReason::client_id_connected);
        Pending& p = take_pending_slot(from_key);
        p.reply_to = from;
        p.local = d.local;
        p.tag = tag;
        p.expire_ms = q.expire_ms;
        p.request_digest = digest();
        p.client_id = token.client_id;
        p.timeout_seconds = token.timeout_seconds;
        p.ctx = {q.suite, q.protocol_id};
        p.client_to_server_key = token.client_to_server_key;
        p.server_to_client_key = token.server_to_client_key;
        p.user_data = token.user_data;
        p.created_ns = now.ns;
        crypto::secure_wipe(token.user_data.data(), token.user_data.size());
        cached = &p;
    } else {
        if (connected_ >= config_.max_clients) {
            stamp_rate_limit(from, now.ns);
            counters_.received(PacketType::request);
            return send_denied(d, cached->ctx, cached->server_to_client_key, out);
        }
        if (client_ids_.find(cached->client_id)) return counters_.drop(DropReason::client_id_connected);
        cached->local = d.local;  // its age stays that of its first REQUEST (Pending::created_ns)
    }
    counters_.received(PacketType::request);
    stamp_rate_limit(from, now.ns);
    send_challenge(*cached, d.link, now, out);
}

// ---------------------------------------------------------------- RESPONSE (§12.5)

bool Handshake::on_response(RxDatagram& d, const Now& now, Outbox& out, NewPeer& accepted) {
    const std::span<uint8_t> datagram = d.bytes;
    const wire::Address& from = d.from;
    wire::PacketHeader header;
    if (WireError e = wire::read_header(datagram, header); e != WireError::ok) {
        counters_.drop(e);
        return false;
    }
    if (header.type != PacketType::response) {
        counters_.drop(DropReason::unknown_peer);
        return false;
    }
    Pending* p = find_pending(wire::AddressKey::of(from));
    if (!p) {
        counters_.drop(DropReason::no_pending);
        return false;
    }
    if (now.ns - p->created_ns > pending_life_ns(*p)) {  // the token timeout bounds the handshake
        release_pending(*p);
        counters_.drop(DropReason::no_pending);
        return false;
    }
    // An expired token starts no connection, at REQUEST or here: the token history may
    // forget expired tokens only because of that (found by fuzz_server).
    if (p->expire_ms <= now.unix_ms) {
        release_pending(*p);
        counters_.drop(DropReason::token_expired);
        return false;
    }
    std::span<uint8_t> body;
    wire::Packet packet;
    WireError e = wire::open_packet(p->ctx, p->client_to_server_key, header, datagram, body);
    if (e == WireError::ok) e = wire::read_body(PacketType::response, body, packet);
    if (e != WireError::ok) {
        counters_.drop(e);
        return false;
    }
    wire::ChallengeToken token;
    e = wire::open_challenge_token(packet.challenge.encrypted_token.first<wire::kChallengeTokenSize>(), challenge_key_,
                                   packet.challenge.token_sequence, token);
    if (e != WireError::ok) {
        counters_.drop(e);
        return false;
    }
    // The challenge must be this record's: same client id and user data as the token whose
    // keys authenticated the RESPONSE (a client holding two tokens of one client id cannot
    // splice one's challenge into the other's handshake, found by fuzz_server).
    if (token.client_id != p->client_id || token.user_data != p->user_data ||
        (token.expires_ns && now.ns > token.expires_ns)) {
        crypto::secure_wipe(token.user_data.data(), token.user_data.size());
        counters_.drop(DropReason::challenge_mismatch);
        return false;
    }
    if (client_ids_.find(p->client_id)) {
        counters_.drop(DropReason::client_id_connected);
        return false;
    }
    // The reference skips this check (§19.7). Out of memory for one more counts as full.
    if (connected_ >= config_.max_clients || !room_for_one_more()) {
        // Not rate-limited: the RESPONSE authenticated under the token's keys (no spoofed
        // source can produce it) and the DENIED is a thirteenth of its size. It still counts
        // as this source's last reply for the REQUESTs that follow.
        counters_.received(PacketType::response);
        stamp_rate_limit(from, now.ns);
        send_denied(d, p->ctx, p->server_to_client_key, out);
        release_pending(*p);
        return false;
    }
    // Before any connection-phase packet is sealed under the token's keys, the token is
    // marked connected: from now on it can never start a second connection (§9).
    switch (tokens_.mark_connected(p->tag, p->address, p->expire_ms, now.unix_ms)) {
        case TokenHistory::Mark::marked:
            break;
        case TokenHistory::Mark::already_connected:  // another address's handshake with it won
            if (config_.refuse_token_reuse) {
                counters_.drop(DropReason::token_in_use);
                return false;
            }
            break;
        case TokenHistory::Mark::full:
            counters_.drop(DropReason::token_history_full);
            return false;
    }
    counters_.received(PacketType::response);
    client_ids_.insert(p->client_id, 1);
    addresses_.insert(wire::AddressKey::of(from), 1);
    ++connected_;
    accepted.address = from;
    accepted.local = d.local;  // where the RESPONSE came in: the connection's endpoint
    accepted.link = d.link;
    accepted.token_tag = p->tag;
    accepted.token_expire_ms = p->expire_ms;
    accepted.client_id = p->client_id;
    accepted.timeout_seconds = p->timeout_seconds;
    accepted.ctx = p->ctx;
    accepted.client_to_server_key = p->client_to_server_key;
    accepted.server_to_client_key = p->server_to_client_key;
    accepted.user_data = p->user_data;
    crypto::secure_wipe(token.user_data.data(), token.user_data.size());
    release_pending(*p);
    return true;
}

// The connected sets double (up to max_clients) when full: a large --max-clients costs
// memory only as clients connect. A rehash is O(connected), on the RESPONSE path only.
bool Handshake::room_for_one_more() {
    if (!client_ids_.full() && !addresses_.full()) return true;
    const size_t limit = std::max<uint32_t>(config_.max_clients, 1);
    const size_t want = std::min(limit, 2 * std::max(client_ids_.capacity(), addresses_.capacity()));
    try {
        client_ids_.reserve(want);
        addresses_.reserve(want);
    } catch (const std::bad_alloc&) {
        return false;
    }
    return !client_ids_.full() && !addresses_.full();
}

void Handshake::on_connection_closed(int64_t client_id, const wire::Address& address) {
    addresses_.erase(wire::AddressKey::of(address));
    if (client_ids_.erase(client_id) && connected_ > 0) --connected_;
}

void Handshake::abandon(const NewPeer& accepted) {
    on_connection_closed(accepted.client_id, accepted.address);
    tokens_.unmark_connected(accepted.token_tag);
}

bool Handshake::restore_connected_token(const TokenTag& tag, uint64_t expire_ms, uint64_t now_unix_ms) {
    if (expire_ms <= now_unix_ms) return true;  // expired: refused by the expiry check anyway
    return tokens_.mark_connected(tag, wire::AddressKey{}, expire_ms, now_unix_ms) != TokenHistory::Mark::full;
}

}  // namespace pomelo::server
