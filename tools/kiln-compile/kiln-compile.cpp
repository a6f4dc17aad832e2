// kiln-compile: ahead-of-time compilation of a model file through kiln's pipeline.
#include "backends/Backend.h"
#include "compiler/ArtifactEmitter.h"
#include "compiler/Pipelines.h"
#include "compiler/Registration.h"
#include "compiler/Tuning/TuningDatabase.h"
#include "frontends/ModelImport.h"
#include "CalibrationText.h"
#include "QuantizationAccuracy.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/DialectRegistry.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Support/FileUtilities.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/Error.h"
#include "llvm/ADT/ScopeExit.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/Program.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/ToolOutputFile.h"
#include "llvm/Support/WithColor.h"

#include <nlohmann/json.hpp>
#include <unistd.h>

using namespace mlir;
namespace cl = llvm::cl;

namespace {

enum class Emit { Artifact, Mlir, HalideStmt };

cl::OptionCategory category("kiln-compile options");
cl::opt<std::string> inputPath(cl::Positional,
                               cl::desc("<model file or Hugging Face model directory>"),
                               cl::cat(category));
cl::opt<std::string> outputPath(
    "o", cl::desc("Output file ('-' for stdout; default: <model>.kiln for artifacts, stdout "
                  "otherwise)"),
    cl::value_desc("path"), cl::cat(category));
cl::opt<std::string> target("target",
                            cl::desc("Target to compile for: host (this CPU, its features "
                                     "detected), arm-64-linux, a Halide CPU target string; "
                                     "cuda (= cuda-sm_80), cuda-sm_NN[-sm_MM...] (one code "
                                     "object per GPU architecture); metal (Apple GPUs)"),
                            cl::init("host"), cl::cat(category));
cl::opt<Emit> emit("emit", cl::desc("What to write"), cl::init(Emit::Artifact),
                   cl::values(clEnumValN(Emit::Artifact, "artifact",
                                         "a .kiln artifact for kiln-run and the runtime (default)"),
                              clEnumValN(Emit::Mlir, "mlir", "kiln IR after the pipeline"),
                              clEnumValN(Emit::HalideStmt, "halide-stmt",
                                         "the lowered Halide statements of every kernel")),
                   cl::cat(category));
cl::opt<int64_t> seqLen("seq-len",
                        cl::desc("Tokens per forward pass when compiling a language model "
                                 "(GGUF) or an encoder (BERT); default: the frontend's"),
                        cl::init(0), cl::cat(category));
cl::opt<int64_t> batch("batch",
                       cl::desc("Sequences per forward pass when compiling an encoder (BERT's "
                                "@embed); default: 1"),
                       cl::init(0), cl::cat(category));
cl::opt<bool> kvCache("kv-cache",
                      cl::desc("Language models (GGUF): compile @prefill (--seq-len tokens) and "
                               "@decode (one token) over a persistent KV cache"),
                      cl::cat(category));
cl::opt<int64_t> contextLength("ctx",
                               cl::desc("KV-cache positions (tokens) with --kv-cache, each cache's rows but "
                                        "for sliding-window rings; default: "
                                        "min(the model's context, 512)"),
                               cl::init(0), cl::cat(category));
cl::opt<bool> fullWindowCaches(
    "full-window-caches",
    cl::desc("With --kv-cache, sliding-window layers keep --ctx rows instead of a ring "
             "buffer of window + --seq-len - 1 rows (same results, more memory)"),
    cl::cat(category));
cl::opt<unsigned> jobs("jobs",
                       cl::desc("Kernels to compile at the same time; default: one per "
                                "hardware thread"),
                       cl::init(0), cl::cat(category));
enum class Activations { Int8, F32 };
cl::opt<Activations> activations(
    "activations",
    cl::desc("Activations of one-row products with Q8_0, Q4_0, Q5_0, Q4_K or Q6_K weights "
             "(a language model's decode step)"),
    cl::values(clEnumValN(Activations::Int8, "int8",
                          "quantized to 8-bit blocks of 32, as llama.cpp does, with integer "
                          "dot products (default: faster, as close to the exact result as "
                          "llama.cpp)"),
               clEnumValN(Activations::F32, "f32",
                          "kept in f32 (the closest to the exact result, slower)")),
    cl::init(Activations::Int8), cl::cat(category));
enum class GpuLibrary { Auto, None };
cl::opt<GpuLibrary> gpuLibrary(
    "gpu-library",
    cl::desc("--target=cuda: who computes large float32 GEMMs (matmuls over float "
             "weights or activations, not packed ones)"),
    cl::values(clEnumValN(GpuLibrary::Auto, "auto",
                          "cuBLAS, where the runtime finds it (kiln's own kernel elsewhere), "
                          "the epilogue a kernel of its own; a schedule's gpu_library=0 "
                          "keeps a kernel off it (default)"),
               clEnumValN(GpuLibrary::None, "none",
                          "kiln's own kernels, epilogues fused")),
    cl::init(GpuLibrary::Auto), cl::cat(category));
cl::opt<bool> tf32("tf32",
                   cl::desc("--target=cuda: cuBLAS GEMMs round their inputs to TF32 (10-bit "
                            "mantissas, float32 sums): faster on tensor cores, about 1e-3 "
                            "relative error (default: IEEE float32)"),
                   cl::cat(category));
cl::opt<std::string> schedule(
    "schedule",
    cl::desc("Override schedule knobs of every kernel, e.g. 'tile_rows=4 tile_vectors=2' "
             "(for experiments and the autotuner; the rest stay the backend's default; "
             "--schedule-space lists the knobs and their values)"),
    cl::value_desc("knobs"), cl::cat(category));
enum class Tune { Off, Use, Tune };
cl::opt<Tune> tune(
    "tune", cl::desc("Schedules from the tuning database"), cl::init(Tune::Use),
    cl::values(clEnumValN(Tune::Off, "off", "ignore it: every kernel takes the default schedule"),
               clEnumValN(Tune::Use, "use",
                          "each kernel takes the database's best schedule for it where there "
                          "is one, the default elsewhere; measures nothing (default)"),
               clEnumValN(Tune::Tune, "tune",
                          "first run kiln-tune on the model (--tune-budget), then as 'use'")),
    cl::cat(category));
cl::opt<std::string> tuningDb("tuning-db",
                              cl::desc("The tuning database: a SQLite file or a postgresql:// "
                                       "URL (default: $KILN_TUNING_DB, else "
                                       "~/.cache/kiln/tuning.sqlite)"),
                              cl::value_desc("path"), cl::cat(category));
cl::opt<std::string> tuneBudget("tune-budget",
                                cl::desc("With --tune=tune: kiln-tune's --budget (default 10m)"),
                                cl::init("10m"), cl::value_desc("time"), cl::cat(category));
cl::opt<std::string> deviceCodeDir(
    "emit-device-code",
    cl::desc("With a GPU target, also write each kernel's GPU code into this directory: "
             "<kernel>.sm_NN.ptx (cuda) or <kernel>.metal"),
    cl::value_desc("dir"), cl::cat(category));
cl::opt<std::string> kernelCache(
    "kernel-cache",
    cl::desc("Reuse compiled kernels from DIR and add those compiled (for kiln-tune, whose "
             "candidates differ in one kernel; valid for one build of kiln-compile only)"),
    cl::value_desc("DIR"), cl::cat(category));
cl::opt<bool> scheduleSpace("schedule-space",
                            cl::desc("Print the target's schedule knobs and the values each "
                                     "may take, then exit; with a model, also each kernel "
                                     "and the knobs that change its code (what kiln-tune "
                                     "searches for it) with their default values"),
                            cl::cat(category));
cl::opt<std::string> reportJson(
    "report-json",
    cl::desc("Also write the compile's figures as a JSON object (kernels before and after "
             "fusion, unique kernels, arena bytes against their lower bound, weight, state "
             "and code bytes, per entry point; docs/architecture.md lists every key)"),
    cl::value_desc("path"), cl::cat(category));
cl::opt<std::string> quantize(
    "quantize",
    cl::desc("Quantize the float weights of products (weight-only): int8 (q8_0: per "
             "output channel, a scale per 32 input channels), int4[:32] (q4_0, groups "
             "of 32, round to nearest; int4:32:zp: q4_1, with a zero point per group) or "
             "awq[:32[:zp]] (int4 after activation-aware per-input-channel scaling "
             "searched on --calibration or --calibration-text); --quantize-keep-float "
             "says which weights stay float"),
    cl::value_desc("int8|int4[:32[:zp]]|awq[:32[:zp]]"), cl::cat(category));
cl::opt<std::string> quantizeKeepFloat(
    "quantize-keep-float",
    cl::desc("With --quantize: comma-separated weights that stay float: embeddings (gathered "
             "tables), head (products feeding an output), substrings of weight names, or "
             "none (default: embeddings,head)"),
    cl::init("embeddings,head"), cl::value_desc("list"), cl::cat(category));
cl::list<std::string> calibration(
    "calibration",
    cl::desc("With --quantize: an input (.npy) of the model, bound to its inputs in order "
             "(repeat for each input); the float and the quantized artifacts are run on "
             "them and the accuracy report compares their outputs. A language model's "
             "tokens come first: its logits then give perplexity and KL divergence"),
    cl::value_desc("FILE.npy"), cl::cat(category));
cl::opt<std::string> calibrationText(
    "calibration-text",
    cl::desc("With --quantize (a language model): a text, tokenized with the model's own "
             "tokenizer and cut into forward passes of --seq-len tokens (up to 16): AWQ "
             "searches its scales on all of them, the accuracy report measures the first"),
    cl::value_desc("FILE"), cl::cat(category));
cl::opt<unsigned> awqGrid(
    "awq-grid",
    cl::desc("With --quantize=awq: the steps of AWQ's search for alpha in [0, 1] "
             "(default 20: 0, 0.05, ..., 1; 0 keeps alpha = 0, plain round-to-nearest)"),
    cl::init(20), cl::cat(category));
cl::opt<bool> returnProductInputs(
    "return-product-inputs",
    cl::desc("Also return the activations of every product with a float weight, named "
             "<weight>.input (the calibration artifact of --quantize=awq)"),
    cl::Hidden, cl::cat(category));
cl::opt<bool> printIrAfterAll("print-ir-after-all",
                              cl::desc("Print the IR after every pass (to stderr)"),
                              cl::cat(category));

/// --tune=tune: kiln-tune (next to this executable) tunes the model into the database
/// before the compile reads it.
int runTuner(const char *argv0, const std::string &database) {
  std::string self = llvm::sys::fs::getMainExecutable(argv0, reinterpret_cast<void *>(&runTuner));
  llvm::SmallString<256> tuner(llvm::sys::path::parent_path(self));
  llvm::sys::path::append(tuner, "kiln-tune");
  std::vector<std::string> args{tuner.str().str(), inputPath, "--budget", tuneBudget,
                                "--tuning-db", database, "--target", target};
  if (seqLen)
    args.insert(args.end(), {"--seq-len", std::to_string(seqLen)});
  if (batch)
    args.insert(args.end(), {"--batch", std::to_string(batch)});
  if (kvCache)
    args.push_back("--kv-cache");
  if (contextLength)
    args.insert(args.end(), {"--ctx", std::to_string(contextLength)});
  if (fullWindowCaches)
    args.push_back("--full-window-caches");
  if (activations == Activations::F32)
    args.push_back("--activations=f32");
  std::vector<llvm::StringRef> argv(args.begin(), args.end());
  std::string error;
  int rc = llvm::sys::ExecuteAndWait(tuner, argv, std::nullopt, {}, 0, 0, &error);
  if (rc != 0) {
    llvm::WithColor::error(llvm::errs(), "kiln-compile")
        << "kiln-tune failed (" << (error.empty() ? "exit code " + std::to_string(rc) : error)
        << ")\n";
    return 1;
  }
  return 0;
}

int fail(const llvm::Twine &message) {
  llvm::WithColor::error(llvm::errs(), "kiln-compile") << message << "\n";
  return 1;
}

/// A float artifact of the same model: this executable compiling it with the same
/// options but --quantize (and --calibration*), plus `extra`. The accuracy report's
/// reference, and AWQ's calibration artifact (with `forCalibration`: one full-sequence
/// pass of `tokensPerRun` tokens, no KV cache, returning the products' activations).
int compileFloatVariant(const char *argv0, const std::string &artifact, bool forCalibration,
                        int64_t tokensPerRun, llvm::StringRef purpose) {
  std::string self = llvm::sys::fs::getMainExecutable(argv0, reinterpret_cast<void *>(&runTuner));
  std::vector<std::string> args{self, inputPath, "-o", artifact, "--target", target};
  if (forCalibration && tokensPerRun)
    args.insert(args.end(), {"--seq-len", std::to_string(tokensPerRun)});
  else if (seqLen)
    args.insert(args.end(), {"--seq-len", std::to_string(seqLen)});
  if (batch)
    args.insert(args.end(), {"--batch", std::to_string(batch)});
  if (forCalibration)
    args.push_back("--return-product-inputs");
  else if (kvCache)
    args.push_back("--kv-cache");
  if (contextLength)
    args.insert(args.end(), {"--ctx", std::to_string(contextLength)});
  if (fullWindowCaches)
    args.push_back("--full-window-caches");
  if (activations == Activations::F32)
    args.push_back("--activations=f32");
  if (gpuLibrary == GpuLibrary::None)
    args.push_back("--gpu-library=none");
  if (tf32)
    args.push_back("--tf32");
  if (!schedule.empty())
    args.insert(args.end(), {"--schedule", schedule});
  args.push_back(tune == Tune::Off ? "--tune=off" : "--tune=use");
  if (!tuningDb.empty())
    args.insert(args.end(), {"--tuning-db", tuningDb});
  std::vector<llvm::StringRef> argv(args.begin(), args.end());
  std::string error;
  int rc = llvm::sys::ExecuteAndWait(self, argv, std::nullopt, {}, 0, 0, &error);
  if (rc != 0)
    llvm::WithColor::error(llvm::errs(), "kiln-compile")
        << "compiling the float model for " << purpose << " failed ("
        << (error.empty() ? "exit code " + std::to_string(rc) : error) << ")\n";
  return rc;
}

/// kiln-run, next to this executable.
std::string kilnRunPath(const char *argv0) {
  std::string self = llvm::sys::fs::getMainExecutable(argv0, reinterpret_cast<void *>(&runTuner));
  llvm::SmallString<256> kilnRun(llvm::sys::path::parent_path(self));
  llvm::sys::path::append(kilnRun, "kiln-run");
  return kilnRun.str().str();
}

/// Tokens of one forward pass of a language model: the length of the `tokens` input
/// of its full-sequence entry point (or prefill); 0 for a model without one.
int64_t tokensPerRun(ModuleOp module) {
  int64_t tokens = 0;
  module.walk([&](func::FuncOp func) {
    for (unsigned i = 0; i < func.getNumArguments(); ++i) {
      auto name = func.getArgAttrOfType<StringAttr>(i, "kiln.name");
      auto type = dyn_cast<RankedTensorType>(func.getArgument(i).getType());
      if (name && name.getValue() == "tokens" && type && type.getRank() == 1 &&
          type.hasStaticShape())
        tokens = std::max(tokens, type.getDimSize(0));
    }
  });
  return tokens;
}

/// Whether the model's entry points take a `positions` input.
bool takesPositions(ModuleOp module) {
  bool positions = false;
  module.walk([&](func::FuncOp func) {
    for (unsigned i = 0; i < func.getNumArguments(); ++i)
      if (auto name = func.getArgAttrOfType<StringAttr>(i, "kiln.name"))
        positions |= name.getValue() == "positions";
  });
  return positions;
}

/// AWQ's calibration: the float model compiled to return its products' activations,
/// run by kiln-run on each calibration run; the directories of activations it wrote
/// (comma-separated, for kiln-awq-scale), or failure.
FailureOr<std::string> gatherActivations(const char *argv0,
                                         const std::vector<kiln::tools::CalibrationRun> &runs,
                                         int64_t tokens, llvm::StringRef work) {
  std::string artifact = (work + "/calibration.kiln").str();
  if (compileFloatVariant(argv0, artifact, /*forCalibration=*/true, tokens,
                          "AWQ's calibration") != 0)
    return failure();
  std::string directories, error;
  for (size_t r = 0; r < runs.size(); ++r) {
    std::string dir = (work + "/activations" + std::to_string(r)).str();
    if (!kiln::tools::runArtifact(kilnRunPath(argv0), artifact, runs[r], dir, error)) {
      fail("AWQ calibration: " + error);
      return failure();
    }
    directories += (r ? "," : "") + dir;
  }
  return directories;
}

/// --quantize's accuracy report: bytes before and after, and with calibration inputs
/// (--calibration, or the first run of --calibration-text) the quantized outputs
/// against the float model's, both artifacts run by kiln-run. Printed and returned for
/// --report-json.
FailureOr<nlohmann::ordered_json> quantizationAccuracy(const char *argv0,
                                                       const kiln::ArtifactSummary &summary,
                                                       const std::string &quantized,
                                                       const std::vector<std::string> &inputs) {
  double ratio = summary.weightBytesBefore
                     ? double(summary.weightBytes) / double(summary.weightBytesBefore)
                     : 1.0;
  nlohmann::ordered_json accuracy = {{"scheme", quantize.getValue()},
                                     {"keep_float", quantizeKeepFloat.getValue()},
                                     {"weight_bytes_before", summary.weightBytesBefore},
                                     {"weight_bytes_after", summary.weightBytes},
                                     {"weight_bytes_ratio", ratio}};
  llvm::errs() << llvm::format("kiln-compile: --quantize=%s: weights %llu -> %llu bytes "
                               "(%.3fx)\n",
                               quantize.c_str(), (unsigned long long)summary.weightBytesBefore,
                               (unsigned long long)summary.weightBytes, ratio);
  if (inputs.empty()) {
    accuracy["measured"] = false;
    llvm::errs() << "kiln-compile: no --calibration inputs: accuracy against the float "
                    "model not measured\n";
    return accuracy;
  }
  llvm::SmallString<128> work;
  if (std::error_code ec = llvm::sys::fs::createUniqueDirectory("kiln-accuracy", work)) {
    fail("cannot create a temporary directory: " + ec.message());
    return failure();
  }
  std::string floatArtifact = (work + "/float.kiln").str();
  llvm::scope_exit cleanup([&] { llvm::sys::fs::remove_directories(work); });
  if (compileFloatVariant(argv0, floatArtifact, /*forCalibration=*/false, 0,
                          "the accuracy report") != 0)
    return failure();
  std::string error;
  std::vector<kiln::tools::OutputAccuracy> outputs = kiln::tools::measureAccuracy(
      kilnRunPath(argv0), floatArtifact, quantized, inputs, work.str().str(), error);
  if (outputs.empty()) {
    fail("accuracy report: " + error);
    return failure();
  }
  accuracy["measured"] = true;
  accuracy["calibration"] = inputs;
  nlohmann::ordered_json rows = nlohmann::ordered_json::array();
  for (const kiln::tools::OutputAccuracy &output : outputs) {
    llvm::errs() << llvm::format("kiln-compile: accuracy of %s vs float: max |error| %.4g "
                                 "(%.4g of max |float|), min cosine %.6f",
                                 output.name.c_str(), output.maxAbsError,
                                 output.maxRelativeError, output.minCosine);
    if (output.languageModel)
      llvm::errs() << llvm::format(", perplexity %.4f (float %.4f), KL %.4g",
                                   output.perplexityQuantized, output.perplexityFloat,
                                   output.klDivergence);
    llvm::errs() << "\n";
    rows.push_back(kiln::tools::toJson(output));
  }
  accuracy["outputs"] = std::move(rows);
  return accuracy;
}


/// The --report-json object. Its keys are a stable interface (scripts and CI read them):
/// add keys, never rename or drop one.
nlohmann::ordered_json report(const kiln::ArtifactSummary &summary) {
  nlohmann::ordered_json entryPoints = nlohmann::ordered_json::array();
  for (const kiln::EntryPointSummary &entry : summary.entryPoints)
    entryPoints.push_back({{"name", entry.name},
                           {"kernels_before_fusion", entry.dispatchesBeforeFusion},
                           {"kernels_after_fusion", entry.dispatches},
                           {"arena_bytes", entry.arenaBytes},
                           {"arena_lower_bound_bytes", entry.arenaLowerBound},
                           {"in_place_results", entry.inPlaceResults}});
  // No quantization pass exists yet: the weights are stored as the model has them.
  return {{"model", inputPath.getValue()},
          {"target", summary.target},
          {"kernels_before_fusion", summary.dispatchesBeforeFusion},
          {"kernels_after_fusion", summary.dispatches},
          {"unique_kernels", summary.kernels},
          {"library_kernels", summary.libraryKernels},
          {"arena_bytes", summary.arenaBytes},
          {"arena_lower_bound_bytes", summary.arenaLowerBound},
          {"weight_bytes_before", summary.weightBytesBefore},
          {"weight_bytes_after", summary.weightBytes},
          {"state_bytes", summary.stateBytes},
          {"code_bytes", summary.codeBytes},
          {"entry_points", std::move(entryPoints)}};
}

/// Writes `json` to `path` through a temporary file renamed into place, so a reader
/// never sees half a report.
llvm::Error writeJson(llvm::StringRef path, const nlohmann::ordered_json &json) {
  return llvm::writeToOutput(path, [&](llvm::raw_ostream &os) {
    // A model path need not be UTF-8; replace what is not rather than fail.
    os << json.dump(2, ' ', false, nlohmann::ordered_json::error_handler_t::replace) << "\n";
    return llvm::Error::success();
  });
}

/// "compiling kernels: 12/97", rewritten in place on a terminal and erased when done;
/// nothing when stderr is a file or a pipe.
void showProgress(unsigned compiled, unsigned total) {
  llvm::errs() << "\rcompiling kernels: " << compiled << "/" << total;
  if (compiled == total)
    llvm::errs() << "\r\x1b[K";
  llvm::errs().flush();
}

} // namespace

int main(int argc, char **argv) {
  llvm::InitLLVM init(argc, argv);
  cl::HideUnrelatedOptions(category);
  cl::ParseCommandLineOptions(
      argc, argv,
      "kiln-compile: compiles a model ahead of time\n\n"
      "  kiln-compile model.onnx -o model.kiln          compile for this CPU\n"
      "  kiln-compile model.onnx --emit=mlir            print kiln IR after the pipeline\n"
      "  kiln-compile llama.gguf --seq-len 64           a language model's forward pass\n"
      "  kiln-compile all-MiniLM-L6-v2/ --batch 8       a sentence encoder (@embed)\n"
      "  kiln-compile model.onnx --report-json r.json   and its figures, as JSON\n\n"
      "The input format follows the file's extension: " +
          kiln::supportedModelExtensions().str() + ".\n");

  std::string error;
  kiln::NumericsOptions numerics;
  numerics.int8Activations = activations == Activations::Int8;
  numerics.tf32 = tf32;
  std::unique_ptr<kiln::Backend> backend = kiln::createBackend(target, error, numerics);
  if (!backend)
    return fail(error);
  std::string gemmLibrary = kiln::gemmLibraryFor(backend->name().str());
  if (tf32 && (gemmLibrary.empty() || gpuLibrary == GpuLibrary::None))
    return fail("--tf32 rounds the inputs of cuBLAS GEMMs: it needs --target=cuda and "
                "--gpu-library=auto");
  if (!deviceCodeDir.empty() && backend->name() == "cpu")
    return fail("--emit-device-code needs a GPU target (--target=cuda or --target=metal); " +
                backend->target() + " has no GPU code");
  if (scheduleSpace && inputPath.empty()) {
    llvm::outs() << backend->describeScheduleSpace();
    return 0;
  }
  if (inputPath.empty())
    return fail("no model given (kiln-compile MODEL; see --help)");
  if ((!calibration.empty() || !calibrationText.empty()) && quantize.empty())
    return fail("--calibration and --calibration-text need --quantize: they measure the "
                "quantized model against the float one");
  if (!calibration.empty() && !calibrationText.empty())
    return fail("give --calibration (the model's inputs) or --calibration-text (a text for "
                "a language model), not both");
  if (!reportJson.empty() && emit != Emit::Artifact)
    return fail("--report-json needs --emit=artifact: its figures come from compiling the "
                "kernels and writing the artifact");

  DialectRegistry registry;
  kiln::registerDialects(registry);
  MLIRContext context(registry);
  // Diagnostics point at the model's ops; dumping whole kernels would bury them.
  context.printOpOnDiagnostic(false);
  llvm::SourceMgr sourceMgr;
  SourceMgrDiagnosticHandler diagnostics(sourceMgr, &context);
  kiln::ImportOptions importOptions;
  importOptions.sequenceLength = seqLen;
  importOptions.batchSize = batch;
  importOptions.kvCache = kvCache;
  importOptions.contextLength = contextLength;
  importOptions.fullWindowCaches = fullWindowCaches;
  OwningOpRef<ModuleOp> module =
      kiln::importModelFile(inputPath, context, sourceMgr, importOptions);
  if (!module)
    return 1;

  PassManager pm(&context);
  if (printIrAfterAll) {
    context.disableMultithreading();
    pm.enableIRPrinting(/*shouldPrintBeforePass=*/nullptr,
                        /*shouldPrintAfterPass=*/[](Pass *, Operation *) { return true; },
                        /*printModuleScope=*/true, /*printAfterOnlyOnChange=*/false);
  }
  kiln::PipelineOptions pipelineOptions;
  pipelineOptions.schedule = schedule;
  if (gpuLibrary == GpuLibrary::Auto)
    pipelineOptions.library = gemmLibrary;
  // Calibration inputs, one list per forward pass: --calibration's files, or
  // --calibration-text's runs written into a work directory removed at exit.
  std::vector<kiln::tools::CalibrationRun> calibrationRuns;
  if (!calibration.empty())
    calibrationRuns.emplace_back(calibration.begin(), calibration.end());
  llvm::SmallString<128> work;
  llvm::scope_exit removeWork([&] {
    if (!work.empty())
      llvm::sys::fs::remove_directories(work);
  });
  if (!calibrationText.empty() || quantize.getValue().rfind("awq", 0) == 0)
    if (std::error_code ec = llvm::sys::fs::createUniqueDirectory("kiln-calibration", work))
      return fail("cannot create a temporary directory: " + ec.message());
  int64_t tokens = tokensPerRun(*module);
  if (!calibrationText.empty()) {
    if (tokens == 0)
      return fail("--calibration-text needs a language model (an entry point with a "
                  "'tokens' input); give a tensor model's inputs with --calibration");
    // 16 passes: AWQ's search uses at most 1024 activation rows anyway.
    calibrationRuns = kiln::tools::writeCalibrationText(
        inputPath, calibrationText, tokens, takesPositions(*module), 16, work.str().str(), error);
    if (calibrationRuns.empty())
      return fail(error);
  }
  if (!quantize.empty()) {
    llvm::StringRef scheme = quantize, group, zeroPoint;
    std::tie(scheme, group) = scheme.split(':');
    std::tie(group, zeroPoint) = group.split(':');
    if (scheme != "int8" && scheme != "int4" && scheme != "awq")
      return fail("--quantize=" + quantize + ": expected int8, int4[:32[:zp]] or awq[:32[:zp]]");
    if (!group.empty() && (scheme == "int8" || group != "32"))
      return fail("--quantize=" + quantize + ": only int4 and awq take a group size, and "
                  "only 32 (q4_0 and q4_1 blocks) is implemented");
    if (!zeroPoint.empty() && zeroPoint != "zp")
      return fail("--quantize=" + quantize + ": the third field can only be 'zp' (a zero "
                  "point per group: q4_1)");
    pipelineOptions.quantize = zeroPoint.empty() ? (scheme == "awq" ? "int4" : scheme.str())
                                                 : "int4-zp";
    pipelineOptions.keepFloat = quantizeKeepFloat;
    if (scheme == "awq") {
      if (calibrationRuns.empty())
        return fail("--quantize=awq needs calibration data: --calibration FILE.npy (the "
                    "model's inputs) or --calibration-text FILE (a language model)");
      FailureOr<std::string> activations =
          gatherActivations(argv[0], calibrationRuns, tokens, work.str());
      if (failed(activations))
        return 1;
      pipelineOptions.awqActivations = *activations;
      pipelineOptions.awqSteps = awqGrid;
      pipelineOptions.modelDirectory = llvm::sys::path::parent_path(inputPath).str();
    }
  }
  pipelineOptions.returnProductInputs = returnProductInputs;
  if (tune != Tune::Off) {
    pipelineOptions.tuningDatabase =
        tuningDb.empty() ? kiln::tuning::defaultDatabasePath() : tuningDb.getValue();
    pipelineOptions.target = backend->target();
    if (tune == Tune::Tune && runTuner(argv[0], pipelineOptions.tuningDatabase) != 0)
      return 1;
  }
  kiln::buildDefaultPipeline(pm, pipelineOptions);
  if (failed(pm.run(*module)))
    return 1;
  if (scheduleSpace) {
    // Each kernel and the knobs that change its code (what kiln-tune searches for it).
    llvm::outs() << backend->describeScheduleSpace();
    unsigned listed = 0;
    WalkResult walked = module->walk([&](kiln::DispatchOp dispatch) {
      FailureOr<kiln::KernelInfo> kernel = backend->addKernel(dispatch);
      if (failed(kernel))
        return WalkResult::interrupt();
      if (kernel->index < listed)
        return WalkResult::advance(); // a kernel an earlier dispatch shares
      ++listed;
      llvm::outs() << kernel->name << ":";
      for (const std::string &knob : kernel->knobs)
        llvm::outs() << " " << knob;
      // Its default schedule, those knobs' values (the rest do not change its code).
      llvm::outs() << "\n  default:";
      llvm::SmallVector<llvm::StringRef> settings;
      llvm::StringRef(kernel->schedule).split(settings, ' ', -1, false);
      for (llvm::StringRef setting : settings)
        if (llvm::is_contained(kernel->knobs, setting.split('=').first.str()))
          llvm::outs() << " " << setting;
      llvm::outs() << "\n";
      return WalkResult::advance();
    });
    return walked.wasInterrupted() ? 1 : 0;
  }

  std::string output = outputPath;
  if (output.empty())
    output = emit == Emit::Artifact
                 ? llvm::sys::path::stem(llvm::StringRef(inputPath).rtrim('/')).str() + ".kiln"
                 : "-";

  if (emit == Emit::Artifact) {
    kiln::CompileOptions compileOptions;
    compileOptions.jobs = jobs;
    compileOptions.kernelCache = kernelCache;
    compileOptions.deviceCodeDirectory = deviceCodeDir;
    if (::isatty(STDERR_FILENO))
      compileOptions.progress = showProgress;
    FailureOr<kiln::ArtifactSummary> summary = kiln::emitArtifact(
        *module, *backend, output, llvm::sys::path::parent_path(inputPath), compileOptions);
    if (failed(summary))
      return 1;
    llvm::errs() << "kiln-compile: wrote " << output << " for " << backend->target() << ": "
                 << summary->dispatches << " dispatches (" << summary->dispatchesBeforeFusion
                 << " before fusion), " << summary->kernels << " unique kernels"
                 << (summary->libraryKernels
                         ? " (" + std::to_string(summary->libraryKernels) +
                               " of them cuBLAS GEMMs where the runtime finds cuBLAS)"
                         : std::string())
                 << ", arena " << summary->arenaBytes
                 << " bytes (lower bound " << summary->arenaLowerBound << "), weights "
                 << summary->weightBytes << " bytes, code " << summary->codeBytes << " bytes\n";
    nlohmann::ordered_json json = report(*summary);
    if (!quantize.empty()) {
      FailureOr<nlohmann::ordered_json> accuracy = quantizationAccuracy(
          argv[0], *summary, output,
          calibrationRuns.empty() ? kiln::tools::CalibrationRun{} : calibrationRuns.front());
      if (failed(accuracy))
        return 1;
      json["accuracy"] = std::move(*accuracy);
    }
    if (!reportJson.empty())
      if (llvm::Error error = writeJson(reportJson, json))
        return fail("cannot write the report '" + reportJson + "': " +
                    llvm::toString(std::move(error)));
    return 0;
  }

  std::string text;
  if (emit == Emit::HalideStmt) {
    FailureOr<std::string> kernels = kiln::printKernels(*module, *backend);
    if (failed(kernels))
      return 1;
    text = std::move(*kernels);
  }
  std::unique_ptr<llvm::ToolOutputFile> file = openOutputFile(output, &error);
  if (!file)
    return fail(error);
  if (emit == Emit::Mlir)
    module->print(file->os());
  else
    file->os() << text;
  file->keep();
  return 0;
}
