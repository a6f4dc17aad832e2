// Element access, formatting and tolerance comparison of dense kiln tensors, shared by
// kiln-run and the ONNX conformance runner so both judge and print results alike.
#ifndef KILN_TOOLS_TENSORCOMPARISON_H
#define KILN_TOOLS_TENSORCOMPARISON_H

#include "kiln/runtime.h"

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace kiln::tools {

// A read-only dense row-major tensor; `data` holds product(shape) elements of `dtype`.
struct TensorView {
  kiln_dtype dtype;
  std::vector<int64_t> shape;
  const void *data;
};

// |got - expected| <= atol + rtol * |expected| for floating-point elements.
struct Tolerance {
  double rtol;
  double atol;
};

bool isFloatDType(kiln_dtype dtype);
// Whether data of dtype `given` may be bound where the model declares `declared`: the
// same dtype, or integers of the same width that differ only in signedness (the
// compiler represents ONNX's unsigned types as signless integers).
bool acceptsDType(kiln_dtype declared, kiln_dtype given);

// Product of the extents; 1 for a scalar.
size_t elementCount(const std::vector<int64_t> &shape);

std::string formatShape(const std::vector<int64_t> &shape);           // "[2, 3]"
std::string formatTensorType(kiln_dtype dtype, const std::vector<int64_t> &shape); // "f32[2, 3]"
std::string formatMultiIndex(const std::vector<int64_t> &shape, size_t flatIndex);
// One element, printed exactly enough to tell neighbouring values of its dtype apart.
std::string formatElement(kiln_dtype dtype, const void *data, size_t index);
double elementAsDouble(kiln_dtype dtype, const void *data, size_t index);

struct ComparisonResult {
  size_t elementCount = 0;
  size_t mismatchCount = 0;
  // The element furthest outside its tolerance (or, when all match, closest to it);
  // absent for empty tensors.
  bool hasWorst = false;
  size_t worstIndex = 0;
  std::string worstGot;
  std::string worstExpected;
  double worstAbsError = 0;
  double worstRelError = 0;

  bool matches() const { return mismatchCount == 0; }
};

// Compares `got` with `expected`, which must have the same element count and
// acceptsDType-compatible dtypes. Floats use `tolerance`; NaN equals NaN and an infinity
// only equals itself. Integers and bools must be equal.
ComparisonResult compareTensors(const TensorView &got, const TensorView &expected,
                                Tolerance tolerance);

} // namespace kiln::tools

#endif // KILN_TOOLS_TENSORCOMPARISON_H
