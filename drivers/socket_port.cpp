#include "drivers/socket_port.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace pomelo::drivers {

bool to_sockaddr(const wire::Address& a, sockaddr_storage& out, socklen_t& len) {
    if (a.type == wire::AddressType::ipv4) {
        auto* sin = reinterpret_cast<sockaddr_in*>(&out);
        std::memset(sin, 0, sizeof *sin);
        sin->sin_family = AF_INET;
        sin->sin_port = htons(a.port);
        std::memcpy(&sin->sin_addr, a.ip.data(), 4);
        len = sizeof *sin;
        return true;
    }
    if (a.type == wire::AddressType::ipv6) {
        auto* sin6 = reinterpret_cast<sockaddr_in6*>(&out);
        std::memset(sin6, 0, sizeof *sin6);
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons(a.port);
        std::memcpy(&sin6->sin6_addr, a.ip.data(), 16);
        len = sizeof *sin6;
        return true;
    }
    return false;
}

wire::Address from_sockaddr(const sockaddr_storage& in) {
    wire::Address a;
    if (in.ss_family == AF_INET) {
        const auto* sin = reinterpret_cast<const sockaddr_in*>(&in);
        a.type = wire::AddressType::ipv4;
        std::memcpy(a.ip.data(), &sin->sin_addr, 4);
        a.port = ntohs(sin->sin_port);
    } else if (in.ss_family == AF_INET6) {
        const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(&in);
        a.type = wire::AddressType::ipv6;
        std::memcpy(a.ip.data(), &sin6->sin6_addr, 16);
        a.port = ntohs(sin6->sin6_port);
    }
    return a;
}

namespace {

// SO_*BUFFORCE ignores net.core.{r,w}mem_max but needs CAP_NET_ADMIN; fall back to the plain
// option (capped by the sysctl). A buffer size is a tuning knob, not a reason to fail.
void set_buffer(int fd, int force_opt, int opt, int bytes) {
    if (bytes <= 0) return;
    if (::setsockopt(fd, SOL_SOCKET, force_opt, &bytes, sizeof bytes) == 0) return;
    (void)::setsockopt(fd, SOL_SOCKET, opt, &bytes, sizeof bytes);
}

}  // namespace

SocketPort::SocketPort(rte_mempool* pool)
    : Port(1),
      pool_(pool),
      spare_(kChunk),
      msgs_(kChunk),
      iovs_(kChunk),
      addrs_(kChunk) {}

SocketPort::~SocketPort() {
    if (spare_count_) rte_pktmbuf_free_bulk(spare_.data(), spare_count_);
    if (epoll_fd_ >= 0) ::close(epoll_fd_);
    for (int fd : fds_) ::close(fd);
}

std::unique_ptr<SocketPort> open_socket_port(const SocketConfig& config, std::string& error) {
    if (config.local.empty()) {
        error = "socket port: no local address to bind";
        return nullptr;
    }
    if (!config.pool) {
        error = "socket port: no mbuf pool";
        return nullptr;
    }
    std::unique_ptr<SocketPort> port(new SocketPort(config.pool));
    for (const wire::Address& a : config.local) {
        sockaddr_storage sa{};
        socklen_t len = 0;
        if (!to_sockaddr(a, sa, len)) {
            error = "socket port: local address of no family (want IPv4 or IPv6)";
            return nullptr;
        }
        const bool v6 = a.type == wire::AddressType::ipv6;
        const int fd = ::socket(v6 ? AF_INET6 : AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            error = "cannot create a UDP socket for " + a.to_string() + ": " + std::strerror(errno);
            return nullptr;
        }
        port->fds_.push_back(fd);  // closed by the port from here on
        if (v6) {
            const int one = 1;
            if (::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one) != 0) {
                error = "cannot make the socket for " + a.to_string() + " IPv6-only: " + std::strerror(errno);
                return nullptr;
            }
        }
        set_buffer(fd, SO_RCVBUFFORCE, SO_RCVBUF, config.rcvbuf);
        set_buffer(fd, SO_SNDBUFFORCE, SO_SNDBUF, config.sndbuf);
        if (::bind(fd, reinterpret_cast<const sockaddr*>(&sa), len) != 0) {
            error = "cannot bind UDP socket to " + a.to_string() + ": " + std::strerror(errno);
            return nullptr;
        }
        sockaddr_storage bound{};
        socklen_t bound_len = sizeof bound;
        if (::getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &bound_len) != 0) {
            error = "cannot read the bound address of " + a.to_string() + ": " + std::strerror(errno);
            return nullptr;
        }
        wire::Address actual = a;
        actual.port = from_sockaddr(bound).port;
        const int index = static_cast<int>(port->local_.size());
        port->local_.push_back(actual);
        if (v6 && port->first_v6_ < 0) port->first_v6_ = index;
        if (!v6 && port->first_v4_ < 0) port->first_v4_ = index;
    }

    if (port->fds_.size() > SocketPort::kEpollThreshold) {
        port->epoll_fd_ = ::epoll_create1(EPOLL_CLOEXEC);
        if (port->epoll_fd_ < 0) {
            error = std::string("socket port: cannot create an epoll set: ") + std::strerror(errno);
            return nullptr;
        }
        for (size_t i = 0; i < port->fds_.size(); ++i) {
            epoll_event ev{};
            ev.events = EPOLLIN;
            ev.data.u32 = static_cast<uint32_t>(i);
            if (::epoll_ctl(port->epoll_fd_, EPOLL_CTL_ADD, port->fds_[i], &ev) != 0) {
                error = "socket port: cannot watch the socket of " + port->local_[i].to_string() + ": " +
                        std::strerror(errno);
                return nullptr;
            }
        }
        port->events_.resize(std::min<size_t>(port->fds_.size(), 1024));
        port->ready_.reserve(port->events_.size());
    }
    return port;
}

// ------------------------------------------------------------------------------------ receive

bool SocketPort::refill(uint16_t n) {
    if (spare_count_ >= n) return true;
    const auto want = static_cast<unsigned>(n - spare_count_);
    if (rte_pktmbuf_alloc_bulk(pool_, spare_.data() + spare_count_, want) == 0) {
        spare_count_ = n;
        return true;
    }
    // The pool is short: take what there is, one at a time.
    while (spare_count_ < n) {
        rte_mbuf* m = rte_pktmbuf_alloc(pool_);
        if (!m) break;
        spare_[spare_count_++] = m;
    }
    return spare_count_ > 0;
}

uint16_t SocketPort::recv_from(size_t s, rte_mbuf** pkts, wire::Address* from, uint16_t* local_index, uint16_t& got,
                               uint16_t n) {
    const uint16_t k = std::min<uint16_t>(n, spare_count_);
    const uint16_t base = static_cast<uint16_t>(spare_count_ - k);
    for (uint16_t j = 0; j < k; ++j) {
        rte_mbuf* m = spare_[base + j];
        iovs_[j].iov_base = rte_pktmbuf_mtod(m, void*);
        iovs_[j].iov_len = rte_pktmbuf_tailroom(m);
        msghdr& h = msgs_[j].msg_hdr;
        h.msg_name = &addrs_[j];
        h.msg_namelen = sizeof(sockaddr_storage);
        h.msg_iov = &iovs_[j];
        h.msg_iovlen = 1;
        h.msg_control = nullptr;
        h.msg_controllen = 0;
        h.msg_flags = 0;
        msgs_[j].msg_len = 0;
    }
    int r;
    do {
        r = ::recvmmsg(fds_[s], msgs_.data(), k, MSG_DONTWAIT, nullptr);
    } while (r < 0 && errno == EINTR);
    if (r <= 0) return 0;  // EAGAIN: drained (other errors: nothing to take either)

    PortStats& st = stats_[0];
    uint16_t keep = base;
    for (uint16_t j = 0; j < k; ++j) {
        rte_mbuf* m = spare_[base + j];
        const bool accepted = j < r && !(msgs_[j].msg_hdr.msg_flags & MSG_TRUNC);
        if (j < r) {
            ++st.rx_packets;
            if (!accepted) ++st.rx_truncated;
        }
        if (!accepted) {
            spare_[keep++] = m;  // untouched: back to the spares
            continue;
        }
        const auto len = static_cast<uint16_t>(msgs_[j].msg_len);
        m->data_len = len;
        m->pkt_len = len;
        pkts[got] = m;
        from[got] = from_sockaddr(addrs_[j]);
        if (local_index) local_index[got] = static_cast<uint16_t>(s);
        ++got;
        ++st.rx_datagrams;
    }
    spare_count_ = keep;
    return static_cast<uint16_t>(r);
}

uint16_t SocketPort::rx_burst(uint16_t queue, rte_mbuf** pkts, wire::Address* from, uint16_t* local_index,
                              uint16_t n) {
    if (queue != 0 || n == 0) return 0;
    uint16_t got = 0;
    if (epoll_fd_ < 0) {
        // Few sockets: each in turn until drained or the burst is full; the starting socket
        // rotates by one per call so that a busy socket cannot starve the others.
        const size_t count = fds_.size();
        for (size_t i = 0; i < count && got < n; ++i) {
            const size_t s = (next_socket_ + i) % count;
            while (got < n) {
                const uint16_t want = std::min<uint16_t>(static_cast<uint16_t>(n - got), kChunk);
                if (!refill(want)) return got;
                const uint16_t asked = std::min(want, spare_count_);
                if (recv_from(s, pkts, from, local_index, got, asked) < asked) break;  // drained
            }
        }
        next_socket_ = (next_socket_ + 1) % count;
        return got;
    }

    if (ready_pos_ >= ready_.size()) {
        ready_.clear();
        ready_pos_ = 0;
        int r;
        do {
            r = ::epoll_wait(epoll_fd_, events_.data(), static_cast<int>(events_.size()), 0);
        } while (r < 0 && errno == EINTR);
        for (int i = 0; i < r; ++i) ready_.push_back(events_[static_cast<size_t>(i)].data.u32);
    }
    while (ready_pos_ < ready_.size() && got < n) {
        const uint16_t want = std::min<uint16_t>(static_cast<uint16_t>(n - got), kChunk);
        if (!refill(want)) break;
        const uint16_t asked = std::min(want, spare_count_);
        const uint16_t taken = recv_from(ready_[ready_pos_], pkts, from, local_index, got, asked);
        if (taken < asked) ++ready_pos_;  // drained; level-triggered epoll reports it again if not
    }
    return got;
}

// ------------------------------------------------------------------------------------ transmit

uint16_t SocketPort::send_on(size_t s, rte_mbuf** pkts, const wire::Address* to, uint16_t n) {
    PortStats& st = stats_[0];
    uint16_t prepared = 0;
    for (uint16_t j = 0; j < n; ++j) {
        rte_mbuf* m = pkts[j];
        socklen_t len = 0;
        if (m->nb_segs != 1 || !to_sockaddr(to[j], addrs_[prepared], len)) {
            ++st.tx_dropped;
            continue;
        }
        iovs_[prepared].iov_base = rte_pktmbuf_mtod(m, void*);
        iovs_[prepared].iov_len = m->data_len;
        msghdr& h = msgs_[prepared].msg_hdr;
        h.msg_name = &addrs_[prepared];
        h.msg_namelen = len;
        h.msg_iov = &iovs_[prepared];
        h.msg_iovlen = 1;
        h.msg_control = nullptr;
        h.msg_controllen = 0;
        h.msg_flags = 0;
        ++prepared;
    }
    uint16_t done = 0, sent = 0;
    while (done < prepared) {
        const int r = ::sendmmsg(fds_[s], msgs_.data() + done, prepared - done, MSG_DONTWAIT);
        if (r > 0) {
            done = static_cast<uint16_t>(done + r);
            sent = static_cast<uint16_t>(sent + r);
            continue;
        }
        if (r < 0 && errno == EINTR) continue;
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS)) break;  // buffer full
        ++done;  // this datagram failed (e.g. EMSGSIZE, unreachable): skip it
    }
    st.tx_datagrams += sent;
    st.tx_dropped += prepared - sent;
    return sent;
}

uint16_t SocketPort::tx_burst(uint16_t queue, rte_mbuf** pkts, const wire::Address* to, const uint16_t* local_index,
                              uint16_t n) {
    if (queue != 0) {
        stats_[0].tx_dropped += n;
        rte_pktmbuf_free_bulk(pkts, n);
        return 0;
    }
    if (local_index) return send_from(pkts, to, local_index, n);
    uint16_t idx[kChunk];
    uint16_t sent = 0;
    for (uint16_t base = 0; base < n; base = static_cast<uint16_t>(base + kChunk)) {
        const uint16_t k = std::min<uint16_t>(kChunk, static_cast<uint16_t>(n - base));
        for (uint16_t j = 0; j < k; ++j) {
            const wire::AddressType t = to[base + j].type;
            const int s = t == wire::AddressType::ipv4 ? first_v4_ : t == wire::AddressType::ipv6 ? first_v6_ : -1;
            idx[j] = s < 0 ? UINT16_MAX : static_cast<uint16_t>(s);
        }
        sent = static_cast<uint16_t>(sent + send_from(pkts + base, to + base, idx, k));
    }
    return sent;
}

uint16_t SocketPort::send_from(rte_mbuf** pkts, const wire::Address* to, const uint16_t* local_index, uint16_t n) {
    PortStats& st = stats_[0];
    uint16_t sent = 0;
    uint16_t i = 0;
    while (i < n) {
        uint16_t s = local_index[i];
        if (s == wire::kAnyLocal) {
            const wire::AddressType t = to[i].type;
            const int f = t == wire::AddressType::ipv4 ? first_v4_ : t == wire::AddressType::ipv6 ? first_v6_ : -1;
            s = f < 0 ? UINT16_MAX - 1 : static_cast<uint16_t>(f);
        }
        if (s >= fds_.size() || local_[s].type != to[i].type) {
            ++st.tx_dropped;
            ++i;
            continue;
        }
        // A run of datagrams for the same socket, at most one sendmmsg chunk.
        uint16_t end = static_cast<uint16_t>(i + 1);
        while (end < n && end - i < kChunk && local_index[end] == s && to[end].type == to[i].type) ++end;
        sent = static_cast<uint16_t>(sent + send_on(s, pkts + i, to + i, static_cast<uint16_t>(end - i)));
        i = end;
    }
    rte_pktmbuf_free_bulk(pkts, n);  // the kernel copied what it took
    return sent;
}

}  // namespace pomelo::drivers
