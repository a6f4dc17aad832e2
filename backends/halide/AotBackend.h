// What every Halide ahead-of-time backend shares: dispatches lowered once per kernel
// fingerprint, kernels compiled in parallel threads (optionally from a cache of
// objects) for each of the backend's Halide targets, Halide's standalone runtime for
// each target, and one linked code object per target. A backend supplies its targets,
// its schedules (as data: text for the fingerprint, applied to the lowered kernel) and
// how its objects are linked.
#ifndef KILN_BACKENDS_HALIDE_AOTBACKEND_H
#define KILN_BACKENDS_HALIDE_AOTBACKEND_H

#include "backends/Backend.h"
#include "backends/halide/DispatchLowering.h"

#include "llvm/ADT/StringMap.h"

#include <Halide.h>
#include <functional>
#include <string>
#include <vector>

namespace kiln::halide {

class AotBackend : public Backend {
public:
  /// Compiles for each of `targets` (at least one; a code object each) into code
  /// objects for `device` in `format`.
  AotBackend(std::string device, std::vector<Halide::Target> targets, std::string format,
             const LoweringOptions &lowering);

  llvm::StringRef name() const override { return device; }
  /// The Halide target strings, joined by ','.
  std::string target() const override;
  mlir::LogicalResult supports(mlir::Operation *op) const override { return mlir::success(); }
  mlir::FailureOr<KernelInfo> addKernel(DispatchOp dispatch) override;
  mlir::FailureOr<std::string> printKernels(mlir::Location loc) override;
  mlir::FailureOr<std::vector<CodeObject>>
  emitCodeObjects(mlir::Location loc, const CompileOptions &options) override;

protected:
  /// A kernel's schedule: its text (part of the kernel's fingerprint and what reports
  /// show) and how it is applied to the lowered kernel.
  struct Schedule {
    std::string text;
    std::function<void(LoweredKernel &)> apply;
    /// A simpler schedule to compile the kernel with if Halide fails on this one
    /// (its internal errors on some placements), or none.
    std::function<void(LoweredKernel &)> fallback = {};
    std::string fallbackText = {};
    /// Non-empty: a dispatch kiln-mark-library-products marked (`kiln.library`) is
    /// computed by the library where the runtime has it, with this LibraryCall compute
    /// ("f32", "tf32").
    std::string libraryCompute = {};
    /// The knobs that change this kernel's code (KernelInfo::knobs).
    std::vector<std::string> knobs = {};
  };
  /// The schedule of `kernel` (lowered from `dispatch`): the backend's default, over
  /// which the knobs of the dispatch's `kiln.schedule` attribute are set. Emits an
  /// error at the dispatch and fails for knobs the backend does not have.
  virtual mlir::FailureOr<Schedule> chooseSchedule(const LoweredKernel &kernel,
                                                   DispatchOp dispatch) = 0;
  /// Links `objects` (the kernels and Halide's runtime, built for `target`) into the
  /// code object `output`; the default links an ELF shared object for the host (with
  /// the C compiler driver and libm) or, for another machine, with ld.lld alone.
  virtual mlir::LogicalResult link(mlir::Location loc, const Halide::Target &target,
                                   const std::vector<std::string> &objects,
                                   const std::string &output, const std::string &logPath);

  /// Runs `program args...`, its output captured into `logPath`; an error names
  /// `what` and carries the log.
  static mlir::LogicalResult runTool(mlir::Location loc, llvm::StringRef what,
                                     llvm::StringRef program,
                                     llvm::ArrayRef<std::string> args, llvm::StringRef logPath);

  const std::vector<Halide::Target> &targets() const { return halideTargets; }

private:
  struct AddedKernel {
    LoweredKernel lowered;
    KernelInfo info;
    std::string fingerprint;
    /// The dispatch (alive while its module is emitted) and the fallback schedule, to
    /// lower and compile the kernel again if Halide fails on its schedule.
    DispatchOp dispatch;
    Schedule schedule;
  };

  /// Kernels share one standalone Halide runtime, so they are compiled without their own.
  static Halide::Target codeTarget(const Halide::Target &target) {
    return target.with_feature(Halide::Target::NoRuntime);
  }
  mlir::FailureOr<std::vector<std::string>>
  compileKernels(mlir::Location loc, const Halide::Target &target, llvm::StringRef directory,
                 const CompileOptions &options, std::vector<DeviceSource> &sources);
  std::string cacheIdentity(const AddedKernel &kernel, const Halide::Target &target) const;
  /// Compiles `kernel` into `object` for `target`; its GPU code into `gpuCode`. Throws
  /// Halide::Error.
  static void compileKernel(const AddedKernel &kernel, const Halide::Target &target,
                            const std::string &object, std::string &gpuCode);

  std::string device;
  std::vector<Halide::Target> halideTargets;
  std::string format;
  LoweringOptions lowering;
  std::vector<AddedKernel> kernels;
  unsigned dispatchesAdded = 0;
  /// Kernels by the whole text of their fingerprint, so that equal hashes never merge
  /// different kernels.
  llvm::StringMap<unsigned> kernelByFingerprint;
};

/// An AotBackend for a GPU target: kernels placed by GpuSchedule (the default, over
/// which a dispatch's `kiln.schedule` knobs are set; without tiles if Halide fails on
/// the tiled form).
class GpuAotBackend : public AotBackend {
public:
  using AotBackend::AotBackend;
  std::string describeScheduleSpace() const override;

protected:
  mlir::FailureOr<Schedule> chooseSchedule(const LoweredKernel &kernel,
                                           DispatchOp dispatch) override;
  /// The backend's GEMM library computes marked dispatches with this LibraryCall
  /// compute ("f32", "tf32"); empty (the default): no library, no `gpu_library` knob.
  std::string libraryCompute;
};

/// Halide's host target, less the features this CPU lacks that Halide assumes.
Halide::Target hostTarget();

/// Halide's standalone runtime for `target`, compiled once and kept in
/// $XDG_CACHE_HOME/kiln/halide-runtime (or ~/.cache/kiln); without a cache it is
/// compiled into `scratch`. Throws Halide::Error.
std::string standaloneRuntime(const Halide::Target &target, llvm::StringRef scratch);

} // namespace kiln::halide

#endif // KILN_BACKENDS_HALIDE_AOTBACKEND_H
