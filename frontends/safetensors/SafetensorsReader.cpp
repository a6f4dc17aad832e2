// Validates a .safetensors file as the format's reference implementation does
// (huggingface/safetensors, safetensors/src/tensor.rs): the header size fits the file,
// the header is a JSON object of tensor entries {dtype, shape, data_offsets} plus an
// optional string-to-string `__metadata__`, and the tensors' byte ranges tile the data
// section exactly (sorted by offset: no gap, no overlap, nothing left over), each as
// long as its shape and dtype say.
#include "SafetensorsReader.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <set>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

namespace kiln::safetensors {

namespace {

// The header keeps its order (tensors() lists tensors as the file does); the shard
// index is only looked up, so it uses the sorted form.
using Json = nlohmann::ordered_json;
using IndexJson = nlohmann::json;

// The reference implementation's bound; no real header comes near it, and it keeps a
// corrupt size from making the JSON parser walk gigabytes.
constexpr uint64_t kMaxHeaderSize = 100'000'000;

const std::vector<DTypeInfo> kDTypes = {
    {"BOOL", 1}, {"U8", 1},       {"I8", 1},       {"F8_E5M2", 1}, {"F8_E4M3", 1},
    {"F8_E8M0", 1}, {"I16", 2},   {"U16", 2},      {"F16", 2},     {"BF16", 2},
    {"I32", 4},  {"U32", 4},      {"F32", 4},      {"I64", 8},     {"U64", 8},
    {"F64", 8},  {"C64", 8},
};

std::string dtypeNames() {
  std::string names;
  for (const DTypeInfo &row : kDTypes)
    names += (names.empty() ? "" : ", ") + std::string(row.name);
  return names;
}

Error fail(const std::string &message) { return Error{"safetensors: " + message}; }

Error failTensor(const std::string &name, const std::string &message) {
  return fail("tensor '" + name + "': " + message);
}

// A JSON value as a non-negative integer, or false.
bool asCount(const Json &value, uint64_t &out) {
  if (value.is_number_unsigned()) {
    out = value.get<uint64_t>();
    return true;
  }
  if (value.is_number_integer() && value.get<int64_t>() >= 0) {
    out = uint64_t(value.get<int64_t>());
    return true;
  }
  return false;
}

std::string range(uint64_t begin, uint64_t end) {
  return "[" + std::to_string(begin) + ", " + std::to_string(end) + ")";
}

} // namespace

const std::vector<DTypeInfo> &dtypes() { return kDTypes; }

const DTypeInfo *dtypeInfo(std::string_view name) {
  for (const DTypeInfo &row : kDTypes)
    if (name == row.name)
      return &row;
  return nullptr;
}

Result<std::unique_ptr<SafetensorsReader>> SafetensorsReader::fromMemory(const uint8_t *data,
                                                                         size_t size) {
  return parse(data, size);
}

Result<std::unique_ptr<SafetensorsReader>> SafetensorsReader::parse(const uint8_t *data,
                                                                    size_t size) {
  if (size < 8)
    return fail("the file is " + std::to_string(size) +
                " bytes, too short for the 8-byte header size at byte 0");
  uint64_t headerSize = 0;
  for (int i = 7; i >= 0; --i)
    headerSize = headerSize << 8 | data[i];
  if (headerSize > kMaxHeaderSize)
    return fail("the header size at byte 0 is " + std::to_string(headerSize) +
                ", more than the format's limit of " + std::to_string(kMaxHeaderSize));
  if (headerSize > size - 8)
    return fail("the header size at byte 0 is " + std::to_string(headerSize) +
                " but only " + std::to_string(size - 8) + " bytes follow it");
  const char *text = reinterpret_cast<const char *>(data + 8);
  if (headerSize == 0 || text[0] != '{')
    return fail("the JSON header at byte 8 must start with '{'");

  // nlohmann keeps the last of duplicate keys; the callback sees every key, so a
  // tensor (or field) listed twice is caught instead of silently replaced.
  std::vector<std::set<std::string>> openObjects;
  std::string duplicate;
  auto onEvent = [&](int, Json::parse_event_t event, Json &parsed) {
    if (event == Json::parse_event_t::object_start)
      openObjects.emplace_back();
    else if (event == Json::parse_event_t::object_end && !openObjects.empty())
      openObjects.pop_back();
    else if (event == Json::parse_event_t::key && !openObjects.empty() &&
             !openObjects.back().insert(parsed.get<std::string>()).second &&
             duplicate.empty())
      duplicate = parsed.get<std::string>();
    return true;
  };
  Json header;
  try {
    header = Json::parse(text, text + headerSize, onEvent);
  } catch (const Json::exception &error) {
    std::string what = error.what();
    if (const auto *parseError = dynamic_cast<const Json::parse_error *>(&error)) {
      // nlohmann counts bytes from 1 and reports where it stopped reading.
      uint64_t position = 8 + (parseError->byte ? parseError->byte - 1 : 0);
      size_t colon = what.find(": ");
      return fail("malformed JSON header at byte " + std::to_string(position) + ": " +
                  (colon == std::string::npos ? what : what.substr(colon + 2)));
    }
    return fail("malformed JSON header: " + what);
  }
  if (!duplicate.empty())
    return fail("the JSON header lists the key '" + duplicate + "' twice");
  if (!header.is_object())
    return fail("the JSON header at byte 8 is not an object");

  std::unique_ptr<SafetensorsReader> reader(new SafetensorsReader());
  reader->bytes = data;
  reader->size = size;
  reader->dataSectionOffset = 8 + headerSize;
  uint64_t dataSize = size - reader->dataSectionOffset;
  std::vector<std::pair<uint64_t, uint64_t>> ranges; // [begin, end) per tensor

  for (auto &[name, entry] : header.items()) {
    if (name == "__metadata__") {
      if (!entry.is_object())
        return fail("'__metadata__' must be an object of strings");
      for (auto &[key, value] : entry.items()) {
        if (!value.is_string())
          return fail("'__metadata__' key '" + key + "' must be a string, got " +
                      value.type_name());
        reader->metadataEntries[key] = value.get<std::string>();
      }
      continue;
    }
    if (!entry.is_object())
      return failTensor(name, std::string("the entry must be an object, got ") +
                                  entry.type_name());
    for (auto &[key, value] : entry.items())
      if (key != "dtype" && key != "shape" && key != "data_offsets")
        return failTensor(name, "unknown key '" + key +
                                    "' (expected dtype, shape and data_offsets)");
    TensorInfo tensor;
    tensor.name = name;

    auto dtype = entry.find("dtype");
    if (dtype == entry.end() || !dtype->is_string())
      return failTensor(name, "'dtype' is missing or not a string");
    tensor.dtype = dtypeInfo(dtype->get<std::string>());
    if (!tensor.dtype)
      return failTensor(name, "unknown dtype '" + dtype->get<std::string>() +
                                  "' (kiln reads: " + dtypeNames() + ")");

    auto shape = entry.find("shape");
    if (shape == entry.end() || !shape->is_array())
      return failTensor(name, "'shape' is missing or not an array");
    tensor.elementCount = 1;
    for (size_t i = 0; i < shape->size(); ++i) {
      uint64_t dim = 0;
      if (!asCount((*shape)[i], dim))
        return failTensor(name, "shape[" + std::to_string(i) +
                                    "] is not a non-negative integer");
      if (__builtin_mul_overflow(tensor.elementCount, dim, &tensor.elementCount))
        return failTensor(name, "its shape's element count overflows 64 bits");
      tensor.shape.push_back(dim);
    }

    auto offsets = entry.find("data_offsets");
    uint64_t begin = 0, end = 0;
    if (offsets == entry.end() || !offsets->is_array() || offsets->size() != 2 ||
        !asCount((*offsets)[0], begin) || !asCount((*offsets)[1], end))
      return failTensor(name, "'data_offsets' must be two non-negative integers [begin, end]");
    if (begin > end || end > dataSize)
      return failTensor(name, "data_offsets " + range(begin, end) +
                                  " is not a range inside the " + std::to_string(dataSize) +
                                  "-byte data section (file bytes " +
                                  range(reader->dataSectionOffset, size) + ")");
    if (tensor.elementCount > dataSize / tensor.dtype->bytes)
      return failTensor(name, "its " + std::to_string(tensor.elementCount) + " " +
                                  tensor.dtype->name + " elements need more than the " +
                                  std::to_string(dataSize) + "-byte data section");
    if (end - begin != tensor.elementCount * tensor.dtype->bytes)
      return failTensor(name, "data_offsets " + range(begin, end) + " hold " +
                                  std::to_string(end - begin) + " bytes, but " +
                                  std::to_string(tensor.elementCount) + " " +
                                  tensor.dtype->name + " elements need " +
                                  std::to_string(tensor.elementCount * tensor.dtype->bytes));
    tensor.fileOffset = reader->dataSectionOffset + begin;
    tensor.byteSize = end - begin;
    tensor.data = data + tensor.fileOffset;
    ranges.emplace_back(begin, end);
    reader->tensorInfos.push_back(std::move(tensor));
  }

  // The byte ranges, sorted, must tile the data section.
  std::vector<size_t> order(ranges.size());
  for (size_t i = 0; i < order.size(); ++i)
    order[i] = i;
  std::sort(order.begin(), order.end(),
            [&](size_t a, size_t b) { return ranges[a] < ranges[b]; });
  uint64_t expected = 0;
  const TensorInfo *previous = nullptr;
  for (size_t i : order) {
    const TensorInfo &tensor = reader->tensorInfos[i];
    auto [begin, end] = ranges[i];
    if (begin < expected)
      return failTensor(tensor.name, "data_offsets " + range(begin, end) +
                                         " overlap tensor '" + previous->name + "' (file bytes " +
                                         range(reader->dataSectionOffset + begin,
                                               reader->dataSectionOffset + expected) +
                                         ")");
    if (begin > expected)
      return failTensor(tensor.name,
                        "data_offsets " + range(begin, end) + " leave the bytes " +
                            range(expected, begin) + " of the data section unused (file bytes " +
                            range(reader->dataSectionOffset + expected,
                                  reader->dataSectionOffset + begin) +
                            "); tensors must follow each other without gaps");
    expected = end;
    previous = &tensor;
  }
  if (expected != dataSize)
    return fail("the data section ends at file byte " + std::to_string(size) +
                " but its tensors end at file byte " +
                std::to_string(reader->dataSectionOffset + expected) +
                " (trailing bytes belong to no tensor)");

  for (size_t i = 0; i < reader->tensorInfos.size(); ++i)
    reader->tensorIndex.emplace(reader->tensorInfos[i].name, i);
  return reader;
}

Result<std::unique_ptr<SafetensorsReader>> SafetensorsReader::open(const std::string &path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return fail("cannot open '" + path + "': " + std::strerror(errno));
  struct stat info;
  if (fstat(fd, &info) != 0 || !S_ISREG(info.st_mode)) {
    ::close(fd);
    return fail("'" + path + "' is not a regular file");
  }
  size_t size = size_t(info.st_size);
  void *mapping = nullptr;
  if (size != 0) {
    mapping = mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
    int mapError = errno;
    if (mapping == MAP_FAILED) {
      ::close(fd);
      return fail("cannot map '" + path + "': " + std::strerror(mapError));
    }
  }
  ::close(fd);
  Result<std::unique_ptr<SafetensorsReader>> reader =
      parse(static_cast<const uint8_t *>(mapping), size);
  if (!reader) {
    if (mapping)
      munmap(mapping, size);
    return Error{reader.error() + " in '" + path + "'"};
  }
  (*reader)->mapping = mapping;
  (*reader)->mappingSize = size;
  (*reader)->filePath = path;
  return reader;
}

SafetensorsReader::~SafetensorsReader() {
  if (mapping)
    munmap(mapping, mappingSize);
}

const TensorInfo *SafetensorsReader::findTensor(std::string_view name) const {
  auto it = tensorIndex.find(name);
  return it == tensorIndex.end() ? nullptr : &tensorInfos[it->second];
}

Result<std::unique_ptr<SafetensorsCheckpoint>>
SafetensorsCheckpoint::open(const std::string &path) {
  auto checkpoint = std::make_unique<SafetensorsCheckpoint>();
  auto endsWith = [&](std::string_view suffix) {
    return path.size() >= suffix.size() &&
           path.compare(path.size() - suffix.size(), suffix.size(), suffix) == 0;
  };
  if (!endsWith(".index.json")) {
    Result<std::unique_ptr<SafetensorsReader>> file = SafetensorsReader::open(path);
    if (!file)
      return file.takeError();
    checkpoint->shards.push_back(std::move(*file));
    for (const TensorInfo &tensor : checkpoint->shards.back()->tensors())
      checkpoint->index[tensor.name] = {checkpoint->shards.back().get(), &tensor};
    return checkpoint;
  }

  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return fail("cannot open '" + path + "': " + std::strerror(errno));
  std::string text;
  char buffer[65536];
  for (ssize_t got; (got = ::read(fd, buffer, sizeof buffer)) > 0;)
    text.append(buffer, size_t(got));
  ::close(fd);
  IndexJson index = IndexJson::parse(text, nullptr, /*allow_exceptions=*/false);
  if (index.is_discarded() || !index.is_object())
    return fail("'" + path + "' is not a JSON object");
  auto weightMap = index.find("weight_map");
  if (weightMap == index.end() || !weightMap->is_object())
    return fail("'" + path + "' has no 'weight_map' object");

  std::string directory;
  if (size_t slash = path.rfind('/'); slash != std::string::npos)
    directory = path.substr(0, slash + 1);
  std::unordered_map<std::string, SafetensorsReader *> opened;
  for (auto &[name, file] : weightMap->items()) {
    if (!file.is_string())
      return fail("'" + path + "': weight_map entry '" + name + "' is not a file name");
    std::string shardName = file.get<std::string>();
    // Shards sit beside the index; a path leaving that directory is refused.
    if (shardName.empty() || shardName[0] == '/' || shardName.find("..") != std::string::npos)
      return fail("'" + path + "': weight_map entry '" + name + "' names the file '" +
                  shardName + "', which is not beside the index");
    SafetensorsReader *&shard = opened[shardName];
    if (!shard) {
      Result<std::unique_ptr<SafetensorsReader>> reader =
          SafetensorsReader::open(directory + shardName);
      if (!reader)
        return Error{reader.error() + " (a shard named by '" + path + "')"};
      checkpoint->shards.push_back(std::move(*reader));
      shard = checkpoint->shards.back().get();
    }
    const TensorInfo *tensor = shard->findTensor(name);
    if (!tensor)
      return fail("'" + path + "' maps tensor '" + name + "' to '" + shardName +
                  "', which does not hold it");
  }
  // Every tensor of every shard must be listed (and so be in one shard only).
  for (const auto &shard : checkpoint->shards)
    for (const TensorInfo &tensor : shard->tensors()) {
      auto listed = weightMap->find(tensor.name);
      if (listed == weightMap->end() || directory + listed->get<std::string>() != shard->path())
        return fail("tensor '" + tensor.name + "' in '" + shard->path() +
                    "' is not mapped to that file by '" + path + "'");
      checkpoint->index[tensor.name] = {shard.get(), &tensor};
    }
  return checkpoint;
}

SafetensorsCheckpoint::Located SafetensorsCheckpoint::find(std::string_view name) const {
  auto it = index.find(name);
  return it == index.end() ? Located{} : it->second;
}

} // namespace kiln::safetensors
