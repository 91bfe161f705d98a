// EthdevPort on real kernel links, the kernel's UDP stack being the peer (drivers_udp_peer, a
// plain socket program). Everything lives in network namespaces the tests create and delete:
// the DPDK device is hotplugged while this thread is inside a namespace, so its sockets, tap
// interface and ioctls belong there; the port itself keeps running from the test thread.
//
//   AfPacketVeth: ns -a holds veth end A (no address) under net_af_packet; ns -b holds end B
//                 with 198.18.0.2/30 and the peer. Our port serves 198.18.0.1:4000.
//   TapKernel:    ns -c holds the net_tap interface, 198.18.0.6/30, and the peer. Our port
//                 serves 198.18.0.5:4000 and, net_tap offering checksum offloads, leaves the
//                 IPv4 and UDP checksums to the PMD: the kernel checks what comes out.
// In both the kernel resolves our address through the port's ARP replies, and we answer each
// datagram by the MAC it came from (the port learns nothing on its own).
//   AfPacketResolve: the same veth pair, ns -b's end holding 198.18.0.2/24, and a port with
//                 address resolution on (a client's): it finds the kernel's MAC by ARP, sends
//                 to a kernel UDP socket, ignores a forged reply, and gives up on an address
//                 nobody has.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <poll.h>
#include <sys/socket.h>
#include <rte_dev.h>
#include <sched.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "drivers/ethdev_port.hpp"
#include "tests/drivers/frames.hpp"

#ifndef POMELO_UDP_PEER
#error "POMELO_UDP_PEER (path of drivers_udp_peer) must be defined by the build"
#endif

extern char** environ;

namespace pomelo::test {
namespace {

// Runs a shell command; returns its exit status, its output (trailing newlines dropped).
int run(const std::string& cmd, std::string* out = nullptr) {
    FILE* p = popen((cmd + " 2>&1").c_str(), "r");
    if (p == nullptr) return -1;
    std::string text;
    char buf[256];
    while (fgets(buf, sizeof buf, p)) text += buf;
    const int status = pclose(p);
    while (!text.empty() && text.back() == '\n') text.pop_back();
    if (out) *out = text;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// Moves the calling thread into a named network namespace until destroyed.
class InNetns {
public:
    explicit InNetns(const std::string& ns) : home_(open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC)) {
        const int fd = open(("/run/netns/" + ns).c_str(), O_RDONLY | O_CLOEXEC);
        ok_ = home_ >= 0 && fd >= 0 && setns(fd, CLONE_NEWNET) == 0;
        if (fd >= 0) close(fd);
    }
    ~InNetns() {
        if (ok_) setns(home_, CLONE_NEWNET);
        if (home_ >= 0) close(home_);
    }
    InNetns(const InNetns&) = delete;
    InNetns& operator=(const InNetns&) = delete;
    bool ok() const { return ok_; }

private:
    int home_;
    bool ok_ = false;
};

// A child process whose stdout and stderr we collect.
struct Child {
    pid_t pid = -1;
    int out = -1;
};

Child spawn(const std::vector<std::string>& args) {
    int pipe_fds[2];
    Child c;
    if (pipe2(pipe_fds, O_CLOEXEC) != 0) return c;
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], STDOUT_FILENO);
    posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], STDERR_FILENO);
    std::vector<char*> argv;
    for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    if (posix_spawnp(&c.pid, argv[0], &actions, nullptr, argv.data(), environ) != 0) c.pid = -1;
    posix_spawn_file_actions_destroy(&actions);
    close(pipe_fds[1]);
    c.out = pipe_fds[0];
    return c;
}

std::string read_all(int fd) {
    std::string text;
    char buf[256];
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0) text.append(buf, static_cast<size_t>(n));
    close(fd);
    return text;
}

// Answers every datagram with its bytes XORed with 0x5a until the peer exits (or 30 s pass).
int echo_until_exit(drivers::Port& port, const Child& peer, const wire::Address& expected_from) {
    int status = 0;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (std::chrono::steady_clock::now() < deadline) {
        rte_mbuf* pkts[32];
        wire::Address from[32];
        drivers::LinkHop hop[32];
        const uint16_t n = port.rx_burst(0, pkts, from, nullptr, hop, 32);
        for (uint16_t i = 0; i < n; ++i) {
            EXPECT_EQ(from[i], expected_from);
            for (rte_mbuf* seg = pkts[i]; seg; seg = seg->next) {
                auto* p = rte_pktmbuf_mtod(seg, uint8_t*);
                for (uint16_t k = 0; k < seg->data_len; ++k) p[k] ^= 0x5a;
            }
        }
        // Back the way each came, as the engine answers a REQUEST: the port learns nothing.
        if (n) port.tx_burst(0, pkts, from, nullptr, hop, n);
        if (waitpid(peer.pid, &status, WNOHANG) == peer.pid) return status;
        if (n == 0) usleep(100);
    }
    kill(peer.pid, SIGKILL);
    waitpid(peer.pid, &status, 0);
    ADD_FAILURE() << "the peer did not finish within 30 s";
    return status;
}

std::string mac_text(const rte_ether_addr& m) {
    char text[18];
    std::snprintf(text, sizeof text, "%02x:%02x:%02x:%02x:%02x:%02x", m.addr_bytes[0], m.addr_bytes[1],
                  m.addr_bytes[2], m.addr_bytes[3], m.addr_bytes[4], m.addr_bytes[5]);
    return text;
}

// Namespaces, a hotplugged vdev, an EthdevPort on it, and a cleanup that runs even when an
// assertion failed half way.
class KernelLink : public ::testing::Test {
protected:
    static constexpr int kDatagrams = 6;

    void SetUp() override {
        pid_ = std::to_string(getpid());
        std::string out;
        const std::string probe = "pomelo-t-" + pid_ + "-probe";
        if (run("ip netns add " + probe, &out) != 0)
            GTEST_SKIP() << "cannot create network namespaces here (ip netns add: " << out << ")";
        run("ip netns del " + probe);
    }

    void TearDown() override {
        if (!vdev_.empty()) {
            InNetns in(vdev_ns_);
            port_.reset();
            rte_eal_hotplug_remove("vdev", vdev_.c_str());
        }
        for (const std::string& ns : namespaces_) run("ip netns del " + ns);  // takes its links along
    }

    // A namespace with IPv6 off: no router solicitations, DAD or MLD on our links.
    std::string make_namespace(const std::string& suffix) {
        const std::string ns = "pomelo-t-" + pid_ + "-" + suffix;
        std::string out;
        EXPECT_EQ(run("ip netns add " + ns, &out), 0) << out;
        namespaces_.push_back(ns);
        EXPECT_EQ(run("ip netns exec " + ns + " sysctl -qw net.ipv6.conf.all.disable_ipv6=1", &out), 0) << out;
        EXPECT_EQ(run("ip netns exec " + ns + " sysctl -qw net.ipv6.conf.default.disable_ipv6=1", &out), 0) << out;
        return ns;
    }

    // Hotplugs `vdev` from inside `ns` and opens an EthdevPort serving `local` on it.
    void open_port_in(const std::string& ns, const std::string& vdev, const std::string& args,
                      const wire::Address& local, const drivers::ResolveConfig& resolve = {}) {
        InNetns in(ns);
        ASSERT_TRUE(in.ok()) << "setns into " << ns << " failed";
        ASSERT_EQ(rte_eal_hotplug_add("vdev", vdev.c_str(), args.c_str()), 0)
            << "is the PMD of " << vdev << " available?";
        vdev_ = vdev;
        vdev_ns_ = ns;
        drivers::EthdevConfig c;
        c.device = vdev;
        c.local = {local};
        c.pool = pool();
        c.rx_desc = c.tx_desc = 512;
        c.resolve = resolve;
        std::string error;
        port_ = drivers::open_ethdev_port(c, error);
        ASSERT_NE(port_, nullptr) << error;
    }

    // Runs the kernel peer in `ns` against our port and answers it; checks what both saw.
    void exchange_with_kernel_peer(const std::string& ns, const wire::Address& peer, const wire::Address& us) {
        const std::string peer_ip = peer.to_string().substr(0, peer.to_string().find(':'));
        const std::string our_ip = us.to_string().substr(0, us.to_string().find(':'));
        const Child child = spawn({"ip", "netns", "exec", ns, POMELO_UDP_PEER, peer_ip, std::to_string(peer.port),
                                   our_ip, std::to_string(us.port), std::to_string(kDatagrams), "1225"});
        ASSERT_GT(child.pid, 0);
        const int status = echo_until_exit(*port_, child, peer);
        const std::string said = read_all(child.out);
        EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << said;
        EXPECT_EQ(said, "ok " + std::to_string(kDatagrams) + "\n");

        const drivers::PortStats s = port_->total_stats();
        EXPECT_GE(s.arp_replies, 1u);
        EXPECT_EQ(s.rx_datagrams, static_cast<uint64_t>(kDatagrams));
        EXPECT_EQ(s.tx_datagrams, static_cast<uint64_t>(kDatagrams));
        EXPECT_EQ(s.rx_malformed, 0u);
        EXPECT_EQ(s.tx_dropped, 0u);

        std::string neigh;  // the kernel's neighbour entry for us carries the port's MAC
        run("ip -n " + ns + " neigh show " + our_ip, &neigh);
        EXPECT_NE(neigh.find(mac_text(static_cast<drivers::EthdevPort&>(*port_).mac())), std::string::npos) << neigh;
    }

    std::string pid_;
    std::vector<std::string> namespaces_;
    std::string vdev_, vdev_ns_;
    std::unique_ptr<drivers::Port> port_;
};

class AfPacketVeth : public KernelLink {};

TEST_F(AfPacketVeth, KernelPeerResolvesUsAndGetsEveryDatagramBack) {
    const std::string ns_a = make_namespace("a");
    const std::string ns_b = make_namespace("b");
    const std::string veth_a = "pta" + pid_, veth_b = "ptb" + pid_;
    for (const std::string& cmd : {
             "ip link add " + veth_a + " netns " + ns_a + " type veth peer name " + veth_b + " netns " + ns_b,
             "ip -n " + ns_a + " link set " + veth_a + " up",
             "ip -n " + ns_b + " addr add 198.18.0.2/30 dev " + veth_b,
             "ip -n " + ns_b + " link set " + veth_b + " up",
             // veth leaves UDP checksums to an offload that never happens, and af_packet (in
             // DPDK 22.11) does not say so: make the kernel fill them in.
             "ip netns exec " + ns_b + " ethtool -K " + veth_b + " tx off",
         }) {
        std::string out;
        ASSERT_EQ(run(cmd, &out), 0) << cmd << ": " << out;
    }
    open_port_in(ns_a, "net_af_packet_pt" + pid_, "iface=" + veth_a + ",qpairs=1", v4(198, 18, 0, 1, 4000));
    ASSERT_NE(port_, nullptr);
    exchange_with_kernel_peer(ns_b, v4(198, 18, 0, 2, 5000), v4(198, 18, 0, 1, 4000));
}

class TapKernel : public KernelLink {};

TEST_F(TapKernel, PmdChecksumOffloadIsUsedAndTheKernelAcceptsIt) {
    const std::string ns_c = make_namespace("c");
    const std::string tap = "ptt" + pid_;
    open_port_in(ns_c, "net_tap_pt" + pid_, "iface=" + tap, v4(198, 18, 0, 5, 4000));
    ASSERT_NE(port_, nullptr);
    const drivers::l2l3::TxOffloads off = static_cast<drivers::EthdevPort&>(*port_).tx_offloads();
    EXPECT_TRUE(off.ipv4_cksum && off.udp_cksum) << "net_tap no longer offers checksum offloads";
    for (const std::string& cmd : {
             "ip -n " + ns_c + " addr add 198.18.0.6/30 dev " + tap,
             "ip -n " + ns_c + " link set " + tap + " up",
         }) {
        std::string out;
        ASSERT_EQ(run(cmd, &out), 0) << cmd << ": " << out;
    }
    exchange_with_kernel_peer(ns_c, v4(198, 18, 0, 6, 5000), v4(198, 18, 0, 5, 4000));
}

// --- address resolution against the kernel ---

// A kernel UDP socket created inside a namespace (it stays there when the thread leaves).
class NsSocket {
public:
    NsSocket(const std::string& ns, const std::string& ip, uint16_t port) {
        InNetns in(ns);
        if (!in.ok()) return;
        fd_ = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_port = htons(port);
        inet_pton(AF_INET, ip.c_str(), &a.sin_addr);
        if (fd_ >= 0 && bind(fd_, reinterpret_cast<const sockaddr*>(&a), sizeof a) != 0) {
            close(fd_);
            fd_ = -1;
        }
    }
    ~NsSocket() {
        if (fd_ >= 0) close(fd_);
    }
    NsSocket(const NsSocket&) = delete;
    NsSocket& operator=(const NsSocket&) = delete;
    int fd() const { return fd_; }

    // The next datagram, waiting up to `ms`; its source in `from` ("ip:port").
    std::optional<Bytes> receive(int ms, std::string* from = nullptr) const {
        pollfd p{fd_, POLLIN, 0};
        if (poll(&p, 1, ms) != 1) return std::nullopt;
        Bytes b(2048);
        sockaddr_in src{};
        socklen_t len = sizeof src;
        const ssize_t n = recvfrom(fd_, b.data(), b.size(), 0, reinterpret_cast<sockaddr*>(&src), &len);
        if (n < 0) return std::nullopt;
        b.resize(static_cast<size_t>(n));
        if (from) {
            char text[INET_ADDRSTRLEN] = {};
            inet_ntop(AF_INET, &src.sin_addr, text, sizeof text);
            *from = std::string(text) + ":" + std::to_string(ntohs(src.sin_port));
        }
        return b;
    }

private:
    int fd_ = -1;
};

class AfPacketResolve : public KernelLink {
protected:
    const wire::Address us_ = v4(198, 18, 0, 1, 4000);
    const wire::Address kernel_ = v4(198, 18, 0, 2, 5000);

    // The veth pair, the kernel's end 198.18.0.2/24, and our resolving port on the other end.
    void link_up(drivers::ResolveConfig resolve) {
        ns_a_ = make_namespace("a");
        ns_b_ = make_namespace("b");
        veth_a_ = "pra" + pid_;
        veth_b_ = "prb" + pid_;
        for (const std::string& cmd : {
                 "ip link add " + veth_a_ + " netns " + ns_a_ + " type veth peer name " + veth_b_ + " netns " + ns_b_,
                 "ip -n " + ns_a_ + " link set " + veth_a_ + " up",
                 "ip -n " + ns_b_ + " addr add 198.18.0.2/24 dev " + veth_b_,
                 "ip -n " + ns_b_ + " link set " + veth_b_ + " up",
                 "ip netns exec " + ns_b_ + " ethtool -K " + veth_b_ + " tx off",  // as above
             }) {
            std::string out;
            ASSERT_EQ(run(cmd, &out), 0) << cmd << ": " << out;
        }
        resolve.enabled = true;
        open_port_in(ns_a_, "net_af_packet_pr" + pid_, "iface=" + veth_a_ + ",qpairs=1", us_, resolve);
    }
    drivers::EthdevPort& port() { return static_cast<drivers::EthdevPort&>(*port_); }
    rte_ether_addr kernel_mac() {
        std::string text;
        run("ip netns exec " + ns_b_ + " cat /sys/class/net/" + veth_b_ + "/address", &text);
        rte_ether_addr mac{};
        EXPECT_EQ(rte_ether_unformat_addr(text.c_str(), &mac), 0) << text;
        return mac;
    }
    uint16_t send_to(const wire::Address& to, const std::vector<Bytes>& payloads) {
        std::vector<rte_mbuf*> pkts;
        for (const Bytes& p : payloads) pkts.push_back(payload_mbuf(p));
        std::vector<wire::Address> dst(payloads.size(), to);
        return port_->tx_burst(0, pkts.data(), dst.data(), nullptr, static_cast<uint16_t>(pkts.size()));
    }
    // Runs the port's receive loop (answers, retries) until `done` or `ms` pass; hands any
    // datagram it gets to `got`.
    bool poll_until(const std::function<bool()>& done, int ms, std::vector<Bytes>* got = nullptr) {
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
        while (!done()) {
            if (std::chrono::steady_clock::now() > deadline) return false;
            rte_mbuf* pkts[16];
            wire::Address from[16];
            const uint16_t n = port_->rx_burst(0, pkts, from, nullptr, 16);
            for (uint16_t i = 0; i < n; ++i) {
                if (got) got->push_back(bytes_of(pkts[i]));
                rte_pktmbuf_free(pkts[i]);
            }
            if (n == 0) usleep(200);
        }
        return true;
    }

    std::string ns_a_, ns_b_, veth_a_, veth_b_;
};

TEST_F(AfPacketResolve, FindsTheKernelByArpAndItsSocketGetsTheDatagrams) {
    link_up({});
    ASSERT_NE(port_, nullptr);
    NsSocket sock(ns_b_, "198.18.0.2", kernel_.port);
    ASSERT_GE(sock.fd(), 0);
    const std::vector<Bytes> payloads = {pattern(64, 1), pattern(300, 2), pattern(1200, 3)};
    EXPECT_EQ(send_to(kernel_, payloads), 0);  // held while the kernel is asked
    EXPECT_EQ(port_->stats(0).arp_requests, 1u);
    ASSERT_TRUE(poll_until([&] { return port_->stats(0).neighbours_resolved == 1; }, 3000))
        << "no ARP reply from the kernel";
    for (const Bytes& p : payloads) {
        std::string from;
        const std::optional<Bytes> got = sock.receive(2000, &from);
        ASSERT_TRUE(got) << "the kernel socket got nothing";
        EXPECT_EQ(*got, p);
        EXPECT_EQ(from, "198.18.0.1:4000");
    }
    const std::optional<drivers::LinkHop> hop = port().neighbour(0, kernel_);
    ASSERT_TRUE(hop);
    const rte_ether_addr mac = kernel_mac();
    EXPECT_TRUE(rte_is_same_ether_addr(&hop->mac, &mac));

    // Known now: straight out. And the kernel, which learned us from our request, answers.
    EXPECT_EQ(send_to(kernel_, {pattern(50, 4)}), 1);
    ASSERT_TRUE(sock.receive(2000));
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(us_.port);
    inet_pton(AF_INET, "198.18.0.1", &to.sin_addr);
    const Bytes back = pattern(80, 5);
    ASSERT_EQ(sendto(sock.fd(), back.data(), back.size(), 0, reinterpret_cast<const sockaddr*>(&to), sizeof to),
              static_cast<ssize_t>(back.size()));
    std::vector<Bytes> got;
    EXPECT_TRUE(poll_until([&] { return !got.empty(); }, 3000, &got));
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0], back);

    const drivers::PortStats s = port_->total_stats();
    EXPECT_EQ(s.arp_requests, 1u);
    EXPECT_EQ(s.tx_datagrams, payloads.size() + 1);
    EXPECT_EQ(s.tx_dropped, 0u);
    EXPECT_EQ(s.neighbours_unsolicited + s.neighbours_failed + s.tx_unresolved, 0u);
}

TEST_F(AfPacketResolve, AForgedReplyTeachesNothing) {
    link_up({});
    ASSERT_NE(port_, nullptr);
    NsSocket sock(ns_b_, "198.18.0.2", kernel_.port);
    ASSERT_GE(sock.fd(), 0);
    // From ns -b, a raw frame: "198.18.0.2 is at 02:00:00:00:00:77", to our MAC, unasked.
    Bytes forged = arp_request(kOtherMac, v4(198, 18, 0, 2, 0), us_);
    put_be16(forged, 20, RTE_ARP_OP_REPLY);
    std::copy_n(port().mac().addr_bytes, 6, forged.begin());        // Ethernet destination
    std::copy_n(port().mac().addr_bytes, 6, forged.begin() + 32);   // target hardware address
    {
        InNetns in(ns_b_);
        ASSERT_TRUE(in.ok());
        const int raw = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);
        ASSERT_GE(raw, 0);
        sockaddr_ll ll{};
        ll.sll_family = AF_PACKET;
        ll.sll_ifindex = static_cast<int>(if_nametoindex(veth_b_.c_str()));
        ll.sll_halen = 6;
        std::copy_n(forged.begin(), 6, ll.sll_addr);
        EXPECT_EQ(sendto(raw, forged.data(), forged.size(), 0, reinterpret_cast<const sockaddr*>(&ll), sizeof ll),
                  static_cast<ssize_t>(forged.size()));
        close(raw);
    }
    EXPECT_TRUE(poll_until([&] { return port_->stats(0).neighbours_unsolicited == 1; }, 3000));
    EXPECT_FALSE(port().neighbour(0, kernel_)) << "learned from a reply nobody asked for";

    // Asked now, the kernel's own answer is what counts: the datagram reaches its socket.
    EXPECT_EQ(send_to(kernel_, {pattern(40, 6)}), 0);
    ASSERT_TRUE(poll_until([&] { return port_->stats(0).neighbours_resolved == 1; }, 3000));
    const std::optional<Bytes> got = sock.receive(2000);
    ASSERT_TRUE(got);
    EXPECT_EQ(*got, pattern(40, 6));
    const std::optional<drivers::LinkHop> hop = port().neighbour(0, kernel_);
    ASSERT_TRUE(hop);
    EXPECT_FALSE(rte_is_same_ether_addr(&hop->mac, &kOtherMac));
}

TEST_F(AfPacketResolve, AnAddressNobodyHasFailsAfterTheTries) {
    drivers::ResolveConfig r;
    r.retry_ms = 100;
    r.tries = 3;
    r.hold = 4;
    link_up(r);
    ASSERT_NE(port_, nullptr);
    std::string before;
    ASSERT_EQ(run("ip netns exec " + ns_b_ + " cat /sys/class/net/" + veth_b_ + "/statistics/rx_packets", &before), 0);
    const auto start = std::chrono::steady_clock::now();
    const wire::Address nobody = v4(198, 18, 0, 9, 5000);
    EXPECT_EQ(send_to(nobody, {pattern(10, 1), pattern(10, 2), pattern(10, 3), pattern(10, 4), pattern(10, 5),
                               pattern(10, 6)}),
              0);
    EXPECT_EQ(port_->stats(0).tx_unresolved, 2u);  // beyond the 4 held
    EXPECT_TRUE(poll_until([&] { return port_->stats(0).neighbours_failed == 1; }, 5000));
    EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(280));
    const drivers::PortStats s = port_->stats(0);
    EXPECT_EQ(s.arp_requests, 3u);
    EXPECT_EQ(s.tx_unresolved, 6u);
    EXPECT_EQ(s.tx_dropped, 6u);
    EXPECT_EQ(s.tx_datagrams, 0u);
    EXPECT_EQ(s.neighbours_resolved, 0u);
    std::string after;  // the requests did go out: the kernel's end saw them
    ASSERT_EQ(run("ip netns exec " + ns_b_ + " cat /sys/class/net/" + veth_b_ + "/statistics/rx_packets", &after), 0);
    EXPECT_EQ(std::stoull(after) - std::stoull(before), 3u);
}

}  // namespace
}  // namespace pomelo::test
