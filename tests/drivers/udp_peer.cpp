// A kernel-socket peer for the af_packet test, run inside the test's network namespace:
//   drivers_udp_peer BIND_IP BIND_PORT DST_IP DST_PORT COUNT MAX_SIZE
// sends COUNT datagrams (sizes alternating 64 and MAX_SIZE bytes, a pattern per datagram) and
// expects each back within 3 s with every byte XORed with 0x5a. Prints "ok COUNT" and exits 0,
// or one line saying what went wrong and exits 1.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <vector>

namespace {

sockaddr_in endpoint(const char* ip, const char* port) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(std::atoi(port)));
    inet_pton(AF_INET, ip, &a.sin_addr);
    return a;
}

int fail(const char* what, int i) {
    std::printf("datagram %d: %s\n", i, what);
    return 1;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 7) {
        std::fprintf(stderr, "usage: %s BIND_IP BIND_PORT DST_IP DST_PORT COUNT MAX_SIZE\n", argv[0]);
        return 2;
    }
    const sockaddr_in self = endpoint(argv[1], argv[2]);
    const sockaddr_in peer = endpoint(argv[3], argv[4]);
    const int count = std::atoi(argv[5]);
    const size_t max_size = static_cast<size_t>(std::atoi(argv[6]));

    const int fd = socket(AF_INET, SOCK_DGRAM, 0);
    const timeval timeout{3, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    if (bind(fd, reinterpret_cast<const sockaddr*>(&self), sizeof self) != 0) return fail("cannot bind", -1);

    std::vector<unsigned char> out(max_size), in(max_size + 1);
    for (int i = 0; i < count; ++i) {
        const size_t size = i % 2 ? max_size : 64;
        for (size_t k = 0; k < size; ++k) out[k] = static_cast<unsigned char>(i * 31 + k);
        if (sendto(fd, out.data(), size, 0, reinterpret_cast<const sockaddr*>(&peer), sizeof peer) !=
            static_cast<ssize_t>(size))
            return fail("sendto failed", i);
        sockaddr_in from{};
        socklen_t from_len = sizeof from;
        const ssize_t got = recvfrom(fd, in.data(), in.size(), 0, reinterpret_cast<sockaddr*>(&from), &from_len);
        if (got < 0) return fail("no answer within 3 s", i);
        if (static_cast<size_t>(got) != size) return fail("answer has the wrong size", i);
        if (from.sin_addr.s_addr != peer.sin_addr.s_addr || from.sin_port != peer.sin_port)
            return fail("answer from the wrong address", i);
        for (size_t k = 0; k < size; ++k)
            if (in[k] != (out[k] ^ 0x5a)) return fail("answer has the wrong bytes", i);
    }
    std::printf("ok %d\n", count);
    close(fd);
    return 0;
}
