// AWQ's search for per-input-channel weight scales (Lin et al., "AWQ: Activation-aware
// Weight Quantization", 2024, section 3.2): plain numbers, no IR.
#ifndef KILN_COMPILER_AWQSEARCH_H
#define KILN_COMPILER_AWQSEARCH_H

#include "dialects/Kiln/KilnDialect.h"

#include "llvm/ADT/ArrayRef.h"

#include <cstdint>
#include <vector>

namespace kiln {

/// Row-major [rows, cols] f32 values.
struct FloatMatrix {
  int64_t rows = 0, cols = 0;
  std::vector<float> values;
};

struct AwqScales {
  /// The exponent chosen: s_j = mean|x_j|^alpha, normalized so that
  /// max(s) * min(s) = 1. 0 is plain round-to-nearest (every s_j = 1).
  double alpha = 0;
  std::vector<float> scale;
  /// Sum over the products and activation rows of the squared output error
  /// ||x (Q(W diag(s)) diag(s)^-1 - W)^T||^2: with the scales chosen and with none.
  double error = 0, roundToNearestError = 0;
};

/// The scales, shared by products that read the same activations `x` ([rows, K]),
/// whose weights `weights` (each [N_i, K]) will be packed as `scheme` (q4_0 or q8_0)
/// after multiplying column j by s_j, while the activations are divided by s_j.
/// Tries alpha = 0, 1/steps, ..., 1 and keeps the one whose quantized outputs are
/// closest to the float ones on `x` (the first of equals, so ties keep alpha = 0).
AwqScales searchAwqScales(const FloatMatrix &x, llvm::ArrayRef<const FloatMatrix *> weights,
                          QuantScheme scheme, unsigned steps);

} // namespace kiln

#endif // KILN_COMPILER_AWQSEARCH_H
