// Compile-and-run of one candidate in child processes, and the profile it leaves.
#include "CandidateMeasurement.h"

#include "llvm/Support/FileSystem.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/Program.h"
#include "llvm/Support/xxhash.h"

#include <algorithm>
#include <chrono>
#include <nlohmann/json.hpp>

namespace kiln::tune {

namespace {

std::string pathIn(llvm::StringRef directory, llvm::StringRef file) {
  llvm::SmallString<256> path(directory);
  llvm::sys::path::append(path, file);
  return std::string(path);
}

/// The last lines of a log, for a failure's detail.
std::string tail(const std::string &logPath) {
  auto log = llvm::MemoryBuffer::getFile(logPath);
  if (!log)
    return "";
  llvm::StringRef text = (*log)->getBuffer().rtrim();
  if (text.size() > 600)
    text = text.take_back(600);
  return text.str();
}

struct ChildResult {
  int rc;
  bool timedOut;
};

/// Runs `args` (args[0] the program) with its output in `logPath`, killed after
/// `seconds`.
ChildResult run(const std::vector<std::string> &args, const std::string &logPath,
                unsigned seconds) {
  std::vector<llvm::StringRef> argv(args.begin(), args.end());
  std::optional<llvm::StringRef> redirects[] = {llvm::StringRef(""), llvm::StringRef(logPath),
                                                llvm::StringRef(logPath)};
  std::string error;
  auto start = std::chrono::steady_clock::now();
  int rc = llvm::sys::ExecuteAndWait(args[0], argv, std::nullopt, redirects, seconds, 0, &error);
  double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return {rc, rc < 0 && seconds && elapsed >= seconds};
}

/// Parses kiln-run's Chrome trace at `path`; null (and `error` set) when there is none.
nlohmann::json parseTrace(const std::string &path, std::string &error) {
  auto buffer = llvm::MemoryBuffer::getFile(path);
  if (!buffer) {
    error = "no profile trace " + path;
    return nullptr;
  }
  nlohmann::json trace = nlohmann::json::parse((*buffer)->getBuffer().begin(),
                                               (*buffer)->getBuffer().end(), nullptr, false);
  if (!trace.is_object() || !trace.contains("traceEvents")) {
    error = "unreadable profile trace " + path;
    return nullptr;
  }
  return trace;
}

/// Reads one track of a parsed trace: kernel calls by dispatch, inside numbered run
/// spans, of the model's track (`interleaved` false) or of the artifact kiln-run
/// interleaved with it (true; its track has an `interleaved` argument), into `runNs`
/// and `dispatchNs` (and the kernels' descriptions into `what`, when given).
bool readTrack(const nlohmann::json &trace, unsigned warmup, bool interleaved,
               std::vector<double> *runNs, std::map<unsigned, std::vector<double>> &dispatchNs,
               std::map<unsigned, std::string> *what, std::string &error) {
  int track = -1;
  for (const auto &event : trace["traceEvents"])
    if (event.value("name", "") == "thread_name" && event.contains("args") &&
        event["args"].contains("interleaved") == interleaved)
      track = event.value("tid", -1);
  if (track < 0) {
    error = std::string("the profile trace has no track of the ") +
            (interleaved ? "interleaved reference" : "candidate");
    return false;
  }
  struct Span {
    double begin, end;
  };
  std::vector<Span> runs;
  for (const auto &event : trace["traceEvents"])
    if (event.value("cat", "") == "run" && event.value("tid", -1) == track)
      runs.push_back({event.value("ts", 0.0), event.value("ts", 0.0) + event.value("dur", 0.0)});
  std::sort(runs.begin(), runs.end(), [](Span a, Span b) { return a.begin < b.begin; });
  if (runs.size() <= warmup) {
    error = "the profile trace holds " + std::to_string(runs.size()) + " runs";
    return false;
  }
  size_t measured = runs.size() - warmup;
  for (size_t r = warmup; runNs && r < runs.size(); ++r)
    runNs->push_back((runs[r].end - runs[r].begin) * 1e3);
  for (const auto &event : trace["traceEvents"]) {
    if (event.value("cat", "") != "kernel" || !event.contains("args") ||
        event.value("tid", -1) != track)
      continue;
    double ts = event.value("ts", 0.0);
    auto run = std::upper_bound(runs.begin(), runs.end(), ts,
                                [](double t, Span s) { return t < s.begin; });
    if (run == runs.begin())
      continue;
    size_t index = static_cast<size_t>(run - runs.begin()) - 1;
    if (index < warmup || ts > runs[index].end)
      continue;
    unsigned dispatch = event["args"].value("dispatch", 0u);
    std::vector<double> &times = dispatchNs[dispatch];
    times.resize(measured, 0.0);
    times[index - warmup] += event.value("dur", 0.0) * 1e3; // trace times are in us
    if (what)
      (*what)[dispatch] = event.value("name", "");
  }
  return true;
}

} // namespace

double median(std::vector<double> values) {
  if (values.empty())
    return 0;
  size_t middle = values.size() / 2;
  std::nth_element(values.begin(), values.begin() + middle, values.end());
  double upper = values[middle];
  if (values.size() % 2)
    return upper;
  return (*std::max_element(values.begin(), values.begin() + middle) + upper) / 2;
}

namespace {

/// Per measured run, the time the given dispatches took together.
std::vector<double> perRun(const std::map<unsigned, std::vector<double>> &dispatchNs,
                           const std::vector<unsigned> &dispatches) {
  std::vector<double> sums;
  for (unsigned d : dispatches) {
    auto found = dispatchNs.find(d);
    if (found == dispatchNs.end())
      continue;
    sums.resize(std::max(sums.size(), found->second.size()), 0.0);
    for (size_t r = 0; r < found->second.size(); ++r)
      sums[r] += found->second[r];
  }
  return sums;
}

} // namespace

double Measurement::medianNs(const std::vector<unsigned> &dispatches) const {
  return median(perRun(dispatchNs, dispatches));
}

double Measurement::relativeToReference(const std::vector<unsigned> &dispatches) const {
  std::vector<double> own = perRun(dispatchNs, dispatches),
                      reference = perRun(referenceDispatchNs, dispatches), ratios;
  for (size_t r = 0; r < own.size() && r < reference.size(); ++r)
    if (reference[r] > 0)
      ratios.push_back(own[r] / reference[r]);
  return median(ratios);
}

Measurement CandidateMeasurement::measure(const std::string &database, bool writeReference,
                                          bool reuse) {
  Measurement m;
  std::string artifact = pathIn(setup.workDirectory, "candidate.kiln");
  std::string log = pathIn(setup.workDirectory, "candidate.log");
  std::vector<std::string> compile{setup.compiler, setup.model, "-o", artifact, "--jobs", "2"};
  compile.insert(compile.end(), setup.compileArgs.begin(), setup.compileArgs.end());
  if (database.empty())
    compile.push_back("--tune=off");
  else
    compile.insert(compile.end(), {"--tune=use", "--tuning-db", database});
  ChildResult built = run(compile, log, setup.timeoutSeconds);
  if (built.rc != 0) {
    m.status = built.timedOut ? "timeout" : "compile-failed";
    m.detail = tail(log);
    return m;
  }
  std::optional<uint64_t> artifactHash;
  if (reuse && !writeReference)
    if (auto bytes = llvm::MemoryBuffer::getFile(artifact, /*IsText=*/false,
                                                 /*RequiresNullTerminator=*/false)) {
      artifactHash = llvm::xxh3_64bits((*bytes)->getBuffer());
      auto known = byArtifact.find(*artifactHash);
      if (known != byArtifact.end()) {
        Measurement again = known->second;
        again.reused = true;
        return again;
      }
    }
  Measurement measured = runArtifact(artifact, log, writeReference);
  if (artifactHash && measured.status != "timeout")
    byArtifact[*artifactHash] = measured;
  return measured;
}

Measurement CandidateMeasurement::runArtifact(const std::string &artifact, const std::string &log,
                                              bool writeReference) {
  Measurement m;
  std::string trace = pathIn(setup.workDirectory, "trace.json");
  llvm::sys::fs::remove(trace);
  std::vector<std::string> runArgs{setup.runner,
                                   artifact,
                                   "--repeat",
                                   std::to_string(setup.warmup + setup.runs),
                                   "--threads",
                                   std::to_string(setup.threads),
                                   "--trace",
                                   trace,
                                   "--quiet"};
  runArgs.insert(runArgs.end(), setup.inputArgs.begin(), setup.inputArgs.end());
  runArgs.insert(runArgs.end(), setup.runArgs.begin(), setup.runArgs.end());
  if (!setup.entry.empty())
    runArgs.insert(runArgs.end(), {"--entry", setup.entry});
  std::string reference = pathIn(setup.workDirectory, "reference");
  if (writeReference) {
    llvm::sys::fs::create_directories(reference);
    runArgs.insert(runArgs.end(), {"--output-dir", reference});
  } else {
    runArgs.insert(runArgs.end(), compareArgs.begin(), compareArgs.end());
    if (!referenceArtifact.empty())
      runArgs.insert(runArgs.end(), {"--interleave", referenceArtifact});
  }
  ChildResult ran = run(runArgs, log, setup.timeoutSeconds);
  if (ran.rc != 0) {
    m.status = ran.timedOut ? "timeout" : ran.rc == 1 ? "mismatch" : "crashed";
    m.detail = tail(log);
    return m;
  }
  if (writeReference) {
    // kiln-run wrote <output name>.npy per output: compare each later run with it.
    std::error_code ec;
    for (llvm::sys::fs::directory_iterator it(reference, ec), end; it != end && !ec;
         it.increment(ec)) {
      llvm::StringRef file = it->path();
      if (file.ends_with(".npy"))
        compareArgs.insert(compareArgs.end(),
                           {"--compare", llvm::sys::path::stem(file).str() + "=" + file.str()});
    }
    compareArgs.insert(compareArgs.end(), {"--rtol", std::to_string(setup.rtol), "--atol",
                                           std::to_string(setup.atol)});
    // The reference's artifact, run interleaved with every later candidate.
    std::string kept = pathIn(setup.workDirectory, "reference.kiln");
    if (!llvm::sys::fs::copy_file(artifact, kept))
      referenceArtifact = kept;
  }
  std::string error;
  nlohmann::json parsed = parseTrace(trace, error);
  bool read = !parsed.is_null() &&
              readTrack(parsed, setup.warmup, false, &m.runNs, m.dispatchNs, &m.what, error) &&
              (writeReference || referenceArtifact.empty() ||
               readTrack(parsed, setup.warmup, true, &m.referenceRunNs, m.referenceDispatchNs, nullptr,
                         error));
  if (!read) {
    m.status = "crashed";
    m.detail = error;
    return m;
  }
  m.status = "ok";
  return m;
}

} // namespace kiln::tune
