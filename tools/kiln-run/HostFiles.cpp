// Files on the host that kiln's tools share: content hashes, the cache directory, and
// models compiled once into it.
#include "HostFiles.h"

#define XXH_INLINE_ALL
#include <xxhash.h>

#include <algorithm>
#include <cctype>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <memory>
#include <kiln/runtime.h>
#include <pwd.h>
#include <sys/file.h>
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

namespace {

// Why the artifact at `path` cannot be used (empty: it can): the tool's runtime loads
// it, so a truncated or corrupt file (checksums, every program check) or one built for
// another CPU or device is found here rather than at the tool's own load.
std::string unusableBecause(const std::string &path, kiln_runtime *runtime) {
  kiln_module *module = nullptr;
  kiln_status status = kiln_module_load_file(runtime, path.c_str(), &module);
  std::string why = status ? kiln_status_message(status) : "";
  kiln_status_free(status);
  kiln_module_release(module);
  return why;
}

// Runs kiln-compile with `arguments` writing to `output`; an error says why not.
Expected<bool> runCompiler(const std::filesystem::path &compiler, const std::string &what,
                           const std::vector<std::string> &arguments,
                           const std::string &output) {
  std::vector<std::string> words{"kiln-compile"};
  words.insert(words.end(), arguments.begin(), arguments.end());
  words.insert(words.end(), {"-o", output});
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
  return true;
}

} // namespace

namespace {
/// Removes `name`-<compiler hash>.kiln (and its lock) of every other compiler: a model
/// is ~the size of its weights, and each kiln build would otherwise leave one behind.
/// A process still running an old one keeps its mapping (unlink does not end it).
void removeOtherCompilersArtifacts(const std::filesystem::path &cache, const std::string &name,
                                   size_t hashLength, const std::filesystem::path &kept) {
  namespace fs = std::filesystem;
  std::error_code ec;
  std::string prefix = name + "-";
  for (const fs::directory_entry &entry : fs::directory_iterator(cache, ec)) {
    std::string file = entry.path().filename().string();
    // Exactly the prefix, a compiler hash's hex digits and .kiln: not another variant of
    // the model ("<name>-i8-<hash>.kiln" shares the prefix).
    if (entry.path() == kept || file.size() != prefix.size() + hashLength + 5 ||
        file.compare(0, prefix.size(), prefix) != 0 ||
        file.compare(file.size() - 5, 5, ".kiln") != 0 ||
        !std::all_of(file.begin() + prefix.size(), file.end() - 5,
                     [](char c) { return std::isxdigit(static_cast<unsigned char>(c)); }))
      continue;
    fs::remove(entry.path(), ec);
    fs::remove(entry.path().string() + ".lock", ec);
  }
}
} // namespace

namespace {
/// What identifies the tuning database's contents for the compile cache: the path (or
/// URL) kiln-compile resolves as compiler/Tuning's defaultDatabasePath does, and for a
/// file its and its write-ahead log's size and modification time ("absent" for none or
/// an empty log).
std::string tuningDatabaseState() {
  namespace fs = std::filesystem;
  const char *configured = std::getenv("KILN_TUNING_DB");
  std::string path = configured && *configured ? configured
                                                : kilnCacheDirectory("tuning.sqlite");
  std::string state = path;
  if (path.rfind("postgres", 0) == 0)
    return state;
  for (const std::string &file : {path, path + "-wal"}) {
    std::error_code ec;
    auto size = fs::file_size(file, ec);
    // An empty log holds nothing: SQLite leaves one behind a reader (kiln-compile
    // itself), which must not make the next run compile again.
    if (ec || (size == 0 && file != path)) {
      state += "|absent";
      continue;
    }
    auto modified = fs::last_write_time(file, ec).time_since_epoch().count();
    state += "|" + std::to_string(size) + "@" + std::to_string(modified);
  }
  return state;
}
} // namespace

Expected<CachedArtifact> compileIntoCache(const std::string &tool, const std::string &what,
                                          const std::string &cacheDir, const std::string &name,
                                          const std::vector<std::string> &arguments,
                                          kiln_runtime *runtime) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::path compiler = fs::read_symlink("/proc/self/exe", ec).parent_path() / "kiln-compile";
  if (ec || !fs::exists(compiler))
    return Error{"cannot find kiln-compile next to " + tool + " (" + compiler.string() + ")"};
  Expected<std::string> compilerHash = hashFile(compiler.string());
  if (!compilerHash)
    return compilerHash.error();
  // The compiler and the schedules it would take from the tuning database, in one hash
  // of the same length (removeOtherCompilersArtifacts matches it).
  std::string identity = *compilerHash + "|" + tuningDatabaseState();
  char digest[17];
  std::snprintf(digest, sizeof digest, "%016llx",
                static_cast<unsigned long long>(XXH3_64bits(identity.data(), identity.size())));
  compilerHash = std::string(digest);
  fs::path cache = cacheDir.empty() ? kilnCacheDirectory("models") : cacheDir;
  fs::create_directories(cache, ec);
  fs::path artifact = cache / (name + "-" + *compilerHash + ".kiln");
  // An artifact enters the cache only by rename of a complete file, so one that is
  // there and loads can be used without the lock.
  if (fs::exists(artifact) && unusableBecause(artifact.string(), runtime).empty())
    return CachedArtifact{artifact.string()};

  // One compile per artifact at a time: a second process waits here, then finds the
  // first one's artifact. The lock is advisory and released when the descriptor closes
  // (or the process dies); the lock file itself stays.
  std::string lockPath = artifact.string() + ".lock";
  int lock = open(lockPath.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (lock < 0)
    return Error{"cannot open the cache lock " + lockPath + ": " + std::strerror(errno)};
  std::unique_ptr<int, void (*)(int *)> unlockOnReturn(&lock, [](int *fd) { close(*fd); });
  while (flock(lock, LOCK_EX) != 0)
    if (errno != EINTR)
      return Error{"cannot lock " + lockPath + ": " + std::strerror(errno)};
  if (fs::exists(artifact)) {
    std::string why = unusableBecause(artifact.string(), runtime);
    if (why.empty())
      return CachedArtifact{artifact.string()};
    // Replaced by the rename below, never deleted first: a process that found it
    // usable before it broke keeps its own mapping.
    std::fprintf(stderr, "%s: cannot use the cached artifact (%s); compiling it again\n",
                 tool.c_str(), why.c_str());
  }
  std::fprintf(stderr, "%s: compiling %s (once; cached as %s)\n", tool.c_str(), what.c_str(),
               artifact.c_str());
  auto start = std::chrono::steady_clock::now();
  std::string partial = artifact.string() + "." + std::to_string(getpid()) + ".partial";
  Expected<bool> compiled = runCompiler(compiler, what, arguments, partial);
  if (!compiled) {
    fs::remove(partial, ec);
    return compiled.error();
  }
  fs::rename(partial, artifact, ec);
  if (ec) {
    fs::remove(partial, ec);
    return Error{"cannot move the compiled model into the cache: " + ec.message()};
  }
  removeOtherCompilersArtifacts(cache, name, compilerHash->size(), artifact);
  return CachedArtifact{
      artifact.string(),
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count()};
}

} // namespace kiln::tools
