// Float weights packed into ggml's q8_0 / q4_0 blocks at artifact-writing time.
#include "compiler/WeightQuantizer.h"

#include "llvm/ADT/APFloat.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace kiln {

std::optional<FloatSource> symbolizeFloatSource(llvm::StringRef name) {
  if (name == "f32")
    return FloatSource::f32;
  if (name == "f16")
    return FloatSource::f16;
  if (name == "bf16")
    return FloatSource::bf16;
  return std::nullopt;
}

int64_t floatSourceBytes(FloatSource source) { return source == FloatSource::f32 ? 4 : 2; }

bool canQuantizeInto(QuantScheme scheme) {
  return scheme == QuantScheme::q8_0 || scheme == QuantScheme::q4_0 || scheme == QuantScheme::q4_1;
}

namespace {

float halfToFloat(uint16_t h) {
  llvm::APFloat value(llvm::APFloat::IEEEhalf(), llvm::APInt(16, h));
  return value.convertToFloat();
}

uint16_t floatToHalf(float f) {
  llvm::APFloat value(f);
  bool lost = false;
  value.convert(llvm::APFloat::IEEEhalf(), llvm::APFloat::rmNearestTiesToEven, &lost);
  return static_cast<uint16_t>(value.bitcastToAPInt().getZExtValue());
}

void putHalf(char *to, float f) {
  uint16_t h = floatToHalf(f);
  std::memcpy(to, &h, 2);
}

} // namespace

std::vector<float> widenToF32(const char *bytes, int64_t elements, FloatSource source) {
  std::vector<float> out(static_cast<size_t>(elements));
  if (source == FloatSource::f32) {
    std::memcpy(out.data(), bytes, out.size() * 4);
    return out;
  }
  for (int64_t i = 0; i < elements; ++i) {
    uint16_t h;
    std::memcpy(&h, bytes + 2 * i, 2);
    if (source == FloatSource::f16) {
      out[i] = halfToFloat(h);
    } else {
      uint32_t bits = static_cast<uint32_t>(h) << 16;
      std::memcpy(&out[i], &bits, 4);
    }
  }
  return out;
}

void scaleInputChannels(std::vector<float> &values, llvm::ArrayRef<float> scale) {
  for (size_t i = 0; i < values.size(); ++i)
    values[i] *= scale[i % scale.size()];
}

namespace {

int64_t blockBytes(QuantScheme scheme) {
  return scheme == QuantScheme::q8_0 ? 34 : scheme == QuantScheme::q4_1 ? 20 : 18;
}

void packQ8_0(const float *x, char *to) {
  float amax = 0;
  for (int j = 0; j < 32; ++j)
    amax = std::max(amax, std::fabs(x[j]));
  float d = amax / 127, id = d != 0 ? 1 / d : 0;
  putHalf(to, d);
  for (int j = 0; j < 32; ++j)
    to[2 + j] = static_cast<char>(static_cast<int8_t>(std::lround(x[j] * id)));
}

void packQ4_0(const float *x, char *to) {
  // The signed value of largest magnitude maps to -8, so the other side reaches +7.
  float amax = 0, max = 0;
  for (int j = 0; j < 32; ++j)
    if (std::fabs(x[j]) > amax) {
      amax = std::fabs(x[j]);
      max = x[j];
    }
  float d = max / -8, id = d != 0 ? 1 / d : 0;
  putHalf(to, d);
  auto nibble = [&](float v) {
    return static_cast<uint8_t>(std::min(15, static_cast<int>(v * id + 8.5f)));
  };
  for (int j = 0; j < 16; ++j)
    to[2 + j] = static_cast<char>(nibble(x[j]) | nibble(x[j + 16]) << 4);
}

void packQ4_1(const float *x, char *to) {
  // The block's range [min, max] in 15 steps: min is the zero point (ggml's
  // quantize_row_q4_1_ref, which rounds with the unrounded min).
  auto [lo, hi] = std::minmax_element(x, x + 32);
  float min = *lo, d = (*hi - min) / 15, id = d != 0 ? 1 / d : 0;
  putHalf(to, d);
  putHalf(to + 2, min);
  auto nibble = [&](float v) {
    return static_cast<uint8_t>(std::min(15, static_cast<int>((v - min) * id + 0.5f)));
  };
  for (int j = 0; j < 16; ++j)
    to[4 + j] = static_cast<char>(nibble(x[j]) | nibble(x[j + 16]) << 4);
}

} // namespace

std::vector<char> packBlocks(const std::vector<float> &values, QuantScheme scheme) {
  int64_t bytes = blockBytes(scheme), blocks = static_cast<int64_t>(values.size()) / 32;
  std::vector<char> out(static_cast<size_t>(blocks * bytes), 0);
  for (int64_t b = 0; b < blocks; ++b) {
    const float *x = values.data() + b * 32;
    char *to = out.data() + b * bytes;
    if (scheme == QuantScheme::q8_0)
      packQ8_0(x, to);
    else if (scheme == QuantScheme::q4_1)
      packQ4_1(x, to);
    else
      packQ4_0(x, to);
  }
  return out;
}

std::vector<float> unpackBlocks(const std::vector<char> &packed, QuantScheme scheme) {
  int64_t bytes = blockBytes(scheme), blocks = static_cast<int64_t>(packed.size()) / bytes;
  std::vector<float> out(static_cast<size_t>(blocks * 32));
  for (int64_t b = 0; b < blocks; ++b) {
    const char *from = packed.data() + b * bytes;
    uint16_t h;
    std::memcpy(&h, from, 2);
    float d = halfToFloat(h), m = 0, *x = out.data() + b * 32;
    if (scheme == QuantScheme::q4_1) {
      std::memcpy(&h, from + 2, 2);
      m = halfToFloat(h);
    }
    for (int j = 0; j < 32; ++j) {
      if (scheme == QuantScheme::q8_0) {
        x[j] = d * static_cast<int8_t>(from[2 + j]);
        continue;
      }
      auto byte = static_cast<uint8_t>(from[(scheme == QuantScheme::q4_1 ? 4 : 2) + j % 16]);
      int q = j < 16 ? byte & 15 : byte >> 4;
      x[j] = scheme == QuantScheme::q4_1 ? d * q + m : d * (q - 8);
    }
  }
  return out;
}

} // namespace kiln
