// The kernels' heap: freed blocks are kept by size class for the next call.
#include "KernelHeap.h"

#include <cstdint>
#include <cstdlib>
#include <mutex>
#include <unordered_map>
#include <vector>

namespace kiln::runtime {
namespace {

/// The size class of a request: small ones in 4 KiB steps, larger ones rounded up to
/// an eighth of their power of two, so that requests of nearly the same size (a
/// decode step's attention over one more key) share blocks.
size_t sizeClass(size_t bytes) {
  size_t step = 4096;
  while (step * 8 < bytes)
    step *= 2;
  return (bytes + step - 1) / step * step;
}

/// Each block starts with a header, one alignment unit, holding its size class.
struct Cache {
  std::mutex mutex;
  std::unordered_map<size_t, std::vector<void *>> freeBlocks; // by size class
  size_t cachedBytes = 0;
};

Cache &cache() {
  // Never destroyed (the blocks go with the process): kernels may still free at exit.
  static Cache *instance = new Cache;
  return *instance;
}

} // namespace

void *kernelMalloc(void *, size_t bytes) {
  size_t size = sizeClass(bytes);
  Cache &c = cache();
  void *block = nullptr;
  {
    std::lock_guard<std::mutex> lock(c.mutex);
    auto it = c.freeBlocks.find(size);
    if (it != c.freeBlocks.end() && !it->second.empty()) {
      block = it->second.back();
      it->second.pop_back();
      c.cachedBytes -= size;
    }
  }
  if (!block) {
    block = std::aligned_alloc(kKernelHeapAlignment, size + kKernelHeapAlignment);
    if (!block)
      return nullptr;
    *static_cast<size_t *>(block) = size;
  }
  return static_cast<char *>(block) + kKernelHeapAlignment;
}

void kernelFree(void *, void *pointer) {
  if (!pointer)
    return;
  void *block = static_cast<char *>(pointer) - kKernelHeapAlignment;
  size_t size = *static_cast<size_t *>(block);
  Cache &c = cache();
  {
    std::lock_guard<std::mutex> lock(c.mutex);
    if (c.cachedBytes + size <= kCachedBytesLimit) {
      c.freeBlocks[size].push_back(block);
      c.cachedBytes += size;
      return;
    }
  }
  std::free(block);
}

size_t kernelHeapCachedBytes() {
  Cache &c = cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  return c.cachedBytes;
}

} // namespace kiln::runtime
