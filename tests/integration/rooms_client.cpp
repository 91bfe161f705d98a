// rooms-test-client: the members of one room of the rooms example (examples/rooms/rooms.hpp),
// each a protocol/client state machine on a kernel UDP socket of its own, checking what the
// server relays.
//
//   rooms-test-client --server ADDR --key FILE --protocol-id ID --room NAME --room-index R
//                     [--members N] [--updates K] [--rate HZ] [--hold S] [--hold-step S] [--limit S]
//
// Member i of room R has client id R * 1000 + i + 1 and a token (minted here with
// pomelo::mint_token) whose user data is the room name. Each member waits until the server
// told it every other member joined, then sends K updates at HZ: [u32 sequence][u8 R][filler].
// It checks every record it receives: the sender's client id and the update's room byte name
// room R, each sender's sequences arrive 0, 1, 2, ... with none missing, repeated or reordered,
// and the member never sees itself. A member is done when it sent its K updates and got K
// from every other member; it then stays connected for --hold seconds (so the server's
// telemetry can be read meanwhile), plus --hold-step seconds per member index (so members
// leave one by one and the others see it: a left record must name a member that joined,
// with reason client_disconnected), and disconnects.
//
// Prints one JSON object; exit 0 if every member connected, finished and saw nothing wrong
// within --limit seconds, 1 otherwise, 2 for bad arguments.
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <pomelo/token.hpp>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "drivers/socket_port.hpp"
#include "examples/rooms/rooms.hpp"
#include "protocol/client/client.hpp"
#include "tools/common/cli.hpp"

namespace {

using namespace pomelo;
using rooms_kind = examples::rooms::Kind;

constexpr size_t kUpdateSize = 40;

Now now() {
    Now n;
    n.ns = static_cast<uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch()).count());
    n.unix_ms = static_cast<uint64_t>(
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count());
    return n;
}

uint64_t le(const uint8_t* p, unsigned bytes) {
    uint64_t v = 0;
    for (unsigned i = 0; i < bytes; ++i) v |= uint64_t{p[i]} << (8 * i);
    return v;
}

struct Totals {
    uint64_t updates_sent = 0, updates_received = 0, out_of_order = 0, foreign = 0, own = 0, malformed = 0;
    uint64_t joined = 0, left = 0, bad_left = 0, snapshots = 0;
};

class Member final : private client::Events, private ImmediateOutbox {
public:
    Member(int64_t client_id, uint32_t room, uint32_t members, Totals& totals)
        : id(client_id), room_(room), members_(members), totals_(totals), client_(client::Config{}, *this, *this) {
        fd_ = ::socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
        if (fd_ < 0) cli::failure(std::string("socket: ") + std::strerror(errno));
        sockaddr_in any{};
        any.sin_family = AF_INET;
        any.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (::bind(fd_, reinterpret_cast<sockaddr*>(&any), sizeof any) != 0)
            cli::failure(std::string("bind: ") + std::strerror(errno));
    }
    ~Member() override { ::close(fd_); }

    bool connect(const TokenBytes& token) { return client_.connect(token, now()); }

    void receive() {
        uint8_t buf[2048];
        for (;;) {
            sockaddr_storage from{};
            socklen_t len = sizeof from;
            const ssize_t n = ::recvfrom(fd_, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &len);
            if (n < 0) return;
            client_.receive(std::span(buf, static_cast<size_t>(n)), drivers::from_sockaddr(from), now());
        }
    }

    // Sends what is due; true while it has work left.
    void step(uint32_t updates, uint64_t interval_ns, uint64_t hold_ns) {
        const Now t = now();
        client_.update(t);
        if (client_.state() != client::State::connected) return;
        if (sent_ < updates && joined_.size() + 1 == members_ && t.ns >= next_send_ns_) {
            uint8_t u[kUpdateSize] = {};
            for (unsigned i = 0; i < 4; ++i) u[i] = static_cast<uint8_t>(sent_ >> (8 * i));
            u[4] = static_cast<uint8_t>(room_);
            if (client_.send(u, t)) {
                ++sent_;
                ++totals_.updates_sent;
                next_send_ns_ = t.ns + interval_ns;
            }
        }
        if (!finished_ns_ && sent_ == updates && complete(updates)) finished_ns_ = t.ns;
        if (finished_ns_ && t.ns - finished_ns_ >= hold_ns && !disconnecting_) {
            disconnecting_ = true;
            client_.disconnect(t);
        }
    }

    bool complete(uint32_t updates) const {
        if (next_.size() + 1 != members_) return false;
        for (const auto& [sender, seq] : next_)
            if (seq != updates) return false;
        return true;
    }
    bool done() const { return ended_; }
    bool connected_once() const { return connected_; }
    client::Outcome outcome() const { return client_.outcome(); }
    int fd() const { return fd_; }
    uint64_t next_ns() const { return client_.next_update_ns(); }

    const int64_t id;

private:
    void on_connected(int64_t) override { connected_ = true; }
    void on_disconnected(client::Outcome) override { ended_ = true; }
    void on_payload(std::span<const uint8_t> p) override {
        ++totals_.snapshots;
        size_t at = 0;
        while (at < p.size()) {
            const size_t left = p.size() - at;
            const uint8_t* r = p.data() + at;
            if (left < 9) break;
            const auto sender = static_cast<int64_t>(le(r + 1, 8));
            if (sender == id) ++totals_.own;
            if (sender / 1000 != room_) ++totals_.foreign;
            if (r[0] == static_cast<uint8_t>(rooms_kind::update) && left >= 11) {
                const size_t n = le(r + 9, 2);
                if (left < 11 + n || n != kUpdateSize) break;
                const uint8_t* u = r + 11;
                if (u[4] != room_) ++totals_.foreign;
                auto& expected = next_[sender];
                if (le(u, 4) != expected) ++totals_.out_of_order;
                expected = static_cast<uint32_t>(le(u, 4)) + 1;
                ++totals_.updates_received;
                at += 11 + n;
            } else if (r[0] == static_cast<uint8_t>(rooms_kind::joined)) {
                joined_.insert(sender);
                ++totals_.joined;
                at += 9;
            } else if (r[0] == static_cast<uint8_t>(rooms_kind::left) && left >= 10) {
                ++totals_.left;
                if (!joined_.count(sender) || r[9] != static_cast<uint8_t>(CloseReason::client_disconnected))
                    ++totals_.bad_left;
                at += 10;
            } else {
                break;
            }
        }
        if (at != p.size()) ++totals_.malformed;
    }
    void transmit(const wire::Address& to, std::span<const uint8_t> d, wire::PacketType) override {
        sockaddr_storage sa{};
        socklen_t len = 0;
        if (drivers::to_sockaddr(to, sa, len))
            (void)::sendto(fd_, d.data(), d.size(), 0, reinterpret_cast<sockaddr*>(&sa), len);
    }

    const uint32_t room_, members_;
    Totals& totals_;
    client::Client client_;
    int fd_ = -1;
    uint32_t sent_ = 0;
    uint64_t next_send_ns_ = 0, finished_ns_ = 0;
    bool connected_ = false, ended_ = false, disconnecting_ = false;
    std::set<int64_t> joined_;
    std::map<int64_t, uint32_t> next_;  // sender -> next expected sequence
};

int run(int argc, char** argv) {
    std::string server, key_path, room;
    uint64_t protocol_id = 0;
    uint32_t room_index = 0, members = 10, updates = 50;
    double rate = 20, hold = 0, hold_step = 0, limit = 60;
    bool have[5] = {};
    for (int i = 1; i < argc; ++i) {
        const std::string opt = argv[i];
        if (i + 1 >= argc) cli::bad_argument(opt, "needs a value");
        const std::string v = argv[++i];
        if (opt == "--server") server = v, have[0] = true;
        else if (opt == "--key") key_path = v, have[1] = true;
        else if (opt == "--protocol-id") protocol_id = cli::parse_uint(opt, v), have[2] = true;
        else if (opt == "--room") room = v, have[3] = true;
        else if (opt == "--room-index") room_index = static_cast<uint32_t>(cli::parse_uint(opt, v, 0, 200)), have[4] = true;
        else if (opt == "--members") members = static_cast<uint32_t>(cli::parse_uint(opt, v, 2, 999));
        else if (opt == "--updates") updates = static_cast<uint32_t>(cli::parse_uint(opt, v, 1, 100000));
        else if (opt == "--rate") rate = cli::parse_seconds(opt, v);
        else if (opt == "--hold") hold = cli::parse_seconds(opt, v);
        else if (opt == "--hold-step") hold_step = cli::parse_seconds(opt, v);
        else if (opt == "--limit") limit = cli::parse_seconds(opt, v);
        else cli::bad_argument(opt, "unknown option");
    }
    for (bool h : have)
        if (!h) cli::bad_argument("--server/--key/--protocol-id/--room/--room-index", "all are required");
    if (room.empty() || room.size() > examples::rooms::kMaxRoomName) cli::bad_argument("--room", "1..32 characters");
    if (rate <= 0) cli::bad_argument("--rate", "must be above 0");
    std::string error;
    const auto key = PrivateKey::load(key_path, error);
    if (!key) cli::bad_argument("--key", error);

    Totals totals;
    std::vector<std::unique_ptr<Member>> all;
    for (uint32_t i = 0; i < members; ++i) {
        TokenParams p;
        p.protocol_id = protocol_id;
        p.client_id = int64_t{room_index} * 1000 + i + 1;
        p.servers = {server};
        p.timeout_seconds = 5;
        std::memcpy(p.user_data.data(), room.data(), room.size());
        TokenBytes token;
        if (!mint_token(*key, p, token, error)) cli::bad_argument("--server", error);
        all.push_back(std::make_unique<Member>(p.client_id, room_index, members, totals));
        if (!all.back()->connect(token)) cli::failure("the client refused its own token");
    }

    const uint64_t interval = static_cast<uint64_t>(1e9 / rate);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(limit);
    std::vector<pollfd> fds;
    for (auto& m : all) fds.push_back({m->fd(), POLLIN, 0});
    std::vector<uint64_t> hold_ns;
    for (uint32_t i = 0; i < members; ++i) hold_ns.push_back(static_cast<uint64_t>((hold + hold_step * i) * 1e9));
    bool timed_out = false;
    for (;;) {
        bool all_done = true;
        for (uint32_t i = 0; i < members; ++i) {
            auto& m = all[i];
            m->receive();
            m->step(updates, interval, hold_ns[i]);
            all_done &= m->done();
        }
        if (all_done) break;
        if (std::chrono::steady_clock::now() > deadline) {
            timed_out = true;
            break;
        }
        ::poll(fds.data(), fds.size(), 2);
    }

    uint32_t connected = 0, finished = 0, disconnected = 0;
    for (auto& m : all) {
        connected += m->connected_once();
        finished += m->complete(updates);
        disconnected += m->outcome() == client::Outcome::disconnected;
    }
    const uint64_t expected = uint64_t{members} * (members - 1) * updates;
    const bool ok = !timed_out && connected == members && finished == members && disconnected == members &&
                    totals.updates_received == expected && totals.out_of_order == 0 && totals.foreign == 0 &&
                    totals.own == 0 && totals.malformed == 0 && totals.bad_left == 0;
    nlohmann::json j = {{"room", room},
                        {"members", members},
                        {"connected", connected},
                        {"finished", finished},
                        {"disconnected", disconnected},
                        {"timed_out", timed_out},
                        {"updates_sent", totals.updates_sent},
                        {"updates_received", totals.updates_received},
                        {"updates_expected", expected},
                        {"out_of_order", totals.out_of_order},
                        {"foreign", totals.foreign},
                        {"own", totals.own},
                        {"malformed", totals.malformed},
                        {"joined_records", totals.joined},
                        {"left_records", totals.left},
                        {"bad_left", totals.bad_left},
                        {"snapshots", totals.snapshots},
                        {"ok", ok}};
    std::printf("%s\n", j.dump().c_str());
    return ok ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
    return pomelo::cli::run_main("rooms-test-client", [&] { return run(argc, argv); });
}
