// Files on the host that kiln's tools share: content hashes, the cache directory, and
// models compiled once into it.
#include "HostFiles.h"

#define XXH_INLINE_ALL
#include <xxhash.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <pwd.h>
#include <sys/wait.h>
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

Expected<std::string> hashFiles(const std::vector<std::string> &paths) {
  std::string hashes;
  for (const std::string &path : paths) {
    Expected<std::string> hash = hashFile(path);
    if (!hash)
      return hash;
    hashes += *hash;
  }
  char digest[17];
  std::snprintf(digest, sizeof digest, "%016llx",
                static_cast<unsigned long long>(XXH3_64bits(hashes.data(), hashes.size())));
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

Expected<CachedArtifact> compileIntoCache(const std::string &tool, const std::string &what,
                                          const std::string &cacheDir, const std::string &name,
                                          const std::vector<std::string> &arguments) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::path compiler = fs::read_symlink("/proc/self/exe", ec).parent_path() / "kiln-compile";
  if (ec || !fs::exists(compiler))
    return Error{"cannot find kiln-compile next to " + tool + " (" + compiler.string() + ")"};
  Expected<std::string> compilerHash = hashFile(compiler.string());
  if (!compilerHash)
    return compilerHash.error();
  fs::path cache = cacheDir.empty() ? kilnCacheDirectory("models") : cacheDir;
  fs::create_directories(cache, ec);
  fs::path artifact = cache / (name + "-" + *compilerHash + ".kiln");
  if (fs::exists(artifact))
    return CachedArtifact{artifact.string()};
  std::fprintf(stderr, "%s: compiling %s (once; cached as %s)\n", tool.c_str(), what.c_str(),
               artifact.c_str());
  auto start = std::chrono::steady_clock::now();
  std::string partial = artifact.string() + "." + std::to_string(getpid()) + ".partial";
  std::vector<std::string> words{"kiln-compile"};
  words.insert(words.end(), arguments.begin(), arguments.end());
  words.insert(words.end(), {"-o", partial});
  std::vector<char *> argv;
  for (std::string &word : words)
    argv.push_back(word.data());
  argv.push_back(nullptr);
  pid_t child = fork();
  if (child == 0) {
    execv(compiler.c_str(), argv.data());
    _exit(127);
  }
  int status = 0;
  if (child < 0 || waitpid(child, &status, 0) < 0 || !WIFEXITED(status) ||
      WEXITSTATUS(status) != 0)
    return Error{"kiln-compile failed on " + what};
  fs::rename(partial, artifact, ec);
  if (ec)
    return Error{"cannot move the compiled model into the cache: " + ec.message()};
  return CachedArtifact{
      artifact.string(),
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count()};
}

} // namespace kiln::tools
