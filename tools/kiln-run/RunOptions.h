// kiln-run's command line: the options, their parser and the help text.
#ifndef KILN_TOOLS_RUNOPTIONS_H
#define KILN_TOOLS_RUNOPTIONS_H

#include "Expected.h"
#include "TensorComparison.h"

#include <string>
#include <vector>

namespace kiln::tools {

// A `--input`/`--output`/`--compare` argument: NAME=FILE, or just FILE (empty name),
// which binds to the next unbound tensor in entry-point order.
struct TensorFileBinding {
  std::string name;
  std::string path;
};

struct RunOptions {
  std::string modelPath;
  std::vector<TensorFileBinding> inputs;
  std::vector<TensorFileBinding> outputs;
  std::vector<TensorFileBinding> compares;
  std::string outputDir;
  Tolerance tolerance{1e-4, 1e-5};
  std::string entryPoint; // empty: the module's only entry point
  int threads = 0;        // 0: one per online CPU
  std::string device = "cpu"; // kiln_runtime_options.device: "cpu" or "cuda"
  int repeat = 1;
  bool profile = false;
  std::string tracePath; // with profile: where the Chrome trace goes
  // Another artifact of the same entry point, run with the same inputs, each run of
  // the model alternating with one of it (A/B timing on a machine whose speed drifts).
  std::string interleavePath;
  bool quiet = false;
  bool help = false;
};

Expected<RunOptions> parseRunOptions(int argc, char **argv);

std::string runUsage();

} // namespace kiln::tools

#endif // KILN_TOOLS_RUNOPTIONS_H
