// Loads an ONNX model (libonnx: parse, check, infer shapes) and builds kiln IR from its
// graph, node by node, through the op lowerings registered in OpLoweringTable.
#include "frontends/onnx/OnnxImporter.h"

#include "frontends/onnx/OnnxNodeImporter.h"
#include "frontends/onnx/OnnxWireFormat.h"
#include "frontends/common/TensorSizeLimit.h"

#include "dialects/Kiln/KilnDialect.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/Verifier.h"
#include "llvm/ADT/SetVector.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"

#include <onnx/checker.h>
#include <onnx/common/version.h>
#include <onnx/defs/schema.h>
#include <onnx/onnx_pb.h>
#include <onnx/shape_inference/implementation.h>

#include <cstring>
#include <unordered_map>
#include <unordered_set>

using namespace mlir;
using namespace kiln::onnx_import;

//===----------------------------------------------------------------------===//
// Data types and import-time tensors
//===----------------------------------------------------------------------===//

Type kiln::onnx_import::elementTypeFor(int32_t onnxType, MLIRContext *context) {
  Builder b(context);
  switch (onnxType) {
  case onnx::TensorProto::FLOAT: return b.getF32Type();
  case onnx::TensorProto::DOUBLE: return b.getF64Type();
  case onnx::TensorProto::FLOAT16: return b.getF16Type();
  case onnx::TensorProto::BFLOAT16: return b.getBF16Type();
  case onnx::TensorProto::INT8: case onnx::TensorProto::UINT8: return b.getI8Type();
  case onnx::TensorProto::INT16: case onnx::TensorProto::UINT16: return b.getI16Type();
  case onnx::TensorProto::INT32: case onnx::TensorProto::UINT32: return b.getI32Type();
  case onnx::TensorProto::INT64: case onnx::TensorProto::UINT64: return b.getI64Type();
  case onnx::TensorProto::BOOL: return b.getI1Type();
  default: return nullptr;
  }
}

bool kiln::onnx_import::isUnsignedOnnxType(int32_t onnxType) {
  return onnxType == onnx::TensorProto::UINT8 || onnxType == onnx::TensorProto::UINT16 ||
         onnxType == onnx::TensorProto::UINT32 || onnxType == onnx::TensorProto::UINT64;
}

bool kiln::onnx_import::isFloatOnnxType(int32_t onnxType) {
  return onnxType == onnx::TensorProto::FLOAT || onnxType == onnx::TensorProto::DOUBLE ||
         onnxType == onnx::TensorProto::FLOAT16 || onnxType == onnx::TensorProto::BFLOAT16;
}

std::string kiln::onnx_import::onnxTypeName(int32_t onnxType) {
  // The types added after libonnx 1.12's enum (which ends at BFLOAT16), by IR versions
  // 9 to 14, in enum order (onnx.proto, TensorProto.DataType).
  static const char *const newerTypes[] = {
      "FLOAT8E4M3FN", "FLOAT8E4M3FNUZ", "FLOAT8E5M2", "FLOAT8E5M2FNUZ", "UINT4", "INT4",
      "FLOAT4E2M1",   "FLOAT8E8M0",     "UINT2",      "INT2",           "FLOAT6E2M3",
      "FLOAT6E3M2"};
  if (onnx::TensorProto::DataType_IsValid(onnxType))
    return onnx::TensorProto::DataType_Name(onnx::TensorProto::DataType(onnxType));
  int64_t newer = int64_t(onnxType) - onnx::TensorProto::DataType_MAX - 1;
  if (newer >= 0 && newer < int64_t(std::size(newerTypes)))
    return newerTypes[newer];
  return "data type " + std::to_string(onnxType);
}

/// The ONNX type of a kiln element type (signed unless `isUnsigned`).
static int32_t onnxTypeFor(Type type, bool isUnsigned) {
  if (type.isF32()) return onnx::TensorProto::FLOAT;
  if (type.isF64()) return onnx::TensorProto::DOUBLE;
  if (type.isF16()) return onnx::TensorProto::FLOAT16;
  if (type.isBF16()) return onnx::TensorProto::BFLOAT16;
  if (type.isInteger(1)) return onnx::TensorProto::BOOL;
  switch (type.getIntOrFloatBitWidth()) {
  case 8: return isUnsigned ? onnx::TensorProto::UINT8 : onnx::TensorProto::INT8;
  case 16: return isUnsigned ? onnx::TensorProto::UINT16 : onnx::TensorProto::INT16;
  case 32: return isUnsigned ? onnx::TensorProto::UINT32 : onnx::TensorProto::INT32;
  default: return isUnsigned ? onnx::TensorProto::UINT64 : onnx::TensorProto::INT64;
  }
}

int64_t HostTensor::size() const {
  int64_t n = 1;
  for (int64_t d : shape)
    n *= d;
  return n;
}

/// Wraps an integer to the range of `onnxType` (two's complement, like a C cast).
static int64_t wrapInteger(int64_t v, int32_t onnxType) {
  switch (onnxType) {
  case onnx::TensorProto::BOOL: return v != 0;
  case onnx::TensorProto::INT8: return int8_t(v);
  case onnx::TensorProto::UINT8: return uint8_t(v);
  case onnx::TensorProto::INT16: return int16_t(v);
  case onnx::TensorProto::UINT16: return uint16_t(v);
  case onnx::TensorProto::INT32: return int32_t(v);
  case onnx::TensorProto::UINT32: return uint32_t(v);
  default: return v;
  }
}

HostTensor HostTensor::castTo(int32_t newType) const {
  HostTensor result;
  result.dtype = newType;
  result.shape = shape;
  int64_t n = size();
  for (int64_t i = 0; i < n; ++i) {
    if (isFloatOnnxType(newType))
      result.floats.push_back(isUnsignedOnnxType(dtype) ? double(uint64_t(ints[i]))
                                                        : asDouble(i));
    else if (newType == onnx::TensorProto::BOOL)
      result.ints.push_back(asDouble(i) != 0);
    else
      result.ints.push_back(wrapInteger(asInt(i), newType));
  }
  return result;
}

/// Decodes `count` little-endian elements of `onnxType` from `bytes`.
static LogicalResult decodeRaw(llvm::StringRef bytes, HostTensor &tensor) {
  int64_t n = tensor.size();
  auto read = [&](auto sample) -> LogicalResult {
    using T = decltype(sample);
    if (bytes.size() != size_t(n) * sizeof(T))
      return failure();
    for (int64_t i = 0; i < n; ++i) {
      T v;
      std::memcpy(&v, bytes.data() + i * sizeof(T), sizeof(T));
      if constexpr (std::is_floating_point_v<T>)
        tensor.floats.push_back(v);
      else
        tensor.ints.push_back(int64_t(v));
    }
    return success();
  };
  auto readHalf = [&](const llvm::fltSemantics &semantics) -> LogicalResult {
    if (bytes.size() != size_t(n) * 2)
      return failure();
    for (int64_t i = 0; i < n; ++i) {
      uint16_t bits;
      std::memcpy(&bits, bytes.data() + i * 2, 2);
      tensor.floats.push_back(APFloat(semantics, APInt(16, bits)).convertToDouble());
    }
    return success();
  };
  switch (tensor.dtype) {
  case onnx::TensorProto::FLOAT: return read(float());
  case onnx::TensorProto::DOUBLE: return read(double());
  case onnx::TensorProto::FLOAT16: return readHalf(APFloat::IEEEhalf());
  case onnx::TensorProto::BFLOAT16: return readHalf(APFloat::BFloat());
  case onnx::TensorProto::BOOL: case onnx::TensorProto::UINT8: return read(uint8_t());
  case onnx::TensorProto::INT8: return read(int8_t());
  case onnx::TensorProto::INT16: return read(int16_t());
  case onnx::TensorProto::UINT16: return read(uint16_t());
  case onnx::TensorProto::INT32: return read(int32_t());
  case onnx::TensorProto::UINT32: return read(uint32_t());
  case onnx::TensorProto::INT64: return read(int64_t());
  case onnx::TensorProto::UINT64: return read(uint64_t());
  default: return failure();
  }
}

FailureOr<HostTensor> kiln::onnx_import::decodeTensor(const onnx::TensorProto &proto) {
  HostTensor tensor;
  tensor.dtype = proto.data_type();
  tensor.shape.assign(proto.dims().begin(), proto.dims().end());
  if (proto.has_raw_data())
    return succeeded(decodeRaw(proto.raw_data(), tensor)) ? FailureOr<HostTensor>(tensor)
                                                          : FailureOr<HostTensor>(failure());
  int64_t n = tensor.size();
  auto take = [&](const auto &field, auto &into) -> FailureOr<HostTensor> {
    if (field.size() != n)
      return failure();
    for (auto v : field)
      into.push_back(v);
    return tensor;
  };
  switch (tensor.dtype) {
  case onnx::TensorProto::FLOAT: return take(proto.float_data(), tensor.floats);
  case onnx::TensorProto::DOUBLE: return take(proto.double_data(), tensor.floats);
  case onnx::TensorProto::INT64: return take(proto.int64_data(), tensor.ints);
  case onnx::TensorProto::UINT32: case onnx::TensorProto::UINT64:
    return take(proto.uint64_data(), tensor.ints);
  case onnx::TensorProto::FLOAT16: case onnx::TensorProto::BFLOAT16: {
    if (proto.int32_data_size() != n)
      return failure();
    const llvm::fltSemantics &semantics = tensor.dtype == onnx::TensorProto::FLOAT16
                                              ? APFloat::IEEEhalf()
                                              : APFloat::BFloat();
    for (int32_t bits : proto.int32_data())
      tensor.floats.push_back(
          APFloat(semantics, APInt(16, uint16_t(bits))).convertToDouble());
    return tensor;
  }
  case onnx::TensorProto::BOOL: case onnx::TensorProto::INT8: case onnx::TensorProto::UINT8:
  case onnx::TensorProto::INT16: case onnx::TensorProto::UINT16:
  case onnx::TensorProto::INT32:
    return take(proto.int32_data(), tensor.ints);
  default:
    return failure();
  }
}

/// The dense attribute holding `tensor` as `type`.
static DenseElementsAttr toAttribute(const HostTensor &tensor, RankedTensorType type) {
  Type element = type.getElementType();
  int64_t n = tensor.size();
  if (auto floatType = dyn_cast<FloatType>(element)) {
    SmallVector<APFloat> values;
    for (int64_t i = 0; i < n; ++i) {
      APFloat v(tensor.asDouble(i));
      bool losesInfo;
      v.convert(floatType.getFloatSemantics(), APFloat::rmNearestTiesToEven, &losesInfo);
      values.push_back(v);
    }
    return DenseElementsAttr::get(type, values);
  }
  SmallVector<APInt> values;
  unsigned width = element.getIntOrFloatBitWidth();
  for (int64_t i = 0; i < n; ++i)
    values.push_back(APInt(64, uint64_t(tensor.asInt(i))).trunc(width));
  return DenseElementsAttr::get(type, values);
}

//===----------------------------------------------------------------------===//
// GraphImporter
//===----------------------------------------------------------------------===//

namespace kiln::onnx_import {

/// Imports the main graph of one model into `func.func @main`.
class GraphImporter {
public:
  GraphImporter(MLIRContext &context, llvm::StringRef path,
                std::unique_ptr<llvm::MemoryBuffer> file, onnx::ModelProto &model)
      : context(context), builder(&context), path(path), file(std::move(file)),
        model(model), fileLoc(FileLineColLoc::get(&context, path, 0, 0)) {}

  OwningOpRef<ModuleOp> run();

  /// What is known about one ONNX value.
  struct ValueState {
    Value value;                                  // its kiln IR value, once built
    std::optional<HostTensor> constant;           // its data, when known at import time
    const onnx::TensorProto *initializer = nullptr; // its initializer, if any
    int32_t dtype = 0;
    SmallVector<int64_t> shape;
  };

  ValueState &define(llvm::StringRef name) { return values[name]; }
  ValueState *lookup(llvm::StringRef name) {
    auto it = values.find(name);
    return it == values.end() ? nullptr : &it->second;
  }
  Value materialize(llvm::StringRef name, Location loc);
  const HostTensor *constantOf(llvm::StringRef name);
  RankedTensorType typeOf(const ValueState &state) {
    return RankedTensorType::get(state.shape, elementTypeFor(state.dtype, &context));
  }
  const onnx::TypeProto *inferredType(llvm::StringRef name) const {
    auto it = inferredTypes.find(name);
    return it == inferredTypes.end() ? nullptr : it->second;
  }

  MLIRContext &context;
  OpBuilder builder;

private:
  LogicalResult declareTensor(const onnx::ValueInfoProto &info, llvm::StringRef role,
                              RankedTensorType &type, int32_t &dtype);
  LogicalResult importNode(const onnx::NodeProto &node, int index, int64_t opset,
                           const OpLoweringTable &table);
  /// The absolute path of `file`, which the model names relative to its own directory.
  std::string absolutePath(llvm::StringRef file) const;

  std::string path;
  std::unique_ptr<llvm::MemoryBuffer> file;
  onnx::ModelProto &model;
  Location fileLoc;
  llvm::StringMap<ValueState> values;
  llvm::StringMap<const onnx::TypeProto *> inferredTypes;
  std::optional<llvm::StringMap<uint64_t>> rawDataOffsets;
};

} // namespace kiln::onnx_import

std::string GraphImporter::absolutePath(llvm::StringRef file) const {
  SmallString<256> result(file);
  if (llvm::sys::path::is_relative(result)) {
    result = llvm::sys::path::parent_path(path);
    llvm::sys::path::append(result, file);
  }
  llvm::sys::fs::make_absolute(result);
  llvm::sys::path::remove_dots(result, /*remove_dot_dot=*/true);
  return std::string(result);
}

const HostTensor *GraphImporter::constantOf(llvm::StringRef name) {
  ValueState *state = lookup(name);
  if (!state)
    return nullptr;
  if (!state->constant && state->initializer &&
      state->initializer->data_location() != onnx::TensorProto::EXTERNAL) {
    FailureOr<HostTensor> decoded = decodeTensor(*state->initializer);
    if (succeeded(decoded))
      state->constant = std::move(*decoded);
  }
  return state->constant ? &*state->constant : nullptr;
}

Value GraphImporter::materialize(llvm::StringRef name, Location loc) {
  ValueState *state = lookup(name);
  if (state->value)
    return state->value;
  RankedTensorType type = typeOf(*state);
  const onnx::TensorProto *init = state->initializer;
  // Large initializers stay in the file: kiln.weight names their bytes.
  if (init && (init->data_location() == onnx::TensorProto::EXTERNAL ||
               (init->has_raw_data() && type.getNumElements() >= 1024))) {
    std::string source = absolutePath(llvm::sys::path::filename(path));
    uint64_t offset = 0;
    if (init->data_location() == onnx::TensorProto::EXTERNAL) {
      for (const onnx::StringStringEntryProto &entry : init->external_data()) {
        if (entry.key() == "location")
          source = absolutePath(entry.value());
        else if (entry.key() == "offset")
          offset = std::strtoull(entry.value().c_str(), nullptr, 10);
      }
      // The runtime maps these bytes: they must all be there.
      uint64_t bytes = type.getNumElements() *
                       std::max<uint64_t>(type.getElementTypeBitWidth() / 8, 1);
      uint64_t fileSize = 0;
      if (llvm::sys::fs::file_size(source, fileSize) || fileSize < offset + bytes) {
        emitError(loc) << "external data of initializer '" << name << "' (" << bytes
                       << " bytes at offset " << offset << " of '" << source
                       << "') is missing or truncated";
        return nullptr;
      }
    } else {
      if (!rawDataOffsets) {
        llvm::Expected<llvm::StringMap<uint64_t>> offsets =
            findRawDataOffsets(file->getBuffer());
        if (!offsets) {
          emitError(fileLoc) << llvm::toString(offsets.takeError());
          return nullptr;
        }
        rawDataOffsets = std::move(*offsets);
      }
      auto it = rawDataOffsets->find(name);
      if (it == rawDataOffsets->end()) {
        emitError(loc) << "cannot locate the raw data of initializer '" << name << "'";
        return nullptr;
      }
      offset = it->second;
    }
    state->value = kiln::WeightOp::create(builder, NameLoc::get(builder.getStringAttr(name), fileLoc),
                                          type, name, source, offset, DenseI64ArrayAttr(), StringAttr(),
                                          DenseF32ArrayAttr());
    return state->value;
  }
  const HostTensor *constant = constantOf(name);
  if (!constant) {
    emitError(loc) << "cannot decode the data of initializer '" << name << "' ("
                   << onnxTypeName(state->dtype) << ")";
    return nullptr;
  }
  state->value = arith::ConstantOp::create(builder, loc, toAttribute(*constant, type));
  return state->value;
}

/// Reads a graph input's or output's declared tensor type; fails on dynamic shapes and
/// unsupported element types.
LogicalResult GraphImporter::declareTensor(const onnx::ValueInfoProto &info,
                                           llvm::StringRef role, RankedTensorType &type,
                                           int32_t &dtype) {
  const onnx::TypeProto *typeProto = &info.type();
  if (!typeProto->has_tensor_type())
    if (const onnx::TypeProto *inferred = inferredType(info.name()))
      typeProto = inferred;
  if (!typeProto->has_tensor_type())
    return emitError(fileLoc) << "graph " << role << " '" << info.name()
                              << "' is not a tensor (sequences, maps and optionals are "
                                 "not supported)";
  const onnx::TypeProto::Tensor &tensor = typeProto->tensor_type();
  dtype = tensor.elem_type();
  Type element = elementTypeFor(dtype, &context);
  if (!element)
    return emitError(fileLoc) << "graph " << role << " '" << info.name()
                              << "' has unsupported data type " << onnxTypeName(dtype);
  if (!tensor.has_shape())
    return emitError(fileLoc) << "graph " << role << " '" << info.name()
                              << "' has an unknown rank; kiln needs static shapes";
  SmallVector<int64_t> shape;
  for (const onnx::TensorShapeProto::Dimension &dim : tensor.shape().dim()) {
    if (!dim.has_dim_value())
      return emitError(fileLoc)
             << "graph " << role << " '" << info.name() << "' has a dynamic dimension"
             << (dim.has_dim_param() ? " '" + dim.dim_param() + "'" : std::string())
             << "; kiln needs static shapes";
    shape.push_back(dim.dim_value());
  }
  if (failed(kiln::checkTensorSize(fileLoc, "graph " + role + " '" + info.name() + "'", shape)))
    return failure();
  type = RankedTensorType::get(shape, element);
  return success();
}

OwningOpRef<ModuleOp> GraphImporter::run() {
  const onnx::GraphProto &graph = model.graph();
  int64_t opset = 1;
  for (const onnx::OperatorSetIdProto &entry : model.opset_import())
    if (entry.domain().empty() || entry.domain() == "ai.onnx")
      opset = entry.version();
  for (const onnx::ValueInfoProto &info : graph.value_info())
    inferredTypes[info.name()] = &info.type();
  for (const onnx::ValueInfoProto &info : graph.output())
    inferredTypes[info.name()] = &info.type();

  OwningOpRef<ModuleOp> module = ModuleOp::create(fileLoc);
  for (const onnx::TensorProto &init : graph.initializer()) {
    ValueState &state = values[init.name()];
    state.initializer = &init;
    state.dtype = init.data_type();
    state.shape.assign(init.dims().begin(), init.dims().end());
    if (failed(kiln::checkTensorSize(NameLoc::get(builder.getStringAttr(init.name()), fileLoc),
                                     "initializer '" + init.name() + "'", state.shape)))
      return nullptr;
    if (!elementTypeFor(state.dtype, &context))
      return emitError(fileLoc) << "initializer '" << init.name()
                                << "' has unsupported data type "
                                << onnxTypeName(state.dtype),
             nullptr;
  }

  // The signature: graph inputs that are not initializers, then every graph output.
  SmallVector<Type> argTypes, resultTypes;
  SmallVector<const onnx::ValueInfoProto *> args;
  SmallVector<int32_t> argDtypes, resultDtypes;
  for (const onnx::ValueInfoProto &info : graph.input()) {
    if (values.count(info.name()))
      continue;
    RankedTensorType type;
    int32_t dtype;
    if (failed(declareTensor(info, "input", type, dtype)))
      return nullptr;
    args.push_back(&info);
    argTypes.push_back(type);
    argDtypes.push_back(dtype);
  }
  for (const onnx::ValueInfoProto &info : graph.output()) {
    RankedTensorType type;
    int32_t dtype;
    if (failed(declareTensor(info, "output", type, dtype)))
      return nullptr;
    resultTypes.push_back(type);
    resultDtypes.push_back(dtype);
  }

  // Every op must have a lowering: report all missing ones at once.
  OpLoweringTable table;
  addElementwiseLowerings(table);
  addTensorLowerings(table);
  addNeuralNetLowerings(table);
  addReductionLowerings(table);
  addResizeLowerings(table);
  bool missing = false;
  for (auto [index, node] : llvm::enumerate(graph.node())) {
    bool defaultDomain = node.domain().empty() || node.domain() == "ai.onnx";
    if (defaultDomain && (table.count(node.op_type()) || isImportTimeOp(node.op_type())))
      continue;
    std::string name =
        node.name().empty() ? node.op_type() + "#" + std::to_string(index) : node.name();
    std::string op = defaultDomain ? node.op_type() : node.domain() + "." + node.op_type();
    emitError(NameLoc::get(builder.getStringAttr(name), fileLoc))
        << "unsupported ONNX op '" << op << "' (node '" << name << "')";
    missing = true;
  }
  if (missing)
    return nullptr;

  builder.setInsertionPointToEnd(module->getBody());
  auto func = func::FuncOp::create(builder, fileLoc, "main",
                                   builder.getFunctionType(argTypes, resultTypes));
  Block *body = func.addEntryBlock();
  for (auto [i, info] : llvm::enumerate(args)) {
    func.setArgAttr(i, "kiln.name", builder.getStringAttr(info->name()));
    if (isUnsignedOnnxType(argDtypes[i]))
      func.setArgAttr(i, "kiln.unsigned", builder.getUnitAttr());
    ValueState &state = values[info->name()];
    state.value = body->getArgument(i);
    state.dtype = argDtypes[i];
    state.shape = llvm::to_vector(cast<RankedTensorType>(argTypes[i]).getShape());
  }
  for (auto [i, info] : llvm::enumerate(graph.output())) {
    func.setResultAttr(i, "kiln.name", builder.getStringAttr(info.name()));
    if (isUnsignedOnnxType(resultDtypes[i]))
      func.setResultAttr(i, "kiln.unsigned", builder.getUnitAttr());
  }

  builder.setInsertionPointToEnd(body);
  for (auto [index, node] : llvm::enumerate(graph.node()))
    if (failed(importNode(node, index, opset, table)))
      return nullptr;

  SmallVector<Value> results;
  for (auto [i, info] : llvm::enumerate(graph.output())) {
    ValueState *state = lookup(info.name());
    if (!state)
      return emitError(fileLoc) << "graph output '" << info.name() << "' is never produced",
             nullptr;
    Value value = materialize(info.name(), fileLoc);
    if (!value)
      return nullptr;
    if (value.getType() != resultTypes[i])
      return emitError(fileLoc) << "graph output '" << info.name() << "' is declared as "
                                << resultTypes[i] << " but computes " << value.getType(),
             nullptr;
    results.push_back(value);
  }
  func::ReturnOp::create(builder, fileLoc, results);
  if (failed(verify(*module)))
    return nullptr;
  return module;
}

LogicalResult GraphImporter::importNode(const onnx::NodeProto &node, int index,
                                        int64_t opset, const OpLoweringTable &table) {
  std::string name =
      node.name().empty() ? node.op_type() + "#" + std::to_string(index) : node.name();
  Location loc = NameLoc::get(builder.getStringAttr(name), fileLoc);
  for (const std::string &input : node.input())
    if (!input.empty() && !lookup(input))
      return emitError(loc) << node.op_type() << " (node '" << name << "'): input '"
                            << input << "' is not defined before its use";
  NodeImporter importer(*this, node, loc, name, opset);
  FailureOr<bool> evaluated = evaluateConstantNode(importer);
  if (failed(evaluated))
    return failure();
  if (!*evaluated && failed(table.lookup(node.op_type())(importer)))
    return failure();
  for (auto [i, output] : llvm::enumerate(node.output()))
    if (!output.empty() && !lookup(output))
      return emitError(loc) << node.op_type() << " (node '" << name << "'): output '"
                            << output << "' is not supported";
  return success();
}

//===----------------------------------------------------------------------===//
// NodeImporter
//===----------------------------------------------------------------------===//

NodeImporter::NodeImporter(GraphImporter &graph, const onnx::NodeProto &node,
                           Location loc, llvm::StringRef displayName, int64_t opset)
    : graph(graph), node(node), location(loc), name(displayName), opsetVersion(opset) {}

OpBuilder &NodeImporter::builder() { return graph.builder; }
llvm::StringRef NodeImporter::opType() const { return node.op_type(); }
unsigned NodeImporter::numInputs() const { return node.input_size(); }
bool NodeImporter::hasInput(unsigned i) const {
  return int(i) < node.input_size() && !node.input(i).empty();
}

Value NodeImporter::input(unsigned i) { return graph.materialize(node.input(i), location); }

RankedTensorType NodeImporter::inputType(unsigned i) {
  return graph.typeOf(*graph.lookup(node.input(i)));
}

int32_t NodeImporter::inputOnnxType(unsigned i) const {
  return graph.lookup(node.input(i))->dtype;
}

const HostTensor *NodeImporter::constantInput(unsigned i) const {
  return hasInput(i) ? graph.constantOf(node.input(i)) : nullptr;
}

FailureOr<std::vector<int64_t>> NodeImporter::constantInts(unsigned i,
                                                           llvm::StringRef what) {
  const HostTensor *tensor = constantInput(i);
  if (!tensor) {
    return requiresConstant(what);
  }
  std::vector<int64_t> result;
  for (int64_t j = 0, e = tensor->size(); j < e; ++j)
    result.push_back(tensor->asInt(j));
  return result;
}

const onnx::AttributeProto *NodeImporter::findAttr(llvm::StringRef attrName) const {
  for (const onnx::AttributeProto &attr : node.attribute())
    if (attr.name() == attrName)
      return &attr;
  return nullptr;
}

bool NodeImporter::hasAttr(llvm::StringRef attrName) const {
  return findAttr(attrName) != nullptr;
}

int64_t NodeImporter::intAttr(llvm::StringRef attrName, int64_t fallback) const {
  const onnx::AttributeProto *attr = findAttr(attrName);
  return attr ? attr->i() : fallback;
}

float NodeImporter::floatAttr(llvm::StringRef attrName, float fallback) const {
  const onnx::AttributeProto *attr = findAttr(attrName);
  return attr ? attr->f() : fallback;
}

std::string NodeImporter::stringAttr(llvm::StringRef attrName,
                                     llvm::StringRef fallback) const {
  const onnx::AttributeProto *attr = findAttr(attrName);
  return attr ? attr->s() : fallback.str();
}

std::vector<int64_t> NodeImporter::intsAttr(llvm::StringRef attrName) const {
  const onnx::AttributeProto *attr = findAttr(attrName);
  return attr ? std::vector<int64_t>(attr->ints().begin(), attr->ints().end())
              : std::vector<int64_t>();
}

std::vector<float> NodeImporter::floatsAttr(llvm::StringRef attrName) const {
  const onnx::AttributeProto *attr = findAttr(attrName);
  return attr ? std::vector<float>(attr->floats().begin(), attr->floats().end())
              : std::vector<float>();
}

const onnx::TensorProto *NodeImporter::tensorAttr(llvm::StringRef attrName) const {
  const onnx::AttributeProto *attr = findAttr(attrName);
  return attr && attr->has_t() ? &attr->t() : nullptr;
}

unsigned NodeImporter::numOutputs() const { return node.output_size(); }
bool NodeImporter::hasOutput(unsigned i) const {
  return int(i) < node.output_size() && !node.output(i).empty();
}

int32_t NodeImporter::outputOnnxType(unsigned i) const {
  const onnx::TypeProto *type = graph.inferredType(node.output(i));
  return type && type->has_tensor_type() ? type->tensor_type().elem_type() : 0;
}

Type NodeImporter::outputElementType(unsigned i) {
  return elementTypeFor(outputOnnxType(i), context());
}

std::optional<SmallVector<int64_t>> NodeImporter::inferredOutputShape(unsigned i) const {
  const onnx::TypeProto *type = graph.inferredType(node.output(i));
  if (!type || !type->has_tensor_type() || !type->tensor_type().has_shape())
    return std::nullopt;
  SmallVector<int64_t> shape;
  for (const onnx::TensorShapeProto::Dimension &dim : type->tensor_type().shape().dim()) {
    if (!dim.has_dim_value())
      return std::nullopt;
    shape.push_back(dim.dim_value());
  }
  return shape;
}

LogicalResult NodeImporter::setOutput(unsigned i, Value value) {
  if (!value)
    return failure();
  auto type = cast<RankedTensorType>(value.getType());
  if (failed(checkOutputSize(i, type.getShape())))
    return failure();
  int32_t dtype = outputOnnxType(i);
  Type expected = elementTypeFor(dtype, context());
  if (dtype == 0)
    dtype = onnxTypeFor(type.getElementType(), false);
  else if (!expected)
    return unsupported("output type " + onnxTypeName(dtype));
  std::optional<SmallVector<int64_t>> shape = inferredOutputShape(i);
  if ((expected && expected != type.getElementType()) ||
      (shape && llvm::ArrayRef<int64_t>(*shape) != type.getShape()))
    return error() << "output '" << node.output(i) << "' was imported as " << type
                   << " but ONNX shape inference gives " << expected << " with shape ["
                   << (shape ? llvm::join(llvm::map_range(*shape, [](int64_t d) {
                                 return std::to_string(d);
                               }), "x")
                             : std::string("?"))
                   << "]";
  GraphImporter::ValueState &state = graph.define(node.output(i));
  state.value = value;
  state.dtype = dtype;
  state.shape = llvm::to_vector(type.getShape());
  return success();
}

LogicalResult NodeImporter::setOutput(unsigned i, HostTensor value) {
  if (failed(checkOutputSize(i, value.shape)))
    return failure();
  if (!elementTypeFor(value.dtype, context()))
    return unsupported("output type " + onnxTypeName(value.dtype));
  GraphImporter::ValueState &state = graph.define(node.output(i));
  state.dtype = value.dtype;
  state.shape.assign(value.shape.begin(), value.shape.end());
  state.constant = std::move(value);
  return success();
}

LogicalResult NodeImporter::checkOutputSize(unsigned i, llvm::ArrayRef<int64_t> shape) {
  return kiln::checkTensorSize(location, node.op_type() + " (node '" + name + "'): output '" +
                                             node.output(i) + "'",
                               shape);
}

InFlightDiagnostic NodeImporter::error() {
  return emitError(location) << node.op_type() << " (node '" << name << "'): ";
}

LogicalResult NodeImporter::requiresConstant(llvm::StringRef what) {
  return error() << "requires a constant '" << what
                 << "' input (values computed at run time are not supported)";
}

LogicalResult NodeImporter::unsupported(const llvm::Twine &what) {
  return error() << what << " is not supported";
}

FailureOr<int64_t> NodeImporter::normalizeAxis(int64_t axis, int64_t rank) {
  if (axis < -rank || axis >= std::max<int64_t>(rank, 1)) {
    error() << "axis " << axis << " is out of range for rank " << rank;
    return failure();
  }
  return axis < 0 ? axis + rank : axis;
}

//===----------------------------------------------------------------------===//
// Entry point
//===----------------------------------------------------------------------===//

/// Fails where the model imports a standard domain (ai.onnx, ai.onnx.ml, ...) at a
/// version newer than libonnx's schemas reach, naming the opset and the ops that use it.
/// For such a node the checker and shape inference would quietly take the newest schema
/// libonnx has, and the op may mean something else since (ReduceMean's `axes` became an
/// input and Split's `num_outputs` appeared at opset 18). Custom domains are left to the
/// node loop, which rejects their ops by name.
static LogicalResult checkOpsetsKnown(const onnx::ModelProto &model, Location fileLoc) {
  const auto &known = onnx::OpSchemaRegistry::DomainToVersionRange::Instance().Map();
  auto canonical = [](const std::string &domain) {
    return domain == "ai.onnx" ? std::string() : domain;
  };
  bool allKnown = true;
  for (const onnx::OperatorSetIdProto &entry : model.opset_import()) {
    std::string domain = canonical(entry.domain());
    auto range = known.find(domain);
    if (range == known.end() || entry.version() <= range->second.second)
      continue;
    llvm::SetVector<llvm::StringRef> ops;
    for (const onnx::NodeProto &node : model.graph().node())
      if (canonical(node.domain()) == domain)
        ops.insert(node.op_type());
    if (ops.empty())
      continue;
    int newest = range->second.second;
    emitError(fileLoc) << "opset " << entry.version() << " of domain '"
                       << (domain.empty() ? "ai.onnx" : domain) << "' (used by "
                       << llvm::join(ops, ", ") << ") is newer than the ONNX schemas kiln "
                       << "is built with (libonnx " << onnx::LAST_RELEASE_VERSION
                       << ", up to opset " << newest << "), so what these ops mean there is "
                       << "unknown; export or convert the model to opset " << newest
                       << " or lower";
    allKnown = false;
  }
  return success(allKnown);
}

/// libonnx's onnx::checker::check_model, step for step, except for two things. A model
/// whose IR version is newer than libonnx's (onnx::IR_VERSION, 8), as every current
/// exporter writes, is checked as of libonnx's version rather than refused: nothing the
/// later IR versions added is read by kiln (values of the new data types are rejected by
/// type, a call of a model-local function is an unsupported op, metadata is ignored; see
/// README.md). And the directory that external data is found in comes from `path`
/// without reading the file again.
/// Throws onnx::checker::ValidationError, as libonnx does.
static void checkModel(const onnx::ModelProto &model, llvm::StringRef path) {
  if (!model.ir_version())
    fail_check("The model does not have an ir_version set properly.");
  std::unordered_set<std::string> keys;
  for (const onnx::StringStringEntryProto &entry : model.metadata_props())
    if (!keys.insert(entry.key()).second)
      fail_check("Your model has duplicate keys in metadata_props.");
  onnx::checker::CheckerContext context;
  context.set_ir_version(int(std::min<int64_t>(model.ir_version(), onnx::IR_VERSION)));
  context.set_model_dir(path.substr(0, path.find_last_of('/') + 1).str());
  std::unordered_map<std::string, int> opsetImports;
  for (const onnx::OperatorSetIdProto &entry : model.opset_import())
    opsetImports[entry.domain()] = int(entry.version());
  if (model.ir_version() >= 3 && opsetImports.empty())
    fail_check("model with IR version >= 3 must specify opset_import for ONNX");
  if (model.ir_version() < 3 && !opsetImports.empty())
    fail_check("model with IR version < 3 cannot have opset_import specified");
  if (opsetImports.empty())
    opsetImports[onnx::ONNX_DOMAIN] = 1;
  context.set_opset_imports(opsetImports);
  onnx::checker::LexicalScopeContext scope;
  onnx::checker::check_graph(model.graph(), context, scope);
  if (context.get_ir_version() >= 8)
    onnx::checker::check_model_local_functions(model, context, scope);
}

OwningOpRef<ModuleOp> kiln::importOnnx(llvm::StringRef path, MLIRContext &context) {
  Location fileLoc = FileLineColLoc::get(&context, path, 0, 0);
  llvm::ErrorOr<std::unique_ptr<llvm::MemoryBuffer>> file =
      llvm::MemoryBuffer::getFile(path, /*IsText=*/false, /*RequiresNullTerminator=*/false);
  if (!file) {
    emitError(fileLoc) << "cannot open '" << path << "': " << file.getError().message();
    return nullptr;
  }
  context.loadDialect<KilnDialect, arith::ArithDialect, func::FuncDialect,
                      linalg::LinalgDialect, math::MathDialect, tensor::TensorDialect>();
  onnx::ModelProto model;
  llvm::StringRef bytes = (*file)->getBuffer();
  if (bytes.size() > size_t(INT_MAX) || !model.ParseFromArray(bytes.data(), int(bytes.size()))) {
    emitError(fileLoc) << "not a valid ONNX model: the file is not a well-formed "
                          "ModelProto (truncated or corrupt?)";
    return nullptr;
  }
  if (failed(checkOpsetsKnown(model, fileLoc)))
    return nullptr;
  // libonnx reports problems by throwing; nothing may escape into the (exception-free)
  // rest of the compiler.
  try {
    checkModel(model, path);
    onnx::ShapeInferenceOptions options(/*check_type_val=*/true, /*strict_mode_val=*/1,
                                        /*data_prop_val=*/true);
    onnx::shape_inference::InferShapes(model, onnx::OpSchemaRegistry::Instance(), options);
  } catch (const onnx::checker::ValidationError &error) {
    emitError(fileLoc) << "invalid ONNX model: " << error.what();
    return nullptr;
  } catch (const onnx::InferenceError &error) {
    emitError(fileLoc) << "ONNX shape inference failed: " << error.what();
    return nullptr;
  } catch (const std::exception &error) {
    emitError(fileLoc) << "cannot load ONNX model: " << error.what();
    return nullptr;
  }
  return GraphImporter(context, path, std::move(*file), model).run();
}
