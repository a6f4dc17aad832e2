// SafetensorsWeights: the tensors of a safetensors checkpoint (one file or shards) as
// kiln.weight ops — the WeightSource of the decoder graph, and what the BERT importer
// loads its weights through.
#ifndef KILN_FRONTENDS_SAFETENSORS_SAFETENSORSWEIGHTS_H
#define KILN_FRONTENDS_SAFETENSORS_SAFETENSORSWEIGHTS_H

#include "frontends/decoder/DecoderGraph.h"

#include "llvm/ADT/STLFunctionalExtras.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/ADT/StringSet.h"

#include <functional>
#include <string>

namespace kiln::safetensors {

class SafetensorsCheckpoint;

class SafetensorsWeights : public decoder::WeightSource {
public:
  /// `ignored` names tensors the graph may leave unused (buffers, heads it does not
  /// build); checkAllUsed() reports every other tensor no load() asked for.
  SafetensorsWeights(const SafetensorsCheckpoint &checkpoint, mlir::MLIRContext &context,
                     std::function<bool(llvm::StringRef)> ignored);

  /// A kiln.weight (F32, F16 or BF16) on the tensor's bytes in its shard (an absolute
  /// path, so the artifact writer finds it from anywhere), after checking its
  /// row-major shape; errors name the tensor and say where the expectation came from.
  mlir::FailureOr<mlir::Value> load(mlir::OpBuilder &builder, llvm::StringRef name,
                                    llvm::ArrayRef<int64_t> shape) override;
  bool contains(llvm::StringRef name) const override;
  mlir::LogicalResult checkAllUsed() override;

  /// NameLoc(tensor) inside the shard holding it (or the checkpoint when none does).
  mlir::Location tensorLoc(llvm::StringRef name) const;

private:
  const SafetensorsCheckpoint &checkpoint;
  mlir::MLIRContext &context;
  std::function<bool(llvm::StringRef)> ignored;
  llvm::StringMap<std::string> absolutePaths; // shard path -> absolute path
  llvm::StringSet<> used;
};

} // namespace kiln::safetensors

#endif // KILN_FRONTENDS_SAFETENSORS_SAFETENSORSWEIGHTS_H
