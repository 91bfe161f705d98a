// server::Server (handshake + shard) driven by programs of datagrams from several source
// addresses, with a clock, through a BatchOutbox that seals at flush() over a small buffer
// pool, flushed the way the engine does (after every receive pass, timer pass or call).
//
// The harness holds real keys: it mints connect tokens under fuzz::private_key() for a few
// identities (fuzz_session.hpp), answers the server's CHALLENGEs with RESPONSEs sealed under
// the token's client-to-server key, and seals PING/PONG/PAYLOAD/DISCONNECT with fuzzer-chosen
// sequences and bodies, so that authenticated paths are reached. Everything the server sends
// is opened with libsodium directly. Invariants, checked after every step (names in quotes,
// see POMELO_FUZZ_TOLERATE in fuzz_session.hpp):
//   "reply_auth"      every CHALLENGE/DENIED opens under the server-to-client key of a token
//                     that source sent, with the token's protocol id (spec §12.9)
//   "conn_auth"       every PING/PONG/PAYLOAD/DISCONNECT opens under its connection's key
//   "nonce_reuse"     no (key, sequence) pair carries two different AD || plaintexts (§9);
//   "nonce_reuse_restart"  the same across a restart of the server
//   "token_reuse"     with refuse_token_reuse, no token serves two connections (§12.10);
//   "token_reuse_restart"  the same across a restart (with it off, a reuse starts a fresh
//                     ledger space for the token: the configuration accepts it)
//   "reply_spacing"   CHALLENGE/DENIED to one source at least handshake_interval_ns apart
//                     (a DENIED answering an authentic RESPONSE excepted)
//   "unsolicited"     handshake replies only to a source that sent an intact REQUEST or
//                     RESPONSE in that pass; nothing to addresses that never sent
//   "commit_unauth"   a peer is created only by an authentic RESPONSE carrying a challenge
//                     token the server issued, with that token's client id and user data;
//                     a peer's replay window, liveness or state move only on an authentic
//                     datagram from its address under its key; PAYLOAD and client DISCONNECT
//                     events only from authentic packets, each PAYLOAD at most once
//   "commit_mixed_token"  a peer authenticated under one token's keys carries another
//                     token's client id and user data
//   "counters"        rx by type + drops by reason (send-side no_tx_buffer excluded) ==
//                     datagrams received; tx by type == datagrams the outbox transmitted
//   "pool"            every outbox buffer is back after each flush, none released twice
//   "capacity"        connections() <= max_clients == handshake's count; client ids unique
#include <cstdint>
#include <memory>
#include <optional>
#include <set>
#include <vector>

#include "protocol/server/server.hpp"
#include "protocol/wire/body.hpp"
#include "tests/fuzz/fuzz_session.hpp"

using namespace pomelo;
using namespace pomelo::fuzz::session;
using wire::PacketType;

namespace {

constexpr unsigned kMaxBurst = 16;
constexpr size_t kHistory = 32;

// What the harness knows about a datagram it sends.
struct Sent {
    unsigned src = 0;
    std::vector<uint8_t> wire;
    unsigned type = 0;
    int request_token = -1;  // a REQUEST: the token it carries
    int sealed_token = -1;  // sealed by the harness under this token's client-to-server key + ctx
    bool intact = false;    // not mutated after sealing (a REQUEST: the minted bytes exactly)
    uint64_t sequence = 0;
    std::vector<uint8_t> plain;
    bool issued_challenge = false;  // RESPONSE carrying a challenge body the server sent
};

struct Source {
    uint64_t requested = 0;  // tokens sent in a REQUEST from here (bit per token index)
    int challenge_token = -1;
    std::array<uint8_t, wire::kChallengeBodySize> challenge{};
    int conn_token = -1;  // token of the newest connection at this address
    uint64_t next_sequence = 0;
    uint64_t last_sequence = 0;
    bool replied = false;
    uint64_t last_reply_ns = 0;
};

struct Tracked {
    server::PeerId id;
    wire::Address address;
    unsigned src = 0;
    unsigned token = 0;
    int64_t client_id = 0;  // as the server reported it
    bool live = true;
    // Snapshot before a step.
    server::PeerState state{};
    uint64_t latest = 0, last_recv_ns = 0;
    bool any = false;
};

enum class Step { receive, update, call, stop };

struct Harness final : server::Events {
    server::Config config;
    Clock clock;
    std::unique_ptr<crypto::BurstAead> aead = crypto::make_sodium_burst();
    std::unique_ptr<PoolOutbox> out;
    std::unique_ptr<server::Server> srv;
    unsigned burst_cap = kMaxBurst;

    std::array<Source, kSources> sources{};
    std::vector<Sent> burst;
    std::vector<Sent> history;
    std::vector<Tracked> peers;
    std::set<std::vector<uint8_t>> issued;  // CHALLENGE bodies the server sent
    std::set<std::pair<unsigned, uint64_t>> delivered;  // (token, sequence) of PAYLOADs delivered
    NonceLedger ledger;
    std::array<int, kTokens> connected_epoch;  // epoch a token last served a connection in, -1: never
    std::array<uint32_t, kTokens> generation{};  // bumped per reuse: a fresh ledger space
    int epoch = 0;
    uint64_t received = 0;
    Step step = Step::call;

    explicit Harness(Program& p) {
        const uint8_t b0 = p.u8(), b1 = p.u8(), b2 = p.u8(), b3 = p.u8(), b4 = p.u8(), b5 = p.u8();
        config.protocol_id = kProtocolId;
        config.private_key = fuzz::private_key();
        config.max_clients = 1 + b0 % 4;
        config.max_pending = 1 + b1 % 4;
        config.token_history = 1 + b2 % 16;
        config.refuse_token_reuse = !(b3 & 1);
        if (!(b3 & 2)) config.public_addresses = {server_v4(), server_v6()};
        if (b3 & 4) config.accepted_suites = 1u << static_cast<unsigned>(crypto::Suite::chacha20poly1305);
        config.disconnect_packets = 1 + (b3 >> 4) % 10;
        config.rate_limit_slots = 64;
        out = std::make_unique<PoolOutbox>(*aead, 1 + b4 % 8, 1 + (b4 >> 3) % 8);
        burst_cap = 1 + b5 % kMaxBurst;
        connected_epoch.fill(-1);
        srv = std::make_unique<server::Server>(config, *this, *out);
        srv->start(clock.now);
    }

    // ------------------------------------------------------------ events

    Tracked* tracked(server::PeerId id) {
        for (Tracked& t : peers)
            if (t.live && t.id == id) return &t;
        return nullptr;
    }

    void on_connect(server::PeerId id, int64_t client_id, const wire::UserData& user_data) override {
        const server::Peer* p = srv->peer(id);
        FUZZ_TRACE("  event: connect client %lld", static_cast<long long>(client_id));
        FUZZ_INVARIANT("commit_unauth", p != nullptr, "on_connect for a peer the server does not have");
        FUZZ_INVARIANT("commit_unauth", step == Step::receive, "connection created outside a receive pass");
        int token = -1, mixed = -1;
        unsigned src = 0;
        for (const Sent& s : burst) {
            if (s.type != 3 || !s.intact || s.sealed_token < 0 || !(source(s.src) == p->address)) continue;
            const MintedToken& t = tokens()[static_cast<unsigned>(s.sealed_token)];
            if (!s.issued_challenge) continue;
            if (t.client_id == client_id && t.user_data == user_data) {
                token = s.sealed_token;
                src = s.src;
            } else {
                mixed = s.sealed_token;
                src = s.src;
            }
        }
        if (token < 0 && mixed >= 0) {
            // Authenticated under one token's keys, but the identity (client id, user data)
            // is another token's: a challenge token issued for one REQUEST went out under the
            // keys of another.
            FUZZ_INVARIANT("commit_mixed_token", false,
                           "connection at " + p->address.to_string() + " has token " + std::to_string(mixed) +
                               "'s keys but client id " + std::to_string(client_id) + " and user data of another token");
            token = mixed;
        }
        FUZZ_INVARIANT("commit_unauth", token >= 0,
                       "connection of client " + std::to_string(client_id) + " at " + p->address.to_string() +
                           " without an authentic RESPONSE carrying an issued challenge token");
        for (const Tracked& t : peers)
            FUZZ_INVARIANT("capacity", !t.live || t.client_id != client_id,
                           "client id " + std::to_string(client_id) + " connected twice");
        if (token < 0) return;
        const unsigned k = static_cast<unsigned>(token);
        if (connected_epoch[k] >= 0) {
            // The token's keys serve a second connection: its counters restart at 0 under the
            // same keys and the old connection's packets replay into the new one (§9, §12.10).
            FUZZ_INVARIANT(connected_epoch[k] == epoch ? "token_reuse" : "token_reuse_restart",
                           !config.refuse_token_reuse,
                           "token " + std::to_string(k) + " connected again at " + p->address.to_string() +
                               (connected_epoch[k] == epoch ? "" : " after a restart"));
            ++generation[k];
            for (auto it = delivered.begin(); it != delivered.end();)
                it = it->first == k ? delivered.erase(it) : std::next(it);
        }
        connected_epoch[k] = epoch;
        Tracked t;
        t.id = id;
        t.address = p->address;
        t.src = src;
        t.token = static_cast<unsigned>(token);
        t.client_id = client_id;
        peers.push_back(t);
        sources[src].conn_token = token;
    }

    void on_payload(server::PeerId id, std::span<const uint8_t> payload) override {
        Tracked* t = tracked(id);
        FUZZ_INVARIANT("commit_unauth", t && step == Step::receive, "payload event outside a receive pass");
        if (!t) return;
        bool found = false;
        for (const Sent& s : burst) {
            if (s.type != 5 || !s.intact || s.sealed_token != int(t->token) || s.src != t->src) continue;
            if (!fuzz::same_bytes(s.plain, payload)) continue;
            if (delivered.insert({t->token, s.sequence}).second) {
                found = true;
                break;
            }
        }
        FUZZ_INVARIANT("commit_unauth", found,
                       "payload delivered that no unseen authentic PAYLOAD from " + t->address.to_string() + " carried");
    }

    void on_disconnect(server::PeerId id, int64_t, server::CloseReason reason) override {
        Tracked* t = tracked(id);
        FUZZ_TRACE("  event: disconnect (%s)", server::to_string(reason));
        FUZZ_INVARIANT("commit_unauth", t != nullptr, "disconnect event for an unknown peer");
        if (!t) return;
        t->live = false;
        if (reason == server::CloseReason::client_disconnected) {
            bool found = false;
            for (const Sent& s : burst)
                found |= s.type == 6 && s.intact && s.sealed_token == int(t->token) && s.src == t->src;
            FUZZ_INVARIANT("commit_unauth", step == Step::receive && found,
                           "client_disconnected without an authentic DISCONNECT from " + t->address.to_string());
        }
        if (reason == server::CloseReason::timed_out)
            FUZZ_INVARIANT("commit_unauth", step == Step::update, "timed out outside update()");
    }

    // ------------------------------------------------------------ checks

    void snapshot() {
        for (Tracked& t : peers) {
            if (!t.live) continue;
            const server::Peer* p = srv->peer(t.id);
            if (!p) continue;
            t.state = p->state;
            t.latest = p->replay.latest();
            t.any = !p->replay.fresh(p->replay.latest());
            t.last_recv_ns = p->last_recv_ns;
        }
    }

    void check_peers() {
        for (Tracked& t : peers) {
            if (!t.live) continue;
            const server::Peer* p = srv->peer(t.id);
            FUZZ_INVARIANT("commit_unauth", p != nullptr, "peer gone without a disconnect event");
            if (!p) continue;
            const bool moved = p->replay.latest() != t.latest || !p->replay.fresh(p->replay.latest()) != t.any ||
                               p->last_recv_ns != t.last_recv_ns;
            const bool confirmed = t.state == server::PeerState::unconfirmed && p->state == server::PeerState::connected;
            if (!moved && !confirmed) continue;
            bool authentic = false;
            if (step == Step::receive)
                for (const Sent& s : burst) authentic |= s.intact && s.sealed_token == int(t.token) && s.src == t.src;
            FUZZ_INVARIANT("commit_unauth", authentic,
                           "peer " + t.address.to_string() + " replay/liveness/state moved without an authentic packet");
        }
    }

    unsigned source_index(const wire::Address& a, bool& known) const {
        for (unsigned k = 0; k < kSources; ++k)
            if (source(k) == a) {
                known = true;
                return k;
            }
        known = false;
        return 0;
    }

    // The source sent an authentic RESPONSE in this pass (a DENIED answering it is exempt
    // from the spacing of replies to REQUESTs: it cannot be reflected to a spoofed source).
    bool responded(unsigned src) const {
        if (step != Step::receive) return false;
        for (const Sent& s : burst)
            if (s.src == src && s.intact && s.type == 3 && s.sealed_token >= 0) return true;
        return false;
    }

    bool solicited(unsigned src) const {
        if (step != Step::receive) return false;
        for (const Sent& s : burst) {
            if (s.src != src || !s.intact) continue;
            if (s.type == 0 || (s.type == 3 && s.sealed_token >= 0)) return true;
        }
        return false;
    }

    void take_sent() {
        std::vector<PoolOutbox::Sent> sent;
        sent.swap(out->sent);
        std::vector<uint8_t> plain;
        for (const PoolOutbox::Sent& d : sent) {
            bool known = false;
            const unsigned src = source_index(d.to, known);
            FUZZ_TRACE("  server -> %s %s %zu B", d.to.to_string().c_str(), wire::to_string(d.type), d.bytes.size());
            FUZZ_INVARIANT("unsolicited", known, "datagram to " + d.to.to_string() + ", which never sent anything");
            FUZZ_INVARIANT("conn_auth", !d.bytes.empty(), "a seal failed");
            if (!known || d.bytes.empty()) continue;
            const SpecHeader h = spec_header(d.bytes);
            FUZZ_INVARIANT("conn_auth", h.ok && h.type == static_cast<unsigned>(d.type), "malformed datagram sent");
            if (!h.ok) continue;
            Source& so = sources[src];
            int key = -1;
            if (h.type == 1 || h.type == 2) {  // DENIED, CHALLENGE
                FUZZ_INVARIANT("unsolicited", solicited(src),
                               std::string(wire::to_string(d.type)) + " to " + d.to.to_string() +
                                   " without an intact REQUEST or RESPONSE from it in this pass");
                for (unsigned j = 0; j < kTokens && key < 0; ++j) {
                    if (!(so.requested >> j & 1)) continue;
                    const MintedToken& t = tokens()[j];
                    if (spec_open(t.suite, t.s2c, t.protocol_id, d.bytes, plain)) key = static_cast<int>(j);
                }
                if (key < 0) {
                    std::string how = "opens under none of the tokens that source sent";
                    if (spec_open(crypto::Suite::chacha20poly1305, fuzz::zero_key(), 0, d.bytes, plain))
                        how += " (it opens under the zero key with protocol id 0)";
                    else if (spec_open(crypto::Suite::chacha20poly1305, fuzz::zero_key(), kProtocolId, d.bytes, plain))
                        how += " (it opens under the zero key)";
                    FUZZ_INVARIANT("reply_auth", false,
                                   std::string(wire::to_string(d.type)) + " to " + d.to.to_string() + " " + how);
                    continue;
                }
                FUZZ_INVARIANT("reply_spacing",
                               !so.replied || clock.now.ns - so.last_reply_ns >= config.handshake_interval_ns ||
                                   (h.type == 1 && responded(src)),
                               "handshake replies to " + d.to.to_string() + " " +
                                   std::to_string(clock.now.ns - so.last_reply_ns) + " ns apart");
                so.replied = true;
                so.last_reply_ns = clock.now.ns;
                if (h.type == 1) {
                    FUZZ_INVARIANT("reply_auth", plain.empty(), "DENIED with a body");
                } else if (plain.size() == wire::kChallengeBodySize) {
                    so.challenge_token = key;
                    std::memcpy(so.challenge.data(), plain.data(), plain.size());
                    issued.insert(plain);
                } else {
                    FUZZ_INVARIANT("reply_auth", false, "CHALLENGE body of " + std::to_string(plain.size()) + " bytes");
                }
            } else if (h.type == 4 || h.type == 5 || h.type == 6 || h.type == 7) {
                key = so.conn_token;
                const bool opens = key >= 0 && spec_open(tokens()[key].suite, tokens()[key].s2c,
                                                         tokens()[key].protocol_id, d.bytes, plain);
                FUZZ_INVARIANT("conn_auth", opens,
                               std::string(wire::to_string(d.type)) + " to " + d.to.to_string() +
                                   " does not open under its connection's server-to-client key");
                if (!opens) continue;
                if (h.type == 4) {
                    wire::PingBody ping;
                    FUZZ_INVARIANT("conn_auth",
                                   wire::read_ping_body(plain, ping) == wire::WireError::ok &&
                                       ping.client_id == tokens()[key].client_id,
                                   "PING without the connection's client id");
                }
            } else {
                FUZZ_INVARIANT("conn_auth", false, std::string("server sent a ") + wire::to_string(d.type));
                continue;
            }
            const uint32_t key_id = static_cast<uint32_t>(key) * 1024 + generation[static_cast<unsigned>(key)];
            const int other = ledger.record(key_id, h.sequence, d.bytes[0], plain, epoch);
            FUZZ_INVARIANT(other == epoch || other < 0 ? "nonce_reuse" : "nonce_reuse_restart", other < 0,
                           "sequence " + std::to_string(h.sequence) + " under token " + std::to_string(key) +
                               "'s server-to-client key carried two plaintexts (" + wire::to_string(d.type) + " to " +
                               d.to.to_string() + ")");
        }
    }

    void check_counters() {
        const Counters c = srv->counters();
        uint64_t rx = 0, tx = 0;
        for (uint64_t v : c.rx) rx += v;
        for (uint64_t v : c.tx) tx += v;
        const uint64_t drops = c.total_drops() - c.drops_of(DropReason::no_tx_buffer);
        if (rx + drops != received) {
            std::string detail;
            for (unsigned t = 0; t < wire::kPacketTypeCount; ++t)
                if (c.rx[t]) detail += std::string(" rx.") + wire::to_string(static_cast<wire::PacketType>(t)) + "=" + std::to_string(c.rx[t]);
            for (unsigned i = 0; i < kDropReasonCount; ++i)
                if (c.drops[i]) detail += std::string(" ") + name_of(static_cast<DropReason>(i)) + "=" + std::to_string(c.drops[i]);
            for (unsigned i = 1; i < wire::kWireErrorCount; ++i)
                if (c.wire_drops[i]) detail += std::string(" ") + wire::name_of(static_cast<wire::WireError>(i)) + "=" + std::to_string(c.wire_drops[i]);
            FUZZ_INVARIANT("counters", false,
                           "rx " + std::to_string(rx) + " + drops " + std::to_string(drops) + " != received " +
                               std::to_string(received) + ":" + detail);
        }
        FUZZ_INVARIANT("counters", tx == out->transmitted(),
                       "tx " + std::to_string(tx) + " != transmitted " + std::to_string(out->transmitted()));
        FUZZ_INVARIANT("pool", out->free_buffers() == out->buffers() && !out->double_release() && out->queued() == 0,
                       "outbox buffers not all returned after flush");
        FUZZ_INVARIANT("capacity", srv->connections() <= config.max_clients, "more connections than max_clients");
        FUZZ_INVARIANT("capacity", srv->handshake().connected() == srv->connections(),
                       "handshake counts " + std::to_string(srv->handshake().connected()) + " connections, shard " +
                           std::to_string(srv->connections()));
    }

    // Ends a step the way the engine does: flush (seal + transmit), then check.
    void finish_step() {
        out->flush();
        take_sent();
        check_peers();
        check_counters();
        step = Step::call;
    }

    // ------------------------------------------------------------ ops

    void add(Sent s) {
        if (history.size() >= kHistory) history.erase(history.begin());
        history.push_back(s);
        burst.push_back(std::move(s));
        if (burst.size() >= burst_cap) deliver();
    }

    void deliver() {
        if (burst.empty()) return;
        snapshot();
        std::vector<std::vector<uint8_t>> copies;
        copies.reserve(burst.size());
        std::vector<server::RxDatagram> rx;
        for (const Sent& s : burst) {
            copies.push_back(s.wire);
            rx.push_back({std::span(copies.back()), source(s.src)});
        }
        received += rx.size();
        for (const Sent& s : burst)
            FUZZ_TRACE("  src %u -> server: type %u, %zu B, seq %llu, token %d%s", s.src, s.type, s.wire.size(),
                       static_cast<unsigned long long>(s.sequence), s.type == 0 ? s.request_token : s.sealed_token,
                       s.intact ? "" : " (not authentic)");
        FUZZ_TRACE("receive pass of %zu at %llu ns", rx.size(), static_cast<unsigned long long>(clock.now.ns));
        step = Step::receive;
        srv->receive(std::span(rx), clock.now);
        finish_step();
        burst.clear();
    }

    static void mutate(Program& p, std::vector<uint8_t>& w) {
        if (w.empty()) return;
        const uint16_t pos = p.u16();
        const uint8_t x = p.u8();
        w[pos % w.size()] ^= x ? x : 1;
        FUZZ_TRACE("  (mutated byte %zu of %zu)", pos % w.size(), w.size());
    }

    void op_request(Program& p) {
        Sent s;
        s.src = p.u8() % kSources;
        const unsigned t = p.u8() % kTokens;
        s.type = 0;
        s.request_token = static_cast<int>(t);
        s.wire.assign(tokens()[t].request.begin(), tokens()[t].request.end());
        s.intact = true;
        if (p.u8() & 1) {
            mutate(p, s.wire);
            s.intact = false;
        }
        sources[s.src].requested |= uint64_t{1} << t;
        add(std::move(s));
    }

    void op_response(Program& p) {
        Sent s;
        s.src = p.u8() % kSources;
        const uint8_t f = p.u8();
        s.sequence = p.u64();
        s.type = 3;
        const Source& from = sources[f & 1 ? p.u8() % kSources : s.src];
        int token = from.challenge_token;
        s.plain.assign(from.challenge.begin(), from.challenge.end());
        if (f & 2) mutate(p, s.plain);
        if (f & 8 || token < 0) token = static_cast<int>(p.u8() % kTokens);
        const MintedToken& t = tokens()[static_cast<unsigned>(token)];
        s.wire = spec_seal(t.suite, t.c2s, t.protocol_id, 3, s.sequence, 0, s.plain);
        s.sealed_token = token;
        s.intact = true;
        s.issued_challenge = issued.count(s.plain) > 0;
        FUZZ_TRACE("  (RESPONSE flags %#x, challenge of token %d, sealed under token %d, issued %d)", f,
                   from.challenge_token, token, s.issued_challenge);
        if (f & 4) {
            mutate(p, s.wire);
            s.intact = false;
        }
        add(std::move(s));
    }

    void op_packet(Program& p) {
        static constexpr unsigned kTypes[] = {4, 5, 6, 7};  // PING, PAYLOAD, DISCONNECT, PONG
        Sent s;
        s.src = p.u8() % kSources;
        Source& so = sources[s.src];
        const uint8_t tb = p.u8();
        s.type = tb & 0x80 ? 1 + tb % 7 : kTypes[tb % 4];
        const uint8_t sm = p.u8();
        switch (sm % 4) {
            case 0: s.sequence = so.next_sequence++; break;
            case 1: s.sequence = p.u64(); break;
            case 2: s.sequence = so.last_sequence; break;
            default: s.sequence = so.next_sequence + p.u8(); so.next_sequence = s.sequence + 1; break;
        }
        so.last_sequence = s.sequence;
        const unsigned width = (sm >> 2) % 9;  // 0: canonical
        // Key: the connection's at this source (else the last token it sent), or another's.
        const uint8_t ks = p.u8();
        int token = so.conn_token;
        if (token < 0)
            for (unsigned j = 0; j < kTokens; ++j)
                if (so.requested >> j & 1) token = static_cast<int>(j);
        if (token < 0 || (ks & 0xc0) == 0x80) token = static_cast<int>(ks % kTokens);
        const MintedToken& t = tokens()[static_cast<unsigned>(token)];
        const bool s2c = (ks & 0xc0) == 0xc0;
        // Body.
        const uint8_t bk = p.u8();
        std::array<uint8_t, wire::kMaxPayloadSize> b{};
        size_t n = 0;
        if (bk & 1) {
            n = std::min<size_t>(wire::kMaxPayloadSize + 8, size_t{p.u8()} * (bk & 2 ? 5 : 1));
            n = std::min(n, b.size());
            auto in = p.bytes(n);
            std::copy(in.begin(), in.end(), b.begin());
        } else if (s.type == 4) {
            wire::PingBody ping{bk & 2 ? t.client_id : static_cast<int64_t>(p.u64()), p.u16(), bool(bk & 4), p.u64()};
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
        s.wire = spec_seal(t.suite, s2c ? t.s2c : t.c2s, t.protocol_id, s.type, s.sequence, width, s.plain);
        const bool fits = width == 0 || width >= 8 || s.sequence >> (8 * width) == 0;
        s.sealed_token = s2c ? -1 : token;
        s.intact = fits;
        if (p.u8() & 1) {
            mutate(p, s.wire);
            s.intact = false;
        }
        add(std::move(s));
    }

    void op_raw(Program& p) {
        Sent s;
        s.src = p.u8() % kSources;
        const size_t n = p.u16() % 1300;
        auto in = p.bytes(n);
        s.wire.assign(in.begin(), in.end());
        s.type = s.wire.empty() ? 0 : s.wire[0] >> 4;
        add(std::move(s));
    }

    void op_replay(Program& p) {
        const uint8_t i = p.u8(), k = p.u8();
        if (history.empty()) return;
        Sent s = history[i % history.size()];
        if (k < 0x80) s.src = k % kSources;
        if (s.request_token >= 0) sources[s.src].requested |= uint64_t{1} << s.request_token;
        add(std::move(s));
    }

    server::PeerId pick_peer(Program& p) {
        const uint8_t i = p.u8();
        if (peers.empty()) return server::PeerId{i, 1};
        return peers[i % peers.size()].id;
    }

    void run(Program& p) {
        while (!p.done()) {
            const unsigned op = p.u8() % server_op::count_;
            if (op >= server_op::advance)
                FUZZ_TRACE("op %u at %llu ns: connections %u, pending %u", op,
                           static_cast<unsigned long long>(clock.now.ns), srv->connections(), srv->pending());
            switch (op) {
                case server_op::request: op_request(p); break;
                case server_op::response: op_response(p); break;
                case server_op::packet: op_packet(p); break;
                case server_op::raw: op_raw(p); break;
                case server_op::replay: op_replay(p); break;
                case server_op::pass: deliver(); break;
                case server_op::advance: {
                    deliver();
                    clock.advance(step_of(p.u8()));
                    snapshot();
                    step = Step::update;
                    srv->update(clock.now);
                    finish_step();
                    break;
                }
                case server_op::send: {
                    deliver();
                    const server::PeerId id = pick_peer(p);
                    const size_t n = p.u8();
                    auto in = p.bytes(n);
                    std::vector<uint8_t> payload(in.begin(), in.end());
                    payload.resize(n);
                    snapshot();
                    srv->send(id, payload, clock.now);
                    finish_step();
                    break;
                }
                case server_op::disconnect: {
                    deliver();
                    const server::PeerId id = pick_peer(p);
                    snapshot();
                    srv->disconnect(id, clock.now);
                    finish_step();
                    break;
                }
                case server_op::shutdown:
                    deliver();
                    snapshot();
                    srv->shutdown(clock.now);
                    finish_step();
                    break;
                case server_op::restart:
                    deliver();
                    snapshot();
                    step = Step::stop;
                    srv->stop();
                    finish_step();
                    clock.advance(kSecond);
                    ++epoch;
                    srv->start(clock.now);
                    for (Source& so : sources) so.replied = false;  // a new process has no rate state
                    break;
            }
        }
        deliver();
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
