// Burst AEAD backends (crypto/burst.hpp) against the single-packet AEAD (crypto/aead.hpp) and
// against published known-answer vectors, for every backend built here: libsodium always,
// Intel IPsec-MB when make_ipsec_mb_burst() can run on this host.
#include <gtest/gtest.h>
#include <sodium.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <ostream>
#include <random>
#include <string>
#include <vector>

#include "protocol/crypto/aead.hpp"
#include "protocol/crypto/burst.hpp"
#include "tests/support/vectors.hpp"

namespace pomelo::test {
namespace {

using crypto::AeadOp;
using crypto::BurstAead;
using crypto::Key;
using crypto::Suite;

constexpr size_t kAdSize = 21;  // version info (12) || protocol id (8) || prefix (1), §7.5
constexpr size_t kMaxBody = 1225;

bool aes_available() { return crypto::suite_available(Suite::aes256gcm); }

// libsodium declares the text pointer nonnull even for an empty message, so empty bodies point
// at a byte, as they do in a datagram (just past the header).
uint8_t* data_of(Bytes& v) {
    static uint8_t empty;
    return v.empty() ? &empty : v.data();
}

// ---------------------------------------------------------------- backends

struct Backend {
    std::string label;
    std::unique_ptr<BurstAead> (*make)();
};
void PrintTo(const Backend& b, std::ostream* os) { *os << b.label; }

std::string why_no_ipsec_mb() {
#if defined(POMELO_HAVE_IPSEC_MB)
    return "IPsec-MB is built in but cannot run on this host (no AES-NI/PCLMULQDQ, or the manager failed "
           "to initialise); libsodium serves";
#else
    return "built without IPsec-MB (libIPSec_MB or intel-ipsec-mb.h not found at configure time); "
           "libsodium serves";
#endif
}

class BurstAeadTest : public ::testing::TestWithParam<Backend> {
protected:
    void SetUp() override {
        ASSERT_TRUE(crypto::init());
        aead_ = GetParam().make();
        if (!aead_) GTEST_SKIP() << GetParam().label << ": make_ipsec_mb_burst() is nullptr: " << why_no_ipsec_mb();
        std::printf("[ backend  ] %s\n", aead_->name());
    }
    std::unique_ptr<BurstAead> aead_;
};

// ---------------------------------------------------------------- random bursts

std::vector<Key> make_keys(std::mt19937_64& rng, size_t n) {
    std::vector<Key> keys(n);
    for (Key& k : keys)
        for (uint8_t& b : k.bytes) b = static_cast<uint8_t>(rng());
    return keys;
}

// A burst of ops over buffers it owns. `plain` keeps the plaintext, `text` and `tag` are the
// buffers the ops point to.
struct Burst {
    std::vector<Suite> suite;
    std::vector<size_t> key;
    std::vector<uint64_t> sequence;
    std::vector<Bytes> plain, text;
    std::vector<std::array<uint8_t, kAdSize>> ad;
    std::vector<std::array<uint8_t, 16>> tag;
    std::vector<AeadOp> ops;

    size_t size() const { return ops.size(); }
};

Burst random_burst(std::mt19937_64& rng, size_t n, const std::vector<Key>& keys) {
    Burst b;
    b.suite.resize(n);
    b.key.resize(n);
    b.sequence.resize(n);
    b.plain.resize(n);
    b.text.resize(n);
    b.ad.resize(n);
    b.tag.resize(n);
    b.ops.resize(n);
    for (size_t i = 0; i < n; ++i) {
        b.suite[i] = aes_available() && rng() % 2 ? Suite::aes256gcm : Suite::chacha20poly1305;
        // Runs of the same key (one peer's packets) and scattered keys.
        b.key[i] = (i > 0 && rng() % 3 == 0) ? b.key[i - 1] : rng() % keys.size();
        b.sequence[i] = rng() % 4 == 0 ? rng() % 1000 : rng();
        size_t size;
        switch (rng() % 5) {
            case 0: size = 0; break;                      // DENIED, DISCONNECT
            case 1: size = 1 + rng() % 64; break;         // PING, PONG, small payloads
            case 2: size = kMaxBody - rng() % 3; break;   // full datagrams
            default: size = rng() % (kMaxBody + 1); break;
        }
        b.plain[i].resize(size);
        for (uint8_t& x : b.plain[i]) x = static_cast<uint8_t>(rng());
        b.text[i] = b.plain[i];
        for (uint8_t& x : b.ad[i]) x = static_cast<uint8_t>(rng());
        b.tag[i].fill(0);
    }
    for (size_t i = 0; i < n; ++i) {
        AeadOp& op = b.ops[i];
        op.suite = b.suite[i];
        op.key = &keys[b.key[i]];
        op.prepared = nullptr;
        op.sequence = b.sequence[i];
        op.ad = b.ad[i].data();
        op.ad_size = kAdSize;
        op.text = data_of(b.text[i]);
        op.size = static_cast<uint32_t>(b.text[i].size());
        op.tag = b.tag[i].data();
        op.ok = false;
    }
    return b;
}

// crypto::packet_seal of op i, on copies.
std::pair<Bytes, std::array<uint8_t, 16>> reference_seal(const Burst& b, size_t i, const std::vector<Key>& keys) {
    Bytes c = b.plain[i];
    std::array<uint8_t, 16> t{};
    EXPECT_TRUE(crypto::packet_seal(b.suite[i], keys[b.key[i]], b.sequence[i], b.ad[i], std::span(data_of(c), c.size()),
                                    t.data()));
    return {c, t};
}

const size_t kBurstSizes[] = {1, 7, 32, 100, 300};

TEST_P(BurstAeadTest, SealMatchesPacketSealOnRandomMixedBursts) {
    std::mt19937_64 rng(0x5EA1);
    const auto keys = make_keys(rng, 9);
    for (size_t n : kBurstSizes) {
        Burst b = random_burst(rng, n, keys);
        aead_->seal(b.ops);
        for (size_t i = 0; i < n; ++i) {
            SCOPED_TRACE("burst " + std::to_string(n) + " op " + std::to_string(i) + " size " +
                         std::to_string(b.ops[i].size) + " suite " + crypto::to_string(b.suite[i]));
            const auto [c, t] = reference_seal(b, i, keys);
            EXPECT_TRUE(b.ops[i].ok);
            EXPECT_EQ(to_hex(b.text[i]), to_hex(c));
            EXPECT_EQ(to_hex(b.tag[i]), to_hex(t));
        }
    }
}

TEST_P(BurstAeadTest, OpenReturnsThePlaintextOfValidOps) {
    std::mt19937_64 rng(0x0BE2);
    const auto keys = make_keys(rng, 9);
    for (size_t n : kBurstSizes) {
        Burst b = random_burst(rng, n, keys);
        for (size_t i = 0; i < n; ++i) {  // sealed by the reference, opened by the backend
            auto [c, t] = reference_seal(b, i, keys);
            b.text[i] = c;
            b.tag[i] = t;
            b.ops[i].text = data_of(b.text[i]);
        }
        aead_->open(b.ops);
        for (size_t i = 0; i < n; ++i) {
            SCOPED_TRACE("burst " + std::to_string(n) + " op " + std::to_string(i));
            EXPECT_TRUE(b.ops[i].ok);
            EXPECT_EQ(b.text[i], b.plain[i]);
        }
    }
}

TEST_P(BurstAeadTest, SealThenOpenRoundTrips) {
    std::mt19937_64 rng(0x7219);
    const auto keys = make_keys(rng, 4);
    Burst b = random_burst(rng, 300, keys);
    aead_->seal(b.ops);
    for (AeadOp& op : b.ops) op.ok = false;
    aead_->open(b.ops);
    for (size_t i = 0; i < b.size(); ++i) {
        EXPECT_TRUE(b.ops[i].ok) << i;
        EXPECT_EQ(b.text[i], b.plain[i]) << i;
    }
}

enum class Tamper { none, ciphertext, tag, ad, sequence, suite, key };

TEST_P(BurstAeadTest, TamperedOpsFailAndAreZeroedWhileTheRestOpen) {
    std::mt19937_64 rng(0x7A3B);
    const auto keys = make_keys(rng, 9);
    for (size_t n : {size_t{7}, size_t{100}, size_t{300}}) {
        Burst b = random_burst(rng, n, keys);
        std::vector<Tamper> how(n, Tamper::none);
        for (size_t i = 0; i < n; ++i) {
            auto [c, t] = reference_seal(b, i, keys);
            b.text[i] = c;
            b.tag[i] = t;
            b.ops[i].text = data_of(b.text[i]);
            if (rng() % 2) continue;  // about half stay valid
            switch (rng() % 6) {
                case 0:
                    if (b.text[i].empty()) continue;  // nothing to flip: stays valid
                    how[i] = Tamper::ciphertext;
                    b.text[i][rng() % b.text[i].size()] ^= static_cast<uint8_t>(1u << (rng() % 8));
                    break;
                case 1:
                    how[i] = Tamper::tag;
                    b.tag[i][rng() % 16] ^= static_cast<uint8_t>(1u << (rng() % 8));
                    break;
                case 2:
                    how[i] = Tamper::ad;
                    b.ad[i][rng() % kAdSize] ^= static_cast<uint8_t>(1u << (rng() % 8));
                    break;
                case 3:
                    how[i] = Tamper::sequence;
                    b.ops[i].sequence += 1 + rng() % 3;
                    break;
                case 4:
                    if (!aes_available()) continue;
                    how[i] = Tamper::suite;
                    b.ops[i].suite = b.suite[i] == Suite::aes256gcm ? Suite::chacha20poly1305 : Suite::aes256gcm;
                    break;
                case 5:
                    how[i] = Tamper::key;
                    b.ops[i].key = &keys[(b.key[i] + 1) % keys.size()];
                    break;
            }
        }
        aead_->open(b.ops);
        size_t failed = 0;
        for (size_t i = 0; i < n; ++i) {
            SCOPED_TRACE("burst " + std::to_string(n) + " op " + std::to_string(i) + " tamper " +
                         std::to_string(static_cast<int>(how[i])));
            if (how[i] == Tamper::none) {
                EXPECT_TRUE(b.ops[i].ok);
                EXPECT_EQ(b.text[i], b.plain[i]);
            } else {
                ++failed;
                EXPECT_FALSE(b.ops[i].ok);
                EXPECT_EQ(b.text[i], Bytes(b.text[i].size(), 0)) << "a failed op's text must be zeroed";
            }
        }
        EXPECT_GT(failed, 0u);
    }
}

TEST_P(BurstAeadTest, EmptyBodiesAuthenticateTheAdOnly) {
    std::mt19937_64 rng(0xE4);
    const auto keys = make_keys(rng, 2);
    for (Suite suite : {Suite::chacha20poly1305, Suite::aes256gcm}) {
        if (suite == Suite::aes256gcm && !aes_available()) continue;
        std::array<uint8_t, kAdSize> ad{};
        for (uint8_t& x : ad) x = static_cast<uint8_t>(rng());
        std::array<uint8_t, 16> tag{}, ref{};
        uint8_t body = 0x55;  // an empty body still points somewhere; nothing there may change
        ASSERT_TRUE(crypto::packet_seal(suite, keys[0], 42, ad, std::span(&body, 0), ref.data()));
        AeadOp op{suite, &keys[0], nullptr, 42, ad.data(), kAdSize, &body, 0, tag.data(), false};
        aead_->seal(std::span(&op, 1));
        EXPECT_TRUE(op.ok);
        EXPECT_EQ(to_hex(tag), to_hex(ref));
        op.ok = false;
        aead_->open(std::span(&op, 1));
        EXPECT_TRUE(op.ok);
        ad[20] ^= 1;  // the prefix byte: the only thing an empty packet authenticates besides the rest of the AD
        aead_->open(std::span(&op, 1));
        EXPECT_FALSE(op.ok);
        EXPECT_EQ(body, 0x55);
    }
}

TEST_P(BurstAeadTest, EmptyBurstIsANoOp) {
    aead_->seal({});
    aead_->open({});
}

TEST_P(BurstAeadTest, PreparedKeysGiveTheSameBytes) {
    std::mt19937_64 rng(0x93E9);
    const auto keys = make_keys(rng, 5);
    std::vector<crypto::PreparedKey> prepared(keys.size());
    bool uses = false;
    for (size_t k = 0; k < keys.size(); ++k) {
        EXPECT_FALSE(aead_->prepare(keys[k], Suite::chacha20poly1305, prepared[k]))
            << "ChaCha20 takes the raw key: nothing to prepare";
        if (aes_available()) uses = aead_->prepare(keys[k], Suite::aes256gcm, prepared[k]);
    }
    if (!uses) {
        std::printf("[ info     ] %s prepares no keys: prepared ops are the unprepared ones\n", aead_->name());
        return;
    }
    for (size_t n : kBurstSizes) {
        Burst b = random_burst(rng, n, keys);
        Burst plain_copy = b;  // same content, pointers re-aimed below
        for (size_t i = 0; i < n; ++i) {
            // Half of the AES-GCM ops carry their prepared key, the rest expand it per call.
            if (b.suite[i] == Suite::aes256gcm && rng() % 2) b.ops[i].prepared = &prepared[b.key[i]];
            AeadOp& u = plain_copy.ops[i];
            u.text = data_of(plain_copy.text[i]);
            u.ad = plain_copy.ad[i].data();
            u.tag = plain_copy.tag[i].data();
        }
        aead_->seal(b.ops);
        aead_->seal(plain_copy.ops);
        for (size_t i = 0; i < n; ++i) {
            SCOPED_TRACE("burst " + std::to_string(n) + " op " + std::to_string(i));
            const auto [c, t] = reference_seal(b, i, keys);
            EXPECT_TRUE(b.ops[i].ok);
            EXPECT_EQ(to_hex(b.text[i]), to_hex(c));
            EXPECT_EQ(to_hex(b.tag[i]), to_hex(t));
            EXPECT_EQ(b.text[i], plain_copy.text[i]);
            EXPECT_EQ(b.tag[i], plain_copy.tag[i]);
        }
        aead_->open(b.ops);
        for (size_t i = 0; i < n; ++i) {
            EXPECT_TRUE(b.ops[i].ok) << i;
            EXPECT_EQ(b.text[i], b.plain[i]) << i;
        }
    }
}

// ---------------------------------------------------------------- known answers, every backend

// One op over the given vector; checks seal (ciphertext, tag) and open (plaintext back, a
// flipped tag rejected).
void known_answer(BurstAead& aead, Suite suite, const Key& key, uint64_t sequence, const Bytes& ad,
                  const Bytes& plain, const std::string& want_cipher, const std::string& want_tag) {
    Bytes text = plain;
    std::array<uint8_t, 16> tag{};
    AeadOp op{suite, &key, nullptr, sequence, ad.empty() ? nullptr : ad.data(), static_cast<uint32_t>(ad.size()),
              data_of(text), static_cast<uint32_t>(text.size()), tag.data(), false};
    aead.seal(std::span(&op, 1));
    EXPECT_TRUE(op.ok);
    EXPECT_EQ(to_hex(text), want_cipher);
    EXPECT_EQ(to_hex(tag), want_tag);

    op.ok = false;
    aead.open(std::span(&op, 1));
    EXPECT_TRUE(op.ok);
    EXPECT_EQ(text, plain);

    aead.seal(std::span(&op, 1));
    tag[15] ^= 0x80;
    aead.open(std::span(&op, 1));
    EXPECT_FALSE(op.ok);
}

// McGrew & Viega, "The Galois/Counter Mode of Operation (GCM)", revised 2005, Appendix B,
// Test Cases 13 and 14 (256-bit key): key and IV all zero. An all-zero 12-byte IV is our nonce
// layout (00 00 00 00 || sequence u64 LE) for sequence 0, so these run through the backends.
TEST_P(BurstAeadTest, AesGcmMcGrewViegaTestCases13And14) {
    if (!aes_available()) GTEST_SKIP() << "no AES-NI: the aesgcm suite is unavailable on this host";
    const Key zero{};
    {
        SCOPED_TRACE("test case 13: empty plaintext, empty AAD");
        known_answer(*aead_, Suite::aes256gcm, zero, 0, {}, {}, "", "530f8afbc74536b9a963b4f1c4cb738b");
    }
    {
        SCOPED_TRACE("test case 14: one zero block, empty AAD");
        known_answer(*aead_, Suite::aes256gcm, zero, 0, {}, Bytes(16, 0), "cea7403d4d606b6e074ec5d3baf39d18",
                     "d0d1c8a799996bf0265b98b5d48ab919");
    }
}

// RFC 8439 Appendix A.5 (the ChaCha20-Poly1305 AEAD decryption vector): its nonce
// 00 00 00 00 01 02 03 04 05 06 07 08 is our layout with sequence 0x0807060504030201.
TEST_P(BurstAeadTest, ChaChaPolyRfc8439AppendixA5) {
    const Key key = key_of("1c9240a5eb55d38af333888604f6b5f0473917c1402b80099dca5cbc207075c0");
    ASSERT_EQ(to_hex(crypto::packet_nonce(0x0807060504030201ull)), "000000000102030405060708");
    const Bytes ad = hex("f33388860000000000004e91");
    const Bytes plain = hex(
        "496e7465726e65742d4472616674732061726520647261667420646f63756d656e74732076616c696420666f72206120"
        "6d6178696d756d206f6620736978206d6f6e74687320616e64206d617920626520757064617465642c207265706c6163"
        "65642c206f72206f62736f6c65746564206279206f7468657220646f63756d656e747320617420616e792074696d652e"
        "20497420697320696e617070726f70726961746520746f2075736520496e7465726e65742d4472616674732061732072"
        "65666572656e6365206d6174657269616c206f7220746f2063697465207468656d206f74686572207468616e20617320"
        "2fe2809c776f726b20696e2070726f67726573732e2fe2809d");
    known_answer(*aead_, Suite::chacha20poly1305, key, 0x0807060504030201ull, ad, plain,
                 "64a0861575861af460f062c79be643bd5e805cfd345cf389f108670ac76c8cb24c6cfc18755d43eea09ee94e382d26b0"
                 "bdb7b73c321b0100d4f03b7f355894cf332f830e710b97ce98c8a84abd0b948114ad176e008d33bd60f982b1ff37c855"
                 "9797a06ef4f0ef61c186324e2b3506383606907b6a7c02b0f9f6157b53c867e4b9166c767b804d46a59b5216cde7a4e9"
                 "9040c5a40433225ee282a1b0a06c523eaf4534d7f83fa1155b0047718cbc546a0d072b04b3564eea1b422273f548271a"
                 "0bb2316053fa76991955ebd63159434ecebb4e466dae5a1073a6727627097a1049e617d91d361094fa68f0ff77987130"
                 "305beaba2eda04df997b714d6c6f2c29a6ad5cb4022b02709b",
                 "eead9d67890cbb22392336fea1851f38");
}

const Backend kBackends[] = {
    {"libsodium", &crypto::make_sodium_burst},
    {"ipsec_mb", &crypto::make_ipsec_mb_burst},
};

INSTANTIATE_TEST_SUITE_P(Burst, BurstAeadTest, ::testing::ValuesIn(kBackends),
                         [](const ::testing::TestParamInfo<Backend>& info) { return info.param.label; });

// ---------------------------------------------------------------- known answers with raw IVs

// The vectors below use IVs outside our nonce layout, so they check the reference primitives
// that the backends are cross-checked against above (crypto::packet_seal is libsodium's
// crypto_aead_aes256gcm / chacha20poly1305_ietf with the packet nonce).

// McGrew & Viega (GCM spec, revised 2005), Appendix B, Test Cases 15 and 16: 256-bit key,
// IV cafebabefacedbaddecaf888; 16 adds 20 bytes of AAD and a partial last block.
TEST(BurstKnownAnswers, AesGcmMcGrewViegaTestCases15And16ReferencePrimitive) {
    ASSERT_TRUE(crypto::init());
    if (!aes_available()) GTEST_SKIP() << "no AES-NI: the aesgcm suite is unavailable on this host";
    const Bytes key = hex("feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308");
    const Bytes iv = hex("cafebabefacedbaddecaf888");
    const std::string p64 =
        "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525"
        "b16aedf5aa0de657ba637b391aafd255";
    const std::string c64 =
        "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa8cb08e48590dbb3da7b08b1056828838"
        "c5f61e6393ba7a0abcc9f662898015ad";
    struct Case {
        const char* name;
        Bytes aad, plain;
        std::string cipher, tag;
    } cases[] = {
        {"test case 15", {}, hex(p64), c64, "b094dac5d93471bdec1a502270e3cc6c"},
        {"test case 16", hex("feedfacedeadbeeffeedfacedeadbeefabaddad2"), hex(p64.substr(0, 120)),
         c64.substr(0, 120), "76fc6ece0f4e1768cddf8853bb2d551b"},
    };
    for (const Case& c : cases) {
        SCOPED_TRACE(c.name);
        Bytes out(c.plain.size());
        std::array<uint8_t, 16> tag{};
        crypto_aead_aes256gcm_encrypt_detached(out.data(), tag.data(), nullptr, c.plain.data(), c.plain.size(),
                                               c.aad.data(), c.aad.size(), nullptr, iv.data(), key.data());
        EXPECT_EQ(to_hex(out), c.cipher);
        EXPECT_EQ(to_hex(tag), c.tag);
    }
}

// RFC 8439 §2.8.2, the ChaCha20-Poly1305 AEAD example (nonce 07 00 00 00 40 41 .. 47), through
// crypto::chacha_seal/chacha_open, which take a raw 12-byte nonce.
TEST(BurstKnownAnswers, ChaChaPolyRfc8439Section282ReferencePrimitive) {
    ASSERT_TRUE(crypto::init());
    const Key key = key_of("808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f");
    const Bytes n = hex("070000004041424344454647");
    crypto::PacketNonce nonce{};
    std::copy(n.begin(), n.end(), nonce.begin());
    const Bytes ad = hex("50515253c0c1c2c3c4c5c6c7");
    const std::string text =
        "Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen "
        "would be it.";
    const Bytes plain(text.begin(), text.end());
    Bytes out(plain.size());
    std::array<uint8_t, 16> tag{};
    crypto::chacha_seal(key, nonce, ad, plain.data(), plain.size(), out.data(), tag.data());
    EXPECT_EQ(to_hex(out),
              "d31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d63dbea45e8ca9671282fafb69da92728b"
              "1a71de0a9e060b2905d6a5b67ecd3b3692ddbd7f2d778b8c9803aee328091b58fab324e4fad675945585808b4831d7bc"
              "3ff4def08e4b7a9de576d26586cec64b6116");
    EXPECT_EQ(to_hex(tag), "1ae10b594f09e26a7e902ecbd0600691");
    Bytes back(out.size());
    EXPECT_TRUE(crypto::chacha_open(key, nonce, ad, out.data(), out.size(), back.data(), tag.data()));
    EXPECT_EQ(back, plain);
}

// make_best_burst prefers IPsec-MB and honours POMELO_CRYPTO=sodium.
TEST(BurstBackends, BestIsIpsecMbWhenAvailable) {
    const char* forced = std::getenv("POMELO_CRYPTO");
    if (forced) GTEST_SKIP() << "POMELO_CRYPTO is set";
    auto best = crypto::make_best_burst();
    ASSERT_TRUE(best);
    auto mb = crypto::make_ipsec_mb_burst();
    EXPECT_EQ(std::string(best->name()), std::string(mb ? mb->name() : "libsodium"));
    if (!mb) std::printf("[ info     ] %s\n", why_no_ipsec_mb().c_str());
}

}  // namespace
}  // namespace pomelo::test
