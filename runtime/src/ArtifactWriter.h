// Writing a .kiln artifact (compiler side; no MLIR): weights, code objects and a plain
// C++ description of the program, serialized with flatbuffers and written atomically
// with every checksum.
#ifndef KILN_RUNTIME_ARTIFACTWRITER_H
#define KILN_RUNTIME_ARTIFACTWRITER_H

#include "ArtifactReader.h"

#include <cstdint>
#include <string>
#include <vector>

namespace kiln::artifact {

// Mirrors of the schema's tables (artifact.fbs documents every field).
struct TensorDesc {
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
};

struct BufferDesc {
  TensorDesc type;
  BufferKind kind = BufferKind::Arena;
  uint32_t index = 0;
  uint64_t offset = 0;
  uint64_t size = 0;
};

struct LibraryCallDesc {
  std::string function;          // empty: the kernel has no library call
  uint32_t a = 0, b = 0, c = 0;  // positions in each dispatch's args
  uint32_t batch = 1, m = 0, n = 0, k = 0;
  uint64_t aBatchStride = 0, bBatchStride = 0; // elements; 0: one matrix for every batch
  bool transposeB = false;
  std::string compute = "f32";   // or "tf32"
};

struct KernelDesc {
  std::string name;
  uint32_t numArgs = 0;
  LibraryCallDesc library{};
};

struct DispatchDesc {
  uint32_t kernel = 0;
  std::vector<uint32_t> args;
  uint64_t flops = 0;
  uint64_t bytes = 0;
  // "" when unknown ({}: initializer lists may leave them out)
  std::string location{};
  std::string summary{};
};

struct ValueDesc {
  std::string name;
  uint32_t buffer = 0;
};

struct EntryPointDesc {
  std::string name;
  std::vector<ValueDesc> inputs;
  std::vector<ValueDesc> outputs;
  std::vector<DispatchDesc> dispatches;
};

struct CodeObjectDesc {
  std::string device;
  std::string target;
  std::string format;
  uint32_t section = 0;
};

struct ProgramDesc {
  std::string compilerVersion;
  std::string target;
  uint64_t arenaSize = 0;
  uint32_t arenaAlignment = 64;
  std::vector<BufferDesc> buffers;
  std::vector<KernelDesc> kernels;
  std::vector<EntryPointDesc> entryPoints;
  std::vector<CodeObjectDesc> codeObjects;
};

class ArtifactWriter {
public:
  // Appends weight bytes; returns their offset in the weights section (a multiple of
  // kWeightAlignment), the Weight buffer's `offset`.
  uint64_t addWeights(const void *data, size_t size);

  // Adds a code object section and its CodeObject entry to the program; returns the
  // section index.
  uint32_t addCodeObject(std::string device, std::string target, std::string format,
                         std::vector<uint8_t> bytes);

  // The program description, to fill in (code objects are already listed by
  // addCodeObject).
  ProgramDesc &program() { return programDesc; }

  // The whole file's bytes, without validating them (tests write broken artifacts
  // this way).
  std::vector<uint8_t> serialize() const;

  // Validates the serialized artifact, then writes it to `path` through a temporary
  // file in the same directory and a rename, so readers never see a partial file.
  ArtifactError writeFile(const std::string &path) const;

private:
  ProgramDesc programDesc;
  std::vector<uint8_t> weights;
  std::vector<std::vector<uint8_t>> codeSections;
};

// The program section alone (a finished flatbuffer with the "KLNP" identifier).
std::vector<uint8_t> serializeProgram(const ProgramDesc &program);

// A byte buffer's byte size for `type` (product of the shape times the element size),
// or 0 for an unknown dtype.
uint64_t byteSize(const TensorDesc &type);

} // namespace kiln::artifact

#endif // KILN_RUNTIME_ARTIFACTWRITER_H
