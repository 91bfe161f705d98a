// An allocator for the large tables that grow with the connections (hash maps, the timer
// wheel, chunks of peers): blocks of kMapBytes or more are mapped with mmap and unmapped when
// freed, so a table left behind by a rehash goes back to the system at once.
//
// Through malloc it does not: glibc raises its mmap threshold to the size of each mmapped
// block freed (up to 32 MiB), so the next, larger tables come from a heap, and once freed
// they stay there, resident, in the middle of it (measured with perf/memory_probe.py at
// 60,000 peers: the worker's arena held 0.6 MiB free, and 16 B per peer went with this).
// It also keeps the peers' chunks out of malloc's arenas altogether. Smaller blocks (a table
// that has just started) still come from malloc.
#pragma once

#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstddef>
#include <limits>
#include <memory>
#include <new>

namespace pomelo {

template <class T>
struct PageAllocator {
    using value_type = T;
    static constexpr size_t kMapBytes = 64 * 1024;

    PageAllocator() = default;
    template <class U>
    PageAllocator(const PageAllocator<U>&) noexcept {}

    T* allocate(size_t n) {
        if (n > std::numeric_limits<size_t>::max() / sizeof(T)) throw std::bad_array_new_length();
        if (n * sizeof(T) < kMapBytes) return std::allocator<T>{}.allocate(n);
        // Page-aligned, which covers any alignas() of T up to a page.
        static_assert(alignof(T) <= 4096);
        void* p = ::mmap(nullptr, n * sizeof(T), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) throw std::bad_alloc();
        return static_cast<T*>(p);
    }
    void deallocate(T* p, size_t n) noexcept {
        if (n * sizeof(T) < kMapBytes) return std::allocator<T>{}.deallocate(p, n);
        // The system call itself, not munmap(): an executable of the engine interposes munmap
        // to wait out every device burst in progress (drivers/quiesce.hpp), which only device
        // memory needs, and which a table freed on the control thread or inside a worker's
        // loop must not wait for.
        ::syscall(SYS_munmap, p, n * sizeof(T));
    }

    template <class U>
    bool operator==(const PageAllocator<U>&) const noexcept {
        return true;
    }
};

}  // namespace pomelo
