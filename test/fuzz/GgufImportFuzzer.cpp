// libFuzzer target for the GGUF importer (reader, metadata, decoder graph): any bytes,
// taken as a .gguf file, must import into kiln IR or fail with an error diagnostic,
// never crash, leak or hang, in the full-sequence and the KV-cache form.
#include "frontends/gguf/GgufImporter.h"

#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/MLIRContext.h"
#include "llvm/ADT/SmallString.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/FileUtilities.h"
#include "llvm/Support/raw_ostream.h"

#include <cstdint>

namespace {

/// Larger inputs are skipped: real models are far larger anyway, and a few hundred
/// tensors (the seeds hold up to 80) are all the importer's paths need.
constexpr size_t kMaxInputBytes = size_t(1) << 20;

/// The options kiln-compile would get as `--seq-len 4` and `--kv-cache --ctx 16 --seq-len
/// 4`: small enough that no mutated context length sizes a large tensor, and the seeds'
/// context (16) admits both.
constexpr int64_t kSequenceLength = 4;
constexpr int64_t kCacheLength = 16;

/// The importer reads a path (it maps the file, and kiln.weight ops name it), so every
/// input is written to one temporary file, removed at exit.
struct InputFile {
  InputFile() {
    if (llvm::sys::fs::createTemporaryFile("kiln-fuzz-gguf-import", "gguf", path))
      __builtin_trap();
    remover.setFile(path);
  }
  llvm::SmallString<128> path;
  llvm::FileRemover remover;
};

/// Imports `path` into a fresh context, swallowing its diagnostics; a failed import
/// must have reported an error.
bool import(llvm::StringRef path, bool kvCache) {
  mlir::MLIRContext context(mlir::MLIRContext::Threading::DISABLED);
  bool reported = false;
  mlir::ScopedDiagnosticHandler swallow(&context, [&](mlir::Diagnostic &diagnostic) {
    reported |= diagnostic.getSeverity() == mlir::DiagnosticSeverity::Error;
    return mlir::success();
  });
  mlir::OwningOpRef<mlir::ModuleOp> module = kiln::importGguf(
      path, context, kSequenceLength, kvCache, kvCache ? kCacheLength : 0);
  if (!module && !reported)
    __builtin_trap();
  return bool(module);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size > kMaxInputBytes)
    return -1; // not added to the corpus
  static InputFile input;
  {
    std::error_code error;
    llvm::raw_fd_ostream out(input.path, error);
    if (error)
      __builtin_trap();
    out.write(reinterpret_cast<const char *>(data), size);
    out.close();
    if (out.has_error())
      __builtin_trap();
  }
  // The KV-cache form reads the file the same way and differs only in the graph, so it
  // is built only for inputs whose full-sequence import succeeds.
  if (import(input.path, /*kvCache=*/false))
    import(input.path, /*kvCache=*/true);
  return 0;
}
