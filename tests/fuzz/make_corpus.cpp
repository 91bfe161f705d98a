// Writes the seed corpora of the fuzz targets from the reference vectors.
//
//   make_corpus VECTORS_JSON OUTDIR
//
// creates OUTDIR/fuzz_<target>/ for every target and fills it with seeds (file names are the
// vector names, so regenerating overwrites instead of piling up). Layouts match the targets:
//   fuzz_header          every packet wire and every REQUEST wire
//   fuzz_packet          selector byte (fuzz_common.hpp) + wire (raw mode, the vector's own
//                        key and AD protocol id), selector + header + plaintext body (seal
//                        mode, both suites), and a few structured-mode seeds per type
//   fuzz_*_body          plaintext_body of every packet of that type (CHALLENGE and RESPONSE
//                        share fuzz_challenge_body)
//   fuzz_request         REQUEST wires
//   fuzz_connect_token   tokens
//   fuzz_private_token   private_plaintext[0, 1008)
//   fuzz_challenge_token encrypted challenge token (300 B) + sequence u64 LE, from
//                        challenge_tokens[] and the CHALLENGE/RESPONSE packets' fields
//   fuzz_address         server address records and their text forms
//   fuzz_server          programs (fuzz_session.hpp): handshakes to connected traffic, DENIED
//   fuzz_client          when full, timeouts, disconnects, restarts, token reuse; the client
//                        side: handshake, fallback, DENIED, timeouts, disconnect, reconnect
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "protocol/wire/address.hpp"
#include "protocol/wire/bytes.hpp"
#include "protocol/wire/constants.hpp"
#include "tests/fuzz/fuzz_common.hpp"
#include "tests/fuzz/fuzz_session.hpp"

namespace fs = std::filesystem;
using json = nlohmann::json;
using Bytes = std::vector<uint8_t>;
using namespace pomelo;

namespace {

Bytes hex(const std::string& s) {
    if (s.size() % 2) throw std::invalid_argument("odd hex length: " + s.substr(0, 16));
    Bytes out(s.size() / 2);
    for (size_t i = 0; i < out.size(); ++i) out[i] = static_cast<uint8_t>(std::stoul(s.substr(2 * i, 2), nullptr, 16));
    return out;
}

uint64_t u64_of(const json& j) {
    if (j.is_number()) return j.get<uint64_t>();
    const std::string s = j.get<std::string>();
    if (s.rfind("0x", 0) == 0) return std::stoull(s.substr(2), nullptr, 16);
    if (!s.empty() && s[0] == '-') return static_cast<uint64_t>(std::stoll(s));
    return std::stoull(s);
}

Bytes le64(uint64_t v) {
    Bytes b(8);
    wire::store_le(b.data(), v, 8);
    return b;
}

Bytes cat(Bytes a, const Bytes& b) {
    a.insert(a.end(), b.begin(), b.end());
    return a;
}

class Corpus {
public:
    explicit Corpus(fs::path root) : root_(std::move(root)) {}
    void add(const std::string& target, const std::string& name, const Bytes& bytes) {
        const fs::path dir = root_ / target;
        fs::create_directories(dir);
        std::ofstream f(dir / ("seed-" + name), std::ios::binary | std::ios::trunc);
        f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
        if (!f) throw std::runtime_error("cannot write " + (dir / name).string());
        ++count_[target];
    }
    void add_text(const std::string& target, const std::string& name, const std::string& s) {
        add(target, name, Bytes(s.begin(), s.end()));
    }
    const std::map<std::string, int>& counts() const { return count_; }

private:
    fs::path root_;
    std::map<std::string, int> count_;
};

uint8_t key_selector(const std::string& key_hex, const json& common) {
    if (key_hex == common["client_to_server_key"].get<std::string>()) return fuzz::selector::kKeyC2S;
    if (key_hex == common["server_to_client_key"].get<std::string>()) return fuzz::selector::kKeyS2C;
    if (key_hex == common["zero_key"].get<std::string>()) return fuzz::selector::kKeyZero;
    if (key_hex == common["private_key"].get<std::string>()) return fuzz::selector::kKeyPrivate;
    throw std::runtime_error("packet key is none of the common keys: " + key_hex);
}


// ---------------------------------------------------------------- state-machine programs

namespace ss = fuzz::session;
constexpr uint64_t kPreSeq = uint64_t{1} << 63;

// fuzz_server programs, op layouts as fuzz_server.cpp reads them.
struct ServerProgram : ss::ProgramWriter {
    // max_clients, max_pending, token_history, disconnect packets; outbox 8 buffers, burst 8.
    ServerProgram(unsigned max_clients, unsigned max_pending, unsigned history, unsigned disconnects = 10,
                  unsigned flags = 0, unsigned buffers = 8) {
        u8(max_clients - 1).u8(max_pending - 1).u8(history - 1).u8(flags | (disconnects - 1) << 4);
        u8(7 | (buffers - 1) << 3).u8(15);
    }
    ServerProgram& request(unsigned src, unsigned token) {
        u8(ss::server_op::request).u8(src).u8(token).u8(0);
        return *this;
    }
    // A REQUEST with one byte flipped (xor 1) at `pos`.
    ServerProgram& mutated_request(unsigned src, unsigned token, unsigned pos) {
        u8(ss::server_op::request).u8(src).u8(token).u8(1).u16(pos).u8(1);
        return *this;
    }
    ServerProgram& response(unsigned src, uint64_t seq = kPreSeq | 0x1234) {
        u8(ss::server_op::response).u8(src).u8(0).u64(seq);
        return *this;
    }
    ServerProgram& ping(unsigned src, unsigned ping_seq) {
        u8(ss::server_op::packet).u8(src).u8(0).u8(0).u8(0).u8(2).u16(ping_seq).u64(0).u8(0);
        return *this;
    }
    ServerProgram& pong(unsigned src, unsigned ping_seq, uint64_t recv, uint64_t delta) {
        u8(ss::server_op::packet).u8(src).u8(3).u8(0).u8(0).u8(0).u16(ping_seq).u64(recv).u64(delta).u8(0);
        return *this;
    }
    ServerProgram& payload(unsigned src, std::string_view text) {
        u8(ss::server_op::packet).u8(src).u8(1).u8(0).u8(0).u8(0).u8(static_cast<unsigned>(text.size() - 1));
        bytes({reinterpret_cast<const uint8_t*>(text.data()), text.size()}).u8(0);
        return *this;
    }
    ServerProgram& disconnect_packet(unsigned src) {
        u8(ss::server_op::packet).u8(src).u8(2).u8(0).u8(0).u8(0).u8(0);
        return *this;
    }
    ServerProgram& pass() { return static_cast<ServerProgram&>(u8(ss::server_op::pass)); }
    ServerProgram& advance(unsigned step, unsigned times = 1) {
        for (unsigned i = 0; i < times; ++i) u8(ss::server_op::advance).u8(step);
        return *this;
    }
    ServerProgram& send(unsigned peer, std::string_view text) {
        u8(ss::server_op::send).u8(peer).u8(static_cast<unsigned>(text.size()));
        bytes({reinterpret_cast<const uint8_t*>(text.data()), text.size()});
        return *this;
    }
    ServerProgram& disconnect(unsigned peer) { return static_cast<ServerProgram&>(u8(ss::server_op::disconnect).u8(peer)); }
    ServerProgram& shutdown() { return static_cast<ServerProgram&>(u8(ss::server_op::shutdown)); }
    ServerProgram& restart() { return static_cast<ServerProgram&>(u8(ss::server_op::restart)); }
    // REQUEST, CHALLENGE, RESPONSE, the server's PING: connected.
    ServerProgram& handshake(unsigned src, unsigned token) { return request(src, token).pass().response(src).pass(); }
    ServerProgram& traffic(unsigned src) {
        return ping(src, 0).pass().payload(src, "hello").pong(src, 0, 1'000'000'000, 0).pass().advance(7).send(0, "echo");
    }
};

// fuzz_client programs.
struct ClientProgram : ss::ProgramWriter {
    explicit ClientProgram(unsigned disconnects = 10, bool reference_denied = false) {
        u8((reference_denied ? 1 : 0) | (disconnects - 1) << 4).u8(63);
    }
    ClientProgram& connect(unsigned token) { return static_cast<ClientProgram&>(u8(ss::client_op::connect).u8(token)); }
    ClientProgram& challenge(unsigned from = 0, uint64_t seq = kPreSeq | 77, unsigned keysel = 0) {
        u8(ss::client_op::challenge).u8(from).u64(seq).u64(5).u8(0x5a).u8(keysel).u8(0);
        return *this;
    }
    ClientProgram& denied(unsigned from = 0, unsigned keysel = 0, uint64_t seq = kPreSeq | 78) {
        u8(ss::client_op::denied).u8(from).u64(seq).u8(keysel).u8(0);
        return *this;
    }
    ClientProgram& ping(int64_t, unsigned ping_seq, bool time) {
        u8(ss::client_op::packet).u8(0).u8(0).u8(0).u8(time ? 6 : 2).u16(ping_seq);
        u64(time ? 123'456'789 : 0).u8(0).u8(0);
        return *this;
    }
    ClientProgram& payload(std::string_view text) {
        u8(ss::client_op::packet).u8(0).u8(1).u8(0).u8(0).u8(static_cast<unsigned>(text.size() - 1));
        bytes({reinterpret_cast<const uint8_t*>(text.data()), text.size()}).u8(0).u8(0);
        return *this;
    }
    ClientProgram& pong(unsigned ping_seq) {
        u8(ss::client_op::packet).u8(0).u8(3).u8(0).u8(0).u16(ping_seq).u64(1'000'000'000).u64(10).u8(0).u8(0);
        return *this;
    }
    ClientProgram& disconnect_packet() {
        u8(ss::client_op::packet).u8(0).u8(2).u8(0).u8(0).u8(0).u8(0);
        return *this;
    }
    ClientProgram& advance(unsigned step, unsigned times = 1) {
        for (unsigned i = 0; i < times; ++i) u8(ss::client_op::advance).u8(step);
        return *this;
    }
    ClientProgram& send(std::string_view text) {
        u8(ss::client_op::send).u8(static_cast<unsigned>(text.size()));
        bytes({reinterpret_cast<const uint8_t*>(text.data()), text.size()});
        return *this;
    }
    ClientProgram& disconnect() { return static_cast<ClientProgram&>(u8(ss::client_op::disconnect)); }
    ClientProgram& reset() { return static_cast<ClientProgram&>(u8(ss::client_op::reset)); }
    ClientProgram& replay(unsigned i) { return static_cast<ClientProgram&>(u8(ss::client_op::replay).u8(i)); }
    ClientProgram& handshake(unsigned token) { return connect(token).advance(7).challenge().ping(0, 0, true); }
};

void add_session_seeds(Corpus& c) {
    using ss::token_index;
    const unsigned a = token_index(0, ss::kValid), b = token_index(1, ss::kValid);
    const unsigned aes = token_index(2, ss::kValidAes), never = token_index(3, ss::kNoTimeout);
    // Server: connected traffic from IPv4 and IPv6 sources, then every way a peer ends.
    c.add("fuzz_server", "connect-traffic", ServerProgram(4, 4, 16).handshake(0, a).traffic(0).disconnect_packet(0).pass().b);
    c.add("fuzz_server", "connect-ipv6-aes",
          ServerProgram(4, 4, 16).handshake(3, aes).traffic(3).handshake(4, b).ping(4, 0).pass().advance(10).b);
    c.add("fuzz_server", "server-disconnect", ServerProgram(2, 2, 16).handshake(0, a).ping(0, 0).pass().disconnect(0).advance(7, 11).b);
    c.add("fuzz_server", "shutdown", ServerProgram(2, 2, 16).handshake(0, a).handshake(3, b).ping(3, 0).pass().shutdown().advance(7, 11).b);
    c.add("fuzz_server", "timeout", ServerProgram(2, 2, 16).handshake(0, a).handshake(5, never).advance(14).advance(7).b);
    // Capacity: the second client gets a DENIED, at its REQUEST and at its RESPONSE.
    c.add("fuzz_server", "full-at-request", ServerProgram(1, 2, 16).handshake(0, a).request(3, b).pass().b);
    c.add("fuzz_server", "full-at-response",
          ServerProgram(1, 2, 16).request(0, a).request(3, b).pass().response(0).response(3).pass().b);
    // One pending slot, two handshakes in one pass: the slot is recycled under a queued CHALLENGE.
    c.add("fuzz_server", "pending-recycled", ServerProgram(4, 1, 16).request(0, a).request(3, b).pass().response(0).pass().b);
    // Two tokens from one source in one pass, one buffer: the first CHALLENGE (token 3's
    // challenge token) is sealed at flush under the pending record's keys, rewritten by then to
    // token 0's; the RESPONSE under token 0's keys connects with token 3's identity.
    c.add("fuzz_server", "pending-rewritten",
          ServerProgram(4, 4, 16, 10, 0, 1).request(0, token_index(0, ss::kShortLived)).request(0, a).pass().response(0).pass().b);
    // A REQUEST whose ciphertext does not authenticate but whose tag is a pending record's.
    c.add("fuzz_server", "request-mutated-cached", ServerProgram(4, 4, 16).request(0, a).pass().advance(9).mutated_request(0, a, 915).pass().b);
    // Two REQUESTs from one source in one pass: the rate limit must let one reply through.
    c.add("fuzz_server", "rate-limit", ServerProgram(4, 4, 16).request(0, a).request(0, a).pass().advance(3).request(0, a).pass().b);
    // Token reuse: after a restart, and after the history forgot the token.
    c.add("fuzz_server", "restart-reuse",
          ServerProgram(4, 4, 16).handshake(0, a).traffic(0).disconnect_packet(0).pass().restart().handshake(0, a).ping(0, 0).pass().b);
    ServerProgram evict(4, 4, 1);
    evict.handshake(0, a).traffic(0).disconnect_packet(0).pass().advance(7).request(1, b).pass().advance(7).handshake(0, a).ping(0, 0).pass();
    c.add("fuzz_server", "history-evicts", evict.b);
    // Tokens the server must refuse, and junk.
    ServerProgram refused(4, 4, 16);
    for (ss::TokenKind k : {ss::kExpired, ss::kWrongProtocol, ss::kNotListed, ss::kShortLived, ss::kSameClientId})
        refused.request(static_cast<unsigned>(k) % ss::kSources, token_index(0, k)).pass().advance(7);
    refused.handshake(0, a).advance(12).request(1, token_index(0, ss::kSameClientId)).pass();
    c.add("fuzz_server", "refused-tokens", refused.b);

    // Client: the whole life of a connection, fallback, DENIED, timeouts.
    c.add("fuzz_client", "connect-traffic",
          ClientProgram().handshake(a).payload("hello").pong(1).advance(7).send("echo").ping(0, 1, false).advance(7, 3).disconnect_packet().b);
    c.add("fuzz_client", "disconnect", ClientProgram().handshake(a).advance(7).disconnect().advance(7, 10).b);
    c.add("fuzz_client", "disconnect-once", ClientProgram(1).handshake(aes).advance(7).disconnect().advance(7).b);
    c.add("fuzz_client", "denied", ClientProgram().connect(a).advance(7).denied().advance(7).denied().b);
    c.add("fuzz_client", "denied-reference", ClientProgram(10, true).connect(b).denied(0, 0xff).denied(0, 0xff).b);
    c.add("fuzz_client", "fallback",
          ClientProgram().connect(token_index(0, ss::kFallback)).advance(12).advance(7).challenge().ping(0, 0, true).send("x").b);
    c.add("fuzz_client", "timeouts", ClientProgram().connect(a).advance(12, 3).connect(b).advance(7).challenge().advance(12, 3).b);
    c.add("fuzz_client", "connection-lost", ClientProgram().handshake(never).advance(14).handshake(a).advance(7).advance(14).b);
    c.add("fuzz_client", "wrong-source-and-keys",
          ClientProgram().connect(a).challenge(0xc5).challenge(0, kPreSeq | 1, 0x81).challenge(0, kPreSeq | 2, 0xc0).challenge().replay(3).ping(0, 0, true).replay(4).b);
    // The same token connected twice: the connection-phase counter must not restart.
    c.add("fuzz_client", "reconnect-same-token", ClientProgram().handshake(a).advance(7).connect(a).advance(7).challenge().ping(0, 0, true).b);
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 3) {
        std::cerr << "usage: " << argv[0] << " VECTORS_JSON OUTDIR\n";
        return 2;
    }
    try {
        std::ifstream f(argv[1]);
        if (!f) throw std::runtime_error(std::string("cannot open ") + argv[1]);
        const json doc = json::parse(f);
        const json& common = doc.at("common_inputs");
        const uint64_t protocol_id = u64_of(common.at("protocol_id"));
        if (protocol_id != fuzz::kProtocolId) throw std::runtime_error("protocol id differs from fuzz_common.hpp");
        if (hex(common.at("challenge_key").get<std::string>()) != Bytes(fuzz::challenge_key().bytes.begin(), fuzz::challenge_key().bytes.end()))
            throw std::runtime_error("challenge key differs from fuzz_common.hpp");
        Corpus c(argv[2]);

        for (const json& p : doc.at("packets")) {
            const std::string name = p.at("name");
            const std::string type = p.at("type");
            const Bytes wire = hex(p.at("wire"));
            const Bytes body = hex(p.at("plaintext_body"));
            c.add("fuzz_header", name, wire);

            uint8_t sel = key_selector(p.at("key"), common);
            if (u64_of(p.at("protocol_id_in_ad")) == 0) sel |= fuzz::selector::kProtocolIdZero;
            c.add("fuzz_packet", "raw-" + name, cat({sel}, wire));
            const size_t header = 1 + p.at("sequence_bytes").get<size_t>();
            const Bytes plain_datagram = cat(Bytes(wire.begin(), wire.begin() + static_cast<ptrdiff_t>(header)), body);
            c.add("fuzz_packet", "seal-" + name, cat({static_cast<uint8_t>(sel | fuzz::selector::kModeSeal)}, plain_datagram));
            c.add("fuzz_packet", "seal-aes-" + name,
                  cat({static_cast<uint8_t>(sel | fuzz::selector::kModeSeal | fuzz::selector::kAesGcm)}, plain_datagram));

            if (type == "ping") c.add("fuzz_ping_body", name, body);
            if (type == "pong") c.add("fuzz_pong_body", name, body);
            if (type == "payload") c.add("fuzz_payload_body", name, body);
            if (type == "challenge" || type == "response") {
                c.add("fuzz_challenge_body", name, body);
                const json& fl = p.at("fields");
                if (!fl.contains("challenge_key") || fl["challenge_key"] == common["challenge_key"])
                    c.add("fuzz_challenge_token", name,
                          cat(hex(fl.at("encrypted_challenge_token")), le64(u64_of(fl.at("token_sequence")))));
            }
        }
        // Structured-mode packet seeds: FuzzedDataProvider takes integers from the end, so the
        // last byte picks the type (1 + b % 7); the front holds the bytes of token / payload.
        for (unsigned t = 0; t < 7; ++t) {
            for (unsigned aes = 0; aes < 2; ++aes) {
                Bytes b(t == 4 ? 160 : 340);
                for (size_t i = 0; i < b.size(); ++i) b[i] = static_cast<uint8_t>(i * 7 + 3);
                b.back() = static_cast<uint8_t>(t);
                const uint8_t sel = fuzz::selector::kModeStructured | (aes ? fuzz::selector::kAesGcm : 0);
                c.add("fuzz_packet", "structured-" + std::to_string(t + 1) + (aes ? "-aes" : ""), cat({sel}, b));
            }
        }

        for (const json& q : doc.at("request_packets")) {
            const Bytes wire = hex(q.at("wire"));
            c.add("fuzz_header", q.at("name"), wire);
            c.add("fuzz_request", q.at("name"), wire);
        }

        for (const json& t : doc.at("connect_tokens")) {
            const std::string name = t.at("name");
            c.add("fuzz_connect_token", name, hex(t.at("token")));
            const Bytes plain = hex(t.at("private_plaintext"));
            c.add("fuzz_private_token", name, Bytes(plain.begin(), plain.begin() + wire::kPrivateTokenPlainSize));
            unsigned i = 0;
            for (const json& a : t.at("inputs").at("server_addresses")) {
                const std::string text = a.at("address");
                const auto addr = wire::Address::parse(text);
                if (!addr) throw std::runtime_error("vector address does not parse: " + text);
                std::array<uint8_t, 32> rec{};
                wire::ByteWriter w(rec);
                wire::write_address_record(w, *addr);
                const std::string id = name + "-" + std::to_string(i++);
                c.add("fuzz_address", "record-" + id, Bytes(rec.begin(), rec.begin() + static_cast<ptrdiff_t>(w.written())));
                c.add_text("fuzz_address", "text-" + id, text);
            }
        }

        for (const json& t : doc.at("challenge_tokens")) {
            const std::string name = t.at("name");
            if (t.at("key") != common.at("challenge_key")) continue;
            c.add("fuzz_challenge_token", name, cat(hex(t.at("encrypted")), le64(u64_of(t.at("sequence")))));
            // Structured seed: the plaintext (client id | user data) plus a little more.
            Bytes s = hex(t.at("plaintext"));
            s.resize(8 + 8 + 2 + wire::kUserDataSize);
            c.add("fuzz_challenge_token", "structured-" + name, s);
        }

        add_session_seeds(c);
        for (const auto& [target, n] : c.counts()) std::cout << target << ": " << n << " seeds\n";
    } catch (const std::exception& e) {
        std::cerr << "make_corpus: " << e.what() << "\n";
        return 1;
    }
    return 0;
}
