// Subprocesses with timeouts: fork/exec, a pipe for the output, poll() for the deadline.
#include "Subprocess.h"

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

namespace kiln::conformance {

namespace {

// Enough for any diagnostic worth reading; a runaway process cannot exhaust memory.
constexpr size_t kMaxCapturedOutput = 1 << 16;

} // namespace

std::string signalName(int signal) {
  const char *abbreviation = sigabbrev_np(signal);
  return abbreviation ? std::string("SIG") + abbreviation : "signal " + std::to_string(signal);
}

tools::Expected<ProcessResult> runProcess(const std::vector<std::string> &argv,
                                          std::chrono::milliseconds timeout) {
  std::vector<char *> arguments;
  for (const std::string &argument : argv)
    arguments.push_back(const_cast<char *>(argument.c_str()));
  arguments.push_back(nullptr);

  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0)
    return tools::Error{std::string("cannot create a pipe: ") + std::strerror(errno)};
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0) {
    close(fds[0]);
    close(fds[1]);
    return tools::Error{std::string("cannot fork: ") + std::strerror(errno)};
  }
  if (pid == 0) {
    // Its own group, so a timeout reaches what it starts; and it dies with its parent,
    // so a test process killed by the runner leaves nothing running.
    setpgid(0, 0);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
      _exit(127);
    int devNull = open("/dev/null", O_RDONLY);
    dup2(devNull, STDIN_FILENO);
    dup2(fds[1], STDOUT_FILENO);
    dup2(fds[1], STDERR_FILENO);
    execv(arguments[0], arguments.data());
    std::string message = "cannot execute " + argv[0] + ": " + std::strerror(errno) + "\n";
    ssize_t ignored = write(STDERR_FILENO, message.data(), message.size());
    (void)ignored;
    _exit(127);
  }
  setpgid(pid, pid);
  close(fds[1]);

  ProcessResult result;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  bool timedOut = false;
  while (true) {
    auto remaining = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (remaining.count() <= 0) {
      timedOut = true;
      break;
    }
    pollfd readable{fds[0], POLLIN, 0};
    int ready = poll(&readable, 1, static_cast<int>(remaining.count()));
    if (ready < 0 && errno == EINTR)
      continue;
    if (ready == 0)
      continue; // the deadline is checked at the top
    char buffer[4096];
    ssize_t n = read(fds[0], buffer, sizeof buffer);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      break; // end of output: the process (and any child holding the pipe) is done
    size_t room = kMaxCapturedOutput - std::min(kMaxCapturedOutput, result.output.size());
    result.output.append(buffer, std::min(room, static_cast<size_t>(n)));
  }
  close(fds[0]);
  if (timedOut)
    kill(-pid, SIGKILL);

  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (timedOut)
    result.ending = ProcessResult::Ending::TimedOut;
  else if (WIFSIGNALED(status)) {
    result.ending = ProcessResult::Ending::Signaled;
    result.signal = WTERMSIG(status);
  } else {
    result.exitCode = WEXITSTATUS(status);
  }
  return result;
}

} // namespace kiln::conformance
