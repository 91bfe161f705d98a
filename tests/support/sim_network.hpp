// A deterministic simulated network for the pure state machines: datagrams between
// addresses with seeded loss, duplication, reordering, delay and jitter, and a clock per node
// with its own offset and drift. Time advances in fixed steps; nothing here is real time.
#pragma once

#include <cstdint>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <queue>
#include <random>
#include <vector>

#include "protocol/client/client.hpp"
#include "protocol/outbox.hpp"
#include "protocol/server/server.hpp"
#include "protocol/wire/connect_token.hpp"

namespace pomelo::test {

struct LinkModel {
    double loss = 0;       // probability a datagram is lost
    double duplicate = 0;  // probability it is delivered twice
    double reorder = 0;    // probability it is held back by an extra `reorder_ns`
    uint64_t delay_ns = 1'000'000;
    uint64_t jitter_ns = 0;  // uniform in [-jitter, +jitter]
    uint64_t reorder_ns = 20'000'000;
};

struct Datagram {
    wire::Address from, to;
    std::vector<uint8_t> bytes;
};

class SimNetwork;

struct KeyLess {
    bool operator()(const wire::AddressKey& a, const wire::AddressKey& b) const {
        return std::memcmp(&a, &b, sizeof a) < 0;
    }
};

// A node's local clocks: local = offset + sim × (1 + drift).
struct NodeClock {
    int64_t offset_ns = 0;
    double drift_ppm = 0;
    uint64_t unix_epoch_ms = 1'700'000'000'000ull;
    Now at(uint64_t sim_ns) const {
        const double drifted = static_cast<double>(sim_ns) * (1.0 + drift_ppm * 1e-6);
        return {static_cast<uint64_t>(offset_ns + static_cast<int64_t>(drifted)), unix_epoch_ms + sim_ns / 1'000'000};
    }
};

class SimNode : public ImmediateOutbox {
public:
    SimNode(SimNetwork& net, const wire::Address& address, NodeClock clock = {});
    ~SimNode() override;
    virtual void deliver(std::span<uint8_t> datagram, const wire::Address& from, const Now& now) = 0;
    virtual void tick(const Now& now) = 0;
    const wire::Address& address() const { return address_; }
    NodeClock clock;

protected:
    void transmit(const wire::Address& to, std::span<const uint8_t> datagram, wire::PacketType type) override;
    SimNetwork& net_;
    wire::Address address_;
};

class SimNetwork {
public:
    explicit SimNetwork(uint64_t seed) : rng_(seed) {}

    LinkModel link;  // applies to every datagram unless a per-destination model is set
    std::map<wire::AddressKey, LinkModel, KeyLess> link_to;  // by destination
    // Sees every datagram as sent (before loss); return false to drop it.
    std::function<bool(const Datagram&)> tap;

    uint64_t now() const { return now_; }
    void attach(SimNode* n) { nodes_[key(n->address())] = n; }
    void detach(SimNode* n) { nodes_.erase(key(n->address())); }

    void send(const wire::Address& from, const wire::Address& to, std::span<const uint8_t> bytes);
    // Puts a datagram on the wire exactly as given (for injected and replayed packets).
    void inject(const Datagram& d, uint64_t delay_ns = 0) { schedule(d, now_ + delay_ns); }

    // Advances time in `step_ns` steps to `until_ns`: delivers what is due, then ticks every node.
    void run_until(uint64_t until_ns, uint64_t step_ns = 1'000'000);
    void run_for(uint64_t duration_ns, uint64_t step_ns = 1'000'000) { run_until(now_ + duration_ns, step_ns); }
    // Runs until pred() holds or `limit_ns` passes; true if pred() held.
    bool run_while_not(const std::function<bool()>& pred, uint64_t limit_ns, uint64_t step_ns = 1'000'000);

    uint64_t sent() const { return sent_; }
    uint64_t dropped() const { return dropped_; }

private:
    struct InFlight {
        uint64_t at;
        uint64_t order;
        Datagram d;
        bool operator>(const InFlight& o) const { return at != o.at ? at > o.at : order > o.order; }
    };
    static wire::AddressKey key(const wire::Address& a) { return wire::AddressKey::of(a); }
    void schedule(const Datagram& d, uint64_t at) { queue_.push({at, order_++, d}); }
    double uniform() { return std::uniform_real_distribution<double>(0, 1)(rng_); }

    std::mt19937_64 rng_;
    uint64_t now_ = 0;
    uint64_t order_ = 0;
    uint64_t sent_ = 0, dropped_ = 0;
    std::priority_queue<InFlight, std::vector<InFlight>, std::greater<>> queue_;
    std::map<wire::AddressKey, SimNode*, KeyLess> nodes_;
};

inline SimNode::SimNode(SimNetwork& net, const wire::Address& address, NodeClock c)
    : clock(c), net_(net), address_(address) {
    net_.attach(this);
}
inline SimNode::~SimNode() { net_.detach(this); }
inline void SimNode::transmit(const wire::Address& to, std::span<const uint8_t> datagram, wire::PacketType) {
    net_.send(address_, to, datagram);
}

inline void SimNetwork::send(const wire::Address& from, const wire::Address& to, std::span<const uint8_t> bytes) {
    ++sent_;
    Datagram d{from, to, std::vector<uint8_t>(bytes.begin(), bytes.end())};
    if (tap && !tap(d)) {
        ++dropped_;
        return;
    }
    auto it = link_to.find(key(to));
    const LinkModel& m = it != link_to.end() ? it->second : link;
    if (uniform() < m.loss) {
        ++dropped_;
        return;
    }
    const int copies = uniform() < m.duplicate ? 2 : 1;
    for (int i = 0; i < copies; ++i) {
        int64_t delay = static_cast<int64_t>(m.delay_ns);
        if (m.jitter_ns) delay += static_cast<int64_t>((uniform() * 2 - 1) * static_cast<double>(m.jitter_ns));
        if (uniform() < m.reorder) delay += static_cast<int64_t>(m.reorder_ns);
        schedule(d, now_ + static_cast<uint64_t>(std::max<int64_t>(delay, 0)));
    }
}

inline void SimNetwork::run_until(uint64_t until_ns, uint64_t step_ns) {
    while (now_ < until_ns) {
        now_ = std::min(until_ns, now_ + step_ns);
        while (!queue_.empty() && queue_.top().at <= now_) {
            InFlight f = queue_.top();
            queue_.pop();
            auto it = nodes_.find(key(f.d.to));
            if (it == nodes_.end()) continue;  // nobody listens there
            SimNode* n = it->second;
            n->deliver(f.d.bytes, f.d.from, n->clock.at(now_));
        }
        // Copy: a tick may attach or detach nodes.
        std::vector<SimNode*> nodes;
        nodes.reserve(nodes_.size());
        for (auto& [k, n] : nodes_) nodes.push_back(n);
        for (SimNode* n : nodes) n->tick(n->clock.at(now_));
    }
}

inline bool SimNetwork::run_while_not(const std::function<bool()>& pred, uint64_t limit_ns, uint64_t step_ns) {
    const uint64_t end = now_ + limit_ns;
    while (!pred()) {
        if (now_ >= end) return false;
        run_until(std::min(end, now_ + step_ns), step_ns);
    }
    return true;
}

// ---------------------------------------------------------------- server and client nodes

class ServerNode : public SimNode, public server::Events {
public:
    ServerNode(SimNetwork& net, const wire::Address& address, const server::Config& config, NodeClock c = {})
        : SimNode(net, address, c), server(config, *this, *this) {}

    void deliver(std::span<uint8_t> d, const wire::Address& from, const Now& now) override {
        server.receive(d, from, now);
    }
    void tick(const Now& now) override { server.update(now); }

    void on_connect(server::PeerId id, int64_t client_id, const wire::UserData& ud) override {
        connects.push_back({id, client_id});
        user_data[client_id] = ud;
        if (on_connect_hook) on_connect_hook(id, client_id);
    }
    void on_payload(server::PeerId id, std::span<const uint8_t> p) override {
        payloads.emplace_back(id, std::vector<uint8_t>(p.begin(), p.end()));
        if (echo) server.send(id, p, clock.at(net_.now()));
    }
    void on_disconnect(server::PeerId id, int64_t client_id, server::CloseReason r) override {
        disconnects.push_back({id, client_id, r});
    }

    std::optional<server::PeerId> peer_of(int64_t client_id) const {
        for (auto& c : connects)
            if (c.client_id == client_id) return c.id;
        return std::nullopt;
    }

    struct Connect {
        server::PeerId id;
        int64_t client_id;
    };
    struct Disconnect {
        server::PeerId id;
        int64_t client_id;
        server::CloseReason reason;
    };
    server::Server server;
    bool echo = false;
    std::vector<Connect> connects;
    std::map<int64_t, wire::UserData> user_data;
    std::vector<std::pair<server::PeerId, std::vector<uint8_t>>> payloads;
    std::vector<Disconnect> disconnects;
    std::function<void(server::PeerId, int64_t)> on_connect_hook;
};

class ClientNode : public SimNode, public client::Events {
public:
    ClientNode(SimNetwork& net, const wire::Address& address, const client::Config& config = {}, NodeClock c = {})
        : SimNode(net, address, c), client(config, *this, *this) {}

    void deliver(std::span<uint8_t> d, const wire::Address& from, const Now& now) override {
        client.receive(d, from, now);
    }
    void tick(const Now& now) override { client.update(now); }

    void on_connected(int64_t id) override {
        connected = true;
        learned_id = id;
    }
    void on_payload(std::span<const uint8_t> p) override { payloads.emplace_back(p.begin(), p.end()); }
    void on_disconnected(client::Outcome o) override { outcomes.push_back(o); }

    client::Client client;
    bool connected = false;
    int64_t learned_id = 0;
    std::vector<std::vector<uint8_t>> payloads;
    std::vector<client::Outcome> outcomes;
};

// ---------------------------------------------------------------- tokens

struct TokenFactory {
    crypto::Key private_key = crypto::Key::random();
    uint64_t protocol_id = 0x1122334455667788ull;
    uint64_t create_ms = 1'700'000'000'000ull;
    uint64_t expire_ms = 1'700'000'000'000ull + 3'600'000;
    int32_t timeout_seconds = 5;
    crypto::Suite suite = crypto::Suite::chacha20poly1305;

    std::array<uint8_t, wire::kConnectTokenSize> mint(int64_t client_id, std::vector<wire::Address> servers) const {
        wire::TokenSpec s;
        s.suite = suite;
        s.protocol_id = protocol_id;
        s.create_ms = create_ms;
        s.expire_ms = expire_ms;
        crypto::random_bytes(s.nonce.data(), s.nonce.size());
        s.private_part.client_id = client_id;
        s.private_part.timeout_seconds = timeout_seconds;
        for (auto& a : servers) s.private_part.addresses.push(a);
        s.private_part.client_to_server_key = crypto::Key::random();
        s.private_part.server_to_client_key = crypto::Key::random();
        for (size_t i = 0; i < s.private_part.user_data.size(); ++i)
            s.private_part.user_data[i] = static_cast<uint8_t>(static_cast<uint64_t>(client_id) + i);
        std::array<uint8_t, wire::kConnectTokenSize> out{};
        if (wire::mint_connect_token(s, private_key, out) != wire::WireError::ok) throw std::runtime_error("mint");
        return out;
    }

    server::Config server_config(const wire::Address& public_address) const {
        server::Config c;
        c.protocol_id = protocol_id;
        c.private_key = private_key;
        c.public_addresses = {public_address};
        return c;
    }
};

inline wire::Address addr(const char* text) { return *wire::Address::parse(text); }

}  // namespace pomelo::test
