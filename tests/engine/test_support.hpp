// Helpers of the engine tests: mbuf pools, and a protocol::server::Server with an echo
// application run over a SocketPort in the test's own thread.
#pragma once

#include <rte_lcore.h>
#include <rte_mbuf.h>

#include <array>
#include <atomic>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "drivers/socket_port.hpp"
#include "protocol/outbox.hpp"
#include "protocol/server/server.hpp"
#include "tests/support/sim_network.hpp"

namespace pomelo::test {

// An mbuf pool freed with the test (names are unique per process).
class MbufPool {
public:
    explicit MbufPool(unsigned mbufs, uint16_t data_room = RTE_MBUF_DEFAULT_BUF_SIZE) {
        static std::atomic<unsigned> counter{0};
        const std::string name = "test-pool-" + std::to_string(counter++);
        pool_ = rte_pktmbuf_pool_create(name.c_str(), mbufs, 0, 0, data_room, static_cast<int>(rte_socket_id()));
        if (!pool_) throw std::runtime_error("cannot create mbuf pool " + name);
    }
    ~MbufPool() { rte_mempool_free(pool_); }
    MbufPool(const MbufPool&) = delete;
    MbufPool& operator=(const MbufPool&) = delete;
    operator rte_mempool*() const { return pool_; }
    unsigned available() const { return rte_mempool_avail_count(pool_); }

private:
    rte_mempool* pool_ = nullptr;
};

// The single-threaded server over one socket: rx burst -> receive -> update -> tx burst. It
// seals at once (ImmediateOutbox) and copies each datagram into an mbuf, so no key outlives
// the server's pass.
class SocketServer : public ImmediateOutbox, public server::Events {
public:
    SocketServer(rte_mempool* pool, const wire::Address& bind, server::Config config, const Now& now)
        : pool_(pool) {
        drivers::SocketConfig c;
        c.local = {bind};
        c.pool = pool;
        std::string error;
        port_ = drivers::open_socket_port(c, error);
        if (!port_) throw std::runtime_error(error);
        config.public_addresses = {port_->local_addresses()[0]};
        server_ = std::make_unique<server::Server>(config, *this, *this);
        server_->start(now);
    }
    ~SocketServer() override { flush(); }

    const wire::Address& address() const { return port_->local_addresses()[0]; }
    server::Server& server() { return *server_; }
    drivers::SocketPort& port() { return *port_; }

    void step(const Now& now) {
        now_ = now;
        for (int round = 0; round < 8; ++round) {
            const uint16_t n = port_->rx_burst(0, rx_pkts_.data(), rx_from_.data(), kBurst);
            for (uint16_t i = 0; i < n; ++i)
                rx_[i] = {std::span<uint8_t>(rte_pktmbuf_mtod(rx_pkts_[i], uint8_t*), rx_pkts_[i]->data_len), rx_from_[i]};
            if (n) {
                server_->receive(std::span(rx_.data(), n), now);
                rte_pktmbuf_free_bulk(rx_pkts_.data(), n);
            }
            if (n < kBurst) break;
        }
        server_->update(now);
        flush();
    }

    // Application: echo every payload (corrupting payload number `corrupt_at`, 1-based, if set).
    void on_connect(server::PeerId, int64_t client_id, const wire::UserData&) override {
        ++connects;
        client_ids.push_back(client_id);
    }
    void on_payload(server::PeerId id, std::span<const uint8_t> p) override {
        ++payloads;
        if (corrupt_at && payloads == corrupt_at) {
            std::vector<uint8_t> bad(p.begin(), p.end());
            bad.back() ^= 0x01;
            server_->send(id, bad, now_);
            return;
        }
        server_->send(id, p, now_);
    }
    void on_disconnect(server::PeerId, int64_t, server::CloseReason r) override { ++closes[static_cast<unsigned>(r)]; }

    uint32_t connects = 0;
    uint64_t payloads = 0;
    uint64_t corrupt_at = 0;
    std::vector<int64_t> client_ids;
    std::array<uint32_t, 4> closes{};  // by server::CloseReason

protected:
    void transmit(const wire::Address& to, std::span<const uint8_t> datagram, wire::PacketType) override {
        rte_mbuf* m = rte_pktmbuf_alloc(pool_);
        if (!m) return;
        std::memcpy(rte_pktmbuf_append(m, static_cast<uint16_t>(datagram.size())), datagram.data(), datagram.size());
        tx_pkts_[tx_count_] = m;
        tx_to_[tx_count_] = to;
        if (++tx_count_ == kBurst) flush();
    }

private:
    static constexpr uint16_t kBurst = 64;
    void flush() {
        if (tx_count_) port_->tx_burst(0, tx_pkts_.data(), tx_to_.data(), tx_count_);
        tx_count_ = 0;
    }

    rte_mempool* pool_;
    std::unique_ptr<drivers::SocketPort> port_;
    std::unique_ptr<server::Server> server_;
    Now now_{};
    std::array<rte_mbuf*, kBurst> rx_pkts_{};
    std::array<wire::Address, kBurst> rx_from_{};
    std::array<server::RxDatagram, kBurst> rx_{};
    std::array<rte_mbuf*, kBurst> tx_pkts_{};
    std::array<wire::Address, kBurst> tx_to_{};
    uint16_t tx_count_ = 0;
};

}  // namespace pomelo::test
