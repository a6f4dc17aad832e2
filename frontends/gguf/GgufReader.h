// GgufReader: a validating reader of GGUF v2/v3 model files (the format of ggml and
// llama.cpp, spec: ggml docs/gguf.md) — metadata of every value type, tensor infos and
// zero-copy tensor bytes from a read-only mapping. Plain C++17, no LLVM, so the
// runtime, the tokenizers and the tools can use it as well as the compiler's frontend.
#ifndef KILN_FRONTENDS_GGUF_GGUFREADER_H
#define KILN_FRONTENDS_GGUF_GGUFREADER_H

#include "Result.h"

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace kiln::gguf {

// Metadata value types, numbered as in the file.
enum class ValueType : uint32_t {
  UInt8 = 0,
  Int8 = 1,
  UInt16 = 2,
  Int16 = 3,
  UInt32 = 4,
  Int32 = 5,
  Float32 = 6,
  Bool = 7,
  String = 8,
  Array = 9,
  UInt64 = 10,
  Int64 = 11,
  Float64 = 12,
};
const char *valueTypeName(ValueType type);

// One metadata value. Scalars are widened into `integer` (every integer type and bool;
// signed values sign-extended, so int64(integer) is the value) or `real`; strings point
// into the file mapping. An array has `arrayLength` elements of `elementType`: strings
// and arrays are decoded into `elements`, scalars stay in the file (`scalarElements`)
// so a large numeric array costs no memory; element(i) decodes either kind.
struct MetadataValue {
  ValueType type = ValueType::UInt8;
  uint64_t integer = 0;
  double real = 0;
  std::string_view string;
  ValueType elementType = ValueType::UInt8;
  uint64_t arrayLength = 0;
  const uint8_t *scalarElements = nullptr;
  std::vector<MetadataValue> elements;

  bool isInteger() const;
  bool isSigned() const;
  // Element `index` (< arrayLength) of an array.
  MetadataValue element(uint64_t index) const;
};

struct MetadataEntry {
  std::string_view key;
  MetadataValue value;
};

// One row per ggml tensor type (ggml.c's type_traits): elements per block and bytes
// per block. kilnQuantScheme is the matching kiln_quant_scheme (kiln/quant_formats.h)
// for the packed formats kiln computes on, or -1.
struct GgmlTypeInfo {
  uint32_t id;
  const char *name;
  uint32_t blockElements;
  uint32_t blockBytes;
  int kilnQuantScheme;
};
// The row of a ggml type id, or nullptr for ids ggml does not define (or removed).
const GgmlTypeInfo *ggmlTypeInfo(uint32_t ggmlType);
// All rows, in id order.
const std::vector<GgmlTypeInfo> &ggmlTypes();

struct TensorInfo {
  std::string_view name;
  // ggml order: dims[0] is the innermost (contiguous) dimension.
  std::vector<uint64_t> dims;
  const GgmlTypeInfo *type = nullptr;
  uint64_t elementCount = 0;
  uint64_t byteSize = 0;
  // Offset relative to the data section, as stored, and absolute in the file.
  uint64_t relativeOffset = 0;
  uint64_t fileOffset = 0;
  const uint8_t *data = nullptr;
};

class GgufReader {
public:
  // Maps `path` read-only and validates all of it.
  static Result<std::unique_ptr<GgufReader>> open(const std::string &path);
  // Validates bytes the caller keeps alive and unchanged for the reader's lifetime.
  static Result<std::unique_ptr<GgufReader>> fromMemory(const uint8_t *data, size_t size);

  ~GgufReader();
  GgufReader(const GgufReader &) = delete;
  GgufReader &operator=(const GgufReader &) = delete;

  uint32_t version() const { return formatVersion; }
  uint32_t alignment() const { return dataAlignment; }
  // Absolute offset of the data section (aligned up after the tensor infos).
  uint64_t dataOffset() const { return dataSectionOffset; }
  size_t fileSize() const { return size; }

  // Metadata in file order.
  const std::vector<MetadataEntry> &metadata() const { return entries; }
  const MetadataValue *find(std::string_view key) const;

  // Typed lookups: an error names the key when it is missing or of another type.
  // getUInt accepts any integer type holding a non-negative value, getInt any integer
  // type that fits int64, getFloat float32/float64.
  Result<std::string_view> getString(std::string_view key) const;
  Result<uint64_t> getUInt(std::string_view key) const;
  Result<int64_t> getInt(std::string_view key) const;
  Result<double> getFloat(std::string_view key) const;
  Result<bool> getBool(std::string_view key) const;
  Result<std::vector<std::string_view>> getStringArray(std::string_view key) const;
  Result<std::vector<float>> getFloatArray(std::string_view key) const;
  Result<std::vector<int64_t>> getIntArray(std::string_view key) const;

  // Tensors in file order.
  const std::vector<TensorInfo> &tensors() const { return tensorInfos; }
  const TensorInfo *findTensor(std::string_view name) const;

private:
  GgufReader() = default;
  friend class GgufParser;

  const uint8_t *bytes = nullptr;
  size_t size = 0;
  void *mapping = nullptr;
  size_t mappingSize = 0;
  uint32_t formatVersion = 0;
  uint32_t dataAlignment = 32;
  uint64_t dataSectionOffset = 0;
  std::vector<MetadataEntry> entries;
  std::unordered_map<std::string_view, size_t> entryIndex;
  std::vector<TensorInfo> tensorInfos;
  std::unordered_map<std::string_view, size_t> tensorIndex;
};

} // namespace kiln::gguf

#endif // KILN_FRONTENDS_GGUF_GGUFREADER_H
