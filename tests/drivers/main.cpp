// drivers_tests' own main: EAL starts once per process, before any test, with no hugepages and
// no PCI. The test ports are made by the tests themselves (rte_eth_from_rings, hotplugged
// af_packet), so no --vdev is needed here.
#include <gtest/gtest.h>
#include <rte_eal.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <string>

#include "drivers/eal.hpp"
#include "tests/drivers/frames.hpp"

namespace pomelo::test {
namespace {
rte_mempool* g_pool = nullptr;
}
rte_mempool* pool() { return g_pool; }
}  // namespace pomelo::test

int main(int argc, char** argv) {
    ::testing::InitGoogleTest(&argc, argv);
    const std::string prefix = "pomelo-drivers-test-" + std::to_string(getpid());
    std::string error;
    if (pomelo::drivers::eal_init({"drivers_tests", "--no-huge", "--no-pci", "-m", "256", "--file-prefix", prefix,
                                   "--log-level", "error", "-l", "0", "--no-telemetry"},
                                  error) < 0) {
        std::fprintf(stderr, "%s\n", error.c_str());
        return 1;
    }
    const std::string runtime_dir = rte_eal_get_runtime_dir();
    pomelo::test::g_pool = pomelo::drivers::make_mbuf_pool("drivers_test_pool", 8191, error);
    if (pomelo::test::g_pool == nullptr) {
        std::fprintf(stderr, "%s\n", error.c_str());
        return 1;
    }
    const int rc = RUN_ALL_TESTS();
    rte_mempool_free(pomelo::test::g_pool);
    pomelo::drivers::eal_cleanup();
    // EAL leaves its config files behind; this prefix is ours alone.
    std::error_code ec;
    if (runtime_dir.find(prefix) != std::string::npos) std::filesystem::remove_all(runtime_dir, ec);
    return rc;
}
