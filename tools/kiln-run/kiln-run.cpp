// kiln-run: loads a .kiln artifact, runs one entry point on .npy inputs, prints a
// summary of its outputs and compares them with expected .npy files.
#include "EntryPointSignature.h"
#include "Npy.h"
#include "ProfileReport.h"
#include "RunOptions.h"
#include "RuntimeHandles.h"
#include "TensorComparison.h"
#include "kiln/runtime.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

using namespace kiln::tools;

namespace {

constexpr int kExitSuccess = 0;
constexpr int kExitMismatch = 1;
constexpr int kExitError = 2;
// Elements shown per output in the summary.
constexpr size_t kPreviewElements = 8;

Expected<size_t> selectEntryPoint(const kiln_module *module, const std::string &requested) {
  size_t count = kiln_module_entry_point_count(module);
  std::string names;
  for (size_t i = 0; i < count; ++i)
    names += (i ? ", " : "") + std::string("'") + kiln_module_entry_point_name(module, i) + "'";
  if (requested.empty()) {
    if (count == 1)
      return size_t{0};
    if (count == 0)
      return Error{"the model has no entry points"};
    return Error{"the model has " + std::to_string(count) +
                 " entry points; choose one with --entry: " + names};
  }
  size_t index;
  kiln_status status = kiln_module_find_entry_point(module, requested.c_str(), &index);
  if (status) {
    kiln_status_free(status);
    return Error{"no entry point named '" + requested + "'; the model has " + names};
  }
  return index;
}

// Assigns each binding's file to a slot: named bindings by name, unnamed ones to the
// remaining slots in entry-point order. The result holds one path per slot ("" when
// unbound). `role` is "input" or "output" for messages.
Expected<std::vector<std::string>> bindFiles(const std::vector<TensorFileBinding> &bindings,
                                             const EntryPointSignature &signature,
                                             const std::vector<TensorSlot> &slots,
                                             const std::string &option,
                                             const std::string &role) {
  std::vector<std::string> paths(slots.size());
  for (const TensorFileBinding &binding : bindings) {
    if (binding.name.empty())
      continue;
    auto slot = std::find_if(slots.begin(), slots.end(),
                             [&](const TensorSlot &s) { return s.name == binding.name; });
    if (slot == slots.end())
      return Error{option + ": entry point '" + signature.name + "' has no " + role +
                   " named '" + binding.name + "'; its " + role + "s are: " +
                   (slots.empty() ? "none" : formatSlots(slots))};
    std::string &path = paths[slot - slots.begin()];
    if (!path.empty())
      return Error{option + ": " + role + " '" + binding.name + "' is given twice ('" + path +
                   "' and '" + binding.path + "')"};
    path = binding.path;
  }
  size_t next = 0;
  for (const TensorFileBinding &binding : bindings) {
    if (!binding.name.empty())
      continue;
    while (next < slots.size() && !paths[next].empty())
      ++next;
    if (next == slots.size())
      return Error{option + " '" + binding.path + "': every " + role + " of entry point '" +
                   signature.name + "' is already bound; its " + role +
                   "s are: " + (slots.empty() ? "none" : formatSlots(slots))};
    paths[next] = binding.path;
  }
  return paths;
}

std::string plural(size_t count, const std::string &noun) {
  return std::to_string(count) + " " + noun + (count == 1 ? "" : "s");
}

MaybeError checkMissingInputs(const EntryPointSignature &signature,
                              const std::vector<std::string> &paths) {
  std::string missing, listing;
  size_t missingCount = 0;
  for (size_t i = 0; i < signature.inputs.size(); ++i) {
    const TensorSlot &slot = signature.inputs[i];
    if (paths[i].empty())
      missing += (missingCount++ ? ", '" : "'") + slot.name + "'";
    listing += "\n  " + slot.name + ": " + slot.type() +
               (paths[i].empty() ? "  (missing)" : "  <- " + paths[i]);
  }
  if (missingCount == 0)
    return std::nullopt;
  return Error{(missingCount == 1 ? "missing input " : "missing inputs ") + missing +
               "; entry point '" + signature.name + "' takes " +
               plural(signature.inputs.size(), "input") +
               " (give each with --input NAME=FILE.npy):" + listing};
}

// Reads the .npy bound to `slot` and checks that it can stand for it.
Expected<NpyArray> readArrayFor(const TensorSlot &slot, const std::string &path,
                                const std::string &role) {
  Expected<NpyArray> array = readNpyFile(path);
  if (!array)
    return array;
  std::string holds = "'" + path + "' holds " + formatTensorType(array->dtype, array->shape) +
                      " but " + role + " '" + slot.name + "' is " + slot.type();
  if (!acceptsDType(slot.dtype, array->dtype))
    return Error{holds + ": the dtypes differ"};
  if (array->shape != slot.shape)
    return Error{holds + ": the shapes differ"};
  return array;
}

Expected<std::vector<NpyArray>> readArraysFor(const std::vector<TensorSlot> &slots,
                                              const std::vector<std::string> &paths,
                                              const std::string &role) {
  std::vector<NpyArray> arrays(slots.size());
  for (size_t i = 0; i < slots.size(); ++i) {
    if (paths[i].empty())
      continue;
    Expected<NpyArray> array = readArrayFor(slots[i], paths[i], role);
    if (!array)
      return array.error();
    arrays[i] = std::move(*array);
  }
  return arrays;
}

std::string formatNumber(double value) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.4g", value);
  return buffer;
}

std::string formatDuration(double seconds) {
  char buffer[32];
  if (seconds < 1e-3)
    std::snprintf(buffer, sizeof buffer, "%.2f us", seconds * 1e6);
  else if (seconds < 1)
    std::snprintf(buffer, sizeof buffer, "%.3f ms", seconds * 1e3);
  else
    std::snprintf(buffer, sizeof buffer, "%.3f s", seconds);
  return buffer;
}

void printOutputSummary(const TensorSlot &slot, const void *data) {
  std::printf("output %s: %s\n", slot.name.c_str(), slot.type().c_str());
  size_t count = elementCount(slot.shape);
  if (isFloatDType(slot.dtype) && count > 0) {
    double minimum = INFINITY, maximum = -INFINITY, sum = 0;
    size_t nans = 0;
    for (size_t i = 0; i < count; ++i) {
      double value = elementAsDouble(slot.dtype, data, i);
      if (std::isnan(value)) {
        ++nans;
        continue;
      }
      minimum = std::min(minimum, value);
      maximum = std::max(maximum, value);
      sum += value;
    }
    if (nans < count)
      std::printf("  min %s  max %s  mean %s", formatNumber(minimum).c_str(),
                  formatNumber(maximum).c_str(),
                  formatNumber(sum / static_cast<double>(count - nans)).c_str());
    if (nans > 0)
      std::printf("  %zu NaN", nans);
    std::printf("\n");
  }
  std::string values;
  for (size_t i = 0; i < std::min(count, kPreviewElements); ++i)
    values += (i ? ", " : "") + formatElement(slot.dtype, data, i);
  if (count > kPreviewElements)
    values += ", ... (" + std::to_string(count) + " elements)";
  std::printf("  values: %s\n", values.c_str());
}

// Prints the verdict for one output; returns whether it matched.
bool reportComparison(const TensorSlot &slot, const void *data, const NpyArray &expected,
                      Tolerance tolerance, bool quiet) {
  ComparisonResult result =
      compareTensors({slot.dtype, slot.shape, data},
                     {expected.dtype, expected.shape, expected.data.data()}, tolerance);
  bool floats = isFloatDType(slot.dtype);
  std::string bounds = floats ? "rtol " + formatNumber(tolerance.rtol) + ", atol " +
                                    formatNumber(tolerance.atol)
                              : "exact";
  if (result.matches()) {
    if (quiet)
      return true;
    std::printf("compare %s: ok (%zu elements, %s)\n", slot.name.c_str(), result.elementCount,
                bounds.c_str());
  } else {
    std::printf("compare %s: MISMATCH (%zu of %zu elements differ, %s)\n", slot.name.c_str(),
                result.mismatchCount, result.elementCount, bounds.c_str());
  }
  // The worst of all-equal integers says nothing.
  if (result.hasWorst && (floats || !result.matches()))
    std::printf("  worst element: flat index %zu, index %s: got %s, expected %s "
                "(abs error %s, rel error %s)\n",
                result.worstIndex, formatMultiIndex(slot.shape, result.worstIndex).c_str(),
                result.worstGot.c_str(), result.worstExpected.c_str(),
                formatNumber(result.worstAbsError).c_str(),
                formatNumber(result.worstRelError).c_str());
  return result.matches();
}

// A file name for an output in --output-dir: its name with path separators and other
// unusual characters replaced.
std::string outputFileName(const std::string &name) {
  std::string file;
  for (char c : name)
    file += std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-'
                ? c
                : '_';
  if (file.empty() || file == "." || file == "..")
    file = "output" + file;
  return file + ".npy";
}

// A session of `module`'s entry point `entry` (`signature`) with `inputs` set.
Expected<SessionHandle> sessionWithInputs(kiln_module *module, size_t entry,
                                          const EntryPointSignature &signature,
                                          const std::vector<NpyArray> &inputs) {
  Expected<SessionHandle> session = createSession(module, entry);
  if (!session)
    return session.error();
  for (size_t i = 0; i < inputs.size(); ++i) {
    const NpyArray &input = inputs[i];
    if (MaybeError error = statusError(
            kiln_session_set_input(session->get(), i, input.data.data(), input.data.size()),
            "cannot set input '" + signature.inputs[i].name + "'"))
      return *error;
  }
  return session;
}

Expected<int> runModel(const RunOptions &options) {
  Expected<RuntimeHandle> runtime = createRuntime(options.threads, options.device);
  if (!runtime)
    return runtime.error();
  Expected<ModuleHandle> module = loadModule(runtime->get(), options.modelPath);
  if (!module)
    return module.error();

  Expected<size_t> entryPoint = selectEntryPoint(module->get(), options.entryPoint);
  if (!entryPoint)
    return entryPoint.error();
  Expected<EntryPointSignature> signature = readEntryPointSignature(module->get(), *entryPoint);
  if (!signature)
    return signature.error();
  if (!options.quiet) {
    std::printf("model: %s (target %s)\n", options.modelPath.c_str(),
                kiln_module_target(module->get()));
    if (options.device != "cpu")
      std::printf("device: %s\n", kiln_runtime_device(runtime->get()));
    std::printf("entry point: %s\n", formatSignature(*signature).c_str());
  }

  // Bind and read every file before running, so a mistake costs no run time.
  Expected<std::vector<std::string>> inputPaths =
      bindFiles(options.inputs, *signature, signature->inputs, "--input", "input");
  if (!inputPaths)
    return inputPaths.error();
  if (MaybeError error = checkMissingInputs(*signature, *inputPaths))
    return *error;
  Expected<std::vector<std::string>> outputPaths =
      bindFiles(options.outputs, *signature, signature->outputs, "--output", "output");
  if (!outputPaths)
    return outputPaths.error();
  Expected<std::vector<std::string>> comparePaths =
      bindFiles(options.compares, *signature, signature->outputs, "--compare", "output");
  if (!comparePaths)
    return comparePaths.error();
  Expected<std::vector<NpyArray>> inputs =
      readArraysFor(signature->inputs, *inputPaths, "input");
  if (!inputs)
    return inputs.error();
  Expected<std::vector<NpyArray>> expected =
      readArraysFor(signature->outputs, *comparePaths, "output");
  if (!expected)
    return expected.error();

  Expected<SessionHandle> session = sessionWithInputs(module->get(), *entryPoint, *signature, *inputs);
  if (!session)
    return session.error();
  // --interleave: the other artifact's session of the same entry point, same inputs.
  std::optional<ModuleHandle> otherModule;
  std::optional<SessionHandle> other;
  std::string otherTrack = signature->name + " (interleaved: " + options.interleavePath + ")";
  if (!options.interleavePath.empty()) {
    Expected<ModuleHandle> loaded = loadModule(runtime->get(), options.interleavePath);
    if (!loaded)
      return loaded.error();
    otherModule.emplace(std::move(*loaded));
    Expected<size_t> otherEntry = selectEntryPoint(otherModule->get(), signature->name);
    if (!otherEntry)
      return Error{"--interleave " + options.interleavePath + ": " + otherEntry.error().message};
    Expected<EntryPointSignature> otherSignature =
        readEntryPointSignature(otherModule->get(), *otherEntry);
    if (!otherSignature)
      return otherSignature.error();
    if (formatSignature(*otherSignature) != formatSignature(*signature))
      return Error{"--interleave " + options.interleavePath + ": its entry point " +
                   formatSignature(*otherSignature) + " differs from the model's " +
                   formatSignature(*signature)};
    Expected<SessionHandle> created =
        sessionWithInputs(otherModule->get(), *otherEntry, *otherSignature, *inputs);
    if (!created)
      return created.error();
    other.emplace(std::move(*created));
  }

  if (options.profile)
    for (kiln_session *s : {session->get(), other ? other->get() : nullptr})
      if (s)
        if (MaybeError error = startProfiling(s))
          return *error;
  ProfileReport profile;
  uint64_t totalNs = 0, otherTotalNs = 0;
  // One timed run of `s`, drawn on `track`.
  auto timedRun = [&](kiln_session *s, const std::string &track, int run,
                      uint64_t &total) -> MaybeError {
    uint64_t start = monotonicNanoseconds();
    kiln_status status = kiln_session_run(s);
    uint64_t end = monotonicNanoseconds();
    total += end - start;
    std::string of = s == session->get() ? "" : " of " + options.interleavePath;
    if (MaybeError error = statusError(status, "running '" + signature->name + "'" + of + " failed"))
      return error;
    profile.addSpan(track, "run " + std::to_string(run + 1), start, end);
    return std::nullopt;
  };
  for (int run = 0; run < options.repeat; ++run) {
    // Interleaved, the two take turns going first (a run may warm the caches for the
    // next).
    bool otherFirst = other && run % 2 == 1;
    if (otherFirst)
      if (MaybeError error = timedRun(other->get(), otherTrack, run, otherTotalNs))
        return *error;
    if (MaybeError error = timedRun(session->get(), signature->name, run, totalNs))
      return *error;
    if (other && !otherFirst)
      if (MaybeError error = timedRun(other->get(), otherTrack, run, otherTotalNs))
        return *error;
  }

  if (!options.quiet) {
    std::printf("time: %s (mean of %d run%s)\n",
                formatDuration(double(totalNs) / 1e9 / options.repeat).c_str(), options.repeat,
                options.repeat == 1 ? "" : "s");
    if (other)
      std::printf("interleaved %s: %s (mean of %d run%s)\n", options.interleavePath.c_str(),
                  formatDuration(double(otherTotalNs) / 1e9 / options.repeat).c_str(),
                  options.repeat, options.repeat == 1 ? "" : "s");
  }
  if (options.profile) {
    if (MaybeError error = profile.addSession(session->get(), signature->name))
      return *error;
    if (other) {
      if (MaybeError error = profile.addSession(other->get(), otherTrack))
        return *error;
      profile.markInterleaved(otherTrack, options.interleavePath);
    }
    std::printf("profile:\n%s", profile.table().c_str());
    if (MaybeError error = profile.writeChromeTrace(options.tracePath, "kiln-run"))
      return *error;
    std::printf("trace: %s (open it in https://ui.perfetto.dev)\n", options.tracePath.c_str());
  }

  if (!options.outputDir.empty()) {
    std::error_code error;
    std::filesystem::create_directories(options.outputDir, error);
    if (error)
      return Error{"cannot create --output-dir '" + options.outputDir + "': " + error.message()};
  }
  bool allMatch = true;
  for (size_t i = 0; i < signature->outputs.size(); ++i) {
    const TensorSlot &slot = signature->outputs[i];
    const void *data = nullptr;
    size_t byteSize = 0;
    if (MaybeError error = statusError(kiln_session_output(session->get(), i, &data, &byteSize),
                                       "cannot read output '" + slot.name + "'"))
      return *error;
    if (!options.quiet)
      printOutputSummary(slot, data);
    std::vector<std::string> destinations;
    if (!(*outputPaths)[i].empty())
      destinations.push_back((*outputPaths)[i]);
    if (!options.outputDir.empty())
      destinations.push_back(
          (std::filesystem::path(options.outputDir) / outputFileName(slot.name)).string());
    for (const std::string &destination : destinations)
      if (MaybeError error = writeNpyFile(destination, slot.dtype, slot.shape, data, byteSize))
        return *error;
    if (!(*comparePaths)[i].empty())
      allMatch &= reportComparison(slot, data, (*expected)[i], options.tolerance, options.quiet);
  }
  return allMatch ? kExitSuccess : kExitMismatch;
}

int reportError(const Error &error) {
  std::fflush(stdout);
  std::fprintf(stderr, "kiln-run: error: %s\n", error.message.c_str());
  return kExitError;
}

} // namespace

int main(int argc, char **argv) {
  Expected<RunOptions> options = parseRunOptions(argc, argv);
  if (!options)
    return reportError(options.error());
  if (options->help) {
    std::fputs(runUsage().c_str(), stdout);
    return kExitSuccess;
  }
  Expected<int> exitCode = runModel(*options);
  if (!exitCode)
    return reportError(exitCode.error());
  return *exitCode;
}
