// The ONNX frontend: an .onnx model file -> kiln IR (one func.func @main).
#ifndef KILN_FRONTENDS_ONNX_ONNXIMPORTER_H
#define KILN_FRONTENDS_ONNX_ONNXIMPORTER_H

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/OwningOpRef.h"
#include "llvm/ADT/StringRef.h"

namespace kiln {

/// Loads the ONNX model at `path`, runs the ONNX checker and shape inference on it and
/// translates its graph into a module holding `func.func @main` (one argument per
/// non-initializer graph input, one result per graph output, each tagged with
/// `kiln.name`). Returns null after reporting every problem (unreadable file, invalid
/// model, dynamic shapes, unsupported ops or types) through `context`'s diagnostics.
mlir::OwningOpRef<mlir::ModuleOp> importOnnx(llvm::StringRef path,
                                             mlir::MLIRContext &context);

} // namespace kiln

#endif // KILN_FRONTENDS_ONNX_ONNXIMPORTER_H
