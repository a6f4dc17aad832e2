// --profile for the host tools: sessions' dispatch timings read through the C API, a
// per-kernel table per session, and a Chrome trace (JSON) that Perfetto and
// chrome://tracing open.
#ifndef KILN_TOOLS_PROFILEREPORT_H
#define KILN_TOOLS_PROFILEREPORT_H

#include "Expected.h"
#include "kiln/runtime.h"

#include <cstdint>
#include <string>
#include <vector>

namespace kiln::tools {

// CLOCK_MONOTONIC in nanoseconds: the clock of the runtime's trace events.
uint64_t monotonicNanoseconds();

// Switches profiling on for `session`, keeping every trace event.
MaybeError startProfiling(kiln_session *session);

class ProfileReport {
public:
  // Reads what `session` recorded; `track` names it in the table and the trace
  // ("prefill", "decode").
  MaybeError addSession(const kiln_session *session, const std::string &track);
  // A span the tool timed itself (monotonicNanoseconds), drawn on `track` above the
  // kernels it contains: a run, a token.
  void addSpan(const std::string &track, const std::string &name, uint64_t startNs,
               uint64_t endNs);
  // Marks `track` as the session of `artifact`, run interleaved with the model's: the
  // trace says so in the track's `interleaved` argument, which tools read (kiln-tune)
  // rather than the display name.
  void markInterleaved(const std::string &track, const std::string &artifact) {
    this->track(track).interleaved = artifact;
  }

  // For each session: runs and time inside and between kernels, the cost of the
  // shortest dispatches, and one row per kernel (what it computes, where, dispatches,
  // calls, total and mean time, share, GB/s, GFLOP/s), slowest first.
  std::string table() const;
  // Chrome's trace event format, one track per session, times in microseconds.
  MaybeError writeChromeTrace(const std::string &path, const std::string &process) const;

private:
  // A kiln_dispatch_profile with its strings copied (the report may outlive the module).
  struct Dispatch {
    std::string kernel, location, summary;
    uint64_t flops, bytes, calls, totalNs, minNs;
  };
  struct Span {
    std::string name;
    uint64_t startNs, endNs;
  };
  struct Track {
    std::string name;
    std::string interleaved; // markInterleaved's artifact, or empty
    kiln_profile_summary summary;
    std::vector<Dispatch> dispatches;
    std::vector<kiln_trace_event> events;
    std::vector<Span> spans;
  };
  Track &track(const std::string &name);
  std::vector<Track> tracks;
};

} // namespace kiln::tools

#endif // KILN_TOOLS_PROFILEREPORT_H
