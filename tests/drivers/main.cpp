// drivers_tests' own main: EAL starts once per process, before any test, with no hugepages and
// no PCI. The test ports are made by the tests themselves (rte_eth_from_rings, hotplugged
// af_packet), so no --vdev is needed here.
#include <gtest/gtest.h>
#include <rte_eal.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <string>

#include "tests/support/eal_for_tests.hpp"
#include "tests/drivers/frames.hpp"

namespace pomelo::test {
namespace {
rte_mempool* g_pool = nullptr;
}
rte_mempool* pool() { return g_pool; }
}  // namespace pomelo::test

int main(int argc, char** argv) {
    ::testing::InitGoogleTest(&argc, argv);
    if (!pomelo::test::start_eal_for_tests("drivers_tests", {"-l", "0", "--no-telemetry"})) return 1;
    std::string error;
    pomelo::test::g_pool = pomelo::drivers::make_mbuf_pool("drivers_test_pool", 8191, error);
    if (pomelo::test::g_pool == nullptr) {
        std::fprintf(stderr, "%s\n", error.c_str());
        return 1;
    }
    const int rc = RUN_ALL_TESTS();
    rte_mempool_free(pomelo::test::g_pool);
    pomelo::drivers::eal_cleanup();
    return rc;
}
