// What the end-to-end tests share: the tools' paths, a scratch directory with a server key,
// server arguments with a private token journal, telemetry reads through pomelo-stats.
#pragma once

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "tests/integration/process.hpp"

namespace pomelo::test {

using namespace std::chrono_literals;
using nlohmann::json;
namespace fs = std::filesystem;

inline const std::string kServer = POMELO_SERVER_BIN, kClient = POMELO_CLIENT_BIN, kToken = POMELO_TOKEN_BIN,
                  kStats = POMELO_STATS_BIN, kRoomsClient = POMELO_ROOMS_CLIENT_BIN;

// A scratch directory with a server key, removed afterwards.
struct Scratch {
    fs::path dir;
    std::string key;
    Scratch() {
        dir = fs::temp_directory_path() / ("pomelo-it-" + std::to_string(::getpid()) + "-" +
                                           testing::UnitTest::GetInstance()->current_test_info()->name());
        fs::remove_all(dir);
        fs::create_directories(dir);
        key = (dir / "server.key").string();
        Process keygen({kToken, "keygen", "-o", key}, (dir / "keygen").string());
        EXPECT_TRUE(keygen.wait_for(10s));
        EXPECT_EQ(keygen.exit_code(), 0);
    }
    ~Scratch() {
        if (!testing::Test::HasFailure()) fs::remove_all(dir);
    }
    std::string log(const std::string& name) const { return (dir / name).string(); }
};

inline uint16_t test_port(int k) { return static_cast<uint16_t>(41000 + (::getpid() % 500) * 8 + k); }

inline std::string prefix(const std::string& role) {
    return "pomelo-it-" + role + "-" + std::to_string(::getpid()) + "-" +
           testing::UnitTest::GetInstance()->current_test_info()->name();
}

inline std::vector<std::string> server_args(const std::string& file_prefix, std::vector<std::string> eal_extra,
                                     std::vector<std::string> ours) {
    std::vector<std::string> a = {kServer, "--no-huge", "--no-pci", "-m", "256", "--file-prefix", file_prefix,
                                  "--log-level", "error"};
    a.insert(a.end(), eal_extra.begin(), eal_extra.end());
    a.push_back("--");
    a.insert(a.end(), ours.begin(), ours.end());
    // Each server's token journal in the temporary directory (not the host's /var/lib),
    // removed when the test binary exits.
    if (std::find(ours.begin(), ours.end(), "--token-journal") == ours.end()) {
        static std::vector<std::string> journals;
        if (journals.empty()) std::atexit([] {
            for (const auto& j : journals)
                for (const char* suffix : {"", ".lock", ".tmp"}) fs::remove(j + suffix);
        });
        journals.push_back((fs::temp_directory_path() / (file_prefix + ".tokens")).string());
        a.push_back("--token-journal");
        a.push_back(journals.back());
    }
    return a;
}

inline std::optional<json> stats(const std::string& file_prefix, const std::string& command) {
    const std::string log = (fs::temp_directory_path() / ("pomelo-it-stats-" + std::to_string(::getpid()))).string();
    std::optional<json> result;
    {
        Process p({kStats, "--file-prefix", file_prefix, "--json", command}, log);
        if (p.wait_for(10s) && p.exit_code() == 0) {
            try {
                result = json::parse(p.out())[command];
            } catch (...) {
            }
        }
    }
    fs::remove(log + ".out");
    fs::remove(log + ".err");
    return result;
}

// Polls telemetry until pred(summary) holds.
inline bool wait_summary(const std::string& file_prefix, const std::function<bool(const json&)>& pred,
                  std::chrono::seconds limit) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < deadline) {
        if (auto s = stats(file_prefix, "summary"); s && pred(*s)) return true;
        std::this_thread::sleep_for(200ms);
    }
    return false;
}

inline json client_json(const Process& p) {
    try {
        return json::parse(p.out());
    } catch (...) {
        ADD_FAILURE() << "client output is not JSON:\n" << p.out() << p.err();
        return json::object();
    }
}

}  // namespace pomelo::test
