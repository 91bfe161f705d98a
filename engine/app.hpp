// The application interface a game server links: per-worker callbacks for connections and
// payloads, and the calls to send and disconnect. Each worker lcore gets its own Application
// instance (from a factory), so an application needs no locks for per-connection state.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>

#include "protocol/server/shard.hpp"

namespace pomelo::engine {

using server::CloseReason;
using server::PeerId;

// What an application may do from its callbacks (and only from them: it is the worker's).
class WorkerContext {
public:
    virtual ~WorkerContext() = default;
    virtual uint16_t worker() const = 0;
    virtual bool send(PeerId peer, std::span<const uint8_t> payload) = 0;
    virtual bool disconnect(PeerId peer) = 0;
    virtual uint64_t now_ns() const = 0;
};

class Application {
public:
    virtual ~Application() = default;
    virtual void on_connect(WorkerContext&, PeerId, int64_t /*client_id*/, const wire::UserData&) {}
    virtual void on_payload(WorkerContext&, PeerId, std::span<const uint8_t>) {}
    virtual void on_disconnect(WorkerContext&, PeerId, int64_t /*client_id*/, CloseReason) {}
    // Once per worker loop iteration, after receiving and before sending.
    virtual void on_poll(WorkerContext&) {}
};

using ApplicationFactory = std::function<std::unique_ptr<Application>(uint16_t worker)>;

// Sends every payload straight back to its sender.
class EchoApplication final : public Application {
public:
    void on_payload(WorkerContext& ctx, PeerId peer, std::span<const uint8_t> payload) override {
        ctx.send(peer, payload);
    }
};

// The built-in applications by name ("echo"); nullptr for an unknown name.
ApplicationFactory application_by_name(std::string_view name);

}  // namespace pomelo::engine
