// pomelo-stats: reads a running pomelo-server's counters over DPDK telemetry and prints them
// as a table or JSON.
//
//   pomelo-stats [--file-prefix PREFIX | --socket PATH] [--json] [--watch S] [COMMAND...]
//
// COMMAND is summary, packets, drops or workers (default: all four), rooms (the rooms
// application's /pomelo/rooms), or the administration commands peers [FROM] (connections by
// client id, a page from FROM) and disconnect ID. The socket is DPDK's
// telemetry v2 socket: /var/run/dpdk/PREFIX/dpdk_telemetry.v2 (root) or under
// $XDG_RUNTIME_DIR/dpdk/PREFIX/ otherwise.
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "tools/common/cli.hpp"

namespace {

using namespace pomelo;
using nlohmann::json;

const char* kUsage = R"(usage: pomelo-stats [--file-prefix PREFIX | --socket PATH] [--json] [--watch S] [COMMAND...]

Prints a running pomelo-server's statistics from DPDK telemetry.
  COMMAND            summary, packets, drops, workers (default: all four), rooms (--app rooms)
                     peers [FROM]: connections (address, client id, worker, state, RTT),
                       64 a page in ascending client id from FROM; "next" starts the next page
                     disconnect ID: the server disconnects client ID
  --file-prefix P    the server's EAL --file-prefix (its telemetry socket lives there)
  --socket PATH      the telemetry socket itself
  --json             one JSON object instead of tables
  --watch S          repeat every S seconds until interrupted
)";

std::string default_socket(const std::string& prefix) {
    std::string base = "/var/run/dpdk";
    if (::getuid() != 0) {
        const char* xdg = std::getenv("XDG_RUNTIME_DIR");
        base = std::string(xdg ? xdg : "/tmp") + "/dpdk";
    }
    return base + "/" + prefix + "/dpdk_telemetry.v2";
}

class Telemetry {
public:
    explicit Telemetry(const std::string& path) {
        fd_ = ::socket(AF_UNIX, SOCK_SEQPACKET, 0);
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        if (path.size() >= sizeof addr.sun_path) cli::bad_argument("--socket", "path too long");
        std::strcpy(addr.sun_path, path.c_str());
        if (fd_ < 0 || ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
            cli::failure("cannot connect to telemetry socket '" + path + "': " + std::strerror(errno) +
                         " (is pomelo-server running with that --file-prefix?)");
        read_reply();  // the greeting: version, pid, max output length
    }
    ~Telemetry() {
        if (fd_ >= 0) ::close(fd_);
    }
    json query(const std::string& command) {
        if (::write(fd_, command.data(), command.size()) < 0) cli::failure("telemetry write: " + std::string(std::strerror(errno)));
        json reply = read_reply();
        const std::string name = command.substr(0, command.find(','));  // the answer drops the parameter
        if (!reply.contains(name) || reply[name].is_null())
            cli::failure("the server does not answer '" + command + "' (not a pomelo-server?)");
        if (reply[name].is_object() && reply[name].contains("error"))
            cli::failure("'" + command + "': " + reply[name]["error"].get<std::string>());
        return reply[name];
    }

private:
    json read_reply() {
        std::vector<char> buf(1 << 16);
        const ssize_t n = ::read(fd_, buf.data(), buf.size());
        if (n <= 0) cli::failure("telemetry read: " + std::string(n < 0 ? std::strerror(errno) : "connection closed"));
        try {
            return json::parse(std::string(buf.data(), static_cast<size_t>(n)));
        } catch (const std::exception& e) {
            cli::failure(std::string("telemetry answer is not JSON: ") + e.what());
        }
    }
    int fd_ = -1;
};

void print_table(const std::string& title, const json& data) {
    std::printf("%s\n", title.c_str());
    for (auto& [k, v] : data.items()) {
        if (v.is_object()) {
            std::printf("  %s:", k.c_str());
            for (auto& [k2, v2] : v.items()) std::printf(" %s=%s", k2.c_str(), v2.dump().c_str());
            std::printf("\n");
        } else if (!(v.is_number() && v.get<double>() == 0 && title == "drops")) {
            std::printf("  %-28s %s\n", k.c_str(), v.dump().c_str());
        }
    }
}

int run(int argc, char** argv) {
    std::string socket_path, prefix;
    bool as_json = false;
    double watch = 0;
    std::vector<std::string> commands;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        auto value = [&]() -> std::string {
            if (i + 1 >= argc) cli::bad_argument(a, "needs a value");
            return argv[++i];
        };
        if (a == "--help" || a == "-h") {
            std::fputs(kUsage, stdout);
            return 0;
        } else if (a == "--json") {
            as_json = true;
        } else if (a == "--socket") {
            socket_path = value();
        } else if (a == "--file-prefix") {
            prefix = value();
        } else if (a == "--watch") {
            watch = cli::parse_seconds(a, value());
        } else if (a == "summary" || a == "packets" || a == "drops" || a == "workers" || a == "rooms") {
            commands.push_back(a);
        } else if (a == "peers") {
            std::string c = a;  // an optional first client id follows
            if (i + 1 < argc && argv[i + 1][0] >= '0' && argv[i + 1][0] <= '9')
                c += "," + std::to_string(cli::parse_uint(a, argv[++i]));
            commands.push_back(c);
        } else if (a == "disconnect") {
            commands.push_back(a + "," + std::to_string(cli::parse_uint(a, value())));
        } else {
            cli::bad_argument(a, "unknown option or command (see --help)");
        }
    }
    if (socket_path.empty() && prefix.empty())
        cli::bad_argument("--file-prefix", "missing: name the server's EAL --file-prefix (or give --socket)");
    if (socket_path.empty()) socket_path = default_socket(prefix);
    if (commands.empty()) commands = {"summary", "packets", "drops", "workers"};
    Telemetry t(socket_path);
    for (;;) {
        json all;
        for (const std::string& c : commands) all[c.substr(0, c.find(','))] = t.query("/pomelo/" + c);
        if (as_json) {
            std::printf("%s\n", all.dump().c_str());
        } else {
            for (const std::string& c : commands) print_table(c.substr(0, c.find(',')), all[c.substr(0, c.find(','))]);
        }
        std::fflush(stdout);
        if (watch <= 0) return 0;
        std::this_thread::sleep_for(std::chrono::duration<double>(watch));
    }
}

}  // namespace

int main(int argc, char** argv) {
    return pomelo::cli::run_main("pomelo-stats", [&] { return run(argc, argv); });
}
