// The schedule knobs of a kernel, the heuristic default, and their application.
#include "backends/halide/KernelSchedule.h"

#include <algorithm>
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

/// Applies vectorization and parallelism to one definition (pure or update) of a stage
/// computing `work` scalar operations: threads take the outermost dimension with more
/// than one row, or — when only the innermost has (a matrix-vector product while
/// decoding one token) — chunks of the innermost dimension.
void placeDefinition(Halide::Stage stage, const std::vector<Halide::Var> &args,
                     const std::vector<int64_t> &shape, int64_t work,
                     const KernelSchedule &schedule) {
  if (args.empty())
    return;
  // args are in Halide order: args[0] is innermost, i.e. shape.back().
  int vector = static_cast<int>(schedule.vectorWidth);
  bool vectorize = vector > 1 && shape.back() >= vector;
  bool parallel = schedule.parallel && work >= kParallelThreshold;
  int outer = -1;
  for (int d = static_cast<int>(args.size()) - 1; d >= 1 && parallel; --d)
    if (shape[args.size() - 1 - d] > 1) {
      outer = d;
      break;
    }
  if (parallel && outer < 0 && shape.back() >= 4 * std::max(vector, 1)) {
    // Split into vectors first, then the vectors into about 16 chunks. The other
    // nesting (chunks of columns, each vectorized) is wrong in Halide 14 for update
    // definitions when the chunk does not divide the row: the last chunk's guarded
    // vector loop clamps every vector onto the last in-bounds one, so a reduction adds
    // its terms there several times (seen on a [1, 640] matvec: chunks of 48 columns,
    // columns 624..639 summed three times).
    int lanes = std::max(vector, 1);
    int64_t vectors = (shape.back() + lanes - 1) / lanes;
    int64_t perChunk = std::max<int64_t>(1, (vectors + 15) / 16);
    Halide::Var lane(args[0].name() + "_lane"), vectorIndex(args[0].name() + "_v"),
        chunks(args[0].name() + "_chunk"), inside(args[0].name() + "_in");
    stage.split(args[0], vectorIndex, lane, lanes, Halide::TailStrategy::GuardWithIf)
        .split(vectorIndex, chunks, inside, static_cast<int>(perChunk),
               Halide::TailStrategy::GuardWithIf)
        .parallel(chunks);
    if (vectorize)
      stage.vectorize(lane);
    return;
  }
  if (vectorize)
    stage.vectorize(args[0], vector, Halide::TailStrategy::GuardWithIf);
  if (outer >= 0) {
    if (schedule.parallelGrain > 1)
      stage.parallel(args[outer], static_cast<int>(schedule.parallelGrain),
                     Halide::TailStrategy::GuardWithIf);
    else
      stage.parallel(args[outer]);
  }
}

} // namespace

std::vector<Knob> KernelSchedule::space() {
  return {{"vector_width", {1, 4, 8, 16, 32}},
          {"parallel", {0, 1}},
          {"parallel_grain", {1, 2, 4, 8, 16}},
          {"reduction_unroll", {1, 2, 4, 8}},
          {"tile_vectors", {0, 1, 2, 4}},
          {"tile_rows", {1, 2, 4, 6, 8}},
          {"stream_rows", {0, 1, 2, 4, 8, 12}},
          {"stream_chains", {1, 2, 4, 8}}};
}

std::string KernelSchedule::str() const {
  std::ostringstream os;
  os << "vector_width=" << vectorWidth << " parallel=" << parallel
     << " parallel_grain=" << parallelGrain << " reduction_unroll=" << reductionUnroll
     << " tile_vectors=" << tileVectors << " tile_rows=" << tileRows
     << " stream_rows=" << streamRows << " stream_chains=" << streamChains;
  return os.str();
}

namespace {
/// Whether `f`'s only update adds a term to its running value (`f(x) = f(x) + e`), the
/// associative form that rfactor can split into partial sums.
bool updatesBySum(const Halide::Func &f) {
  const auto *add = f.update_value(0).as<Halide::Internal::Add>();
  auto isSelf = [&](const Halide::Expr &e) {
    const auto *call = e.as<Halide::Internal::Call>();
    return call && call->name == f.name();
  };
  return add && (isSelf(add->a) || isSelf(add->b));
}

/// A product of rows with packed weights ([M, N] or [N] output, one reduction loop
/// along the packed rows, as in every projection of a transformer): each output
/// column's packed weight row is streamed once per tile of streamRows output rows,
/// decoded a vector at a time with the block's scales and byte offsets constant (the
/// loop over a block's vectors is unrolled), and each decoded vector multiplies the
/// tile's rows (unrolled) into vectorWidth partial sums per row (rfactor), summed once
/// at the end. Nothing is staged in memory: with one row (decoding one token) this is
/// a streaming matrix-vector product. Threads take chunks of output columns. Returns
/// false (and schedules nothing) when the reduction does not fit that shape.
bool streamPackedRows(Stage &reduction, Stage &output, const KernelSchedule &schedule) {
  const std::vector<int64_t> &shape = output.shape;
  Halide::Func &out = output.func, &red = reduction.func;
  int vector = static_cast<int>(schedule.vectorWidth);
  if (shape.empty() || shape.size() > 2 || red.num_update_definitions() != 1 ||
      red.rvars(0).size() != 1 || vector <= 1 || !updatesBySum(red))
    return false;
  int64_t block = reduction.decodedBlock;
  if (block <= 0 || block % vector != 0 || schedule.streamRows <= 0)
    return false;
  std::vector<Halide::Var> args = out.args();
  int64_t columns = shape.back(), rows = shape.size() == 2 ? shape.front() : 1;
  int64_t tileRows = std::min(schedule.streamRows, rows);
  int64_t chunk = std::max<int64_t>(vector, (columns / 16 + vector - 1) / vector * vector);
  Halide::Var chunks(args[0].name() + "_chunk"), column(args[0].name() + "_in");
  out.split(args[0], chunks, column, static_cast<int>(std::min(chunk, columns)),
            Halide::TailStrategy::GuardWithIf);
  if (shape.size() == 2) {
    Halide::Var rowTiles(args[1].name() + "_tile"), row(args[1].name() + "_in");
    out.split(args[1], rowTiles, row, static_cast<int>(tileRows))
        .reorder(row, column, rowTiles, chunks);
  }
  if (schedule.parallel && elements(shape) * reduction.reductionSize >= kParallelThreshold)
    out.parallel(chunks);
  red.compute_at(out, column);
  // Each row's partial sums are a chain of dependent adds; a tile of fewer than
  // streamChains rows also interleaves that many blocks of the weight row, each with
  // partial sums of its own, so that enough independent chains hide the add latency.
  int64_t blocksPerRow = reduction.reductionSize / block, interleave = 1;
  for (int64_t a = std::max<int64_t>(1, schedule.streamChains / tileRows); a > 1; --a)
    if (blocksPerRow % a == 0) {
      interleave = a;
      break;
    }
  std::vector<Halide::Var> redArgs = red.args();
  Halide::RVar k = red.rvars(0).front(), kv("kv"), klane("klane"), kb("kb"), kvb("kvb"),
               kbo("kbo"), kbi("kbi");
  Halide::Var lane("lane"), part("part");
  Halide::Stage split = red.update(0);
  split.split(k, kv, klane, vector).split(kv, kb, kvb, static_cast<int>(block / vector));
  std::vector<std::pair<Halide::RVar, Halide::Var>> partials{{klane, lane}};
  if (interleave > 1) {
    split.split(kb, kbo, kbi, static_cast<int>(interleave));
    partials.push_back({kbi, part});
  }
  Halide::Func partial = split.rfactor(partials);
  // Lanes innermost in the partial sums, so that each row's sums are one vector.
  std::vector<Halide::Var> storage{lane};
  for (const Halide::Var &v : partial.args())
    if (v.name() != lane.name())
      storage.push_back(v);
  partial.compute_at(red, Halide::Var::outermost()).reorder_storage(storage).vectorize(lane);
  Halide::Stage update = partial.update(0);
  std::vector<Halide::VarOrRVar> order{lane};
  if (interleave > 1)
    order.push_back(part);
  if (shape.size() == 2)
    order.push_back(redArgs[1]);
  order.push_back(kvb);
  order.push_back(interleave > 1 ? kbo : kb);
  order.push_back(redArgs[0]);
  update.reorder(order).vectorize(lane).unroll(kvb);
  if (interleave > 1)
    update.unroll(part);
  if (shape.size() == 2)
    update.unroll(redArgs[1]);
  // The partial sums are added up across lanes by vector reductions: as a chain of
  // scalar adds (64 dependent adds per output column, ~4 cycles each) they cost more
  // than streaming the column's weight row (Gemma's 262,144-row output projection).
  red.update(0).atomic().vectorize(klane);
  return true;
}

/// Computes `reduction` tile by tile inside `output`: output tiles of
/// tileVectors*vectorWidth x tileRows, the reduction's pure and update definitions
/// vectorized along the columns and unrolled along the rows with the reduction loops
/// outside them, so the tile's accumulators live in registers. Returns false (and
/// schedules nothing) when the output is too small for one tile.
bool tileReductionIntoOutput(Stage &reduction, Stage &output, const KernelSchedule &schedule) {
  int64_t width = schedule.tileVectors * schedule.vectorWidth, rows = schedule.tileRows;
  const std::vector<int64_t> &shape = output.shape;
  if (width <= 0 || rows <= 0 || shape.size() < 2 || shape.back() < width ||
      shape[shape.size() - 2] < rows)
    return false;
  Halide::Func &out = output.func, &red = reduction.func;
  std::vector<Halide::Var> args = out.args();
  Halide::Var xo("xo"), yo("yo"), xi("xi"), yi("yi");
  out.tile(args[0], args[1], xo, yo, xi, yi, static_cast<int>(width), static_cast<int>(rows))
      .vectorize(xi, static_cast<int>(schedule.vectorWidth))
      .unroll(yi);
  if (schedule.parallel && elements(shape) >= kParallelThreshold)
    out.parallel(args.size() > 2 ? args.back() : Halide::VarOrRVar(yo));
  red.compute_at(out, xo);
  std::vector<Halide::Var> inner = red.args();
  red.vectorize(inner[0], static_cast<int>(schedule.vectorWidth)).unroll(inner[1]);
  for (int u = 0; u < red.num_update_definitions(); ++u) {
    Halide::Stage update = red.update(u);
    std::vector<Halide::VarOrRVar> order{inner[0], inner[1]};
    for (const Halide::RVar &r : red.rvars(u))
      order.push_back(r);
    for (size_t d = 2; d < inner.size(); ++d)
      order.push_back(inner[d]);
    update.reorder(order).vectorize(inner[0], static_cast<int>(schedule.vectorWidth)).unroll(inner[1]);
  }
  return true;
}
} // namespace

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
  std::vector<std::string> tiled;
  for (Stage &stage : kernel.stages) {
    if (stage.placeItself) {
      stage.placeItself(schedule);
      tiled.push_back(stage.func.name());
      continue;
    }
    if (stage.tiledInto.empty())
      continue;
    auto output = std::find_if(kernel.stages.begin(), kernel.stages.end(),
                               [&](const Stage &s) { return s.func.name() == stage.tiledInto; });
    if (output != kernel.stages.end() && (streamPackedRows(stage, *output, schedule) ||
                                          tileReductionIntoOutput(stage, *output, schedule))) {
      tiled.push_back(stage.func.name());
      tiled.push_back(output->func.name());
    }
  }
  for (Stage &stage : kernel.stages) {
    Halide::Func &f = stage.func;
    if (std::find(tiled.begin(), tiled.end(), f.name()) != tiled.end())
      continue;
    if (!stage.isOutput)
      f.compute_root();
    std::vector<Halide::Var> args = f.args();
    placeDefinition(f, args, stage.shape, elements(stage.shape), schedule);
    for (int u = 0; u < f.num_update_definitions(); ++u) {
      Halide::Stage update = f.update(u);
      placeDefinition(update, args, stage.shape, elements(stage.shape) * stage.reductionSize,
                      schedule);
      if (schedule.reductionUnroll > 1 && !f.rvars(u).empty())
        update.unroll(f.rvars(u).front(), static_cast<int>(schedule.reductionUnroll),
                      Halide::TailStrategy::GuardWithIf);
    }
  }
}

} // namespace kiln::halide
