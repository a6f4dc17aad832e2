// Forged artifacts must fail cleanly: flips every bit of a real artifact's header,
// section table and program section, one at a time, recomputes the checksums the way
// the writer does (TestArtifacts.h's reseal), then loads each variant and runs each of
// its entry points on zero inputs in a child process. A variant must load and run, or
// fail with a status carrying a message; a signal, a hang or a silent failure fails
// the test. (Bits of the code object are out of scope: it is machine code the runtime
// runs by design once its checksum matches.)
//
//   kiln-artifact-bitflip-test MODEL.kiln [--bit N | --stride N]
//
// --bit N runs variant N in this process, printing its outcome (for a debugger);
// --stride N tries every Nth variant only (for large programs).
#include "ArtifactFormat.h"
#include "TestArtifacts.h"
#include "kiln/runtime.h"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

using namespace kiln::artifact;

namespace {

// A child's exit status: ran, or failed cleanly; anything else is a bug.
constexpr int kRan = 0, kCleanError = 3, kSilentError = 4;
// A variant that runs longer than this is reported as hung (the model runs in ms).
constexpr unsigned kChildSeconds = 20;

// Loads `file` and runs every entry point once on zero inputs.
int loadAndRun(const std::vector<uint8_t> &file, bool verbose) {
  auto failed = [&](kiln_status status) {
    const char *message = kiln_status_message(status);
    bool silent = message[0] == '\0';
    if (verbose)
      std::printf("error %d: %s\n", int(kiln_status_code(status)), message);
    kiln_status_free(status);
    return silent ? kSilentError : kCleanError;
  };
  kiln_runtime_options options;
  kiln_runtime_options_init(&options);
  options.num_threads = 1;
  kiln_runtime *runtime = nullptr;
  if (kiln_status status = kiln_runtime_create(&options, &runtime))
    return failed(status);
  // Read-only, like the file mapping kiln_module_load_file makes: a kernel writing
  // where it must not (a weight) faults here too.
  void *bytes = mmap(nullptr, file.size(), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                     -1, 0);
  if (bytes == MAP_FAILED)
    return kSilentError;
  std::memcpy(bytes, file.data(), file.size());
  mprotect(bytes, file.size(), PROT_READ);
  kiln_module *module = nullptr;
  if (kiln_status status =
          kiln_module_load_memory(runtime, bytes, file.size(), KILN_LOAD_BORROW, &module))
    return failed(status);
  for (size_t e = 0; e < kiln_module_entry_point_count(module); ++e) {
    kiln_session *session = nullptr;
    if (kiln_status status = kiln_session_create(module, e, &session))
      return failed(status);
    for (size_t i = 0; i < kiln_module_input_count(module, e); ++i) {
      kiln_tensor_info info;
      if (kiln_status status = kiln_module_input_info(module, e, i, &info))
        return failed(status);
      std::vector<uint8_t> zeros(info.byte_size);
      if (kiln_status status = kiln_session_set_input(session, i, zeros.data(), zeros.size()))
        return failed(status);
    }
    if (kiln_status status = kiln_session_run(session))
      return failed(status);
    for (size_t o = 0; o < kiln_module_output_count(module, e); ++o) {
      const void *data;
      size_t size;
      if (kiln_status status = kiln_session_output(session, o, &data, &size))
        return failed(status);
    }
    kiln_session_release(session);
  }
  if (verbose)
    std::printf("ran\n");
  kiln_module_release(module);
  kiln_runtime_release(runtime);
  munmap(bytes, file.size());
  return kRan;
}

// Bits 0 .. 8 * tableEnd - 1 are the header and section table; the program section's
// bits follow.
struct Layout {
  uint64_t tableEnd = 0, programOffset = 0, programSize = 0;
  uint64_t bits() const { return 8 * (tableEnd + programSize); }
  uint64_t byteOf(uint64_t bit) const {
    uint64_t byte = bit / 8;
    return byte < tableEnd ? byte : programOffset + (byte - tableEnd);
  }
};

bool findLayout(const std::vector<uint8_t> &file, Layout &layout) {
  FileHeader header;
  if (file.size() < sizeof header)
    return false;
  std::memcpy(&header, file.data(), sizeof header);
  layout.tableEnd = sizeof header + uint64_t(header.section_count) * sizeof(SectionEntry);
  if (layout.tableEnd > file.size())
    return false;
  for (uint32_t i = 0; i < header.section_count; ++i) {
    SectionEntry entry;
    std::memcpy(&entry, file.data() + sizeof header + i * sizeof entry, sizeof entry);
    if (entry.kind == uint32_t(SectionKind::Program)) {
      layout.programOffset = entry.offset;
      layout.programSize = entry.size;
      return entry.offset <= file.size() && entry.size <= file.size() - entry.offset;
    }
  }
  return false;
}

std::vector<uint8_t> variant(const std::vector<uint8_t> &file, const Layout &layout,
                             uint64_t bit) {
  std::vector<uint8_t> forged = file;
  forged[layout.byteOf(bit)] ^= uint8_t(1u << (bit % 8));
  kiln::test::reseal(forged);
  return forged;
}

} // namespace

int main(int argc, char **argv) {
  bool one = argc == 4 && std::strcmp(argv[2], "--bit") == 0;
  bool strided = argc == 4 && std::strcmp(argv[2], "--stride") == 0;
  uint64_t number = argc == 4 ? std::strtoull(argv[3], nullptr, 0) : 1;
  if ((argc != 2 && !one && !strided) || (strided && number == 0)) {
    std::fprintf(stderr, "usage: %s MODEL.kiln [--bit N | --stride N]\n", argv[0]);
    return 2;
  }
  std::vector<uint8_t> file = kiln::test::readFile(argv[1]);
  Layout layout;
  if (!findLayout(file, layout)) {
    std::fprintf(stderr, "%s: %s is not an artifact with a program section\n", argv[0],
                 argv[1]);
    return 2;
  }
  if (loadAndRun(file, false) != kRan) {
    std::fprintf(stderr, "%s: the unmodified artifact does not run:\n", argv[0]);
    loadAndRun(file, true);
    return 1;
  }
  if (one) {
    if (number >= layout.bits()) {
      std::fprintf(stderr, "%s: there are %llu variants\n", argv[0],
                   (unsigned long long)layout.bits());
      return 2;
    }
    return loadAndRun(variant(file, layout, number), true);
  }
  uint64_t stride = number;

  std::fflush(stdout);
  uint64_t ran = 0, errors = 0, crashed = 0;
  for (uint64_t bit = 0; bit < layout.bits(); bit += stride) {
    std::vector<uint8_t> forged = variant(file, layout, bit);
    pid_t child = fork();
    if (child < 0) {
      std::perror("fork");
      return 1;
    }
    if (child == 0) {
      alarm(kChildSeconds);
      // Halide's own messages for failed kernel checks would flood the log.
      if (!freopen("/dev/null", "w", stderr))
        _exit(kSilentError);
      _exit(loadAndRun(forged, false));
    }
    int status = 0;
    while (waitpid(child, &status, 0) < 0 && errno == EINTR)
      ;
    if (WIFEXITED(status) && WEXITSTATUS(status) == kRan) {
      ++ran;
    } else if (WIFEXITED(status) && WEXITSTATUS(status) == kCleanError) {
      ++errors;
    } else {
      ++crashed;
      uint64_t byte = layout.byteOf(bit);
      std::printf("variant %llu (byte %llu bit %llu): %s %d\n", (unsigned long long)bit,
                  (unsigned long long)byte, (unsigned long long)(bit % 8),
                  WIFSIGNALED(status) ? "signal" : "exit status",
                  WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
    }
  }
  std::printf("%llu variants (every %llu of %llu header and section table bits and %llu "
              "program bits): %llu clean errors, %llu ran, %llu crashed, hung or failed "
              "silently\n",
              (unsigned long long)(ran + errors + crashed), (unsigned long long)stride,
              (unsigned long long)(8 * layout.tableEnd),
              (unsigned long long)(8 * layout.programSize), (unsigned long long)errors,
              (unsigned long long)ran, (unsigned long long)crashed);
  return crashed ? 1 : 0;
}
