// What an op lowering sees of the ONNX graph while importing one node: its inputs
// (as kiln IR values or import-time constants), attributes, outputs and diagnostics.
#ifndef KILN_FRONTENDS_ONNX_ONNXNODEIMPORTER_H
#define KILN_FRONTENDS_ONNX_ONNXNODEIMPORTER_H

#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/Diagnostics.h"
#include "llvm/ADT/StringMap.h"

#include <cstdint>
#include <string>
#include <vector>

namespace onnx {
class NodeProto;
class AttributeProto;
class TensorProto;
} // namespace onnx

namespace kiln::onnx_import {

class GraphImporter;

/// The MLIR element type of an ONNX TensorProto.DataType, or null when kiln has none.
mlir::Type elementTypeFor(int32_t onnxType, mlir::MLIRContext *context);
bool isUnsignedOnnxType(int32_t onnxType);
bool isFloatOnnxType(int32_t onnxType);
/// The ONNX spelling of a data type ("FLOAT", "UINT8", ...).
std::string onnxTypeName(int32_t onnxType);

/// A tensor whose value is known while importing: an initializer, a Constant, or the
/// result of a shape computation over static shapes. Integer and bool data lives in
/// `ints`, floating-point data in `floats`.
struct HostTensor {
  int32_t dtype = 0; // onnx::TensorProto::DataType
  std::vector<int64_t> shape;
  std::vector<int64_t> ints;
  std::vector<double> floats;

  bool isFloat() const { return isFloatOnnxType(dtype); }
  int64_t size() const;
  double asDouble(int64_t i) const { return isFloat() ? floats[i] : double(ints[i]); }
  int64_t asInt(int64_t i) const { return isFloat() ? int64_t(floats[i]) : ints[i]; }
  /// Converts every element to `newType` with ONNX Cast semantics.
  HostTensor castTo(int32_t newType) const;
};

/// Decodes a tensor stored inside the model (typed fields or raw_data); fails for
/// external data, unsupported types and inconsistent sizes.
mlir::FailureOr<HostTensor> decodeTensor(const onnx::TensorProto &proto);

/// Import of one ONNX node. Lowerings read inputs and attributes, build IR at the
/// builder's insertion point (located at the node) and define every output.
class NodeImporter {
public:
  NodeImporter(GraphImporter &graph, const onnx::NodeProto &node, mlir::Location loc,
               llvm::StringRef displayName, int64_t opset);

  mlir::OpBuilder &builder();
  mlir::Location loc() const { return location; }
  mlir::MLIRContext *context() const { return location.getContext(); }
  const onnx::NodeProto &proto() const { return node; }
  llvm::StringRef opType() const;
  /// The default-domain opset the model imports (semantics of several ops changed).
  int64_t opset() const { return opsetVersion; }

  // Inputs. An optional input left out is absent (empty name).
  unsigned numInputs() const;
  bool hasInput(unsigned i) const;
  /// The input as a kiln IR value (constants are materialized on first use).
  mlir::Value input(unsigned i);
  mlir::RankedTensorType inputType(unsigned i);
  llvm::ArrayRef<int64_t> inputShape(unsigned i) { return inputType(i).getShape(); }
  int64_t inputRank(unsigned i) { return inputType(i).getRank(); }
  mlir::Type inputElementType(unsigned i) { return inputType(i).getElementType(); }
  int32_t inputOnnxType(unsigned i) const;
  bool inputIsUnsigned(unsigned i) const { return isUnsignedOnnxType(inputOnnxType(i)); }
  /// The input's value if it is known at import time, else null.
  const HostTensor *constantInput(unsigned i) const;
  /// The input's elements as integers; fails (after reporting "requires a constant
  /// '<what>' input") when they are not known at import time.
  mlir::FailureOr<std::vector<int64_t>> constantInts(unsigned i, llvm::StringRef what);

  // Attributes.
  bool hasAttr(llvm::StringRef name) const;
  int64_t intAttr(llvm::StringRef name, int64_t fallback) const;
  float floatAttr(llvm::StringRef name, float fallback) const;
  std::string stringAttr(llvm::StringRef name, llvm::StringRef fallback) const;
  std::vector<int64_t> intsAttr(llvm::StringRef name) const;
  std::vector<float> floatsAttr(llvm::StringRef name) const;
  const onnx::TensorProto *tensorAttr(llvm::StringRef name) const;

  // Outputs.
  unsigned numOutputs() const;
  bool hasOutput(unsigned i) const;
  /// The ONNX element type shape inference gave output `i` (0 when unknown).
  int32_t outputOnnxType(unsigned i) const;
  mlir::Type outputElementType(unsigned i);
  bool outputIsUnsigned(unsigned i) const { return isUnsignedOnnxType(outputOnnxType(i)); }
  /// The output's static shape from shape inference, if it has one.
  std::optional<llvm::SmallVector<int64_t>> inferredOutputShape(unsigned i) const;
  mlir::LogicalResult setOutput(unsigned i, mlir::Value value);
  mlir::LogicalResult setOutput(unsigned i, HostTensor value);
  /// Reports and fails when output `i` would be larger than a kernel can address
  /// (kMaxTensorElements); import-time evaluation calls it before allocating.
  mlir::LogicalResult checkOutputSize(unsigned i, llvm::ArrayRef<int64_t> shape);

  // Diagnostics, all naming the op type and the node.
  /// "<OpType> (node '<name>'): " followed by what the caller streams in.
  mlir::InFlightDiagnostic error();
  /// Reports that input `what` must be known at import time and fails.
  mlir::LogicalResult requiresConstant(llvm::StringRef what);
  /// Reports that `what` is not supported and fails.
  mlir::LogicalResult unsupported(const llvm::Twine &what);

  /// Normalizes a possibly negative axis into [0, rank); reports and fails when out of
  /// range.
  mlir::FailureOr<int64_t> normalizeAxis(int64_t axis, int64_t rank);

private:
  GraphImporter &graph;
  const onnx::NodeProto &node;
  mlir::Location location;
  std::string name;
  int64_t opsetVersion;

  const onnx::AttributeProto *findAttr(llvm::StringRef name) const;
};

/// Imports one node whose op type the lowering was registered for.
using OpLowering = mlir::LogicalResult (*)(NodeImporter &);
using OpLoweringTable = llvm::StringMap<OpLowering>;

void addElementwiseLowerings(OpLoweringTable &table);
void addTensorLowerings(OpLoweringTable &table);
void addNeuralNetLowerings(OpLoweringTable &table);
void addReductionLowerings(OpLoweringTable &table);
void addResizeLowerings(OpLoweringTable &table);

/// One dimension of a Slice: the output reads input[start + i * step] for i < size.
struct SliceDim {
  int64_t start = 0, step = 1, size = 0;
};
/// Resolves a Slice node's starts/ends/axes/steps (inputs, or attributes before opset
/// 10) against `shape` with ONNX's clamping rules.
mlir::FailureOr<std::vector<SliceDim>> resolveSlice(NodeImporter &node,
                                                    llvm::ArrayRef<int64_t> shape);

/// Whether `opType` always yields an import-time constant (Constant, Shape, Size,
/// ConstantOfShape, Range, EyeLike): evaluateConstantNode handles it, no lowering does.
bool isImportTimeOp(llvm::StringRef opType);

/// Evaluates shape computations (Shape, Gather, Concat, integer arithmetic, ...) at
/// import time when every input is a known integer tensor. Returns false when the node
/// is not one it evaluates, leaving it to the op lowerings.
mlir::FailureOr<bool> evaluateConstantNode(NodeImporter &node);

} // namespace kiln::onnx_import

#endif // KILN_FRONTENDS_ONNX_ONNXNODEIMPORTER_H
