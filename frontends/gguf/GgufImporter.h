// The GGUF frontend: a .gguf language model (llama.cpp's format) -> kiln IR, one
// full-sequence forward pass as `func.func @main`, or `@prefill` and `@decode` over
// persistent key/value caches.
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
///
/// With `kvCache`, the module instead holds `prefill` (N = `sequenceLength` tokens) and
/// `decode` (N = 1), both
/// `(tokens: i32[N], positions: i64[N], k_cache.0, v_cache.0, k_cache.1, ...)
///   -> (logits: f32[N, vocab], k_cache.0, v_cache.0, ...)`
/// where each cache is f32[C, kv heads, head size] tagged `kiln.state = "k_cache.<l>"`
/// (or `v_cache.<l>`) on both the argument and the result. The N new tokens' keys and
/// values are written at rows positions[0] .. positions[0] + N - 1 (each cache element
/// of the result reads only the same element of the argument, so the runtime may update
/// it in place), and token i attends to rows t <= positions[i]. C is `contextLength`;
/// 0 picks min(context length, 512). The default N is then min(C, 64). A sliding-window
/// layer (window W) whose W + N - 1 < C instead keeps a ring buffer of W + N - 1 rows
/// (position t in row t mod (W + N - 1)), unless `fullWindowCaches`.
mlir::OwningOpRef<mlir::ModuleOp> importGguf(llvm::StringRef path, mlir::MLIRContext &context,
                                             int64_t sequenceLength, bool kvCache = false,
                                             int64_t contextLength = 0,
                                             bool fullWindowCaches = false);

} // namespace kiln

#endif // KILN_FRONTENDS_GGUF_GGUFIMPORTER_H
