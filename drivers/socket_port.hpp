// The kernel's UDP sockets behind the burst interface: one non-blocking UDP socket per local
// address (IPv4 or IPv6), datagrams received with recvmmsg straight into mbuf data areas and
// sent with sendmmsg straight from them. One queue, polled by one thread.
//
// Each local address is a socket of its own: rx_burst reports by local_index the socket a
// datagram arrived on, and tx_burst with local_index sends from chosen sockets. The client
// pool uses that to give each of thousands of clients its own source endpoint (one socket
// each). Without local_index, tx_burst sends from the first socket of the destination's
// family.
//
// Polling: with a few sockets each rx_burst tries every socket round-robin (one recvmmsg
// each); with many sockets an epoll set (level-triggered) names the readable ones, so an idle
// poll costs one epoll_wait however many sockets there are.
#pragma once

#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include <memory>
#include <string>
#include <vector>

#include "drivers/port.hpp"

namespace pomelo::drivers {

struct SocketConfig {
    // One UDP socket per address. Port 0 binds an ephemeral port; local_addresses() then
    // reports the port the kernel chose. IPv6 sockets are IPV6_V6ONLY.
    std::vector<wire::Address> local;
    rte_mempool* pool = nullptr;  // receive buffers
    // Socket buffer sizes in bytes (SO_RCVBUFFORCE / SO_SNDBUFFORCE when permitted, else the
    // plain options, which the kernel caps at net.core.{r,w}mem_max). 0 keeps the default.
    int rcvbuf = 4 << 20;
    int sndbuf = 4 << 20;
};

class SocketPort final : public Port {
public:
    // Datagrams per recvmmsg / sendmmsg call.
    static constexpr uint16_t kChunk = 64;
    // Above this many sockets, rx polls through epoll instead of trying every socket.
    static constexpr size_t kEpollThreshold = 4;

    ~SocketPort() override;
    SocketPort(const SocketPort&) = delete;
    SocketPort& operator=(const SocketPort&) = delete;

    std::string name() const override { return "socket"; }
    uint16_t queue_count() const override { return 1; }
    const std::vector<wire::Address>& local_addresses() const override { return local_; }

    using Port::rx_burst;  // the LinkHop forms: the kernel resolves neighbours itself
    using Port::tx_burst;
    // Receives on every socket. Only queue 0 exists.
    uint16_t rx_burst(uint16_t queue, rte_mbuf** pkts, wire::Address* from, uint16_t* local_index,
                      uint16_t n) override;
    // local_index[i] (when given) names the socket: out of range, or of another family than
    // to[i], is dropped and counted in tx_dropped. Takes ownership of all n mbufs (the kernel
    // copies the data: they are all freed here).
    uint16_t tx_burst(uint16_t queue, rte_mbuf** pkts, const wire::Address* to, const uint16_t* local_index,
                      uint16_t n) override;

    size_t socket_count() const { return fds_.size(); }
    int fd(size_t local_index) const { return fds_[local_index]; }

private:
    friend std::unique_ptr<SocketPort> open_socket_port(const SocketConfig&, std::string&);
    explicit SocketPort(rte_mempool* pool);

    // Receives up to n datagrams from socket `s` into the spare mbufs, appending accepted
    // ones to pkts/from/local_index at `got`. Returns the number of datagrams the socket gave
    // (accepted or truncated); fewer than asked means the socket is drained.
    uint16_t recv_from(size_t s, rte_mbuf** pkts, wire::Address* from, uint16_t* local_index, uint16_t& got,
                       uint16_t n);
    bool refill(uint16_t n);
    // tx_burst with every socket chosen; frees all n mbufs.
    uint16_t send_from(rte_mbuf** pkts, const wire::Address* to, const uint16_t* local_index, uint16_t n);
    // Sends pkts[0..n) (n <= kChunk) on socket `s`; returns the number the kernel accepted.
    uint16_t send_on(size_t s, rte_mbuf** pkts, const wire::Address* to, uint16_t n);

    rte_mempool* pool_;
    std::vector<wire::Address> local_;
    std::vector<int> fds_;
    int first_v4_ = -1, first_v6_ = -1;  // socket index serving plain tx_burst, per family
    int epoll_fd_ = -1;
    size_t next_socket_ = 0;  // round-robin start of the next rx poll (few sockets)

    // epoll mode: sockets reported readable and not yet drained.
    std::vector<epoll_event> events_;
    std::vector<uint32_t> ready_;
    size_t ready_pos_ = 0;

    // Receive buffers allocated ahead and not yet handed out (spare_[0..spare_count_)).
    std::vector<rte_mbuf*> spare_;
    uint16_t spare_count_ = 0;

    // Scratch for one recvmmsg / sendmmsg call.
    std::vector<mmsghdr> msgs_;
    std::vector<iovec> iovs_;
    std::vector<sockaddr_storage> addrs_;
};

// Opens and binds one socket per configured address. nullptr with `error` set (one line,
// naming the address) on failure.
std::unique_ptr<SocketPort> open_socket_port(const SocketConfig& config, std::string& error);

// wire::Address <-> sockaddr conversions (false / AddressType::none for other families).
bool to_sockaddr(const wire::Address& a, sockaddr_storage& out, socklen_t& len);
wire::Address from_sockaddr(const sockaddr_storage& in);

}  // namespace pomelo::drivers
