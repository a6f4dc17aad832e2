// The one table of kiln's element types as the runtime sees them: name, storage bytes
// and the Halide type a kernel receives. Indexed by kiln_dtype, whose numbering the
// static_asserts below tie to the schema's DType.
#ifndef KILN_RUNTIME_DTYPETABLE_H
#define KILN_RUNTIME_DTYPETABLE_H

#include "artifact_generated.h"
#include "kiln/runtime.h"

#include <HalideRuntime.h>

#include <cstdint>

namespace kiln::runtime {

struct DTypeInfo {
  const char *name;
  uint8_t bytes;
  halide_type_code_t halideCode;
  uint8_t halideBits; // Halide's bool is uint with 1 bit, stored in one byte
};

inline constexpr DTypeInfo kDTypes[KILN_DTYPE_COUNT] = {
    {"f32", 4, halide_type_float, 32},  {"f64", 8, halide_type_float, 64},
    {"f16", 2, halide_type_float, 16},  {"bf16", 2, halide_type_bfloat, 16},
    {"i8", 1, halide_type_int, 8},      {"i16", 2, halide_type_int, 16},
    {"i32", 4, halide_type_int, 32},    {"i64", 8, halide_type_int, 64},
    {"u8", 1, halide_type_uint, 8},     {"u16", 2, halide_type_uint, 16},
    {"u32", 4, halide_type_uint, 32},   {"u64", 8, halide_type_uint, 64},
    {"bool", 1, halide_type_uint, 1},
};

static_assert(KILN_DTYPE_COUNT == static_cast<int>(artifact::DType::MAX) + 1,
              "kiln_dtype must mirror the schema's DType");
static_assert(KILN_DTYPE_BF16 == static_cast<int>(artifact::DType::BF16) &&
                  KILN_DTYPE_I8 == static_cast<int>(artifact::DType::I8) &&
                  KILN_DTYPE_U8 == static_cast<int>(artifact::DType::U8) &&
                  KILN_DTYPE_BOOL == static_cast<int>(artifact::DType::Bool),
              "kiln_dtype must mirror the schema's DType");

// The row for `dtype`, or nullptr for a value outside the enum (possible in an
// artifact from a newer writer or a corrupt one).
inline const DTypeInfo *findDType(artifact::DType dtype) {
  auto index = static_cast<unsigned>(dtype);
  return index < KILN_DTYPE_COUNT ? &kDTypes[index] : nullptr;
}

} // namespace kiln::runtime

#endif // KILN_RUNTIME_DTYPETABLE_H
