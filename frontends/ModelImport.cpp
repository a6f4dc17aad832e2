// Dispatches a model file to its frontend by extension (a directory, config.json or
// safetensors file is a Hugging Face model directory).
#include "frontends/ModelImport.h"

#include "frontends/gguf/GgufImporter.h"
#include "frontends/onnx/OnnxImporter.h"
#include "frontends/safetensors/SafetensorsImporter.h"

#include "mlir/IR/Diagnostics.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Support/FileUtilities.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/SourceMgr.h"

using namespace mlir;

llvm::StringRef kiln::supportedModelExtensions() {
  return ".mlir, .onnx, .gguf, a Hugging Face model directory (or its config.json, "
         ".safetensors or .safetensors.index.json)";
}

OwningOpRef<ModuleOp> kiln::importModelFile(llvm::StringRef path, MLIRContext &context,
                                            llvm::SourceMgr &sourceMgr,
                                            const ImportOptions &options) {
  Location fileLoc = FileLineColLoc::get(&context, path, 0, 0);
  llvm::StringRef extension = llvm::sys::path::extension(path);
  if (extension == ".mlir") {
    std::string error;
    std::unique_ptr<llvm::MemoryBuffer> input = openInputFile(path, &error);
    if (!input) {
      emitError(fileLoc) << error;
      return nullptr;
    }
    sourceMgr.AddNewSourceBuffer(std::move(input), llvm::SMLoc());
    return parseSourceFile<ModuleOp>(sourceMgr, &context);
  }
  if (extension == ".onnx")
    return importOnnx(path, context);
  if (llvm::sys::fs::is_directory(path) || extension == ".safetensors" ||
      llvm::sys::path::filename(path) == "config.json" ||
      path.ends_with(".safetensors.index.json"))
    return importModelDirectory(path, context, options);
  if (extension == ".gguf")
    return importGguf(path, context, options.sequenceLength, options.kvCache,
                      options.contextLength, options.fullWindowCaches);
  emitError(fileLoc) << "unsupported input format '" << extension
                     << "'; kiln reads: " << supportedModelExtensions();
  return nullptr;
}
