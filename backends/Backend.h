// The one interface every code-generation backend implements, and the registry that
// picks a backend for a target. Nothing outside backends/<name>/ knows a backend exists.
#ifndef KILN_BACKENDS_BACKEND_H
#define KILN_BACKENDS_BACKEND_H

#include "dialects/Kiln/KilnDialect.h"

#include <cstdint>
#include <functional>
#include <optional>
#include <memory>
#include <string>
#include <vector>

namespace kiln {

/// One kernel's code for a GPU, as text (PTX for CUDA, Metal Shading Language for
/// Metal): inside the code object too, kept here for tools and tests.
struct DeviceSource {
  std::string kernel;
  std::string language; // "ptx", "metal"
  std::string text;
};

/// Machine code for one device, as the runtime loads it.
struct CodeObject {
  std::string device; // "cpu", "cuda", "metal"
  std::string target; // the backend's resolved target, e.g. a Halide target string
  std::string format; // "elf-shared-object", "macho-dylib"
  std::vector<char> bytes;
  /// For a GPU: each kernel's device code (empty for kernels taken from a cache).
  std::vector<DeviceSource> sources;
};

/// A GEMM a device library computes instead of a kernel's own code (cuBLAS on CUDA),
/// where the runtime's device has the library: for each b < batch, row-major
/// C[b] (m x n) = A[b] (m x k) . B[b] (k x n), or B[b]^T where B is stored n x k, in
/// float32 (the artifact's LibraryCall).
struct LibraryCall {
  std::string function;  // "cublas.gemm"
  unsigned a = 0, b = 0, c = 0; // positions of A, B and C among the kernel's arguments
  uint32_t batch = 1, m = 0, n = 0, k = 0;
  uint64_t aBatchStride = 0, bBatchStride = 0; // elements; 0: one matrix for every batch
  bool transposeB = false;
  std::string compute = "f32"; // "f32" (IEEE float32) or "tf32" (inputs rounded to TF32)
};

/// A kernel as the runtime calls it: `<name>_argv(void **args)`.
struct KernelInfo {
  std::string name;
  unsigned index = 0; // its place among the backend's kernels, in the order they were added
  unsigned numArgs = 0;
  std::string schedule; // the schedule's knobs, for reports
  /// The knobs (of describeScheduleSpace) that change this kernel's code: what a tuner
  /// searches for it. The others leave it as it is.
  std::vector<std::string> knobs;
  /// Where a library computes the kernel instead (the kernel is compiled all the same:
  /// the runtime runs it where the library is missing).
  std::optional<LibraryCall> library;
};

/// How emitCodeObjects compiles.
struct CompileOptions {
  /// Kernels compiled at the same time (0: one per hardware thread).
  unsigned jobs = 0;
  /// Called on the calling thread with (compiled, total): once with 0 before the first
  /// kernel, then as kernels finish.
  std::function<void(unsigned, unsigned)> progress;
  /// A directory of compiled kernel objects to reuse (empty: none), each kept under
  /// its whole kernel fingerprint, code target and name. The compiler's own code is not
  /// part of that key, so a cache serves runs of one compiler build only (kiln-tune
  /// keeps one per session, where candidates differ in one kernel).
  std::string kernelCache;
  /// A directory to write each kernel's GPU code into (PTX, MSL), or empty.
  std::string deviceCodeDirectory;
};

/// Choices that change a kernel's numerics, which only the user may make (the
/// tuner searches schedules, never these).
struct NumericsOptions {
  /// One-row products with packed block weights (a decode step's projections) take
  /// integer dot products of the activation row quantized to 8-bit blocks of 32
  /// (llama.cpp's q8_0 activations). The default: as close to the exact result as
  /// llama.cpp on the same file (which rounds activations the same way, in blocks of
  /// 256 for K-quants), and 1.2-1.6x faster decoding than f32 activations.
  bool int8Activations = true;
  /// GEMMs a GPU library computes (LibraryCall) round their inputs to TF32 (10-bit
  /// mantissas, float32 accumulation): several times faster on tensor cores, about
  /// 1e-3 relative error. Default: IEEE float32, equal to the CPU path within rounding.
  bool tf32 = false;
};

class Backend {
public:
  virtual ~Backend();

  /// "cpu", "cuda", ...
  virtual llvm::StringRef name() const = 0;
  /// The concrete target this backend compiles for (host features resolved).
  virtual std::string target() const = 0;
  /// Whether `op` (inside a dispatch) can be lowered; emits an error at `op` if not.
  virtual mlir::LogicalResult supports(mlir::Operation *op) const = 0;
  /// Lowers `dispatch` into a new kernel with its default schedule, over which the
  /// knobs of the dispatch's `kiln.schedule` attribute (if any) are set, or returns the
  /// kernel added before whose kernelFingerprint is the same: identical dispatches
  /// (every layer's matmul) share one kernel.
  virtual mlir::FailureOr<KernelInfo> addKernel(DispatchOp dispatch) = 0;
  /// The schedule knobs `kiln.schedule` may set and the values each may take, one
  /// "name: v1 v2 ..." line per knob.
  virtual std::string describeScheduleSpace() const = 0;
  /// The lowered form of every kernel added so far, for humans (Halide statements).
  virtual mlir::FailureOr<std::string> printKernels(mlir::Location loc) = 0;
  /// Compiles every kernel added so far into code objects: one per target the backend
  /// compiles for (a CUDA backend may build several GPU architectures).
  virtual mlir::FailureOr<std::vector<CodeObject>>
  emitCodeObjects(mlir::Location loc, const CompileOptions &options) = 0;
};

/// Creates the backend that handles `target` ("host", "arm-64-linux", "cuda",
/// "metal", or another target string a backend accepts); on failure returns null and says why in `error`.
std::unique_ptr<Backend> createBackend(llvm::StringRef target, std::string &error,
                                       const NumericsOptions &numerics = {});

/// The targets users can name, for --help and errors.
std::string describeTargets();

} // namespace kiln

#endif // KILN_BACKENDS_BACKEND_H
