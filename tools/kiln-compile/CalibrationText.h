// --calibration-text: a text tokenized with the model's own tokenizer, cut into the
// forward passes a language model's artifact takes (tokens, positions).
#ifndef KILN_TOOLS_CALIBRATIONTEXT_H
#define KILN_TOOLS_CALIBRATIONTEXT_H

#include <cstdint>
#include <string>
#include <vector>

namespace kiln::tools {

/// The inputs of one forward pass, bound to the artifact's inputs in order.
using CalibrationRun = std::vector<std::string>;

/// Tokenizes `textPath` with the tokenizer of `model` (a GGUF file or a Hugging Face
/// directory with tokenizer.json; BOS first when the vocabulary adds one) and writes
/// consecutive runs of `tokensPerRun` tokens as <workDir>/run<i>.tokens.npy (i32)
/// and, with `positions`, run<i>.positions.npy (i64, 0 .. tokensPerRun - 1). At most
/// `maxRuns` runs; the tail shorter than a run is dropped. On failure returns no runs
/// and sets `error`.
std::vector<CalibrationRun> writeCalibrationText(const std::string &model,
                                                 const std::string &textPath,
                                                 int64_t tokensPerRun, bool positions,
                                                 size_t maxRuns, const std::string &workDir,
                                                 std::string &error);

} // namespace kiln::tools

#endif // KILN_TOOLS_CALIBRATIONTEXT_H
