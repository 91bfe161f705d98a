// Helpers of the engine tests: mbuf pools, a protocol::server::Server with an echo
// application run over any port in the test's own thread, and an in-memory Ethernet cable
// (two net_ring ports) for the ethdev driver.
#pragma once

#include <rte_dev.h>
#include <rte_eth_ring.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_ring.h>

#include <array>
#include <atomic>
#include <cstring>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "drivers/ethdev_port.hpp"
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

// The single-threaded server over one port (queue 0): rx burst -> receive -> update -> tx
// burst. It seals at once (ImmediateOutbox) and copies each datagram into an mbuf, so no key
// outlives the server's pass. It serves the port's first local address.
class PortServer : public ImmediateOutbox, public server::Events {
public:
    PortServer(rte_mempool* pool, std::unique_ptr<drivers::Port> port, server::Config config, const Now& now)
        : pool_(pool), port_(std::move(port)) {
        config.public_addresses = {port_->local_addresses()[0]};
        server_ = std::make_unique<server::Server>(config, *this, *this);
        server_->start(now);
    }
    ~PortServer() override { flush(); }

    const wire::Address& address() const { return port_->local_addresses()[0]; }
    server::Server& server() { return *server_; }
    drivers::Port& port() { return *port_; }

    void step(const Now& now) {
        now_ = now;
        for (int round = 0; round < 8; ++round) {
            const uint16_t n = port_->rx_burst(0, rx_pkts_.data(), rx_from_.data(), nullptr, kBurst);
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
        if (tx_count_) port_->tx_burst(0, tx_pkts_.data(), tx_to_.data(), nullptr, tx_count_);
        tx_count_ = 0;
    }

    rte_mempool* pool_;
    std::unique_ptr<drivers::Port> port_;
    std::unique_ptr<server::Server> server_;
    Now now_{};
    std::array<rte_mbuf*, kBurst> rx_pkts_{};
    std::array<wire::Address, kBurst> rx_from_{};
    std::array<server::RxDatagram, kBurst> rx_{};
    std::array<rte_mbuf*, kBurst> tx_pkts_{};
    std::array<wire::Address, kBurst> tx_to_{};
    uint16_t tx_count_ = 0;
};

inline std::unique_ptr<drivers::Port> open_socket_server_port(rte_mempool* pool, const wire::Address& bind) {
    drivers::SocketConfig c;
    c.local = {bind};
    c.pool = pool;
    std::string error;
    std::unique_ptr<drivers::Port> port = drivers::open_socket_port(c, error);
    if (!port) throw std::runtime_error(error);
    return port;
}

// The server over one UDP socket bound to `bind` (port 0: one the kernel picks).
class SocketServer : public PortServer {
public:
    SocketServer(rte_mempool* pool, const wire::Address& bind, server::Config config, const Now& now)
        : PortServer(pool, open_socket_server_port(pool, bind), std::move(config), now) {}
};

// Two net_ring ethdev ports wired to each other (one queue each way): what one sends, the
// other receives, as Ethernet frames. Names: net_ring_<a|b><serial>.
class RingCable {
public:
    RingCable() {
        static std::atomic<unsigned> serial{0};
        const std::string id = std::to_string(serial++);
        a2b_ = rte_ring_create(("eng_a2b" + id).c_str(), 4096, 0, RING_F_SP_ENQ | RING_F_SC_DEQ);
        b2a_ = rte_ring_create(("eng_b2a" + id).c_str(), 4096, 0, RING_F_SP_ENQ | RING_F_SC_DEQ);
        if (!a2b_ || !b2a_) throw std::runtime_error("cannot create the cable's rings");
        const int a = rte_eth_from_rings(("a" + id).c_str(), &b2a_, 1, &a2b_, 1, 0);
        const int b = rte_eth_from_rings(("b" + id).c_str(), &a2b_, 1, &b2a_, 1, 0);
        if (a < 0 || b < 0) throw std::runtime_error("cannot create the ring ports");
        a_ = "net_ring_a" + id;
        b_ = "net_ring_b" + id;
    }
    ~RingCable() {
        for (rte_ring* r : {a2b_, b2a_}) {
            void* m = nullptr;
            while (rte_ring_dequeue(r, &m) == 0) rte_pktmbuf_free(static_cast<rte_mbuf*>(m));
        }
        rte_eal_hotplug_remove("vdev", a_.c_str());
        rte_eal_hotplug_remove("vdev", b_.c_str());
        rte_ring_free(a2b_);
        rte_ring_free(b2a_);
    }
    RingCable(const RingCable&) = delete;
    RingCable& operator=(const RingCable&) = delete;

    const std::string& a() const { return a_; }
    const std::string& b() const { return b_; }

    // Opens an EthdevPort on one end (throws with the port's error).
    static std::unique_ptr<drivers::Port> open(const std::string& device, std::vector<wire::Address> local,
                                               rte_mempool* pool, std::optional<rte_ether_addr> gateway) {
        drivers::EthdevConfig c;
        c.device = device;
        c.local = std::move(local);
        c.pool = pool;
        c.rx_desc = c.tx_desc = 1024;
        c.neighbours = 1024;
        c.gateway = gateway;
        std::string error;
        std::unique_ptr<drivers::Port> port = drivers::open_ethdev_port(c, error);
        if (!port) throw std::runtime_error(error);
        return port;
    }

private:
    rte_ring* a2b_ = nullptr;
    rte_ring* b2a_ = nullptr;
    std::string a_, b_;
};

}  // namespace pomelo::test
