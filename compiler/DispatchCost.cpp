// A dispatch's FLOPs, traffic, summary and source location, for profiles.
#include "compiler/DispatchCost.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/Interfaces/CastInterfaces.h"
#include "llvm/ADT/TypeSwitch.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/Path.h"

using namespace mlir;

namespace kiln {

namespace {

/// Bytes of a static tensor as the artifact stores it (packed blocks for !kiln.quant,
/// one byte per i1); 0 for anything else.
uint64_t tensorBytes(Type type) {
  auto tensor = dyn_cast<RankedTensorType>(type);
  if (!tensor || !tensor.hasStaticShape())
    return 0;
  if (auto quant = dyn_cast<QuantType>(tensor.getElementType())) {
    uint64_t bytes = 1;
    for (int64_t extent : quant.getPackedShape(tensor.getShape()))
      bytes *= static_cast<uint64_t>(std::max<int64_t>(extent, 0));
    return bytes;
  }
  Type element = tensor.getElementType();
  if (!element.isIntOrFloat())
    return 0;
  return static_cast<uint64_t>(tensor.getNumElements()) *
         ((element.getIntOrFloatBitWidth() + 7) / 8);
}

uint64_t elements(Type type) {
  auto tensor = dyn_cast<RankedTensorType>(type);
  return tensor && tensor.hasStaticShape() ? static_cast<uint64_t>(tensor.getNumElements())
                                           : 0;
}

/// The bytes of dispatch input `arg` its body reads: the gathered rows when it is only a
/// gather's table, the slices when it is only sliced, else all of it.
uint64_t bytesRead(BlockArgument arg) {
  uint64_t whole = tensorBytes(arg.getType()), part = 0;
  for (OpOperand &use : arg.getUses()) {
    Operation *user = use.getOwner();
    if (auto gather = dyn_cast<GatherOp>(user); gather && use.getOperandNumber() == 0) {
      auto table = cast<RankedTensorType>(gather.getTable().getType());
      int64_t rows = table.getDimSize(gather.getAxis());
      if (rows > 0)
        part += whole / static_cast<uint64_t>(rows) * elements(gather.getIndices().getType());
    } else if (auto slice = dyn_cast<tensor::ExtractSliceOp>(user)) {
      part += tensorBytes(slice.getResult().getType());
    } else if (auto write = dyn_cast<CacheWriteOp>(user);
               write && use.getOperandNumber() == 0) {
      // Written in place: the cache's other rows are neither read nor copied.
      continue;
    } else {
      return whole;
    }
  }
  return std::min(part, whole);
}

/// Arithmetic ops per point of a generic's iteration space.
uint64_t bodyOps(linalg::GenericOp generic) {
  uint64_t ops = 0;
  generic.getBody()->walk([&](Operation *op) {
    if (isa_and_nonnull<arith::ArithDialect, math::MathDialect>(op->getDialect()) &&
        !isa<arith::ConstantOp, CastOpInterface>(op))
      ++ops;
  });
  return ops;
}

uint64_t iterationPoints(linalg::GenericOp generic) {
  uint64_t points = 1;
  for (int64_t range : generic.getStaticLoopRanges())
    points *= range > 0 ? static_cast<uint64_t>(range) : 0;
  return points;
}

uint64_t opFlops(Operation *op) {
  return llvm::TypeSwitch<Operation *, uint64_t>(op)
      .Case([](linalg::GenericOp generic) { return iterationPoints(generic) * bodyOps(generic); })
      // x², the sum, the scale by 1/rms and the weight.
      .Case([](RmsNormOp norm) { return 4 * elements(norm.getType()); })
      // Each output is x·cos ± y·sin.
      .Case([](RopeOp rope) { return 3 * elements(rope.getType()); })
      .Case([](AttentionOp attention) -> uint64_t {
        auto query = cast<RankedTensorType>(attention.getQuery().getType());
        auto key = cast<RankedTensorType>(attention.getKey().getType());
        auto value = cast<RankedTensorType>(attention.getValue().getType());
        uint64_t d = static_cast<uint64_t>(query.getShape().back());
        uint64_t dv = static_cast<uint64_t>(value.getShape().back());
        uint64_t keys = static_cast<uint64_t>(key.getShape()[key.getRank() - 3]);
        uint64_t rows = d ? elements(query) / d : 0; // batch x S x Hq
        // Over a KV cache placed by a run-time offset only the visible keys are read,
        // as many as the position: unknown here (counting every cache row made a
        // profile show prefill attention above the machine's peak).
        if (attention.getQueryOffset())
          return uint64_t(0);
        // Per score: the q·k dot product, scale, mask, exp and sum, then p·v.
        return rows * keys * (2 * d + 4 + 2 * dv);
      })
      // A multiply-add per tap.
      .Case([](CausalConv1dOp conv) {
        auto weight = cast<RankedTensorType>(conv.getWeight().getType());
        return 2 * elements(conv.getResult().getType()) * static_cast<uint64_t>(weight.getShape().back());
      })
      // Per step, channel and state: the decay's product and exp, the update's three
      // operations, and the output's multiply-add.
      .Case([](SelectiveScanOp scan) {
        auto a = cast<RankedTensorType>(scan.getA().getType());
        return 7 * elements(scan.getResult().getType()) * static_cast<uint64_t>(a.getShape().back());
      })
      // Per step, head, key and value index: kv, the state's multiply-add, and the
      // output's bonus term and multiply-add.
      .Case([](WkvOp wkv) {
        auto state = cast<RankedTensorType>(wkv.getState().getType());
        return 6 * elements(wkv.getResult().getType()) * static_cast<uint64_t>(state.getShape().back());
      })
      // Per step, head, value and key index: a·state, the state's update and the output.
      .Case([](Wkv7Op wkv) {
        auto state = cast<RankedTensorType>(wkv.getState().getType());
        return 8 * elements(wkv.getResult().getType()) * static_cast<uint64_t>(state.getShape().back());
      })
      .Default([](Operation *) { return uint64_t(0); });
}

/// "matmul" (a reduction over two or more inputs), "reduce" or "map", and the loops.
std::string describeGeneric(linalg::GenericOp generic) {
  std::string text = generic.getNumReductionLoops() == 0 ? "map"
                     : generic.getNumDpsInputs() > 1     ? "matmul"
                                                         : "reduce";
  llvm::ListSeparator times("x");
  text += " ";
  for (int64_t range : generic.getStaticLoopRanges())
    text += (Twine(times) + Twine(range)).str();
  return text;
}

std::string shape(Type type) {
  auto tensor = dyn_cast<RankedTensorType>(type);
  std::string text;
  llvm::ListSeparator times("x");
  for (int64_t extent : tensor ? tensor.getShape() : ArrayRef<int64_t>())
    text += (Twine(times) + Twine(extent)).str();
  return text;
}

std::string describeOp(Operation *op) {
  return llvm::TypeSwitch<Operation *, std::string>(op)
      .Case([](linalg::GenericOp generic) { return describeGeneric(generic); })
      .Case([](AttentionOp attention) {
        auto key = cast<RankedTensorType>(attention.getKey().getType());
        // ("up to": over a cache placed by a run-time offset, the visible keys.)
        return "attention " + shape(attention.getQuery().getType()) + " over " +
               (attention.getQueryOffset() ? "up to " : "") +
               std::to_string(key.getShape()[key.getRank() - 3]) + " keys";
      })
      .Case([](GatherOp gather) { return "gather " + shape(gather.getType()); })
      .Default([](Operation *op) {
        StringRef name = op->getName().stripDialect();
        return op->getNumResults() ? (name + " " + shape(op->getResult(0).getType())).str()
                                   : name.str();
      });
}

/// The element type of the dispatch's largest float or packed input (its weights, not
/// its indices), when it is not f32.
std::string weightType(Block &body) {
  Type largest;
  uint64_t most = 0;
  for (BlockArgument arg : body.getArguments()) {
    auto tensor = dyn_cast<RankedTensorType>(arg.getType());
    if (!tensor || !isa<FloatType, QuantType>(tensor.getElementType()))
      continue;
    if (uint64_t bytes = tensorBytes(tensor); bytes > most) {
      most = bytes;
      largest = tensor.getElementType();
    }
  }
  if (!largest || largest.isF32())
    return "";
  if (auto quant = dyn_cast<QuantType>(largest))
    return stringifyQuantScheme(quant.getScheme()).str();
  std::string text;
  llvm::raw_string_ostream(text) << largest;
  return text;
}

/// `text` with control characters and invalid UTF-8 replaced, as the artifact requires.
std::string printable(StringRef text) {
  std::string fixed = llvm::json::isUTF8(text) ? text.str() : llvm::json::fixUTF8(text);
  std::string out;
  for (size_t i = 0; i < fixed.size(); ++i) {
    auto byte = static_cast<unsigned char>(fixed[i]);
    // C1 controls are U+0080..U+009F, encoded C2 80..C2 9F.
    bool c1 = byte == 0xc2 && i + 1 < fixed.size() &&
              static_cast<unsigned char>(fixed[i + 1]) < 0xa0;
    if (byte < 0x20 || byte == 0x7f || c1) {
      out += '?';
      i += c1;
    } else {
      out += fixed[i];
    }
  }
  return out;
}

/// Where `loc` points in the model; "" if unknown.
std::string sourceName(Location loc) {
  if (auto name = dyn_cast<NameLoc>(loc))
    return printable(name.getName().getValue());
  if (auto file = dyn_cast<FileLineColLoc>(loc))
    return printable((llvm::sys::path::filename(file.getFilename().getValue()) + ":" +
                      Twine(file.getLine()) + ":" + Twine(file.getColumn()))
                         .str());
  if (auto fused = dyn_cast<FusedLoc>(loc))
    for (Location part : fused.getLocations())
      if (std::string name = sourceName(part); !name.empty())
        return name;
  if (auto call = dyn_cast<CallSiteLoc>(loc))
    return sourceName(call.getCallee());
  return "";
}

} // namespace

void describeForProfiles(DispatchOp dispatch, artifact::DispatchDesc &call) {
  Block &body = dispatch.getBody().front();
  call.bytes = 0;
  for (BlockArgument arg : body.getArguments())
    call.bytes += bytesRead(arg);
  for (auto [result, yielded] : llvm::zip(dispatch.getResultTypes(), dispatch.getYield().getValues())) {
    auto write = yielded.getDefiningOp<CacheWriteOp>();
    call.bytes += write ? tensorBytes(write.getRows().getType()) : tensorBytes(result);
  }
  // The op doing most of the arithmetic names the dispatch (the last of equals: the
  // result of a chain of copies), the others with arithmetic are counted.
  call.flops = 0;
  Operation *main = nullptr;
  uint64_t mainFlops = 0, others = 0;
  for (Operation &op : body) {
    if (isa<YieldOp, arith::ConstantOp, tensor::EmptyOp>(op))
      continue;
    uint64_t flops = opFlops(&op);
    call.flops += flops;
    others += flops > 0;
    if (!main || flops >= mainFlops) {
      main = &op;
      mainFlops = flops;
    }
  }
  others -= mainFlops > 0;
  call.summary.clear();
  if (main) {
    std::string type = weightType(body);
    call.summary = printable(describeOp(main) + (type.empty() ? "" : " " + type) +
                             (others ? " +" + std::to_string(others) : ""));
  }
  call.location = sourceName(dispatch.getLoc());
}

} // namespace kiln
