// Real processes for end-to-end tests: spawn a tool, capture its output in files, signal it,
// wait with a deadline. Every process is killed when its handle goes away.
#pragma once

#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fcntl.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace pomelo::test {

class Process {
public:
    // Standard input is /dev/null, or with `pipe_stdin` a pipe fed by write_stdin().
    Process(std::vector<std::string> argv, const std::string& log_base, bool pipe_stdin = false)
        : out_(log_base + ".out"), err_(log_base + ".err") {
        int in[2] = {-1, -1};
        if (pipe_stdin && ::pipe2(in, O_CLOEXEC) != 0) return;
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_addopen(&fa, 1, out_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        posix_spawn_file_actions_addopen(&fa, 2, err_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (pipe_stdin) posix_spawn_file_actions_adddup2(&fa, in[0], 0);
        else posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
        std::vector<char*> args;
        for (auto& a : argv) args.push_back(a.data());
        args.push_back(nullptr);
        if (posix_spawn(&pid_, args[0], &fa, nullptr, args.data(), environ) != 0) pid_ = -1;
        posix_spawn_file_actions_destroy(&fa);
        if (pipe_stdin) {
            ::close(in[0]);
            stdin_ = in[1];
        }
    }
    ~Process() {
        close_stdin();
        if (running()) {
            ::kill(pid_, SIGKILL);
            wait_for(std::chrono::seconds(5));
        }
    }
    Process(const Process&) = delete;
    Process& operator=(const Process&) = delete;

    bool started() const { return pid_ > 0; }
    bool running() const { return pid_ > 0 && !exited_; }
    void signal(int sig) const {
        if (running()) ::kill(pid_, sig);
    }
    // Waits for exit; false on timeout.
    template <class Duration>
    bool wait_for(Duration d) {
        const auto deadline = std::chrono::steady_clock::now() + d;
        while (!exited_) {
            int status = 0;
            const pid_t r = ::waitpid(pid_, &status, WNOHANG);
            if (r == pid_) {
                exited_ = true;
                code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
                break;
            }
            if (std::chrono::steady_clock::now() > deadline) return false;
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
        return true;
    }
    int exit_code() const { return code_; }
    // With pipe_stdin: writes `text` to the process's standard input (false if it cannot);
    // close_stdin() is its end of file.
    bool write_stdin(const std::string& text) {
        static const bool no_sigpipe = (::signal(SIGPIPE, SIG_IGN), true);  // a dead reader: false, not death
        (void)no_sigpipe;
        size_t done = 0;
        while (stdin_ >= 0 && done < text.size()) {
            const ssize_t n = ::write(stdin_, text.data() + done, text.size() - done);
            if (n <= 0) return false;
            done += static_cast<size_t>(n);
        }
        return stdin_ >= 0;
    }
    void close_stdin() {
        if (stdin_ >= 0) ::close(stdin_);
        stdin_ = -1;
    }
    std::string out() const { return slurp(out_); }
    std::string err() const { return slurp(err_); }
    // Waits until stdout contains `text`; false on timeout, or if the process exits without it.
    template <class Duration>
    bool wait_output(const std::string& text, Duration d) {
        const auto deadline = std::chrono::steady_clock::now() + d;
        while (std::chrono::steady_clock::now() < deadline) {
            if (out().find(text) != std::string::npos) return true;
            wait_for(std::chrono::milliseconds(0));  // reaps the process if it exited
            if (exited_) return out().find(text) != std::string::npos;
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
        return false;
    }

private:
    static std::string slurp(const std::string& path) {
        std::ifstream f(path);
        std::stringstream s;
        s << f.rdbuf();
        return s.str();
    }
    std::string out_, err_;
    pid_t pid_ = -1;
    int stdin_ = -1;
    bool exited_ = false;
    int code_ = -1;
};

}  // namespace pomelo::test
