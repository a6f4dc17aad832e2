// SafetensorsReader: a validating reader of Hugging Face .safetensors files (an 8-byte
// little-endian header size, a JSON header, then the tensor bytes), zero-copy from a
// read-only mapping; and SafetensorsCheckpoint, which finds tensors across the shards
// of a `model.safetensors.index.json`. Plain C++17, no LLVM, so the runtime-free tools
// can use it as well as the compiler's frontend.
#ifndef KILN_FRONTENDS_SAFETENSORS_SAFETENSORSREADER_H
#define KILN_FRONTENDS_SAFETENSORS_SAFETENSORSREADER_H

#include "Result.h"

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace kiln::safetensors {

// One row per dtype the format defines (safetensors' Dtype enum): its name in the
// header and its size in bytes. Sub-byte types (F4, F6_*) are not listed, so a file
// using them is rejected naming the dtype.
struct DTypeInfo {
  const char *name;
  uint32_t bytes;
};
// The row for a header dtype name ("F32", "BF16", ...), or nullptr.
const DTypeInfo *dtypeInfo(std::string_view name);
// All rows.
const std::vector<DTypeInfo> &dtypes();

struct TensorInfo {
  std::string name;
  const DTypeInfo *dtype = nullptr;
  // Row-major, outermost first (as in the header).
  std::vector<uint64_t> shape;
  uint64_t elementCount = 0;
  // Absolute position of the first byte in the file, and the byte count.
  uint64_t fileOffset = 0;
  uint64_t byteSize = 0;
  const uint8_t *data = nullptr;
};

class SafetensorsReader {
public:
  // Maps `path` read-only and validates all of it. Errors name the file.
  static Result<std::unique_ptr<SafetensorsReader>> open(const std::string &path);
  // Validates bytes the caller keeps alive and unchanged for the reader's lifetime.
  static Result<std::unique_ptr<SafetensorsReader>> fromMemory(const uint8_t *data,
                                                               size_t size);

  ~SafetensorsReader();
  SafetensorsReader(const SafetensorsReader &) = delete;
  SafetensorsReader &operator=(const SafetensorsReader &) = delete;

  // The path given to open(); empty for fromMemory.
  const std::string &path() const { return filePath; }
  size_t fileSize() const { return size; }
  // Absolute offset of the data section (8 + the header size).
  uint64_t dataOffset() const { return dataSectionOffset; }

  // Tensors in the header's order.
  const std::vector<TensorInfo> &tensors() const { return tensorInfos; }
  const TensorInfo *findTensor(std::string_view name) const;
  // The header's `__metadata__` (string to string), empty when absent.
  const std::map<std::string, std::string> &metadata() const { return metadataEntries; }

private:
  SafetensorsReader() = default;
  static Result<std::unique_ptr<SafetensorsReader>> parse(const uint8_t *data, size_t size);

  const uint8_t *bytes = nullptr;
  size_t size = 0;
  void *mapping = nullptr;
  size_t mappingSize = 0;
  std::string filePath;
  uint64_t dataSectionOffset = 0;
  std::vector<TensorInfo> tensorInfos;
  std::unordered_map<std::string_view, size_t> tensorIndex;
  std::map<std::string, std::string> metadataEntries;
};

// A checkpoint of one or more safetensors files. open() takes a `.safetensors` file
// or a `*.safetensors.index.json` (Hugging Face's sharded layout: `weight_map` maps
// every tensor name to a shard file beside the index); every shard is opened and
// validated, each tensor must be in the shard the index names, and no tensor may
// appear in two shards.
class SafetensorsCheckpoint {
public:
  static Result<std::unique_ptr<SafetensorsCheckpoint>> open(const std::string &path);

  struct Located {
    const SafetensorsReader *file = nullptr; // its path() is the shard's path
    const TensorInfo *tensor = nullptr;
  };
  // The tensor and the shard holding it; both null when no shard has it.
  Located find(std::string_view name) const;
  // Every shard, in the order of their first mention in the index.
  const std::vector<std::unique_ptr<SafetensorsReader>> &files() const { return shards; }

private:
  std::vector<std::unique_ptr<SafetensorsReader>> shards;
  std::unordered_map<std::string_view, Located> index;
};

} // namespace kiln::safetensors

#endif // KILN_FRONTENDS_SAFETENSORS_SAFETENSORSREADER_H
