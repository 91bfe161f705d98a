// DPDK's Environment Abstraction Layer, started once per process.
#pragma once

#include <rte_mempool.h>

#include <string>
#include <vector>

namespace pomelo::drivers {

// rte_eal_init with these arguments (argv[0] first). Returns the number of arguments EAL
// consumed, or -1 with `error` set to one line naming the cause (EAL's own first error
// message; EAL's chatter during a failed start is not printed).
//
// Runtime directory (<runtime base>/<file-prefix>, e.g. /var/run/dpdk/rte): DPDK 22.11 leaves
// it behind (~3 MB with --no-huge) even after rte_eal_cleanup(). A primary process started
// here removes its own on every exit path that runs: eal_cleanup(), exit() (an error after
// EAL started) and a failed start (unless another process owns the prefix). Before starting,
// directories whose owner is provably gone (see sweep_stale_runtime_dirs) are removed too, so
// what a SIGKILL leaves is collected by the next start.
int eal_init(const std::vector<std::string>& args, std::string& error);
// rte_eal_cleanup, then removes our runtime directory.
void eal_cleanup();

// DPDK's runtime base directory for this user: /var/run/dpdk for root, else
// $XDG_RUNTIME_DIR/dpdk or /tmp/dpdk.
std::string runtime_base_dir();
// True if a live primary process owns the runtime directory `dir`: DPDK's primary holds an
// fcntl write lock on <dir>/config for its whole life (the lock goes with the process).
bool runtime_dir_in_use(const std::string& dir);
// Removes every directory under `base` whose config nobody locks, and every empty one (a
// start that failed early), if unchanged for 2 s (a starting primary creates its directory
// and config just before locking it). Returns how many were removed.
int sweep_stale_runtime_dirs(const std::string& base);

// A packet mbuf pool sized for `mbufs` buffers of 2 KB data room, on the caller's socket,
// with `priv_size` bytes of private area per mbuf (a multiple of RTE_MBUF_PRIV_ALIGN).
rte_mempool* make_mbuf_pool(const char* name, unsigned mbufs, std::string& error, uint16_t priv_size = 0);

}  // namespace pomelo::drivers
