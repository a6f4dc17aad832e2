// Decoding the ONNX backend tests' TensorProto files (onnx/onnx.proto, message
// TensorProto): values are in raw_data (little-endian) or in the typed field the proto
// assigns to their element type.
#include "OnnxTestData.h"

#include "onnx/onnx_pb.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>

namespace kiln::conformance {

namespace {

namespace fs = std::filesystem;
using tools::Error;
using tools::Expected;

struct OnnxDTypeRow {
  onnx::TensorProto_DataType onnx;
  kiln_dtype kiln;
};
constexpr OnnxDTypeRow kOnnxDTypes[] = {
    {onnx::TensorProto_DataType_FLOAT, KILN_DTYPE_F32},
    {onnx::TensorProto_DataType_DOUBLE, KILN_DTYPE_F64},
    {onnx::TensorProto_DataType_FLOAT16, KILN_DTYPE_F16},
    {onnx::TensorProto_DataType_BFLOAT16, KILN_DTYPE_BF16},
    {onnx::TensorProto_DataType_INT8, KILN_DTYPE_I8},
    {onnx::TensorProto_DataType_INT16, KILN_DTYPE_I16},
    {onnx::TensorProto_DataType_INT32, KILN_DTYPE_I32},
    {onnx::TensorProto_DataType_INT64, KILN_DTYPE_I64},
    {onnx::TensorProto_DataType_UINT8, KILN_DTYPE_U8},
    {onnx::TensorProto_DataType_UINT16, KILN_DTYPE_U16},
    {onnx::TensorProto_DataType_UINT32, KILN_DTYPE_U32},
    {onnx::TensorProto_DataType_UINT64, KILN_DTYPE_U64},
    {onnx::TensorProto_DataType_BOOL, KILN_DTYPE_BOOL},
};

std::optional<kiln_dtype> kilnDType(int onnxType) {
  for (const OnnxDTypeRow &row : kOnnxDTypes)
    if (row.onnx == onnxType)
      return row.kiln;
  return std::nullopt;
}

// Appends each value's low `elementBytes` bytes: the typed fields hold narrower types
// widened (int8, uint16, bool and the bits of float16 in int32_data; uint32 in
// uint64_data), and the host is little-endian like the raw format.
template <typename Values>
void appendNarrowed(std::vector<uint8_t> &bytes, const Values &values, size_t elementBytes) {
  for (auto value : values) {
    uint8_t wide[sizeof value];
    std::memcpy(wide, &value, sizeof value);
    bytes.insert(bytes.end(), wide, wide + elementBytes);
  }
}

void appendTypedValues(std::vector<uint8_t> &bytes, const onnx::TensorProto &tensor,
                       size_t elementBytes) {
  switch (tensor.data_type()) {
  case onnx::TensorProto_DataType_FLOAT:
    return appendNarrowed(bytes, tensor.float_data(), elementBytes);
  case onnx::TensorProto_DataType_DOUBLE:
    return appendNarrowed(bytes, tensor.double_data(), elementBytes);
  case onnx::TensorProto_DataType_INT64:
    return appendNarrowed(bytes, tensor.int64_data(), elementBytes);
  case onnx::TensorProto_DataType_UINT32:
  case onnx::TensorProto_DataType_UINT64:
    return appendNarrowed(bytes, tensor.uint64_data(), elementBytes);
  default:
    return appendNarrowed(bytes, tensor.int32_data(), elementBytes);
  }
}

// input_0.pb, input_1.pb, ... (or output_N.pb) until the first missing index.
Expected<std::vector<TestTensor>> readIndexedTensors(const fs::path &directory,
                                                     const std::string &prefix) {
  std::vector<TestTensor> tensors;
  for (size_t index = 0;; ++index) {
    fs::path path = directory / (prefix + std::to_string(index) + ".pb");
    std::error_code ignored;
    if (!fs::exists(path, ignored))
      return tensors;
    Expected<TestTensor> tensor = readTensorProtoFile(path.string());
    if (!tensor)
      return tensor.error();
    tensors.push_back(std::move(*tensor));
  }
}

} // namespace

Expected<TestTensor> readTensorProtoFile(const std::string &path) {
  std::ifstream file(path, std::ios::binary);
  if (!file)
    return Error{"cannot open '" + path + "': " + std::strerror(errno)};
  std::string serialized((std::istreambuf_iterator<char>(file)),
                         std::istreambuf_iterator<char>());
  onnx::TensorProto tensor;
  if (!tensor.ParseFromString(serialized))
    return Error{"'" + path + "' is not a serialized onnx.TensorProto"};
  std::string where = "'" + path + "'";
  if (tensor.has_segment())
    return Error{where + " is a segment of a tensor, which is not supported"};
  if (tensor.data_location() == onnx::TensorProto_DataLocation_EXTERNAL)
    return Error{where + " has external data, which is not supported"};
  std::optional<kiln_dtype> dtype = kilnDType(tensor.data_type());
  if (!dtype)
    return Error{where + " holds " +
                 onnx::TensorProto_DataType_Name(
                     static_cast<onnx::TensorProto_DataType>(tensor.data_type())) +
                 " elements, which kiln does not support"};

  TestTensor result{tensor.name(), *dtype, {}, {}};
  size_t count = 1;
  for (int64_t extent : tensor.dims()) {
    if (extent < 0)
      return Error{where + " has a negative dimension"};
    result.shape.push_back(extent);
    count *= static_cast<size_t>(extent);
  }
  size_t elementBytes = kiln_dtype_size(*dtype);
  if (tensor.has_raw_data())
    result.bytes.assign(tensor.raw_data().begin(), tensor.raw_data().end());
  else
    appendTypedValues(result.bytes, tensor, elementBytes);
  if (result.bytes.size() != count * elementBytes)
    return Error{where + " holds " + std::to_string(result.bytes.size()) + " bytes of data, " +
                 "but its dims need " + std::to_string(count * elementBytes)};
  return result;
}

Expected<std::vector<DataSet>> readDataSets(const std::string &testDirectory) {
  std::vector<fs::path> directories;
  std::error_code error;
  for (const fs::directory_entry &entry : fs::directory_iterator(testDirectory, error))
    if (entry.is_directory() && entry.path().filename().string().rfind("test_data_set_", 0) == 0)
      directories.push_back(entry.path());
  if (error)
    return Error{"cannot list '" + testDirectory + "': " + error.message()};
  std::sort(directories.begin(), directories.end());

  std::vector<DataSet> dataSets;
  for (const fs::path &directory : directories) {
    Expected<std::vector<TestTensor>> inputs = readIndexedTensors(directory, "input_");
    if (!inputs)
      return inputs.error();
    Expected<std::vector<TestTensor>> outputs = readIndexedTensors(directory, "output_");
    if (!outputs)
      return outputs.error();
    dataSets.push_back({directory.filename().string(), std::move(*inputs), std::move(*outputs)});
  }
  if (dataSets.empty())
    return Error{"'" + testDirectory + "' has no test_data_set_* directories"};
  return dataSets;
}

} // namespace kiln::conformance
