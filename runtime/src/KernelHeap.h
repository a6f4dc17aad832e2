// Where the kernels' heap temporaries come from: a cache of freed blocks by size.
#ifndef KILN_RUNTIME_SRC_KERNELHEAP_H
#define KILN_RUNTIME_SRC_KERNELHEAP_H

#include <cstddef>

namespace kiln::runtime {

/// Halide's halide_malloc signature. Kernels allocate the buffers they compute whole
/// (attention's scores, a GEMM panel's dense copy) on every call; from glibc those of
/// 128 KiB and more are fresh mmaps, so every call page-faulted them in again (a
/// third of MiniLM's attention time at one thread, more at two: the faults serialize
/// on the process's memory map). Blocks freed here are kept, by size class (sizes
/// rounded up by at most 1/8), for the next request of that class; at most
/// kCachedBytesLimit stay cached, the rest go back to the system. Aligned to
/// kKernelHeapAlignment. Thread-safe.
void *kernelMalloc(void *userContext, size_t bytes);
/// Halide's halide_free signature; `block` came from kernelMalloc (or is null).
void kernelFree(void *userContext, void *block);

constexpr size_t kKernelHeapAlignment = 128;
constexpr size_t kCachedBytesLimit = size_t(512) << 20;

/// Bytes held in the cache now (for tests).
size_t kernelHeapCachedBytes();

} // namespace kiln::runtime

#endif // KILN_RUNTIME_SRC_KERNELHEAP_H
