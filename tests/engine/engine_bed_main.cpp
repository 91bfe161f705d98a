// engine_bed_tests: EAL once for the process, with more lcores than CPUs so an Engine can run
// its control thread and up to three workers on a 2-core machine (--lcores maps lcores 1..3
// round-robin onto the CPUs this process may use). No hugepages, no PCI, a prefix of our own,
// removed at exit.
#include <gtest/gtest.h>
#include <rte_eal.h>
#include <sched.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "tests/support/eal_for_tests.hpp"

int main(int argc, char** argv) {
    testing::InitGoogleTest(&argc, argv);
    cpu_set_t set;
    CPU_ZERO(&set);
    std::vector<int> cpus;
    if (sched_getaffinity(0, sizeof set, &set) == 0)
        for (int c = 0; c < CPU_SETSIZE; ++c)
            if (CPU_ISSET(c, &set)) cpus.push_back(c);
    if (cpus.empty()) cpus.push_back(0);
    std::string lcores;
    for (int l = 0; l < 4; ++l)
        lcores += (l ? "," : "") + std::to_string(l) + "@" + std::to_string(cpus[static_cast<size_t>(l) % cpus.size()]);
    if (!pomelo::test::start_eal_for_tests("engine_bed_tests", {"--lcores", lcores})) return 1;
    const int rc = RUN_ALL_TESTS();
    pomelo::drivers::eal_cleanup();
    return rc;
}
