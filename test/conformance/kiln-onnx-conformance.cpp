// kiln-onnx-conformance: compiles every ONNX backend node test with kiln-compile, runs
// its data sets through the runtime in a child process, and reports pass / fail /
// unsupported per test, totals, a JSON summary and a check against a baseline.
#include "CompileCache.h"
#include "HostFiles.h"
#include "NumberOption.h"
#include "DataSetCheck.h"
#include "Subprocess.h"
#include "TestResult.h"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fcntl.h>
#include <fstream>
#include <limits>
#include <optional>
#include <poll.h>
#include <regex>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

using namespace kiln::conformance;
using kiln::tools::Error;
using kiln::tools::Expected;
using kiln::tools::MaybeError;
using kiln::tools::parseCount;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

constexpr int kExitSuccess = 0;
constexpr int kExitBelowBaseline = 1;
constexpr int kExitError = 2;
// The child's compile step enforces the compile timeout itself; the runner's own limit
// for that phase only catches a child stuck elsewhere (hashing, the cache's disk).
constexpr std::chrono::seconds kCompilePhaseSlack{30};
// The child's messages on its result pipe, one per line.
constexpr char kCompiledMessage[] = "compiled";

struct ConformanceOptions {
  std::string suiteDirectory = KILN_ONNX_NODE_TESTS;
  std::string compilerPath = KILN_COMPILE_PATH;
  std::string filter;
  int jobs = 2;
  std::string jsonPath;
  std::string baselinePath;
  std::string cacheDirectory = kiln::tools::kilnCacheDirectory("conformance");
  int compileTimeoutSeconds = 300;
  int runTimeoutSeconds = 60;
  // Kernel threads per test: the tests themselves run in parallel (-j).
  int threads = 1;
  bool help = false;
};

std::string usage() {
  return "kiln-onnx-conformance: runs the ONNX backend node tests through kiln\n"
         "\n"
         "usage: kiln-onnx-conformance [options]\n"
         "\n"
         "  --suite DIR            test directories (default " KILN_ONNX_NODE_TESTS ")\n"
         "  --compiler PATH        kiln-compile to use (default " KILN_COMPILE_PATH ")\n"
         "  --filter REGEX         run only tests whose name contains a match\n"
         "  -j N                   tests run in parallel (default 2)\n"
         "  --json PATH            write a JSON summary (status and reason per test, totals)\n"
         "  --baseline FILE        fail when fewer tests pass than FILE's number\n"
         "  --cache-dir DIR        compiled artifacts, keyed by model and compiler hashes\n"
         "                         (default $XDG_CACHE_HOME/kiln/conformance or\n"
         "                         ~/.cache/kiln/conformance)\n"
         "  --compile-timeout S    per-test compile limit in seconds (default 300)\n"
         "  --run-timeout S        per-test limit for running the data sets (default 60)\n"
         "  --threads N            kernel threads per test (default 1)\n"
         "\n"
         "A compile error that says something is unsupported makes a test 'unsupported';\n"
         "any other compile error, a crash, a timeout or a wrong result makes it 'fail'.\n"
         "Floats match within rtol 1e-3, atol 1e-5; integers and bools exactly.\n"
         "Exit status: 0 done, 1 fewer passes than the baseline, 2 a usage or setup error.\n";
}

Expected<ConformanceOptions> parseOptions(int argc, char **argv) {
  ConformanceOptions options;
  for (int i = 1; i < argc; ++i) {
    std::string option = argv[i];
    if (option == "--help" || option == "-h") {
      options.help = true;
      return options;
    }
    std::string value;
    size_t equals = option.find('=');
    if (equals != std::string::npos) {
      value = option.substr(equals + 1);
      option = option.substr(0, equals);
    } else if (option.size() > 2 && option.compare(0, 2, "-j") == 0) {
      value = option.substr(2); // -j2
      option = "-j";
    } else if (i + 1 < argc) {
      value = argv[++i];
    } else {
      return Error{option + " needs a value (see --help)"};
    }

    std::string *text = option == "--suite"       ? &options.suiteDirectory
                        : option == "--compiler"  ? &options.compilerPath
                        : option == "--filter"    ? &options.filter
                        : option == "--json"      ? &options.jsonPath
                        : option == "--baseline"  ? &options.baselinePath
                        : option == "--cache-dir" ? &options.cacheDirectory
                                                  : nullptr;
    if (text) {
      *text = value;
      continue;
    }
    int *count = option == "-j" || option == "--jobs" ? &options.jobs
                 : option == "--compile-timeout"      ? &options.compileTimeoutSeconds
                 : option == "--run-timeout"          ? &options.runTimeoutSeconds
                 : option == "--threads"              ? &options.threads
                                                      : nullptr;
    if (!count)
      return Error{"unknown option '" + option + "' (see --help)"};
    Expected<int> parsed = parseCount(option, value, option == "--threads" ? 0 : 1);
    if (!parsed)
      return parsed.error();
    *count = *parsed;
  }
  return options;
}

// Test directories (those holding a model.onnx) whose names match `filter`, sorted. The
// filter is a regular expression; one that does not parse is used as a plain substring.
Expected<std::vector<std::string>> findTests(const std::string &suite, const std::string &filter,
                                             size_t &suiteSize) {
  std::optional<std::regex> pattern;
  try {
    pattern.emplace(filter);
  } catch (const std::regex_error &) {
  }
  std::vector<std::string> names;
  std::error_code error;
  suiteSize = 0;
  for (const fs::directory_entry &entry : fs::directory_iterator(suite, error)) {
    std::error_code ignored;
    if (!fs::exists(entry.path() / "model.onnx", ignored))
      continue;
    ++suiteSize;
    std::string name = entry.path().filename().string();
    bool selected = pattern ? std::regex_search(name, *pattern)
                            : name.find(filter) != std::string::npos;
    if (selected)
      names.push_back(name);
  }
  if (error)
    return Error{"cannot list the test suite '" + suite + "': " + error.message()};
  if (suiteSize == 0)
    return Error{"'" + suite + "' holds no test directories (*/model.onnx)"};
  std::sort(names.begin(), names.end());
  return names;
}

void writeMessage(int fd, std::string message) {
  while (!message.empty()) {
    ssize_t n = write(fd, message.data(), message.size());
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return;
    message.erase(0, static_cast<size_t>(n));
  }
}

// The body of a test's child process: compile (or take the cached artifact), announce
// it, check the data sets, report "STATUS\tREASON".
[[noreturn]] void runTestInChild(int resultFd, const CompileCache &cache,
                                 const std::string &testDirectory, int threads) {
  CompileOutcome compiled = cache.compile(testDirectory + "/model.onnx");
  TestResult result = compiled.failure;
  if (compiled.artifactPath) {
    writeMessage(resultFd, std::string(kCompiledMessage) + "\n");
    result = checkDataSets(*compiled.artifactPath, testDirectory, threads);
  }
  std::replace(result.reason.begin(), result.reason.end(), '\n', ' ');
  std::replace(result.reason.begin(), result.reason.end(), '\t', ' ');
  writeMessage(resultFd, std::string(testStatusName(result.status)) + "\t" + result.reason + "\n");
  _exit(0);
}

// The child's final "STATUS\tREASON" line, if it got that far.
std::optional<TestResult> parseResultMessage(const std::string &messages) {
  if (messages.empty() || messages.back() != '\n')
    return std::nullopt;
  size_t previous = messages.rfind('\n', messages.size() - 2);
  size_t start = previous == std::string::npos ? 0 : previous + 1;
  std::string line = messages.substr(start, messages.size() - 1 - start);
  size_t tab = line.find('\t');
  if (tab == std::string::npos)
    return std::nullopt;
  std::string status = line.substr(0, tab), reason = line.substr(tab + 1);
  for (TestStatus candidate : {TestStatus::Pass, TestStatus::Fail, TestStatus::Unsupported})
    if (status == testStatusName(candidate))
      return TestResult{candidate, reason};
  return std::nullopt;
}

struct RunningTest {
  size_t test;
  pid_t pid;
  int resultFd;
  std::string messages;
  bool compiled = false;
  Clock::time_point deadline;
};

// Runs every test in a child process, at most `jobs` at a time, calling `report` as
// each finishes. The runner stays single-threaded so that forking is safe.
class TestScheduler {
public:
  TestScheduler(const ConformanceOptions &options, const CompileCache &cache,
                const std::vector<std::string> &tests)
      : options(options), cache(cache), tests(tests), results(tests.size()) {}

  Expected<std::vector<TestResult>> run() {
    size_t next = 0, finished = 0;
    while (next < tests.size() || !running.empty()) {
      while (running.size() < static_cast<size_t>(options.jobs) && next < tests.size())
        if (MaybeError error = start(next++))
          return *error;

      std::vector<pollfd> fds;
      Clock::time_point earliest = Clock::time_point::max();
      for (const RunningTest &test : running) {
        fds.push_back({test.resultFd, POLLIN, 0});
        earliest = std::min(earliest, test.deadline);
      }
      auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(earliest - Clock::now());
      int timeoutMs = static_cast<int>(std::clamp<int64_t>(wait.count(), 0, 1000));
      if (poll(fds.data(), fds.size(), timeoutMs) < 0 && errno != EINTR)
        return Error{std::string("poll failed: ") + std::strerror(errno)};

      for (size_t i = running.size(); i-- > 0;) {
        std::optional<TestResult> result = advance(running[i], fds[i].revents != 0);
        if (!result)
          continue;
        results[running[i].test] = *result;
        report(++finished, running[i].test, *result);
        running.erase(running.begin() + static_cast<std::ptrdiff_t>(i));
      }
    }
    return results;
  }

private:
  MaybeError start(size_t test) {
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0)
      return Error{std::string("cannot create a pipe: ") + std::strerror(errno)};
    std::fflush(stdout); // the child must not inherit (and never flushes) pending output
    pid_t pid = fork();
    if (pid < 0)
      return Error{std::string("cannot fork: ") + std::strerror(errno)};
    if (pid == 0) {
      // Its own process group, so a timeout kills everything the test started.
      setpgid(0, 0);
      close(fds[0]);
      runTestInChild(fds[1], cache, options.suiteDirectory + "/" + tests[test], options.threads);
    }
    setpgid(pid, pid);
    close(fds[1]);
    running.push_back({test, pid, fds[0], "", false,
                       Clock::now() + std::chrono::seconds(options.compileTimeoutSeconds) +
                           kCompilePhaseSlack});
    return std::nullopt;
  }

  // Reads what the child sent; returns its result once it has exited or timed out.
  std::optional<TestResult> advance(RunningTest &test, bool readable) {
    bool ended = false;
    if (readable) {
      char buffer[4096];
      ssize_t n = read(test.resultFd, buffer, sizeof buffer);
      if (n > 0)
        test.messages.append(buffer, static_cast<size_t>(n));
      else if (n == 0 || errno != EINTR)
        ended = true;
      if (!test.compiled &&
          test.messages.find(std::string(kCompiledMessage) + "\n") != std::string::npos) {
        test.compiled = true;
        test.deadline = Clock::now() + std::chrono::seconds(options.runTimeoutSeconds);
      }
    }
    bool timedOut = !ended && Clock::now() >= test.deadline;
    if (!ended && !timedOut)
      return std::nullopt;
    if (timedOut)
      kill(-test.pid, SIGKILL);
    close(test.resultFd);
    int status = 0;
    while (waitpid(test.pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (timedOut && test.compiled)
      return TestResult{TestStatus::Fail, "timed out after " +
                                              std::to_string(options.runTimeoutSeconds) +
                                              " s running the data sets"};
    if (timedOut)
      return TestResult{TestStatus::Fail, "timed out compiling"};
    if (std::optional<TestResult> result = parseResultMessage(test.messages))
      return result;
    if (WIFSIGNALED(status))
      return TestResult{TestStatus::Fail, "crashed: " + signalName(WTERMSIG(status))};
    return TestResult{TestStatus::Fail, "the test process exited with status " +
                                            std::to_string(WEXITSTATUS(status)) +
                                            " without a result"};
  }

  void report(size_t finished, size_t test, const TestResult &result) {
    std::printf("[%zu/%zu] %s %s%s%s\n", finished, tests.size(), testStatusName(result.status),
                tests[test].c_str(), result.reason.empty() ? "" : ": ", result.reason.c_str());
    std::fflush(stdout);
  }

  const ConformanceOptions &options;
  const CompileCache &cache;
  const std::vector<std::string> &tests;
  std::vector<TestResult> results;
  std::vector<RunningTest> running;
};

std::string jsonString(const std::string &text) {
  std::string quoted = "\"";
  for (unsigned char c : text) {
    if (c == '"' || c == '\\') {
      quoted += '\\';
      quoted += static_cast<char>(c);
    } else if (c < 0x20) {
      char escape[8];
      std::snprintf(escape, sizeof escape, "\\u%04x", c);
      quoted += escape;
    } else {
      quoted += static_cast<char>(c);
    }
  }
  return quoted + "\"";
}

struct Totals {
  size_t pass = 0, fail = 0, unsupported = 0;
};

MaybeError writeJson(const std::string &path, const ConformanceOptions &options,
                     const std::vector<std::string> &tests,
                     const std::vector<TestResult> &results, const Totals &totals,
                     size_t suiteSize, double wallSeconds) {
  std::ofstream file(path, std::ios::trunc);
  if (!file)
    return Error{"cannot create '" + path + "': " + std::strerror(errno)};
  file << "{\n  \"suite\": " << jsonString(options.suiteDirectory)
       << ",\n  \"compiler\": " << jsonString(options.compilerPath)
       << ",\n  \"filter\": " << jsonString(options.filter) << ",\n  \"totals\": {\"tests\": "
       << tests.size() << ", \"suite_tests\": " << suiteSize << ", \"pass\": " << totals.pass
       << ", \"fail\": " << totals.fail << ", \"unsupported\": " << totals.unsupported
       << "},\n  \"wall_seconds\": " << wallSeconds << ",\n  \"tests\": [";
  for (size_t i = 0; i < tests.size(); ++i)
    file << (i ? ",\n" : "\n") << "    {\"name\": " << jsonString(tests[i])
         << ", \"status\": " << jsonString(testStatusName(results[i].status))
         << ", \"reason\": " << jsonString(results[i].reason) << "}";
  file << "\n  ]\n}\n";
  file.close();
  if (!file)
    return Error{"cannot write '" + path + "'"};
  return std::nullopt;
}

// The baseline file holds the minimum pass count; '#' lines are comments.
Expected<size_t> readBaseline(const std::string &path) {
  std::ifstream file(path);
  if (!file)
    return Error{"cannot open the baseline '" + path + "': " + std::strerror(errno)};
  std::string line;
  while (std::getline(file, line)) {
    size_t start = line.find_first_not_of(" \t\r");
    if (start == std::string::npos || line[start] == '#')
      continue;
    std::string number = line.substr(start, line.find_last_not_of(" \t\r") + 1 - start);
    Expected<int> count = parseCount("the baseline '" + path + "'", number, 0);
    if (!count)
      return count.error();
    return static_cast<size_t>(*count);
  }
  return Error{"the baseline '" + path + "' holds no pass count"};
}

Expected<int> runConformance(const ConformanceOptions &options) {
  auto startTime = Clock::now();
  size_t suiteSize = 0;
  Expected<std::vector<std::string>> tests =
      findTests(options.suiteDirectory, options.filter, suiteSize);
  if (!tests)
    return tests.error();
  std::optional<size_t> baseline;
  if (!options.baselinePath.empty()) {
    Expected<size_t> count = readBaseline(options.baselinePath);
    if (!count)
      return count.error();
    baseline = *count;
  }
  Expected<std::string> compilerHash = kiln::tools::hashFile(options.compilerPath);
  if (!compilerHash)
    return Error{"kiln-compile: " + compilerHash.error().message +
                 " (build it, e.g. ninja kiln-compile, or pass --compiler)"};
  CompileCache cache(options.cacheDirectory, options.compilerPath, *compilerHash,
                     std::chrono::seconds(options.compileTimeoutSeconds));
  if (MaybeError error = cache.prepare())
    return *error;

  std::printf("running %zu of %zu ONNX node tests from %s with %s, %d at a time\n",
              tests->size(), suiteSize, options.suiteDirectory.c_str(),
              options.compilerPath.c_str(), options.jobs);
  Expected<std::vector<TestResult>> results = TestScheduler(options, cache, *tests).run();
  if (!results)
    return results.error();

  Totals totals;
  for (const TestResult &result : *results)
    ++(result.status == TestStatus::Pass   ? totals.pass
       : result.status == TestStatus::Fail ? totals.fail
                                           : totals.unsupported);
  double wallSeconds = std::chrono::duration<double>(Clock::now() - startTime).count();
  std::printf("totals: %zu pass, %zu fail, %zu unsupported, of %zu tests", totals.pass,
              totals.fail, totals.unsupported, tests->size());
  if (tests->size() != suiteSize)
    std::printf(" (selected from %zu)", suiteSize);
  std::printf("; wall time %.1f s\n", wallSeconds);

  if (!options.jsonPath.empty())
    if (MaybeError error = writeJson(options.jsonPath, options, *tests, *results, totals,
                                     suiteSize, wallSeconds))
      return *error;
  if (!baseline)
    return kExitSuccess;
  if (totals.pass < *baseline) {
    std::printf("FAILED: %zu tests pass, fewer than the baseline of %zu in %s\n", totals.pass,
                *baseline, options.baselinePath.c_str());
    return kExitBelowBaseline;
  }
  if (totals.pass > *baseline)
    std::printf("%zu tests pass, more than the baseline of %zu: raise %s to %zu to keep them "
                "passing\n",
                totals.pass, *baseline, options.baselinePath.c_str(), totals.pass);
  return kExitSuccess;
}

} // namespace

int main(int argc, char **argv) {
  Expected<ConformanceOptions> options = parseOptions(argc, argv);
  if (!options) {
    std::fprintf(stderr, "kiln-onnx-conformance: error: %s\n", options.error().message.c_str());
    return kExitError;
  }
  if (options->help) {
    std::fputs(usage().c_str(), stdout);
    return kExitSuccess;
  }
  Expected<int> exitCode = runConformance(*options);
  if (!exitCode) {
    std::fflush(stdout);
    std::fprintf(stderr, "kiln-onnx-conformance: error: %s\n", exitCode.error().message.c_str());
    return kExitError;
  }
  return *exitCode;
}
