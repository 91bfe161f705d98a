// DPDK's Environment Abstraction Layer, started once per process.
#pragma once

#include <rte_mempool.h>

#include <string>
#include <vector>

namespace pomelo::drivers {

// rte_eal_init with these arguments (argv[0] first). Returns the number of arguments EAL
// consumed, or -1 with `error` set to a one-line reason.
int eal_init(const std::vector<std::string>& args, std::string& error);
void eal_cleanup();

// A packet mbuf pool sized for `mbufs` buffers of 2 KB data room, on the caller's socket,
// with `priv_size` bytes of private area per mbuf (a multiple of RTE_MBUF_PRIV_ALIGN).
rte_mempool* make_mbuf_pool(const char* name, unsigned mbufs, std::string& error, uint16_t priv_size = 0);

}  // namespace pomelo::drivers
