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

// An echo that flips one bit of every 500th payload it returns (the first byte after the
// load generator's 8-byte header): a faulty server, for checking that a load generator
// (pomelo-client) notices. Not for production.
class CorruptEchoApplication final : public Application {
public:
    void on_payload(WorkerContext& ctx, PeerId peer, std::span<const uint8_t> payload) override {
        if (++count_ % 500 != 0 || payload.size() > sizeof copy_) return (void)ctx.send(peer, payload);
        std::copy(payload.begin(), payload.end(), copy_);
        copy_[std::min<size_t>(8, payload.size() - 1)] ^= 0x01;
        ctx.send(peer, std::span<const uint8_t>(copy_, payload.size()));
    }

private:
    uint64_t count_ = 0;
    uint8_t copy_[1200];
};

// The built-in applications by name ("echo", "corrupt-echo"); nullptr for an unknown name.
ApplicationFactory application_by_name(std::string_view name);

}  // namespace pomelo::engine
