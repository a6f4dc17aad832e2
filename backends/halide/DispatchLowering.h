// Translates one kiln.dispatch region into a Halide pipeline (the algorithm only; the
// schedule is applied separately from a KernelSchedule).
#ifndef KILN_BACKENDS_HALIDE_DISPATCHLOWERING_H
#define KILN_BACKENDS_HALIDE_DISPATCHLOWERING_H

#include "dialects/Kiln/KilnDialect.h"

#include <Halide.h>
#include <functional>
#include <string>
#include <vector>

namespace kiln::halide {

struct KernelSchedule;

/// A Func of the kernel with the static shape of the tensor it computes (MLIR order,
/// outermost first; Halide's argument order is the reverse).
struct Stage {
  Halide::Func func;
  std::vector<int64_t> shape;
  bool isOutput = false;
  /// For a reduction whose only reader is an output copying it: that output's name.
  std::string tiledInto;
  /// Points of the update's reduction domain (1 for a pure stage): the work per element.
  int64_t reductionSize = 1;
  /// Elements per block of the packed weights this reduction decodes as it reads
  /// them along its reduction loop (0: it reads no packed weight).
  int64_t decodedBlock = 0;
  /// The output dimension (Halide argument index, 0 innermost) whose points a register
  /// tile of this reduction takes as its rows: one the operands read along the
  /// innermost dimension (the vectors) do not depend on, so each vector loaded serves
  /// every row of the tile (a matmul's rows, a convolution's output channels).
  int tileRowArg = 1;
  /// A tensor the reduction reads along the innermost output dimension (a matmul's B):
  /// a tiled schedule may copy the part a panel of columns reads into a dense buffer.
  struct VectorOperand {
    Halide::Func func;
    /// Its argument (Halide index) that the output's innermost dimension indexes: not 0
    /// when consecutive columns are far apart in memory (attention's keys, read
    /// [t, head, d] for scores [s, head, t]), which the dense copy then stores innermost.
    int columnArg = 0;
  };
  std::vector<VectorOperand> vectorOperands = {};
  /// A stage whose schedule the lowering built with its algorithm, called instead of
  /// the generic placement: the integer matrix-vector product (computed at root, its
  /// producers placed inside) and kiln.cache_write's output (rows chosen at run time,
  /// never split across threads by rows it may not write).
  std::function<void(const KernelSchedule &)> placeItself = {};
  /// A self-placed product's placement inside `output`, an output of the same shape
  /// that reads it pointwise (tiledInto): its loops over the result then run in the
  /// output, which the result is inlined into (no buffer and copy of its own).
  std::function<void(const KernelSchedule &, Halide::Func output)> placeIntoOutput = {};
  /// placeItself is a product's (placeProduct): it reads only the knobs parallel,
  /// product_panel and product_rows (KernelSchedule::knobsFor).
  bool placesProduct = false;
};

/// The Halide algorithm of one dispatch: one ImageParam per dispatch input (in order),
/// one output Func per dispatch result (in order), and the stages a schedule must place
/// (outputs and every reduction; pure intermediate stages are inlined).
struct LoweredKernel {
  std::string name;
  std::vector<Halide::ImageParam> inputs;
  std::vector<Halide::Func> outputs;
  std::vector<Stage> stages;
  /// What the algorithm depends on outside the dispatch's body (which results are
  /// written in place over state); part of the kernel's identity with the body.
  std::string context;
  /// Funcs a GPU schedule computes on the host before the kernel's GPU stages (the
  /// 64-bit integer inputs narrowed for a GPU without 64-bit integers); the CPU
  /// inlines them like any pure Func.
  std::vector<Halide::Func> hostStages;

  Halide::Pipeline pipeline() const { return Halide::Pipeline(outputs); }
  /// The stage computing the Func named `name`, or null.
  Stage *stage(const std::string &name);
  const Stage *stage(const std::string &name) const;
  std::vector<Halide::Argument> arguments() const;
};

/// What the target lets the algorithm use beyond Halide's portable operations.
struct LoweringOptions {
  /// Convert f16 scalars (the scales of packed blocks) with the CPU's instruction
  /// (x86 F16C, arm64 FCVT) through LLVM's `llvm.convert.from.fp16` intrinsic. Halide 14
  /// emulates every f16 conversion on x86 with ~20 integer instructions, which made a
  /// Q8_0 matrix-vector product compute-bound on the scale of each 32-value block.
  bool hardwareHalfToFloat = false;
  /// One-row products with packed block weights (q8_0, q4_0, q5_0, q4_k, q6_k: a
  /// decode step's projections) quantize the activation row to 8-bit blocks of 32 with
  /// an f32 scale, as llama.cpp does, and take integer dot products of the blocks
  /// (vpdpbusd with AVX512-VNNI or AVX-VNNI): 1.4-2x faster than decoding the weights
  /// to f32, within the activations' rounding (~0.4% of a dot product) of that path.
  bool int8Activations = false;
  /// The target has 4-way byte dot products that Halide 14 emits (vpdpbusd: its
  /// AVX512_SapphireRapids feature); elsewhere the integer path uses 2-way int16 ones.
  bool integerDot4 = false;
  /// The GPU has no 64-bit integers (Metal): 64-bit integer inputs (positions, cache
  /// offsets) are narrowed to 32 bits on the host (LoweredKernel::hostStages), so the
  /// device code never loads one.
  bool narrow64BitInputs = false;

  /// The options `target` supports.
  static LoweringOptions forTarget(const Halide::Target &target);
};

/// Whether `dispatch` reduces (a contraction, a norm, attention: a linalg op with
/// reduction loops or a named kiln op, which carries its own loops); an elementwise
/// kernel's schedule has fewer knobs that change its code.
bool dispatchReduces(DispatchOp dispatch);

/// Builds the Halide algorithm for `dispatch`, or emits an error at the first op it
/// cannot translate (naming the op) and fails.
mlir::FailureOr<LoweredKernel> lowerDispatch(DispatchOp dispatch, llvm::StringRef name,
                                             const LoweringOptions &options = {});

} // namespace kiln::halide

#endif // KILN_BACKENDS_HALIDE_DISPATCHLOWERING_H
