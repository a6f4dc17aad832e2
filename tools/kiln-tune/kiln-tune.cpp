// kiln-tune: searches the schedule of each kernel of a model on this machine, spending
// the time budget where the model spends its time, and records every trial in the
// tuning database that kiln-compile --tune=use reads.
#include "CandidateMeasurement.h"
#include "ConvergenceReport.h"
#include "Npy.h"

#include "backends/Backend.h"
#include "backends/KernelFingerprint.h"
#include "compiler/CompilerVersion.h"
#include "compiler/Pipelines.h"
#include "compiler/Registration.h"
#include "compiler/Tuning/ScheduleSearch.h"
#include "compiler/Tuning/TuningDatabase.h"
#include "frontends/ModelImport.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Pass/PassManager.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/WithColor.h"

#include <chrono>
#include <cmath>
#include <fstream>
#include <limits>
#include <random>
#include <unistd.h>

using namespace mlir;
namespace cl = llvm::cl;
using Clock = std::chrono::steady_clock;

namespace {

cl::OptionCategory category("kiln-tune options");
cl::opt<std::string> modelPath(cl::Positional, cl::desc("<model file>"), cl::cat(category));
cl::opt<std::string> budgetText("budget",
                                cl::desc("Time to spend, e.g. 90s, 10m, 1h (default 10m)"),
                                cl::init("10m"), cl::value_desc("time"), cl::cat(category));
cl::opt<unsigned> population("population",
                             cl::desc("Genetic algorithm: individuals per generation (default: "
                                      "a quarter of the trials a kernel's share of the budget "
                                      "buys, 6 to 24, so that it breeds at least four "
                                      "generations)"),
                             cl::init(24), cl::cat(category));
cl::opt<unsigned> generations("generations",
                              cl::desc("Genetic algorithm: at most this many generations per "
                                       "kernel (default 0: until it converges or time is up)"),
                              cl::init(0), cl::cat(category));
// --threads N: kernel worker threads while measuring. Parsed by main() before the
// other options, because libLLVM already registers a global option named "threads".
unsigned threads = 0;
cl::opt<std::string> searchKind("search",
                                cl::desc("ga (genetic algorithm, default), sa (simulated "
                                         "annealing) or random"),
                                cl::init("ga"), cl::cat(category));
cl::opt<std::string> tuningDb("tuning-db",
                              cl::desc("The tuning database: a SQLite file or a postgresql:// "
                                       "URL (default: $KILN_TUNING_DB, else "
                                       "~/.cache/kiln/tuning.sqlite)"),
                              cl::value_desc("path"), cl::cat(category));
cl::opt<std::string> exportPath("export",
                                cl::desc("Write the database's confirmed trials as JSON lines "
                                         "to FILE and exit"),
                                cl::value_desc("FILE"), cl::cat(category));
cl::opt<std::string> importPath("import",
                                cl::desc("Record the trials of a JSON-lines FILE (as --export "
                                         "writes) in the database and exit"),
                                cl::value_desc("FILE"), cl::cat(category));
cl::opt<std::string> reportDir("report",
                               cl::desc("Write convergence plots (SVG) of the searches the "
                                        "database holds and an HTML page to DIR, and exit"),
                               cl::value_desc("DIR"), cl::cat(category));
cl::opt<std::string> target("target", cl::desc("Target to tune for (default host)"),
                            cl::init("host"), cl::cat(category));
cl::list<std::string> inputs("input",
                             cl::desc("kiln-run's --input for the measured runs (default: "
                                      "random floats, zero integers)"),
                             cl::value_desc("NAME=FILE.npy"), cl::cat(category));
cl::opt<std::string> entry("entry", cl::desc("Entry point to tune (default: the only one)"),
                           cl::cat(category));
cl::opt<int64_t> seqLen("seq-len", cl::desc("As kiln-compile's"), cl::init(0), cl::cat(category));
cl::opt<int64_t> batch("batch", cl::desc("As kiln-compile's"), cl::init(0), cl::cat(category));
cl::opt<bool> kvCache("kv-cache", cl::desc("As kiln-compile's"), cl::cat(category));
cl::opt<int64_t> contextLength("ctx", cl::desc("As kiln-compile's"), cl::init(0),
                               cl::cat(category));
cl::opt<bool> fullWindowCaches("full-window-caches", cl::desc("As kiln-compile's"),
                               cl::cat(category));
cl::opt<std::string> activations("activations", cl::desc("As kiln-compile's (int8 or f32)"),
                                 cl::init("int8"), cl::cat(category));
cl::opt<unsigned> runs("runs", cl::desc("Measured runs per candidate (default 15), after 3 "
                                        "warm-up runs; a candidate's time is their median"),
                       cl::init(15), cl::cat(category));
cl::opt<unsigned> timeout("timeout",
                          cl::desc("Seconds after which a candidate's compile or run is "
                                   "killed and counted as failed (default 120)"),
                          cl::init(120), cl::cat(category));
cl::opt<uint64_t> seed("seed", cl::desc("Seed of the searches (default 1)"), cl::init(1),
                       cl::cat(category));
cl::opt<double> minShare("min-share",
                         cl::desc("Kernels below this share of the model's kernel time are "
                                  "not tuned (default 0.02)"),
                         cl::init(0.02), cl::cat(category));

/// Rounds of the final comparison of a kernel's winner with its default (each round
/// measures both).
constexpr int kConfirmations = 3;
/// How much faster than the default, on average over the confirmation rounds, a winner
/// must be to be kept: run-to-run noise on a shared machine is a few percent.
constexpr double kMinSpeedup = 1.03;

int fail(const llvm::Twine &message) {
  llvm::WithColor::error(llvm::errs(), "kiln-tune") << message << "\n";
  return 1;
}

std::optional<double> parseSeconds(llvm::StringRef text) {
  double scale = 1;
  if (text.consume_back("h"))
    scale = 3600;
  else if (text.consume_back("m"))
    scale = 60;
  else
    text.consume_back("s");
  double value;
  if (text.getAsDouble(value) || !(value > 0))
    return std::nullopt;
  return value * scale;
}

std::string formatNs(double ns) {
  char text[32];
  if (!std::isfinite(ns))
    return "-";
  if (ns >= 1e6)
    snprintf(text, sizeof text, "%.2f ms", ns / 1e6);
  else if (ns >= 1e3)
    snprintf(text, sizeof text, "%.2f us", ns / 1e3);
  else
    snprintf(text, sizeof text, "%.0f ns", ns);
  return text;
}

/// One kernel of the entry point: dispatches with one tuning key share its schedule.
struct TunableKernel {
  std::string key;
  std::string defaultSchedule; // the backend's, KernelSchedule::str() form
  std::vector<unsigned> dispatches;
  std::vector<std::string> knobs; // those that change its code (KernelInfo::knobs)
  std::string what;
  double defaultNs = 0;
  // Results.
  std::string tunedSchedule;
  double confirmedDefaultNs = 0, confirmedTunedNs = 0;
  unsigned trials = 0, failed = 0;
  unsigned reused = 0; // trials whose artifact an earlier one had: not run again
  bool tuned = false;
};

/// The knobs of `description` ("name: v1 v2" per line, Backend::describeScheduleSpace).
std::vector<kiln::tuning::SearchKnob> parseSpace(llvm::StringRef description) {
  std::vector<kiln::tuning::SearchKnob> knobs;
  llvm::SmallVector<llvm::StringRef> lines;
  description.split(lines, '\n', -1, false);
  for (llvm::StringRef line : lines) {
    auto [name, values] = line.split(':');
    kiln::tuning::SearchKnob knob{name.trim().str(), {}};
    llvm::SmallVector<llvm::StringRef> numbers;
    values.split(numbers, ' ', -1, false);
    for (llvm::StringRef number : numbers) {
      int64_t v;
      if (!number.getAsInteger(10, v))
        knob.values.push_back(v);
    }
    knobs.push_back(std::move(knob));
  }
  return knobs;
}

/// `schedule` ("a=1 b=2") with the knobs of `changes` replaced.
std::string withKnobs(llvm::StringRef schedule, llvm::StringRef changes) {
  llvm::SmallVector<llvm::StringRef> tokens, changed;
  schedule.split(tokens, ' ', -1, false);
  changes.split(changed, ' ', -1, false);
  std::string text;
  for (llvm::StringRef token : tokens) {
    llvm::StringRef name = token.split('=').first;
    for (llvm::StringRef change : changed)
      if (change.split('=').first == name)
        token = change;
    text += (text.empty() ? "" : " ") + token.str();
  }
  return text;
}

/// A .npy file of `type`'s shape: uniform floats in [-1, 1), zeros for integers (token
/// ids and positions must stay in range).
bool writeRandomNpy(const std::string &path, RankedTensorType type, std::mt19937 &rng) {
  Type element = type.getElementType();
  kiln_dtype dtype;
  if (element.isF32())
    dtype = KILN_DTYPE_F32;
  else if (element.isF64())
    dtype = KILN_DTYPE_F64;
  else if (element.isInteger(1))
    dtype = KILN_DTYPE_BOOL;
  else if (element.isInteger(8))
    dtype = KILN_DTYPE_I8;
  else if (element.isInteger(16))
    dtype = KILN_DTYPE_I16;
  else if (element.isInteger(32))
    dtype = KILN_DTYPE_I32;
  else if (element.isInteger(64))
    dtype = KILN_DTYPE_I64;
  else
    return false;
  size_t width = (element.getIntOrFloatBitWidth() + 7) / 8;
  std::vector<char> data(type.getNumElements() * width, 0);
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  for (int64_t i = 0; i < type.getNumElements(); ++i) {
    if (element.isF32()) {
      float v = uniform(rng);
      memcpy(&data[i * 4], &v, 4);
    } else if (element.isF64()) {
      double v = uniform(rng);
      memcpy(&data[i * 8], &v, 8);
    }
  }
  std::vector<int64_t> shape(type.getShape().begin(), type.getShape().end());
  return !kiln::tools::writeNpyFile(path, dtype, shape, data.data(), data.size());
}

/// "kiln_k3 gen 2 trial 31: best 1.20 us (1.31x), 42 s left", rewritten in place.
class Progress {
public:
  Progress() : terminal(::isatty(STDERR_FILENO)) {}
  void show(const std::string &line) {
    if (terminal)
      llvm::errs() << "\r\x1b[K" << line, llvm::errs().flush();
  }
  void finish(const std::string &line) {
    if (terminal)
      llvm::errs() << "\r\x1b[K";
    llvm::errs() << line << "\n";
  }

private:
  bool terminal;
};

/// Replaces `path` (and its WAL files) with a database holding one confirmed schedule
/// for `key`: the compile reads it as it would the user's.
llvm::Error writeScratchDatabase(const std::string &path, const kiln::tuning::TuningKey &key,
                                 const std::string &schedule) {
  for (const char *suffix : {"", "-wal", "-shm"})
    llvm::sys::fs::remove(path + suffix);
  auto db = kiln::tuning::TuningDatabase::openForWriting(path);
  if (!db)
    return db.takeError();
  kiln::tuning::Trial trial{key, schedule, "ok", 1.0, true, "candidate", "", "", ""};
  return (*db)->record(trial);
}

/// --report, --export and --import: what the database holds, without a model.
int runDatabaseCommand(const std::string &database) {
  if (!importPath.empty()) {
    auto db = kiln::tuning::TuningDatabase::openForWriting(database);
    if (!db)
      return fail(llvm::toString(db.takeError()));
    auto count = (*db)->importJsonLines(importPath);
    if (!count)
      return fail(llvm::toString(count.takeError()));
    llvm::errs() << "kiln-tune: recorded " << *count << " trials from " << importPath << " in "
                 << database << "\n";
    return 0;
  }
  auto db = kiln::tuning::TuningDatabase::openForReading(database);
  if (!db)
    return fail(llvm::toString(db.takeError()));
  if (!*db)
    return fail("no tuning database at '" + database + "'");
  if (!exportPath.empty()) {
    if (llvm::Error e = (*db)->exportJsonLines(exportPath))
      return fail(llvm::toString(std::move(e)));
    return 0;
  }
  auto trials = (*db)->trials();
  if (!trials)
    return fail(llvm::toString(trials.takeError()));
  auto page = kiln::tune::writeConvergenceReport(*trials, reportDir);
  if (!page)
    return fail(llvm::toString(page.takeError()));
  llvm::errs() << "kiln-tune: wrote " << *page << "\n";
  return 0;
}

/// The entry point's kernels, as kiln-compile --tune=off builds them.
struct ModelKernels {
  std::vector<TunableKernel> kernels;
  std::vector<kiln::tuning::SearchKnob> space;
  std::string target; // the backend's resolved target, part of the database key
  std::string device; // where its code runs: kiln-run --device
};

/// Imports the model and runs kiln's pipeline and the backend's lowering (no code
/// generation) to find its kernels, their keys and default schedules; unless --input
/// names the inputs, writes random ones into `work` and adds them to `inputArgs`.
/// Errors are reported; returns none then.
std::optional<ModelKernels> loadModel(llvm::StringRef work, std::vector<std::string> &inputArgs) {
  std::string error;
  kiln::NumericsOptions numerics;
  numerics.int8Activations = activations != "f32";
  std::unique_ptr<kiln::Backend> backend = kiln::createBackend(target, error, numerics);
  if (!backend)
    return fail(error), std::nullopt;
  DialectRegistry registry;
  kiln::registerDialects(registry);
  MLIRContext context(registry);
  context.printOpOnDiagnostic(false);
  llvm::SourceMgr sourceMgr;
  SourceMgrDiagnosticHandler diagnostics(sourceMgr, &context);
  kiln::ImportOptions importOptions;
  importOptions.sequenceLength = seqLen;
  importOptions.batchSize = batch;
  importOptions.kvCache = kvCache;
  importOptions.contextLength = contextLength;
  importOptions.fullWindowCaches = fullWindowCaches;
  OwningOpRef<ModuleOp> module = kiln::importModelFile(modelPath, context, sourceMgr, importOptions);
  if (!module)
    return std::nullopt;
  PassManager pm(&context);
  // The dispatches kiln-compile forms for this target (its --gpu-library=auto).
  kiln::PipelineOptions pipeline;
  pipeline.library = kiln::gemmLibraryFor(backend->name().str());
  kiln::buildDefaultPipeline(pm, pipeline);
  if (failed(pm.run(*module)))
    return std::nullopt;
  func::FuncOp entryFunc;
  for (func::FuncOp f : module->getOps<func::FuncOp>())
    if (!f.isExternal() && (entry.empty() || f.getSymName() == entry)) {
      if (entryFunc)
        return fail("the model has several entry points; name one with --entry"), std::nullopt;
      entryFunc = f;
    }
  if (!entryFunc)
    return fail(entry.empty() ? "the model has no entry point"
                              : "the model has no entry point '" + entry + "'"),
           std::nullopt;

  ModelKernels model;
  model.target = backend->target();
  model.device = backend->name().str();
  model.space = parseSpace(backend->describeScheduleSpace());
  std::map<std::string, size_t> kernelOfKey;
  unsigned dispatchIndex = 0;
  WalkResult walked = entryFunc.walk([&](kiln::DispatchOp dispatch) {
    FailureOr<kiln::KernelInfo> info = backend->addKernel(dispatch);
    if (failed(info))
      return WalkResult::interrupt();
    std::string key = kiln::tuningKey(dispatch);
    auto [it, isNew] = kernelOfKey.try_emplace(key, model.kernels.size());
    if (isNew) {
      TunableKernel kernel;
      kernel.key = key;
      kernel.defaultSchedule = info->schedule;
      kernel.knobs = info->knobs;
      model.kernels.push_back(std::move(kernel));
    }
    model.kernels[it->second].dispatches.push_back(dispatchIndex++);
    return WalkResult::advance();
  });
  if (walked.wasInterrupted())
    return std::nullopt;

  for (const std::string &input : inputs)
    inputArgs.insert(inputArgs.end(), {"--input", input});
  if (inputs.empty()) {
    std::mt19937 rng(static_cast<uint32_t>(seed));
    for (BlockArgument arg : entryFunc.getArguments()) {
      if (entryFunc.getArgAttr(arg.getArgNumber(), "kiln.state"))
        continue;
      auto type = dyn_cast<RankedTensorType>(arg.getType());
      std::string path = (work + "/input" + std::to_string(arg.getArgNumber()) + ".npy").str();
      if (!type || !type.hasStaticShape() || !writeRandomNpy(path, type, rng))
        return fail("cannot make a random value for input " + std::to_string(arg.getArgNumber()) +
                        "; give the inputs with --input"),
               std::nullopt;
      inputArgs.insert(inputArgs.end(), {"--input", path});
    }
  }
  return model;
}

/// The index of `knob`'s value in a schedule's "name=value" tokens, if it names one of
/// the knob's values.
std::optional<unsigned> knobValueIn(llvm::ArrayRef<llvm::StringRef> tokens,
                                    const kiln::tuning::SearchKnob &knob) {
  for (llvm::StringRef token : tokens) {
    int64_t value;
    if (token.split('=').first != knob.name || token.split('=').second.getAsInteger(10, value))
      continue;
    auto at = std::find(knob.values.begin(), knob.values.end(), value);
    if (at != knob.values.end())
      return static_cast<unsigned>(at - knob.values.begin());
  }
  return std::nullopt;
}

/// The knobs of `space` that matter for `kernel`, and the point of its default schedule.
std::pair<std::vector<kiln::tuning::SearchKnob>, kiln::tuning::Genome>
searchSpaceOf(const TunableKernel &kernel, const std::vector<kiln::tuning::SearchKnob> &space) {
  std::vector<kiln::tuning::SearchKnob> knobs;
  kiln::tuning::Genome initial;
  llvm::SmallVector<llvm::StringRef> tokens;
  llvm::StringRef(kernel.defaultSchedule).split(tokens, ' ', -1, false);
  for (const kiln::tuning::SearchKnob &knob : space) {
    if (std::find(kernel.knobs.begin(), kernel.knobs.end(), knob.name) == kernel.knobs.end())
      continue;
    if (std::optional<unsigned> value = knobValueIn(tokens, knob)) {
      knobs.push_back(knob);
      initial.push_back(*value);
    }
  }
  return {knobs, initial};
}

double mean(const std::vector<double> &values) {
  double sum = 0;
  for (double v : values)
    sum += v;
  return values.empty() ? std::numeric_limits<double>::infinity() : sum / values.size();
}

/// One tuning run: measures candidates of the model's kernels and records each trial.
class Tuner {
public:
  Tuner(kiln::tune::CandidateMeasurement &measurement, kiln::tuning::TuningDatabase &db,
        std::string target, std::string scratch)
      : measurement(measurement), db(db), target(std::move(target)),
        scratch(std::move(scratch)),
        session(std::to_string(std::chrono::system_clock::now().time_since_epoch() /
                               std::chrono::milliseconds(1)) +
                "-" + std::to_string(::getpid())) {}

  /// What one candidate has cost so far (a compile and a run), in seconds.
  double candidateSeconds = 0;

  /// Searches `kernel`'s schedule until `deadline`, then confirms the winner against
  /// the default (see docs/architecture.md, "The tuner and its database").
  llvm::Error tune(TunableKernel &kernel, const std::vector<kiln::tuning::SearchKnob> &space,
                   Clock::time_point deadline, const std::string &label, Progress &progress) {
    auto [knobs, initial] = searchSpaceOf(kernel, space);
    kiln::tuning::SearchOptions options;
    options.population = population;
    if (population.getNumOccurrences() == 0 && candidateSeconds > 0) {
      // With 24 individuals and a budget of 40 trials, generation 0 would be most of
      // the search: random search by another name.
      double trials = std::chrono::duration<double>(deadline - Clock::now()).count() /
                      candidateSeconds;
      options.population = unsigned(std::clamp(trials / 4, 6.0, 24.0));
    }
    // The kernels of one model share shape classes, and what won on one often wins on
    // the next: the GA measures the earlier kernels' winners first (random search and
    // SA stay the uninformed baselines).
    if (searchKind == "ga")
      options.seeds = earlierWinners(knobs, initial);
    options.maxGenerations = generations;
    options.seed = seed;
    std::unique_ptr<kiln::tuning::ScheduleSearch> search =
        kiln::tuning::createSearch(searchKind, knobs, initial, options);
    double defaultCost = std::numeric_limits<double>::infinity();
    while (Clock::now() < deadline) {
      std::optional<kiln::tuning::Genome> point = search->next();
      if (!point)
        break;
      std::string schedule = withKnobs(kernel.defaultSchedule, search->describe(*point));
      llvm::Expected<kiln::tune::Measurement> m = measure(kernel, schedule, /*reuse=*/true);
      if (!m)
        return m.takeError();
      kernel.reused += m->reused;
      double cost = m->status == "ok" ? costOf(kernel, *m)
                                      : std::numeric_limits<double>::infinity();
      if (*point == initial)
        defaultCost = cost;
      search->tell(*point, cost);
      ++kernel.trials;
      kernel.failed += m->status != "ok";
      if (llvm::Error e = db.record(trialOf(kernel, schedule, *m, false, searchKind)))
        return e;
      auto best = search->best();
      char line[256];
      snprintf(line, sizeof line, "%s gen %u trial %u: best %s (%.2fx), %.0f s left",
               label.c_str(), search->generation(), kernel.trials,
               best ? formatNs(best->second).c_str() : "-",
               best && std::isfinite(defaultCost) ? defaultCost / best->second : 1.0,
               std::max(0.0, std::chrono::duration<double>(deadline - Clock::now()).count()));
      progress.show(line);
    }
    auto best = search->best();
    return confirm(kernel, best ? withKnobs(kernel.defaultSchedule, search->describe(best->first))
                                : kernel.defaultSchedule);
  }

  /// The whole model with what the database now holds against the defaults, run by
  /// run in one process (the defaults' artifact interleaved with the tuned one, as
  /// candidates are measured): the median over the rounds of each one's median run.
  /// None when the database holds nothing but defaults for these kernels (two
  /// measurements of the same code differ by noise alone: tens of percent for a model
  /// that runs in microseconds).
  llvm::Expected<std::optional<std::pair<double, double>>>
  endToEnd(const std::vector<TunableKernel> &kernels, const std::string &database) {
    bool anyTuned = false;
    for (const TunableKernel &k : kernels) {
      auto best = db.best({k.key, target, kiln::kCompilerVersion});
      if (!best)
        return best.takeError();
      anyTuned |= *best && (*best)->schedule != k.defaultSchedule;
    }
    if (!anyTuned)
      return std::nullopt;
    std::vector<double> plainRuns, tunedRuns;
    for (int round = 0; round < kConfirmations; ++round) {
      kiln::tune::Measurement tuned = measurement.measure(database);
      if (tuned.status != "ok")
        return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                       "the model did not run (" + tuned.status + "):\n" +
                                           tuned.detail);
      if (tuned.referenceRunNs.empty())
        return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                       "the tuned model ran without the defaults beside it");
      plainRuns.push_back(kiln::tune::median(tuned.referenceRunNs));
      tunedRuns.push_back(kiln::tune::median(tuned.runNs));
    }
    return std::pair{kiln::tune::median(plainRuns), kiln::tune::median(tunedRuns)};
  }

private:
  /// A measured candidate's time for `kernel`: its time relative to the default
  /// schedules' run beside it (interleaved), in units of the kernel's time in the
  /// default's profile; the plain median where the measurement has no reference.
  static double costOf(const TunableKernel &kernel, const kiln::tune::Measurement &m) {
    double relative = m.relativeToReference(kernel.dispatches);
    return relative > 0 && kernel.defaultNs > 0 ? relative * kernel.defaultNs
                                                : m.medianNs(kernel.dispatches);
  }

  /// Compiles the model with `schedule` for `kernel` alone (through a scratch database
  /// the compile reads as it would the user's) and runs it.
  /// With `reuse` (the searches; never the confirmations), a candidate compiling to an
  /// artifact measured before gets that measurement (CandidateMeasurement::measure).
  llvm::Expected<kiln::tune::Measurement> measure(const TunableKernel &kernel,
                                                  const std::string &schedule, bool reuse = false) {
    Clock::time_point start = Clock::now();
    if (llvm::Error e = writeScratchDatabase(
            scratch, {kernel.key, target, kiln::kCompilerVersion}, schedule))
      return std::move(e);
    kiln::tune::Measurement m = measurement.measure(scratch, false, reuse);
    double seconds = std::chrono::duration<double>(Clock::now() - start).count();
    if (!m.reused) { // the cost a budget plans with: a compile and the runs
      candidateSeconds = candidates ? (candidateSeconds * candidates + seconds) / (candidates + 1)
                                    : seconds;
      ++candidates;
    }
    return m;
  }

  kiln::tuning::Trial trialOf(const TunableKernel &k, const std::string &schedule,
                              const kiln::tune::Measurement &m, bool confirmed,
                              const std::string &search) const {
    kiln::tuning::Trial trial;
    trial.key = {k.key, target, kiln::kCompilerVersion};
    trial.schedule = schedule;
    trial.status = m.status;
    if (m.status == "ok")
      trial.timeNs = costOf(k, m);
    trial.confirmed = confirmed;
    trial.search = search;
    trial.session = session;
    trial.model = modelPath;
    return trial;
  }

  /// The winner and the default measured in turn. The winner is kept only if it beat
  /// the default in every round and by kMinSpeedup on average, so that a candidate that
  /// was fast once by noise never becomes what compiles take; a winner that fails this
  /// is recorded unconfirmed and the default's rounds stand.
  llvm::Error confirm(TunableKernel &kernel, const std::string &winner) {
    std::vector<double> defaultTimes, winnerTimes;
    std::vector<kiln::tuning::Trial> defaultTrials, winnerTrials;
    bool winnerFailed = false;
    for (int round = 0; round < kConfirmations; ++round)
      for (bool isDefault : {true, false}) {
        if (!isDefault && winner == kernel.defaultSchedule)
          continue;
        const std::string &schedule = isDefault ? kernel.defaultSchedule : winner;
        llvm::Expected<kiln::tune::Measurement> m = measure(kernel, schedule);
        if (!m)
          return m.takeError();
        (isDefault ? defaultTrials : winnerTrials)
            .push_back(trialOf(kernel, schedule, *m, true, "confirm"));
        if (m->status == "ok")
          (isDefault ? defaultTimes : winnerTimes).push_back(costOf(kernel, *m));
        else
          winnerFailed |= !isDefault;
      }
    bool holds = winner != kernel.defaultSchedule && !winnerFailed &&
                 winnerTimes.size() == defaultTimes.size() &&
                 mean(defaultTimes) >= kMinSpeedup * mean(winnerTimes);
    for (size_t i = 0; holds && i < winnerTimes.size(); ++i)
      holds = winnerTimes[i] < defaultTimes[i];
    if (!holds)
      for (kiln::tuning::Trial &trial : winnerTrials)
        trial.confirmed = false;
    defaultTrials.insert(defaultTrials.end(), winnerTrials.begin(), winnerTrials.end());
    if (llvm::Error e = db.record(defaultTrials))
      return e;
    kernel.confirmedDefaultNs = mean(defaultTimes);
    kernel.confirmedTunedNs = holds ? mean(winnerTimes) : kernel.confirmedDefaultNs;
    kernel.tunedSchedule = holds ? winner : kernel.defaultSchedule;
    kernel.tuned = true;
    if (holds)
      winners.push_back(winner);
    return llvm::Error::success();
  }

  /// The confirmed winners of the kernels tuned before, as points of `knobs` (the
  /// knobs they do not name keep `initial`'s values). The search drops the initial
  /// point and repeats among them.
  std::vector<kiln::tuning::Genome> earlierWinners(const std::vector<kiln::tuning::SearchKnob> &knobs,
                                                   const kiln::tuning::Genome &initial) const {
    std::vector<kiln::tuning::Genome> points;
    for (const std::string &winner : winners) {
      kiln::tuning::Genome point = initial;
      llvm::SmallVector<llvm::StringRef> tokens;
      llvm::StringRef(winner).split(tokens, ' ', -1, false);
      for (size_t i = 0; i < knobs.size(); ++i)
        if (std::optional<unsigned> value = knobValueIn(tokens, knobs[i]))
          point[i] = *value;
      points.push_back(point);
    }
    return points;
  }

  /// The schedules that beat the default in their confirmation rounds, in tuning order.
  std::vector<std::string> winners;

  kiln::tune::CandidateMeasurement &measurement;
  kiln::tuning::TuningDatabase &db;
  std::string target, scratch, session;
  unsigned candidates = 0;
};

/// The table at the end: one row per tuned kernel, then the whole model.
void printTable(const std::vector<TunableKernel> &kernels, const std::vector<size_t> &order,
                double kernelTotal, const std::string &targetString, const std::string &database,
                std::optional<std::pair<double, double>> endToEnd) {
  llvm::outs() << "kiln-tune: " << modelPath << " on " << targetString << ", search "
               << searchKind << ", database " << database << "\n";
  char row[512];
  snprintf(row, sizeof row, "  %-6s %-34s %6s %11s %11s %8s %7s %7s  %s\n", "kernel", "what",
           "share", "default", "tuned", "speed-up", "trials", "failed", "schedule");
  llvm::outs() << row;
  for (size_t index : order) {
    const TunableKernel &k = kernels[index];
    if (!k.tuned)
      continue;
    snprintf(row, sizeof row, "  %-6zu %-34s %5.1f%% %11s %11s %7.2fx %7u %7u  %s\n", index,
             k.what.substr(0, 34).c_str(), 100 * k.defaultNs / kernelTotal,
             formatNs(k.confirmedDefaultNs).c_str(), formatNs(k.confirmedTunedNs).c_str(),
             k.confirmedDefaultNs / k.confirmedTunedNs, k.trials, k.failed,
             k.tunedSchedule == k.defaultSchedule ? "(default)" : k.tunedSchedule.c_str());
    llvm::outs() << row;
  }
  if (!endToEnd) {
    llvm::outs() << "  end to end: every kernel keeps its default schedule\n";
    return;
  }
  snprintf(row, sizeof row, "  end to end: default %s, tuned %s per run (%.2fx)\n",
           formatNs(endToEnd->first).c_str(), formatNs(endToEnd->second).c_str(),
           endToEnd->first / endToEnd->second);
  llvm::outs() << row;
}

} // namespace

int main(int argc, char **argv) {
  llvm::InitLLVM init(argc, argv);
  cl::HideUnrelatedOptions(category);
  std::vector<const char *> args;
  for (int i = 0; i < argc; ++i) {
    llvm::StringRef arg = argv[i], value;
    if (arg == "--threads" || arg == "-threads") {
      if (i + 1 == argc)
        return fail("--threads needs a number");
      value = argv[++i];
    } else if (!arg.consume_front("--threads=") && !arg.consume_front("-threads=")) {
      args.push_back(argv[i]);
      continue;
    } else {
      value = arg;
    }
    if (value.getAsInteger(10, threads))
      return fail("--threads needs a number, got '" + value + "'");
  }
  cl::ParseCommandLineOptions(
      static_cast<int>(args.size()), args.data(),
      "kiln-tune: autotunes a model's kernel schedules into the tuning database\n\n"
      "  kiln-tune model.onnx --budget 10m            tune (genetic algorithm)\n"
      "  kiln-tune model.onnx --budget 2m --search random\n"
      "  kiln-tune --export schedules.jsonl           ship the confirmed schedules\n"
      "  kiln-tune --import schedules.jsonl           and take them in elsewhere\n"
      "  kiln-tune --report DIR                       convergence plots, GA vs SA vs random\n\n"
      "Then kiln-compile (--tune=use, its default) compiles with the best schedules.\n\n"
      "  --threads=<uint>         - Kernel worker threads while measuring (kiln-run "
      "--threads; default 0: one per CPU)\n");
  std::string database = tuningDb.empty() ? kiln::tuning::defaultDatabasePath() : tuningDb;
  if (!reportDir.empty() || !exportPath.empty() || !importPath.empty())
    return runDatabaseCommand(database);
  if (modelPath.empty())
    return fail("no model given (kiln-tune MODEL; see --help)");
  std::optional<double> budget = parseSeconds(budgetText);
  if (!budget)
    return fail("--budget needs a time such as 90s, 10m or 1h, got '" + budgetText + "'");
  if (searchKind != "ga" && searchKind != "sa" && searchKind != "random")
    return fail("--search must be ga, sa or random, got '" + searchKind + "'");
  if (population < 2)
    return fail("--population needs at least 2");
  Clock::time_point deadline =
      Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(*budget));

  // Where candidates are built and run.
  llvm::SmallString<128> work;
  if (std::error_code ec = llvm::sys::fs::createUniqueDirectory("kiln-tune", work))
    return fail("cannot create a temporary directory: " + ec.message());
  struct RemoveOnExit {
    std::string path;
    ~RemoveOnExit() { llvm::sys::fs::remove_directories(path); }
  } removeWork{std::string(work)};
  kiln::tune::MeasurementSetup setup;
  std::optional<ModelKernels> model = loadModel(work, setup.inputArgs);
  if (!model)
    return 1;
  std::vector<TunableKernel> &kernels = model->kernels;
  std::string self = llvm::sys::fs::getMainExecutable(argv[0], reinterpret_cast<void *>(&fail));
  llvm::StringRef binDir = llvm::sys::path::parent_path(self);
  setup.compiler = (binDir + "/kiln-compile").str();
  setup.runner = (binDir + "/kiln-run").str();
  setup.model = modelPath;
  // Candidates differ from the default in one kernel: the others come from this
  // session's cache of compiled kernels.
  setup.compileArgs = {"--target", target, "--activations", activations, "--kernel-cache",
                       (work + "/kernels").str()};
  if (seqLen)
    setup.compileArgs.insert(setup.compileArgs.end(), {"--seq-len", std::to_string(seqLen)});
  if (batch)
    setup.compileArgs.insert(setup.compileArgs.end(), {"--batch", std::to_string(batch)});
  if (kvCache)
    setup.compileArgs.push_back("--kv-cache");
  if (contextLength)
    setup.compileArgs.insert(setup.compileArgs.end(), {"--ctx", std::to_string(contextLength)});
  if (fullWindowCaches)
    setup.compileArgs.push_back("--full-window-caches");
  // A GPU target's candidates run on that GPU.
  if (model->device != "cpu")
    setup.runArgs = {"--device", model->device};
  setup.entry = entry;
  setup.workDirectory = std::string(work);
  setup.runs = std::max(1u, runs.getValue());
  setup.threads = threads;
  setup.timeoutSeconds = timeout;
  kiln::tune::CandidateMeasurement measurement(setup);
  auto db = kiln::tuning::TuningDatabase::openForWriting(database);
  if (!db)
    return fail(llvm::toString(db.takeError()));
  Tuner tuner(measurement, **db, model->target, (work + "/candidate.sqlite").str());

  // Profile first: the default schedules' times say where the budget goes.
  Progress progress;
  progress.show("profiling " + modelPath + " with the default schedules");
  kiln::tune::Measurement baseline = measurement.measure("", /*writeReference=*/true);
  if (baseline.status != "ok")
    return fail("the model with its default schedules did not run (" + baseline.status +
                "):\n" + baseline.detail);
  // What a candidate costs, until candidates have been measured: a second compile and
  // run, which like a candidate's takes its kernels from the cache the first filled.
  Clock::time_point warmStart = Clock::now();
  kiln::tune::Measurement warm = measurement.measure("");
  if (warm.status != "ok")
    return fail("the model with its default schedules did not run again (" + warm.status +
                "):\n" + warm.detail);
  tuner.candidateSeconds = std::chrono::duration<double>(Clock::now() - warmStart).count();
  double kernelTotal = 0;
  for (TunableKernel &k : kernels) {
    k.defaultNs = baseline.medianNs(k.dispatches);
    k.what = baseline.what.count(k.dispatches.front()) ? baseline.what[k.dispatches.front()] : "";
    kernelTotal += k.defaultNs;
  }
  std::vector<size_t> order(kernels.size());
  for (size_t i = 0; i < order.size(); ++i)
    order[i] = i;
  std::sort(order.begin(), order.end(),
            [&](size_t a, size_t b) { return kernels[a].defaultNs > kernels[b].defaultNs; });
  double tunedShare = 0;
  for (TunableKernel &k : kernels)
    if (kernelTotal > 0 && k.defaultNs / kernelTotal >= minShare)
      tunedShare += k.defaultNs / kernelTotal;

  for (size_t index : order) {
    TunableKernel &k = kernels[index];
    double share = kernelTotal > 0 ? k.defaultNs / kernelTotal : 0;
    std::string label = "kernel " + std::to_string(index) + " (" + k.what + ", " +
                        std::to_string(static_cast<int>(std::lround(share * 100))) + "%)";
    if (share < minShare) {
      progress.finish(label + ": not tuned (below --min-share)");
      continue;
    }
    // This kernel's slice of what is left after the end-to-end comparison, by its share
    // among the kernels still to tune; its last candidates' time goes to confirming.
    double confirming = kConfirmations * 2 * tuner.candidateSeconds;
    double left = std::chrono::duration<double>(deadline - Clock::now()).count() - confirming;
    double slice = left * share / tunedShare;
    tunedShare -= share;
    if (slice < confirming + 2 * tuner.candidateSeconds) {
      progress.finish(label + ": not tuned (its share of the budget, " +
                      std::to_string(static_cast<int>(std::max(0.0, slice))) +
                      " s, buys too few candidates)");
      continue;
    }
    Clock::time_point kernelDeadline =
        Clock::now() +
        std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(slice - confirming));
    if (llvm::Error e = tuner.tune(k, model->space, kernelDeadline, label, progress))
      return fail(llvm::toString(std::move(e)));
    char line[512];
    snprintf(line, sizeof line,
             "%s: %u trials (%u failed, %u compiled to an artifact measured before), default "
             "%s, tuned %s (%.2fx)",
             label.c_str(), k.trials, k.failed, k.reused, formatNs(k.confirmedDefaultNs).c_str(),
             formatNs(k.confirmedTunedNs).c_str(), k.confirmedDefaultNs / k.confirmedTunedNs);
    progress.finish(line);
  }

  auto endToEnd = tuner.endToEnd(kernels, database);
  if (!endToEnd)
    return fail("comparing the tuned model with the default: " +
                llvm::toString(endToEnd.takeError()));
  printTable(kernels, order, kernelTotal, model->target, database, *endToEnd);
  return 0;
}
