// Schedules as data: the named knobs of a kernel's schedule, its search space, the
// heuristic default, and how a schedule is applied to a lowered kernel.
#ifndef KILN_BACKENDS_HALIDE_KERNELSCHEDULE_H
#define KILN_BACKENDS_HALIDE_KERNELSCHEDULE_H

#include "backends/halide/DispatchLowering.h"

#include "llvm/ADT/SmallVector.h"
#include "llvm/ADT/StringRef.h"

#include <string>
#include <vector>

namespace kiln::halide {

/// One named integer knob and the values the autotuner may give it.
struct Knob {
  std::string name;
  std::vector<int64_t> values;
};

/// A schedule's knob: its name, its field in schedule type S, the values it may take.
/// A schedule type keeps one table of these, which its space(), str() and set() read.
template <typename S> struct KnobField {
  const char *name;
  int64_t S::*field;
  std::vector<int64_t> values;
};

/// "name: v1 v2 ..." per knob, as Backend::describeScheduleSpace prints it.
std::string describeKnobs(const std::vector<Knob> &knobs);

/// The knobs of `fields` and their values.
template <typename S> std::vector<Knob> knobSpace(const std::vector<KnobField<S>> &fields) {
  std::vector<Knob> knobs;
  for (const KnobField<S> &f : fields)
    knobs.push_back({f.name, f.values});
  return knobs;
}

/// "name=value ..." of every knob of `fields`, in their order.
template <typename S>
std::string knobsText(const S &schedule, const std::vector<KnobField<S>> &fields) {
  std::string text;
  for (const KnobField<S> &f : fields)
    text += (text.empty() ? "" : " ") + std::string(f.name) + "=" +
            std::to_string(schedule.*f.field);
  return text;
}

/// What is wrong with the knob `name`=`value` of `fields` (unknown, not an integer,
/// outside its space), or empty; the field it names in `found`.
std::string checkKnob(llvm::StringRef name, llvm::StringRef value,
                      const std::vector<std::pair<const char *, const std::vector<int64_t> *>> &knobs,
                      size_t &found, int64_t &number);

/// Sets the knobs `text` names ("a=1 b=2"; the others keep their values), or returns
/// what is wrong with it.
template <typename S>
std::string setKnobs(S &schedule, llvm::StringRef text, const std::vector<KnobField<S>> &fields) {
  std::vector<std::pair<const char *, const std::vector<int64_t> *>> knobs;
  for (const KnobField<S> &f : fields)
    knobs.push_back({f.name, &f.values});
  llvm::SmallVector<llvm::StringRef> tokens;
  text.split(tokens, ' ', -1, /*KeepEmpty=*/false);
  for (llvm::StringRef token : tokens) {
    size_t found = 0;
    int64_t number = 0;
    std::string error = checkKnob(token.split('=').first, token.split('=').second, knobs, found,
                                  number);
    if (!error.empty())
      return error;
    schedule.*fields[found].field = number;
  }
  return "";
}

/// How a kernel runs. Every field is a knob of the schedule space.
struct LoweredKernel;

struct KernelSchedule {
  /// SIMD lanes along the innermost output dimension (1: scalar code).
  int64_t vectorWidth = 8;
  /// Parallelize the outermost output dimension across threads (0 or 1).
  int64_t parallel = 1;
  /// Outermost rows per parallel task.
  int64_t parallelGrain = 1;
  /// Unroll factor of the innermost reduction loop (1: none).
  int64_t reductionUnroll = 1;
  /// Output tile (columns in vectors, rows) that a reduction feeding an output is
  /// computed in, so its accumulators stay in registers; 0 computes it whole first.
  int64_t tileVectors = 2;
  int64_t tileRows = 4;
  /// Columns of a tiled reduction's output are taken in panels whose operand read
  /// along them (a matmul's B, the whole reduction deep) fits this many KiB, so the
  /// panel stays in the L2 cache while every tile row of the output passes over it;
  /// 0: one panel.
  int64_t panelKiB = 256;
  /// Output rows that one streamed pass over a packed weight row serves (each keeps
  /// vectorWidth partial sums in a register); 0 tiles such products like any other.
  int64_t streamRows = 8;
  /// Independent partial-sum chains a streamed tile keeps at least (rows, or blocks of
  /// a row interleaved when the tile has fewer rows): enough to hide the add latency.
  int64_t streamChains = 4;
  /// Products over several rows that decode or widen their weights into a panel first
  /// (packed x16 layouts, f16/bf16/f32 weights under 64 rows): values of the depth per
  /// panel and rows per register tile; 0 keeps the lowering's default (512 and 8 rows
  /// for packed weights, 512 and 4 for float ones).
  int64_t productPanel = 0;
  int64_t productRows = 0;
  /// 1: a register tile's columns are one Halide vector of the tile's width
  /// (tileVectors * vectorWidth lanes, which LLVM splits into native registers) rather
  /// than tileVectors vectors of vectorWidth lanes, which Halide leaves as a loop. The
  /// same registers either way; on outputs the tile overhangs (the convnet's 28- and
  /// 56-wide convolutions in 16-column tiles) one 16-lane vector ran 1.00-1.09x faster on
  /// AVX2, on BERT's 768-column products (no overhang) 0.87-1.00x. The default is 1 where
  /// the tile overhangs.
  int64_t tileLanes = 0;

  /// The knobs and their candidate values, in field order.
  static std::vector<Knob> space();
  /// The knobs that change the code of a kernel that reduces (a contraction, a norm,
  /// attention: every knob) or does not (elementwise: placed by its vector width and
  /// parallel split alone): what a tuner searches for it.
  static std::vector<std::string> knobsFor(bool reduces);
  /// The same, narrowed by how `kernel`'s stages are placed (applySchedule): a product
  /// that places itself reads parallel, product_panel and product_rows; the register
  /// tile's knobs exist for a tiled reduction, stream_rows and stream_chains for one
  /// over packed blocks. On Gemma 3's decode products 3 of the 11 knobs change the code:
  /// a search over all 11 spent most of its trials on artifacts it had measured.
  static std::vector<std::string> knobsFor(const LoweredKernel &kernel, bool reduces);
  /// "vector_width=8 parallel=1 ..." for reports and the tuning database.
  std::string str() const;
  /// Sets the knobs `text` names ("tile_rows=8 tile_vectors=3", str()'s form; knobs
  /// not named keep their values). Returns what is wrong with `text` (an unknown knob,
  /// a value outside the knob's space) or an empty string.
  std::string set(llvm::StringRef text);
};

/// A sensible schedule without tuning: native vector width of the output type,
/// parallel when there is enough work to amortize the thread pool.
KernelSchedule defaultSchedule(const LoweredKernel &kernel, const Halide::Target &target);

/// Places every stage of `kernel` according to `schedule`.
void applySchedule(LoweredKernel &kernel, const KernelSchedule &schedule);

} // namespace kiln::halide

#endif // KILN_BACKENDS_HALIDE_KERNELSCHEDULE_H
