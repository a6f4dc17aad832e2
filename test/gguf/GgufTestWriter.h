// GgufTestWriter: writes GGUF bytes field by field, so tests can build valid files of
// every shape and corrupt any field of them (the reader's tests, the fuzzer's seed).
#ifndef KILN_TEST_GGUF_GGUFTESTWRITER_H
#define KILN_TEST_GGUF_GGUFTESTWRITER_H

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

namespace kiln::gguf::test {

// Little-endian encodings of single fields; a value's payload is what follows its type.
struct GgufBytes {
  std::vector<uint8_t> bytes;

  template <typename T> GgufBytes &put(T value) {
    uint8_t raw[sizeof(T)];
    std::memcpy(raw, &value, sizeof(T));
    bytes.insert(bytes.end(), raw, raw + sizeof(T));
    return *this;
  }
  GgufBytes &putString(std::string_view text) {
    put<uint64_t>(text.size());
    bytes.insert(bytes.end(), text.begin(), text.end());
    return *this;
  }
  GgufBytes &append(const GgufBytes &other) {
    bytes.insert(bytes.end(), other.bytes.begin(), other.bytes.end());
    return *this;
  }
};

struct MetadataSpec {
  std::string key;
  uint32_t type;
  GgufBytes payload;
};

struct TensorSpec {
  std::string name;
  std::vector<uint64_t> dims;
  uint32_t ggmlType;
  uint64_t offset;
};

// Payload helpers for metadata values.
template <typename T> GgufBytes scalarPayload(T value) { return GgufBytes().put(value); }
inline GgufBytes stringPayload(std::string_view text) { return GgufBytes().putString(text); }
inline GgufBytes arrayPayload(uint32_t elementType, uint64_t count, const GgufBytes &elements) {
  GgufBytes out;
  out.put(elementType).put(count).append(elements);
  return out;
}
inline GgufBytes stringArrayPayload(const std::vector<std::string> &strings) {
  GgufBytes elements;
  for (const std::string &s : strings)
    elements.putString(s);
  return arrayPayload(8, strings.size(), elements);
}

// A whole file: header, metadata, tensor infos, padding to `alignment` (which must
// match any general.alignment entry) and `dataBytes` of tensor data (bytes 0, 1, 2, ...).
inline std::vector<uint8_t> writeGguf(const std::vector<MetadataSpec> &metadata,
                                      const std::vector<TensorSpec> &tensors = {},
                                      uint64_t dataBytes = 0, uint32_t version = 3,
                                      uint32_t alignment = 32) {
  GgufBytes out;
  out.bytes = {'G', 'G', 'U', 'F'};
  out.put<uint32_t>(version).put<uint64_t>(tensors.size()).put<uint64_t>(metadata.size());
  for (const MetadataSpec &entry : metadata)
    out.putString(entry.key).put(entry.type).append(entry.payload);
  for (const TensorSpec &tensor : tensors) {
    out.putString(tensor.name).put<uint32_t>(tensor.dims.size());
    for (uint64_t dim : tensor.dims)
      out.put(dim);
    out.put(tensor.ggmlType).put(tensor.offset);
  }
  if (tensors.empty() && dataBytes == 0)
    return out.bytes;
  while (out.bytes.size() % alignment)
    out.bytes.push_back(0);
  for (uint64_t i = 0; i < dataBytes; ++i)
    out.bytes.push_back(uint8_t(i));
  return out.bytes;
}

} // namespace kiln::gguf::test

#endif // KILN_TEST_GGUF_GGUFTESTWRITER_H
