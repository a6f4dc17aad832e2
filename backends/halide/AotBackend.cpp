// The machinery every Halide AOT backend shares (see AotBackend.h).
#include "backends/halide/AotBackend.h"

#include "backends/KernelFingerprint.h"
#include "backends/halide/GpuSchedule.h"

#include "mlir/IR/Diagnostics.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/Program.h"
#include "llvm/Support/xxhash.h"

#include <condition_variable>
#include <cstdlib>
#include <limits>
#include <mutex>
#include <thread>
#include <unistd.h>
#if defined(__x86_64__)
#include <cpuid.h>
#endif

using namespace mlir;

namespace kiln::halide {

namespace {

/// Removes a directory tree when it goes out of scope.
struct TemporaryDirectory {
  llvm::SmallString<128> path;
  ~TemporaryDirectory() {
    if (!path.empty())
      llvm::sys::fs::remove_directories(path);
  }
};

std::string pathIn(const llvm::Twine &directory, llvm::StringRef file) {
  llvm::SmallString<128> path;
  llvm::sys::path::append(path, directory, file);
  return std::string(path);
}

/// The cached object for `identity` in `cache`, if one is there under that whole
/// identity (a hash names the files; the identity stored beside decides).
std::optional<std::string> cachedObject(llvm::StringRef cache, const std::string &identity) {
  std::string stem = pathIn(cache, llvm::utohexstr(llvm::xxh3_64bits(identity)));
  auto stored = llvm::MemoryBuffer::getFile(stem + ".key");
  if (!stored || (*stored)->getBuffer() != identity || !llvm::sys::fs::exists(stem + ".o"))
    return std::nullopt;
  return stem + ".o";
}

/// Files `object` under `identity` in `cache`: written under unique names, then
/// renamed, so that concurrent compiles never see a partial file. Best effort: a
/// cache that cannot be written is no cache.
void storeObject(llvm::StringRef cache, const std::string &identity, const std::string &object) {
  std::string stem = pathIn(cache, llvm::utohexstr(llvm::xxh3_64bits(identity)));
  std::string unique = "." + std::to_string(::getpid()) + "." +
                       std::to_string(std::hash<std::thread::id>()(std::this_thread::get_id()));
  if (llvm::sys::fs::copy_file(object, stem + ".o" + unique) ||
      llvm::sys::fs::rename(stem + ".o" + unique, stem + ".o")) {
    llvm::sys::fs::remove(stem + ".o" + unique);
    return;
  }
  std::error_code ec;
  {
    llvm::raw_fd_ostream key(stem + ".key" + unique, ec);
    if (!ec)
      key << identity;
  }
  if (ec || llvm::sys::fs::rename(stem + ".key" + unique, stem + ".key"))
    llvm::sys::fs::remove(stem + ".key" + unique);
}

/// The GPU code Halide compiled into `module` (offloaded loops become one buffer of
/// PTX or Metal source, named "..._gpu_source_kernels"), or empty.
std::string deviceSourceOf(const Halide::Module &module) {
  for (const Halide::Buffer<void> &buffer : module.buffers())
    if (llvm::StringRef(buffer.name()).ends_with("gpu_source_kernels")) {
      const char *text = static_cast<const char *>(buffer.data());
      size_t size = buffer.size_in_bytes();
      while (size && text[size - 1] == '\0')
        --size;
      return std::string(text, size);
    }
  return {};
}

} // namespace

Halide::Target hostTarget() {
  Halide::Target host = Halide::get_host_target();
#if defined(__x86_64__)
  // Halide 14 takes any CPU with AVX512-BF16 for a Sapphire Rapids, and LLVM then emits
  // AVX512-FP16 instructions (e.g. for 16-bit moves) that AMD Zen 4 does not have: keep
  // that feature only where CPUID reports AVX512-FP16 (leaf 7, EDX bit 23).
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  bool hasFp16 = __get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx) && (edx & (1u << 23));
  if (!hasFp16 && host.has_feature(Halide::Target::AVX512_SapphireRapids))
    host = host.without_feature(Halide::Target::AVX512_SapphireRapids);
#endif
  return host;
}

std::string standaloneRuntime(const Halide::Target &target, llvm::StringRef scratch) {
  llvm::SmallString<256> cache;
  if (const char *xdg = std::getenv("XDG_CACHE_HOME"); xdg && *xdg)
    cache = xdg;
  else if (const char *home = std::getenv("HOME"); home && *home)
    llvm::sys::path::append(cache, home, ".cache");
  if (!cache.empty()) {
    llvm::sys::path::append(cache, "kiln", "halide-runtime");
    if (!llvm::sys::fs::create_directories(cache)) {
      std::string cached = pathIn(cache, "halide14-" + target.to_string() + ".o");
      if (llvm::sys::fs::exists(cached))
        return cached;
      // Written under a unique name, then renamed: concurrent compiles never see a
      // partial object.
      std::string partial = cached + "." + std::to_string(::getpid()) + ".partial";
      Halide::compile_standalone_runtime(partial, target);
      if (!llvm::sys::fs::rename(partial, cached))
        return cached;
      llvm::sys::fs::remove(partial);
    }
  }
  std::string object = pathIn(scratch, "halide_runtime.o");
  Halide::compile_standalone_runtime(object, target);
  return object;
}

AotBackend::AotBackend(std::string device, std::vector<Halide::Target> targets,
                       std::string format, const LoweringOptions &lowering)
    : device(std::move(device)), halideTargets(std::move(targets)), format(std::move(format)),
      lowering(lowering) {}

std::string AotBackend::target() const {
  std::string text;
  for (const Halide::Target &target : halideTargets)
    text += (text.empty() ? "" : ",") + target.to_string();
  return text;
}

namespace {

/// The LibraryCall that a dispatch's `kiln.library` (kiln-mark-library-products)
/// describes, checked against the dispatch's tensors: an attribute written by hand or
/// by another tool must not make the runtime read or write past a buffer.
FailureOr<LibraryCall> libraryCallOf(DispatchOp dispatch, DictionaryAttr attr) {
  auto fail = [&](const llvm::Twine &why) {
    return dispatch.emitOpError("has kiln.library ") << attr << ": " << why;
  };
  auto function = attr.getAs<StringAttr>("function");
  if (!function || function.getValue() != "cublas.gemm")
    return fail("function must be \"cublas.gemm\" (the only library function)");
  auto integer = [&](llvm::StringRef name, int64_t low, int64_t high, int64_t &out) {
    auto value = attr.getAs<IntegerAttr>(name);
    if (!value || value.getValue().getSignificantBits() > 64)
      return fail("needs the integer '" + name + "'"), false;
    out = value.getInt();
    if (out < low || out > high)
      return fail("'" + name + "' is " + llvm::Twine(out) + ", outside [" + llvm::Twine(low) +
                  ", " + llvm::Twine(high) + "]"),
             false;
    return true;
  };
  constexpr int64_t kIntMax = std::numeric_limits<int32_t>::max();
  int64_t inputs = dispatch.getInputs().size();
  int64_t a, b, batch, m, n, k, aStride, bStride;
  if (!integer("a", 0, inputs - 1, a) || !integer("b", 0, inputs - 1, b) ||
      !integer("batch", 1, kIntMax, batch) || !integer("m", 1, kIntMax, m) ||
      !integer("n", 1, kIntMax, n) || !integer("k", 1, kIntMax, k) ||
      !integer("a_batch_stride", 0, kIntMax * kIntMax, aStride) ||
      !integer("b_batch_stride", 0, kIntMax * kIntMax, bStride))
    return failure();
  auto transpose = attr.getAs<BoolAttr>("transpose_b");
  if (!transpose)
    return fail("needs the boolean 'transpose_b'");
  if (dispatch.getNumResults() != 1)
    return fail("the dispatch must have one result, C");
  // Elements each operand must hold (in doubles: the factors are below 2^31 and 2^62,
  // so no product overflows before the comparison).
  auto holds = [&](Value value, double elements, bool exactly, const char *what) {
    auto type = dyn_cast<RankedTensorType>(value.getType());
    if (!type || !type.hasStaticShape() || !type.getElementType().isF32())
      return fail(llvm::Twine(what) + " must be a float32 tensor"), false;
    double has = double(type.getNumElements());
    if (exactly ? has != elements : has < elements)
      return fail(llvm::Twine(what) + " has " + llvm::Twine(type.getNumElements()) +
                  " elements and the call " + (exactly ? "writes " : "reads ") +
                  std::to_string(int64_t(elements))),
             false;
    return true;
  };
  double dm = double(m), dn = double(n), dk = double(k), last = double(batch - 1);
  if (!holds(dispatch.getInputs()[a], last * double(aStride) + dm * dk, false, "A") ||
      !holds(dispatch.getInputs()[b], last * double(bStride) + dk * dn, false, "B") ||
      !holds(dispatch.getResult(0), double(batch) * dm * dn, true, "C"))
    return failure();
  LibraryCall call;
  call.function = function.getValue().str();
  call.a = unsigned(a);
  call.b = unsigned(b);
  call.c = unsigned(inputs);
  call.batch = uint32_t(batch);
  call.m = uint32_t(m);
  call.n = uint32_t(n);
  call.k = uint32_t(k);
  call.aBatchStride = uint64_t(aStride);
  call.bBatchStride = uint64_t(bStride);
  call.transposeB = transpose.getValue();
  return call;
}

} // namespace

FailureOr<KernelInfo> AotBackend::addKernel(DispatchOp dispatch) {
  // The schedule is part of what a kernel is and is chosen from the lowered form, so
  // every dispatch is lowered, once, under a name of its own (Halide would rename a
  // Func whose name was taken before, kiln_k3_f1$2); a kernel keeps the name of the
  // first dispatch that needed it.
  std::string kernelName = "kiln_k" + std::to_string(dispatchesAdded++);
  FailureOr<LoweredKernel> kernel = lowerDispatch(dispatch, kernelName, lowering);
  if (failed(kernel))
    return failure();
  FailureOr<Schedule> schedule = chooseSchedule(*kernel, dispatch);
  if (failed(schedule))
    return failure();
  std::string fingerprint = kernelFingerprint(dispatch, schedule->text + " " + kernel->context);
  auto [known, isNew] =
      kernelByFingerprint.try_emplace(fingerprint, static_cast<unsigned>(kernels.size()));
  if (!isNew)
    return kernels[known->second].info;
  std::optional<LibraryCall> library;
  if (!schedule->libraryCompute.empty())
    if (auto attr = dispatch->getAttrOfType<DictionaryAttr>("kiln.library")) {
      FailureOr<LibraryCall> call = libraryCallOf(dispatch, attr);
      if (failed(call)) {
        kernelByFingerprint.erase(known);
        return failure();
      }
      call->compute = schedule->libraryCompute;
      library = std::move(*call);
    }
  try {
    schedule->apply(*kernel);
  } catch (const Halide::Error &error) {
    kernelByFingerprint.erase(known);
    return dispatch.emitOpError("schedule '") << schedule->text << "' is invalid: " << error.what();
  }
  KernelInfo info{kernelName, static_cast<unsigned>(kernels.size()),
                  static_cast<unsigned>(kernel->inputs.size() + kernel->outputs.size()),
                  schedule->text, schedule->knobs, std::move(library)};
  kernels.push_back({std::move(*kernel), info, std::move(fingerprint), dispatch, *schedule});
  return info;
}

FailureOr<std::string> AotBackend::printKernels(Location loc) {
  TemporaryDirectory dir;
  if (llvm::sys::fs::createUniqueDirectory("kiln-stmt", dir.path))
    return emitError(loc) << "cannot create a temporary directory";
  std::string text;
  try {
    for (AddedKernel &added : kernels) {
      LoweredKernel &kernel = added.lowered;
      std::string path = pathIn(dir.path, kernel.name + ".stmt");
      kernel.pipeline().compile_to_lowered_stmt(path, kernel.arguments(), Halide::Text,
                                                codeTarget(halideTargets.front()));
      auto buffer = llvm::MemoryBuffer::getFile(path);
      if (!buffer)
        return emitError(loc) << "cannot read " << path;
      text += (*buffer)->getBuffer();
    }
  } catch (const Halide::Error &error) {
    return emitError(loc) << "Halide failed to lower the kernels: " << error.what();
  }
  return text;
}

FailureOr<std::vector<CodeObject>> AotBackend::emitCodeObjects(Location loc,
                                                               const CompileOptions &options) {
  if (kernels.empty())
    return emitError(loc) << "the program has no kernels to compile";
  std::vector<CodeObject> codeObjects;
  for (const Halide::Target &target : halideTargets) {
    TemporaryDirectory dir;
    if (llvm::sys::fs::createUniqueDirectory("kiln-" + device, dir.path))
      return emitError(loc) << "cannot create a temporary directory";
    CodeObject object{device, target.to_string(), format, {}, {}};
    FailureOr<std::vector<std::string>> objects =
        compileKernels(loc, target, dir.path, options, object.sources);
    if (failed(objects))
      return failure();
    try {
      objects->push_back(standaloneRuntime(target, dir.path));
    } catch (const Halide::Error &error) {
      return emitError(loc) << "Halide failed to compile its runtime for " << target.to_string()
                            << ": " << error.what();
    }
    std::string library = pathIn(dir.path, "kernels.so");
    if (failed(link(loc, target, *objects, library, pathIn(dir.path, "link.log"))))
      return failure();
    auto bytes = llvm::MemoryBuffer::getFile(library);
    if (!bytes)
      return emitError(loc) << "cannot read the linked code object " << library;
    object.bytes.assign((*bytes)->getBufferStart(), (*bytes)->getBufferEnd());
    codeObjects.push_back(std::move(object));
  }
  return codeObjects;
}

LogicalResult AotBackend::runTool(Location loc, llvm::StringRef what, llvm::StringRef program,
                                  llvm::ArrayRef<std::string> args, llvm::StringRef logPath) {
  std::vector<llvm::StringRef> argv{program};
  argv.insert(argv.end(), args.begin(), args.end());
  std::optional<llvm::StringRef> redirects[] = {std::nullopt, logPath, logPath};
  std::string error;
  int rc = llvm::sys::ExecuteAndWait(program, argv, std::nullopt, redirects, 0, 0, &error);
  if (rc == 0)
    return success();
  auto log = llvm::MemoryBuffer::getFile(logPath);
  InFlightDiagnostic diag = emitError(loc) << what << " with '" << program
                                           << "' failed (exit code " << rc << ")";
  if (!error.empty())
    diag << ": " << error;
  if (log && (*log)->getBufferSize())
    diag << ":\n" << (*log)->getBuffer();
  return failure();
}

LogicalResult AotBackend::link(Location loc, const Halide::Target &target,
                               const std::vector<std::string> &objects, const std::string &output,
                               const std::string &logPath) {
  std::vector<std::string> args{"-shared", "-o", output};
  args.insert(args.end(), objects.begin(), objects.end());
  Halide::Target host = hostTarget();
  std::string what = "linking the " + device + " code object";
  if (target.os == host.os && target.arch == host.arch && target.bits == host.bits) {
    // A host code object links libm (the kernels call expf & co.).
    llvm::ErrorOr<std::string> cc = llvm::sys::findProgramByName("cc");
    if (!cc)
      cc = llvm::sys::findProgramByName("clang-22");
    if (!cc)
      return emitError(loc) << "no C compiler driver ('cc' or 'clang-22') on PATH to link "
                               "the " << device << " code object";
    args.push_back("-lm");
    return runTool(loc, what, *cc, args, logPath);
  }
  // A cross-compiled one is linked with lld alone and resolves libc/libm when loaded on
  // its machine.
  llvm::ErrorOr<std::string> lld = llvm::sys::findProgramByName("ld.lld", {"/usr/lib/llvm-22/bin"});
  if (!lld)
    return emitError(loc) << "ld.lld (lld-22) is needed to link code for " << target.to_string();
  return runTool(loc, what, *lld, args, logPath);
}

/// Compiles each kernel into an object of its own in `directory`, `options.jobs` at a
/// time, and returns their paths in kernel order. Halide's compiler may run in several
/// threads on pipelines that share no Funcs: its IR's reference counts and unique-name
/// counters are atomic, LLVM is initialized once (std::call_once), and every compile
/// has an LLVMContext of its own. Each kernel was lowered on its own, under its own
/// name, so kernels share no Funcs or parameters.
FailureOr<std::vector<std::string>>
AotBackend::compileKernels(Location loc, const Halide::Target &target, llvm::StringRef directory,
                           const CompileOptions &options, std::vector<DeviceSource> &sources) {
  size_t total = kernels.size();
  std::vector<std::string> objects(total), errors(total), gpuCode(total);
  for (size_t i = 0; i < total; ++i)
    objects[i] = pathIn(directory, kernels[i].info.name + ".o");
  bool useCache = !options.kernelCache.empty() &&
                  !llvm::sys::fs::create_directories(options.kernelCache);
  std::mutex mutex;
  std::condition_variable finished;
  size_t next = 0, done = 0;
  auto work = [&] {
    for (;;) {
      size_t i;
      {
        std::lock_guard<std::mutex> lock(mutex);
        if (next == total)
          return;
        i = next++;
      }
      AddedKernel &kernel = kernels[i];
      std::string identity = useCache ? cacheIdentity(kernel, target) : "";
      std::optional<std::string> cached =
          useCache ? cachedObject(options.kernelCache, identity) : std::nullopt;
      if (cached) {
        objects[i] = *cached;
      } else {
        try {
          compileKernel(kernel, target, objects[i], gpuCode[i]);
          if (useCache)
            storeObject(options.kernelCache, identity, objects[i]);
        } catch (const Halide::Error &error) {
          errors[i] = error.what();
        }
      }
      {
        std::lock_guard<std::mutex> lock(mutex);
        ++done;
      }
      finished.notify_one();
    }
  };
  if (options.progress)
    options.progress(0, static_cast<unsigned>(total));
  size_t jobs = options.jobs ? options.jobs : std::max(1u, std::thread::hardware_concurrency());
  std::vector<std::thread> workers;
  for (size_t j = 0; j < std::min(jobs, total); ++j)
    workers.emplace_back(work);
  {
    std::unique_lock<std::mutex> lock(mutex);
    for (size_t reported = 0; reported < total;) {
      finished.wait(lock, [&] { return done > reported; });
      reported = done;
      if (options.progress) {
        lock.unlock();
        options.progress(static_cast<unsigned>(reported), static_cast<unsigned>(total));
        lock.lock();
      }
    }
  }
  for (std::thread &worker : workers)
    worker.join();
  for (size_t i = 0; i < total; ++i) {
    if (errors[i].empty())
      continue;
    // Halide failed on this schedule: lower the dispatch again and compile it with the
    // schedule's fallback (never cached: its identity is the first schedule's).
    AddedKernel &kernel = kernels[i];
    if (kernel.schedule.fallback) {
      FailureOr<LoweredKernel> again = lowerDispatch(kernel.dispatch, kernel.info.name, lowering);
      if (succeeded(again)) {
        try {
          kernel.schedule.fallback(*again);
          kernel.lowered = std::move(*again);
          kernel.info.schedule = kernel.schedule.fallbackText;
          kernel.schedule.fallback = nullptr;
          compileKernel(kernel, target, objects[i], gpuCode[i]);
          continue;
        } catch (const Halide::Error &error) {
          errors[i] += std::string("; with the fallback schedule: ") + error.what();
        }
      }
    }
    return emitError(loc) << "Halide failed to compile kernel " << kernel.info.name << " for "
                          << target.to_string() << ": " << errors[i];
  }
  std::string language = target.has_feature(Halide::Target::CUDA)    ? "ptx"
                         : target.has_feature(Halide::Target::Metal) ? "metal"
                                                                     : "";
  for (size_t i = 0; i < total; ++i)
    if (!gpuCode[i].empty())
      sources.push_back({kernels[i].info.name, language, std::move(gpuCode[i])});
  return objects;
}

void AotBackend::compileKernel(const AddedKernel &kernel, const Halide::Target &target,
                               const std::string &object, std::string &gpuCode) {
  Halide::Module module = kernel.lowered.pipeline().compile_to_module(
      kernel.lowered.arguments(), kernel.info.name, codeTarget(target),
      Halide::LinkageType::ExternalPlusMetadata);
  gpuCode = deviceSourceOf(module);
  module.compile({{Halide::OutputFileType::object, object}});
}

std::string GpuAotBackend::describeScheduleSpace() const {
  return describeKnobs(GpuSchedule::space(!libraryCompute.empty()));
}

FailureOr<AotBackend::Schedule> GpuAotBackend::chooseSchedule(const LoweredKernel &,
                                                              DispatchOp dispatch) {
  GpuSchedule schedule;
  schedule.hasLibrary = !libraryCompute.empty();
  if (auto chosen = dispatch->getAttrOfType<StringAttr>("kiln.schedule")) {
    std::string error = schedule.set(chosen.getValue());
    if (!error.empty())
      return dispatch.emitOpError("has kiln.schedule '") << chosen.getValue() << "': " << error;
  }
  Schedule chosen{schedule.str(),
                  [schedule](LoweredKernel &lowered) { applyGpuSchedule(lowered, schedule); }};
  if (schedule.hasLibrary && schedule.library)
    chosen.libraryCompute = libraryCompute;
  chosen.knobs = schedule.knobsFor(dispatchReduces(dispatch), dispatch->hasAttr("kiln.library"));
  if (schedule.tile != 0) {
    GpuSchedule untiled = schedule;
    untiled.tile = 0;
    chosen.fallbackText = untiled.str();
    chosen.fallback = [untiled](LoweredKernel &lowered) { applyGpuSchedule(lowered, untiled); };
  }
  return chosen;
}

/// What a cached object of `kernel` is filed under: everything its bytes depend on that
/// a compiler build can vary.
std::string AotBackend::cacheIdentity(const AddedKernel &kernel,
                                      const Halide::Target &target) const {
  return kernel.fingerprint + "\ntarget: " + codeTarget(target).to_string() +
         "\nname: " + kernel.info.name + "\n";
}

} // namespace kiln::halide
