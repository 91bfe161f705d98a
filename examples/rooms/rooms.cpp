#include "examples/rooms/rooms.hpp"

#include <algorithm>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace pomelo::examples::rooms {

namespace {

// A member's records wait here until the next tick; a peer that floods its room loses its
// excess (counted), not the server's memory.
constexpr size_t kMaxPendingBytes = 256 * 1024;

struct Counters {
    uint64_t updates = 0;           // updates received from members
    uint64_t records_sent = 0;      // records delivered in snapshots
    uint64_t snapshots_sent = 0;    // PAYLOADs sent
    uint64_t messages_posted = 0;   // relays to other workers
    uint64_t messages_received = 0;
    uint64_t bad_room = 0;          // tokens naming no valid room (disconnected)
    uint64_t oversized = 0;         // updates above kMaxUpdate (dropped)
    uint64_t overflow = 0;          // records dropped: a member's or a room's pending bytes were full
    uint64_t send_failed = 0;       // snapshots the engine refused
    uint64_t post_failed = 0;       // relays the engine refused (no message buffer)
};

// What /pomelo/rooms reads: each worker's members by room and its counters, copied in at
// tick time under the mutex (30 times a second per worker, never on the packet path).
struct Directory {
    std::mutex mutex;
    std::vector<std::map<std::string, uint32_t>> members;  // by worker
    std::vector<Counters> counters;                        // by worker

    void publish(uint16_t worker, std::map<std::string, uint32_t> m, const Counters& c) {
        std::lock_guard lock(mutex);
        if (members.size() <= worker) members.resize(worker + 1u), counters.resize(worker + 1u);
        members[worker] = std::move(m);
        counters[worker] = c;
    }

    std::map<std::string, uint64_t> members_by_room() {
        std::map<std::string, uint64_t> by_room;
        std::lock_guard lock(mutex);
        for (const auto& m : members)
            for (const auto& [name, n] : m) by_room[name] += n;
        return by_room;
    }

    void reply(TelemetryReply& r) {
        std::map<std::string, uint64_t> by_room;
        Counters sum;
        {
            std::lock_guard lock(mutex);
            for (const auto& m : members)
                for (const auto& [name, n] : m) by_room[name] += n;
            for (const Counters& c : counters) {
                sum.updates += c.updates;
                sum.records_sent += c.records_sent;
                sum.snapshots_sent += c.snapshots_sent;
                sum.messages_posted += c.messages_posted;
                sum.messages_received += c.messages_received;
                sum.bad_room += c.bad_room;
                sum.oversized += c.oversized;
                sum.overflow += c.overflow;
                sum.send_failed += c.send_failed;
                sum.post_failed += c.post_failed;
            }
        }
        uint64_t total = 0;
        for (const auto& [name, n] : by_room) total += n;
        r.values = {{"rooms", by_room.size()},
                    {"members", total},
                    {"updates", sum.updates},
                    {"records_sent", sum.records_sent},
                    {"snapshots_sent", sum.snapshots_sent},
                    {"messages_posted", sum.messages_posted},
                    {"messages_received", sum.messages_received},
                    {"bad_room", sum.bad_room},
                    {"oversized", sum.oversized},
                    {"overflow", sum.overflow},
                    {"send_failed", sum.send_failed},
                    {"post_failed", sum.post_failed}};
        // Telemetry objects hold 256 entries: the largest rooms.
        std::vector<std::pair<std::string, uint64_t>> rooms(by_room.begin(), by_room.end());
        std::stable_sort(rooms.begin(), rooms.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
        if (rooms.size() > 200) rooms.resize(200);
        r.groups = {{"by_room", std::move(rooms)}};
    }
};

// The room a token names: bytes up to the first zero, 1..kMaxRoomName of [A-Za-z0-9_]
// (telemetry names), zeros after it. Empty if not.
std::string room_of(const UserData& user_data) {
    const auto end = std::find(user_data.begin(), user_data.end(), uint8_t{0});
    const size_t n = static_cast<size_t>(end - user_data.begin());
    if (n == 0 || n > kMaxRoomName || std::any_of(end, user_data.end(), [](uint8_t b) { return b != 0; })) return {};
    std::string name(user_data.begin(), end);
    for (char c : name)
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_'))
            return {};
    return name;
}

void put_le(std::vector<uint8_t>& out, uint64_t v, unsigned bytes) {
    for (unsigned i = 0; i < bytes; ++i) out.push_back(static_cast<uint8_t>(v >> (8 * i)));
}

// The size of the record starting at `p` (at most `n` bytes there); 0 if malformed.
size_t record_size(const uint8_t* p, size_t n) {
    if (n < 9) return 0;
    switch (static_cast<Kind>(p[0])) {
        case Kind::update: {
            if (n < 11) return 0;
            const size_t len = p[9] | size_t{p[10]} << 8;
            return len >= 1 && len <= kMaxUpdate && n >= 11 + len ? 11 + len : 0;
        }
        case Kind::joined: return 9;
        case Kind::left: return n >= 10 ? 10 : 0;
    }
    return 0;
}

int64_t client_of(const uint8_t* record) {
    uint64_t v = 0;
    for (unsigned i = 0; i < 8; ++i) v |= uint64_t{record[1 + i]} << (8 * i);
    return static_cast<int64_t>(v);
}

class RoomsApp final : public Application {
public:
    RoomsApp(uint16_t worker, std::shared_ptr<Directory> directory) : worker_(worker), directory_(std::move(directory)) {}

    void on_connect(WorkerContext& ctx, PeerId peer, int64_t client_id, const UserData& user_data) override {
        const std::string name = room_of(user_data);
        if (name.empty()) {
            ++counters_.bad_room;
            ctx.disconnect(peer);
            return;
        }
        Room& room = room_named(name);
        auto m = std::make_unique<Member>(Member{peer, client_id, &room, {}});
        for (const auto& [other, w] : room.roster) append(m->pending, joined(other));  // who is already there
        room.roster[client_id] = worker_;
        room.local.push_back(m.get());
        relay(room, joined(client_id), m.get());
        members_[peer.key()] = std::move(m);
        dirty_ = true;
    }

    void on_payload(WorkerContext&, PeerId peer, std::span<const uint8_t> payload) override {
        const auto it = members_.find(peer.key());
        if (it == members_.end()) return;
        if (payload.size() > kMaxUpdate) {
            ++counters_.oversized;
            return;
        }
        ++counters_.updates;
        Member& m = *it->second;
        scratch_.clear();
        scratch_.push_back(static_cast<uint8_t>(Kind::update));
        put_le(scratch_, static_cast<uint64_t>(m.client_id), 8);
        put_le(scratch_, payload.size(), 2);
        scratch_.insert(scratch_.end(), payload.begin(), payload.end());
        relay(*m.room, scratch_, &m);
    }

    void on_disconnect(WorkerContext&, PeerId peer, int64_t client_id, CloseReason reason) override {
        const auto it = members_.find(peer.key());
        if (it == members_.end()) return;  // named no room
        Room& room = *it->second->room;
        std::erase(room.local, it->second.get());
        if (auto r = room.roster.find(client_id); r != room.roster.end() && r->second == worker_) room.roster.erase(r);
        std::vector<uint8_t> rec;
        rec.push_back(static_cast<uint8_t>(Kind::left));
        put_le(rec, static_cast<uint64_t>(client_id), 8);
        rec.push_back(static_cast<uint8_t>(reason));
        relay(room, rec, nullptr);
        members_.erase(it);
        dirty_ = true;
    }

    // Another worker's records for one room: [u8 name length][name][records].
    void on_message(WorkerContext&, uint16_t from, std::span<const uint8_t> message) override {
        ++counters_.messages_received;
        if (message.empty() || message[0] == 0 || message[0] > kMaxRoomName || message.size() < 1u + message[0]) return;
        Room& room = room_named(std::string(message.begin() + 1, message.begin() + 1 + message[0]));
        const uint8_t* p = message.data() + 1 + message[0];
        size_t left = message.size() - 1 - message[0];
        while (left) {
            const size_t n = record_size(p, left);
            if (n == 0) break;  // our own workers wrote it: cannot happen
            const int64_t client = client_of(p);
            if (p[0] == static_cast<uint8_t>(Kind::joined)) {
                room.roster[client] = from;
            } else if (p[0] == static_cast<uint8_t>(Kind::left)) {
                // Only the worker that had it may remove it: a reconnection elsewhere may be newer.
                if (auto r = room.roster.find(client); r != room.roster.end() && r->second == from) room.roster.erase(r);
            }
            for (Member* m : room.local) append(m->pending, std::span(p, n));
            p += n;
            left -= n;
        }
    }

    void on_tick(WorkerContext& ctx, uint64_t) override {
        // Relays first: this tick's records leave for the other workers, in order.
        for (auto it = rooms_.begin(); it != rooms_.end();) {
            Room& room = *it->second;
            if (!room.outgoing.empty() && ctx.workers() > 1) post_records(ctx, room);
            room.outgoing.clear();
            if (room.local.empty() && room.roster.empty()) it = rooms_.erase(it);
            else ++it;
        }
        // Snapshots: each member's pending records, in PAYLOADs split between records.
        for (auto& [key, m] : members_) {
            size_t at = 0;
            while (at < m->pending.size()) {
                size_t end = at;
                unsigned records = 0;
                while (end < m->pending.size()) {
                    const size_t n = record_size(m->pending.data() + end, m->pending.size() - end);
                    if (end + n - at > kMaxPayloadSize) break;
                    end += n;
                    ++records;
                }
                if (ctx.send(m->peer, std::span(m->pending.data() + at, end - at))) {
                    ++counters_.snapshots_sent;
                    counters_.records_sent += records;
                } else {
                    ++counters_.send_failed;
                }
                at = end;
            }
            m->pending.clear();
        }
        if (dirty_ || ++ticks_since_publish_ >= kTickHz) publish();
    }

private:
    struct Room;
    struct Member {
        PeerId peer;
        int64_t client_id;
        Room* room;
        std::vector<uint8_t> pending;  // records for its next snapshot
    };
    struct Room {
        std::string name;
        std::vector<Member*> local;                    // this worker's members
        std::unordered_map<int64_t, uint16_t> roster;  // every member: client id -> worker
        std::vector<uint8_t> outgoing;                 // this worker's records since the last tick
    };

    Room& room_named(const std::string& name) {
        auto& r = rooms_[name];
        if (!r) r = std::make_unique<Room>(Room{name, {}, {}, {}});
        return *r;
    }

    static std::vector<uint8_t> joined(int64_t client_id) {
        std::vector<uint8_t> rec{static_cast<uint8_t>(Kind::joined)};
        put_le(rec, static_cast<uint64_t>(client_id), 8);
        return rec;
    }

    void append(std::vector<uint8_t>& to, std::span<const uint8_t> record) {
        if (to.size() + record.size() > kMaxPendingBytes) {
            ++counters_.overflow;
            return;
        }
        to.insert(to.end(), record.begin(), record.end());
    }

    // A local member's record: to the room's other local members now, to the other workers
    // at the next tick.
    void relay(Room& room, std::span<const uint8_t> record, const Member* from) {
        for (Member* m : room.local)
            if (m != from) append(m->pending, record);
        append(room.outgoing, record);
    }

    void post_records(WorkerContext& ctx, Room& room) {
        const size_t header = 1 + room.name.size();
        size_t at = 0;
        while (at < room.outgoing.size()) {
            size_t end = at;
            while (end < room.outgoing.size()) {
                const size_t n = record_size(room.outgoing.data() + end, room.outgoing.size() - end);
                if (header + end + n - at > kMaxMessageSize) break;
                end += n;
            }
            message_.assign(1, static_cast<uint8_t>(room.name.size()));
            message_.insert(message_.end(), room.name.begin(), room.name.end());
            message_.insert(message_.end(), room.outgoing.begin() + static_cast<ptrdiff_t>(at),
                            room.outgoing.begin() + static_cast<ptrdiff_t>(end));
            for (uint16_t w = 0; w < ctx.workers(); ++w) {
                if (w == worker_) continue;
                if (ctx.post(w, message_)) ++counters_.messages_posted;
                else ++counters_.post_failed;
            }
            at = end;
        }
    }

    void publish() {
        std::map<std::string, uint32_t> m;
        for (const auto& [name, room] : rooms_)
            if (!room->local.empty()) m[name] = static_cast<uint32_t>(room->local.size());
        directory_->publish(worker_, std::move(m), counters_);
        dirty_ = false;
        ticks_since_publish_ = 0;
    }

    const uint16_t worker_;
    std::shared_ptr<Directory> directory_;
    std::unordered_map<std::string, std::unique_ptr<Room>> rooms_;
    std::unordered_map<uint64_t, std::unique_ptr<Member>> members_;  // by PeerId::key()
    std::vector<uint8_t> scratch_, message_;
    Counters counters_;
    bool dirty_ = false;
    uint32_t ticks_since_publish_ = 0;
};

}  // namespace

namespace {
std::mutex g_latest_mutex;
std::weak_ptr<Directory> g_latest;  // the newest factory's directory, for members_by_room()
}  // namespace

std::map<std::string, uint64_t> members_by_room() {
    std::shared_ptr<Directory> d;
    {
        std::lock_guard lock(g_latest_mutex);
        d = g_latest.lock();
    }
    return d ? d->members_by_room() : std::map<std::string, uint64_t>{};
}

ApplicationFactory factory() {
    auto directory = std::make_shared<Directory>();
    {
        std::lock_guard lock(g_latest_mutex);
        g_latest = directory;
    }
    std::string error;
    // Registering again (a second factory) points the command at the newest directory.
    add_telemetry_command(
        "/pomelo/rooms", "Rooms example: members by room, relay counters",
        [directory](TelemetryReply& r) { directory->reply(r); }, error);
    return [directory](uint16_t worker) { return std::make_unique<RoomsApp>(worker, directory); };
}

}  // namespace pomelo::examples::rooms
