// Tokenizes a calibration text into a language model's forward passes.
#include "CalibrationText.h"

#include "Npy.h"
#include "Tokenizer.h"

#include <fstream>
#include <iterator>
#include <numeric>

namespace kiln::tools {

std::vector<CalibrationRun> writeCalibrationText(const std::string &model,
                                                 const std::string &textPath,
                                                 int64_t tokensPerRun, bool positions,
                                                 size_t maxRuns, const std::string &workDir,
                                                 std::string &error) {
  std::ifstream in(textPath, std::ios::binary);
  if (!in) {
    error = "cannot read --calibration-text '" + textPath + "'";
    return {};
  }
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto tokenizer = llm::Tokenizer::fromFile(model);
  if (!tokenizer) {
    error = "--calibration-text needs the model's tokenizer: " + model + ": " + tokenizer.error();
    return {};
  }
  std::vector<llm::TokenId> ids = (*tokenizer)->encode(text, (*tokenizer)->vocabulary().addBos);
  size_t runs = std::min(maxRuns, ids.size() / static_cast<size_t>(tokensPerRun));
  if (runs == 0) {
    error = "--calibration-text '" + textPath + "' has " + std::to_string(ids.size()) +
            " tokens, fewer than one forward pass of the model (" +
            std::to_string(tokensPerRun) + ")";
    return {};
  }
  std::vector<int64_t> steps(static_cast<size_t>(tokensPerRun));
  std::iota(steps.begin(), steps.end(), int64_t{0});
  std::vector<CalibrationRun> out;
  for (size_t r = 0; r < runs; ++r) {
    CalibrationRun run{workDir + "/run" + std::to_string(r) + ".tokens.npy"};
    MaybeError failed = writeNpyFile(run[0], KILN_DTYPE_I32, {tokensPerRun},
                                     ids.data() + r * tokensPerRun, tokensPerRun * sizeof(int32_t));
    if (!failed && positions) {
      run.push_back(workDir + "/run" + std::to_string(r) + ".positions.npy");
      failed = writeNpyFile(run[1], KILN_DTYPE_I64, {tokensPerRun}, steps.data(),
                            steps.size() * sizeof(int64_t));
    }
    if (failed) {
      error = failed->message;
      return {};
    }
    out.push_back(std::move(run));
  }
  return out;
}

} // namespace kiln::tools
