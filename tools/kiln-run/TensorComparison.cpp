// Element access, formatting and tolerance comparison of dense kiln tensors.
#include "TensorComparison.h"

#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>

namespace kiln::tools {

namespace {

template <typename T> T load(const void *data, size_t index) {
  T value;
  std::memcpy(&value, static_cast<const char *>(data) + index * sizeof(T), sizeof(T));
  return value;
}

// IEEE 754 binary16 to binary32; exact for every half value.
float halfToFloat(uint16_t half) {
  uint32_t sign = static_cast<uint32_t>(half & 0x8000u) << 16;
  uint32_t exponent = (half >> 10) & 0x1fu;
  uint32_t mantissa = half & 0x3ffu;
  uint32_t bits;
  if (exponent == 0x1f) {
    bits = sign | 0x7f800000u | (mantissa << 13); // inf or NaN
  } else if (exponent != 0) {
    bits = sign | ((exponent + 112) << 23) | (mantissa << 13);
  } else if (mantissa == 0) {
    bits = sign; // signed zero
  } else {
    // Subnormal: mantissa * 2^-24, exact in binary32.
    float magnitude = std::ldexp(static_cast<float>(mantissa), -24);
    return sign ? -magnitude : magnitude;
  }
  float value;
  std::memcpy(&value, &bits, sizeof value);
  return value;
}

float bfloat16ToFloat(uint16_t bfloat) {
  uint32_t bits = static_cast<uint32_t>(bfloat) << 16;
  float value;
  std::memcpy(&value, &bits, sizeof value);
  return value;
}

bool isSignedInteger(kiln_dtype dtype) {
  return dtype == KILN_DTYPE_I8 || dtype == KILN_DTYPE_I16 || dtype == KILN_DTYPE_I32 ||
         dtype == KILN_DTYPE_I64;
}

bool isUnsignedInteger(kiln_dtype dtype) {
  return dtype == KILN_DTYPE_U8 || dtype == KILN_DTYPE_U16 || dtype == KILN_DTYPE_U32 ||
         dtype == KILN_DTYPE_U64;
}

int64_t signedElement(kiln_dtype dtype, const void *data, size_t index) {
  switch (dtype) {
  case KILN_DTYPE_I8: return load<int8_t>(data, index);
  case KILN_DTYPE_I16: return load<int16_t>(data, index);
  case KILN_DTYPE_I32: return load<int32_t>(data, index);
  default: return load<int64_t>(data, index);
  }
}

uint64_t unsignedElement(kiln_dtype dtype, const void *data, size_t index) {
  switch (dtype) {
  case KILN_DTYPE_U8:
  case KILN_DTYPE_BOOL: return load<uint8_t>(data, index);
  case KILN_DTYPE_U16: return load<uint16_t>(data, index);
  case KILN_DTYPE_U32: return load<uint32_t>(data, index);
  default: return load<uint64_t>(data, index);
  }
}

std::string shortestFloat(double value, bool singlePrecision) {
  if (std::isnan(value))
    return "nan";
  if (std::isinf(value))
    return value < 0 ? "-inf" : "inf";
  char buffer[64];
  std::to_chars_result result =
      singlePrecision ? std::to_chars(buffer, buffer + sizeof buffer, static_cast<float>(value))
                      : std::to_chars(buffer, buffer + sizeof buffer, value);
  return std::string(buffer, result.ptr);
}

// How far `got` is outside the tolerance around `expected`: <= 1 is a match.
double toleranceExcess(double got, double expected, Tolerance tolerance) {
  constexpr double infinity = std::numeric_limits<double>::infinity();
  if (std::isnan(got) || std::isnan(expected))
    return std::isnan(got) && std::isnan(expected) ? 0 : infinity;
  if (std::isinf(got) || std::isinf(expected))
    return got == expected ? 0 : infinity;
  double difference = std::fabs(got - expected);
  double allowed = tolerance.atol + tolerance.rtol * std::fabs(expected);
  if (allowed > 0)
    return difference / allowed;
  return difference > 0 ? infinity : 0;
}

} // namespace

bool isFloatDType(kiln_dtype dtype) {
  return dtype == KILN_DTYPE_F32 || dtype == KILN_DTYPE_F64 || dtype == KILN_DTYPE_F16 ||
         dtype == KILN_DTYPE_BF16;
}

bool acceptsDType(kiln_dtype declared, kiln_dtype given) {
  if (declared == given)
    return true;
  bool bothIntegers = (isSignedInteger(declared) || isUnsignedInteger(declared)) &&
                      (isSignedInteger(given) || isUnsignedInteger(given));
  return bothIntegers && kiln_dtype_size(declared) == kiln_dtype_size(given);
}

size_t elementCount(const std::vector<int64_t> &shape) {
  size_t count = 1;
  for (int64_t extent : shape)
    count *= static_cast<size_t>(extent);
  return count;
}

std::string formatShape(const std::vector<int64_t> &shape) {
  std::string text = "[";
  for (size_t i = 0; i < shape.size(); ++i)
    text += (i ? ", " : "") + std::to_string(shape[i]);
  return text + "]";
}

std::string formatTensorType(kiln_dtype dtype, const std::vector<int64_t> &shape) {
  return kiln_dtype_name(dtype) + formatShape(shape);
}

std::string formatMultiIndex(const std::vector<int64_t> &shape, size_t flatIndex) {
  std::vector<int64_t> index(shape.size());
  for (size_t d = shape.size(); d-- > 0;) {
    int64_t extent = shape[d] > 0 ? shape[d] : 1;
    index[d] = static_cast<int64_t>(flatIndex % static_cast<size_t>(extent));
    flatIndex /= static_cast<size_t>(extent);
  }
  return formatShape(index);
}

double elementAsDouble(kiln_dtype dtype, const void *data, size_t index) {
  switch (dtype) {
  case KILN_DTYPE_F32: return load<float>(data, index);
  case KILN_DTYPE_F64: return load<double>(data, index);
  case KILN_DTYPE_F16: return halfToFloat(load<uint16_t>(data, index));
  case KILN_DTYPE_BF16: return bfloat16ToFloat(load<uint16_t>(data, index));
  default:
    if (isSignedInteger(dtype))
      return static_cast<double>(signedElement(dtype, data, index));
    return static_cast<double>(unsignedElement(dtype, data, index));
  }
}

std::string formatElement(kiln_dtype dtype, const void *data, size_t index) {
  if (dtype == KILN_DTYPE_BOOL)
    return load<uint8_t>(data, index) ? "true" : "false";
  if (isSignedInteger(dtype))
    return std::to_string(signedElement(dtype, data, index));
  if (isUnsignedInteger(dtype))
    return std::to_string(unsignedElement(dtype, data, index));
  return shortestFloat(elementAsDouble(dtype, data, index), dtype != KILN_DTYPE_F64);
}

ComparisonResult compareTensors(const TensorView &got, const TensorView &expected,
                                Tolerance tolerance) {
  ComparisonResult result;
  result.elementCount = elementCount(got.shape);
  bool floats = isFloatDType(got.dtype);
  size_t elementBytes = kiln_dtype_size(got.dtype);
  // Integers compare by their bytes, so a uint8 expectation matches the same bits in
  // a signless i8 output.
  auto sameBytes = [&](size_t i) {
    return std::memcmp(static_cast<const char *>(got.data) + i * elementBytes,
                       static_cast<const char *>(expected.data) + i * elementBytes,
                       elementBytes) == 0;
  };
  double worstExcess = -1;
  for (size_t i = 0; i < result.elementCount; ++i) {
    double g = elementAsDouble(got.dtype, got.data, i);
    double e = elementAsDouble(expected.dtype, expected.data, i);
    double excess;
    bool matches;
    if (floats) {
      excess = toleranceExcess(g, e, tolerance);
      matches = excess <= 1;
    } else {
      matches = sameBytes(i);
      excess = matches ? 0 : 1 + std::fabs(g - e);
    }
    if (!matches)
      ++result.mismatchCount;
    if (excess > worstExcess) {
      worstExcess = excess;
      result.worstIndex = i;
    }
  }
  if (result.elementCount == 0)
    return result;
  size_t w = result.worstIndex;
  double g = elementAsDouble(got.dtype, got.data, w);
  double e = elementAsDouble(expected.dtype, expected.data, w);
  result.hasWorst = true;
  result.worstGot = formatElement(got.dtype, got.data, w);
  result.worstExpected = formatElement(expected.dtype, expected.data, w);
  bool identical = floats ? g == e || (std::isnan(g) && std::isnan(e)) : sameBytes(w);
  result.worstAbsError = identical ? 0 : std::fabs(g - e);
  result.worstRelError = identical ? 0
                         : e != 0  ? result.worstAbsError / std::fabs(e)
                                   : std::numeric_limits<double>::infinity();
  return result;
}

} // namespace kiln::tools
