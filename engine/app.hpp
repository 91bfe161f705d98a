// The application interface inside the engine: the public one (include/pomelo/app.hpp), the
// built-in applications, and the conversions between the protocol's connection handles and
// the public ones.
#pragma once

#include <pomelo/app.hpp>

#include <memory>
#include <string_view>

#include "protocol/server/shard.hpp"

namespace pomelo::engine {

using Application = pomelo::Application;
using ApplicationFactory = pomelo::ApplicationFactory;
using WorkerContext = pomelo::WorkerContext;

inline pomelo::PeerId to_public(server::PeerId id) { return {id.slot, id.generation}; }
inline server::PeerId to_internal(pomelo::PeerId id) { return {id.slot, id.generation}; }
inline pomelo::CloseReason to_public(server::CloseReason r) { return static_cast<pomelo::CloseReason>(r); }
inline server::CloseReason to_internal_reason(pomelo::CloseReason r) { return static_cast<server::CloseReason>(r); }
static_assert(static_cast<int>(server::CloseReason::client_disconnected) ==
                  static_cast<int>(pomelo::CloseReason::client_disconnected) &&
              static_cast<int>(server::CloseReason::timed_out) == static_cast<int>(pomelo::CloseReason::timed_out) &&
              static_cast<int>(server::CloseReason::server_disconnected) ==
                  static_cast<int>(pomelo::CloseReason::server_disconnected) &&
              static_cast<int>(server::CloseReason::server_stopped) ==
                  static_cast<int>(pomelo::CloseReason::server_stopped));

// Sends every payload straight back to its sender.
class EchoApplication final : public Application {
public:
    void on_payload(WorkerContext& ctx, pomelo::PeerId peer, std::span<const uint8_t> payload) override {
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

// The built-in applications by name ("echo", "corrupt-echo", "rooms": examples/rooms); nullptr
// for an unknown name.
ApplicationFactory application_by_name(std::string_view name);
// Their names, for --help and error messages ("echo, rooms").
const char* application_names();

}  // namespace pomelo::engine
