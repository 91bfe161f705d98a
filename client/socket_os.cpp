// POSIX implementation of socket_os.hpp.
#include "client/socket_os.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <cstring>

namespace pomelo::net {

namespace {

bool to_sockaddr(const wire::Address& a, sockaddr_storage& out, socklen_t& len) {
    std::memset(&out, 0, sizeof out);
    if (a.type == wire::AddressType::ipv4) {
        auto* sin = reinterpret_cast<sockaddr_in*>(&out);
        sin->sin_family = AF_INET;
        sin->sin_port = htons(a.port);
        std::memcpy(&sin->sin_addr, a.ip.data(), 4);
        len = sizeof *sin;
        return true;
    }
    if (a.type == wire::AddressType::ipv6) {
        auto* sin6 = reinterpret_cast<sockaddr_in6*>(&out);
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

std::string errno_text(const char* what, int e) { return std::string(what) + ": " + std::strerror(e); }

}  // namespace

bool init(std::string&) { return true; }

uint64_t monotonic_ns() {
    using namespace std::chrono;
    return static_cast<uint64_t>(duration_cast<nanoseconds>(steady_clock::now().time_since_epoch()).count());
}

uint64_t wall_clock_ms() {
    using namespace std::chrono;
    return static_cast<uint64_t>(duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count());
}

bool UdpSocket::open(wire::AddressType family, int buffer_bytes, std::string& error) {
    close();
    const bool v6 = family == wire::AddressType::ipv6;
    if (!v6 && family != wire::AddressType::ipv4) {
        error = "socket: no address family";
        return false;
    }
    const int domain = v6 ? AF_INET6 : AF_INET;
    const int fd = ::socket(domain, SOCK_DGRAM, IPPROTO_UDP);
    if (fd < 0) {
        error = errno_text(v6 ? "socket(AF_INET6)" : "socket(AF_INET)", errno);
        return false;
    }
    const int flags = ::fcntl(fd, F_GETFL, 0);
    int one = 1;
    bool ok = flags >= 0 && ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) == 0 && ::fcntl(fd, F_SETFD, FD_CLOEXEC) == 0;
    // One family per socket: an IPv4 server is reached through the IPv4 socket, never as a
    // v4-mapped address, so the source the server sees is what the token's address implies.
    if (ok && v6) ok = ::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one) == 0;
    if (ok && buffer_bytes > 0) {  // a tuning knob: a refused size is no reason to fail
        (void)::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buffer_bytes, sizeof buffer_bytes);
        (void)::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buffer_bytes, sizeof buffer_bytes);
    }
    if (ok) {
        sockaddr_storage any{};
        socklen_t len = 0;
        wire::Address wildcard;
        wildcard.type = family;
        to_sockaddr(wildcard, any, len);
        ok = ::bind(fd, reinterpret_cast<sockaddr*>(&any), len) == 0;
    }
    if (!ok) {
        error = errno_text(v6 ? "socket(AF_INET6) setup" : "socket(AF_INET) setup", errno);
        ::close(fd);
        return false;
    }
    fd_ = fd;
    family_ = family;
    return true;
}

void UdpSocket::close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
    family_ = wire::AddressType::none;
}

UdpSocket::Io UdpSocket::send_to(const wire::Address& to, std::span<const uint8_t> datagram) {
    sockaddr_storage ss;
    socklen_t len = 0;
    if (fd_ < 0 || to.type != family_ || !to_sockaddr(to, ss, len)) return Io::failed;
    for (;;) {
        const ssize_t n = ::sendto(fd_, datagram.data(), datagram.size(), 0, reinterpret_cast<sockaddr*>(&ss), len);
        if (n >= 0) return Io::ok;
        if (errno == EINTR) continue;
        return errno == EAGAIN || errno == EWOULDBLOCK ? Io::would_block : Io::failed;
    }
}

UdpSocket::Io UdpSocket::receive_from(std::span<uint8_t> buffer, size_t& size, bool& truncated, wire::Address& from) {
    if (fd_ < 0) return Io::would_block;
    for (;;) {
        sockaddr_storage ss{};
        iovec iov{buffer.data(), buffer.size()};
        msghdr msg{};
        msg.msg_name = &ss;
        msg.msg_namelen = sizeof ss;
        msg.msg_iov = &iov;
        msg.msg_iovlen = 1;
        const ssize_t n = ::recvmsg(fd_, &msg, 0);
        if (n < 0) {
            if (errno == EINTR) continue;
            // A previous send's ICMP error (port unreachable, ...) is reported here on some
            // systems: not this datagram's fault, and the next read goes on.
            if (errno == ECONNREFUSED || errno == EHOSTUNREACH || errno == ENETUNREACH) continue;
            return errno == EAGAIN || errno == EWOULDBLOCK ? Io::would_block : Io::failed;
        }
        size = static_cast<size_t>(n);
        truncated = (msg.msg_flags & MSG_TRUNC) != 0;
        from = from_sockaddr(ss);
        return Io::ok;
    }
}

uint16_t UdpSocket::local_port() const {
    if (fd_ < 0) return 0;
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    if (::getsockname(fd_, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return 0;
    return from_sockaddr(ss).port;
}

void wait_readable(std::span<const Handle> handles, uint64_t timeout_ns) {
    std::array<pollfd, 4> fds{};
    nfds_t n = 0;
    for (const Handle h : handles)
        if (h >= 0 && n < fds.size()) fds[n++] = {static_cast<int>(h), POLLIN, 0};
    constexpr uint64_t kMs = 1'000'000;
    const uint64_t ms = timeout_ns / kMs + (timeout_ns % kMs ? 1 : 0);
    (void)::poll(fds.data(), n, static_cast<int>(ms > 60'000 ? 60'000 : ms));
}

}  // namespace pomelo::net
