// Packs float weights into kiln's block formats when the artifact is written (the
// `source_scheme` of a kiln.weight names the file's float type).
#ifndef KILN_COMPILER_WEIGHTQUANTIZER_H
#define KILN_COMPILER_WEIGHTQUANTIZER_H

#include "dialects/Kiln/KilnDialect.h"

#include "llvm/ADT/ArrayRef.h"
#include "llvm/ADT/StringRef.h"

#include <cstdint>
#include <optional>
#include <vector>

namespace kiln {

/// The float element types a weight may be quantized from, by `source_scheme` name.
enum class FloatSource { f32, f16, bf16 };
std::optional<FloatSource> symbolizeFloatSource(llvm::StringRef name);
/// Bytes per element of `source`.
int64_t floatSourceBytes(FloatSource source);

/// The formats that kiln packs float weights into (the blocks whose kernels exist).
bool canQuantizeInto(QuantScheme scheme);

/// `elements` values of `source` (little-endian) as f32.
std::vector<float> widenToF32(const char *bytes, int64_t elements, FloatSource source);

/// Multiplies element j of every row of `values` (rows of scale.size() values) by
/// scale[j]: kiln.weight's `input_scale`.
void scaleInputChannels(std::vector<float> &values, llvm::ArrayRef<float> scale);

/// Rows of `values` packed as ggml packs them (quantize_row_*_ref in ggml-quants.c):
/// q8_0 blocks of 32 with scale max|x| / 127; q4_0 blocks of 32 with scale
/// (the value of largest magnitude) / -8, nibbles q + 8 clamped to 15; q4_1 blocks of
/// 32 with scale (max - min) / 15 and zero point min, nibbles (x - min) / d. `scheme`
/// is q8_0, q4_0 or q4_1; the count must be a whole number of blocks.
std::vector<char> packBlocks(const std::vector<float> &values, QuantScheme scheme);

/// The values `packBlocks` stored, decoded: d * q for q8_0, d * (q - 8) for q4_0,
/// d * q + m for q4_1 (what
/// the kernels compute with), so a search can measure the rounding it will get.
std::vector<float> unpackBlocks(const std::vector<char> &packed, QuantScheme scheme);

} // namespace kiln

#endif // KILN_COMPILER_WEIGHTQUANTIZER_H
