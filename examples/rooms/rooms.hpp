// Rooms: a relay game server on the public application interface (<pomelo/app.hpp>) only,
// built into pomelo-server as `--app rooms`.
//
// Clients name a room in their connect token's user data; each member's state updates are
// relayed to every other member of its room in snapshots at the tick rate (30 Hz), with
// joins and leaves. Members of one room may live on different workers (the engine places
// peers by source address): each worker relays its members' records to the other workers
// with inter-worker messages once per tick, and keeps a roster of the whole room.
//
// Token user data: the room name, 1..32 bytes of [A-Za-z0-9_], then zero bytes
// (e.g. `pomelo-token mint ... --user-data $(printf lobby | xxd -p)`). A client whose token
// names no valid room is disconnected at once.
//
// Client -> server PAYLOAD: one state update, 1..kMaxUpdate opaque bytes.
// Server -> client PAYLOAD: a snapshot, records back to back (integers little-endian):
//     u8 kind | i64 client id | body
//     kind 1 update: u16 length, then the update's bytes, as the member sent them
//     kind 2 joined: (no body)  the member is in the room (also sent to a new member for
//                               everyone already there)
//     kind 3 left:   u8 reason  pomelo::CloseReason
// A member never gets its own records. One member's records reach every other member in the
// order it sent them; a snapshot that would exceed one PAYLOAD is split between records.
//
// Telemetry: /pomelo/rooms answers {"rooms", "members", counters..., "by_room": {name: members}}.
#pragma once

#include <pomelo/app.hpp>

#include <cstddef>
#include <map>
#include <cstdint>

namespace pomelo::examples::rooms {

inline constexpr size_t kMaxRoomName = 32;
inline constexpr size_t kMaxUpdate = 1024;
inline constexpr uint32_t kTickHz = 30;

enum class Kind : uint8_t { update = 1, joined = 2, left = 3 };

// One Application per worker, sharing the room directory that /pomelo/rooms reads (the
// command is registered by the first call). The server should tick at kTickHz.
ApplicationFactory factory();
// Members by room over every worker, as last published at a tick (any thread may call it;
// empty before the first factory). For the server's Prometheus metrics.
std::map<std::string, uint64_t> members_by_room();

}  // namespace pomelo::examples::rooms
