// engine_tests: the EAL is started once for the whole process (no hugepages, no PCI), then
// GoogleTest runs.
#include <gtest/gtest.h>
#include <rte_eal.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <string>

#include "tests/support/eal_for_tests.hpp"

int main(int argc, char** argv) {
    testing::InitGoogleTest(&argc, argv);
    if (!pomelo::test::start_eal_for_tests("engine_tests")) return 1;
    const int rc = RUN_ALL_TESTS();
    pomelo::drivers::eal_cleanup();
    return rc;
}
