// A code object (an ELF shared object for the host: the CPU's, or a CUDA one whose
// kernels launch GPU code) loaded from the artifact's bytes with memfd_create + dlopen,
// and its kernels' `<name>_argv` entry points.
#ifndef KILN_RUNTIME_CODEOBJECT_H
#define KILN_RUNTIME_CODEOBJECT_H

#include "ArtifactReader.h"
#include "RuntimeError.h"

#include <string>
#include <string_view>
#include <vector>

namespace kiln::runtime {

// Halide's AOT argv ABI: one halide_buffer_t* per argument; non-zero means failure.
using KernelFn = int (*)(void **args);

class CodeObject {
public:
  CodeObject() = default;
  CodeObject(const CodeObject &) = delete;
  CodeObject &operator=(const CodeObject &) = delete;
  ~CodeObject();

  // Loads `code`, resolves every kernel of `program`, sets the Halide runtime's thread
  // count when the object exports halide_set_num_threads, and replaces Halide's
  // default error handler (which aborts the process) with one that records the
  // message, so a kernel whose checks fail returns an error code.
  Error load(const artifact::Program &program, const artifact::CodeObjectBytes &code,
             int numThreads);

  KernelFn kernel(uint32_t index) const { return kernels[index]; }
  // A symbol the loaded object exports (its Halide runtime's functions), or null.
  void *symbol(const char *name) const;

private:
  void *handle = nullptr;
  // The memfd stays open while the object is loaded: its /proc/self/fd path is the
  // name the dynamic loader knows the object by, and must not be reused meanwhile.
  std::vector<int> fds;
  std::vector<KernelFn> kernels;
};

// The message of the last Halide error reported on this thread by a loaded code
// object (its checks of buffer types, dimensions and bounds), and clearing it.
std::string takeKernelError();

// Whether this machine can run code built for a Halide target string such as
// "x86-64-linux-avx2-fma-f16c-sse41": architecture, bit width, OS, ISA features. The
// features of the GPU a CUDA object also runs on ("cuda", "cuda_capability_80") are
// the device's business, not the CPU's.
Error checkHostSupportsTarget(std::string_view target);

} // namespace kiln::runtime

#endif // KILN_RUNTIME_CODEOBJECT_H
