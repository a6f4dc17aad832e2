// Running a program as a subprocess with a timeout, capturing its stdout and stderr.
#ifndef KILN_CONFORMANCE_SUBPROCESS_H
#define KILN_CONFORMANCE_SUBPROCESS_H

#include "Expected.h"

#include <chrono>
#include <string>
#include <vector>

namespace kiln::conformance {

struct ProcessResult {
  enum class Ending { Exited, Signaled, TimedOut };
  Ending ending = Ending::Exited;
  int exitCode = 0; // when Exited
  int signal = 0;   // when Signaled
  std::string output; // stdout and stderr interleaved, cut after kMaxCapturedOutput
};

// "SIGSEGV", "SIGABRT", ...
std::string signalName(int signal);

// Runs `argv` (argv[0] is a path) in its own process group, with stdin from /dev/null;
// it is killed if the calling process dies.
// At `timeout` the whole group is killed. Only failing to start is an error.
tools::Expected<ProcessResult> runProcess(const std::vector<std::string> &argv,
                                          std::chrono::milliseconds timeout);

} // namespace kiln::conformance

#endif // KILN_CONFORMANCE_SUBPROCESS_H
