// The grid search for AWQ's per-input-channel scales.
#include "compiler/AwqSearch.h"

#include "compiler/WeightQuantizer.h"

#include <algorithm>
#include <cmath>

namespace kiln {
namespace {

/// The mean |x| of each column: AWQ's measure of a channel's salience.
std::vector<double> meanMagnitudes(const FloatMatrix &x) {
  std::vector<double> mean(static_cast<size_t>(x.cols), 0.0);
  for (int64_t r = 0; r < x.rows; ++r)
    for (int64_t j = 0; j < x.cols; ++j)
      mean[j] += std::fabs(x.values[r * x.cols + j]);
  for (double &m : mean)
    m /= static_cast<double>(std::max<int64_t>(x.rows, 1));
  return mean;
}

/// mean^alpha, normalized as the AWQ reference implementation does (divided by
/// sqrt(max * min)) so that the scaled weights keep their magnitude.
std::vector<float> scalesFor(const std::vector<double> &mean, double alpha) {
  std::vector<double> s(mean.size());
  // A channel that is always zero would get scale 0; 1e-8 keeps it finite (its
  // weights do not matter: they multiply zeros).
  for (size_t j = 0; j < mean.size(); ++j)
    s[j] = std::pow(std::max(mean[j], 1e-8), alpha);
  auto [lo, hi] = std::minmax_element(s.begin(), s.end());
  double norm = std::sqrt(*lo * *hi);
  std::vector<float> out(s.size());
  for (size_t j = 0; j < s.size(); ++j)
    out[j] = static_cast<float>(s[j] / norm);
  return out;
}

/// ||x (Q(W diag(s)) diag(s)^-1 - W)^T||^2 for one weight.
double outputError(const FloatMatrix &x, const FloatMatrix &w, const std::vector<float> &s,
                   QuantScheme scheme) {
  std::vector<float> scaled = w.values;
  scaleInputChannels(scaled, s);
  std::vector<float> rounded = unpackBlocks(packBlocks(scaled, scheme), scheme);
  std::vector<float> delta(rounded.size());
  for (size_t i = 0; i < rounded.size(); ++i)
    delta[i] = rounded[i] / s[i % s.size()] - w.values[i];
  double error = 0;
  for (int64_t r = 0; r < x.rows; ++r) {
    const float *row = x.values.data() + r * x.cols;
    for (int64_t n = 0; n < w.rows; ++n) {
      const float *d = delta.data() + n * w.cols;
      double dot = 0;
      for (int64_t j = 0; j < w.cols; ++j)
        dot += static_cast<double>(row[j]) * d[j];
      error += dot * dot;
    }
  }
  return error;
}

} // namespace

AwqScales searchAwqScales(const FloatMatrix &x, llvm::ArrayRef<const FloatMatrix *> weights,
                          QuantScheme scheme, unsigned steps) {
  std::vector<double> mean = meanMagnitudes(x);
  AwqScales best;
  for (unsigned i = 0; i <= steps; ++i) {
    double alpha = steps ? static_cast<double>(i) / steps : 0.0;
    std::vector<float> s = scalesFor(mean, alpha);
    double error = 0;
    for (const FloatMatrix *w : weights)
      error += outputError(x, *w, s, scheme);
    if (i == 0)
      best.roundToNearestError = error;
    if (i == 0 || error < best.error) {
      best.alpha = alpha;
      best.scale = std::move(s);
      best.error = error;
    }
  }
  return best;
}

} // namespace kiln
