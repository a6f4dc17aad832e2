// Validation of a .kiln artifact's bytes: the file layout (ArtifactFormat.h), checksums,
// the flatbuffers program (artifact.fbs) and every index, offset and size in it. The
// runtime loads only what this accepts; the writer, tests and tools call it too.
#ifndef KILN_RUNTIME_ARTIFACTREADER_H
#define KILN_RUNTIME_ARTIFACTREADER_H

#include "ArtifactFormat.h"
#include "artifact_generated.h"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace kiln::artifact {

// What went wrong, for a person to read; empty means nothing did.
struct [[nodiscard]] ArtifactError {
  std::string message;
  explicit operator bool() const { return !message.empty(); }
};

// XXH64 with seed 0, the checksum of the header and of every section.
uint64_t checksum(const void *data, size_t size);

// "program", "weights", "code", or "unknown".
const char *sectionKindName(uint32_t kind);

struct ByteRange {
  const uint8_t *data = nullptr;
  uint64_t size = 0;
};

// A code object and its section's bytes.
struct CodeObjectBytes {
  const CodeObject *object = nullptr;
  ByteRange bytes;
};

// A validated artifact, as views into the bytes given to validateArtifact (valid as
// long as those bytes are).
struct ArtifactView {
  const Program *program = nullptr;
  ByteRange weights; // empty when there is no weights section
  // Every code object, in the program's order: at least one when there are kernels
  // (the runtime loads the one for its device; see codeFor).
  std::vector<CodeObjectBytes> code;
  // For each buffer id, the id of the non-alias buffer whose bytes it views (itself for
  // a non-alias buffer).
  std::vector<uint32_t> storage;
  // Bytes of each persistent state slot (State buffers' `index`).
  std::vector<uint64_t> stateSizes;

  // The code objects for `device` ("cpu", "cuda", ...), in the program's order.
  std::vector<const CodeObjectBytes *> codeFor(std::string_view device) const;
};

// Checks everything the runtime relies on before it touches any of it. On success
// fills `view` (when non-null).
ArtifactError validateArtifact(const uint8_t *data, size_t size, ArtifactView *view);

// The library call the reader knows: "cublas.gemm" (artifact.fbs's LibraryCall).
constexpr std::string_view kCublasGemm = "cublas.gemm";

// The kernel's library call when its function is one this reader knows (and so has
// validated, with every dispatch's operands); null when it has none, or one a newer
// compiler wrote, which is ignored: the kernel's own code runs.
const LibraryCall *knownLibraryCall(const Kernel &kernel);

// The most dimensions a tensor may have. Halide's kernels read the dimensions they
// were compiled for before they check the buffer's count, so sessions give every
// buffer this many dimension slots (zero past its rank): a kernel given a buffer of
// lower rank then fails its check instead of reading past the array. The writer
// validates what the compiler emits, so no kernel expects more.
constexpr uint32_t kMaxRank = 16;

// The byte size of a tensor of `type`: its element count times the element size, with
// at most kMaxRank dimensions and every Halide stride fitting in int32. An error names what is wrong.
ArtifactError tensorByteSize(const TensorType *type, uint64_t *bytes);

} // namespace kiln::artifact

#endif // KILN_RUNTIME_ARTIFACTREADER_H
