// SafetensorsTestWriter: builds .safetensors bytes from a header text and a data
// section, so tests can write valid files and corrupt any part of them (the reader's
// tests, the fuzzer's seed).
#ifndef KILN_TEST_SAFETENSORS_SAFETENSORSTESTWRITER_H
#define KILN_TEST_SAFETENSORS_SAFETENSORSTESTWRITER_H

#include <cstdint>
#include <string>
#include <vector>

namespace kiln::safetensors::test {

// The 8-byte little-endian header size, `header` and `data`.
inline std::vector<uint8_t> safetensorsBytes(const std::string &header,
                                             const std::vector<uint8_t> &data) {
  std::vector<uint8_t> bytes;
  uint64_t size = header.size();
  for (int i = 0; i < 8; ++i)
    bytes.push_back(uint8_t(size >> (8 * i)));
  bytes.insert(bytes.end(), header.begin(), header.end());
  bytes.insert(bytes.end(), data.begin(), data.end());
  return bytes;
}

// A valid file: metadata, an F32 [2, 3] matrix, an F16 [3] vector, an I64 scalar and
// an empty BOOL [0, 4] tensor; the data bytes count up from 0.
inline std::string smallHeader() {
  return R"({"__metadata__":{"format":"pt","note":"kiln"},)"
         R"("matrix":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]},)"
         R"("vector":{"dtype":"F16","shape":[3],"data_offsets":[24,30]},)"
         R"("scalar":{"dtype":"I64","shape":[],"data_offsets":[30,38]},)"
         R"("empty":{"dtype":"BOOL","shape":[0,4],"data_offsets":[38,38]}})";
}
inline std::vector<uint8_t> smallData() {
  std::vector<uint8_t> data(38);
  for (size_t i = 0; i < data.size(); ++i)
    data[i] = uint8_t(i);
  return data;
}

} // namespace kiln::safetensors::test

#endif // KILN_TEST_SAFETENSORS_SAFETENSORSTESTWRITER_H
