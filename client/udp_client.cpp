// pomelo::UdpClient: the protocol's client state machine (protocol/client) on kernel UDP
// sockets (socket_os), behind one lock, with an optional thread driving it.
#include <algorithm>
#include <cstring>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

#include "client/socket_os.hpp"
#include "pomelo/client.hpp"
#include "protocol/client/client.hpp"
#include "protocol/crypto/aead.hpp"
#include "protocol/outbox.hpp"
#include "protocol/wire/connect_token.hpp"
#include "protocol/wire/constants.hpp"

namespace pomelo {

namespace {

static_assert(kConnectTokenBytes == wire::kConnectTokenSize);
static_assert(kMaxPayloadBytes == wire::kMaxPayloadSize);
static_assert(int(ClientState::disconnected) == int(client::State::disconnected) &&
              int(ClientState::sending_request) == int(client::State::sending_request) &&
              int(ClientState::sending_response) == int(client::State::sending_response) &&
              int(ClientState::connected) == int(client::State::connected) &&
              int(ClientState::disconnecting) == int(client::State::disconnecting));
static_assert(int(ClientOutcome::none) == int(client::Outcome::none) &&
              int(ClientOutcome::invalid_token) == int(client::Outcome::invalid_token) &&
              int(ClientOutcome::token_expired) == int(client::Outcome::token_expired) &&
              int(ClientOutcome::denied) == int(client::Outcome::denied) &&
              int(ClientOutcome::request_timed_out) == int(client::Outcome::request_timed_out) &&
              int(ClientOutcome::response_timed_out) == int(client::Outcome::response_timed_out) &&
              int(ClientOutcome::connection_lost) == int(client::Outcome::connection_lost) &&
              int(ClientOutcome::disconnected_by_server) == int(client::Outcome::disconnected_by_server) &&
              int(ClientOutcome::disconnected) == int(client::Outcome::disconnected) &&
              int(ClientOutcome::token_already_used) == int(client::Outcome::token_already_used) &&
              client::kOutcomeCount == 10);

// The background thread sleeps at most this long, so that what another thread changed
// (connect, disconnect, a new socket) is picked up soon without a wakeup channel.
constexpr uint64_t kThreadMaxSleepNs = 10'000'000;
// Datagrams read per socket per update: a flood cannot keep update() from returning.
constexpr unsigned kMaxReadsPerUpdate = 256;

}  // namespace

const char* to_string(ClientResult r) noexcept { return pomelo_result_string(static_cast<int>(r)); }
const char* to_string(ClientState s) noexcept { return client::to_string(static_cast<client::State>(s)); }
const char* to_string(ClientOutcome o) noexcept { return client::to_string(static_cast<client::Outcome>(o)); }

#if defined(__GNUC__)
#define POMELO_INTERNAL __attribute__((visibility("hidden")))  // a nested class inherits the API's export
#else
#define POMELO_INTERNAL
#endif

struct POMELO_INTERNAL UdpClient::Impl final : client::Events, ImmediateOutbox {
    explicit Impl(const ClientConfig& c) : config(sanitized(c)), machine(machine_config(config), *this, *this) {}

    static ClientConfig sanitized(ClientConfig c) {
        c.receive_queue_payloads = std::max<uint32_t>(c.receive_queue_payloads, 1);
        c.resend_interval_ns = std::max<uint64_t>(c.resend_interval_ns, 1);
        c.ping_interval_ns = std::max<uint64_t>(c.ping_interval_ns, 1);
        return c;
    }
    static client::Config machine_config(const ClientConfig& c) {
        client::Config m;
        m.resend_interval_ns = c.resend_interval_ns;
        m.ping_interval_ns = c.ping_interval_ns;
        m.pong_min_interval_ns = std::min(m.pong_min_interval_ns, c.ping_interval_ns);
        m.accept_reference_denied = c.accept_reference_denied;
        return m;
    }

    // ---- client::Events
    void on_payload(std::span<const uint8_t> p) override {
        if (received.size() >= config.receive_queue_payloads) {
            ++stats.payloads_dropped;
            return;
        }
        try {
            received.emplace_back(p.begin(), p.end());
            ++stats.payloads_received;
        } catch (...) {  // out of memory: a lost datagram, as UDP may lose any
            ++stats.payloads_dropped;
        }
    }

    // ---- ImmediateOutbox: every datagram leaves through the socket of its family.
    void transmit(const wire::Address& to, std::span<const uint8_t> datagram, wire::PacketType type) override {
        net::UdpSocket& s = to.type == wire::AddressType::ipv6 ? v6 : v4;
        if (s.send_to(to, datagram) != net::UdpSocket::Io::ok) {
            ++stats.send_failures;
            return;
        }
        ++stats.datagrams_sent;
        if (type == wire::PacketType::payload) ++stats.payloads_sent;
    }

    // A time from the caller, or our clock for kNow; never earlier than one already used.
    Now time(uint64_t now_ns) {
        const uint64_t ns = now_ns == kNow ? net::monotonic_ns() : now_ns;
        last_ns = std::max(last_ns, ns);
        return {last_ns, net::wall_clock_ms()};
    }

    // Reads what the sockets hold into the state machine, then runs its timers.
    void pump(const Now& now) {
        std::array<uint8_t, wire::kMaxDatagramSize> buf;
        for (net::UdpSocket* s : {&v4, &v6}) {
            for (unsigned i = 0; i < kMaxReadsPerUpdate && s->is_open(); ++i) {
                size_t n = 0;
                bool truncated = false;
                wire::Address from;
                if (s->receive_from(buf, n, truncated, from) != net::UdpSocket::Io::ok) break;
                ++stats.datagrams_received;
                const uint64_t before = accepted();
                if (!truncated) machine.receive(std::span(buf.data(), n), from, now);
                if (accepted() == before) ++stats.datagrams_rejected;
            }
        }
        machine.update(now);
    }
    // Authenticated packets the state machine took (its counters; rejections are the rest).
    uint64_t accepted() const {
        uint64_t n = 0;
        for (uint64_t c : machine.counters().rx) n += c;
        return n;
    }

    // Opens a socket of each family the token lists (closing the previous ones: every
    // connection gets new source ports, so the server never mistakes it for an old one).
    ClientResult open_sockets(std::span<const uint8_t> token) {
        // The addresses are in the public part (§5.1): read them with the codec itself.
        wire::ConnectToken t;
        if (wire::decode_connect_token(token, t) != wire::WireError::ok) return ClientResult::ok;  // machine says why
        bool want4 = false, want6 = false;
        for (uint32_t i = 0; i < t.addresses.count; ++i) {
            want4 |= t.addresses.list[i].type == wire::AddressType::ipv4;
            want6 |= t.addresses.list[i].type == wire::AddressType::ipv6;
        }
        v4.close();
        v6.close();
        std::string error;
        const int buffer = static_cast<int>(std::min<uint32_t>(config.socket_buffer_bytes, INT32_MAX));
        bool any = false;
        // A family the host lacks (no IPv6) only makes its addresses time out: the next is tried.
        if (want4) any |= v4.open(wire::AddressType::ipv4, buffer, error);
        if (want6) any |= v6.open(wire::AddressType::ipv6, buffer, error);
        return any ? ClientResult::ok : ClientResult::socket_error;
    }

    // Connected: every DISCONNECT now, as the thread will not run again (destructor).
    void disconnect_at_once() {
        Now now = time(kNow);
        if (!machine.disconnect(now)) return;
        for (unsigned i = 0; i < 64 && machine.state() == client::State::disconnecting; ++i) {
            now.ns = std::max(now.ns, machine.next_update_ns());
            machine.update(now);
        }
    }

    void thread_main() {
        for (;;) {
            uint64_t sleep_ns = kThreadMaxSleepNs;
            std::array<net::Handle, 2> handles{-1, -1};
            {
                std::lock_guard lock(mutex);
                if (stopping) return;
                const Now now = time(kNow);
                pump(now);
                const uint64_t next = machine.next_update_ns();
                if (next > now.ns) sleep_ns = std::min(sleep_ns, next - now.ns);
                else sleep_ns = 0;
                handles = {v4.handle(), v6.handle()};
            }
            // Outside the lock; a socket closed meanwhile by connect() only ends the wait early.
            if (sleep_ns) net::wait_readable(handles, sleep_ns);
        }
    }

    const ClientConfig config;
    mutable std::mutex mutex;
    client::Client machine;
    net::UdpSocket v4, v6;
    std::deque<std::vector<uint8_t>> received;
    ClientStats stats{};
    uint64_t last_ns = 0;
    bool aborted = false;  // disconnect() while connecting: outcome disconnected
    std::thread thread;
    bool stopping = false;
};

UdpClient::UdpClient(const ClientConfig& config) : impl_(std::make_unique<Impl>(config)) { (void)crypto::init(); }

UdpClient::~UdpClient() {
    stop_thread();
    std::lock_guard lock(impl_->mutex);
    impl_->disconnect_at_once();
    impl_->machine.reset();  // wipes the token's keys
}

uint64_t UdpClient::now_ns() noexcept { return net::monotonic_ns(); }

ClientResult UdpClient::connect(std::span<const uint8_t> token, uint64_t now_ns) noexcept {
    if (token.size() != kConnectTokenBytes) return ClientResult::invalid_argument;
    if (!crypto::init()) return ClientResult::crypto_error;
    std::lock_guard lock(impl_->mutex);
    Impl& m = *impl_;
    if (m.machine.state() != client::State::disconnected) return ClientResult::wrong_state;
    std::string error;
    if (!net::init(error)) return ClientResult::socket_error;
    if (const ClientResult r = m.open_sockets(token); r != ClientResult::ok) return r;
    m.received.clear();
    m.aborted = false;
    if (!m.machine.connect(token, m.time(now_ns))) {
        m.v4.close();
        m.v6.close();
        return ClientResult::token_unusable;
    }
    return ClientResult::ok;
}

ClientResult UdpClient::update(uint64_t now_ns) noexcept {
    std::lock_guard lock(impl_->mutex);
    if (impl_->thread.joinable()) return ClientResult::wrong_state;
    impl_->pump(impl_->time(now_ns));
    return ClientResult::ok;
}

uint64_t UdpClient::next_update_ns() const noexcept {
    std::lock_guard lock(impl_->mutex);
    return impl_->machine.next_update_ns();
}

ClientResult UdpClient::send(std::span<const uint8_t> payload) noexcept {
    if (payload.empty() || payload.size() > kMaxPayloadBytes) return ClientResult::invalid_argument;
    std::lock_guard lock(impl_->mutex);
    Impl& m = *impl_;
    if (m.machine.state() != client::State::connected) return ClientResult::wrong_state;
    return m.machine.send(payload, m.time(kNow)) ? ClientResult::ok : ClientResult::internal_error;
}

ClientResult UdpClient::receive(std::span<uint8_t> buffer, size_t& size) noexcept {
    std::lock_guard lock(impl_->mutex);
    auto& q = impl_->received;
    size = 0;
    if (q.empty()) return ClientResult::ok;
    size = q.front().size();
    if (buffer.size() < size) return ClientResult::buffer_too_small;
    std::memcpy(buffer.data(), q.front().data(), size);
    q.pop_front();
    return ClientResult::ok;
}

ClientResult UdpClient::disconnect(uint64_t now_ns) noexcept {
    std::lock_guard lock(impl_->mutex);
    Impl& m = *impl_;
    switch (m.machine.state()) {
        case client::State::connected:
            m.machine.disconnect(m.time(now_ns));
            break;
        case client::State::sending_request:
        case client::State::sending_response:
            m.machine.reset();
            m.aborted = true;
            break;
        case client::State::disconnected:
        case client::State::disconnecting:
            break;
    }
    return ClientResult::ok;
}

ClientResult UdpClient::start_thread() noexcept {
    std::lock_guard lock(impl_->mutex);
    if (impl_->thread.joinable()) return ClientResult::wrong_state;
    impl_->stopping = false;
    try {
        impl_->thread = std::thread([m = impl_.get()] { m->thread_main(); });
    } catch (...) {
        return ClientResult::thread_error;
    }
    return ClientResult::ok;
}

ClientResult UdpClient::stop_thread() noexcept {
    std::thread t;
    {
        std::lock_guard lock(impl_->mutex);
        if (!impl_->thread.joinable()) return ClientResult::ok;
        impl_->stopping = true;
        t = std::move(impl_->thread);
    }
    t.join();  // outside the lock: the thread takes it once more to see `stopping`
    return ClientResult::ok;
}

ClientState UdpClient::state() const noexcept {
    std::lock_guard lock(impl_->mutex);
    return static_cast<ClientState>(impl_->machine.state());
}

ClientOutcome UdpClient::outcome() const noexcept {
    std::lock_guard lock(impl_->mutex);
    if (impl_->aborted) return ClientOutcome::disconnected;
    return static_cast<ClientOutcome>(impl_->machine.outcome());
}

int64_t UdpClient::client_id() const noexcept {
    std::lock_guard lock(impl_->mutex);
    return impl_->machine.state() == client::State::connected || impl_->machine.state() == client::State::disconnecting
               ? impl_->machine.client_id()
               : 0;
}

std::string UdpClient::server_address() const {
    std::lock_guard lock(impl_->mutex);
    if (impl_->machine.state() == client::State::disconnected) return {};
    return impl_->machine.server_address().to_string();
}

uint64_t UdpClient::rtt_ns() const noexcept {
    std::lock_guard lock(impl_->mutex);
    const PingTracker& p = impl_->machine.pings();
    return p.has_rtt() ? p.rtt_mean_ns() : 0;
}

int64_t UdpClient::clock_offset_ns(uint64_t now_ns) const noexcept {
    std::lock_guard lock(impl_->mutex);
    const ClockSync& c = impl_->machine.clock();
    if (!c.synchronised()) return 0;
    return c.offset_at(now_ns == kNow ? std::max(impl_->last_ns, net::monotonic_ns()) : now_ns);
}

double UdpClient::clock_drift_ppm() const noexcept {
    std::lock_guard lock(impl_->mutex);
    return impl_->machine.clock().drift_ppm();
}

uint64_t UdpClient::network_time_ns(uint64_t now_ns) const noexcept {
    const uint64_t local = now_ns == kNow ? net::monotonic_ns() : now_ns;
    return local + static_cast<uint64_t>(clock_offset_ns(local));
}

ClientStats UdpClient::stats() const noexcept {
    std::lock_guard lock(impl_->mutex);
    return impl_->stats;
}

}  // namespace pomelo
