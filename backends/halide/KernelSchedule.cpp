// The schedule knobs of a kernel, the heuristic default, and their application.
#include "backends/halide/KernelSchedule.h"

#include <sstream>

namespace kiln::halide {

namespace {
// Below this many output elements a kernel is not worth waking the thread pool for.
constexpr int64_t kParallelThreshold = 16 * 1024;

int64_t elements(const std::vector<int64_t> &shape) {
  int64_t n = 1;
  for (int64_t d : shape)
    n *= d;
  return n;
}

/// Applies vectorization and parallelism to one definition (pure or update) of a stage.
void placeDefinition(Halide::Stage stage, const std::vector<Halide::Var> &args,
                     const std::vector<int64_t> &shape, const KernelSchedule &schedule) {
  if (args.empty())
    return;
  // args are in Halide order: args[0] is innermost, i.e. shape.back().
  if (schedule.vectorWidth > 1 && shape.back() >= schedule.vectorWidth)
    stage.vectorize(args[0], static_cast<int>(schedule.vectorWidth),
                    Halide::TailStrategy::GuardWithIf);
  if (schedule.parallel && args.size() >= 2 && elements(shape) >= kParallelThreshold &&
      shape.front() > 1) {
    if (schedule.parallelGrain > 1)
      stage.parallel(args.back(), static_cast<int>(schedule.parallelGrain),
                     Halide::TailStrategy::GuardWithIf);
    else
      stage.parallel(args.back());
  }
}
} // namespace

std::vector<Knob> KernelSchedule::space() {
  return {{"vector_width", {1, 4, 8, 16, 32}},
          {"parallel", {0, 1}},
          {"parallel_grain", {1, 2, 4, 8, 16}},
          {"reduction_unroll", {1, 2, 4, 8}}};
}

std::string KernelSchedule::str() const {
  std::ostringstream os;
  os << "vector_width=" << vectorWidth << " parallel=" << parallel
     << " parallel_grain=" << parallelGrain << " reduction_unroll=" << reductionUnroll;
  return os.str();
}

KernelSchedule defaultSchedule(const LoweredKernel &kernel, const Halide::Target &target) {
  KernelSchedule schedule;
  Halide::Type widest = Halide::Int(8);
  for (const Halide::Func &output : kernel.outputs)
    for (const Halide::Type &t : output.output_types())
      if (t.bits() > widest.bits())
        widest = t;
  schedule.vectorWidth = std::max(1, target.natural_vector_size(widest));
  return schedule;
}

void applySchedule(LoweredKernel &kernel, const KernelSchedule &schedule) {
  for (Stage &stage : kernel.stages) {
    Halide::Func &f = stage.func;
    if (!stage.isOutput)
      f.compute_root();
    std::vector<Halide::Var> args = f.args();
    placeDefinition(f, args, stage.shape, schedule);
    for (int u = 0; u < f.num_update_definitions(); ++u) {
      Halide::Stage update = f.update(u);
      placeDefinition(update, args, stage.shape, schedule);
      if (schedule.reductionUnroll > 1 && !f.rvars(u).empty())
        update.unroll(f.rvars(u).front(), static_cast<int>(schedule.reductionUnroll),
                      Halide::TailStrategy::GuardWithIf);
    }
  }
}

} // namespace kiln::halide
