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

// The built-in applications by name ("echo", "rooms": examples/rooms); nullptr for an
// unknown name.
ApplicationFactory application_by_name(std::string_view name);
// Their names, for --help and error messages ("echo, rooms").
const char* application_names();

}  // namespace pomelo::engine
