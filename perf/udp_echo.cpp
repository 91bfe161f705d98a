// udp_echo: the baseline of the kernel socket driver (perf/bench.sh). A plain UDP echo on one
// socket with recvmmsg/sendmmsg in bursts of 64, no protocol and no crypto: what the kernel's
// UDP path costs by itself, against which pomelo-server --driver socket is measured.
//
//   udp_echo ADDR:PORT        (IPv4 or [IPv6]); SIGINT/SIGTERM stop it and print the count
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <string>

namespace {

volatile std::sig_atomic_t g_stop = 0;
void on_signal(int) { g_stop = 1; }

constexpr unsigned kBurst = 64;
constexpr size_t kMaxDatagram = 2048;

bool parse(const std::string& text, sockaddr_storage& out, socklen_t& len) {
    const auto colon = text.rfind(':');
    if (colon == std::string::npos) return false;
    std::string host = text.substr(0, colon);
    const int port = std::atoi(text.c_str() + colon + 1);
    if (port <= 0 || port > 65535) return false;
    std::memset(&out, 0, sizeof out);
    if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
        auto* a = reinterpret_cast<sockaddr_in6*>(&out);
        a->sin6_family = AF_INET6;
        a->sin6_port = htons(static_cast<uint16_t>(port));
        len = sizeof *a;
        return inet_pton(AF_INET6, host.substr(1, host.size() - 2).c_str(), &a->sin6_addr) == 1;
    }
    auto* a = reinterpret_cast<sockaddr_in*>(&out);
    a->sin_family = AF_INET;
    a->sin_port = htons(static_cast<uint16_t>(port));
    len = sizeof *a;
    return inet_pton(AF_INET, host.c_str(), &a->sin_addr) == 1;
}

}  // namespace

int main(int argc, char** argv) {
    sockaddr_storage addr;
    socklen_t addr_len = 0;
    if (argc != 2 || !parse(argv[1], addr, addr_len)) {
        std::fprintf(stderr, "usage: udp_echo ADDR:PORT (a.b.c.d:port or [v6]:port)\n");
        return 2;
    }
    const int fd = ::socket(addr.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    const int buf = 8 << 20;
    ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof buf);
    ::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buf, sizeof buf);
    if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&addr), addr_len) != 0) {
        std::fprintf(stderr, "udp_echo: cannot bind %s: %s\n", argv[1], std::strerror(errno));
        return 1;
    }
    struct sigaction sa{};
    sa.sa_handler = on_signal;
    ::sigaction(SIGINT, &sa, nullptr);
    ::sigaction(SIGTERM, &sa, nullptr);
    std::printf("udp_echo: serving %s\n", argv[1]);
    std::fflush(stdout);

    static char data[kBurst][kMaxDatagram];
    sockaddr_storage from[kBurst];
    iovec iov[kBurst];
    mmsghdr msgs[kBurst];
    unsigned long long echoed = 0;
    while (!g_stop) {
        for (unsigned i = 0; i < kBurst; ++i) {
            iov[i] = {data[i], kMaxDatagram};
            msgs[i] = {};
            msgs[i].msg_hdr.msg_name = &from[i];
            msgs[i].msg_hdr.msg_namelen = sizeof from[i];
            msgs[i].msg_hdr.msg_iov = &iov[i];
            msgs[i].msg_hdr.msg_iovlen = 1;
        }
        const int n = ::recvmmsg(fd, msgs, kBurst, MSG_DONTWAIT, nullptr);
        if (n <= 0) {  // idle: wait in poll (a syscall only when there was nothing to read)
            pollfd p{fd, POLLIN, 0};
            ::poll(&p, 1, 100);
            continue;
        }
        for (int i = 0; i < n; ++i) iov[i].iov_len = msgs[i].msg_len;  // the reply is the datagram itself
        int sent = 0;
        while (sent < n) {
            const int s = ::sendmmsg(fd, msgs + sent, static_cast<unsigned>(n - sent), 0);
            if (s <= 0) break;
            sent += s;
        }
        echoed += static_cast<unsigned long long>(sent);
    }
    std::printf("udp_echo: stopped; %llu datagrams echoed\n", echoed);
    ::close(fd);
    return 0;
}
