#include "drivers/eal.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_lcore.h>
#include <rte_log.h>
#include <rte_mbuf.h>

#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <string_view>

namespace pomelo::drivers {
namespace {

namespace fs = std::filesystem;

// Our own runtime directory while EAL runs (primary process only), removed at exit.
std::string g_runtime_dir;

void remove_runtime_dir() {
    if (g_runtime_dir.empty()) return;
    std::error_code ignored;
    fs::remove_all(g_runtime_dir, ignored);
    g_runtime_dir.clear();
}

// The value of an EAL option given as "--name value" or "--name=value"; `fallback` if absent.
std::string eal_option(const std::vector<std::string>& args, std::string_view name, const std::string& fallback) {
    for (size_t i = 1; i < args.size(); ++i) {
        const std::string& a = args[i];
        if (a == name && i + 1 < args.size()) return args[i + 1];
        if (a.size() > name.size() && a.compare(0, name.size(), name) == 0 && a[name.size()] == '=')
            return a.substr(name.size() + 1);
    }
    return fallback;
}
bool has_eal_option(const std::vector<std::string>& args, std::string_view name) {
    for (size_t i = 1; i < args.size(); ++i)
        if (args[i] == name || args[i].starts_with(std::string(name) + "=")) return true;
    return false;
}

// EAL's log during rte_eal_init: every message goes where EAL would print it (stdout, which
// is captured then); the first error or worse is kept as the cause of a failed start.
std::string g_first_error;
ssize_t capture_log(void*, const char* buf, size_t size) {
    const int level = static_cast<int>(rte_log_cur_msg_loglevel());
    if (g_first_error.empty() && level > 0 && level <= static_cast<int>(RTE_LOG_ERR)) g_first_error.assign(buf, size);
    if (::write(STDOUT_FILENO, buf, size) < 0) {
    }
    return static_cast<ssize_t>(size);
}

// First non-empty line of `text`, without EAL's "EAL: " / "FATAL: " tags.
std::string first_line(std::string_view text) {
    while (!text.empty()) {
        const size_t nl = std::min(text.find('\n'), text.size());
        std::string_view line = text.substr(0, nl);
        text.remove_prefix(std::min(nl + 1, text.size()));
        for (std::string_view tag : {"EAL: ", "FATAL: "})
            if (line.starts_with(tag)) line.remove_prefix(tag.size());
        while (!line.empty() && (line.back() == ' ' || line.back() == '\r' || line.back() == '.')) line.remove_suffix(1);
        if (!line.empty()) return std::string(line);
    }
    return {};
}

// fds 1 and 2 go to one memory file while EAL starts: a failed start prints our one line
// only; a successful one replays what EAL said.
class OutputCapture {
public:
    OutputCapture() {
        std::fflush(stdout);
        std::fflush(stderr);
        file_ = ::memfd_create("pomelo-eal-init", MFD_CLOEXEC);
        if (file_ < 0) return;
        saved_out_ = ::dup(STDOUT_FILENO);
        saved_err_ = ::dup(STDERR_FILENO);
        ::dup2(file_, STDOUT_FILENO);
        ::dup2(file_, STDERR_FILENO);
    }
    // Restores fds 1 and 2; returns what was written meanwhile.
    std::string finish() {
        if (file_ < 0) return {};
        std::fflush(stdout);
        std::fflush(stderr);
        ::dup2(saved_out_, STDOUT_FILENO);
        ::dup2(saved_err_, STDERR_FILENO);
        ::close(saved_out_);
        ::close(saved_err_);
        std::string text;
        char buf[4096];
        ssize_t n;
        ::lseek(file_, 0, SEEK_SET);
        while ((n = ::read(file_, buf, sizeof buf)) > 0) text.append(buf, static_cast<size_t>(n));
        ::close(file_);
        file_ = -1;
        return text;
    }
    ~OutputCapture() { finish(); }

private:
    int file_ = -1, saved_out_ = -1, saved_err_ = -1;
};

}  // namespace

std::string runtime_base_dir() {
    // As eal_create_runtime_dir() in DPDK 22.11.
    const char* dir = "/var/run";
    if (::getuid() != 0) {
        const char* xdg = std::getenv("XDG_RUNTIME_DIR");
        dir = xdg ? xdg : "/tmp";
    }
    return std::string(dir) + "/dpdk";
}

bool runtime_dir_in_use(const std::string& dir) {
    // Never open our own live config: closing any descriptor of a file drops this process's
    // fcntl locks on it.
    std::error_code ec;
    if (!g_runtime_dir.empty() && fs::equivalent(dir, g_runtime_dir, ec)) return true;
    const int fd = ::open((dir + "/config").c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return false;
    struct flock lock{};
    lock.l_type = F_WRLCK;
    lock.l_whence = SEEK_SET;  // l_start = l_len = 0: the whole file
    const bool locked = ::fcntl(fd, F_GETLK, &lock) != 0 || lock.l_type != F_UNLCK;
    ::close(fd);
    return locked;
}

int sweep_stale_runtime_dirs(const std::string& base) {
    std::error_code ec;
    int removed = 0;
    const std::time_t now = std::time(nullptr);
    for (const fs::directory_entry& entry : fs::directory_iterator(base, ec)) {
        const std::string dir = entry.path().string();
        struct stat dir_st{}, config_st{};
        if (::lstat(dir.c_str(), &dir_st) != 0 || !S_ISDIR(dir_st.st_mode)) continue;
        // A starting primary creates its directory, then its config, a moment before it
        // locks it: nothing this recent is judged.
        if (now - dir_st.st_mtime < 2) continue;
        if (::stat((dir + "/config").c_str(), &config_st) != 0 || !S_ISREG(config_st.st_mode)) {
            // No config: a start that failed early leaves an empty directory. rmdir removes
            // it only if it is still empty; anything else is not provably EAL's.
            if (::rmdir(dir.c_str()) == 0) ++removed;
            continue;
        }
        if (now - config_st.st_mtime < 2) continue;
        if (runtime_dir_in_use(dir)) continue;
        std::error_code ignored;
        if (fs::remove_all(entry.path(), ignored) > 0) ++removed;
    }
    return removed;
}

int eal_init(const std::vector<std::string>& args, std::string& error) {
    const std::string base = runtime_base_dir();
    const std::string prefix = eal_option(args, "--file-prefix", "rte");
    const std::string own_dir = base + "/" + prefix;
    // A secondary process shares its primary's directory; --in-memory/--no-shconf keep no config.
    const bool primary_files = !has_eal_option(args, "--proc-type") && !has_eal_option(args, "--in-memory") &&
                               !has_eal_option(args, "--no-shconf");
    sweep_stale_runtime_dirs(base);
    if (primary_files && runtime_dir_in_use(own_dir)) {
        error = "EAL --file-prefix '" + prefix + "' is in use by a running DPDK process (" + own_dir +
                "/config is locked): give another --file-prefix";
        return -1;
    }

    std::vector<std::string> copy = args;
    std::vector<char*> argv;
    for (std::string& a : copy) argv.push_back(a.data());
    argv.push_back(nullptr);

    static FILE* log = fopencookie(nullptr, "w", cookie_io_functions_t{nullptr, capture_log, nullptr, nullptr});
    g_first_error.clear();
    OutputCapture capture;
    if (log) rte_openlog_stream(log);
    const int n = rte_eal_init(static_cast<int>(copy.size()), argv.data());
    const int eal_errno = rte_errno;
    if (log) {
        std::fflush(log);
        rte_openlog_stream(nullptr);  // back to EAL's default stream
    }
    const std::string said = capture.finish();

    if (n < 0) {
        std::string cause = first_line(g_first_error);
        if (cause.empty()) cause = first_line(said);
        if (cause.empty()) cause = eal_errno ? rte_strerror(eal_errno) : "no reason given";
        // getopt names a bad option on stderr before EAL's generic "Invalid 'command line'
        // arguments": keep both, on the one line.
        if (!said.starts_with("EAL: ")) {
            std::string detail = first_line(said);
            if (detail.starts_with(args[0] + ": ")) detail.erase(0, args[0].size() + 2);
            if (!detail.empty() && detail != cause) cause += " (" + detail + ")";
        }
        error = "EAL initialisation failed: " + cause;
        // What the failed start created is ours to remove, unless another process owns it.
        if (primary_files && !runtime_dir_in_use(own_dir)) {
            std::error_code ignored;
            fs::remove_all(own_dir, ignored);
        }
        return n;
    }
    if (!said.empty() && ::write(STDOUT_FILENO, said.data(), said.size()) < 0) {
    }
    if (rte_eal_process_type() == RTE_PROC_PRIMARY) {
        g_runtime_dir = rte_eal_get_runtime_dir();
        static const bool registered = std::atexit(remove_runtime_dir) == 0;
        (void)registered;
    }
    return n;
}

void eal_cleanup() {
    rte_eal_cleanup();
    remove_runtime_dir();
}

rte_mempool* make_mbuf_pool(const char* name, unsigned mbufs, std::string& error, uint16_t priv_size) {
    rte_mempool* pool = rte_pktmbuf_pool_create(name, mbufs, 256, priv_size, RTE_MBUF_DEFAULT_BUF_SIZE,
                                                static_cast<int>(rte_socket_id()));
    if (!pool) error = std::string("cannot create mbuf pool '") + name + "': " + rte_strerror(rte_errno);
    return pool;
}

}  // namespace pomelo::drivers
