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

        for (const auto& [target, n] : c.counts()) std::cout << target << ": " << n << " seeds\n";
    } catch (const std::exception& e) {
        std::cerr << "make_corpus: " << e.what() << "\n";
        return 1;
    }
    return 0;
}
