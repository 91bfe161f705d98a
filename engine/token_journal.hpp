// The token journal: the tags of connect tokens that produced a connection, on disk, so that a
// restarted server still refuses them until they expire (spec §9: a token's keys sealed
// connection-phase packets from sequence 0; a second connection with it would repeat
// (key, nonce) pairs). netcode.io keeps this history in memory only, so a restart forgets it.
//
// Format: append-only 24-byte records, tag (16 bytes) then expiry (Unix ms, u64 LE); a torn
// last record (crash mid-write) is ignored. A record is written before the connection is
// handed to its worker, i.e. before any connection-phase packet is sealed: a crash of the
// process never loses one (the page cache survives it); sync() at the stats interval bounds
// what a crash of the host can lose. Opening compacts the file to its live records and takes
// an exclusive lock: two servers cannot share one journal.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "protocol/server/token_history.hpp"

namespace pomelo::engine {

class TokenJournal {
public:
    struct Record {
        server::TokenTag tag;
        uint64_t expire_ms;
    };

    TokenJournal() = default;
    ~TokenJournal();
    TokenJournal(const TokenJournal&) = delete;
    TokenJournal& operator=(const TokenJournal&) = delete;

    // Opens (creating it and its directory, mode 0600) and locks `path`, reads the records
    // that expire after `now_unix_ms` into `live` and rewrites the file with only those.
    // False with a one-line `error` (cannot create, locked by another process, I/O error).
    bool open(const std::string& path, uint64_t now_unix_ms, std::vector<Record>& live, std::string& error);
    bool is_open() const { return fd_ >= 0; }
    // One write() for the batch. False (errno kept in `error`) if it could not be written.
    bool append(std::span<const Record> records, std::string& error);
    // fdatasync if anything was appended since the last sync.
    void sync();
    void close();
    const std::string& path() const { return path_; }

private:
    int fd_ = -1;
    bool dirty_ = false;
    std::string path_;
};

}  // namespace pomelo::engine
