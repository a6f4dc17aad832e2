// What the recurrent language models' graphs (Mamba, RWKV) share: the entry points and
// their kiln.state, the embedding lookup and the output head, and the linalg pieces
// their blocks are built from. Each architecture supplies its blocks and state.
#ifndef KILN_FRONTENDS_RECURRENT_RECURRENTGRAPH_H
#define KILN_FRONTENDS_RECURRENT_RECURRENTGRAPH_H

#include "frontends/common/LinalgBuilder.h"
#include "frontends/decoder/DecoderGraph.h"

#include "llvm/ADT/StringMap.h"

#include <cstdint>
#include <string>
#include <vector>

namespace kiln::recurrent {

/// One recurrent state tensor of a block: `name.<block>` in the entry points.
struct StateSlot {
  std::string name;
  std::vector<int64_t> shape; ///< f32
};

/// What every recurrent model's graph takes from its metadata.
struct RecurrentSizes {
  int64_t contextLength = 0;
  std::string contextLengthKey; ///< for messages ("mamba.context_length")
  int64_t embedding = 0;
  int64_t blocks = 0;
  int64_t vocab = 0;
};

/// Builds `main` (from a zero state), or `prefill` + `decode` over the blocks' state as
/// kiln.state, in the decoders' calling convention (see buildMamba). A model derives
/// from it and defines its blocks.
class RecurrentGraphBuilder {
public:
  RecurrentGraphBuilder(mlir::MLIRContext &context, mlir::Location fileLoc,
                        const RecurrentSizes &sizes, decoder::WeightSource &source);
  virtual ~RecurrentGraphBuilder();

  mlir::OwningOpRef<mlir::ModuleOp> run(const decoder::DecoderOptions &options);

protected:
  /// The state tensors of each block.
  virtual std::vector<StateSlot> stateSlots() const = 0;
  /// Checks sizes the options imply (tensor size limits) for `sequence` tokens.
  virtual mlir::LogicalResult checkSizes(int64_t sequence) = 0;
  /// The embedded tokens [S, E] -> the first block's input (RWKV: a LayerNorm).
  virtual mlir::FailureOr<mlir::Value> embed(mlir::Value x) { return x; }
  /// Block `index` on x [S, E]; `state` holds its slots' values, replaced by the new
  /// ones; `length` (null: all S rows) the rows that advance them.
  virtual mlir::FailureOr<mlir::Value> block(int64_t index, mlir::Value x,
                                             llvm::MutableArrayRef<mlir::Value> state,
                                             mlir::Value length) = 0;
  /// The last block's output [R, E] -> the output head's input (a final norm).
  virtual mlir::FailureOr<mlir::Value> finalNorm(mlir::Value x) = 0;
  /// Whether the output head may be tied to the token embedding (no output.weight).
  virtual bool mayTieOutput() const { return true; }

  mlir::Location named(const std::string &name) {
    return mlir::NameLoc::get(builder.getStringAttr(name), fileLoc);
  }
  /// A weight as f32, loaded once per function.
  mlir::FailureOr<mlir::Value> floatWeight(llvm::StringRef name, llvm::ArrayRef<int64_t> shape);
  /// A weight stored with extra unit dimensions (ggml's {n, 1, 1}) as the vector [n].
  mlir::FailureOr<mlir::Value> vectorWeight(llvm::StringRef name, llvm::ArrayRef<int64_t> shape);
  /// Columns [offset, offset + width) of a [rows, columns] tensor.
  mlir::Value columns(mlir::Value value, int64_t offset, int64_t width, mlir::Location loc);
  /// Applies `body` to x [S, C] and vectors [C] broadcast over the rows (x's value
  /// first, then the vectors').
  mlir::Value withVectors(mlir::Value x, mlir::ValueRange vectors, ScalarBody body,
                          mlir::Location loc);
  /// (x - mean) / sqrt(variance + epsilon) over each group of C / groups consecutive
  /// columns of x [S, C] (ggml_norm), then * weight + bias when given.
  mlir::Value layerNorm(mlir::Value x, int64_t groups, double epsilon, mlir::Value weight,
                        mlir::Value bias, mlir::Location loc);

  mlir::MLIRContext &context;
  mlir::OpBuilder builder;
  kiln::LinalgBuilder build;
  mlir::Location fileLoc;
  decoder::WeightSource &source;
  int64_t sequence = 0;

private:
  mlir::LogicalResult buildFunction(llvm::StringRef name, bool lastRowOnly, bool carriesState);

  const RecurrentSizes &sizes;
  llvm::StringMap<mlir::Value> weights; // this function's weight values
};

/// Scalar bodies the recurrent blocks share.
mlir::Value silu(mlir::OpBuilder &b, mlir::Location l, mlir::Value x);
mlir::Value sigmoid(mlir::OpBuilder &b, mlir::Location l, mlir::Value x);
mlir::Value f32Constant(mlir::OpBuilder &b, mlir::Location l, double value);

} // namespace kiln::recurrent

#endif // KILN_FRONTENDS_RECURRENT_RECURRENTGRAPH_H
