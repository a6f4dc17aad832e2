// The ONNX backend tests' data sets: test_data_set_*/input_N.pb and output_N.pb, each a
// serialized onnx.TensorProto, decoded into dense little-endian bytes.
#ifndef KILN_CONFORMANCE_ONNXTESTDATA_H
#define KILN_CONFORMANCE_ONNXTESTDATA_H

#include "Expected.h"
#include "kiln/runtime.h"

#include <cstdint>
#include <string>
#include <vector>

namespace kiln::conformance {

struct TestTensor {
  std::string name; // the TensorProto's name (the ONNX value it feeds or checks)
  kiln_dtype dtype;
  std::vector<int64_t> shape;
  std::vector<uint8_t> bytes; // dense, row-major, little-endian
};

struct DataSet {
  std::string name; // "test_data_set_0"
  std::vector<TestTensor> inputs;
  std::vector<TestTensor> outputs;
};

// Reads one .pb file; unsupported element types, external or segmented data and sizes
// that disagree with the dims are errors.
tools::Expected<TestTensor> readTensorProtoFile(const std::string &path);

// Every test_data_set_* directory of a test, sorted by name, with its inputs and outputs
// in index order (input_0.pb, input_1.pb, ... without gaps).
tools::Expected<std::vector<DataSet>> readDataSets(const std::string &testDirectory);

} // namespace kiln::conformance

#endif // KILN_CONFORMANCE_ONNXTESTDATA_H
