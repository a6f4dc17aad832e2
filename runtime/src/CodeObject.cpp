// Loading a code object from memory: memfd_create, write, dlopen of /proc/self/fd/N,
// dlsym of each kernel; and the host CPU check that turns a would-be SIGILL into an
// error.
#include "CodeObject.h"
#include "KernelHeap.h"

#include "TaskPool.h"

#include <HalideRuntime.h>
#include <cerrno>
#include <cstring>
#include <dlfcn.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <mutex>
#include <thread>
#include <unistd.h>
#include <unordered_map>

namespace kiln::runtime {
namespace {

std::vector<std::string_view> split(std::string_view text, char separator) {
  std::vector<std::string_view> parts;
  for (size_t start = 0;;) {
    size_t end = text.find(separator, start);
    parts.push_back(text.substr(start, end - start));
    if (end == std::string_view::npos)
      return parts;
    start = end + 1;
  }
}

#if defined(__x86_64__)
// Halide's x86 ISA features and what each needs; features not listed (large_buffers,
// no_runtime, ...) do not depend on the CPU.
bool hostHasX86Feature(std::string_view feature) {
  bool skylake = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512cd") &&
                 __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
                 __builtin_cpu_supports("avx512vl");
  bool cannonlake = skylake && __builtin_cpu_supports("avx512ifma") &&
                    __builtin_cpu_supports("avx512vbmi");
  struct Row {
    std::string_view name;
    bool present;
  };
  const Row rows[] = {
      {"sse41", bool(__builtin_cpu_supports("sse4.1"))},
      {"avx", bool(__builtin_cpu_supports("avx"))},
      {"avx2", bool(__builtin_cpu_supports("avx2"))},
      {"fma", bool(__builtin_cpu_supports("fma"))},
      {"fma4", bool(__builtin_cpu_supports("fma4"))},
      {"f16c", bool(__builtin_cpu_supports("f16c"))},
      {"avx512", __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512cd")},
      {"avx512_skylake", skylake},
      {"avx512_cannonlake", cannonlake},
      {"avx512_sapphirerapids", cannonlake && __builtin_cpu_supports("avx512bf16") &&
                                    __builtin_cpu_supports("avx512vnni")},
  };
  for (const Row &row : rows)
    if (row.name == feature)
      return row.present;
  return true;
}
#endif

// Halide's halide_default_error prints and then aborts. Every kernel checks its buffers
// (types, dimensions, the region it accesses) before touching them and reports a
// failed check through the handler; returning from it makes the kernel return the
// error code instead. Messages are kept per thread, since sessions on different
// threads run concurrently; by thread id under a lock rather than in thread_local
// storage, which would make the shared runtime depend on the dynamic loader's
// __tls_get_addr.
struct KernelErrors {
  std::mutex mutex;
  std::unordered_map<std::thread::id, std::string> byThread;
};

KernelErrors &kernelErrors() {
  static KernelErrors errors;
  return errors;
}

void recordKernelError(void *, const char *message) {
  std::string text = message;
  while (!text.empty() && text.back() == '\n')
    text.pop_back();
  KernelErrors &errors = kernelErrors();
  std::lock_guard<std::mutex> lock(errors.mutex);
  errors.byThread[std::this_thread::get_id()] = std::move(text);
}

} // namespace

std::string takeKernelError() {
  KernelErrors &errors = kernelErrors();
  std::lock_guard<std::mutex> lock(errors.mutex);
  auto found = errors.byThread.find(std::this_thread::get_id());
  if (found == errors.byThread.end())
    return {};
  std::string message = std::move(found->second);
  errors.byThread.erase(found);
  return message;
}

Error checkHostSupportsTarget(std::string_view target) {
  if (target.empty() || target.substr(0, 4) == "host")
    return {};
  std::vector<std::string_view> parts = split(target, '-');
  auto unsupported = [&](const std::string &why) {
    return error(KILN_ERROR_UNSUPPORTED, "code object target \"", std::string(target),
                 "\" cannot run here: ", why);
  };
  if (parts.size() < 3)
    return unsupported("it is not arch-bits-os[-features]");
#if defined(__x86_64__)
  if (parts[0] != "x86" || parts[1] != "64")
    return unsupported("this host is x86-64");
#elif defined(__aarch64__)
  if (parts[0] != "arm" || parts[1] != "64")
    return unsupported("this host is arm-64");
#endif
  if (parts[2] != "linux")
    return unsupported("this host runs linux");
#if defined(__x86_64__)
  for (size_t i = 3; i < parts.size(); ++i) {
    if (parts[i] == "cuda" || parts[i].substr(0, 16) == "cuda_capability_")
      continue;
    if (!hostHasX86Feature(parts[i]))
      return unsupported(cat("this CPU lacks ", std::string(parts[i])));
  }
#endif
  return {};
}

CodeObject::~CodeObject() {
  if (handle)
    dlclose(handle);
  for (int fd : fds)
    close(fd);
}

void *CodeObject::symbol(const char *name) const {
  return handle ? dlsym(handle, name) : nullptr;
}

Error CodeObject::load(const artifact::Program &program, const artifact::CodeObjectBytes &code,
                       int numThreads) {
  uint32_t count = program.kernels() ? program.kernels()->size() : 0;
  std::string where = cat("code object (section ", code.object->section(), ")");
  if (auto err = checkHostSupportsTarget(
          code.object->target() ? code.object->target()->string_view() : ""))
    return err;
  const artifact::ByteRange &bytes = code.bytes;
  const char elfMagic[4] = {0x7f, 'E', 'L', 'F'};
  if (bytes.size < sizeof elfMagic || std::memcmp(bytes.data, elfMagic, sizeof elfMagic) != 0)
    return error(KILN_ERROR_INVALID_ARTIFACT, where, " is not an ELF file");

#ifdef KILN_FUZZING_BUILD
  // The code object is machine code the runtime runs by design once its checksum
  // matches; a fuzzer that forges checksums would only be testing the system's dynamic
  // loader on mutated ELF files. Fuzzing builds stop here (kernels are never called).
  kernels.assign(count, nullptr);
  (void)numThreads;
  return {};
#endif
  int fd = memfd_create("kiln-code-object", MFD_CLOEXEC);
  if (fd < 0)
    return error(KILN_ERROR_IO, "memfd_create failed: ", std::strerror(errno));
  fds.push_back(fd);
  for (uint64_t done = 0; done < bytes.size;) {
    ssize_t n = write(fd, bytes.data + done, bytes.size - done);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return error(KILN_ERROR_IO, "writing the ", where, " to a memfd failed: ",
                   std::strerror(errno));
    done += uint64_t(n);
  }
  // The loader identifies objects by path. An object loaded from a memfd whose number
  // this one now reuses can still be resident (dlclose may keep it), and dlopen would
  // hand back that object; move to a fresh descriptor number until the path is free.
  std::string path;
  for (;;) {
    path = cat("/proc/self/fd/", fds.back());
    void *stale = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL | RTLD_NOLOAD);
    if (!stale)
      break;
    dlclose(stale);
    int next = fcntl(fds.back(), F_DUPFD_CLOEXEC, 0);
    if (next < 0)
      return error(KILN_ERROR_IO, "dup of the code object memfd failed: ",
                   std::strerror(errno));
    fds.push_back(next);
  }
  handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!handle)
    return error(KILN_ERROR_INVALID_ARTIFACT, where, " could not be loaded: ", dlerror());

  kernels.resize(count);
  for (uint32_t i = 0; i < count; ++i) {
    const auto *kernel = program.kernels()->Get(i);
    std::string symbol = cat(kernel->name()->str(), "_argv");
    kernels[i] = reinterpret_cast<KernelFn>(dlsym(handle, symbol.c_str()));
    if (!kernels[i])
      return error(KILN_ERROR_INVALID_ARTIFACT, where, " has no symbol ", symbol,
                   " for kernel ", i);
    // The argv function reads as many argument pointers as the code was compiled
    // with: the program's count (which every dispatch's argument list was checked
    // against) must be the code's own, or a forged program (two kernels' names
    // swapped) would have it read past a dispatch's arguments. Halide's code checks
    // each buffer's type, rank and extents itself when it runs.
    std::string metadataSymbol = cat(kernel->name()->str(), "_metadata");
    auto metadata = reinterpret_cast<const halide_filter_metadata_t *(*)()>(
        dlsym(handle, metadataSymbol.c_str()));
    if (!metadata)
      return error(KILN_ERROR_INVALID_ARTIFACT, where, " has no symbol ", metadataSymbol,
                   " for kernel ", i, " (an artifact of a kiln before 2026-12-05: compile it again)");
    const halide_filter_metadata_t *described = metadata();
    if (!described || described->num_arguments < 0 ||
        uint32_t(described->num_arguments) != kernel->num_args())
      return error(KILN_ERROR_INVALID_ARTIFACT, "kernel ", i, " (", kernel->name()->str(),
                   ") takes ", described ? described->num_arguments : -1,
                   " arguments in ", where, ", but the program gives it ", kernel->num_args());
  }
  if (auto setThreads =
          reinterpret_cast<int (*)(int)>(dlsym(handle, "halide_set_num_threads")))
    setThreads(numThreads);
  // kiln's workers run the parallel loops (TaskPool.h); Halide's pool is never started.
  if (auto setParallelFor = reinterpret_cast<DoParFor (*)(DoParFor)>(
          dlsym(handle, "halide_set_custom_do_par_for")))
    setParallelFor(parallelForWithThreads(numThreads));
  // Heap temporaries come from kiln's cache of freed blocks (KernelHeap.h).
  using Malloc = void *(*)(void *, size_t);
  using Free = void (*)(void *, void *);
  if (auto setMalloc = reinterpret_cast<Malloc (*)(Malloc)>(dlsym(handle, "halide_set_custom_malloc")))
    setMalloc(kernelMalloc);
  if (auto setFree = reinterpret_cast<Free (*)(Free)>(dlsym(handle, "halide_set_custom_free")))
    setFree(kernelFree);
  using ErrorHandler = void (*)(void *, const char *);
  if (auto setHandler = reinterpret_cast<ErrorHandler (*)(ErrorHandler)>(
          dlsym(handle, "halide_set_error_handler")))
    setHandler(recordKernelError);
  return {};
}

} // namespace kiln::runtime
