/* The one table of kiln's quantization formats, shared by the frontends, the compiler,
 * the kernels and the runtime. Adding a format is adding a row (and an enum value, which
 * the kiln dialect's QuantScheme mirrors). Plain C so the runtime can use it. */
#ifndef KILN_QUANT_FORMATS_H
#define KILN_QUANT_FORMATS_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum kiln_quant_scheme {
  KILN_QUANT_Q8_0 = 0,
  KILN_QUANT_Q4_0 = 1,
  KILN_QUANT_Q4_K = 2,
  KILN_QUANT_Q6_K = 3,
  KILN_QUANT_INT8 = 4, /* group-wise, scales in a separate tensor */
  KILN_QUANT_INT4 = 5, /* group-wise, scales in a separate tensor */
  KILN_QUANT_Q5_0 = 6,
  KILN_QUANT_Q5_1 = 7,
  KILN_QUANT_Q4_0X16 = 8, /* q4_0 blocks of 16 rows interleaved (kiln's own layout) */
  KILN_QUANT_Q8_0X16 = 9, /* q8_0 blocks of 16 rows interleaved (kiln's own layout) */
  KILN_QUANT_Q5_0X16 = 10, /* q5_0 blocks of 16 rows interleaved (kiln's own layout) */
  KILN_QUANT_Q4_KX16 = 11, /* q4_k blocks of 16 rows interleaved (kiln's own layout) */
  KILN_QUANT_Q6_KX16 = 12, /* q6_k blocks of 16 rows interleaved (kiln's own layout) */
  KILN_QUANT_Q4_1 = 13,
  KILN_QUANT_SCHEME_COUNT
} kiln_quant_scheme;

typedef struct kiln_quant_format {
  const char *name;
  /* Logical elements per block; 0 for group-wise formats, whose group size is chosen
   * per tensor. */
  int32_t block_elements;
  /* Bytes per block including its inline scales; 0 for group-wise formats, whose
   * size follows from bits_per_value. */
  int32_t block_bytes;
  int32_t bits_per_value;
  /* Rows whose blocks are stored interleaved (1: each row's blocks in order, as ggml
   * stores them). The packed tensor then has rows / interleave rows of interleave
   * times the bytes. */
  int32_t interleave;
} kiln_quant_format;

/* Block layouts follow ggml's definitions (ggml-common.h):
 *   q8_0: f16 scale + 32 x int8                                   = 34 bytes / 32
 *   q4_0: f16 scale + 16 bytes of nibbles                         = 18 bytes / 32
 *   q4_k: f16 d + f16 dmin + 12 bytes of 6-bit scales/mins + 128 bytes of nibbles
 *                                                                 = 144 bytes / 256
 *   q6_k: 128 bytes low nibbles + 64 bytes high bits + 16 int8 scales + f16 d
 *                                                                 = 210 bytes / 256
 *   q5_0: f16 scale + 4 bytes of fifth bits + 16 bytes of nibbles = 22 bytes / 32
 *   q5_1: f16 scale + f16 min + 4 bytes of fifth bits + 16 bytes of nibbles
 *                                                                 = 24 bytes / 32
 *   q4_1: f16 scale d + f16 min m + 16 bytes of nibbles q, value d q + m
 *                                                                 = 20 bytes / 32
 * and kiln's own layout of q4_0, written by the compiler (kiln-interleave-weights):
 *   q4_0x16: rows in groups of 16; per group and block of 32 values, the 16 rows'
 *            f16 scales then 256 bytes of nibbles (in the order a product reads
 *            them) = 288 bytes / (16 x 32). The nibbles
 *            are 8 slices of 32 bytes, one per quad q of values 4q..4q+3: byte 2r + e
 *            holds value 4q + e of row r in its low nibble and 4q + 2 + e in its high
 *            nibble (e = 0, 1). A vector of 16 rows' bytes thus holds pairs of
 *            consecutive values per row: what a 2-term integer dot product (pmaddwd)
 *            of 16 rows with a broadcast pair of activations reads.
 *   q8_0x16: the same for q8_0: per 16 rows and block, 16 slices of 32 bytes, byte
 *            2r + e of slice s holding value 2s + e of row r (int8), then the 16
 *            scales = 544 bytes / (16 x 32).
 *   q5_0x16: per 16 rows and block, in the order a product reads them: the 16
 *            scales (bytes 0-31); the fifth bits as two slices of 32 bytes (32-95):
 *            for v = 2q + h (quad q, nibble half h), bit v % 8 of byte 2r + e of
 *            slice v / 8 is the fifth bit of value 4q + 2h + e of row r (a shift and
 *            an and turn a slice into the fifth bits of 8 vectors of values); then
 *            the low four bits as q4_0x16's 8 slices (96-351) = 352 bytes / (16 x 32).
 *   q4_kx16: per 16 rows and block of 256, the 16 rows' f16 d (bytes 0-31) and dmin
 *            (32-63), then per sub-block s of 32 values (8 of them, 288 bytes each from
 *            64 + 288 s): the 16 rows' 6-bit scales as bytes (0-15), their 6-bit mins
 *            as bytes (16-31), and the nibbles as q4_0x16's 8 slices (32-287) = 2368
 *            bytes / (16 x 256): 64 bytes more than 16 q4_k blocks (+2.8%), for scales
 *            a product reads with one load instead of unpacking 12 bytes per row.
 *   q6_kx16: per 16 rows and block of 256, the 16 rows' f16 d (bytes 0-31), then per
 *            sub-block s of 32 values (416 bytes each from 32 + 416 s): the rows' int8
 *            scales (byte 16 j + r: row r's scale of values 16 j .. 16 j + 15), the
 *            high two bits as 4 slices of 32 bytes (32-159: bits 2 (v % 4) and up of
 *            byte 2r + e of slice v / 4, for the v-th vector of values, v = 2q + h),
 *            and the low four bits as q4_0x16's 8 slices (160-415) = 3360 bytes /
 *            (16 x 256), as many as 16 q6_k blocks. */
static const kiln_quant_format kiln_quant_formats[KILN_QUANT_SCHEME_COUNT] = {
    {"q8_0", 32, 34, 8, 1},
    {"q4_0", 32, 18, 4, 1},
    {"q4_k", 256, 144, 4, 1},
    {"q6_k", 256, 210, 6, 1},
    {"int8", 0, 0, 8, 1},
    {"int4", 0, 0, 4, 1},
    {"q5_0", 32, 22, 5, 1},
    {"q5_1", 32, 24, 5, 1},
    {"q4_0x16", 32, 18, 4, 16},
    {"q8_0x16", 32, 34, 8, 16},
    {"q5_0x16", 32, 22, 5, 16},
    {"q4_kx16", 256, 148, 4, 16},
    {"q6_kx16", 256, 210, 6, 16},
    {"q4_1", 32, 20, 4, 1},
};

/* Bytes that `elements` logical values occupy packed in `scheme`, or -1 when
 * `elements` is not a whole number of blocks. Group-wise formats count only the
 * packed values (their scales are separate tensors). */
static inline int64_t kiln_quant_packed_bytes(kiln_quant_scheme scheme, int64_t elements) {
  const kiln_quant_format *f = &kiln_quant_formats[scheme];
  if (f->block_elements == 0)
    return (elements * f->bits_per_value + 7) / 8;
  if (elements % f->block_elements != 0)
    return -1;
  return elements / f->block_elements * f->block_bytes;
}

#ifdef __cplusplus
}
#endif

#endif /* KILN_QUANT_FORMATS_H */
