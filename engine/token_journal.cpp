#include "engine/token_journal.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

namespace pomelo::engine {

namespace {

constexpr size_t kRecordSize = 16 + 8;

void encode(const TokenJournal::Record& r, uint8_t* out) {
    std::memcpy(out, r.tag.data(), 16);
    for (int i = 0; i < 8; ++i) out[16 + i] = static_cast<uint8_t>(r.expire_ms >> (8 * i));
}

TokenJournal::Record decode(const uint8_t* in) {
    TokenJournal::Record r{};
    std::memcpy(r.tag.data(), in, 16);
    r.expire_ms = 0;
    for (int i = 0; i < 8; ++i) r.expire_ms |= uint64_t{in[16 + i]} << (8 * i);
    return r;
}

bool write_all(int fd, const uint8_t* p, size_t n) {
    while (n) {
        const ssize_t w = ::write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            return false;
        }
        if (w == 0) {
            errno = ENOSPC;
            return false;
        }
        p += w;
        n -= static_cast<size_t>(w);
    }
    return true;
}

bool write_records(int fd, std::span<const TokenJournal::Record> records) {
    uint8_t buf[64 * kRecordSize];
    size_t n = 0;
    for (const TokenJournal::Record& r : records) {
        encode(r, buf + n);
        n += kRecordSize;
        if (n == sizeof buf) {
            if (!write_all(fd, buf, n)) return false;
            n = 0;
        }
    }
    return !n || write_all(fd, buf, n);
}

std::string why(const std::string& what, const std::string& path) {
    return "token journal " + path + ": " + what + ": " + std::strerror(errno);
}

}  // namespace

TokenJournal::~TokenJournal() { close(); }

void TokenJournal::close() {
    if (fd_ >= 0) {
        std::string ignored;
        sync(ignored);
        ::close(fd_);
        fd_ = -1;
    }
    if (lock_fd_ >= 0) {
        ::close(lock_fd_);  // releases the lock
        lock_fd_ = -1;
    }
}

bool TokenJournal::open(const std::string& path, uint64_t now_unix_ms, std::vector<Record>& live, std::string& error) {
    close();
    path_ = path;
    broken_ = false;
    std::error_code ec;
    const std::filesystem::path dir = std::filesystem::path(path).parent_path();
    if (!dir.empty()) std::filesystem::create_directories(dir, ec);
    lock_fd_ = ::open((path + ".lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (lock_fd_ < 0) {
        error = why("cannot create its lock file", path);
        return false;
    }
    if (::flock(lock_fd_, LOCK_EX | LOCK_NB) != 0) {
        error = errno == EWOULDBLOCK ? "token journal " + path + " is in use by another pomelo-server"
                                     : why("cannot lock", path);
        close();
        return false;
    }
    // The file must exist (a new journal), then every live record is read.
    const int created = ::open(path.c_str(), O_RDONLY | O_CREAT | O_CLOEXEC, 0600);
    if (created < 0) {
        error = why("cannot open", path);
        close();
        return false;
    }
    ::close(created);
    if (!read(path, now_unix_ms, live, error)) {
        close();
        return false;
    }
    if (!replace_with(live, error)) {
        close();
        return false;
    }
    return true;
}

bool TokenJournal::read(const std::string& path, uint64_t now_unix_ms, std::vector<Record>& live, std::string& error) {
    live.clear();
    const int in = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (in < 0) {
        if (errno == ENOENT) return true;
        error = why("cannot open", path);
        return false;
    }
    // Every whole record (a torn last one is left out); the live ones are kept.
    std::vector<uint8_t> bytes;
    uint8_t buf[64 * kRecordSize];
    for (;;) {
        const ssize_t r = ::read(in, buf, sizeof buf);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            error = why("cannot read", path);
            ::close(in);
            return false;
        }
        if (r == 0) break;
        bytes.insert(bytes.end(), buf, buf + r);
    }
    ::close(in);
    for (size_t off = 0; off + kRecordSize <= bytes.size(); off += kRecordSize) {
        const Record rec = decode(bytes.data() + off);
        if (rec.expire_ms > now_unix_ms) live.push_back(rec);
    }
    return true;
}

// Writes `records` to <path>.tmp, syncs it, renames it over the journal and reopens it for
// appending: at any crash point the journal is either the old file or the new one.
bool TokenJournal::replace_with(std::span<const Record> records, std::string& error) {
    const std::string tmp = path_ + ".tmp";
    const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) return error = why("cannot create " + tmp, path_), false;
    if (!write_records(fd, records) || ::fdatasync(fd) != 0) {
        error = why("cannot write " + tmp, path_);
        ::close(fd);
        ::unlink(tmp.c_str());
        return false;
    }
    ::close(fd);
    if (::rename(tmp.c_str(), path_.c_str()) != 0) return error = why("cannot rename " + tmp, path_), false;
    const std::string dir = std::filesystem::path(path_).parent_path().string();
    if (const int dfd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC); dfd >= 0) {
        ::fsync(dfd);  // the rename itself survives a host crash
        ::close(dfd);
    }
    const int appender = ::open(path_.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
    if (appender < 0) return error = why("cannot reopen", path_), false;
    if (fd_ >= 0) ::close(fd_);
    fd_ = appender;
    records_ = records.size();
    dirty_ = false;
    return true;
}

bool TokenJournal::append(std::span<const Record> records, std::string& error) {
    if (records.empty()) return true;
    if (fd_ < 0 || broken_) return error = "token journal " + path_ + " is unusable after a failed write", false;
    if (write_records(fd_, records)) {
        records_ += records.size();
        dirty_ = true;
        return true;
    }
    error = why("cannot append", path_);
    // Cut a partial write back to the last whole record, or later records would be misread.
    if (::ftruncate(fd_, static_cast<off_t>(records_ * kRecordSize)) != 0) broken_ = true;
    return false;
}

bool TokenJournal::rewrite(std::span<const Record> records, std::string& error) {
    if (fd_ < 0 || broken_) return error = "token journal " + path_ + " is not open", false;
    return replace_with(records, error);
}

bool TokenJournal::sync(std::string& error) {
    if (fd_ < 0 || !dirty_) return true;
    if (::fdatasync(fd_) != 0) return error = why("cannot sync", path_), false;
    dirty_ = false;
    return true;
}

}  // namespace pomelo::engine
