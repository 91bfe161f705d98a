// A game server built outside the pomelo-engine tree, against the installed library only:
//
//   c++ -std=c++20 game_server.cpp $(pkg-config --cflags --libs pomelo-engine) -o game_server
//   ./game_server server.key 127.0.0.1:40000 /var/lib/game/tokens
//
// It echoes every payload (so pomelo-client can check it byte for byte), ticks at 10 Hz on
// two workers and reports its peers' round trips once a second. SIGINT/SIGTERM stop it
// gracefully: every client gets its DISCONNECTs.
#include <pomelo/server.hpp>

#include <csignal>
#include <cstdio>
#include <unordered_map>

namespace {

std::atomic<bool> g_stop{false};

class Game final : public pomelo::Application {
public:
    void on_connect(pomelo::WorkerContext& ctx, pomelo::PeerId peer, int64_t client_id,
                    const pomelo::UserData&) override {
        peers_[peer.key()] = peer;
        std::printf("worker %u: client %lld connected\n", ctx.worker(), static_cast<long long>(client_id));
    }
    void on_payload(pomelo::WorkerContext& ctx, pomelo::PeerId peer, std::span<const uint8_t> payload) override {
        ctx.send(peer, payload);
    }
    void on_disconnect(pomelo::WorkerContext& ctx, pomelo::PeerId peer, int64_t client_id,
                       pomelo::CloseReason reason) override {
        peers_.erase(peer.key());
        std::printf("worker %u: client %lld left (%s)\n", ctx.worker(), static_cast<long long>(client_id),
                    pomelo::to_string(reason));
    }
    void on_tick(pomelo::WorkerContext& ctx, uint64_t tick) override {
        if (tick % 10 != 0) return;  // once a second
        for (const auto& [key, peer] : peers_)
            if (const auto info = ctx.peer(peer); info && info->rtt_ns)
                std::printf("worker %u: client %lld at %s rtt %llu us\n", ctx.worker(),
                            static_cast<long long>(info->client_id), info->address.data(),
                            static_cast<unsigned long long>(*info->rtt_ns / 1000));
        std::fflush(stdout);
    }

private:
    std::unordered_map<uint64_t, pomelo::PeerId> peers_;
};

}  // namespace

int main(int argc, char** argv) {
    if (argc != 4) {
        std::fprintf(stderr, "usage: game_server KEY_FILE BIND_ADDRESS TOKEN_JOURNAL\n");
        return 2;
    }
    std::string error;
    const auto key = pomelo::PrivateKey::load(argv[1], error);
    if (!key) {
        std::fprintf(stderr, "game_server: %s\n", error.c_str());
        return 2;
    }
    pomelo::ServerConfig config;
    config.protocol_id = 0x6a6d;
    config.private_key = *key;
    config.bind = {argv[2]};
    config.token_journal = argv[3];
    config.workers = 2;
    config.tick_hz = 10;
    config.app = [](uint16_t) { return std::make_unique<Game>(); };

    auto server = pomelo::Server::create(std::move(config), error);
    if (!server) {
        std::fprintf(stderr, "game_server: %s\n", error.c_str());
        return 1;
    }
    std::signal(SIGINT, [](int) { g_stop = true; });
    std::signal(SIGTERM, [](int) { g_stop = true; });
    std::printf("game_server: serving %s with %u workers\n", server->local_addresses().front().c_str(),
                server->workers());
    std::fflush(stdout);
    const int rc = server->run(g_stop);
    const pomelo::ServerStats stats = server->stats();
    std::printf("game_server: stopped; %llu connections, %llu payloads echoed\n",
                static_cast<unsigned long long>(stats.connections_accepted),
                static_cast<unsigned long long>(stats.payloads_sent));
    return rc;
}
