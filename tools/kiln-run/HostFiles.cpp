// Files on the host that kiln's tools share: content hashes and the cache directory.
#include "HostFiles.h"

#define XXH_INLINE_ALL
#include <xxhash.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <pwd.h>
#include <unistd.h>
#include <vector>

namespace kiln::tools {

Expected<std::string> hashFile(const std::string &path) {
  std::ifstream file(path, std::ios::binary);
  if (!file)
    return Error{"cannot open '" + path + "': " + std::strerror(errno)};
  std::unique_ptr<XXH3_state_t, decltype(&XXH3_freeState)> state(XXH3_createState(),
                                                                  XXH3_freeState);
  XXH3_64bits_reset(state.get());
  std::vector<char> chunk(1 << 20);
  while (file) {
    file.read(chunk.data(), static_cast<std::streamsize>(chunk.size()));
    XXH3_64bits_update(state.get(), chunk.data(), static_cast<size_t>(file.gcount()));
  }
  if (file.bad())
    return Error{"cannot read '" + path + "': " + std::strerror(errno)};
  char digest[17];
  std::snprintf(digest, sizeof digest, "%016llx",
                static_cast<unsigned long long>(XXH3_64bits_digest(state.get())));
  return std::string(digest);
}

std::string kilnCacheDirectory(const std::string &name) {
  namespace fs = std::filesystem;
  const char *xdg = std::getenv("XDG_CACHE_HOME");
  if (xdg && *xdg)
    return (fs::path(xdg) / "kiln" / name).string();
  const char *home = std::getenv("HOME");
  if (!home || !*home) {
    const passwd *user = getpwuid(getuid());
    home = user ? user->pw_dir : "/tmp";
  }
  return (fs::path(home) / ".cache" / "kiln" / name).string();
}

} // namespace kiln::tools
