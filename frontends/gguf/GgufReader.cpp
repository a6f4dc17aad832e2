// GgufReader: parses and validates a GGUF file (header, metadata, tensor infos, data
// section) before anything in it is used; every failure names what was being read
// and the byte offset.
#include "GgufReader.h"

#include "kiln/quant_formats.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <limits>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "GgufReader reads little-endian GGUF files in place");

namespace kiln::gguf {

namespace {

// Arrays of arrays are legal GGUF; nothing real nests deeper than two, and the bound
// keeps a hostile file from recursing without limit.
constexpr int kMaxArrayNesting = 8;
// GGML_MAX_DIMS.
constexpr uint32_t kMaxDims = 4;
constexpr uint32_t kDefaultAlignment = 32;

size_t fixedValueSize(ValueType type) {
  switch (type) {
  case ValueType::UInt8:
  case ValueType::Int8:
  case ValueType::Bool:
    return 1;
  case ValueType::UInt16:
  case ValueType::Int16:
    return 2;
  case ValueType::UInt32:
  case ValueType::Int32:
  case ValueType::Float32:
    return 4;
  case ValueType::UInt64:
  case ValueType::Int64:
  case ValueType::Float64:
    return 8;
  case ValueType::String:
  case ValueType::Array:
    return 0;
  }
  return 0;
}

// The fewest bytes one value of `type` occupies: a string is at least its length, an
// array its element type and count.
uint64_t minimumEncodedSize(ValueType type) {
  if (type == ValueType::String)
    return 8;
  if (type == ValueType::Array)
    return 12;
  return fixedValueSize(type);
}

bool isValidValueType(uint32_t type) { return type <= uint32_t(ValueType::Float64); }

template <typename T> T load(const uint8_t *at) {
  T value;
  std::memcpy(&value, at, sizeof(T));
  return value;
}

// Widens the scalar of `type` stored at `at` into `value` (see MetadataValue).
void decodeScalar(ValueType type, const uint8_t *at, MetadataValue &value) {
  value.type = type;
  switch (type) {
  case ValueType::UInt8:
  case ValueType::Bool:
    value.integer = load<uint8_t>(at);
    return;
  case ValueType::Int8:
    value.integer = uint64_t(int64_t(load<int8_t>(at)));
    return;
  case ValueType::UInt16:
    value.integer = load<uint16_t>(at);
    return;
  case ValueType::Int16:
    value.integer = uint64_t(int64_t(load<int16_t>(at)));
    return;
  case ValueType::UInt32:
    value.integer = load<uint32_t>(at);
    return;
  case ValueType::Int32:
    value.integer = uint64_t(int64_t(load<int32_t>(at)));
    return;
  case ValueType::UInt64:
  case ValueType::Int64:
    value.integer = load<uint64_t>(at);
    return;
  case ValueType::Float32:
    value.real = load<float>(at);
    return;
  case ValueType::Float64:
    value.real = load<double>(at);
    return;
  case ValueType::String:
  case ValueType::Array:
    return;
  }
}

} // namespace

const char *valueTypeName(ValueType type) {
  static const char *const names[] = {"uint8",   "int8",   "uint16", "int16", "uint32",
                                      "int32",   "float32", "bool",  "string", "array",
                                      "uint64",  "int64",  "float64"};
  uint32_t index = uint32_t(type);
  return index < sizeof(names) / sizeof(names[0]) ? names[index] : "invalid";
}

static bool isIntegerType(ValueType type) {
  switch (type) {
  case ValueType::UInt8:
  case ValueType::Int8:
  case ValueType::UInt16:
  case ValueType::Int16:
  case ValueType::UInt32:
  case ValueType::Int32:
  case ValueType::UInt64:
  case ValueType::Int64:
    return true;
  default:
    return false;
  }
}

bool MetadataValue::isInteger() const { return isIntegerType(type); }

MetadataValue MetadataValue::element(uint64_t index) const {
  if (!scalarElements)
    return elements[index];
  MetadataValue value;
  decodeScalar(elementType, scalarElements + index * fixedValueSize(elementType), value);
  return value;
}

bool MetadataValue::isSigned() const {
  return type == ValueType::Int8 || type == ValueType::Int16 || type == ValueType::Int32 ||
         type == ValueType::Int64;
}

const std::vector<GgmlTypeInfo> &ggmlTypes() {
  // Block layouts from ggml-common.h; ids 4, 5, 31-33 and 36-38 were removed from ggml.
  static const std::vector<GgmlTypeInfo> table = {
      {0, "F32", 1, 4, -1},
      {1, "F16", 1, 2, -1},
      {2, "Q4_0", 32, 18, KILN_QUANT_Q4_0},
      {3, "Q4_1", 32, 20, KILN_QUANT_Q4_1},
      {6, "Q5_0", 32, 22, KILN_QUANT_Q5_0},
      {7, "Q5_1", 32, 24, KILN_QUANT_Q5_1},
      {8, "Q8_0", 32, 34, KILN_QUANT_Q8_0},
      {9, "Q8_1", 32, 36, -1},
      {10, "Q2_K", 256, 84, -1},
      {11, "Q3_K", 256, 110, -1},
      {12, "Q4_K", 256, 144, KILN_QUANT_Q4_K},
      {13, "Q5_K", 256, 176, -1},
      {14, "Q6_K", 256, 210, KILN_QUANT_Q6_K},
      {15, "Q8_K", 256, 292, -1},
      {16, "IQ2_XXS", 256, 66, -1},
      {17, "IQ2_XS", 256, 74, -1},
      {18, "IQ3_XXS", 256, 98, -1},
      {19, "IQ1_S", 256, 50, -1},
      {20, "IQ4_NL", 32, 18, -1},
      {21, "IQ3_S", 256, 110, -1},
      {22, "IQ2_S", 256, 82, -1},
      {23, "IQ4_XS", 256, 136, -1},
      {24, "I8", 1, 1, -1},
      {25, "I16", 1, 2, -1},
      {26, "I32", 1, 4, -1},
      {27, "I64", 1, 8, -1},
      {28, "F64", 1, 8, -1},
      {29, "IQ1_M", 256, 56, -1},
      {30, "BF16", 1, 2, -1},
      {34, "TQ1_0", 256, 54, -1},
      {35, "TQ2_0", 256, 66, -1},
      {39, "MXFP4", 32, 17, -1},
  };
  return table;
}

const GgmlTypeInfo *ggmlTypeInfo(uint32_t ggmlType) {
  for (const GgmlTypeInfo &row : ggmlTypes())
    if (row.id == ggmlType)
      return &row;
  return nullptr;
}

// Reads the file front to back. A failure records a message and the offset where the
// offending field starts; callers up the stack prefix the message with their context
// (key, array element, tensor), and GgufReader reports it once.
class GgufParser {
public:
  explicit GgufParser(GgufReader &reader) : reader(reader), data(reader.bytes), size(reader.size) {}

  Result<bool> parse() {
    if (!parseHeaderAndMetadata() || !parseTensorInfos())
      return Error{"gguf: " + message + " (at byte offset " + std::to_string(offset) + ")"};
    return true;
  }

private:
  GgufReader &reader;
  const uint8_t *data;
  uint64_t size;
  uint64_t pos = 0;
  std::string message;
  uint64_t offset = 0;

  bool fail(uint64_t at, std::string why) {
    message = std::move(why);
    offset = at;
    return false;
  }
  void prefix(const std::string &context) { message = context + ": " + message; }

  bool need(uint64_t bytes, const char *what) {
    if (bytes <= size - pos)
      return true;
    return fail(pos, std::string("file truncated reading ") + what + " (needs " +
                         std::to_string(bytes) + " bytes, " + std::to_string(size - pos) +
                         " left)");
  }

  template <typename T> bool read(T &out, const char *what) {
    if (!need(sizeof(T), what))
      return false;
    std::memcpy(&out, data + pos, sizeof(T));
    pos += sizeof(T);
    return true;
  }

  bool readString(std::string_view &out, const char *what) {
    uint64_t start = pos;
    uint64_t length;
    if (!read(length, what))
      return false;
    if (length > size - pos)
      return fail(start, std::string(what) + " length " + std::to_string(length) +
                             " runs past the end of the file (" + std::to_string(size - pos) +
                             " bytes left)");
    out = std::string_view(reinterpret_cast<const char *>(data + pos), length);
    pos += length;
    return true;
  }

  bool readValueType(ValueType &out, const char *what) {
    uint64_t start = pos;
    uint32_t raw;
    if (!read(raw, what))
      return false;
    if (!isValidValueType(raw))
      return fail(start, std::string("invalid ") + what + " " + std::to_string(raw) +
                             " (valid: 0..12)");
    out = ValueType(raw);
    return true;
  }

  bool readValue(ValueType type, MetadataValue &value, int depth) {
    value.type = type;
    if (type == ValueType::String)
      return readString(value.string, "string");
    if (type == ValueType::Array)
      return readArray(value, depth);
    uint64_t start = pos;
    if (!need(fixedValueSize(type), valueTypeName(type)))
      return false;
    decodeScalar(type, data + pos, value);
    pos += fixedValueSize(type);
    if (type == ValueType::Bool && value.integer > 1)
      return fail(start, "bool value " + std::to_string(value.integer) + " is neither 0 nor 1");
    return true;
  }

  bool readArray(MetadataValue &value, int depth) {
    uint64_t start = pos;
    if (depth >= kMaxArrayNesting)
      return fail(start, "arrays nested deeper than " + std::to_string(kMaxArrayNesting));
    if (!readValueType(value.elementType, "array element type"))
      return false;
    uint64_t countAt = pos;
    uint64_t count;
    if (!read(count, "array length"))
      return false;
    // Reject impossible counts before allocating for them.
    uint64_t least = minimumEncodedSize(value.elementType);
    if (count > (size - pos) / least)
      return fail(countAt, "array of " + std::to_string(count) + " " +
                               valueTypeName(value.elementType) + " values cannot fit in the " +
                               std::to_string(size - pos) + " bytes left");
    value.arrayLength = count;
    size_t scalarSize = fixedValueSize(value.elementType);
    if (scalarSize) {
      value.scalarElements = data + pos;
      for (uint64_t i = 0; value.elementType == ValueType::Bool && i < count; ++i)
        if (data[pos + i] > 1)
          return fail(pos + i, "array element " + std::to_string(i) + ": bool value " +
                                   std::to_string(data[pos + i]) + " is neither 0 nor 1");
      pos += count * scalarSize;
      return true;
    }
    value.elements.resize(count);
    for (uint64_t i = 0; i < count; ++i)
      if (!readValue(value.elementType, value.elements[i], depth + 1)) {
        prefix("array element " + std::to_string(i));
        return false;
      }
    return true;
  }

  bool parseHeaderAndMetadata() {
    uint32_t magic;
    if (!read(magic, "magic"))
      return false;
    if (std::memcmp(data, "GGUF", 4) != 0)
      return fail(0, "bad magic (expected \"GGUF\")");
    uint32_t version;
    if (!read(version, "version"))
      return false;
    if (version != 2 && version != 3) {
      bool swapped = version == __builtin_bswap32(2u) || version == __builtin_bswap32(3u);
      return fail(4, swapped ? std::string("big-endian GGUF files are not supported")
                             : "unsupported version " + std::to_string(version) +
                                   " (supported: 2, 3)");
    }
    reader.formatVersion = version;
    uint64_t tensorCountAt = pos;
    uint64_t tensorCount, entryCount;
    if (!read(tensorCount, "tensor count"))
      return false;
    uint64_t entryCountAt = pos;
    if (!read(entryCount, "metadata count"))
      return false;
    // A metadata entry takes at least a key length, a type and a byte; a tensor info at
    // least a name length, n_dims, a type and an offset.
    if (entryCount > (size - pos) / 13)
      return fail(entryCountAt, "metadata count " + std::to_string(entryCount) +
                                    " cannot fit in the file");
    if (tensorCount > (size - pos) / 24)
      return fail(tensorCountAt, "tensor count " + std::to_string(tensorCount) +
                                     " cannot fit in the file");
    reader.tensorInfos.resize(tensorCount);

    reader.entries.resize(entryCount);
    for (uint64_t i = 0; i < entryCount; ++i) {
      MetadataEntry &entry = reader.entries[i];
      uint64_t keyAt = pos;
      if (!readString(entry.key, "metadata key")) {
        prefix("metadata entry " + std::to_string(i));
        return false;
      }
      std::string context = "metadata key '" + std::string(entry.key) + "'";
      if (entry.key.empty())
        return fail(keyAt, "metadata entry " + std::to_string(i) + " has an empty key");
      if (!reader.entryIndex.emplace(entry.key, i).second)
        return fail(keyAt, "duplicate " + context);
      ValueType type;
      if (!readValueType(type, "value type") || !readValue(type, entry.value, 0)) {
        prefix(context);
        return false;
      }
    }

    if (const MetadataValue *alignment = reader.find("general.alignment")) {
      if (alignment->type != ValueType::UInt32)
        return fail(0, std::string("metadata key 'general.alignment' must be uint32, not ") +
                           valueTypeName(alignment->type));
      uint64_t value = alignment->integer;
      if (value == 0 || (value & (value - 1)) != 0)
        return fail(0, "metadata key 'general.alignment' is " + std::to_string(value) +
                           ", not a power of two");
      reader.dataAlignment = uint32_t(value);
    } else {
      reader.dataAlignment = kDefaultAlignment;
    }
    return true;
  }

  bool parseTensorInfo(TensorInfo &tensor) {
    uint32_t dimCount;
    uint64_t dimCountAt = pos;
    if (!read(dimCount, "n_dims"))
      return false;
    if (dimCount > kMaxDims)
      return fail(dimCountAt, "n_dims " + std::to_string(dimCount) + " exceeds " +
                                  std::to_string(kMaxDims));
    tensor.dims.resize(dimCount);
    uint64_t elements = 1;
    for (uint32_t d = 0; d < dimCount; ++d) {
      uint64_t dimAt = pos;
      if (!read(tensor.dims[d], "dimension"))
        return false;
      uint64_t dim = tensor.dims[d];
      if (dim == 0)
        return fail(dimAt, "dimension " + std::to_string(d) + " is zero");
      if (dim > uint64_t(std::numeric_limits<int64_t>::max()) / elements)
        return fail(dimAt, "element count overflows int64 at dimension " + std::to_string(d));
      elements *= dim;
    }
    tensor.elementCount = elements;
    uint64_t typeAt = pos;
    uint32_t typeId;
    if (!read(typeId, "ggml type"))
      return false;
    tensor.type = ggmlTypeInfo(typeId);
    if (!tensor.type)
      return fail(typeAt, "unknown ggml type " + std::to_string(typeId));
    uint64_t rowLength = dimCount ? tensor.dims[0] : 1;
    if (rowLength % tensor.type->blockElements != 0)
      return fail(typeAt, "innermost dimension " + std::to_string(rowLength) +
                              " is not a multiple of " + tensor.type->name + "'s block of " +
                              std::to_string(tensor.type->blockElements));
    uint64_t blocks = elements / tensor.type->blockElements;
    if (blocks > uint64_t(std::numeric_limits<int64_t>::max()) / tensor.type->blockBytes)
      return fail(typeAt, "byte size overflows int64");
    tensor.byteSize = blocks * tensor.type->blockBytes;
    uint64_t offsetAt = pos;
    if (!read(tensor.relativeOffset, "data offset"))
      return false;
    if (tensor.relativeOffset % reader.dataAlignment != 0)
      return fail(offsetAt, "data offset " + std::to_string(tensor.relativeOffset) +
                                " is not a multiple of the alignment " +
                                std::to_string(reader.dataAlignment));
    return true;
  }

  bool parseTensorInfos() {
    for (size_t i = 0; i < reader.tensorInfos.size(); ++i) {
      TensorInfo &tensor = reader.tensorInfos[i];
      uint64_t nameAt = pos;
      if (!readString(tensor.name, "tensor name")) {
        prefix("tensor " + std::to_string(i));
        return false;
      }
      std::string context = "tensor '" + std::string(tensor.name) + "'";
      if (tensor.name.empty())
        return fail(nameAt, "tensor " + std::to_string(i) + " has an empty name");
      if (!reader.tensorIndex.emplace(tensor.name, i).second)
        return fail(nameAt, "duplicate " + context);
      if (!parseTensorInfo(tensor)) {
        prefix(context);
        return false;
      }
    }
    // pos <= size and the alignment is at most 2^31, so this cannot overflow.
    uint64_t alignment = reader.dataAlignment;
    reader.dataSectionOffset = (pos + alignment - 1) / alignment * alignment;
    return placeTensorData();
  }

  // Every tensor's bytes lie inside the file and no two tensors overlap.
  bool placeTensorData() {
    uint64_t dataStart = reader.dataSectionOffset;
    std::vector<TensorInfo *> byOffset;
    for (TensorInfo &tensor : reader.tensorInfos) {
      std::string context = "tensor '" + std::string(tensor.name) + "'";
      if (dataStart > size || tensor.relativeOffset > size - dataStart ||
          tensor.byteSize > size - dataStart - tensor.relativeOffset)
        return fail(dataStart, context + ": data [" + std::to_string(tensor.relativeOffset) +
                                   ", +" + std::to_string(tensor.byteSize) +
                                   ") of the data section runs past the end of the file (" +
                                   std::to_string(size) + " bytes)");
      tensor.fileOffset = dataStart + tensor.relativeOffset;
      tensor.data = data + tensor.fileOffset;
      byOffset.push_back(&tensor);
    }
    std::sort(byOffset.begin(), byOffset.end(), [](const TensorInfo *a, const TensorInfo *b) {
      return a->relativeOffset < b->relativeOffset;
    });
    for (size_t i = 1; i < byOffset.size(); ++i) {
      const TensorInfo &before = *byOffset[i - 1], &after = *byOffset[i];
      if (before.relativeOffset + before.byteSize > after.relativeOffset)
        return fail(after.fileOffset, "tensor '" + std::string(after.name) +
                                          "' overlaps the data of tensor '" +
                                          std::string(before.name) + "'");
    }
    return true;
  }
};

Result<std::unique_ptr<GgufReader>> GgufReader::fromMemory(const uint8_t *data, size_t size) {
  std::unique_ptr<GgufReader> reader(new GgufReader());
  reader->bytes = data;
  reader->size = size;
  Result<bool> parsed = GgufParser(*reader).parse();
  if (!parsed)
    return parsed.takeError();
  return reader;
}

Result<std::unique_ptr<GgufReader>> GgufReader::open(const std::string &path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return Error{"gguf: cannot open '" + path + "': " + std::strerror(errno)};
  struct stat info;
  if (fstat(fd, &info) != 0 || !S_ISREG(info.st_mode)) {
    ::close(fd);
    return Error{"gguf: '" + path + "' is not a regular file"};
  }
  size_t size = size_t(info.st_size);
  if (size == 0) {
    ::close(fd);
    return Error{"gguf: '" + path + "' is empty"};
  }
  void *mapping = mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  int mapError = errno;
  ::close(fd);
  if (mapping == MAP_FAILED)
    return Error{"gguf: cannot map '" + path + "': " + std::strerror(mapError)};
  Result<std::unique_ptr<GgufReader>> reader =
      fromMemory(static_cast<const uint8_t *>(mapping), size);
  if (!reader) {
    munmap(mapping, size);
    return Error{reader.error() + " in '" + path + "'"};
  }
  (*reader)->mapping = mapping;
  (*reader)->mappingSize = size;
  return reader;
}

GgufReader::~GgufReader() {
  if (mapping)
    munmap(mapping, mappingSize);
}

const MetadataValue *GgufReader::find(std::string_view key) const {
  auto it = entryIndex.find(key);
  return it == entryIndex.end() ? nullptr : &entries[it->second].value;
}

const TensorInfo *GgufReader::findTensor(std::string_view name) const {
  auto it = tensorIndex.find(name);
  return it == tensorIndex.end() ? nullptr : &tensorInfos[it->second];
}

namespace {

Error missingKey(std::string_view key) {
  return Error{"gguf: metadata key '" + std::string(key) + "' is missing"};
}

Error wrongType(std::string_view key, const MetadataValue &value, const char *expected) {
  std::string actual = valueTypeName(value.type);
  if (value.type == ValueType::Array)
    actual += std::string(" of ") + valueTypeName(value.elementType);
  return Error{"gguf: metadata key '" + std::string(key) + "' is " + actual + ", expected " +
               expected};
}

// The value of an integer as int64, or false when it does not fit.
bool asInt64(const MetadataValue &value, int64_t &out) {
  if (!value.isSigned() && value.integer > uint64_t(std::numeric_limits<int64_t>::max()))
    return false;
  out = int64_t(value.integer);
  return true;
}

} // namespace

Result<std::string_view> GgufReader::getString(std::string_view key) const {
  const MetadataValue *value = find(key);
  if (!value)
    return missingKey(key);
  if (value->type != ValueType::String)
    return wrongType(key, *value, "string");
  return value->string;
}

Result<uint64_t> GgufReader::getUInt(std::string_view key) const {
  const MetadataValue *value = find(key);
  if (!value)
    return missingKey(key);
  if (!value->isInteger())
    return wrongType(key, *value, "an integer");
  if (value->isSigned() && int64_t(value->integer) < 0)
    return Error{"gguf: metadata key '" + std::string(key) + "' is negative (" +
                 std::to_string(int64_t(value->integer)) + ")"};
  return value->integer;
}

Result<int64_t> GgufReader::getInt(std::string_view key) const {
  const MetadataValue *value = find(key);
  if (!value)
    return missingKey(key);
  int64_t result;
  if (!value->isInteger())
    return wrongType(key, *value, "an integer");
  if (!asInt64(*value, result))
    return Error{"gguf: metadata key '" + std::string(key) + "' does not fit int64"};
  return result;
}

Result<double> GgufReader::getFloat(std::string_view key) const {
  const MetadataValue *value = find(key);
  if (!value)
    return missingKey(key);
  if (value->type != ValueType::Float32 && value->type != ValueType::Float64)
    return wrongType(key, *value, "float32 or float64");
  return value->real;
}

Result<bool> GgufReader::getBool(std::string_view key) const {
  const MetadataValue *value = find(key);
  if (!value)
    return missingKey(key);
  if (value->type != ValueType::Bool)
    return wrongType(key, *value, "bool");
  return value->integer != 0;
}

Result<std::vector<std::string_view>> GgufReader::getStringArray(std::string_view key) const {
  const MetadataValue *value = find(key);
  if (!value)
    return missingKey(key);
  if (value->type != ValueType::Array || value->elementType != ValueType::String)
    return wrongType(key, *value, "array of string");
  std::vector<std::string_view> strings;
  strings.reserve(value->arrayLength);
  for (const MetadataValue &element : value->elements)
    strings.push_back(element.string);
  return strings;
}

Result<std::vector<float>> GgufReader::getFloatArray(std::string_view key) const {
  const MetadataValue *value = find(key);
  if (!value)
    return missingKey(key);
  if (value->type != ValueType::Array ||
      (value->elementType != ValueType::Float32 && value->elementType != ValueType::Float64))
    return wrongType(key, *value, "array of float32 or float64");
  std::vector<float> reals(value->arrayLength);
  for (uint64_t i = 0; i < value->arrayLength; ++i)
    reals[i] = float(value->element(i).real);
  return reals;
}

Result<std::vector<int64_t>> GgufReader::getIntArray(std::string_view key) const {
  const MetadataValue *value = find(key);
  if (!value)
    return missingKey(key);
  if (value->type != ValueType::Array || !isIntegerType(value->elementType))
    return wrongType(key, *value, "array of integers");
  std::vector<int64_t> result(value->arrayLength);
  for (uint64_t i = 0; i < value->arrayLength; ++i)
    if (!asInt64(value->element(i), result[i]))
      return Error{"gguf: metadata key '" + std::string(key) + "' element " +
                   std::to_string(i) + " does not fit int64"};
  return result;
}

} // namespace kiln::gguf
