// Import-time evaluation of ONNX shape computations: ops whose outputs are constants by
// nature (Constant, Shape, Size, ConstantOfShape, Range, EyeLike) and integer tensor
// arithmetic over known values (Shape -> Gather -> Concat -> Reshape chains), so that
// the ops consuming them see constant shapes. Nothing else is folded here.
#include "frontends/onnx/OnnxLinalgBuilders.h"
#include "frontends/onnx/OnnxNodeImporter.h"
#include "frontends/common/TensorSizeLimit.h"

#include <onnx/onnx_pb.h>

#include <cmath>
#include <functional>

using namespace mlir;
using namespace kiln::onnx_import;

namespace {

/// Results larger than this are left to the op lowerings (real tensors, not shapes).
constexpr int64_t kMaxEvaluatedElements = 4096;

std::vector<int64_t> stridesOf(llvm::ArrayRef<int64_t> shape) {
  std::vector<int64_t> strides(shape.size(), 1);
  for (int64_t i = int64_t(shape.size()) - 2; i >= 0; --i)
    strides[i] = strides[i + 1] * shape[i + 1];
  return strides;
}

/// The flat index into `shape` that numpy broadcasting reads for output element `flat`
/// of `outShape`.
int64_t broadcastIndex(int64_t flat, llvm::ArrayRef<int64_t> outShape,
                       llvm::ArrayRef<int64_t> shape) {
  std::vector<int64_t> outStrides = stridesOf(outShape), strides = stridesOf(shape);
  size_t offset = outShape.size() - shape.size();
  int64_t index = 0;
  for (size_t d = 0; d < outShape.size(); ++d) {
    int64_t coord = (flat / outStrides[d]) % outShape[d];
    if (d >= offset && shape[d - offset] != 1)
      index += coord * strides[d - offset];
  }
  return index;
}

void push(HostTensor &t, double v) {
  if (t.isFloat())
    t.floats.push_back(v);
  else
    t.ints.push_back(int64_t(v));
}

// Below, every input is a known integer tensor (evaluateConstantNode checks).

/// Elementwise over broadcast inputs, computing in int64 (all inputs are integers).
FailureOr<HostTensor> evalElementwise(NodeImporter &n,
                                      llvm::ArrayRef<const HostTensor *> inputs,
                                      int32_t dtype,
                                      const std::function<int64_t(llvm::ArrayRef<int64_t>)> &fn) {
  SmallVector<SmallVector<int64_t>> shapes;
  for (const HostTensor *t : inputs)
    shapes.push_back(SmallVector<int64_t>(t->shape.begin(), t->shape.end()));
  std::optional<SmallVector<int64_t>> shape = broadcastShapes(shapes);
  if (!shape)
    return n.error() << "input shapes do not broadcast", failure();
  HostTensor result;
  result.dtype = dtype;
  result.shape.assign(shape->begin(), shape->end());
  for (int64_t i = 0, e = result.size(); i < e; ++i) {
    SmallVector<int64_t> args;
    for (const HostTensor *t : inputs)
      args.push_back(t->ints[broadcastIndex(i, *shape, t->shape)]);
    result.ints.push_back(fn(args));
  }
  return result;
}

FailureOr<HostTensor> evalConstant(NodeImporter &n) {
  HostTensor t;
  if (const onnx::TensorProto *value = n.tensorAttr("value")) {
    FailureOr<HostTensor> decoded = decodeTensor(*value);
    if (failed(decoded))
      return (void)n.unsupported("constant of type " + onnxTypeName(value->data_type())),
             failure();
    return decoded;
  }
  if (n.hasAttr("value_float")) {
    t.dtype = onnx::TensorProto::FLOAT;
    t.floats.push_back(n.floatAttr("value_float", 0));
  } else if (n.hasAttr("value_floats")) {
    t.dtype = onnx::TensorProto::FLOAT;
    for (float v : n.floatsAttr("value_floats"))
      t.floats.push_back(v);
    t.shape.push_back(t.floats.size());
  } else if (n.hasAttr("value_int")) {
    t.dtype = onnx::TensorProto::INT64;
    t.ints.push_back(n.intAttr("value_int", 0));
  } else if (n.hasAttr("value_ints")) {
    t.dtype = onnx::TensorProto::INT64;
    t.ints = n.intsAttr("value_ints");
    t.shape.push_back(t.ints.size());
  } else {
    return (void)n.unsupported("a Constant without a numeric value attribute"), failure();
  }
  return t;
}

FailureOr<HostTensor> evalShape(NodeImporter &n) {
  llvm::ArrayRef<int64_t> shape = n.inputShape(0);
  int64_t rank = shape.size();
  auto clampAxis = [&](int64_t a) {
    a = a < 0 ? a + rank : a;
    return std::clamp<int64_t>(a, 0, rank);
  };
  int64_t start = clampAxis(n.intAttr("start", 0)), end = clampAxis(n.intAttr("end", rank));
  HostTensor t;
  t.dtype = onnx::TensorProto::INT64;
  for (int64_t i = start; i < end; ++i)
    t.ints.push_back(shape[i]);
  t.shape.push_back(t.ints.size());
  return t;
}

FailureOr<HostTensor> evalConstantOfShape(NodeImporter &n) {
  // A run-time shape input is fine when shape inference fixed the output shape.
  std::optional<SmallVector<int64_t>> inferred = n.inferredOutputShape(0);
  FailureOr<std::vector<int64_t>> shape =
      !n.constantInput(0) && inferred ? std::vector<int64_t>(inferred->begin(), inferred->end())
                                      : n.constantInts(0, "input");
  if (failed(shape))
    return failure();
  HostTensor value;
  value.dtype = onnx::TensorProto::FLOAT;
  value.floats.push_back(0);
  if (const onnx::TensorProto *attr = n.tensorAttr("value")) {
    FailureOr<HostTensor> decoded = decodeTensor(*attr);
    if (failed(decoded) || decoded->size() != 1)
      return (void)n.unsupported("value of type " + onnxTypeName(attr->data_type())), failure();
    value = *decoded;
  }
  if (failed(n.checkOutputSize(0, *shape)))
    return failure();
  HostTensor t;
  t.dtype = value.dtype;
  t.shape = *shape;
  if (t.isFloat())
    t.floats.assign(t.size(), value.floats[0]);
  else
    t.ints.assign(t.size(), value.ints[0]);
  return t;
}

FailureOr<HostTensor> evalRange(NodeImporter &n) {
  const HostTensor *start = n.constantInput(0), *limit = n.constantInput(1),
                   *delta = n.constantInput(2);
  const char *names[] = {"start", "limit", "delta"};
  for (auto [i, t] : llvm::enumerate(llvm::ArrayRef<const HostTensor *>{start, limit, delta}))
    if (!t)
      return (void)n.requiresConstant(names[i]), failure();
  HostTensor t;
  t.dtype = start->dtype;
  double s = start->asDouble(0), l = limit->asDouble(0), d = delta->asDouble(0);
  if (d == 0)
    return n.error() << "delta must not be zero", failure();
  // Counted in double: one beyond int64 (or NaN) is rejected before the conversion.
  double steps = std::max(std::ceil((l - s) / d), 0.0);
  if (!(steps <= double(kiln::kMaxTensorElements)))
    return n.error() << "start " << s << ", limit " << l << " and delta " << d << " give "
                     << steps << " elements, more than the " << kiln::kMaxTensorElements
                     << " a kiln kernel can address in one tensor",
           failure();
  int64_t count = int64_t(steps);
  t.shape.push_back(count);
  for (int64_t i = 0; i < count; ++i) {
    if (t.isFloat())
      // The reference accumulates in the input type, as numpy.arange does.
      t.floats.push_back(s + double(i) * d);
    else
      t.ints.push_back(start->ints[0] + i * delta->ints[0]);
  }
  return t;
}

FailureOr<HostTensor> evalEyeLike(NodeImporter &n) {
  llvm::ArrayRef<int64_t> shape = n.inputShape(0);
  if (shape.size() != 2)
    return n.error() << "expects a 2-D input", failure();
  if (failed(n.checkOutputSize(0, shape)))
    return failure();
  HostTensor t;
  t.dtype = int32_t(n.intAttr("dtype", n.inputOnnxType(0)));
  t.shape.assign(shape.begin(), shape.end());
  int64_t k = n.intAttr("k", 0);
  for (int64_t i = 0; i < shape[0]; ++i)
    for (int64_t j = 0; j < shape[1]; ++j)
      push(t, j - i == k ? 1 : 0);
  return t;
}

FailureOr<HostTensor> evalGather(NodeImporter &n, const HostTensor &data,
                                 const HostTensor &indices) {
  int64_t rank = data.shape.size();
  FailureOr<int64_t> axis = n.normalizeAxis(n.intAttr("axis", 0), rank);
  if (failed(axis))
    return failure();
  int64_t outer = 1, inner = 1, dim = data.shape[*axis];
  for (int64_t i = 0; i < *axis; ++i)
    outer *= data.shape[i];
  for (int64_t i = *axis + 1; i < rank; ++i)
    inner *= data.shape[i];
  HostTensor t;
  t.dtype = data.dtype;
  t.shape.assign(data.shape.begin(), data.shape.begin() + *axis);
  t.shape.insert(t.shape.end(), indices.shape.begin(), indices.shape.end());
  t.shape.insert(t.shape.end(), data.shape.begin() + *axis + 1, data.shape.end());
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t idx = 0; idx < indices.size(); ++idx) {
      int64_t k = indices.ints[idx] < 0 ? indices.ints[idx] + dim : indices.ints[idx];
      if (k < 0 || k >= dim)
        return n.error() << "index " << indices.ints[idx] << " is out of range", failure();
      for (int64_t i = 0; i < inner; ++i)
        t.ints.push_back(data.ints[(o * dim + k) * inner + i]);
    }
  return t;
}

FailureOr<HostTensor> evalConcat(NodeImporter &n, llvm::ArrayRef<const HostTensor *> inputs) {
  int64_t rank = inputs[0]->shape.size();
  FailureOr<int64_t> axis = n.normalizeAxis(n.intAttr("axis", 0), rank);
  if (failed(axis))
    return failure();
  HostTensor t;
  t.dtype = inputs[0]->dtype;
  t.shape = inputs[0]->shape;
  t.shape[*axis] = 0;
  for (const HostTensor *in : inputs)
    t.shape[*axis] += in->shape[*axis];
  int64_t outer = 1;
  for (int64_t i = 0; i < *axis; ++i)
    outer *= t.shape[i];
  for (int64_t o = 0; o < outer; ++o)
    for (const HostTensor *in : inputs) {
      int64_t chunk = in->size() / std::max<int64_t>(outer, 1);
      for (int64_t i = 0; i < chunk; ++i)
        t.ints.push_back(in->ints[o * chunk + i]);
    }
  return t;
}

FailureOr<HostTensor> evalSlice(NodeImporter &n, const HostTensor &data) {
  FailureOr<std::vector<SliceDim>> dims = resolveSlice(n, data.shape);
  if (failed(dims))
    return failure();
  HostTensor t;
  t.dtype = data.dtype;
  for (const SliceDim &d : *dims)
    t.shape.push_back(d.size);
  std::vector<int64_t> inStrides = stridesOf(data.shape), outStrides = stridesOf(t.shape);
  for (int64_t i = 0, e = t.size(); i < e; ++i) {
    int64_t src = 0;
    for (size_t d = 0; d < t.shape.size(); ++d)
      src += ((*dims)[d].start + ((i / outStrides[d]) % t.shape[d]) * (*dims)[d].step) *
             inStrides[d];
    t.ints.push_back(data.ints[src]);
  }
  return t;
}

} // namespace

bool kiln::onnx_import::isImportTimeOp(llvm::StringRef opType) {
  return llvm::is_contained({"Constant", "Shape", "Size", "ConstantOfShape", "Range", "EyeLike"},
                            opType);
}

FailureOr<bool> kiln::onnx_import::evaluateConstantNode(NodeImporter &n) {
  llvm::StringRef op = n.opType();
  auto define = [&](FailureOr<HostTensor> result) -> FailureOr<bool> {
    if (failed(result) || failed(n.setOutput(0, std::move(*result))))
      return failure();
    return true;
  };
  // Ops whose outputs are always known while importing.
  if (op == "Constant")
    return define(evalConstant(n));
  if (op == "Shape")
    return define(evalShape(n));
  if (op == "Size") {
    HostTensor t;
    t.dtype = onnx::TensorProto::INT64;
    t.ints.push_back(n.inputType(0).getNumElements());
    return define(t);
  }
  if (op == "ConstantOfShape")
    return define(evalConstantOfShape(n));
  if (op == "Range")
    return define(evalRange(n));
  if (op == "EyeLike")
    return define(evalEyeLike(n));

  // Integer computations over known inputs (shape arithmetic).
  SmallVector<const HostTensor *> inputs;
  for (unsigned i = 0; i < n.numInputs(); ++i) {
    if (!n.hasInput(i))
      continue;
    const HostTensor *t = n.constantInput(i);
    if (!t || t->isFloat() || t->size() > kMaxEvaluatedElements)
      return false;
    inputs.push_back(t);
  }
  if (inputs.empty() || n.numOutputs() != 1)
    return false;
  int32_t outType = n.outputOnnxType(0) ? n.outputOnnxType(0) : inputs[0]->dtype;
  std::optional<SmallVector<int64_t>> outShape = n.inferredOutputShape(0);
  if (outShape) {
    int64_t count = 1;
    for (int64_t d : *outShape)
      count *= d;
    if (count > kMaxEvaluatedElements)
      return false;
  }
  using Args = llvm::ArrayRef<int64_t>;
  auto binary = [&](std::function<int64_t(int64_t, int64_t)> fn) {
    return define(evalElementwise(n, inputs, outType, [&](Args a) { return fn(a[0], a[1]); }));
  };
  if (op == "Identity")
    return define(*inputs[0]);
  if (op == "Cast")
    return define(inputs[0]->castTo(int32_t(n.intAttr("to", 0))));
  if ((op == "Reshape" || op == "Unsqueeze" || op == "Squeeze" || op == "Flatten") &&
      outShape) {
    HostTensor t = *inputs[0];
    t.shape.assign(outShape->begin(), outShape->end());
    return define(t);
  }
  if (op == "Expand" && outShape) {
    HostTensor t;
    t.dtype = inputs[0]->dtype;
    t.shape.assign(outShape->begin(), outShape->end());
    for (int64_t i = 0, e = t.size(); i < e; ++i)
      t.ints.push_back(inputs[0]->ints[broadcastIndex(i, *outShape, inputs[0]->shape)]);
    return define(t);
  }
  if (op == "Gather" && inputs.size() == 2)
    return define(evalGather(n, *inputs[0], *inputs[1]));
  if (op == "Concat")
    return define(evalConcat(n, inputs));
  if (op == "Slice")
    return define(evalSlice(n, *inputs[0]));
  if (op == "Add")
    return binary([](int64_t a, int64_t b) { return a + b; });
  if (op == "Sub")
    return binary([](int64_t a, int64_t b) { return a - b; });
  if (op == "Mul")
    return binary([](int64_t a, int64_t b) { return a * b; });
  if (op == "Div") {
    for (int64_t v : inputs[1]->ints)
      if (v == 0)
        return false;
    return binary([](int64_t a, int64_t b) { return a / b; });
  }
  if (op == "Max")
    return define(evalElementwise(n, inputs, outType, [](Args a) {
      return *std::max_element(a.begin(), a.end());
    }));
  if (op == "Min")
    return define(evalElementwise(n, inputs, outType, [](Args a) {
      return *std::min_element(a.begin(), a.end());
    }));
  if (op == "Equal")
    return binary([](int64_t a, int64_t b) { return a == b; });
  if (op == "Less")
    return binary([](int64_t a, int64_t b) { return a < b; });
  if (op == "Greater")
    return binary([](int64_t a, int64_t b) { return a > b; });
  if (op == "Neg")
    return define(evalElementwise(n, inputs, outType, [](Args a) { return -a[0]; }));
  if (op == "Not")
    return define(evalElementwise(n, inputs, outType, [](Args a) -> int64_t { return !a[0]; }));
  if (op == "Where")
    return define(evalElementwise(n, inputs, outType,
                                  [](Args a) { return a[0] ? a[1] : a[2]; }));
  return false;
}
