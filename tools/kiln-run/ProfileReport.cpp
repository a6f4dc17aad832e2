// The profile table and Chrome trace of kiln-run and kiln-generate --profile.
#include "ProfileReport.h"

#include "RuntimeHandles.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdarg>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <map>

namespace kiln::tools {

namespace {

std::string format(const char *pattern, ...) __attribute__((format(printf, 1, 2)));
std::string format(const char *pattern, ...) {
  char text[512];
  va_list args;
  va_start(args, pattern);
  std::vsnprintf(text, sizeof text, pattern, args);
  va_end(args);
  return text;
}

double ms(uint64_t ns) { return double(ns) / 1e6; }
// "850 ns", "12.34 us", "1.235 ms", "2.500 s"
std::string duration(double ns) {
  if (ns < 1e3)
    return format("%.0f ns", ns);
  if (ns < 1e6)
    return format("%.2f us", ns / 1e3);
  if (ns < 1e9)
    return format("%.3f ms", ns / 1e6);
  return format("%.3f s", ns / 1e9);
}
double us(uint64_t ns) { return double(ns) / 1e3; }
double percent(uint64_t part, uint64_t whole) {
  return whole ? 100.0 * double(part) / double(whole) : 0;
}

// `text` + `suffix` in at most `width` bytes ("-" for nothing), cut short with "..".
std::string column(const std::string &text, const std::string &suffix, size_t width) {
  std::string cell = text.empty() ? "-" : text;
  if (cell.size() + suffix.size() > width)
    cell = cell.substr(0, width - suffix.size() - 2) + "..";
  return cell + suffix;
}

} // namespace

uint64_t monotonicNanoseconds() {
  timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  return uint64_t(now.tv_sec) * 1000000000u + uint64_t(now.tv_nsec);
}

MaybeError startProfiling(kiln_session *session) {
  kiln_profile_options options;
  kiln_profile_options_init(&options);
  // A Gemma decode step is ~425 dispatches: 16 M events are ~40 000 tokens.
  options.max_trace_events = size_t(1) << 24;
  return statusError(kiln_session_start_profiling(session, &options),
                     "cannot start profiling");
}

ProfileReport::Track &ProfileReport::track(const std::string &name) {
  for (Track &t : tracks)
    if (t.name == name)
      return t;
  tracks.push_back(Track{name, {}, {}, {}, {}, {}});
  return tracks.back();
}

MaybeError ProfileReport::addSession(const kiln_session *session, const std::string &name) {
  Track &t = track(name);
  if (MaybeError error = statusError(kiln_session_profile_summary(session, &t.summary),
                                     "cannot read the profile of " + name))
    return error;
  for (size_t d = 0; d < t.summary.dispatch_count; ++d) {
    kiln_dispatch_profile profile;
    if (MaybeError error = statusError(kiln_session_dispatch_profile(session, d, &profile),
                                       "cannot read the profile of " + name))
      return error;
    t.dispatches.push_back(Dispatch{profile.kernel, profile.location, profile.summary,
                                    profile.flops, profile.bytes, profile.calls,
                                    profile.total_ns, profile.min_ns});
  }
  size_t count = 0;
  if (MaybeError error = statusError(kiln_session_trace_events(session, nullptr, 0, &count),
                                     "cannot read the trace of " + name))
    return error;
  t.events.resize(count);
  return statusError(kiln_session_trace_events(session, t.events.data(), count, &count),
                     "cannot read the trace of " + name);
}

void ProfileReport::addSpan(const std::string &name, const std::string &span,
                            uint64_t startNs, uint64_t endNs) {
  track(name).spans.push_back(Span{span, startNs, endNs});
}

std::string ProfileReport::table() const {
  std::string out;
  for (const Track &t : tracks) {
    const kiln_profile_summary &s = t.summary;
    uint64_t between = s.run_ns > s.kernel_ns ? s.run_ns - s.kernel_ns : 0;
    uint64_t calls = 0;
    for (const Dispatch &d : t.dispatches)
      calls += d.calls;
    out += format("%s: %llu run%s of %zu dispatches, %s (%s per run)\n", t.name.c_str(),
                  (unsigned long long)s.runs, s.runs == 1 ? "" : "s", s.dispatch_count,
                  duration(double(s.run_ns)).c_str(),
                  duration(s.runs ? double(s.run_ns) / double(s.runs) : 0).c_str());
    out += format("  inside kernels %s (%.1f%%); between kernels %s (%.1f%%, %s per "
                  "dispatch)\n",
                  duration(double(s.kernel_ns)).c_str(), percent(s.kernel_ns, s.run_ns),
                  duration(double(between)).c_str(), percent(between, s.run_ns),
                  duration(calls ? double(between) / double(calls) : 0).c_str());

    // What a launch costs at least: the fastest call, and the shorter half of the
    // dispatches (by mean call), whose time is mostly fixed per-call cost.
    std::vector<const Dispatch *> called;
    for (const Dispatch &d : t.dispatches)
      if (d.calls)
        called.push_back(&d);
    if (!called.empty()) {
      auto mean = [](const Dispatch *d) { return double(d->totalNs) / double(d->calls); };
      std::sort(called.begin(), called.end(),
                [&](const Dispatch *a, const Dispatch *b) { return mean(a) < mean(b); });
      const Dispatch *fastest = *std::min_element(
          called.begin(), called.end(),
          [](const Dispatch *a, const Dispatch *b) { return a->minNs < b->minNs; });
      size_t half = (called.size() + 1) / 2;
      uint64_t halfNs = 0, halfCalls = 0;
      for (size_t i = 0; i < half; ++i) {
        halfNs += called[i]->totalNs;
        halfCalls += called[i]->calls;
      }
      out += format("  shortest calls: the fastest took %s (%s%s%s); the shorter-running "
                    "half of the dispatches (%zu) average %s per call, %.1f%% of kernel "
                    "time\n",
                    duration(double(fastest->minNs)).c_str(), fastest->kernel.c_str(),
                    fastest->location.empty() ? "" : " at ", fastest->location.c_str(), half,
                    duration(double(halfNs) / double(halfCalls)).c_str(),
                    percent(halfNs, s.kernel_ns));
    }
    if (s.dropped_trace_events)
      out += format("  (the trace lacks the last %llu dispatch calls: over the event limit)\n",
                    (unsigned long long)s.dropped_trace_events);

    struct Row {
      std::string kernel, summary;
      std::vector<std::string> locations;
      size_t dispatches = 0;
      uint64_t calls = 0, totalNs = 0;
      double bytes = 0, flops = 0; // summed over calls
    };
    std::map<std::string, Row> rows;
    for (const Dispatch &d : t.dispatches) {
      Row &row = rows[d.kernel];
      row.kernel = d.kernel;
      row.summary = d.summary;
      if (std::find(row.locations.begin(), row.locations.end(), d.location) ==
          row.locations.end())
        row.locations.push_back(d.location);
      ++row.dispatches;
      row.calls += d.calls;
      row.totalNs += d.totalNs;
      row.bytes += double(d.bytes) * double(d.calls);
      row.flops += double(d.flops) * double(d.calls);
    }
    std::vector<const Row *> sorted;
    for (const auto &[name, row] : rows)
      sorted.push_back(&row);
    std::sort(sorted.begin(), sorted.end(), [](const Row *a, const Row *b) {
      return a->totalNs != b->totalNs ? a->totalNs > b->totalNs : a->kernel < b->kernel;
    });
    out += format("  %-10s %-32s %-22s %10s %7s %10s %10s %6s %8s %8s\n", "kernel", "what",
                  "where", "dispatches", "calls", "total ms", "mean us", "share", "GB/s",
                  "GFLOP/s");
    for (const Row *row : sorted) {
      double seconds = double(row->totalNs) / 1e9;
      std::string gbs = seconds > 0 ? format("%.2f", row->bytes / seconds / 1e9) : "-";
      std::string gflops =
          seconds > 0 && row->flops > 0 ? format("%.2f", row->flops / seconds / 1e9) : "-";
      // "blk.0.attn +17": the first dispatch's location and how many others there are.
      size_t others = row->locations.size() - 1;
      out += format("  %-10s %-32s %-22s %10zu %7llu %10.3f %10.2f %5.1f%% %8s %8s\n",
                    row->kernel.c_str(), column(row->summary, "", 32).c_str(),
                    column(row->locations.front(), others ? format(" +%zu", others) : "", 22)
                        .c_str(),
                    row->dispatches, (unsigned long long)row->calls, ms(row->totalNs),
                    row->calls ? us(row->totalNs) / double(row->calls) : 0,
                    percent(row->totalNs, s.kernel_ns), gbs.c_str(), gflops.c_str());
    }
  }
  return out;
}

MaybeError ProfileReport::writeChromeTrace(const std::string &path,
                                           const std::string &process) const {
  // Times relative to the first one, so that they read as a run's elapsed time.
  uint64_t origin = UINT64_MAX;
  for (const Track &t : tracks) {
    for (const kiln_trace_event &e : t.events)
      origin = std::min(origin, e.start_ns);
    for (const Span &span : t.spans)
      origin = std::min(origin, span.startNs);
  }
  auto micros = [&](uint64_t ns) { return double(ns - origin) / 1e3; };
  nlohmann::json events = nlohmann::json::array();
  events.push_back({{"name", "process_name"}, {"ph", "M"}, {"pid", 1}, {"tid", 0},
                    {"args", {{"name", process}}}});
  uint64_t dropped = 0;
  for (size_t i = 0; i < tracks.size(); ++i) {
    const Track &t = tracks[i];
    int tid = int(i) + 1;
    dropped += t.summary.dropped_trace_events;
    nlohmann::json trackArgs = {{"name", t.name}};
    if (!t.interleaved.empty())
      trackArgs["interleaved"] = t.interleaved;
    events.push_back({{"name", "thread_name"}, {"ph", "M"}, {"pid", 1}, {"tid", tid},
                      {"args", std::move(trackArgs)}});
    for (const Span &span : t.spans)
      events.push_back({{"name", span.name}, {"cat", "run"}, {"ph", "X"},
                        {"ts", micros(span.startNs)},
                        {"dur", double(span.endNs - span.startNs) / 1e3}, {"pid", 1},
                        {"tid", tid}});
    for (const kiln_trace_event &e : t.events) {
      const Dispatch &d = t.dispatches.at(e.dispatch);
      events.push_back({{"name", d.summary.empty() ? d.kernel : d.summary},
                        {"cat", "kernel"}, {"ph", "X"}, {"ts", micros(e.start_ns)},
                        {"dur", double(e.duration_ns) / 1e3}, {"pid", 1}, {"tid", tid},
                        {"args", {{"kernel", d.kernel}, {"dispatch", e.dispatch},
                                  {"where", d.location}, {"bytes", d.bytes},
                                  {"flops", d.flops}}}});
    }
  }
  nlohmann::json trace = {{"traceEvents", std::move(events)},
                          {"displayTimeUnit", "ms"},
                          {"otherData", {{"dropped_trace_events", dropped}}}};
  std::ofstream file(path);
  // Locations are validated UTF-8; replace anyway rather than throw on a stray byte.
  file << trace.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
  file.close();
  if (!file)
    return Error{"cannot write the trace to '" + path + "'"};
  return std::nullopt;
}

} // namespace kiln::tools
