// kiln-compile --quantize's accuracy report: the quantized artifact against the float
// one, both run by kiln-run on the calibration inputs.
#ifndef KILN_TOOLS_QUANTIZATIONACCURACY_H
#define KILN_TOOLS_QUANTIZATIONACCURACY_H

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace kiln::tools {

/// Errors of one output of the quantized model against the float model's.
struct OutputAccuracy {
  std::string name;
  double maxAbsError = 0;
  double maxRelativeError = 0; // max |q - f| / max |f|
  double minCosine = 1;        // over the rows of the innermost dimension
  /// For an output named "logits" whose rows are next-token predictions of the first
  /// calibration input (integer token ids): perplexity of the following tokens under
  /// each model, and the mean KL divergence KL(float || quantized) per position.
  bool languageModel = false;
  double perplexityFloat = 0, perplexityQuantized = 0, klDivergence = 0;
};

/// Runs `kilnRun` on `floatArtifact` and `quantizedArtifact` with `calibration` bound to
/// the inputs in order, writing outputs under `workDir`, and compares every f32 output.
/// On failure returns an empty list and sets `error`.
std::vector<OutputAccuracy> measureAccuracy(const std::string &kilnRun,
                                            const std::string &floatArtifact,
                                            const std::string &quantizedArtifact,
                                            const std::vector<std::string> &calibration,
                                            const std::string &workDir, std::string &error);

/// Runs `kilnRun` on `artifact` with `inputs` bound to its inputs in order, writing
/// every output as <name>.npy into `outDir` (created). False with `error` set on failure.
bool runArtifact(const std::string &kilnRun, const std::string &artifact,
                 const std::vector<std::string> &inputs, const std::string &outDir,
                 std::string &error);

nlohmann::ordered_json toJson(const OutputAccuracy &accuracy);

} // namespace kiln::tools

#endif // KILN_TOOLS_QUANTIZATIONACCURACY_H
