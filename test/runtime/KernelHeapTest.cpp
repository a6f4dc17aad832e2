// The kernels' heap (runtime/src/KernelHeap.h): alignment, reuse of freed blocks by
// size class, and use from several threads.
#include "KernelHeap.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <thread>
#include <vector>

using namespace kiln::runtime;

namespace {

bool aligned(void *p) { return reinterpret_cast<uintptr_t>(p) % kKernelHeapAlignment == 0; }

TEST(KernelHeap, BlocksAreAlignedAndWritable) {
  for (size_t bytes : {size_t(1), size_t(100), size_t(4096), size_t(300000), size_t(5) << 20}) {
    void *p = kernelMalloc(nullptr, bytes);
    ASSERT_NE(p, nullptr);
    EXPECT_TRUE(aligned(p)) << bytes;
    std::memset(p, 0xab, bytes);
    kernelFree(nullptr, p);
  }
}

TEST(KernelHeap, AFreedBlockServesTheNextRequestOfItsSizeClass) {
  void *first = kernelMalloc(nullptr, 786432);
  kernelFree(nullptr, first);
  size_t cached = kernelHeapCachedBytes();
  EXPECT_GE(cached, size_t(786432));
  // A slightly smaller request falls into the same class and gets the same block back.
  void *second = kernelMalloc(nullptr, 786432 - 1000);
  EXPECT_EQ(second, first);
  // 786432 bytes is its own class (a multiple of the 128 KiB step for its size).
  EXPECT_EQ(kernelHeapCachedBytes(), cached - 786432);
  // A much larger one does not take it.
  void *larger = kernelMalloc(nullptr, 2 * 786432);
  EXPECT_NE(larger, first);
  kernelFree(nullptr, second);
  kernelFree(nullptr, larger);
  kernelFree(nullptr, nullptr); // a no-op, as free(NULL) is
}

TEST(KernelHeap, ThreadsShareTheCacheSafely) {
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t)
    threads.emplace_back([t] {
      for (int i = 0; i < 2000; ++i) {
        size_t bytes = 4096 * size_t(1 + (i + t) % 37);
        auto *p = static_cast<unsigned char *>(kernelMalloc(nullptr, bytes));
        ASSERT_NE(p, nullptr);
        p[0] = static_cast<unsigned char>(t);
        p[bytes - 1] = static_cast<unsigned char>(i);
        EXPECT_EQ(p[0], static_cast<unsigned char>(t));
        kernelFree(nullptr, p);
      }
    });
  for (std::thread &thread : threads)
    thread.join();
  EXPECT_LE(kernelHeapCachedBytes(), kCachedBytesLimit);
}

} // namespace
