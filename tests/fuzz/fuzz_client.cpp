// client::Client driven by programs: the harness plays the server with real keys (the minted
// tokens of fuzz_session.hpp), answering with CHALLENGE / DENIED / PING / PONG / PAYLOAD /
// DISCONNECT sealed with libsodium directly under the token keys, with fuzzer-chosen
// sequences and bodies, plus raw junk, wrong keys and packets from wrong sources; the clock
// advances by fuzzer-chosen steps. The client sends through a BatchOutbox that seals at
// flush() over a small buffer pool, flushed after every call. Invariants (names for
// POMELO_FUZZ_TOLERATE, fuzz_session.hpp):
//   "client_auth"        every datagram the client sends goes to an address of its token;
//                        REQUEST is the token's exactly; the others open (libsodium) under the
//                        token's client-to-server key and protocol id; a PING names the
//                        client id the server gave
//   "client_nonce_reuse" no (key, sequence) pair carries two different AD || plaintexts (§9)
//   "client_token_reuse" connect() refuses a token under whose keys it already sealed a packet
//                        (§9: one token, one connection; its sequences would restart at 0),
//                        with outcome token_already_used, and accepts every other valid token
//   "client_commit"      state and outcome move on a received datagram only if it is authentic
//                        (harness-sealed under the token's server-to-client key and protocol id,
//                        intact, from the address being connected to) and of the type that
//                        makes that move; a RESPONSE carries a challenge the harness sent
//                        authentically; PAYLOAD events only from authentic PAYLOADs, once each
//   "client_transition"  every state/outcome change is one the protocol allows for the step
//                        that made it (timeouts only after the token timeout, events match)
//   "counters"           rx by type + drops (no_tx_buffer excluded) == datagrams received;
//                        tx by type == datagrams the outbox transmitted
//   "pool"               every outbox buffer is back after each flush
#include <cstdint>
#include <memory>
#include <set>
#include <vector>

#include "protocol/client/client.hpp"
#include "protocol/wire/body.hpp"
#include "tests/fuzz/fuzz_session.hpp"

using namespace pomelo;
using namespace pomelo::fuzz::session;
using client::Outcome;
using client::State;
using wire::PacketType;

namespace {

constexpr size_t kHistory = 32;

struct Sent {
    wire::Address from;
    std::vector<uint8_t> wire;
    unsigned type = 0;
    int token = -1;      // sealed under this token's server-to-client key and protocol id
    bool intact = false;  // not mutated after sealing
    uint64_t sequence = 0;
    std::vector<uint8_t> plain;
};

enum class Step { receive, update, connect, send, disconnect, reset };

struct Harness final : client::Events {
    client::Config config;
    Clock clock;
    std::unique_ptr<crypto::BurstAead> aead = crypto::make_sodium_burst();
    std::unique_ptr<PoolOutbox> out;
    std::unique_ptr<client::Client> cl;

    int token = -1;  // the token of the current connect()
    std::set<std::vector<uint8_t>> challenges;  // bodies of authentic CHALLENGEs to this client
    std::set<std::pair<int, uint64_t>> delivered;
    std::set<int> connected_tokens;       // tokens that reached CONNECTED
    std::set<int> sealed_tokens;          // tokens the client sealed a packet under (RESPONSE on)
    std::array<uint32_t, kTokens> reuses{};  // tolerated token reuses: a fresh ledger space each
    std::vector<Sent> history;
    NonceLedger ledger;
    uint64_t received = 0;
    uint64_t next_sequence = 0, last_sequence = 0;
    uint64_t phase_start_ns = 0, connected_ns = 0;
    int64_t given_client_id = 0;

    // The step being checked.
    Step step = Step::reset;
    const Sent* datagram = nullptr;
    bool authentic = false;
    bool reference_denied = false;  // a DENIED under the zero key, protocol id 0, from the server
    int events_connected = 0, events_disconnected = 0;
    Outcome event_outcome = Outcome::none;

    explicit Harness(Program& p) {
        const uint8_t b0 = p.u8(), b1 = p.u8();
        config.accept_reference_denied = b0 & 1;
        config.disconnect_packets = 1 + (b0 >> 4) % 10;
        out = std::make_unique<PoolOutbox>(*aead, 1 + b1 % 8, 1 + (b1 >> 3) % 8);
        cl = std::make_unique<client::Client>(config, *this, *out);
    }

    const MintedToken* current() const { return token >= 0 ? &tokens()[static_cast<unsigned>(token)] : nullptr; }

    // ------------------------------------------------------------ events

    void on_connected(int64_t client_id) override {
        ++events_connected;
        FUZZ_TRACE("  event: connected as %lld", static_cast<long long>(client_id));
        FUZZ_INVARIANT("client_commit", step == Step::receive && authentic && datagram->type == 4,
                       "connected without an authentic PING");
        if (datagram && datagram->type == 4) {
            wire::PingBody ping;
            FUZZ_INVARIANT("client_commit",
                           wire::read_ping_body(datagram->plain, ping) == wire::WireError::ok && ping.client_id == client_id,
                           "connected with a client id the PING did not carry");
        }
        given_client_id = client_id;
        connected_tokens.insert(token);
    }

    void on_payload(std::span<const uint8_t> payload) override {
        const bool ok = step == Step::receive && authentic && datagram->type == 5 &&
                        fuzz::same_bytes(datagram->plain, payload) &&
                        delivered.insert({datagram->token, datagram->sequence}).second;
        FUZZ_INVARIANT("client_commit", ok, "payload event without a fresh authentic PAYLOAD");
    }

    void on_disconnected(Outcome o) override {
        ++events_disconnected;
        event_outcome = o;
        FUZZ_TRACE("  event: disconnected (%s)", client::to_string(o));
    }

    // ------------------------------------------------------------ checks

    void take_sent() {
        std::vector<PoolOutbox::Sent> sent;
        sent.swap(out->sent);
        std::vector<uint8_t> plain;
        const MintedToken* t = current();
        for (const PoolOutbox::Sent& d : sent) {
            FUZZ_TRACE("  client -> %s %s %zu B", d.to.to_string().c_str(), wire::to_string(d.type), d.bytes.size());
            FUZZ_INVARIANT("client_auth", t != nullptr, "sent without a token");
            FUZZ_INVARIANT("client_auth", !d.bytes.empty(), "a seal failed");
            if (!t || d.bytes.empty()) continue;
            FUZZ_INVARIANT("client_auth", t->addresses.contains(d.to),
                           "datagram to " + d.to.to_string() + ", not an address of the token");
            if (d.type == PacketType::request) {
                FUZZ_INVARIANT("client_auth", fuzz::same_bytes(d.bytes, t->request), "REQUEST differs from the token's");
                continue;
            }
            sealed_tokens.insert(token);
            const SpecHeader h = spec_header(d.bytes);
            const bool opens = h.ok && h.type == static_cast<unsigned>(d.type) &&
                               spec_open(t->suite, t->c2s, t->protocol_id, d.bytes, plain);
            FUZZ_INVARIANT("client_auth", opens,
                           std::string(wire::to_string(d.type)) +
                               " does not open under the token's client-to-server key and protocol id");
            if (!opens) continue;
            if (d.type == PacketType::response)
                FUZZ_INVARIANT("client_commit", challenges.count(plain) > 0,
                               "RESPONSE carries a challenge no authentic CHALLENGE brought");
            if (d.type == PacketType::ping) {
                wire::PingBody ping;
                FUZZ_INVARIANT("client_auth",
                               wire::read_ping_body(plain, ping) == wire::WireError::ok &&
                                   ping.client_id == given_client_id,
                               "PING does not name the client id the server gave");
            }
            FUZZ_INVARIANT("client_auth",
                           d.type == PacketType::response || d.type == PacketType::ping ||
                               d.type == PacketType::pong || d.type == PacketType::payload ||
                               d.type == PacketType::disconnect,
                           std::string("client sent a ") + wire::to_string(d.type));
            FUZZ_INVARIANT("client_nonce_reuse",
                           ledger.record(static_cast<uint32_t>(token) * 1024 + reuses[token], h.sequence, d.bytes[0],
                                         plain, 0) < 0,
                           "sequence " + std::to_string(h.sequence) + " under token " + std::to_string(token) +
                               "'s client-to-server key carried two plaintexts (" + wire::to_string(d.type) + ")");
        }
    }

    static bool handshaking(State s) { return s == State::sending_request || s == State::sending_response; }

    // The state/outcome move of one step, against what that step may do.
    void check_move(State s0, Outcome o0, uint32_t a0) {
        const State s1 = cl->state();
        const Outcome o1 = cl->outcome();
        const uint32_t a1 = cl->address_index();
        const uint64_t timeout =
            current() && current()->timeout_seconds > 0 ? uint64_t(current()->timeout_seconds) * kSecond : 0;
        const std::string move = std::string(client::to_string(s0)) + "/" + client::to_string(o0) + " -> " +
                                 client::to_string(s1) + "/" + client::to_string(o1);
        FUZZ_INVARIANT("client_transition", events_connected == (s0 != State::connected && s1 == State::connected &&
                                                                 step == Step::receive ? 1 : 0),
                       "on_connected events do not match " + move);
        if (events_disconnected)
            FUZZ_INVARIANT("client_transition",
                           events_disconnected == 1 && s1 == State::disconnected && event_outcome == o1,
                           "on_disconnected does not match " + move);
        const bool ended = s0 != State::disconnected && s1 == State::disconnected && step != Step::reset;
        FUZZ_INVARIANT("client_transition", ended == (events_disconnected == 1) || step == Step::connect,
                       "ended without on_disconnected: " + move);
        const bool fallback = s1 == State::sending_request && a1 != a0 && step != Step::connect;
        const bool moved = s0 != s1 || o0 != o1 || fallback;
        switch (step) {
            case Step::receive: {
                if (!moved) break;
                const unsigned type = datagram ? datagram->type : 0;
                bool legal = false;
                if (s0 == State::sending_request && s1 == State::sending_response) legal = type == 2;
                if (handshaking(s0) && ((fallback && a1 == a0 + 1) || s1 == State::disconnected))
                    legal = type == 1 && (s1 == State::sending_request || o1 == Outcome::denied || o1 == Outcome::token_expired);
                if (s0 == State::sending_response && s1 == State::connected) legal = type == 4;
                if (s0 == State::connected && s1 == State::disconnected)
                    legal = type == 6 && o1 == Outcome::disconnected_by_server;
                FUZZ_INVARIANT("client_commit", authentic || reference_denied, "moved on an unauthentic datagram: " + move);
                FUZZ_INVARIANT("client_transition", legal, "receive made an illegal move: " + move);
                break;
            }
            case Step::update: {
                if (!moved) break;
                bool legal = false;
                const bool timed_out = timeout && clock.now.ns - phase_start_ns > timeout;
                if (handshaking(s0) && fallback && a1 == a0 + 1) legal = timed_out;  // next address
                if (handshaking(s0) && s1 == State::disconnected)
                    legal = (timed_out && (o1 == (s0 == State::sending_request ? Outcome::request_timed_out
                                                                               : Outcome::response_timed_out) ||
                                           o1 == Outcome::token_expired));
                if (s0 == State::connected && s1 == State::disconnected)
                    legal = o1 == Outcome::connection_lost && timeout && clock.now.ns - connected_ns > timeout;
                if (s0 == State::disconnecting && s1 == State::disconnected) legal = o1 == Outcome::disconnected;
                FUZZ_INVARIANT("client_transition", legal, "update made an illegal move: " + move);
                break;
            }
            case Step::connect:
                FUZZ_INVARIANT("client_transition",
                               s1 == State::sending_request ||
                                   (s1 == State::disconnected &&
                                    (o1 == Outcome::token_expired || o1 == Outcome::invalid_token ||
                                     o1 == Outcome::token_already_used)),
                               "connect made an illegal move: " + move);
                break;
            case Step::send:
                FUZZ_INVARIANT("client_transition", !moved, "send moved: " + move);
                break;
            case Step::disconnect:
                FUZZ_INVARIANT("client_transition",
                               !moved || (s0 == State::connected &&
                                          (s1 == State::disconnecting ||
                                           (s1 == State::disconnected && o1 == Outcome::disconnected))),
                               "disconnect made an illegal move: " + move);
                break;
            case Step::reset:
                FUZZ_INVARIANT("client_transition", s1 == State::disconnected && o1 == o0, "reset made an illegal move: " + move);
                break;
        }
        if ((s1 != s0 && handshaking(s1)) || fallback || step == Step::connect) phase_start_ns = clock.now.ns;
        if (s1 == State::connected && s0 != State::connected) connected_ns = clock.now.ns;
    }

    void check_counters() {
        const Counters& c = cl->counters();
        uint64_t rx = 0, tx = 0;
        for (uint64_t v : c.rx) rx += v;
        for (uint64_t v : c.tx) tx += v;
        const uint64_t drops = c.total_drops() - c.drops_of(DropReason::no_tx_buffer);
        FUZZ_INVARIANT("counters", rx + drops == received,
                       "rx " + std::to_string(rx) + " + drops " + std::to_string(drops) + " != received " +
                           std::to_string(received));
        FUZZ_INVARIANT("counters", tx == out->transmitted(),
                       "tx " + std::to_string(tx) + " != transmitted " + std::to_string(out->transmitted()));
        FUZZ_INVARIANT("pool", out->free_buffers() == out->buffers() && !out->double_release() && out->queued() == 0,
                       "outbox buffers not all returned after flush");
    }

    template <class F>
    void run_step(Step s, F&& f) {
        const State s0 = cl->state();
        const Outcome o0 = cl->outcome();
        const uint32_t a0 = cl->address_index();
        step = s;
        events_connected = events_disconnected = 0;
        f();
        out->flush();
        take_sent();
        check_move(s0, o0, a0);
        check_counters();
        datagram = nullptr;
        authentic = reference_denied = false;
    }

    // ------------------------------------------------------------ ops

    wire::Address pick_from(uint8_t b) {
        const MintedToken* t = current();
        if (b < 0x80 || !t) return t ? cl->server_address() : server_v4();
        if (b < 0xc0) return t->addresses.list[b % t->addresses.count];
        return source(b);
    }

    void deliver(Sent s) {
        if (history.size() >= kHistory) history.erase(history.begin());
        history.push_back(s);
        const MintedToken* t = current();
        authentic = t && s.intact && s.token == token && s.from == cl->server_address();
        reference_denied = t && config.accept_reference_denied && s.type == 1 && s.intact && s.token == -2 &&
                           s.from == cl->server_address();
        FUZZ_TRACE("server -> client: type %u, %zu B, seq %llu from %s%s", s.type, s.wire.size(),
                   static_cast<unsigned long long>(s.sequence), s.from.to_string().c_str(),
                   authentic ? "" : " (not authentic)");
        if (authentic && s.type == 2) challenges.insert(s.plain);
        std::vector<uint8_t> copy = s.wire;
        ++received;
        datagram = &history.back();
        run_step(Step::receive, [&] { cl->receive(copy, s.from, clock.now); });
    }

    static void mutate(Program& p, std::vector<uint8_t>& w) {
        if (w.empty()) return;
        const uint16_t pos = p.u16();
        const uint8_t x = p.u8();
        w[pos % w.size()] ^= x ? x : 1;
    }

    // Seals `plain` as `type` under the key `ks` selects: < 0x80 the token's server-to-client
    // key; 0x80-0xbf another token's; 0xc0-0xfe the token's client-to-server key (wrong
    // direction); 0xff the zero key with protocol id 0 (a reference server's DENIED).
    void seal_and_deliver(Program& p, Sent& s, uint8_t ks, unsigned width) {
        const MintedToken& own = current() ? *current() : tokens()[0];
        if (ks == 0xff) {
            s.wire = spec_seal(own.suite, fuzz::zero_key(), 0, s.type, s.sequence, width, s.plain);
            s.token = -2;
        } else if (ks >= 0xc0) {
            s.wire = spec_seal(own.suite, own.c2s, own.protocol_id, s.type, s.sequence, width, s.plain);
        } else {
            const MintedToken& t = ks < 0x80 ? own : tokens()[ks % kTokens];
            s.wire = spec_seal(t.suite, t.s2c, t.protocol_id, s.type, s.sequence, width, s.plain);
            s.token = static_cast<int>(t.index);
        }
        s.intact = width == 0 || width >= 8 || s.sequence >> (8 * width) == 0;
        if (p.u8() & 1) {
            mutate(p, s.wire);
            s.intact = false;
        }
        deliver(std::move(s));
    }

    void op_challenge(Program& p) {
        Sent s;
        s.from = pick_from(p.u8());
        s.type = 2;
        s.sequence = p.u64();
        const uint64_t token_sequence = p.u64();
        const uint8_t fill = p.u8();
        s.plain.resize(wire::kChallengeBodySize);
        wire::store_le(s.plain.data(), token_sequence, 8);
        for (size_t i = 8; i < s.plain.size(); ++i) s.plain[i] = static_cast<uint8_t>(fill ^ i);
        seal_and_deliver(p, s, p.u8(), 0);
    }

    void op_denied(Program& p) {
        Sent s;
        s.from = pick_from(p.u8());
        s.type = 1;
        s.sequence = p.u64();
        seal_and_deliver(p, s, p.u8(), 0);
    }

    void op_packet(Program& p) {
        static constexpr unsigned kTypes[] = {4, 5, 6, 7};
        Sent s;
        s.from = pick_from(p.u8());
        const uint8_t tb = p.u8();
        s.type = tb & 0x80 ? 1 + tb % 7 : kTypes[tb % 4];
        const uint8_t sm = p.u8();
        switch (sm % 4) {
            case 0: s.sequence = next_sequence++; break;
            case 1: s.sequence = p.u64(); break;
            case 2: s.sequence = last_sequence; break;
            default: s.sequence = next_sequence + p.u8(); next_sequence = s.sequence + 1; break;
        }
        last_sequence = s.sequence;
        const unsigned width = (sm >> 2) % 9;
        const uint8_t bk = p.u8();
        const int64_t own_id = current() ? current()->client_id : 0;
        std::array<uint8_t, wire::kMaxPayloadSize> b{};
        size_t n = 0;
        if (bk & 1) {
            n = std::min<size_t>(b.size(), size_t{p.u8()} * (bk & 2 ? 5 : 1));
            auto in = p.bytes(n);
            std::copy(in.begin(), in.end(), b.begin());
        } else if (s.type == 4) {
            wire::PingBody ping{bk & 2 ? own_id : static_cast<int64_t>(p.u64()), p.u16(), bool(bk & 4), p.u64()};
            n = wire::write_ping_body(ping, b);
        } else if (s.type == 7) {
            wire::PongBody pong{p.u16(), p.u64(), p.u64()};
            n = wire::write_pong_body(pong, b);
        } else if (s.type == 5) {
            n = 1 + p.u8();
            auto in = p.bytes(n);
            std::copy(in.begin(), in.end(), b.begin());
        } else if (s.type == 2 || s.type == 3) {
            n = wire::kChallengeBodySize;
        }
        s.plain.assign(b.begin(), b.begin() + static_cast<ptrdiff_t>(n));
        seal_and_deliver(p, s, p.u8(), width);
    }

    void op_raw(Program& p) {
        Sent s;
        s.from = pick_from(p.u8());
        const size_t n = p.u16() % 1300;
        auto in = p.bytes(n);
        s.wire.assign(in.begin(), in.end());
        s.type = s.wire.empty() ? 0 : s.wire[0] >> 4;
        deliver(std::move(s));
    }

    void run(Program& p) {
        while (!p.done()) {
            const unsigned op = p.u8() % client_op::count_;
            switch (op) {
                case client_op::connect: {
                    const unsigned t = p.u8() % kTokens;
                    FUZZ_TRACE("connect with token %u at %llu ns", t, static_cast<unsigned long long>(clock.now.ns));
                    run_step(Step::connect, [&] {
                        token = static_cast<int>(t);
                        given_client_id = 0;
                        next_sequence = last_sequence = 0;
                        if (!cl->connect(tokens()[t].token, clock.now)) {
                            const bool expired = tokens()[t].expire_ms < clock.now.unix_ms;
                            const bool used = sealed_tokens.count(token) > 0;
                            FUZZ_INVARIANT("client_transition",
                                           (expired && cl->outcome() == Outcome::token_expired) ||
                                               (used && cl->outcome() == Outcome::token_already_used),
                                           "connect refused a valid token");
                        } else if (sealed_tokens.count(token)) {
                            // Its keys and restarted counters would repeat nonces, and the new
                            // connection's empty replay window accepts the old one's packets (§9).
                            FUZZ_INVARIANT("client_token_reuse", false,
                                           "connect() accepted token " + std::to_string(t) +
                                               ", which already served a connection");
                            ++reuses[t];
                            connected_tokens.erase(token);
                            delivered.clear();
                        }
                    });
                    break;
                }
                case client_op::challenge: op_challenge(p); break;
                case client_op::denied: op_denied(p); break;
                case client_op::packet: op_packet(p); break;
                case client_op::raw: op_raw(p); break;
                case client_op::replay: {
                    const uint8_t i = p.u8();
                    if (!history.empty()) deliver(history[i % history.size()]);
                    break;
                }
                case client_op::advance:
                    clock.advance(step_of(p.u8()));
                    FUZZ_TRACE("update at %llu ns (%s)", static_cast<unsigned long long>(clock.now.ns),
                               client::to_string(cl->state()));
                    run_step(Step::update, [&] { cl->update(clock.now); });
                    break;
                case client_op::send: {
                    const size_t n = p.u8();
                    auto in = p.bytes(n);
                    std::vector<uint8_t> payload(in.begin(), in.end());
                    payload.resize(n);
                    run_step(Step::send, [&] { cl->send(payload, clock.now); });
                    break;
                }
                case client_op::disconnect:
                    run_step(Step::disconnect, [&] { cl->disconnect(clock.now); });
                    break;
                case client_op::reset:
                    run_step(Step::reset, [&] { cl->reset(); });
                    break;
            }
        }
    }
};

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    if (!crypto::init()) return 1;
    tokens();  // mint once
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    Program p(data, size);
    Harness h(p);
    h.run(p);
    return 0;
}
