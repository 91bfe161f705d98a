// engine_tests: the EAL is started once for the whole process (no hugepages, no PCI), then
// GoogleTest runs.
#include <gtest/gtest.h>
#include <rte_eal.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <string>

#include "drivers/eal.hpp"
#include "protocol/crypto/aead.hpp"

int main(int argc, char** argv) {
    testing::InitGoogleTest(&argc, argv);
    const std::string prefix = "pomelo-engine-test-" + std::to_string(::getpid());
    std::string error;
    if (pomelo::drivers::eal_init({argv[0], "--no-huge", "--no-pci", "-m", "256", "--file-prefix", prefix,
                                   "--log-level", "error"},
                                  error) < 0) {
        std::fprintf(stderr, "engine_tests: %s\n", error.c_str());
        return 1;
    }
    if (!pomelo::crypto::init()) {
        std::fprintf(stderr, "engine_tests: cannot initialise libsodium\n");
        return 1;
    }
    const int rc = RUN_ALL_TESTS();
    // EAL leaves its runtime files (~3 MB with --no-huge) behind; the prefix is ours alone.
    const std::string runtime_dir = rte_eal_get_runtime_dir();
    pomelo::drivers::eal_cleanup();
    std::error_code ignored;
    if (runtime_dir.ends_with(prefix)) std::filesystem::remove_all(runtime_dir, ignored);
    return rc;
}
