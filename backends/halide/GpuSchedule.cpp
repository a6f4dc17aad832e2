// GPU placement of a lowered kernel's stages (see GpuSchedule.h).
#include "backends/halide/GpuSchedule.h"

#include <algorithm>
#include <map>
#include <optional>
#include <set>

namespace kiln::halide {

namespace {

const std::vector<KnobField<GpuSchedule>> &knobFields(bool hasLibrary) {
  static const std::vector<KnobField<GpuSchedule>> fields = {
      {"gpu_threads", &GpuSchedule::threads, {32, 64, 128, 256, 512, 1024}},
      {"gpu_reduction_unroll", &GpuSchedule::reductionUnroll, {1, 2, 4, 8}},
      {"gpu_tile", &GpuSchedule::tile, {0, 8, 16, 32}},
  };
  static const std::vector<KnobField<GpuSchedule>> withLibrary = [] {
    std::vector<KnobField<GpuSchedule>> all = fields;
    all.push_back({"gpu_library", &GpuSchedule::library, {0, 1}});
    return all;
  }();
  return hasLibrary ? withLibrary : fields;
}

/// The pure variables an update definition of `f` computes point by point: the
/// arguments of its left-hand side that are the pure definition's variables
/// themselves (not expressions of them, not reduction variables), innermost first.
std::vector<Halide::VarOrRVar> updatePureVars(const Halide::Func &f, int update) {
  std::set<std::string> pure;
  std::vector<Halide::Var> args = f.args();
  for (const Halide::Var &v : args)
    pure.insert(v.name());
  std::vector<Halide::VarOrRVar> vars;
  for (const Halide::Expr &arg : f.update_args(update)) {
    const auto *variable = arg.as<Halide::Internal::Variable>();
    if (variable && !variable->reduction_domain.defined() && pure.count(variable->name))
      vars.push_back(Halide::Var(variable->name));
  }
  return vars;
}

/// The reduction variables of update `update` of `f`, innermost first.
std::vector<Halide::RVar> updateReductionVars(const Halide::Func &f, int update) {
  std::vector<Halide::RVar> vars;
  for (const Halide::Internal::ReductionVariable &rv : f.function().update(update).schedule().rvars())
    vars.push_back(Halide::RVar(rv.var));
  return vars;
}

/// One launch over every point `vars` spans: the variables fused into one index
/// (innermost fastest), cut into blocks of `threads`; no variables, one GPU thread.
/// Returns the loop of the threads (a Var), or nothing for a single thread.
std::optional<Halide::Var> placeOnGpu(Halide::Stage stage, std::vector<Halide::VarOrRVar> vars,
                                      const std::string &name, const GpuSchedule &schedule) {
  if (vars.empty()) {
    stage.gpu_single_thread();
    return std::nullopt;
  }
  Halide::VarOrRVar index = vars.front();
  for (size_t i = 1; i < vars.size(); ++i) {
    Halide::Var fused(name + "_gpu_f" + std::to_string(i));
    stage.fuse(index, vars[i], fused);
    index = fused;
  }
  Halide::Var block(name + "_gpu_b"), thread(name + "_gpu_t");
  stage.gpu_tile(index, block, thread, static_cast<int>(schedule.threads),
                 Halide::TailStrategy::GuardWithIf);
  return thread;
}

/// The update definitions of `f`, each one launch over its pure variables, its
/// reduction loop in each thread (unrolled by the schedule's factor).
void placeUpdates(Halide::Func f, const std::string &name, const GpuSchedule &schedule,
                  bool onGpu) {
  for (int u = 0; u < f.num_update_definitions(); ++u) {
    Halide::Stage update = f.update(u);
    std::vector<Halide::RVar> reduction = updateReductionVars(f, u);
    if (schedule.reductionUnroll > 1 && !reduction.empty()) {
      Halide::RVar outer(reduction.front().name() + "_o"), inner(reduction.front().name() + "_i");
      update.split(reduction.front(), outer, inner, static_cast<int>(schedule.reductionUnroll),
                   Halide::TailStrategy::GuardWithIf)
          .unroll(inner);
    }
    if (onGpu)
      placeOnGpu(update, updatePureVars(f, u), name + "_u" + std::to_string(u), schedule);
  }
}

/// Computes `f` at root, each of its definitions one launch (an output is at root
/// already; a pure definition that is undef, an in-place write, has nothing to
/// launch). Returns the thread loop of its pure definition, if it has one.
std::optional<Halide::Var> placeAtRoot(Halide::Func f, bool isOutput, const GpuSchedule &schedule) {
  if (!isOutput)
    f.compute_root();
  const std::vector<Halide::Expr> &values = f.function().values();
  bool undefinedPure = std::all_of(values.begin(), values.end(), [](const Halide::Expr &e) {
    return Halide::Internal::is_undef(e);
  });
  std::optional<Halide::Var> thread;
  if (!undefinedPure) {
    std::vector<Halide::Var> args = f.args();
    thread = placeOnGpu(f, std::vector<Halide::VarOrRVar>(args.begin(), args.end()), f.name(),
                        schedule);
  }
  placeUpdates(f, f.name(), schedule, /*onGpu=*/true);
  return thread;
}

/// Places the product `stage` and its pointwise reader `reader` in square tiles (see
/// GpuSchedule::tile), if the product is one: a single reduction variable, at least a
/// tile of rows and of columns, an operand read along the columns. Returns whether it
/// did.
bool placeTiled(const Stage &stage, Halide::Func reader, const GpuSchedule &schedule) {
  int tile = static_cast<int>(schedule.tile);
  Halide::Func f = stage.func;
  std::vector<Halide::Var> args = f.args(), readerArgs = reader.args();
  int rows = stage.tileRowArg, rank = static_cast<int>(args.size());
  if (tile == 0 || stage.vectorOperands.empty() || f.num_update_definitions() != 1 ||
      rank < 2 || rows <= 0 || rows >= rank || static_cast<int>(readerArgs.size()) != rank ||
      stage.reductionSize < tile)
    return false;
  const std::vector<int64_t> &shape = stage.shape; // outermost first
  if (shape[rank - 1] < tile || shape[rank - 1 - rows] < tile)
    return false;
  std::vector<Halide::RVar> reduction = updateReductionVars(f, 0);
  std::vector<Halide::VarOrRVar> pure = updatePureVars(f, 0);
  if (reduction.size() != 1 || static_cast<int>(pure.size()) != rank)
    return false;
  // A reduction over a range known at run time only (attention over the visible
  // keys of a cache: a predicate on its domain) stays untiled: Halide 14's loop
  // partitioning fails on the predicate inside the split reduction.
  if (!f.function().update(0).split_predicate().empty())
    return false;
  std::string name = f.name();
  // The reader: blocks of tile x tile outputs (the other dimensions, fused, a third
  // block index), a thread each.
  Halide::Var x = readerArgs[0], y = readerArgs[rows];
  Halide::Var bx(name + "_bx"), by(name + "_by"), tx(name + "_tx"), ty(name + "_ty");
  reader.gpu_tile(x, y, bx, by, tx, ty, tile, tile, Halide::TailStrategy::GuardWithIf);
  std::vector<Halide::Var> others;
  for (int d = 1; d < rank; ++d)
    if (d != rows)
      others.push_back(readerArgs[d]);
  if (!others.empty()) {
    Halide::Var z = others.front();
    for (size_t i = 1; i < others.size(); ++i) {
      Halide::Var fused(name + "_bz" + std::to_string(i));
      reader.fuse(z, others[i], fused);
      z = fused;
    }
    reader.gpu_blocks(z);
  }
  // The product: its tile per block, in the reader's threads; the reduction a tile of
  // steps at a time, outside the threads, so the block stages the operand's slice for
  // those steps once.
  f.compute_at(reader, bx).gpu_threads(args[0], args[rows]);
  Halide::RVar k = reduction.front(), ko(k.name() + "_o"), ki(k.name() + "_i");
  Halide::Var fx = args[0], fy = args[rows];
  f.update()
      .split(k, ko, ki, tile, Halide::TailStrategy::GuardWithIf)
      .reorder(ki, fx, fy, ko)
      .gpu_threads(fx, fy);
  const Stage::VectorOperand &operand = stage.vectorOperands.front();
  Halide::Func operandFunc = operand.func;
  Halide::Func staged = operandFunc.in(f);
  std::vector<Halide::Var> operandArgs = staged.args();
  if (operandArgs.size() >= 2) {
    int column = std::min<int>(operand.columnArg, static_cast<int>(operandArgs.size()) - 1);
    int depth = column == 0 ? 1 : 0;
    staged.compute_at(f, ko)
        .store_in(Halide::MemoryType::GPUShared)
        .gpu_threads(operandArgs[column], operandArgs[depth]);
  }
  return true;
}

} // namespace

std::vector<Knob> GpuSchedule::space(bool hasLibrary) { return knobSpace(knobFields(hasLibrary)); }

std::vector<std::string> GpuSchedule::knobsFor(bool reduces, bool libraryDispatch) const {
  std::vector<std::string> names;
  for (const KnobField<GpuSchedule> &f : knobFields(hasLibrary))
    if (f.field == &GpuSchedule::library ? libraryDispatch
                                         : reduces || f.field == &GpuSchedule::threads)
      names.push_back(f.name);
  return names;
}

std::string GpuSchedule::str() const { return knobsText(*this, knobFields(hasLibrary)); }

std::string GpuSchedule::set(llvm::StringRef text) {
  return setKnobs(*this, text, knobFields(hasLibrary));
}

void applyGpuSchedule(LoweredKernel &kernel, const GpuSchedule &schedule) {
  std::set<std::string> stages, outputs;
  std::map<std::string, std::string> tiledInto; // a reduction -> the Func reading it pointwise
  for (const Stage &stage : kernel.stages) {
    stages.insert(stage.func.name());
    if (!stage.tiledInto.empty())
      tiledInto[stage.func.name()] = stage.tiledInto;
  }
  std::vector<Halide::Internal::Function> roots;
  for (const Halide::Func &output : kernel.outputs) {
    outputs.insert(output.name());
    roots.push_back(output.function());
  }
  // Every Func of the pipeline, by name: the outputs and what they call, transitively.
  std::map<std::string, Halide::Internal::Function> functions =
      Halide::Internal::build_environment(roots);
  // On the host: the inputs narrowed to 32 bits, 64-bit results widened from them.
  std::set<std::string> onHost;
  for (Halide::Func &f : kernel.hostStages) {
    f.compute_root();
    onHost.insert(f.name());
  }
  // Products placed in tiles with their readers first.
  std::set<std::string> tiled;
  for (const Stage &stage : kernel.stages) {
    auto reader = functions.find(stage.tiledInto);
    if (stage.tiledInto.empty() || reader == functions.end() || tiled.count(reader->first))
      continue;
    Halide::Func readerFunc(reader->second);
    if (readerFunc.num_update_definitions() != 0 || !placeTiled(stage, readerFunc, schedule))
      continue;
    if (!outputs.count(reader->first))
      readerFunc.compute_root();
    tiled.insert(stage.func.name());
    tiled.insert(reader->first);
  }
  // Each stored Func's thread loop (of its pure definition), where the reductions
  // tiled into it are computed.
  std::map<std::string, Halide::Var> threadLoops;
  for (auto &[name, function] : functions) {
    Halide::Func f(function);
    bool stored = outputs.count(name) || stages.count(name) || !function.can_be_inlined();
    if (!stored || tiledInto.count(name) || tiled.count(name) || onHost.count(name))
      continue; // inlined into whatever reads it; computed in its reader's threads; tiled
    if (std::optional<Halide::Var> thread = placeAtRoot(f, outputs.count(name), schedule))
      threadLoops.emplace(name, *thread);
  }
  // A reduction whose only reader reads it point by point (a matmul's output copy or
  // epilogue, attention's score tiles) is computed in that reader's threads: each
  // thread runs its point's reduction into a register, then the reader's expression;
  // one launch, no buffer between them.
  for (const auto &[name, reader] : tiledInto) {
    if (tiled.count(name))
      continue;
    Halide::Func f(functions.at(name));
    auto loop = threadLoops.find(reader);
    if (loop == threadLoops.end()) {
      placeAtRoot(f, /*isOutput=*/false, schedule);
      continue;
    }
    f.compute_at(Halide::Func(functions.at(reader)), loop->second);
    placeUpdates(f, name, schedule, /*onGpu=*/false);
  }
}

} // namespace kiln::halide
