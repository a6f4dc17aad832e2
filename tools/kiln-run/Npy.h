// Reading and writing NumPy .npy files (format versions 1.0, 2.0 and 3.0; little-endian,
// C order) for kiln-run's inputs, outputs and expected values.
#ifndef KILN_TOOLS_NPY_H
#define KILN_TOOLS_NPY_H

#include "Expected.h"
#include "kiln/runtime.h"

#include <cstdint>
#include <string>
#include <vector>

namespace kiln::tools {

// A dense C-order array: product(shape) little-endian elements of `dtype` in `data`.
struct NpyArray {
  kiln_dtype dtype;
  std::vector<int64_t> shape;
  std::vector<uint8_t> data;
};

// Reads and validates a whole .npy file. Every problem (unreadable, truncated, a
// malformed or unsupported header, Fortran order) is an error naming the file.
Expected<NpyArray> readNpyFile(const std::string &path);

// Writes `byteSize` bytes of dense row-major `dtype` data as a .npy file (version 1.0,
// or 2.0 when the header needs more than 64 KiB).
MaybeError writeNpyFile(const std::string &path, kiln_dtype dtype,
                        const std::vector<int64_t> &shape, const void *data, size_t byteSize);

// The dtypes .npy files can carry, for help text: "<f4 <f8 <f2 ...".
std::string supportedNpyDTypes();

} // namespace kiln::tools

#endif // KILN_TOOLS_NPY_H
