// Turns safetensors tensors into kiln.weight ops, checking shape and dtype.
#include "frontends/safetensors/SafetensorsWeights.h"

#include "SafetensorsReader.h"

#include "mlir/IR/Diagnostics.h"
#include "llvm/ADT/SmallString.h"
#include "llvm/Support/FileSystem.h"

using namespace mlir;

namespace kiln::safetensors {

namespace {

/// Dimensions past this are shown as -1 (never a valid kiln shape).
constexpr uint64_t kMaxDim = uint64_t(1) << 31;

std::string formatShape(ArrayRef<int64_t> shape) {
  std::string text = "[";
  for (auto [i, dim] : llvm::enumerate(shape))
    text += (i ? ", " : "") + std::to_string(dim);
  return text + "]";
}

} // namespace

SafetensorsWeights::SafetensorsWeights(const SafetensorsCheckpoint &checkpoint,
                                       MLIRContext &context,
                                       std::function<bool(llvm::StringRef)> ignored)
    : checkpoint(checkpoint), context(context), ignored(std::move(ignored)) {}

Location SafetensorsWeights::tensorLoc(StringRef name) const {
  SafetensorsCheckpoint::Located located = checkpoint.find(name);
  StringRef file = located.file ? StringRef(located.file->path())
                                : StringRef(checkpoint.files().front()->path());
  return NameLoc::get(StringAttr::get(&context, name), FileLineColLoc::get(&context, file, 0, 0));
}

bool SafetensorsWeights::contains(StringRef name) const {
  return checkpoint.find(name).tensor != nullptr;
}

FailureOr<Value> SafetensorsWeights::load(OpBuilder &builder, StringRef name,
                                          ArrayRef<int64_t> shape) {
  Location loc = tensorLoc(name);
  SafetensorsCheckpoint::Located located = checkpoint.find(name);
  if (!located.tensor)
    return emitError(loc) << "missing tensor '" << name << "' (expected shape "
                          << formatShape(shape) << ")";
  SmallVector<int64_t> actual;
  for (uint64_t dim : located.tensor->shape)
    actual.push_back(dim > kMaxDim ? -1 : int64_t(dim));
  if (ArrayRef<int64_t>(actual) != shape)
    return emitError(loc) << "tensor '" << name << "' has shape " << formatShape(actual)
                          << ", expected " << formatShape(shape) << " from config.json";
  StringRef dtype = located.tensor->dtype->name;
  Type element = dtype == "F32"    ? Type(builder.getF32Type())
                 : dtype == "F16"  ? Type(builder.getF16Type())
                 : dtype == "BF16" ? Type(builder.getBF16Type())
                                   : Type();
  if (!element)
    return emitError(loc) << "tensor '" << name << "' has dtype " << dtype
                          << ", which kiln does not import (supported: F32, F16, BF16)";
  std::string &source = absolutePaths[located.file->path()];
  if (source.empty()) {
    SmallString<256> absolute(located.file->path());
    if (std::error_code error = llvm::sys::fs::make_absolute(absolute))
      return emitError(loc) << "cannot resolve '" << located.file->path()
                            << "': " << error.message();
    source = std::string(absolute);
  }
  used.insert(name);
  return kiln::WeightOp::create(builder, loc, RankedTensorType::get(shape, element), name,
                                source, located.tensor->fileOffset, DenseI64ArrayAttr(),
                                StringAttr(), DenseF32ArrayAttr())
      .getResult();
}

LogicalResult SafetensorsWeights::checkAllUsed() {
  bool unused = false;
  for (const auto &file : checkpoint.files())
    for (const TensorInfo &tensor : file->tensors()) {
      if (used.contains(tensor.name) || ignored(tensor.name))
        continue;
      emitError(tensorLoc(tensor.name))
          << "tensor '" << tensor.name << "' is not part of the graph kiln builds";
      unused = true;
    }
  return failure(unused);
}

} // namespace kiln::safetensors
