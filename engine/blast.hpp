// Blast mode of the load generator: connected clients whose PAYLOADs are sealed ahead of time,
// sent at an offered rate, and whose echoes are counted from the packet header alone, one in
// `verify_every` decrypted and checked byte for byte. A live ChaCha20-Poly1305 seal costs as
// much as the server's open: a generator sealing as it sends could never outrun one server
// worker, and the generator would be what is measured. Pre-sealing moves that cost out of the
// measured interval, so that one generator core offers several times a worker's capacity.
//
// Each payload is a client's own: its state machine numbers it (ClientPool::send_via), so no
// (key, nonce) pair repeats, and the server's replay window accepts every one exactly once.
// A trial sends the pre-sealed datagrams round-robin over the clients (client i's datagrams in
// sequence order), paced by the TSC in bursts, while the pool keeps polling (the clients'
// PINGs, PONGs and timeouts run as usual), then waits for the echoes still in flight.
//
// The capacity search (RFC 2544 throughput): the highest offered rate at which nothing was
// lost, found by doubling from a start rate until a trial loses, then bisecting.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "engine/client_pool.hpp"

namespace pomelo::engine {

struct BlastConfig {
    uint32_t payload_size = 64;    // bytes, ClientPool::kPayloadHeader..wire::kMaxPayloadSize
    uint32_t verify_every = 64;    // decrypt and check one echo in this many (1 = all)
    uint16_t burst = 32;           // datagrams per TX burst
    uint64_t drain_ns = 200 * kMillisecond;  // after the last send, wait at most this for echoes
    uint64_t max_arena_bytes = uint64_t{1} << 30;  // pre-sealed bytes held at once
};

// One trial at one offered rate.
struct BlastTrial {
    double offered_pps = 0;   // asked for
    double sent_pps = 0;      // achieved by the generator (sent / send time)
    uint64_t sent = 0;        // sent to the device (tx_dropped included: see Blaster::run)
    uint64_t echoed = 0;      // PAYLOADs back to the blasting clients (counted by header)
    uint64_t verified = 0;    // of them, decrypted and byte-identical
    uint64_t mismatched = 0;  // sampled and not byte-identical (or not authentic, or never sent)
    uint64_t tx_dropped = 0;  // of them, refused by the generator's port (its ring full)
    uint64_t send_ns = 0;
    uint64_t lost() const { return sent > echoed ? sent - echoed : 0; }
    double loss_ratio() const { return sent ? static_cast<double>(lost()) / static_cast<double>(sent) : 0; }
    // The generator kept up with the offered rate (within 3 %).
    bool kept_up() const { return sent_pps >= 0.97 * offered_pps; }
};

class Blaster final : private PoolTap {
public:
    // `pool` must have its clients connected (ClientPoolConfig::payloads = 0,
    // disconnect_when_done = false). Throws std::invalid_argument on a bad config.
    Blaster(ClientPool& pool, drivers::Port& port, uint16_t queue, rte_mempool* mbufs, crypto::BurstAead& aead,
            const BlastConfig& config);
    ~Blaster() override;

    // Seals `count` payloads round-robin over the connected clients (polling the pool between
    // chunks); returns how many were sealed (fewer if the arena limit or the clients ran out).
    // The pool stays quiet (ClientPool::set_quiet) from here to the end of run().
    uint64_t prepare(uint64_t count);
    // Baseline mode, for a plain UDP echo that speaks no protocol (perf/udp_echo): `count`
    // unsealed datagrams of the PAYLOAD type, round-robin over every client's endpoint, to
    // `server`; their echoes are counted like the sealed ones (none is decrypted).
    uint64_t prepare_raw(uint64_t count, const wire::Address& server);
    // Sends everything prepared at `rate_pps`, then drains. `tick` runs once per loop (e.g. a
    // progress line); returning false stops the trial early.
    BlastTrial run(double rate_pps, const std::function<bool(const BlastTrial&)>& tick = {});


private:
    bool on_datagram(uint32_t index, std::span<const uint8_t> datagram) override;
    void on_payload(uint32_t index, std::span<const uint8_t> payload) override;
    class Arena;

    ClientPool& pool_;
    drivers::Port& port_;
    uint16_t queue_;
    rte_mempool* mbufs_;
    crypto::BurstAead& aead_;
    BlastConfig config_;
    std::unique_ptr<Arena> arena_;
    std::vector<uint32_t> next_seq_;  // per client: the next blast payload number
    std::vector<uint8_t> payload_, expect_;
    uint64_t rx_payloads_ = 0, sampled_ = 0;
    uint64_t verified_ = 0, mismatched_ = 0;
    uint32_t sample_countdown_ = 1;
    bool verify_ = true;  // false after prepare_raw: nothing to decrypt
};

// Finds the highest offered rate with no loss (RFC 2544). `trial(rate)` prepares and runs one
// trial; the search doubles from `start_pps` until a rate loses (in two trials running) or the
// generator cannot keep up, then bisects `steps` times. Returns every trial in the order run.
struct CapacityResult {
    double capacity_pps = 0;         // highest zero-loss rate; 0 if even start_pps lost
    double loss_above = 0;           // loss ratio at the lowest lossy rate tried
    double lossy_pps = 0;            // that rate (0: none lost)
    bool generator_limited = false;  // the search stopped because the generator fell behind
    std::vector<BlastTrial> trials;
};
CapacityResult find_capacity(double start_pps, double max_pps, unsigned steps,
                             const std::function<BlastTrial(double rate)>& trial);

}  // namespace pomelo::engine
