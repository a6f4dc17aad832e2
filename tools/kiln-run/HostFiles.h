// Files on the host that kiln's tools share: content hashes for cache keys, the
// per-user cache directory, and models compiled once into it.
#ifndef KILN_TOOLS_HOSTFILES_H
#define KILN_TOOLS_HOSTFILES_H

#include "Expected.h"
#include "kiln/runtime.h"

#include <string>
#include <vector>

namespace kiln::tools {

// XXH3-64 of a file's bytes as 16 hex digits, read in chunks (model files are large).
Expected<std::string> hashFile(const std::string &path);

// One XXH3-64 over the files' hashes (in the order given), as 16 hex digits.
Expected<std::string> hashFiles(const std::vector<std::string> &paths);

// $XDG_CACHE_HOME/kiln/<name>, else ~/.cache/kiln/<name>.
std::string kilnCacheDirectory(const std::string &name);

struct CachedArtifact {
  std::string path;
  double compileSeconds = 0; // 0 when the cache already held it
};

// The artifact `<name>-<hash>.kiln` in `cacheDir` (empty: the "models" cache
// directory), the hash over kiln-compile's bytes and the state of the tuning database
// kiln-compile reads (`--tune=use`, its default: $KILN_TUNING_DB, else the cache
// directory's tuning.sqlite; its size and modification time with its write-ahead log's,
// so that schedules tuned after a model was cached are compiled in; a PostgreSQL URL
// counts as its text only: tuning into a shared store later does not invalidate). When
// it is missing, or there but `runtime` (the tool's) does not load it (truncated,
// corrupt, for another CPU or device), the kiln-compile beside the running executable
// compiles it (`kiln-compile ARGUMENTS... -o <partial file>`, renamed into place only
// on success, so an interrupted compile leaves no artifact), and
// "<tool>: compiling <what> (once; cached as ...)" goes to stderr. Compiles of one
// artifact are serialized by flock on `<artifact>.lock`: a concurrent second process
// waits and then uses the first one's artifact.
Expected<CachedArtifact> compileIntoCache(const std::string &tool, const std::string &what,
                                          const std::string &cacheDir, const std::string &name,
                                          const std::vector<std::string> &arguments,
                                          kiln_runtime *runtime);

} // namespace kiln::tools

#endif // KILN_TOOLS_HOSTFILES_H
