// Schedules as data for GPU targets (CUDA, Metal): the knobs, their space, and how a
// schedule places every stage of a lowered kernel on the GPU.
#ifndef KILN_BACKENDS_HALIDE_GPUSCHEDULE_H
#define KILN_BACKENDS_HALIDE_GPUSCHEDULE_H

#include "backends/halide/DispatchLowering.h"
#include "backends/halide/KernelSchedule.h"

#include <string>
#include <vector>

namespace kiln::halide {

/// How a kernel runs on a GPU. Every stage the kernel stores (its outputs, its
/// reductions, anything Halide cannot inline) is one launch over all of its points:
/// its dimensions fused into one index, innermost fastest, so that neighbouring
/// threads touch neighbouring elements (coalesced), cut into blocks of `threads`; each
/// thread runs its point's reduction loop. A stage with no dimension a thread may own
/// (a whole-tensor reduction) runs on one GPU thread. Products large enough run in
/// tiles with an operand staged in shared memory (`tile`).
struct GpuSchedule {
  /// Threads per block.
  int64_t threads = 256;
  /// Unroll factor of the innermost reduction loop of each thread (1: none).
  int64_t reductionUnroll = 1;
  /// Products over at least this many rows and columns (a matmul, attention's
  /// scores and context, tiled into their reader) run in square tiles of this many
  /// rows and columns per block, one thread per output, the reduction taken this
  /// many steps at a time with the slice of the operand read along the columns (a
  /// matmul's B, attention's keys) staged in shared memory, where every row of the
  /// tile reads it; 0: no tiles.
  int64_t tile = 16;
  /// For a backend with a GEMM library (cuBLAS on CUDA): whether a dispatch that
  /// kiln-mark-library-products gave to the library is computed by it (1) or by this
  /// kernel alone (0). A knob only where the backend has a library (`hasLibrary`).
  int64_t library = 1;
  bool hasLibrary = false;

  /// The knobs and their candidate values, in field order (`gpu_library` last, with
  /// a library).
  static std::vector<Knob> space(bool hasLibrary = false);
  /// The knobs that change the code of a kernel that reduces or not (elementwise:
  /// `gpu_threads` alone), and whose dispatch a library computes (`gpu_library`, with
  /// `hasLibrary`) or not: what a tuner searches for it.
  std::vector<std::string> knobsFor(bool reduces, bool libraryDispatch) const;
  /// "gpu_threads=256 gpu_reduction_unroll=1".
  std::string str() const;
  /// As KernelSchedule::set: sets the knobs `text` names, or says what is wrong.
  std::string set(llvm::StringRef text);
};

/// Places every stored stage of `kernel` on the GPU as `schedule` says. The
/// lowering's CPU placements (`Stage::placeItself`) are not used: the algorithm is
/// the same, only where and in what order it is computed differs.
void applyGpuSchedule(LoweredKernel &kernel, const GpuSchedule &schedule);

} // namespace kiln::halide

#endif // KILN_BACKENDS_HALIDE_GPUSCHEDULE_H
