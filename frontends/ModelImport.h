// Reads a model file of any supported format into kiln IR, choosing the frontend by
// the file's extension.
#ifndef KILN_FRONTENDS_MODELIMPORT_H
#define KILN_FRONTENDS_MODELIMPORT_H

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/OwningOpRef.h"
#include "llvm/ADT/StringRef.h"

namespace llvm {
class SourceMgr;
} // namespace llvm

namespace kiln {

/// The inputs importModelFile understands, for help texts: ".mlir, .onnx, .gguf, ...".
llvm::StringRef supportedModelExtensions();

/// Choices a model file cannot make itself.
struct ImportOptions {
  /// Tokens per forward pass for language models (GGUF) and encoders (BERT); 0 picks
  /// the frontend's default.
  int64_t sequenceLength = 0;
  /// Sequences per forward pass for encoders (BERT's `@embed`); 0 picks 1.
  int64_t batchSize = 0;
  /// Language models (GGUF): build `@prefill` (sequenceLength tokens) and `@decode` (one
  /// token) over persistent key/value caches (`kiln.state` arguments and results)
  /// instead of the full-sequence `@main`.
  bool kvCache = false;
  /// Cache rows (tokens) in KV-cache mode; 0 picks min(the model's context, 512).
  int64_t contextLength = 0;
  /// KV-cache mode: sliding-window layers keep contextLength rows, not a ring buffer of
  /// window + sequenceLength - 1 rows.
  bool fullWindowCaches = false;
};

/// Imports `path` into a new module in `context`. On failure, returns null after
/// reporting what went wrong through the context's diagnostic handler (with the file
/// and, where the format has one, the position or node). `sourceMgr` keeps text
/// inputs alive for diagnostics that point into them.
mlir::OwningOpRef<mlir::ModuleOp> importModelFile(llvm::StringRef path,
                                                  mlir::MLIRContext &context,
                                                  llvm::SourceMgr &sourceMgr,
                                                  const ImportOptions &options = {});

} // namespace kiln

#endif // KILN_FRONTENDS_MODELIMPORT_H
