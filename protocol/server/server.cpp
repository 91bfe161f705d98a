#include "protocol/server/server.hpp"

namespace pomelo::server {

using wire::PacketType;
using wire::WireError;

Server::Server(const Config& config, Events& events, Outbox& out)
    : events_(events),
      out_(out),
      handshake_(config),
      shard_(config, config.max_clients, *this, out),
      aead_(crypto::make_best_burst()) {}

bool Server::start(const Now& now) {
    if (state_ != ServerState::stopped) return false;
    handshake_.start(now);
    state_ = ServerState::running;
    return true;
}

void Server::shutdown(const Now& now) {
    if (state_ != ServerState::running) return;
    state_ = ServerState::stopping;
    handshake_.begin_shutdown();
    shard_.disconnect_all(now);
    if (shard_.size() == 0) stop();
}

void Server::stop() {
    shard_.clear();
    handshake_.stop();
    state_ = ServerState::stopped;
}

void Server::receive(std::span<RxDatagram> burst, const Now& now) {
    if (state_ == ServerState::stopped) {
        for (size_t i = 0; i < burst.size(); ++i) front_.drop(DropReason::server_stopped);
        return;
    }
    for (size_t base = 0; base < burst.size(); base += Shard::kMaxBurst) {
        auto chunk = burst.subspan(base, std::min<size_t>(Shard::kMaxBurst, burst.size() - base));
        uint32_t handshake[Shard::kMaxBurst];
        const uint32_t n = shard_.receive_burst(chunk, now, *aead_, handshake);
        for (uint32_t k = 0; k < n; ++k) {
            RxDatagram& d = chunk[handshake[k]];
            NewPeer accepted;
            if (handshake_.handle(d, now, out_, accepted) && !shard_.add(accepted, now))
                handshake_.abandon(accepted);  // out of memory for a new chunk of peers: as if full
        }
    }
}

void Server::update(const Now& now) {
    if (state_ == ServerState::stopped) return;
    handshake_.update(now);
    shard_.update(now);
    if (state_ == ServerState::stopping && shard_.size() == 0) stop();
}

Counters Server::counters() const {
    Counters c = front_;
    c += handshake_.counters();
    c += shard_.counters();
    return c;
}

void Server::on_connect(PeerId id, int64_t client_id, const wire::UserData& user_data) {
    events_.on_connect(id, client_id, user_data);
}

void Server::on_payload(PeerId id, std::span<const uint8_t> payload) { events_.on_payload(id, payload); }

void Server::on_close(PeerId id, int64_t client_id, const wire::Address& address, CloseReason reason) {
    handshake_.on_connection_closed(client_id, address);
    events_.on_disconnect(id, client_id, reason);
}

}  // namespace pomelo::server
