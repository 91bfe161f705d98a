// The whole server on one thread: handshake + one shard behind one receive() and update().
// The engine runs the same two parts on separate threads (control thread + worker lcores);
// this composition serves the kernel-socket driver, the simulation tests and small hosts.
#pragma once

#include <span>

#include "protocol/server/handshake.hpp"
#include "protocol/server/shard.hpp"

namespace pomelo::server {

enum class ServerState : uint8_t { stopped, running, stopping };

// The application's view of the server.
class Events {
public:
    virtual ~Events() = default;
    virtual void on_connect(PeerId, int64_t /*client_id*/, const wire::UserData&) {}
    virtual void on_payload(PeerId, std::span<const uint8_t>) {}
    virtual void on_disconnect(PeerId, int64_t /*client_id*/, CloseReason) {}
};

class Server final : private ShardHooks {
public:
    Server(const Config& config, Events& events, Outbox& out);

    // STOPPED -> RUNNING: fresh challenge key (§12.1).
    bool start(const Now& now);
    // RUNNING -> STOPPING: every connection gets its 10 DISCONNECTs (1 s); handshakes are
    // refused. update() moves to STOPPED when the last connection is gone.
    void shutdown(const Now& now);
    // Any state -> STOPPED at once, nothing sent; keys wiped.
    void stop();

    // Datagrams are decrypted in place. A burst of one is fine; larger bursts batch the AEAD.
    void receive(std::span<RxDatagram> burst, const Now& now);
    void receive(std::span<uint8_t> datagram, const wire::Address& from, const Now& now) {
        RxDatagram one{datagram, from};
        receive(std::span(&one, 1), now);
    }
    void update(const Now& now);

    bool send(PeerId id, std::span<const uint8_t> payload, const Now& now) { return shard_.send(id, payload, now); }
    bool disconnect(PeerId id, const Now& now) { return shard_.disconnect(id, now); }
    const Peer* peer(PeerId id) { return shard_.get(id); }

    ServerState state() const { return state_; }
    uint32_t connections() const { return shard_.size(); }
    uint32_t pending() const { return handshake_.pending(); }
    const Handshake& handshake() const { return handshake_; }
    Counters counters() const;
    Shard& shard() { return shard_; }

private:
    void on_connect(PeerId id, int64_t client_id, const wire::UserData& user_data) override;
    void on_payload(PeerId id, std::span<const uint8_t> payload) override;
    void on_close(PeerId id, int64_t client_id, const wire::Address& address, CloseReason reason) override;

    Events& events_;
    Outbox& out_;
    Handshake handshake_;
    Shard shard_;
    ServerState state_ = ServerState::stopped;
    Counters front_;  // drops before a packet reaches the handshake or a peer
    std::unique_ptr<crypto::BurstAead> aead_;
};

}  // namespace pomelo::server
