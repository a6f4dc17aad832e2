// Measuring a schedule candidate in processes of its own: kiln-compile builds the
// model with the candidate (through a scratch tuning database), kiln-run runs it with
// the profiler on and checks its outputs against the default schedule's. A candidate
// that fails to compile, crashes, hangs or computes something else costs one trial.
#ifndef KILN_TOOLS_KILN_TUNE_CANDIDATEMEASUREMENT_H
#define KILN_TOOLS_KILN_TUNE_CANDIDATEMEASUREMENT_H

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace kiln::tune {

struct MeasurementSetup {
  std::string compiler; // kiln-compile
  std::string runner;   // kiln-run
  std::string model;
  /// Options of every compile (--target, --seq-len, ...).
  std::vector<std::string> compileArgs;
  /// --input options of every run.
  std::vector<std::string> inputArgs;
  /// Other options of every run (--device cuda for a GPU target).
  std::vector<std::string> runArgs;
  std::string entry; // --entry (empty: the only one)
  std::string workDirectory;
  /// Runs measured, after `warmup` that are not (caches, page faults, thread start).
  unsigned warmup = 3, runs = 15;
  unsigned threads = 0; // kiln-run --threads
  /// Each compile and each run is killed after this long.
  unsigned timeoutSeconds = 120;
  /// Output comparison (kiln-run --rtol/--atol): loose enough for sums taken in another
  /// order (tiling, vectors, threads), tight enough that a wrong element is caught.
  double rtol = 1e-3, atol = 1e-4;
};

/// What one compile-and-run gave.
struct Measurement {
  /// ok, mismatch (outputs differ from the reference), crashed, timeout, compile-failed.
  std::string status;
  std::string detail; // why, for a failure (the tail of the tool's output)
  /// Per dispatch of the entry point (by index), its time in each measured run (ns).
  std::map<unsigned, std::vector<double>> dispatchNs;
  /// The kernel's description per dispatch ("matmul 1x128x64 +2").
  std::map<unsigned, std::string> what;
  /// Whole runs (ns), measured ones only.
  std::vector<double> runNs;
  /// Not run: the compile gave the artifact of an earlier measurement, whose times these
  /// are (measure's `reuse`).
  bool reused = false;

  /// The reference's dispatch times in the same runs: kiln-run runs the reference's
  /// artifact (the default schedules, kept by the measure with writeReference)
  /// interleaved with every later candidate, run by run (--interleave). Empty for the
  /// reference itself.
  std::map<unsigned, std::vector<double>> referenceDispatchNs;
  /// The interleaved reference's whole runs (ns), measured ones only.
  std::vector<double> referenceRunNs;

  /// The median over measured runs of the time the given dispatches took together.
  double medianNs(const std::vector<unsigned> &dispatches) const;
  /// The median over measured runs of the given dispatches' time over the reference's
  /// in the run beside it; 0 without reference times. A shared VM runs the same code up
  /// to 1.6x slower for seconds at a time (the convnet: 7.5 and 12 ms a run within one
  /// process), more than most schedules change a kernel, and does so unevenly (its
  /// memory-bound kernels slow most), so times taken at different moments compare
  /// badly; a run and the reference's run beside it see the same machine.
  double relativeToReference(const std::vector<unsigned> &dispatches) const;
};

class CandidateMeasurement {
public:
  explicit CandidateMeasurement(MeasurementSetup setup) : setup(std::move(setup)) {}

  /// Compiles the model with the schedules of `database` (a tuning database; empty:
  /// every default, --tune=off) and runs it. The first call with `writeReference`
  /// keeps its outputs as the reference later calls are compared with. With `reuse`, an
  /// artifact byte for byte the same as one an earlier reusing call measured is not run
  /// again: that measurement comes back, marked reused. Schedules that differ only where
  /// a kernel's code does not (a tile as tall as the output at both values, a panel
  /// wider than the columns) compile to the same artifact, and a search meets such
  /// points often; a confirmation must not reuse.
  Measurement measure(const std::string &database, bool writeReference = false,
                      bool reuse = false);

private:
  /// Runs the compiled `artifact` (measure's second half).
  Measurement runArtifact(const std::string &artifact, const std::string &log, bool writeReference);

  MeasurementSetup setup;
  /// The measurements of reusing calls, by the XXH3 of their artifact's bytes.
  std::map<uint64_t, Measurement> byArtifact;
  std::vector<std::string> compareArgs;
  std::string referenceArtifact; // kept by the writeReference measure
};

/// The median of `values` (the mean of the middle two for an even count); 0 if empty.
double median(std::vector<double> values);

} // namespace kiln::tune

#endif // KILN_TOOLS_KILN_TUNE_CANDIDATEMEASUREMENT_H
