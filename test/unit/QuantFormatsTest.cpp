// The quantization format table against the block layouts it encodes.
#include "kiln/quant_formats.h"

#include <gtest/gtest.h>

#include <cstring>

namespace {

// Block sizes recomputed from their parts, as ggml defines the blocks: an f16 is 2
// bytes; K-quants cover 256 values in 16 sub-blocks.
constexpr int kF16 = 2;

TEST(QuantFormats, block_bytes_match_their_layouts) {
  EXPECT_EQ(kiln_quant_formats[KILN_QUANT_Q8_0].block_bytes, kF16 + 32 * 1);
  EXPECT_EQ(kiln_quant_formats[KILN_QUANT_Q4_0].block_bytes, kF16 + 32 / 2);
  // d, the minimum m, 32 nibbles.
  EXPECT_EQ(kiln_quant_formats[KILN_QUANT_Q4_1].block_bytes, 2 * kF16 + 32 / 2);
  // d, one 32-bit word of fifth bits, 32 nibbles; q5_1 adds an f16 minimum.
  EXPECT_EQ(kiln_quant_formats[KILN_QUANT_Q5_0].block_bytes, kF16 + 32 / 8 + 32 / 2);
  EXPECT_EQ(kiln_quant_formats[KILN_QUANT_Q5_1].block_bytes, 2 * kF16 + 32 / 8 + 32 / 2);
  // d, dmin, 12 bytes of packed 6-bit scales and mins, 256 nibbles.
  EXPECT_EQ(kiln_quant_formats[KILN_QUANT_Q4_K].block_bytes, 2 * kF16 + 12 + 256 / 2);
  // 256 low nibbles, 256 x 2 high bits, 16 int8 scales, d.
  EXPECT_EQ(kiln_quant_formats[KILN_QUANT_Q6_K].block_bytes, 256 / 2 + 256 / 4 + 16 + kF16);
  // q4_0 interleaved: per 16 rows and block, 16 x 16 bytes of nibbles and 16 scales.
  const kiln_quant_format &x16 = kiln_quant_formats[KILN_QUANT_Q4_0X16];
  EXPECT_EQ(x16.interleave * x16.block_bytes, 16 * (32 / 2) + 16 * kF16);
  const kiln_quant_format &q8x16 = kiln_quant_formats[KILN_QUANT_Q8_0X16];
  EXPECT_EQ(q8x16.interleave * q8x16.block_bytes, 16 * 32 + 16 * kF16);
  // 16 x 16 bytes of nibbles, 16 words of fifth bits, 16 scales.
  const kiln_quant_format &q5x16 = kiln_quant_formats[KILN_QUANT_Q5_0X16];
  EXPECT_EQ(q5x16.interleave * q5x16.block_bytes, 16 * (32 / 2) + 16 * 4 + 16 * kF16);
  // Per 16 rows and 256 values: 16 d and 16 dmin, then per sub-block 16 scales and 16
  // mins as bytes and 16 x 16 bytes of nibbles.
  const kiln_quant_format &q4kx16 = kiln_quant_formats[KILN_QUANT_Q4_KX16];
  EXPECT_EQ(q4kx16.interleave * q4kx16.block_bytes, 2 * 16 * kF16 + 8 * (16 + 16 + 16 * 16));
  // 16 d, then per sub-block 2 x 16 int8 scales, 16 x 32 x 2 high bits, 16 x 16 bytes
  // of nibbles: exactly 16 q6_k blocks.
  const kiln_quant_format &q6kx16 = kiln_quant_formats[KILN_QUANT_Q6_KX16];
  EXPECT_EQ(q6kx16.interleave * q6kx16.block_bytes, 16 * kF16 + 8 * (2 * 16 + 16 * 32 * 2 / 8 + 16 * 16));
  EXPECT_EQ(q6kx16.block_bytes, kiln_quant_formats[KILN_QUANT_Q6_K].block_bytes);
}

TEST(QuantFormats, only_kilns_own_layouts_interleave_rows) {
  for (int s = 0; s < KILN_QUANT_SCHEME_COUNT; ++s)
    EXPECT_EQ(kiln_quant_formats[s].interleave,
              s == KILN_QUANT_Q4_0X16 || s == KILN_QUANT_Q8_0X16 || s == KILN_QUANT_Q5_0X16 ||
                      s == KILN_QUANT_Q4_KX16 || s == KILN_QUANT_Q6_KX16
                  ? 16
                  : 1)
        << kiln_quant_formats[s].name;
}

TEST(QuantFormats, bits_per_value_never_exceed_the_block_budget) {
  for (int s = 0; s < KILN_QUANT_SCHEME_COUNT; ++s) {
    const kiln_quant_format &f = kiln_quant_formats[s];
    if (f.block_elements == 0)
      continue;
    EXPECT_LE(f.block_elements * f.bits_per_value / 8, f.block_bytes) << f.name;
  }
}

TEST(QuantFormats, names_are_unique) {
  for (int a = 0; a < KILN_QUANT_SCHEME_COUNT; ++a)
    for (int b = a + 1; b < KILN_QUANT_SCHEME_COUNT; ++b)
      EXPECT_STRNE(kiln_quant_formats[a].name, kiln_quant_formats[b].name);
}

TEST(QuantFormats, packed_bytes_of_whole_blocks) {
  EXPECT_EQ(kiln_quant_packed_bytes(KILN_QUANT_Q4_0, 4096), 4096 / 32 * 18);
  EXPECT_EQ(kiln_quant_packed_bytes(KILN_QUANT_Q5_0, 640), 640 / 32 * 22);
  EXPECT_EQ(kiln_quant_packed_bytes(KILN_QUANT_Q5_1, 640), 640 / 32 * 24);
  EXPECT_EQ(kiln_quant_packed_bytes(KILN_QUANT_Q4_K, 4096 * 4096), 4096LL * 4096 / 256 * 144);
  EXPECT_EQ(kiln_quant_packed_bytes(KILN_QUANT_INT4, 256), 128);
  EXPECT_EQ(kiln_quant_packed_bytes(KILN_QUANT_INT4, 3), 2);
  EXPECT_EQ(kiln_quant_packed_bytes(KILN_QUANT_INT8, 100), 100);
}

TEST(QuantFormats, rejects_partial_blocks) {
  EXPECT_EQ(kiln_quant_packed_bytes(KILN_QUANT_Q8_0, 33), -1);
  EXPECT_EQ(kiln_quant_packed_bytes(KILN_QUANT_Q6_K, 128), -1);
  EXPECT_EQ(kiln_quant_packed_bytes(KILN_QUANT_Q5_0, 48), -1);
}

} // namespace
