// Files on the host that kiln's tools share: content hashes for cache keys, and the
// per-user cache directory.
#ifndef KILN_TOOLS_HOSTFILES_H
#define KILN_TOOLS_HOSTFILES_H

#include "Expected.h"

#include <string>

namespace kiln::tools {

// XXH3-64 of a file's bytes as 16 hex digits, read in chunks (model files are large).
Expected<std::string> hashFile(const std::string &path);

// $XDG_CACHE_HOME/kiln/<name>, else ~/.cache/kiln/<name>.
std::string kilnCacheDirectory(const std::string &name);

} // namespace kiln::tools

#endif // KILN_TOOLS_HOSTFILES_H
