// The GGUF frontend: a .gguf language model (llama.cpp's format) -> kiln IR, one
// full-sequence forward pass as `func.func @main`.
#ifndef KILN_FRONTENDS_GGUF_GGUFIMPORTER_H
#define KILN_FRONTENDS_GGUF_GGUFIMPORTER_H

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/OwningOpRef.h"
#include "llvm/ADT/StringRef.h"

#include <cstdint>

namespace kiln {

/// Reads the GGUF model at `path` and builds
/// `main(tokens: i32[N], positions: i64[N]) -> logits: f32[N, vocab]` (arguments and
/// result tagged with `kiln.name`) for its architecture; today that is llama
/// (`general.architecture == "llama"`). `sequenceLength` is N; 0 picks
/// min(context length, 64). Weights become `kiln.weight` ops naming their bytes in the
/// file, located by tensor name. Returns null after reporting every problem (unreadable
/// or corrupt file, unsupported architecture or tensor type, missing metadata, tensor
/// shapes that disagree with it) through `context`'s diagnostics.
mlir::OwningOpRef<mlir::ModuleOp> importGguf(llvm::StringRef path, mlir::MLIRContext &context,
                                             int64_t sequenceLength);

} // namespace kiln

#endif // KILN_FRONTENDS_GGUF_GGUFIMPORTER_H
