// The Hugging Face frontend: a model directory (config.json + safetensors weights) ->
// kiln IR, by the architecture config.json names. Each architecture's importer is a
// row of the table in SafetensorsImporter.cpp.
#ifndef KILN_FRONTENDS_SAFETENSORS_SAFETENSORSIMPORTER_H
#define KILN_FRONTENDS_SAFETENSORS_SAFETENSORSIMPORTER_H

#include "frontends/ModelImport.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/OwningOpRef.h"
#include "llvm/ADT/StringRef.h"

namespace kiln {

namespace safetensors {
class ModelDirectory;
} // namespace safetensors

/// Imports the model directory at `path` (the directory, its config.json, its
/// model.safetensors or its model.safetensors.index.json). The architecture is the
/// first of config.json's `architectures` that kiln knows, else its `model_type`.
/// Weights become `kiln.weight` ops on the safetensors bytes (absolute paths). Returns
/// null after reporting every problem through `context`'s diagnostics.
mlir::OwningOpRef<mlir::ModuleOp> importModelDirectory(llvm::StringRef path,
                                                       mlir::MLIRContext &context,
                                                       const ImportOptions &options);

/// One architecture's importer: builds the module from an opened directory;
/// diagnostics go to `fileLoc` (config.json) or to tensor-name locations under it.
using ArchitectureImporter = mlir::OwningOpRef<mlir::ModuleOp> (*)(
    const safetensors::ModelDirectory &model, mlir::MLIRContext &context,
    mlir::Location fileLoc, const ImportOptions &options);

/// BERT encoder (transformers' BertModel, `model_type: bert`) with sentence-transformers
/// pooling: `embed(input_ids, attention_mask, token_type_ids: i32[B, S])
/// -> embeddings: f32[B, hidden]`, mean-pooled over the mask and L2-normalized.
/// B is options.batchSize (0: 1), S options.sequenceLength (0: min(max positions, 128)).
mlir::OwningOpRef<mlir::ModuleOp> importBert(const safetensors::ModelDirectory &model,
                                             mlir::MLIRContext &context, mlir::Location fileLoc,
                                             const ImportOptions &options);

/// Hugging Face LlamaForCausalLM (F32, F16, BF16 weights): the decoder graph of
/// frontends/decoder with the entry points importGguf documents (@main, or @prefill
/// and @decode over KV caches with options.kvCache).
mlir::OwningOpRef<mlir::ModuleOp> importLlamaForCausalLM(
    const safetensors::ModelDirectory &model, mlir::MLIRContext &context,
    mlir::Location fileLoc, const ImportOptions &options);

} // namespace kiln

#endif // KILN_FRONTENDS_SAFETENSORS_SAFETENSORSIMPORTER_H
