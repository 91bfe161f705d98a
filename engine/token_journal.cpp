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
        p += w;
        n -= static_cast<size_t>(w);
    }
    return true;
}

std::string why(const std::string& what, const std::string& path) {
    return "token journal " + path + ": " + what + ": " + std::strerror(errno);
}

}  // namespace

TokenJournal::~TokenJournal() { close(); }

void TokenJournal::close() {
    if (fd_ < 0) return;
    sync();
    ::close(fd_);  // releases the lock
    fd_ = -1;
}

bool TokenJournal::open(const std::string& path, uint64_t now_unix_ms, std::vector<Record>& live, std::string& error) {
    close();
    path_ = path;
    std::error_code ec;
    const std::filesystem::path dir = std::filesystem::path(path).parent_path();
    if (!dir.empty()) std::filesystem::create_directories(dir, ec);
    const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        error = why("cannot open", path);
        return false;
    }
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
        error = errno == EWOULDBLOCK ? "token journal " + path + " is in use by another pomelo-server"
                                     : why("cannot lock", path);
        ::close(fd);
        return false;
    }
    // Read everything, keep the live records.
    std::vector<uint8_t> bytes;
    uint8_t buf[64 * kRecordSize];
    for (;;) {
        const ssize_t r = ::read(fd, buf, sizeof buf);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            error = why("cannot read", path);
            ::close(fd);
            return false;
        }
        if (r == 0) break;
        bytes.insert(bytes.end(), buf, buf + r);
    }
    live.clear();
    for (size_t off = 0; off + kRecordSize <= bytes.size(); off += kRecordSize) {
        const Record rec = decode(bytes.data() + off);
        if (rec.expire_ms > now_unix_ms) live.push_back(rec);
    }
    // Compact: rewrite in place with the live records (we hold the lock).
    std::vector<uint8_t> out(live.size() * kRecordSize);
    for (size_t i = 0; i < live.size(); ++i) encode(live[i], out.data() + i * kRecordSize);
    if (::ftruncate(fd, 0) != 0 || ::lseek(fd, 0, SEEK_SET) != 0 || !write_all(fd, out.data(), out.size()) ||
        ::fdatasync(fd) != 0) {
        error = why("cannot rewrite", path);
        ::close(fd);
        return false;
    }
    fd_ = fd;
    dirty_ = false;
    return true;
}

bool TokenJournal::append(std::span<const Record> records, std::string& error) {
    if (fd_ < 0 || records.empty()) return true;
    uint8_t buf[64 * kRecordSize];
    size_t n = 0;
    for (const Record& r : records) {
        encode(r, buf + n);
        n += kRecordSize;
        if (n == sizeof buf) {
            if (!write_all(fd_, buf, n)) return error = why("cannot append", path_), false;
            n = 0;
        }
    }
    if (n && !write_all(fd_, buf, n)) return error = why("cannot append", path_), false;
    dirty_ = true;
    return true;
}

void TokenJournal::sync() {
    if (fd_ >= 0 && dirty_) {
        ::fdatasync(fd_);
        dirty_ = false;
    }
}

}  // namespace pomelo::engine
