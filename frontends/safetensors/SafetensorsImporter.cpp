// Opens a Hugging Face model directory and hands it to the importer of its
// architecture: the one table of architectures kiln imports from safetensors.
#include "frontends/safetensors/SafetensorsImporter.h"

#include "ModelDirectory.h"

#include "mlir/IR/Diagnostics.h"

#include <string>

using namespace mlir;

namespace kiln {
namespace {

/// A config.json `architectures` entry (or, failing that, its `model_type`) and the
/// importer that builds it. Adding an architecture is adding a row.
struct ArchitectureRow {
  const char *architecture;
  const char *modelType;
  ArchitectureImporter import;
};

const ArchitectureRow kArchitectures[] = {
    {"BertModel", "bert", importBert},
    {"LlamaForCausalLM", "llama", importLlamaForCausalLM},
};

std::string knownArchitectures() {
  std::string names;
  for (const ArchitectureRow &row : kArchitectures)
    names += (names.empty() ? "" : ", ") + std::string(row.architecture);
  return names;
}

} // namespace

OwningOpRef<ModuleOp> importModelDirectory(llvm::StringRef path, MLIRContext &context,
                                           const ImportOptions &options) {
  Location pathLoc = FileLineColLoc::get(&context, path, 0, 0);
  Result<std::unique_ptr<safetensors::ModelDirectory>> model =
      safetensors::ModelDirectory::open(path.str());
  if (!model) {
    emitError(pathLoc) << model.error();
    return nullptr;
  }
  const safetensors::JsonObject &config = (*model)->config();
  Location fileLoc = FileLineColLoc::get(&context, config.path(), 0, 0);

  std::vector<std::string> architectures;
  if (config.has("architectures")) {
    Result<std::vector<std::string>> listed = config.getStringArray("architectures");
    if (!listed) {
      emitError(fileLoc) << listed.error();
      return nullptr;
    }
    architectures = *listed;
  }
  for (const std::string &name : architectures)
    for (const ArchitectureRow &row : kArchitectures)
      if (name == row.architecture)
        return row.import(**model, context, fileLoc, options);
  Result<std::string> modelType = config.getString("model_type", std::string());
  if (!modelType) {
    emitError(fileLoc) << modelType.error();
    return nullptr;
  }
  if (architectures.empty())
    for (const ArchitectureRow &row : kArchitectures)
      if (*modelType == row.modelType)
        return row.import(**model, context, fileLoc, options);
  std::string listed;
  for (const std::string &name : architectures)
    listed += (listed.empty() ? "" : ", ") + name;
  emitError(fileLoc) << "unsupported architecture '"
                     << (listed.empty() ? *modelType : listed)
                     << "' (config.json architectures / model_type); kiln imports: "
                     << knownArchitectures();
  return nullptr;
}

} // namespace kiln
