// The token journal: the tags of connect tokens that produced a connection, on disk, so that a
// restarted server still refuses them until they expire (spec §9: a token's keys sealed
// connection-phase packets from sequence 0; a second connection with it would repeat
// (key, nonce) pairs). netcode.io keeps this history in memory only, so a restart forgets it.
//
// Format: append-only 24-byte records, tag (16 bytes) then expiry (Unix ms, u64 LE); a torn
// last record (crash mid-write) is ignored. A record is written before the connection is
// handed to its worker, i.e. before any connection-phase packet is sealed: a crash of the
// process never loses one (the page cache survives it); sync() at the stats interval bounds
// what a crash of the host can lose. Rewrites (at open, and when mostly expired records
// accumulate) go to a temporary file renamed over the journal, so a crash mid-rewrite loses
// nothing. A failed append is cut back to the last whole record; if even that fails the
// journal refuses every further append (the server then accepts no connection: fail closed).
// `<path>.lock` holds an exclusive lock for the process's life: two servers cannot share it.
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

    // Locks and opens `path` (creating it and its directory, mode 0600), reads the records
    // that expire after `now_unix_ms` into `live` and rewrites the file with only those.
    // False with a one-line `error` (cannot create, locked by another process, I/O error).
    bool open(const std::string& path, uint64_t now_unix_ms, std::vector<Record>& live, std::string& error);
    bool is_open() const { return fd_ >= 0; }
    // Reads the records of `path` that expire after `now_unix_ms` into `live`, without
    // locking or changing it (another key's journal, key rotation). A missing file has none.
    // False with a one-line `error` when it cannot be read.
    static bool read(const std::string& path, uint64_t now_unix_ms, std::vector<Record>& live, std::string& error);
    // One write() for the batch. False with a one-line `error` if it is not on file.
    bool append(std::span<const Record> records, std::string& error);
    // Replaces the file's content with `records` (the live ones), atomically.
    bool rewrite(std::span<const Record> records, std::string& error);
    // fdatasync if anything was appended since the last sync. False with `error` on failure.
    bool sync(std::string& error);
    void close();
    // Records in the file (live or expired): a rewrite is due when it is far above the live count.
    uint64_t records() const { return records_; }
    const std::string& path() const { return path_; }

private:
    bool replace_with(std::span<const Record> records, std::string& error);

    int fd_ = -1, lock_fd_ = -1;
    bool dirty_ = false, broken_ = false;
    uint64_t records_ = 0;
    std::string path_;
};

}  // namespace pomelo::engine
