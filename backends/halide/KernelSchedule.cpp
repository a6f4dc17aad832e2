// The schedule knobs of a kernel, the heuristic default, and their application.
#include "backends/halide/KernelSchedule.h"

#include <algorithm>
#include <set>
#include <sstream>

namespace kiln::halide {

namespace {
// Below this many output elements a kernel is not worth waking the thread pool for.
constexpr int64_t kParallelThreshold = 16 * 1024;
/// The least work (scalar operations) worth one task of a parallel loop.
constexpr int64_t kMinTaskWork = 4 * 1024;

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
    // Each task at least kMinTaskWork operations: the pool hands out one iteration per
    // atomic increment, and a [4096, 16] state copy split into 4096 tasks of 16 values
    // ran 4x slower at 2 threads than at 1 (a Mamba decode step's selective scan: 188
    // vs 45 us).
    int64_t rows = shape[args.size() - 1 - outer];
    int64_t perRow = std::max<int64_t>(1, work / std::max<int64_t>(1, rows));
    int64_t grain = std::max<int64_t>(schedule.parallelGrain, (kMinTaskWork + perRow - 1) / perRow);
    if (grain > 1)
      stage.parallel(args[outer], static_cast<int>(std::min(grain, rows)),
                     Halide::TailStrategy::GuardWithIf);
    else
      stage.parallel(args[outer]);
  }
}

/// Each knob's name, field and candidate values, in field order.
const std::vector<KnobField<KernelSchedule>> &knobFields() {
  static const std::vector<KnobField<KernelSchedule>> fields = {
      {"vector_width", &KernelSchedule::vectorWidth, {1, 4, 8, 16, 32}},
      {"parallel", &KernelSchedule::parallel, {0, 1}},
      {"parallel_grain", &KernelSchedule::parallelGrain, {1, 2, 4, 8, 16}},
      {"reduction_unroll", &KernelSchedule::reductionUnroll, {1, 2, 4, 8}},
      {"tile_vectors", &KernelSchedule::tileVectors, {0, 1, 2, 3, 4}},
      {"tile_rows", &KernelSchedule::tileRows, {1, 2, 4, 6, 8, 12, 16, 24}},
      {"panel_kib", &KernelSchedule::panelKiB, {0, 64, 128, 256, 512, 1024}},
      {"stream_rows", &KernelSchedule::streamRows, {0, 1, 2, 4, 8, 12}},
      {"stream_chains", &KernelSchedule::streamChains, {1, 2, 4, 8}},
      {"product_panel", &KernelSchedule::productPanel, {0, 128, 256, 512, 1024}},
      {"product_rows", &KernelSchedule::productRows, {0, 2, 4, 8, 12, 16}},
      {"tile_lanes", &KernelSchedule::tileLanes, {0, 1}},
  };
  return fields;
}
} // namespace

std::vector<Knob> KernelSchedule::space() { return knobSpace(knobFields()); }

std::vector<std::string> KernelSchedule::knobsFor(bool reduces) {
  std::vector<std::string> names;
  for (const KnobField<KernelSchedule> &f : knobFields())
    if (reduces || f.field == &KernelSchedule::vectorWidth || f.field == &KernelSchedule::parallel ||
        f.field == &KernelSchedule::parallelGrain)
      names.push_back(f.name);
  return names;
}

namespace {
/// A self-placed product `stage` runs its loops inside `output` (its tiledInto stage, or
/// null): an output of the same 2-D shape that reads it pointwise.
bool placesIntoOutput(const Stage &stage, const Stage *output) {
  return stage.placeIntoOutput && output && output->isOutput && !output->placeItself &&
         output->shape == stage.shape && output->func.dimensions() == 2;
}
} // namespace

std::vector<std::string> KernelSchedule::knobsFor(const LoweredKernel &kernel, bool reduces) {
  bool products = false, tiled = false, packed = false, placedOtherwise = false, plain = false;
  // The outputs tiled reductions are computed in, and those self-placed products place
  // their loops in (the conditions of applySchedule): placed with them.
  std::set<std::string> tiledOutputs;
  for (const Stage &stage : kernel.stages) {
    if (stage.tiledInto.empty())
      continue;
    if (!stage.placeItself || placesIntoOutput(stage, kernel.stage(stage.tiledInto)))
      tiledOutputs.insert(stage.tiledInto);
  }
  for (const Stage &stage : kernel.stages) {
    if (stage.placeItself) {
      products |= stage.placesProduct;
      placedOtherwise |= !stage.placesProduct; // attention, norms, cache writes: any knob
    } else if (!stage.tiledInto.empty()) {
      tiled = true;
      packed |= stage.decodedBlock > 0;
    } else if (!tiledOutputs.count(stage.func.name())) {
      plain = true;
    }
  }
  std::vector<std::string> all = knobsFor(reduces);
  if (placedOtherwise)
    return all;
  // A tiled reduction's output is placed with it. (Without its tile, tile_vectors=0, the
  // pair is placed as plain stages and parallel_grain and reduction_unroll matter too:
  // left out, as the empirical check found them dead under the default tiles.)
  auto live = [&](const std::string &name) {
    if (name == "parallel")
      return true;
    if (name == "vector_width")
      return plain || tiled;
    if (name == "parallel_grain" || name == "reduction_unroll")
      return plain;
    if (name == "tile_vectors" || name == "tile_rows" || name == "panel_kib" || name == "tile_lanes")
      return tiled;
    if (name == "stream_rows" || name == "stream_chains")
      return packed;
    if (name == "product_panel" || name == "product_rows")
      return products;
    return true; // a knob added later: searched until it is placed here
  };
  std::vector<std::string> names;
  for (const std::string &name : all)
    if (live(name))
      names.push_back(name);
  return names;
}

std::string KernelSchedule::str() const { return knobsText(*this, knobFields()); }

std::string KernelSchedule::set(llvm::StringRef text) { return setKnobs(*this, text, knobFields()); }

std::string describeKnobs(const std::vector<Knob> &knobs) {
  std::string text;
  for (const Knob &knob : knobs) {
    text += knob.name + ":";
    for (int64_t value : knob.values)
      text += " " + std::to_string(value);
    text += "\n";
  }
  return text;
}

std::string checkKnob(llvm::StringRef name, llvm::StringRef value,
                      const std::vector<std::pair<const char *, const std::vector<int64_t> *>> &knobs,
                      size_t &found, int64_t &number) {
  auto knob = std::find_if(knobs.begin(), knobs.end(),
                           [&](const auto &k) { return name == k.first; });
  if (knob == knobs.end()) {
    std::string known;
    for (const auto &k : knobs)
      known += std::string(known.empty() ? "" : ", ") + k.first;
    return "unknown schedule knob '" + name.str() + "' (knobs: " + known + ")";
  }
  if (value.getAsInteger(10, number))
    return "schedule knob '" + name.str() + "' needs an integer value, got '" + value.str() + "'";
  const std::vector<int64_t> &values = *knob->second;
  if (std::find(values.begin(), values.end(), number) == values.end()) {
    std::string list;
    for (int64_t v : values)
      list += (list.empty() ? "" : ", ") + std::to_string(v);
    return "schedule knob " + name.str() + "=" + value.str() + " is outside its space {" + list +
           "}";
  }
  found = static_cast<size_t>(knob - knobs.begin());
  return "";
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

/// The columns of a register tile of `tileVectors` vectors of `vector` lanes over an
/// output `columns` wide: whole vectors, no more than the output holds.
int64_t tileWidth(int64_t tileVectors, int64_t columns, int64_t vector) {
  return std::min(tileVectors, columns / vector) * vector;
}

/// Computes `reduction` tile by tile inside `output`, as a GEMM micro-kernel: output
/// tiles of tileVectors*vectorWidth columns by tileRows rows (rows along
/// Stage::tileRowArg), the reduction's pure and update definitions vectorized along the
/// columns and unrolled along the rows with the reduction loops outside them, so the
/// tile's accumulators live in registers and each vector loaded serves every row. The
/// columns are taken in panels (panelKiB) with the row tiles inside, so the operand
/// read along the columns is reused from the L2 cache by every row tile; threads take
/// the dimensions outside the tile (panels, batches, a convolution's output rows), or
/// the row tiles when those are too few. Returns false (and schedules nothing) when the
/// output is narrower than one vector.
bool tileReductionIntoOutput(Stage &reduction, Stage &output, const KernelSchedule &schedule) {
  const std::vector<int64_t> &shape = output.shape;
  int rank = static_cast<int>(shape.size()), rowArg = reduction.tileRowArg;
  int64_t vector = schedule.vectorWidth;
  if (schedule.tileVectors <= 0 || schedule.tileRows <= 0 || vector <= 0 || rank < 2 ||
      rowArg < 1 || rowArg >= rank || shape.back() < vector)
    return false;
  int64_t columns = shape.back(), rowExtent = shape[rank - 1 - rowArg];
  int64_t width = tileWidth(schedule.tileVectors, columns, vector);
  int64_t rows = std::min(schedule.tileRows, rowExtent);
  // The output dimensions outside the tile (Halide argument indices, innermost first:
  // batches, a convolution's output rows) and how many points they span.
  std::vector<int> otherDims;
  int64_t others = 1;
  for (int d = 1; d < rank; ++d)
    if (d != rowArg) {
      otherDims.push_back(d);
      others *= shape[rank - 1 - d];
    }
  int64_t tilesAcross = (columns + width - 1) / width, panelTiles = tilesAcross;
  if (schedule.panelKiB > 0) {
    int64_t bytesPerTile = reduction.reductionSize * width * output.func.output_types()[0].bytes();
    panelTiles = std::clamp<int64_t>(schedule.panelKiB * 1024 / std::max<int64_t>(1, bytesPerTile),
                                     1, tilesAcross);
    // Panels are the threads' tasks (each copies its own dense panel): with fewer than
    // 4 tasks outside the row tiles, narrower panels make 4, rather than the row tiles
    // becoming the tasks behind a panel copy made by one thread (MiniLM's 384-column
    // products: 3 panels, each copied serially).
    if (panelTiles < tilesAcross && others < 4) {
      int64_t panelsWanted = (4 + others - 1) / others;
      panelTiles = std::min(panelTiles, std::max<int64_t>(1, (tilesAcross + panelsWanted - 1) / panelsWanted));
    }
  }
  Halide::Func &out = output.func, &red = reduction.func;
  std::vector<Halide::Var> args = out.args();
  Halide::Var xo("xo"), yo("yo"), xi("xi"), yi("yi"), panel("xp"), xt("xt");
  out.split(args[0], xo, xi, static_cast<int>(width))
      .split(args[rowArg], yo, yi, static_cast<int>(rows));
  bool panels = panelTiles < tilesAcross;
  Halide::Var tileColumn = panels ? xt : xo;
  if (panels)
    out.split(xo, panel, xt, static_cast<int>(panelTiles));
  std::vector<Halide::Var> outer;
  int64_t outerExtent = others * (panels ? (tilesAcross + panelTiles - 1) / panelTiles : 1);
  for (int d : otherDims)
    outer.push_back(args[d]);
  if (panels)
    outer.push_back(panel);
  std::vector<Halide::VarOrRVar> order{xi, yi, tileColumn, yo};
  order.insert(order.end(), outer.begin(), outer.end());
  // The tile's columns in vectors of `vector` lanes, or as one vector (tileLanes).
  int lanes = static_cast<int>(schedule.tileLanes ? width : vector);
  out.reorder(order).vectorize(xi, lanes).unroll(yi);
  Halide::Var panelLoop = panel, taskLoop;
  bool fusedTasks = false;
  if (schedule.parallel && elements(shape) * reduction.reductionSize >= kParallelThreshold) {
    // Enough tasks outside the row tiles to share between threads: fuse those loops
    // into one parallel loop; otherwise the row tiles are the tasks.
    if (outerExtent >= 4 || (outerExtent >= 2 && rowExtent <= rows)) {
      Halide::Var tasks = outer.front();
      for (size_t i = 1; i < outer.size(); ++i) {
        Halide::Var fused(tasks.name() + "_" + outer[i].name());
        out.fuse(tasks, outer[i], fused);
        tasks = fused;
        if (outer[i].same_as(panel))
          panelLoop = fused;
      }
      out.parallel(tasks);
      taskLoop = tasks;
      fusedTasks = true;
    } else if (rowExtent > rows) {
      out.parallel(yo);
    }
  }
  if (!output.isOutput)
    out.compute_root();
  red.compute_at(out, tileColumn);
  // Within a panel, the operands read along the columns are copied into a dense buffer
  // once for all the row tiles: their rows are a whole output row apart in memory
  // (12 KiB for 3072 columns of f32), and so many loads at one such stride map onto a
  // few cache sets and evict each other (a 128x3072x768 matmul ran at 75 GFLOP/s).
  // An operand whose consecutive columns are not adjacent (attention's keys) is copied
  // whatever the sizes, transposed so that they are: else every vector is a gather.
  for (const Stage::VectorOperand &operand : reduction.vectorOperands) {
    int arg = operand.columnArg;
    if (!(panels && rowExtent >= 4 * rows) && arg == 0)
      continue;
    Halide::Func dense = Halide::Func(operand.func).in(red);
    std::vector<Halide::Var> denseArgs = dense.args();
    if (arg > 0 && arg < static_cast<int>(denseArgs.size())) {
      std::vector<Halide::Var> storage{denseArgs[arg]};
      for (int d = 0; d < static_cast<int>(denseArgs.size()); ++d)
        if (d != arg)
          storage.push_back(denseArgs[d]);
      dense.reorder_storage(storage);
    }
    if (panels)
      dense.compute_at(out, panelLoop);
    else if (fusedTasks)
      dense.compute_at(out, taskLoop);
    else if (!outer.empty())
      dense.compute_at(out, outer.front());
    else
      dense.compute_root();
    // (A guarded split by one lane is no vectorization, and Halide 14 then bounds the
    // copy of the last of panels that do not divide the columns one column too far.)
    if (vector > 1)
      dense.vectorize(denseArgs[std::clamp(arg, 0, static_cast<int>(denseArgs.size()) - 1)],
                      static_cast<int>(vector), Halide::TailStrategy::GuardWithIf);
  }
  std::vector<Halide::Var> inner = red.args();
  std::vector<Halide::VarOrRVar> pureOrder{inner[0], inner[rowArg]};
  for (int d : otherDims)
    pureOrder.push_back(inner[d]);
  red.reorder(pureOrder).vectorize(inner[0], lanes).unroll(inner[rowArg]);
  for (int u = 0; u < red.num_update_definitions(); ++u) {
    Halide::Stage update = red.update(u);
    std::vector<Halide::VarOrRVar> updateOrder{inner[0], inner[rowArg]};
    // A reduction over several dimensions (a convolution's input channels, kernel rows
    // and kernel columns) runs its loops in the operands' memory order, the last
    // dimension innermost: each tile row's weights are then read as one contiguous
    // stream. In Halide's default order (the first innermost) a 3x3 convolution's pass
    // over 128 input channels touched 16 x 4.6 KiB of weights, more than L1 holds, once
    // per kernel tap (73 -> 100 GFLOP/s for 128x28x28x128x3x3). Halide can reorder the
    // loops of a sum, not of a max (a pool's window keeps its order).
    std::vector<Halide::RVar> rvars = red.rvars(u);
    if (updatesBySum(red))
      std::reverse(rvars.begin(), rvars.end());
    for (const Halide::RVar &r : rvars)
      updateOrder.push_back(r);
    for (int d : otherDims)
      updateOrder.push_back(inner[d]);
    update.reorder(updateOrder).vectorize(inner[0], lanes).unroll(inner[rowArg]);
  }
  return true;
}

/// What a register file allows a tiled reduction's register tile, and what a broadcast
/// costs there.
struct RegisterFile {
  int64_t accumulators; ///< the most accumulators
  int64_t registers;    ///< accumulators + loaded vectors + the broadcast fit in one
                        ///< register fewer than this (0: no such limit)
  double broadcastCost; ///< cycles a broadcast of the row operand adds to a step
};

/// AVX-512 and arm64: 32 vector registers, a quarter free for the loaded vectors.
constexpr RegisterFile kWideRegisterFile{24, 0, 0.1};
/// AVX2: 16 registers. Tiles that left fewer than two free spilled (3 vectors x 4 rows,
/// 12 accumulators: the convnet 1.26x slower than with 1 x 8); with at most 12
/// accumulators a step's loads no longer hide behind its FMAs, so a broadcast costs as
/// much as a vector load: 1 x 8 tiles (9 loads per 8 FMAs) ran the convnet's
/// convolutions at 46-59% of the FMA peak, 2 x 4 (6 loads) 1.09-1.16x faster end to
/// end, while the BERT block's GEMMs (128 rows) keep 2 x 6, 2-11% faster than 2 x 4
/// or 3 x 3 (AMD EPYC, 2 threads, kiln-run --interleave).
constexpr RegisterFile kAvx2RegisterFile{12, 16, 0.5};

/// The register tile (vectors across, rows) for a tiled reduction whose output has
/// `columns` columns and `rowExtent` rows: the one with the least modelled time per
/// useful multiply-add. A step of the reduction issues vectors*rows FMAs (two a cycle,
/// each 4 cycles deep: fewer than 8 independent ones stall) and loads `vectors` vectors
/// (a stream from L2, ~half a cycle each) and `rows` broadcasts; tiles that overhang
/// the output recompute columns or rows. Rows are among `rowChoices` (tile_rows' values:
/// a default outside the tuner's space would take the knob out of its search). On a
/// 2-core Xeon (AVX-512) the model orders 128x768x3072 tiles as measured: 8x3 vectors
/// 138 GFLOP/s, 12x2 134, 6x4 131, 16x1 111 (one thread).
std::pair<int64_t, int64_t> registerTile(int64_t columns, int64_t rowExtent, int64_t vector,
                                         const RegisterFile &file,
                                         const std::vector<int64_t> &rowChoices) {
  std::pair<int64_t, int64_t> best{1, 1};
  double bestCost = 1e30;
  for (int64_t vectors = 1; vectors <= 4 && vectors * vector <= columns; ++vectors)
    for (int64_t rows : rowChoices) {
      if (rows > rowExtent || vectors * rows > file.accumulators ||
          (file.registers && vectors * rows + vectors + 1 >= file.registers))
        continue;
      double fmas = static_cast<double>(vectors * rows);
      double cycles = std::max(fmas / 2, 4.0) + 0.5 * static_cast<double>(vectors) +
                      file.broadcastCost * static_cast<double>(rows);
      int64_t width = vectors * vector;
      double useful = static_cast<double>(columns) / (((columns + width - 1) / width) * width) *
                      static_cast<double>(rowExtent) / (((rowExtent + rows - 1) / rows) * rows);
      double cost = cycles / (fmas * useful);
      if (cost < bestCost - 1e-9) {
        bestCost = cost;
        best = {vectors, rows};
      }
    }
  return best;
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
  // The register tile of the kernel's tiled reduction: AVX-512 and arm64 have 32
  // vector registers, AVX2 16.
  const RegisterFile &file =
      target.arch == Halide::Target::X86 && !target.has_feature(Halide::Target::AVX512)
          ? kAvx2RegisterFile
          : kWideRegisterFile;
  const std::vector<int64_t> *rowChoices = nullptr;
  for (const KnobField<KernelSchedule> &f : knobFields())
    if (f.field == &KernelSchedule::tileRows)
      rowChoices = &f.values;
  for (const Stage &stage : kernel.stages) {
    if (stage.tiledInto.empty() || stage.decodedBlock > 0 || stage.placeItself)
      continue;
    int rank = static_cast<int>(stage.shape.size());
    if (rank < 2 || stage.tileRowArg >= rank || stage.shape.back() < schedule.vectorWidth)
      continue;
    auto [vectors, rows] = registerTile(stage.shape.back(), stage.shape[rank - 1 - stage.tileRowArg],
                                        schedule.vectorWidth, file, *rowChoices);
    schedule.tileVectors = vectors;
    schedule.tileRows = rows;
    // Where the tile overhangs the output's columns, its columns are one vector.
    int64_t columns = stage.shape.back();
    int64_t width = tileWidth(vectors, columns, schedule.vectorWidth);
    schedule.tileLanes = width > schedule.vectorWidth && columns % width != 0 ? 1 : 0;
    break;
  }
  return schedule;
}

void applySchedule(LoweredKernel &kernel, const KernelSchedule &schedule) {
  std::vector<std::string> tiled;
  for (Stage &stage : kernel.stages) {
    Stage *output = stage.tiledInto.empty() ? nullptr : kernel.stage(stage.tiledInto);
    if (placesIntoOutput(stage, output)) {
      stage.placeIntoOutput(schedule, output->func);
      tiled.push_back(stage.func.name());
      tiled.push_back(output->func.name());
      continue;
    }
    if (stage.placeItself) {
      stage.placeItself(schedule);
      tiled.push_back(stage.func.name());
      continue;
    }
    if (stage.tiledInto.empty())
      continue;
    if (output && (streamPackedRows(stage, *output, schedule) ||
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
