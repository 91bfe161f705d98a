#include "drivers/eal.hpp"

#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>

namespace pomelo::drivers {

int eal_init(const std::vector<std::string>& args, std::string& error) {
    std::vector<std::string> copy = args;
    std::vector<char*> argv;
    for (std::string& a : copy) argv.push_back(a.data());
    argv.push_back(nullptr);
    const int n = rte_eal_init(static_cast<int>(copy.size()), argv.data());
    if (n < 0) error = std::string("EAL initialisation failed: ") + rte_strerror(rte_errno);
    return n;
}

void eal_cleanup() { rte_eal_cleanup(); }

rte_mempool* make_mbuf_pool(const char* name, unsigned mbufs, std::string& error, uint16_t priv_size) {
    rte_mempool* pool = rte_pktmbuf_pool_create(name, mbufs, 256, priv_size, RTE_MBUF_DEFAULT_BUF_SIZE,
                                                static_cast<int>(rte_socket_id()));
    if (!pool) error = std::string("cannot create mbuf pool '") + name + "': " + rte_strerror(rte_errno);
    return pool;
}

}  // namespace pomelo::drivers
