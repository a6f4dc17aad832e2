// kiln-compile as a subprocess, its outcome classified and cached on disk.
#include "CompileCache.h"

#include "HostFiles.h"

#include "Subprocess.h"

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <regex>
#include <sstream>
#include <system_error>
#include <unistd.h>


namespace kiln::conformance {

namespace {

namespace fs = std::filesystem;

// How the frontend and the backends word "kiln does not handle this (yet)": an op, a
// dtype, an attribute value or a feature. Any other compile error is a failure.
bool saysUnsupported(const std::string &diagnostic) {
  static const std::regex unsupported("unsupported|not supported|does not support",
                                      std::regex::icase);
  return std::regex_search(diagnostic, unsupported);
}

// The message of the first error diagnostic ("file:line:col: error: MESSAGE"), else the
// first non-empty line of the output.
std::string firstDiagnostic(const std::string &output) {
  std::istringstream lines(output);
  std::string line, firstLine;
  while (std::getline(lines, line)) {
    size_t error = line.find("error: ");
    if (error != std::string::npos)
      return line.substr(error + 7);
    if (firstLine.empty() && line.find_first_not_of(" \t\r") != std::string::npos)
      firstLine = line;
  }
  return firstLine.empty() ? "(no diagnostic)" : firstLine;
}

// Where a crashed kiln-compile was, from LLVM's stack dump: the innermost frame in
// kiln's own code, as "kiln::Foo::bar (File.cpp:12)"; empty when there is none.
std::string crashLocation(const std::string &output) {
  static const std::regex kilnFrame(
      R"(#\d+ 0x[0-9a-f]+ (kiln::[^(]*)\(.*[ /]([^ /]+:\d+)(:\d+)?\r?$)");
  std::istringstream lines(output);
  std::string line;
  std::smatch match;
  while (std::getline(lines, line))
    if (std::regex_search(line, match, kilnFrame))
      return match[1].str() + " (" + match[2].str() + ")";
  return "";
}

// A failure's cache file: its status name on the first line, the reason on the second.
std::optional<TestResult> readCachedFailure(const std::string &path) {
  std::ifstream file(path);
  std::string status, reason;
  if (!file || !std::getline(file, status) || !std::getline(file, reason))
    return std::nullopt;
  if (status == testStatusName(TestStatus::Unsupported))
    return TestResult{TestStatus::Unsupported, reason};
  if (status == testStatusName(TestStatus::Fail))
    return TestResult{TestStatus::Fail, reason};
  return std::nullopt;
}

// Writes through a process-unique temporary and renames, so concurrent runners never
// see a partial file.
void writeCachedFailure(const std::string &path, const TestResult &failure) {
  std::string temporary = path + "." + std::to_string(getpid()) + ".tmp";
  {
    std::ofstream file(temporary, std::ios::trunc);
    file << testStatusName(failure.status) << "\n" << failure.reason << "\n";
    if (!file)
      return; // an unwritable cache only costs time
  }
  std::error_code error;
  fs::rename(temporary, path, error);
}

} // namespace

CompileCache::CompileCache(std::string directory, std::string compilerPath,
                           std::string compilerHash, std::chrono::milliseconds timeout)
    : directory(std::move(directory)), compilerPath(std::move(compilerPath)),
      compilerHash(std::move(compilerHash)), timeout(timeout) {}

tools::MaybeError CompileCache::prepare() const {
  std::error_code error;
  fs::create_directories(directory, error);
  if (error)
    return tools::Error{"cannot create the cache directory '" + directory +
                        "': " + error.message()};
  return std::nullopt;
}

CompileOutcome CompileCache::compile(const std::string &modelPath) const {
  tools::Expected<std::string> modelHash = tools::hashFile(modelPath);
  if (!modelHash)
    return {std::nullopt, {TestStatus::Fail, modelHash.error().message}};
  std::string key = (fs::path(directory) / (*modelHash + "-" + compilerHash)).string();
  std::string artifactPath = key + ".kiln";
  std::string failurePath = key + ".failure";
  std::error_code ignored;
  if (fs::exists(artifactPath, ignored))
    return {artifactPath, {}};
  if (std::optional<TestResult> failure = readCachedFailure(failurePath))
    return {std::nullopt, *failure};

  std::string temporary = key + "." + std::to_string(getpid()) + ".kiln.tmp";
  tools::Expected<ProcessResult> process =
      runProcess({compilerPath, modelPath, "-o", temporary}, timeout);
  if (!process) {
    fs::remove(temporary, ignored);
    return {std::nullopt, {TestStatus::Fail, process.error().message}};
  }

  TestResult failure{TestStatus::Fail, ""};
  bool cacheable = true;
  std::string diagnostic = firstDiagnostic(process->output);
  switch (process->ending) {
  case ProcessResult::Ending::Exited:
    if (process->exitCode == 0) {
      fs::rename(temporary, artifactPath, ignored);
      if (!ignored)
        return {artifactPath, {}};
      failure.reason = "kiln-compile succeeded but its artifact cannot be stored in the "
                       "cache: " + ignored.message();
      cacheable = false;
    } else if (saysUnsupported(diagnostic)) {
      failure = {TestStatus::Unsupported, diagnostic};
    } else {
      failure.reason = "kiln-compile: " + diagnostic;
    }
    break;
  case ProcessResult::Ending::Signaled: {
    failure.reason = "kiln-compile crashed (" + signalName(process->signal) + ")";
    std::string location = crashLocation(process->output);
    if (!location.empty())
      failure.reason += " in " + location;
    else if (process->output.find("error: ") != std::string::npos)
      failure.reason += ": " + diagnostic;
    // SIGKILL comes from outside (the OOM killer, a user), not from the model.
    cacheable = process->signal != SIGKILL;
    break;
  }
  case ProcessResult::Ending::TimedOut:
    failure.reason = "kiln-compile timed out after " +
                     std::to_string(timeout.count() / 1000) + " s";
    cacheable = false;
    break;
  }
  fs::remove(temporary, ignored);
  if (cacheable)
    writeCachedFailure(failurePath, failure);
  return {std::nullopt, failure};
}

} // namespace kiln::conformance
