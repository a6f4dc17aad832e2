// Runs the float and the quantized artifacts on the same inputs and measures how far
// the quantized outputs are from the float ones.
#include "QuantizationAccuracy.h"

#include "Npy.h"

#include "llvm/ADT/SmallString.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/Program.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace kiln::tools {
namespace {

std::vector<double> asDoubles(const NpyArray &array) {
  size_t n = 1;
  for (int64_t d : array.shape)
    n *= static_cast<size_t>(d);
  std::vector<double> out(n);
  for (size_t i = 0; i < n; ++i) {
    if (array.dtype == KILN_DTYPE_F32) {
      float v;
      std::memcpy(&v, array.data.data() + 4 * i, 4);
      out[i] = v;
    } else if (array.dtype == KILN_DTYPE_F64) {
      std::memcpy(&out[i], array.data.data() + 8 * i, 8);
    } else if (array.dtype == KILN_DTYPE_I32) {
      int32_t v;
      std::memcpy(&v, array.data.data() + 4 * i, 4);
      out[i] = v;
    } else {
      int64_t v;
      std::memcpy(&v, array.data.data() + 8 * i, 8);
      out[i] = static_cast<double>(v);
    }
  }
  return out;
}

bool isFloat(kiln_dtype dtype) { return dtype == KILN_DTYPE_F32 || dtype == KILN_DTYPE_F64; }

/// log-softmax of one row of logits.
std::vector<double> logSoftmax(const double *row, size_t n) {
  double top = *std::max_element(row, row + n), sum = 0;
  for (size_t i = 0; i < n; ++i)
    sum += std::exp(row[i] - top);
  std::vector<double> out(n);
  double log = top + std::log(sum);
  for (size_t i = 0; i < n; ++i)
    out[i] = row[i] - log;
  return out;
}

void measureLanguageModel(OutputAccuracy &accuracy, const std::vector<double> &f,
                          const std::vector<double> &q, size_t vocab,
                          const std::vector<double> &tokens) {
  size_t rows = f.size() / vocab;
  if (rows != tokens.size() || rows < 2)
    return;
  double nllFloat = 0, nllQuantized = 0, kl = 0;
  for (size_t r = 0; r < rows; ++r) {
    std::vector<double> lf = logSoftmax(f.data() + r * vocab, vocab);
    std::vector<double> lq = logSoftmax(q.data() + r * vocab, vocab);
    for (size_t v = 0; v < vocab; ++v)
      kl += std::exp(lf[v]) * (lf[v] - lq[v]);
    if (r + 1 < rows) {
      auto next = static_cast<size_t>(tokens[r + 1]);
      if (next >= vocab)
        return;
      nllFloat -= lf[next];
      nllQuantized -= lq[next];
    }
  }
  accuracy.languageModel = true;
  accuracy.perplexityFloat = std::exp(nllFloat / static_cast<double>(rows - 1));
  accuracy.perplexityQuantized = std::exp(nllQuantized / static_cast<double>(rows - 1));
  accuracy.klDivergence = kl / static_cast<double>(rows);
}

} // namespace

std::vector<OutputAccuracy> measureAccuracy(const std::string &kilnRun,
                                            const std::string &floatArtifact,
                                            const std::string &quantizedArtifact,
                                            const std::vector<std::string> &calibration,
                                            const std::string &workDir, std::string &error) {
  std::string floatDir = workDir + "/float", quantizedDir = workDir + "/quantized";
  if (!runArtifact(kilnRun, floatArtifact, calibration, floatDir, error) ||
      !runArtifact(kilnRun, quantizedArtifact, calibration, quantizedDir, error))
    return {};
  std::vector<double> tokens;
  if (!calibration.empty()) {
    Expected<NpyArray> first = readNpyFile(calibration.front());
    if (first && !isFloat(first->dtype))
      tokens = asDoubles(*first);
  }
  std::vector<OutputAccuracy> outputs;
  std::error_code ec;
  std::vector<std::string> names;
  for (llvm::sys::fs::directory_iterator it(floatDir, ec), end; it != end && !ec; it.increment(ec))
    names.push_back(llvm::sys::path::filename(it->path()).str());
  std::sort(names.begin(), names.end());
  for (const std::string &file : names) {
    Expected<NpyArray> f = readNpyFile(floatDir + "/" + file);
    Expected<NpyArray> q = readNpyFile(quantizedDir + "/" + file);
    if (!f || !q) {
      error = !f ? f.error().message : q.error().message;
      return {};
    }
    if (!isFloat(f->dtype) || f->shape != q->shape || f->shape.empty())
      continue;
    std::vector<double> fv = asDoubles(*f), qv = asDoubles(*q);
    OutputAccuracy accuracy;
    accuracy.name = llvm::sys::path::stem(file).str();
    double largest = 0;
    for (size_t i = 0; i < fv.size(); ++i) {
      accuracy.maxAbsError = std::max(accuracy.maxAbsError, std::fabs(qv[i] - fv[i]));
      largest = std::max(largest, std::fabs(fv[i]));
    }
    accuracy.maxRelativeError = largest > 0 ? accuracy.maxAbsError / largest : 0;
    auto width = static_cast<size_t>(f->shape.back());
    for (size_t r = 0; width > 0 && r < fv.size() / width; ++r) {
      double dot = 0, nf = 0, nq = 0;
      for (size_t i = r * width; i < (r + 1) * width; ++i) {
        dot += fv[i] * qv[i];
        nf += fv[i] * fv[i];
        nq += qv[i] * qv[i];
      }
      if (nf > 0 && nq > 0)
        accuracy.minCosine = std::min(accuracy.minCosine, dot / std::sqrt(nf * nq));
    }
    if (accuracy.name == "logits" && !tokens.empty())
      measureLanguageModel(accuracy, fv, qv, width, tokens);
    outputs.push_back(accuracy);
  }
  if (outputs.empty())
    error = "the model has no floating-point output to compare";
  return outputs;
}

bool runArtifact(const std::string &kilnRun, const std::string &artifact,
                 const std::vector<std::string> &inputs, const std::string &outDir,
                 std::string &error) {
  if (std::error_code ec = llvm::sys::fs::create_directories(outDir)) {
    error = "cannot create '" + outDir + "': " + ec.message();
    return false;
  }
  std::vector<std::string> args{kilnRun, artifact, "--quiet", "--output-dir", outDir};
  for (const std::string &file : inputs)
    args.insert(args.end(), {"--input", file});
  std::vector<llvm::StringRef> argv(args.begin(), args.end());
  std::string message;
  int rc = llvm::sys::ExecuteAndWait(kilnRun, argv, std::nullopt, {}, 0, 0, &message);
  if (rc != 0) {
    error = "kiln-run " + artifact + " failed (" +
            (message.empty() ? "exit code " + std::to_string(rc) : message) + ")";
    return false;
  }
  return true;
}

nlohmann::ordered_json toJson(const OutputAccuracy &accuracy) {
  nlohmann::ordered_json json = {{"name", accuracy.name},
                                 {"max_abs_error", accuracy.maxAbsError},
                                 {"max_relative_error", accuracy.maxRelativeError},
                                 {"min_cosine", accuracy.minCosine}};
  if (accuracy.languageModel) {
    json["perplexity_float"] = accuracy.perplexityFloat;
    json["perplexity_quantized"] = accuracy.perplexityQuantized;
    json["kl_divergence"] = accuracy.klDivergence;
  }
  return json;
}

} // namespace kiln::tools
