// Module → .kiln: one buffer per value, one dispatch per kiln.dispatch in program order,
// and one kernel per distinct dispatch (the backend shares kernels by content).
#include "compiler/ArtifactEmitter.h"

#include "backends/Backend.h"
#include "compiler/DispatchCost.h"
#include "compiler/WeightQuantizer.h"
#include "dialects/Kiln/KilnDialect.h"
#include "runtime/src/ArtifactWriter.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/MemoryBuffer.h"
#include "compiler/CompilerVersion.h"
#include "llvm/Support/Path.h"
#include <cstring>

using namespace mlir;
namespace art = kiln::artifact;

namespace kiln {

namespace {

/// Writes each kernel's GPU code of `code` into `directory` as <kernel>.<sm_NN>.ptx
/// (CUDA; one file per architecture) or <kernel>.metal.
LogicalResult writeDeviceSources(Location loc, const CodeObject &code,
                                        StringRef directory) {
  if (std::error_code ec = llvm::sys::fs::create_directories(directory))
    return emitError(loc) << "cannot create the directory '" << directory << "': " << ec.message();
  std::string suffix = "." + (code.sources.empty() ? "" : code.sources.front().language);
  size_t capability = code.target.find("cuda_capability_");
  if (capability != std::string::npos)
    suffix = ".sm_" + code.target.substr(capability + 16, 2) + suffix;
  for (const DeviceSource &source : code.sources) {
    llvm::SmallString<256> file(directory);
    llvm::sys::path::append(file, source.kernel + suffix);
    std::error_code ec;
    llvm::raw_fd_ostream out(file, ec);
    if (ec)
      return emitError(loc) << "cannot write '" << file << "': " << ec.message();
    out << source.text;
  }
  return success();
}


std::optional<art::DType> toDType(Type type) {
  if (type.isF32())
    return art::DType::F32;
  if (type.isF64())
    return art::DType::F64;
  if (type.isF16())
    return art::DType::F16;
  if (type.isBF16())
    return art::DType::BF16;
  if (type.isInteger(1))
    return art::DType::Bool;
  if (type.isInteger(8))
    return art::DType::I8;
  if (type.isInteger(16))
    return art::DType::I16;
  if (type.isInteger(32))
    return art::DType::I32;
  if (type.isInteger(64))
    return art::DType::I64;
  return std::nullopt;
}

/// Little-endian bytes of a dense constant, one byte per i1.
std::vector<char> constantBytes(DenseElementsAttr attr) {
  std::vector<char> bytes;
  Type element = attr.getElementType();
  auto append = [&](const APInt &bits) {
    unsigned width = std::max(8u, bits.getBitWidth());
    APInt wide = bits.getBitWidth() == 1 ? bits.zext(8) : bits;
    for (unsigned b = 0; b < width / 8; ++b)
      bytes.push_back(static_cast<char>(wide.extractBitsAsZExtValue(8, b * 8)));
  };
  if (isa<FloatType>(element)) {
    for (APFloat value : attr.getValues<APFloat>())
      append(value.bitcastToAPInt());
  } else {
    for (APInt value : attr.getValues<APInt>())
      append(value);
  }
  return bytes;
}

class Emitter {
public:
  Emitter(Backend &backend, StringRef baseDirectory)
      : backend(backend), baseDirectory(baseDirectory.str()) {}

  FailureOr<ArtifactSummary> emit(ModuleOp module, StringRef path,
                                  const CompileOptions &options);
  /// Gives every dispatch of `func` its kernel: a new one, or the one an identical
  /// dispatch was given before.
  LogicalResult lowerKernels(func::FuncOp func);

private:
  /// Every function with a body becomes an entry point, in module order.
  FailureOr<SmallVector<func::FuncOp>> entryFunctions(ModuleOp module);
  LogicalResult emitEntryPoint(func::FuncOp func);
  /// The persistent state slot of a kiln.state name, shared by all entry points.
  uint32_t stateSlot(StringRef name);
  FailureOr<uint32_t> addBuffer(Operation *owner, Value value, art::BufferKind kind,
                                uint32_t index, uint64_t offset);
  FailureOr<uint32_t> bufferOf(Operation *user, Value value);
  FailureOr<uint64_t> addWeightBytes(WeightOp weight);
  /// The file a weight's bytes come from (relative sources in baseDirectory), read once.
  FailureOr<const llvm::MemoryBuffer *> sourceOf(WeightOp weight);
  /// Marks `kiln.finite` the f16 weights whose values are all finite.
  void markFiniteHalfWeights(ModuleOp module);

  Backend &backend;
  std::string baseDirectory; // relative weight sources are found here
  art::ArtifactWriter writer;
  llvm::DenseMap<Value, uint32_t> buffers;
  llvm::DenseMap<Operation *, uint32_t> kernelOf; // dispatch -> index into program.kernels
  llvm::StringMap<std::unique_ptr<llvm::MemoryBuffer>> files;
  std::map<std::tuple<std::string, int64_t, uint64_t>, uint64_t> weightOffsets;
  llvm::StringMap<uint32_t> stateSlots;
  ArtifactSummary summary;
};

FailureOr<SmallVector<func::FuncOp>> Emitter::entryFunctions(ModuleOp module) {
  SmallVector<func::FuncOp> funcs(module.getOps<func::FuncOp>());
  llvm::erase_if(funcs, [](func::FuncOp f) { return f.isExternal(); });
  if (funcs.empty())
    return module.emitError("expected a function with a body to compile, found none");
  for (func::FuncOp func : funcs)
    if (!func.getBody().hasOneBlock())
      return func.emitOpError("needs a single block to be compiled");
  return funcs;
}

FailureOr<uint32_t> Emitter::addBuffer(Operation *owner, Value value, art::BufferKind kind,
                                       uint32_t index, uint64_t offset) {
  auto type = dyn_cast<RankedTensorType>(value.getType());
  auto quant = type ? dyn_cast<QuantType>(type.getElementType()) : QuantType();
  // Packed tensors are stored as bytes whose innermost dimension counts bytes.
  std::optional<art::DType> dtype =
      quant ? art::DType::U8 : type ? toDType(type.getElementType()) : std::nullopt;
  if (!type || !type.hasStaticShape() || !dtype)
    return owner->emitOpError("produces a value of type ")
           << value.getType() << ", which an artifact cannot hold (expected a statically "
           << "shaped tensor of f16/bf16/f32/f64/i1/i8/i16/i32/i64 or !kiln.quant)";
  art::BufferDesc buffer;
  buffer.type.dtype = *dtype;
  SmallVector<int64_t> shape =
      quant ? quant.getPackedShape(type.getShape()) : SmallVector<int64_t>(type.getShape());
  buffer.type.shape.assign(shape.begin(), shape.end());
  buffer.kind = kind;
  buffer.index = index;
  buffer.offset = offset;
  buffer.size = art::byteSize(buffer.type);
  auto &all = writer.program().buffers;
  all.push_back(buffer);
  uint32_t id = static_cast<uint32_t>(all.size() - 1);
  buffers[value] = id;
  return id;
}

FailureOr<uint32_t> Emitter::bufferOf(Operation *user, Value value) {
  auto it = buffers.find(value);
  if (it != buffers.end())
    return it->second;
  return user->emitOpError("reads a value the artifact emitter has no buffer for");
}

/// The elements of a tensor of `shape` whose bytes `stored` hold its transpose by
/// `permutation` (kiln.weight's: result dimension i is stored dimension
/// permutation[i]), in row-major order.
std::vector<char> permuteElements(const char *stored, ArrayRef<int64_t> shape,
                                  ArrayRef<int64_t> permutation, size_t elementBytes) {
  size_t rank = shape.size();
  SmallVector<int64_t> storedShape(rank), storedStrides(rank, 1), strides(rank);
  for (size_t i = 0; i < rank; ++i)
    storedShape[permutation[i]] = shape[i];
  for (size_t d = rank; d-- > 1;)
    storedStrides[d - 1] = storedStrides[d] * storedShape[d];
  // Walking the result in order, each of its dimensions steps the stored tensor by the
  // stride of the dimension it came from.
  for (size_t i = 0; i < rank; ++i)
    strides[i] = storedStrides[permutation[i]];
  int64_t count = ShapedType::getNumElements(shape);
  std::vector<char> out(static_cast<size_t>(count) * elementBytes);
  SmallVector<int64_t> index(rank, 0);
  int64_t from = 0;
  for (int64_t n = 0; n < count; ++n) {
    std::memcpy(out.data() + n * elementBytes, stored + from * elementBytes, elementBytes);
    for (size_t d = rank; d-- > 0;) {
      from += strides[d];
      if (++index[d] < shape[d])
        break;
      from -= strides[d] * shape[d];
      index[d] = 0;
    }
  }
  return out;
}

/// The interleaved copy (kiln/quant_formats.h) of `rows` x `columns` values stored as
/// ggml's rows of blocks of `blockElements` values in `blockBytes` bytes: per group of
/// 16 rows and block, a record of `recordBytes` (zeroed) that `fill(record, block, r)`
/// fills with row r's block.
template <typename Fill>
std::vector<char> interleaveBlocks(const char *stored, int64_t rows, int64_t columns,
                                   int64_t blockElements, int64_t blockBytes,
                                   int64_t recordBytes, Fill fill) {
  int64_t blocks = columns / blockElements, rowBytes = blocks * blockBytes;
  std::vector<char> out(static_cast<size_t>(rows / 16 * blocks * recordBytes));
  for (int64_t group = 0; group < rows / 16; ++group)
    for (int64_t b = 0; b < blocks; ++b) {
      char *record = out.data() + (group * blocks + b) * recordBytes;
      for (int64_t r = 0; r < 16; ++r)
        fill(record, reinterpret_cast<const uint8_t *>(stored + (group * 16 + r) * rowBytes + b * blockBytes), r);
    }
  return out;
}

/// Writes 32 values of row r (`value(t)`, 4 bits each) as q4_0x16's 8 slices of 32
/// bytes at `slices`: slice t / 4, byte 2r + t % 2, the high nibble when t % 4 >= 2.
template <typename Value> void writeNibbleSlices(char *slices, int64_t r, Value value) {
  for (int64_t t = 0; t < 32; ++t)
    if (t % 4 < 2)
      slices[(t / 4) * 32 + 2 * r + t % 2] = static_cast<char>((value(t) & 15) | (value(t + 2) & 15) << 4);
}

/// ggml's q4_0 (f16 scale, 16 bytes of nibbles: value j in the low nibble of byte j,
/// value j + 16 in the high one), q5_0 (the same after a 32-bit word of fifth bits, bit
/// j for value j) and q8_0 (f16 scale, 32 int8 values) blocks as q4_0x16 (the 16
/// scales, then the slices), q5_0x16 (the 16 scales, the fifth bits in two vectors of 32
/// bytes (bit v % 8 of byte 2r + t % 2 of vector v / 8, v = 2 (t / 4) + (t % 4) / 2),
/// the slices) and q8_0x16 (16 slices, value t of row r at byte 2r + t % 2 of slice
/// t / 2, then the 16 scales).
void fillBlock32(char *to, const uint8_t *block, int64_t r, QuantScheme from) {
  bool nibbles = from != QuantScheme::q8_0, fifthBits = from == QuantScheme::q5_0;
  const uint8_t *values = block + (fifthBits ? 6 : 2);
  auto nibble = [&](int64_t t) { return t < 16 ? values[t] & 15 : values[t - 16] >> 4; };
  if (nibbles)
    writeNibbleSlices(to + (fifthBits ? 96 : 32), r, nibble);
  else
    for (int64_t t = 0; t < 32; ++t)
      to[(t / 2) * 32 + 2 * r + t % 2] = static_cast<char>(values[t]);
  if (fifthBits)
    for (int64_t t = 0; t < 32; ++t)
      if (block[2 + t / 8] >> (t % 8) & 1) {
        int64_t v = 2 * (t / 4) + (t % 4) / 2;
        to[32 + 32 * (v / 8) + 2 * r + t % 2] |= static_cast<char>(1 << (v % 8));
      }
  std::memcpy(to + (nibbles ? 0 : 16 * 34 - 32) + 2 * r, block, 2);
}

/// ggml's q4_k (f16 d, f16 dmin, 12 bytes packing 8 6-bit scales and 8 6-bit mins, 128
/// bytes whose low and high nibbles are sub-blocks 2c and 2c + 1) as q4_kx16: the 16 d,
/// the 16 dmin, then per sub-block the 16 scales and the 16 mins as bytes and
/// q4_0x16's slices (2368 bytes: 16 x 148).
void fillQ4k(char *to, const uint8_t *block, int64_t r) {
  std::memcpy(to + 2 * r, block, 2);
  std::memcpy(to + 32 + 2 * r, block + 2, 2);
  const uint8_t *packed = block + 4, *nibbles = block + 16;
  for (int64_t s = 0; s < 8; ++s) {
    // ggml's get_scale_min_k4.
    char *sub = to + 64 + 288 * s;
    sub[r] = static_cast<char>(s < 4 ? packed[s] & 63 : (packed[s + 4] & 15) | ((packed[s - 4] >> 6) << 4));
    sub[16 + r] = static_cast<char>(s < 4 ? packed[s + 4] & 63 : (packed[s + 4] >> 4) | ((packed[s] >> 6) << 4));
    writeNibbleSlices(sub + 32, r, [&](int64_t t) {
      uint8_t byte = nibbles[(s / 2) * 32 + t];
      return s % 2 == 0 ? byte & 15 : byte >> 4;
    });
  }
}

/// ggml's q6_k (128 bytes of low nibbles, 64 of high bit pairs, 16 int8 scales, f16 d;
/// ggml's dequantize_row_q6_K) as q6_kx16: the 16 d, then per sub-block the rows' two
/// scales, the high bits in 4 slices (bits 2 (v % 4) of byte 2r + t % 2 of slice v / 4)
/// and the low bits as q4_0x16's slices (3360 bytes: 16 x 210).
void fillQ6k(char *to, const uint8_t *block, int64_t r) {
  std::memcpy(to + 2 * r, block + 208, 2);
  for (int64_t s = 0; s < 8; ++s) {
    int64_t half = s / 4, quarter = s % 4;
    char *sub = to + 32 + 416 * s;
    // The 6-bit value (0-63) of value t of the sub-block, as ggml stores it.
    auto value = [&](int64_t t) {
      uint8_t low = block[half * 64 + (quarter % 2) * 32 + t];
      uint8_t high = (block[128 + half * 32 + t] >> (quarter * 2)) & 3;
      return (quarter >= 2 ? low >> 4 : low & 15) | high << 4;
    };
    for (int64_t j = 0; j < 2; ++j)
      sub[16 * j + r] = static_cast<char>(block[192 + half * 8 + quarter * 2 + j]);
    for (int64_t t = 0; t < 32; ++t) {
      int64_t v = 2 * (t / 4) + (t % 4) / 2;
      sub[32 + 32 * (v / 4) + 2 * r + t % 2] |= static_cast<char>((value(t) >> 4) << (2 * (v % 4)));
    }
    writeNibbleSlices(sub + 160, r, value);
  }
}

/// The weight's bytes in the interleaved layout of `from` (kiln-interleave-weights).
std::vector<char> interleaveRows(const char *stored, ArrayRef<int64_t> shape, QuantScheme from) {
  int64_t columns = shape.back(), rows = ShapedType::getNumElements(shape) / columns;
  switch (from) {
  case QuantScheme::q4_k:
    return interleaveBlocks(stored, rows, columns, 256, 144, 2368, fillQ4k);
  case QuantScheme::q6_k:
    return interleaveBlocks(stored, rows, columns, 256, 210, 3360, fillQ6k);
  default: {
    int64_t blockBytes = from == QuantScheme::q8_0 ? 34 : from == QuantScheme::q5_0 ? 22 : 18;
    return interleaveBlocks(stored, rows, columns, 32, blockBytes, 16 * blockBytes,
                            [&](char *to, const uint8_t *block, int64_t r) { fillBlock32(to, block, r, from); });
  }
  }
}

FailureOr<const llvm::MemoryBuffer *> Emitter::sourceOf(WeightOp weight) {
  llvm::SmallString<256> source(weight.getSource());
  if (llvm::sys::path::is_relative(source) && !baseDirectory.empty()) {
    source = baseDirectory;
    llvm::sys::path::append(source, weight.getSource());
  }
  std::unique_ptr<llvm::MemoryBuffer> &file = files[source];
  if (!file) {
    auto opened = llvm::MemoryBuffer::getFile(source, /*IsText=*/false,
                                              /*RequiresNullTerminator=*/false);
    if (!opened)
      return weight.emitOpError("cannot read its source '")
             << source << "': " << opened.getError().message();
    file = std::move(*opened);
  }
  return file.get();
}

void Emitter::markFiniteHalfWeights(ModuleOp module) {
  module.walk([&](WeightOp weight) {
    auto type = cast<RankedTensorType>(weight.getType());
    if (!type.getElementType().isF16() || weight.getSourceScheme())
      return;
    FailureOr<const llvm::MemoryBuffer *> file = sourceOf(weight);
    uint64_t offset = weight.getOffset(), bytes = uint64_t(type.getNumElements()) * 2;
    // Unreadable or short sources are reported when the bytes are written.
    if (failed(file) || offset > (*file)->getBufferSize() || bytes > (*file)->getBufferSize() - offset)
      return;
    const auto *at = reinterpret_cast<const unsigned char *>((*file)->getBufferStart() + offset);
    // Exponent 31 (an infinity or a NaN) anywhere: the kernels keep the exact widening.
    bool special = false;
    for (uint64_t i = 0; i < bytes; i += 2)
      special |= (at[i + 1] & 0x7c) == 0x7c;
    if (!special)
      weight->setAttr("kiln.finite", UnitAttr::get(weight.getContext()));
  });
}

FailureOr<uint64_t> Emitter::addWeightBytes(WeightOp weight) {
  auto type = cast<RankedTensorType>(weight.getType());
  // `size` bytes in the artifact, from `sourceSize` bytes of the file (they differ when
  // an interleaved layout adds bytes to the one it is converted from: q4_kx16).
  uint64_t size, sourceSize;
  // A float source (kiln-quantize-weights) is read as floats and packed here.
  std::optional<FloatSource> floatSource;
  if (std::optional<StringRef> scheme = weight.getSourceScheme())
    floatSource = symbolizeFloatSource(*scheme);
  if (auto quant = dyn_cast<QuantType>(type.getElementType())) {
    SmallVector<int64_t> packed = quant.getPackedShape(type.getShape());
    if (packed.back() < 0)
      return weight.emitOpError("does not hold whole quantization blocks");
    size = sourceSize = static_cast<uint64_t>(ShapedType::getNumElements(packed));
    if (floatSource)
      sourceSize = static_cast<uint64_t>(type.getNumElements() * floatSourceBytes(*floatSource));
    else if (std::optional<StringRef> from = weight.getSourceScheme())
      sourceSize = static_cast<uint64_t>(ShapedType::getNumElements(
          QuantType::get(weight.getContext(), *symbolizeQuantScheme(*from), 0)
              .getPackedShape(type.getShape())));
  } else {
    size = sourceSize = static_cast<uint64_t>(type.getNumElements()) *
                        ((type.getElementTypeBitWidth() + 7) / 8);
  }
  std::string permutationKey;
  if (std::optional<ArrayRef<int64_t>> permutation = weight.getPermutation())
    for (int64_t d : *permutation)
      permutationKey += std::to_string(d) + ",";
  if (std::optional<StringRef> source = weight.getSourceScheme())
    permutationKey += "from " + source->str() + " into " +
                      stringifyQuantScheme(cast<QuantType>(type.getElementType()).getScheme()).str();
  if (std::optional<ArrayRef<float>> scale = weight.getInputScale())
    permutationKey += " scaled " + llvm::toHex(StringRef(reinterpret_cast<const char *>(scale->data()),
                                                          scale->size() * sizeof(float)));
  auto key = std::make_tuple(weight.getSource().str() + "|" + permutationKey,
                             static_cast<int64_t>(weight.getOffset()), size);
  auto cached = weightOffsets.find(key);
  if (cached != weightOffsets.end())
    return cached->second;

  FailureOr<const llvm::MemoryBuffer *> opened = sourceOf(weight);
  if (failed(opened))
    return failure();
  const llvm::MemoryBuffer *file = *opened;
  uint64_t offset = weight.getOffset();
  if (offset > file->getBufferSize() || sourceSize > file->getBufferSize() - offset)
    return weight.emitOpError("needs bytes [")
           << offset << ", " << offset + sourceSize << ") of '" << weight.getSource()
           << "', which has only " << file->getBufferSize() << " bytes";
  const char *bytes = file->getBufferStart() + offset;
  std::vector<char> permuted;
  if (std::optional<ArrayRef<int64_t>> permutation = weight.getPermutation()) {
    permuted = permuteElements(bytes, type.getShape(), *permutation,
                               floatSource ? floatSourceBytes(*floatSource)
                                           : (type.getElementTypeBitWidth() + 7) / 8);
    bytes = permuted.data();
  }
  std::optional<ArrayRef<float>> inputScale = weight.getInputScale();
  if (floatSource) {
    QuantScheme scheme = cast<QuantType>(type.getElementType()).getScheme();
    QuantScheme blocks = scheme == QuantScheme::q8_0x16   ? QuantScheme::q8_0
                         : scheme == QuantScheme::q4_0x16 ? QuantScheme::q4_0
                                                          : scheme;
    std::vector<float> values = widenToF32(bytes, type.getNumElements(), *floatSource);
    if (inputScale)
      scaleInputChannels(values, *inputScale);
    permuted = packBlocks(values, blocks);
    if (blocks != scheme)
      permuted = interleaveRows(permuted.data(), type.getShape(), blocks);
    bytes = permuted.data();
  } else if (weight.getSourceScheme()) {
    permuted = interleaveRows(bytes, type.getShape(), *symbolizeQuantScheme(*weight.getSourceScheme()));
    bytes = permuted.data();
  } else if (inputScale) {
    // An f32 weight (the verifier allows no other): a norm scale AWQ divided.
    std::vector<float> values = widenToF32(bytes, type.getNumElements(), FloatSource::f32);
    scaleInputChannels(values, *inputScale);
    permuted.resize(values.size() * sizeof(float));
    std::memcpy(permuted.data(), values.data(), permuted.size());
    bytes = permuted.data();
  }
  summary.weightBytesBefore += sourceSize;
  uint64_t at = writer.addWeights(bytes, size);
  summary.weightBytes += size;
  weightOffsets[key] = at;
  return at;
}

LogicalResult Emitter::lowerKernels(func::FuncOp func) {
  auto &kernels = writer.program().kernels;
  WalkResult result = func.walk([&](DispatchOp dispatch) {
    FailureOr<KernelInfo> kernel = backend.addKernel(dispatch);
    if (failed(kernel))
      return WalkResult::interrupt();
    if (kernel->index == kernels.size()) {
      art::KernelDesc desc{kernel->name, kernel->numArgs};
      if (const std::optional<LibraryCall> &call = kernel->library) {
        art::LibraryCallDesc &library = desc.library;
        library.function = call->function;
        library.a = call->a;
        library.b = call->b;
        library.c = call->c;
        library.batch = call->batch;
        library.m = call->m;
        library.n = call->n;
        library.k = call->k;
        library.aBatchStride = call->aBatchStride;
        library.bBatchStride = call->bBatchStride;
        library.transposeB = call->transposeB;
        library.compute = call->compute;
      }
      kernels.push_back(std::move(desc));
      summary.libraryKernels += kernel->library ? 1 : 0;
    }
    kernelOf[dispatch.getOperation()] = kernel->index;
    ++summary.dispatches;
    return WalkResult::advance();
  });
  return failure(result.wasInterrupted());
}

FailureOr<ArtifactSummary> Emitter::emit(ModuleOp module, StringRef path,
                                         const CompileOptions &options) {
  FailureOr<SmallVector<func::FuncOp>> entries = entryFunctions(module);
  if (failed(entries))
    return failure();
  // F16 weights without infinities or NaNs are widened in fewer operations
  // (widenFiniteHalf): the kernels need to know before they are lowered.
  markFiniteHalfWeights(module);
  // Kernels first: an op no backend can compile is the likelier, and cheaper, error.
  for (func::FuncOp func : *entries)
    if (failed(lowerKernels(func)))
      return failure();

  art::ProgramDesc &program = writer.program();
  program.compilerVersion = kCompilerVersion;
  program.target = backend.target();
  program.arenaAlignment = 64;
  for (func::FuncOp func : *entries)
    if (failed(emitEntryPoint(func)))
      return failure();
  summary.arenaBytes = program.arenaSize;
  summary.kernels = static_cast<unsigned>(program.kernels.size());
  summary.target = program.target;
  // Entry points sharing state each have a buffer for its slot, all of one size (the
  // loader rejects others): count each slot once.
  std::map<uint32_t, uint64_t> stateSlotBytes;
  for (const art::BufferDesc &buffer : program.buffers)
    if (buffer.kind == art::BufferKind::State)
      stateSlotBytes[buffer.index] = buffer.size;
  for (const auto &[slot, bytes] : stateSlotBytes)
    summary.stateBytes += bytes;

  // A program of reshapes and constants only (an ONNX Reshape or Identity) needs no code.
  if (summary.kernels != 0) {
    FailureOr<std::vector<CodeObject>> codes = backend.emitCodeObjects(module.getLoc(), options);
    if (failed(codes))
      return failure();
    for (const CodeObject &code : *codes) {
      summary.codeBytes += code.bytes.size();
      writer.addCodeObject(code.device, code.target, code.format,
                           std::vector<uint8_t>(code.bytes.begin(), code.bytes.end()));
      if (!options.deviceCodeDirectory.empty() &&
          failed(writeDeviceSources(module.getLoc(), code, options.deviceCodeDirectory)))
        return failure();
    }
  }

  art::ArtifactError error = writer.writeFile(path.str());
  if (error)
    return emitError(module.getLoc()) << "cannot write the artifact '" << path
                                      << "': " << error.message;
  return summary;
}

uint32_t Emitter::stateSlot(StringRef name) {
  auto [it, inserted] = stateSlots.try_emplace(name, static_cast<uint32_t>(stateSlots.size()));
  return it->second;
}

LogicalResult Emitter::emitEntryPoint(func::FuncOp func) {
  art::ProgramDesc &program = writer.program();
  EntryPointSummary entrySummary;
  entrySummary.name = func.getSymName().str();
  auto attrOr0 = [&](StringRef name) -> uint64_t {
    auto attr = func->getAttrOfType<IntegerAttr>(name);
    return attr ? attr.getInt() : 0;
  };
  entrySummary.arenaBytes = attrOr0("kiln.arena_size");
  entrySummary.arenaLowerBound = attrOr0("kiln.arena_lower_bound");
  entrySummary.inPlaceResults = static_cast<unsigned>(attrOr0("kiln.arena_in_place"));
  entrySummary.dispatchesBeforeFusion =
      static_cast<unsigned>(attrOr0("kiln.dispatches_before_fusion"));
  program.arenaSize = std::max<uint64_t>(program.arenaSize, entrySummary.arenaBytes);
  summary.arenaLowerBound = std::max(summary.arenaLowerBound, entrySummary.arenaLowerBound);
  summary.dispatchesBeforeFusion += entrySummary.dispatchesBeforeFusion;

  // Results marked kiln.state are written into their state slot by the kernel that
  // computes them (in place: that kernel reads the old state element by element).
  auto ret = cast<func::ReturnOp>(func.front().getTerminator());
  llvm::DenseMap<Value, StringRef> stateResults;
  for (auto [i, value] : llvm::enumerate(ret.getOperands()))
    if (auto state = func.getResultAttrOfType<StringAttr>(i, "kiln.state"))
      stateResults[value] = state.getValue();

  art::EntryPointDesc entryPoint;
  entryPoint.name = func.getSymName().str();
  uint32_t inputIndex = 0;
  for (BlockArgument arg : func.getArguments()) {
    if (auto state = func.getArgAttrOfType<StringAttr>(arg.getArgNumber(), "kiln.state")) {
      if (failed(addBuffer(func, arg, art::BufferKind::State, stateSlot(state.getValue()), 0)))
        return failure();
      continue;
    }
    auto name = func.getArgAttrOfType<StringAttr>(arg.getArgNumber(), "kiln.name");
    FailureOr<uint32_t> id = addBuffer(func, arg, art::BufferKind::Input, inputIndex, 0);
    if (failed(id))
      return failure();
    entryPoint.inputs.push_back(
        {name ? name.str() : "input_" + std::to_string(inputIndex), *id});
    ++inputIndex;
  }
  for (Operation &op : func.front()) {
    if (auto weight = dyn_cast<WeightOp>(op)) {
      FailureOr<uint64_t> offset = addWeightBytes(weight);
      if (failed(offset) || failed(addBuffer(weight, weight.getResult(), art::BufferKind::Weight, 0, *offset)))
        return failure();
    } else if (auto constant = dyn_cast<arith::ConstantOp>(op)) {
      auto dense = dyn_cast<DenseElementsAttr>(constant.getValue());
      if (!dense)
        continue; // scalars only feed kernels, which rematerialize them
      std::vector<char> bytes = constantBytes(dense);
      uint64_t offset = writer.addWeights(bytes.data(), bytes.size());
      summary.weightBytes += bytes.size();
      summary.weightBytesBefore += bytes.size();
      if (failed(addBuffer(constant, constant.getResult(), art::BufferKind::Weight, 0, offset)))
        return failure();
    } else if (auto empty = dyn_cast<tensor::EmptyOp>(op);
               empty && empty.getType().hasStaticShape() && empty.getType().getNumElements() == 0) {
      // A tensor without elements (a zero-sized Split output) needs no bytes.
      if (failed(addBuffer(empty, empty.getResult(), art::BufferKind::Weight, 0,
                           writer.addWeights(nullptr, 0))))
        return failure();
    } else if (isa<tensor::ExpandShapeOp, tensor::CollapseShapeOp>(op)) {
      FailureOr<uint32_t> source = bufferOf(&op, op.getOperand(0));
      if (failed(source) ||
          failed(addBuffer(&op, op.getResult(0), art::BufferKind::Alias, *source, 0)))
        return failure();
    } else if (auto dispatch = dyn_cast<DispatchOp>(op)) {
      auto offsets = dispatch->getAttrOfType<DenseI64ArrayAttr>("kiln.arena_offsets");
      if (!offsets || offsets.size() != static_cast<int64_t>(dispatch.getNumResults()))
        return dispatch.emitOpError("has no memory plan (run kiln-plan-memory first)");
      art::DispatchDesc call;
      call.kernel = kernelOf.at(dispatch.getOperation());
      for (Value input : dispatch.getInputs()) {
        FailureOr<uint32_t> id = bufferOf(dispatch, input);
        if (failed(id))
          return failure();
        call.args.push_back(*id);
      }
      for (auto [result, offset] : llvm::zip(dispatch.getResults(), offsets.asArrayRef())) {
        auto state = stateResults.find(result);
        FailureOr<uint32_t> id =
            state != stateResults.end()
                ? addBuffer(dispatch, result, art::BufferKind::State,
                            stateSlot(state->second), 0)
                : addBuffer(dispatch, result, art::BufferKind::Arena, 0,
                            static_cast<uint64_t>(offset));
        if (failed(id))
          return failure();
        call.args.push_back(*id);
      }
      describeForProfiles(dispatch, call);
      entryPoint.dispatches.push_back(call);
    } else if (isa<func::ReturnOp>(op)) {
      for (auto [i, value] : llvm::enumerate(ret.getOperands())) {
        if (func.getResultAttrOfType<StringAttr>(i, "kiln.state")) {
          // Already in its slot, unless it is not a kernel's result.
          auto arg = dyn_cast<BlockArgument>(value);
          bool unchanged = arg && func.getArgAttrOfType<StringAttr>(arg.getArgNumber(), "kiln.state") ==
                                      func.getResultAttrOfType<StringAttr>(i, "kiln.state");
          if (!unchanged && !value.getDefiningOp<DispatchOp>())
            return ret.emitOpError("returns state result #")
                   << i << ", which must be computed by a kernel (or be its state argument)";
          continue;
        }
        FailureOr<uint32_t> id = bufferOf(ret, value);
        if (failed(id))
          return failure();
        auto name = func.getResultAttrOfType<StringAttr>(i, "kiln.name");
        entryPoint.outputs.push_back({name ? name.str() : "output_" + std::to_string(i), *id});
      }
    } else {
      return op.emitOpError("cannot be compiled into an artifact: only kiln.dispatch, "
                            "kiln.weight, constants and reshapes may appear outside kernels");
    }
  }
  entrySummary.dispatches = static_cast<unsigned>(entryPoint.dispatches.size());
  summary.entryPoints.push_back(std::move(entrySummary));
  program.entryPoints.push_back(std::move(entryPoint));
  return success();
}

} // namespace

FailureOr<ArtifactSummary> emitArtifact(ModuleOp module, Backend &backend, StringRef path,
                                        StringRef weightDirectory,
                                        const CompileOptions &options) {
  return Emitter(backend, weightDirectory).emit(module, path, options);
}

FailureOr<std::string> printKernels(ModuleOp module, Backend &backend) {
  Emitter emitter(backend, "");
  for (func::FuncOp func : module.getOps<func::FuncOp>())
    if (!func.isExternal() && failed(emitter.lowerKernels(func)))
      return failure();
  return backend.printKernels(module.getLoc());
}

} // namespace kiln
