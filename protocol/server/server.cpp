#include "protocol/server/server.hpp"

namespace pomelo::server {

using wire::PacketType;
using wire::WireError;

Server::Server(const Config& config, Events& events, Outbox& out)
    : events_(events), out_(out), handshake_(config), shard_(config, config.max_clients, *this, out) {}

bool Server::start(const Now& now) {
    if (state_ != ServerState::stopped) return false;
    handshake_.start(now);
    state_ = ServerState::running;
    return true;
}

void Server::shutdown(const Now& now) {
    if (state_ != ServerState::running) return;
    state_ = ServerState::stopping;
    shard_.disconnect_all(now);
    if (shard_.size() == 0) stop();
}

void Server::stop() {
    shard_.clear();
    handshake_.stop();
    state_ = ServerState::stopped;
}

void Server::receive(std::span<uint8_t> datagram, const wire::Address& from, const Now& now) {
    if (state_ == ServerState::stopped) return front_.drop(DropReason::server_stopped);
    wire::PacketHeader h;
    if (WireError e = wire::read_header(datagram, h); e != WireError::ok) return front_.drop(e);
    if (h.type == PacketType::challenge || h.type == PacketType::denied)
        return front_.drop(DropReason::wrong_direction);
    Peer* peer = shard_.find(from);
    if (h.type == PacketType::request || h.type == PacketType::response) {
        if (peer) return front_.drop(DropReason::handshake_from_connected);
        if (state_ != ServerState::running) return front_.drop(DropReason::server_stopped);
        if (h.type == PacketType::request) return handshake_.on_request(datagram, from, now, out_);
        NewPeer accepted;
        if (handshake_.on_response(datagram, h, from, now, out_, accepted) && !shard_.add(accepted, now))
            handshake_.on_connection_closed(accepted.client_id);  // cannot happen: capacity is checked
        return;
    }
    if (!peer) return front_.drop(DropReason::unknown_peer);
    shard_.receive(*peer, datagram, h, now);
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

void Server::on_close(PeerId id, int64_t client_id, CloseReason reason) {
    handshake_.on_connection_closed(client_id);
    events_.on_disconnect(id, client_id, reason);
}

}  // namespace pomelo::server
