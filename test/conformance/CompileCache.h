// Compiling ONNX test models with kiln-compile, cached on disk by (model bytes,
// compiler binary) so that rerunning the suite with an unchanged compiler is fast.
#ifndef KILN_CONFORMANCE_COMPILECACHE_H
#define KILN_CONFORMANCE_COMPILECACHE_H

#include "Expected.h"
#include "TestResult.h"

#include <chrono>
#include <optional>
#include <string>

namespace kiln::conformance {

// A compiled artifact, or why there is none (unsupported or fail).
struct CompileOutcome {
  std::optional<std::string> artifactPath;
  TestResult failure; // meaningful only without an artifact
};

class CompileCache {
public:
  // `compilerHash` is hashFile(compilerPath), computed once by the caller.
  CompileCache(std::string directory, std::string compilerPath, std::string compilerHash,
               std::chrono::milliseconds timeout);

  // Creates the cache directory.
  tools::MaybeError prepare() const;

  // The cached outcome for `modelPath`, or a fresh compile (cached unless it timed out,
  // which says more about the machine's load than about the model).
  CompileOutcome compile(const std::string &modelPath) const;

private:
  std::string directory;
  std::string compilerPath;
  std::string compilerHash;
  std::chrono::milliseconds timeout;
};

} // namespace kiln::conformance

#endif // KILN_CONFORMANCE_COMPILECACHE_H
