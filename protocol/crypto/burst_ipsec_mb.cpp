// Intel IPsec-MB burst backend (spec §4, §7.5, Appendix B): the packet AEAD of both suites
// over a whole burst with one IMB_MGR per backend instance.
//
// API: IPsec-MB 1.3's generic burst API (IMB_GET_NEXT_BURST / IMB_SUBMIT_BURST /
// IMB_FLUSH_BURST) accepts every cipher/hash pair of the job API, so a burst may mix
// AES-256-GCM (IMB_CIPHER_GCM + IMB_AUTH_AES_GMAC) and ChaCha20-Poly1305
// (IMB_CIPHER_CHACHA20_POLY1305 + IMB_AUTH_CHACHA20_POLY1305) and any number of keys. One
// submission holds at most IMB_MAX_BURST_SIZE (128) jobs, so longer bursts are chunked.
// IMB_SUBMIT_BURST_NOCHECK is used: every job field but the op's pointers and lengths is a
// constant here, and those are checked per op before submission (a malformed op fails, ok =
// false). The library's own validation (IMB_SUBMIT_BURST) cost ~15 ns per 64-byte AES-GCM
// packet, a quarter of the total, on the development VM.
//
// Zero-length text (DENIED and DISCONNECT have empty bodies, the tag covers the AD only) is
// accepted by 1.3 for both algorithms and gives libsodium's bytes; tests/protocol/
// burst_aead_test.cpp checks it, including the McGrew-Viega empty-plaintext vector.
//
// Keys: ChaCha20 takes the raw 32-byte key. AES-256-GCM takes round keys and GHASH tables
// (struct gcm_key_data, IMB_AES256_GCM_PRE): from the op's PreparedKey when the caller has one
// (prepare()), else expanded per call into a scratch slot (shared by the consecutive ops of one
// key) and wiped when the call returns.
//
// Open computes the tag into scratch and compares it with the received one in constant time
// (sodium_memcmp); on mismatch the decrypted text is zeroed before the op is returned.
//
// Built without IPsec-MB (no libIPSec_MB or intel-ipsec-mb.h at configure time, see
// protocol/meson.build), make_ipsec_mb_burst() returns nullptr and make_best_burst() serves
// libsodium: a documented fallback with the same bytes, not a missing feature.
#include "protocol/crypto/burst.hpp"

#if defined(POMELO_HAVE_IPSEC_MB)

#define NO_COMPAT_IMB_API_053  // keep the pre-0.53 short names (GCM, ENCRYPT, ...) out of scope
#include <intel-ipsec-mb.h>
#include <sodium.h>

#include <algorithm>
#include <cstring>

#include "protocol/crypto/aead.hpp"

namespace pomelo::crypto {
namespace {

// The library is built with LINUX defined, which declares gcm_key_data aligned(64); without it
// the header drops the attribute, so the storage provides the alignment.
static_assert(sizeof(gcm_key_data) <= sizeof(PreparedKey), "PreparedKey too small for gcm_key_data");
static_assert(alignof(PreparedKey) >= 64, "gcm_key_data needs 64-byte alignment");
static_assert(alignof(PreparedKey) % alignof(gcm_key_data) == 0);

constexpr uint32_t kTagSize = 16;
constexpr uint32_t kNonceSize = 12;

gcm_key_data* gcm_keys(PreparedKey& k) { return reinterpret_cast<gcm_key_data*>(k.bytes); }
const gcm_key_data* gcm_keys(const PreparedKey& k) { return reinterpret_cast<const gcm_key_data*>(k.bytes); }

struct MgrDeleter {
    void operator()(IMB_MGR* m) const { free_mb_mgr(m); }
};
using MgrPtr = std::unique_ptr<IMB_MGR, MgrDeleter>;

const char* arch_name(IMB_ARCH arch) {
    switch (arch) {
    case IMB_ARCH_SSE: return "ipsec-mb/sse";
    case IMB_ARCH_AVX: return "ipsec-mb/avx";
    case IMB_ARCH_AVX2: return "ipsec-mb/avx2";
    case IMB_ARCH_AVX512: return "ipsec-mb/avx512";
    default: return "ipsec-mb";
    }
}

class IpsecMbBurst final : public BurstAead {
public:
    // One submission of the burst API holds at most this many jobs.
    static constexpr uint32_t kChunk = IMB_MAX_BURST_SIZE;

    IpsecMbBurst(MgrPtr mgr, IMB_ARCH arch)
        : mgr_(std::move(mgr)),
          name_(arch_name(arch)),
          gcm_ok_((mgr_->features & (IMB_FEATURE_AESNI | IMB_FEATURE_PCLMULQDQ)) ==
                  (IMB_FEATURE_AESNI | IMB_FEATURE_PCLMULQDQ)) {}

    ~IpsecMbBurst() override {
        sodium_memzero(keys_, sizeof keys_);
        sodium_memzero(slots_, sizeof slots_);
    }

    IpsecMbBurst(const IpsecMbBurst&) = delete;
    IpsecMbBurst& operator=(const IpsecMbBurst&) = delete;

    const char* name() const override { return name_; }

    void seal(std::span<AeadOp> ops) override { run(ops, true); }
    void open(std::span<AeadOp> ops) override { run(ops, false); }

    bool prepare(const Key& key, Suite suite, PreparedKey& out) override {
        if (suite != Suite::aes256gcm || !gcm_ok_) return false;
        IMB_AES256_GCM_PRE(mgr_.get(), key.data(), gcm_keys(out));
        return true;
    }

private:
    struct alignas(16) Slot {
        uint8_t nonce[kNonceSize];
        uint8_t tag[kTagSize];  // open: the computed tag, compared with the received one
    };

    void run(std::span<AeadOp> ops, bool encrypt) {
        for (size_t base = 0; base < ops.size(); base += kChunk)
            run_chunk(ops.subspan(base, std::min<size_t>(kChunk, ops.size() - base)), encrypt);
    }

    void run_chunk(std::span<AeadOp> ops, bool encrypt) {
        IMB_MGR* mgr = mgr_.get();
        // The queue is empty here (every chunk is flushed before the next), so the manager has a
        // job for every op. Were it not, the ops go to libsodium rather than wait on jobs that
        // belong to nobody.
        const uint32_t want = static_cast<uint32_t>(ops.size());
        if (IMB_GET_NEXT_BURST(mgr, want, jobs_) < want) {
            for (AeadOp& op : ops) sodium_op(op, encrypt, gcm_ok_);
            return;
        }

        uint32_t n = 0;              // jobs filled, in op order
        uint32_t expanded = 0;       // scratch key slots used by this chunk
        const Key* last_key = nullptr;  // the key expanded into keys_[expanded - 1]
        for (AeadOp& op : ops) {
            if (!runnable(op, gcm_ok_)) {
                fail(op, encrypt);
                continue;
            }
            Slot& slot = slots_[n];
            const PacketNonce nonce = packet_nonce(op.sequence);
            std::memcpy(slot.nonce, nonce.data(), kNonceSize);

            IMB_JOB* job = jobs_[n++];
            uint8_t* text = op.text ? op.text : &empty_;
            job->src = text;
            job->dst = text;
            job->cipher_start_src_offset_in_bytes = 0;
            job->msg_len_to_cipher_in_bytes = op.size;
            job->hash_start_src_offset_in_bytes = 0;
            job->msg_len_to_hash_in_bytes = op.size;
            job->iv = slot.nonce;
            job->iv_len_in_bytes = kNonceSize;
            job->auth_tag_output = encrypt ? op.tag : slot.tag;
            job->auth_tag_output_len_in_bytes = kTagSize;
            job->key_len_in_bytes = IMB_KEY_256_BYTES;
            job->cipher_direction = encrypt ? IMB_DIR_ENCRYPT : IMB_DIR_DECRYPT;
            job->chain_order = encrypt ? IMB_ORDER_CIPHER_HASH : IMB_ORDER_HASH_CIPHER;
            job->user_data = &op;
            job->user_data2 = &slot;
            const void* ad = op.ad ? op.ad : &empty_;
            if (op.suite == Suite::aes256gcm) {
                const gcm_key_data* keys;
                if (op.prepared) {
                    keys = gcm_keys(*op.prepared);
                } else {
                    // By content: each queued datagram owns its own copy of the key.
                    if (!last_key || !(*op.key == *last_key)) {
                        IMB_AES256_GCM_PRE(mgr, op.key->data(), gcm_keys(keys_[expanded++]));
                        last_key = op.key;
                    }
                    keys = gcm_keys(keys_[expanded - 1]);
                }
                job->cipher_mode = IMB_CIPHER_GCM;
                job->hash_alg = IMB_AUTH_AES_GMAC;
                job->enc_keys = keys;
                job->dec_keys = keys;
                job->u.GCM.aad = ad;
                job->u.GCM.aad_len_in_bytes = op.ad_size;
                job->u.GCM.ctx = nullptr;
            } else {
                job->cipher_mode = IMB_CIPHER_CHACHA20_POLY1305;
                job->hash_alg = IMB_AUTH_CHACHA20_POLY1305;
                job->enc_keys = op.key->data();
                job->dec_keys = op.key->data();
                job->u.CHACHA20_POLY1305.aad = ad;
                job->u.CHACHA20_POLY1305.aad_len_in_bytes = op.ad_size;
                job->u.CHACHA20_POLY1305.ctx = nullptr;
            }
        }

        if (n > 0) {
            finish(IMB_SUBMIT_BURST_NOCHECK(mgr, n, jobs_), encrypt);
            drain(encrypt);
        }
        if (expanded) sodium_memzero(keys_, expanded * sizeof(PreparedKey));
    }

    // Completes every job still in the manager's queue.
    void drain(bool encrypt) {
        while (uint32_t done = IMB_FLUSH_BURST(mgr_.get(), kChunk, jobs_)) finish(done, encrypt);
    }

    // Settles the ops of the first `done` (completed) jobs in jobs_.
    void finish(uint32_t done, bool encrypt) {
        for (uint32_t i = 0; i < done; ++i) {
            const IMB_JOB* job = jobs_[i];
            AeadOp& op = *static_cast<AeadOp*>(job->user_data);
            const Slot& slot = *static_cast<const Slot*>(job->user_data2);
            const bool completed = job->status == IMB_STATUS_COMPLETED;
            if (encrypt) {
                op.ok = completed;
            } else {
                op.ok = completed && sodium_memcmp(slot.tag, op.tag, kTagSize) == 0;
                if (!op.ok && op.size) std::memset(op.text, 0, op.size);
            }
        }
    }

    // IMB_SUBMIT_BURST_NOCHECK runs what it is given. Every job field but the op's pointers and
    // lengths is a constant of this file; the pointers are checked here (lengths are u32, far
    // below either algorithm's limit). AES-256-GCM without AES-NI fails like packet_seal/open.
    static bool runnable(const AeadOp& op, bool gcm_ok) {
        const bool malformed = !op.key || !op.tag || (op.size && !op.text) || (op.ad_size && !op.ad);
        return !malformed && (op.suite != Suite::aes256gcm || gcm_ok);
    }

    static void fail(AeadOp& op, bool encrypt) {
        op.ok = false;
        if (!encrypt && op.size && op.text) std::memset(op.text, 0, op.size);
    }

    static void sodium_op(AeadOp& op, bool encrypt, bool gcm_ok) {
        if (!runnable(op, gcm_ok)) {
            fail(op, encrypt);
        } else if (encrypt) {
            op.ok = packet_seal(op.suite, *op.key, op.sequence, {op.ad, op.ad_size}, {op.text, op.size}, op.tag);
        } else {
            op.ok = packet_open(op.suite, *op.key, op.sequence, {op.ad, op.ad_size}, {op.text, op.size}, op.tag);
            if (!op.ok && op.size) std::memset(op.text, 0, op.size);
        }
    }

    MgrPtr mgr_;
    const char* name_;
    const bool gcm_ok_;  // AES-NI + PCLMULQDQ; make_ipsec_mb_burst requires them, kept as a guard
    uint8_t empty_ = 0;  // a valid address for empty text / AD
    IMB_JOB* jobs_[kChunk] = {};
    Slot slots_[kChunk] = {};
    PreparedKey keys_[kChunk];  // per-call scratch round keys for ops without a prepared key
};

}  // namespace

std::unique_ptr<BurstAead> make_ipsec_mb_burst() {
    MgrPtr mgr(alloc_mb_mgr(0));
    if (!mgr) return nullptr;
    IMB_ARCH arch = IMB_ARCH_NONE;
    init_mb_mgr_auto(mgr.get(), &arch);
    if (imb_get_errno(mgr.get()) != 0) return nullptr;
    // Without AES-NI the library runs an emulated AES (IMB_ARCH_NOAESNI): slower than libsodium
    // for ChaCha20 and no use for AES-256-GCM, so libsodium serves instead.
    constexpr uint64_t kNeed = IMB_FEATURE_AESNI | IMB_FEATURE_PCLMULQDQ;
    if (arch == IMB_ARCH_NONE || arch == IMB_ARCH_NOAESNI || (mgr->features & kNeed) != kNeed) return nullptr;
    return std::make_unique<IpsecMbBurst>(std::move(mgr), arch);
}

}  // namespace pomelo::crypto

#else  // !POMELO_HAVE_IPSEC_MB

namespace pomelo::crypto {

// Built without IPsec-MB: libsodium (make_sodium_burst) serves both suites.
std::unique_ptr<BurstAead> make_ipsec_mb_burst() { return nullptr; }

}  // namespace pomelo::crypto

#endif
