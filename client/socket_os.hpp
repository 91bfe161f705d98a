// The client library's only operating-system dependent part: UDP sockets, waiting for them,
// and the two clocks. POSIX today (Linux, macOS, the BSDs, Android, iOS); a port to Windows
// (Winsock: WSAStartup, closesocket, WSAPoll, ioctlsocket FIONBIO) or a console SDK replaces
// socket_os.cpp alone. Everything here is non-blocking except wait_readable().
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "protocol/wire/address.hpp"

namespace pomelo::net {

// A socket as the system names it (a file descriptor on POSIX, a SOCKET on Windows); -1: none.
using Handle = intptr_t;

// Once per process before any socket (WSAStartup on Windows; nothing on POSIX). False with
// `error` set if the socket layer cannot be used.
bool init(std::string& error);

// Monotonic clock, ns since an arbitrary epoch: timers, timeouts, PING/PONG times.
uint64_t monotonic_ns();
// Wall clock, Unix ms: connect token expiry only.
uint64_t wall_clock_ms();

// One unconnected, non-blocking UDP socket of one family (IPv6 sockets are IPv6-only), bound
// to an ephemeral port of the wildcard address. Closed by the destructor.
class UdpSocket {
public:
    UdpSocket() = default;
    ~UdpSocket() { close(); }
    UdpSocket(const UdpSocket&) = delete;
    UdpSocket& operator=(const UdpSocket&) = delete;

    // `family` is ipv4 or ipv6; `buffer_bytes` sets SO_RCVBUF/SO_SNDBUF (0: the system's
    // default; the system may cap it). False with `error` set ("socket(AF_INET6): ...").
    bool open(wire::AddressType family, int buffer_bytes, std::string& error);
    void close();
    bool is_open() const { return fd_ >= 0; }
    wire::AddressType family() const { return family_; }

    enum class Io { ok, would_block, failed };
    // One datagram to `to` (of this socket's family). failed: the system refused it (no route,
    // buffer full, ...); UDP gives no delivery guarantee anyway, so callers count and go on.
    Io send_to(const wire::Address& to, std::span<const uint8_t> datagram);
    // One datagram into `buffer`: its size (a datagram larger than the buffer is cut to it
    // and `truncated` set) and sender. would_block when none is waiting.
    Io receive_from(std::span<uint8_t> buffer, size_t& size, bool& truncated, wire::Address& from);

    // The local port after the first send (0 before), for diagnostics.
    uint16_t local_port() const;
    Handle handle() const { return fd_; }

private:
    int fd_ = -1;
    wire::AddressType family_ = wire::AddressType::none;
};

// Waits until one of `handles` (at most 4; -1 entries skipped) has a datagram to read, or
// `timeout_ns` passed (rounded up to the system's resolution, 1 ms). Returns at once when a
// datagram is already waiting; a handle closed meanwhile or EINTR is a wakeup like any other.
// Takes handles, not sockets, so that a thread can wait without holding the sockets' lock.
void wait_readable(std::span<const Handle> handles, uint64_t timeout_ns);

}  // namespace pomelo::net
