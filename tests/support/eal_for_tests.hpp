// EAL for a test binary: started once, before any test, with no hugepages and no PCI and a
// file prefix of its own (pomelo-<binary>-<pid>); drivers::eal_cleanup() at the end removes its
// runtime directory. One place for what every DPDK test main does.
#pragma once

#include <unistd.h>

#include <cstdio>
#include <string>
#include <vector>

#include "drivers/eal.hpp"
#include "protocol/crypto/aead.hpp"

namespace pomelo::test {

// False (after printing one line) when EAL or libsodium cannot start. `extra`: more EAL args.
inline bool start_eal_for_tests(const std::string& binary, const std::vector<std::string>& extra = {}) {
    std::vector<std::string> args = {binary, "--no-huge", "--no-pci", "-m", "256", "--file-prefix",
                                     "pomelo-" + binary + "-" + std::to_string(::getpid()), "--log-level", "error"};
    args.insert(args.end(), extra.begin(), extra.end());
    std::string error;
    if (drivers::eal_init(args, error) < 0) {
        std::fprintf(stderr, "%s: %s\n", binary.c_str(), error.c_str());
        return false;
    }
    if (!crypto::init()) {
        std::fprintf(stderr, "%s: cannot initialise libsodium\n", binary.c_str());
        return false;
    }
    return true;
}

}  // namespace pomelo::test
