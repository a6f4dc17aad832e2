// CPU code generation: each distinct dispatch becomes a Halide pipeline compiled ahead of
// time, in parallel; all kernels plus one Halide runtime are linked into a shared object
// the kiln runtime loads from memory.
#include "backends/cpu/CpuBackend.h"

#include "backends/KernelFingerprint.h"
#include "backends/halide/DispatchLowering.h"
#include "backends/halide/KernelSchedule.h"

#include "mlir/IR/Diagnostics.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/Program.h"
#include "llvm/Support/xxhash.h"
#include "llvm/ADT/StringExtras.h"

#include <Halide.h>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <thread>
#include <unistd.h>
#if defined(__x86_64__)
#include <cpuid.h>
#endif

using namespace mlir;

namespace kiln::cpu {

namespace {

/// Halide 14 takes any CPU with AVX512-BF16 for a Sapphire Rapids, and LLVM then emits
/// AVX512-FP16 instructions (e.g. for 16-bit moves) that AMD Zen 4 does not have: keep
/// that feature only where CPUID reports AVX512-FP16 (leaf 7, EDX bit 23).
Halide::Target hostTarget() {
  Halide::Target host = Halide::get_host_target();
#if defined(__x86_64__)
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  bool hasFp16 = __get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx) && (edx & (1u << 23));
  if (!hasFp16 && host.has_feature(Halide::Target::AVX512_SapphireRapids))
    host = host.without_feature(Halide::Target::AVX512_SapphireRapids);
#endif
  return host;
}

std::optional<Halide::Target> parseTarget(llvm::StringRef target) {
  if (target == "host")
    return hostTarget();
  if (!Halide::Target::validate_target_string(target.str()))
    return std::nullopt;
  Halide::Target parsed(target.str());
  if (parsed.has_gpu_feature() || parsed.os == Halide::Target::NoOS)
    return std::nullopt;
  return parsed;
}

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

/// Runs `program args...`, capturing its output into `log`.
LogicalResult runTool(Location loc, llvm::StringRef program, llvm::ArrayRef<std::string> args,
                      llvm::StringRef logPath) {
  std::vector<llvm::StringRef> argv{program};
  argv.insert(argv.end(), args.begin(), args.end());
  std::optional<llvm::StringRef> redirects[] = {std::nullopt, logPath, logPath};
  std::string error;
  int rc = llvm::sys::ExecuteAndWait(program, argv, std::nullopt, redirects, 0, 0, &error);
  if (rc == 0)
    return success();
  auto log = llvm::MemoryBuffer::getFile(logPath);
  InFlightDiagnostic diag = emitError(loc) << "linking the CPU code object with '" << program
                                           << "' failed (exit code " << rc << ")";
  if (!error.empty())
    diag << ": " << error;
  if (log && (*log)->getBufferSize())
    diag << ":\n" << (*log)->getBuffer();
  return failure();
}

class CpuBackend : public Backend {
public:
  CpuBackend(Halide::Target target, const NumericsOptions &numerics)
      : halideTarget(target), lowering(halide::LoweringOptions::forTarget(target)) {
    lowering.int8Activations = numerics.int8Activations;
  }

  llvm::StringRef name() const override { return "cpu"; }
  std::string target() const override { return halideTarget.to_string(); }

  LogicalResult supports(Operation *op) const override { return success(); }

  std::string describeScheduleSpace() const override {
    std::string text;
    for (const halide::Knob &knob : halide::KernelSchedule::space()) {
      text += knob.name + ":";
      for (int64_t value : knob.values)
        text += " " + std::to_string(value);
      text += "\n";
    }
    return text;
  }

  FailureOr<KernelInfo> addKernel(DispatchOp dispatch) override {
    // The schedule is part of what a kernel is and is chosen from the lowered form, so
    // every dispatch is lowered, once, under a name of its own (Halide would rename a
    // Func whose name was taken before, kiln_k3_f1$2); a kernel keeps the name of the
    // first dispatch that needed it.
    std::string name = "kiln_k" + std::to_string(dispatchesAdded++);
    FailureOr<halide::LoweredKernel> kernel = halide::lowerDispatch(dispatch, name, lowering);
    if (failed(kernel))
      return failure();
    halide::KernelSchedule schedule = halide::defaultSchedule(*kernel, halideTarget);
    if (auto chosen = dispatch->getAttrOfType<StringAttr>("kiln.schedule")) {
      std::string error = schedule.set(chosen.getValue());
      if (!error.empty())
        return dispatch.emitOpError("has kiln.schedule '") << chosen.getValue() << "': " << error;
    }
    std::string fingerprint = kernelFingerprint(dispatch, schedule.str() + " " + kernel->context);
    auto [known, isNew] =
        kernelByFingerprint.try_emplace(fingerprint, static_cast<unsigned>(kernels.size()));
    if (!isNew)
      return kernels[known->second].info;
    try {
      halide::applySchedule(*kernel, schedule);
    } catch (const Halide::Error &error) {
      kernelByFingerprint.erase(known);
      return dispatch.emitOpError("schedule '") << schedule.str() << "' is invalid: " << error.what();
    }
    KernelInfo info{name, static_cast<unsigned>(kernels.size()),
                    static_cast<unsigned>(kernel->inputs.size() + kernel->outputs.size()),
                    schedule.str()};
    kernels.push_back({std::move(*kernel), info, std::move(fingerprint)});
    return info;
  }

  FailureOr<std::string> printKernels(Location loc) override {
    TemporaryDirectory dir;
    if (llvm::sys::fs::createUniqueDirectory("kiln-stmt", dir.path))
      return emitError(loc) << "cannot create a temporary directory";
    std::string text;
    try {
      for (AddedKernel &added : kernels) {
        halide::LoweredKernel &kernel = added.lowered;
        std::string path = pathIn(dir.path, kernel.name + ".stmt");
        kernel.pipeline().compile_to_lowered_stmt(path, kernel.arguments(), Halide::Text,
                                                  codeTarget());
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

  FailureOr<CodeObject> emitCodeObject(Location loc, const CompileOptions &options) override {
    if (kernels.empty())
      return emitError(loc) << "the program has no kernels to compile";
    TemporaryDirectory dir;
    if (llvm::sys::fs::createUniqueDirectory("kiln-cpu", dir.path))
      return emitError(loc) << "cannot create a temporary directory";
    FailureOr<std::vector<std::string>> objects = compileKernels(loc, dir.path, options);
    if (failed(objects))
      return failure();
    try {
      objects->push_back(standaloneRuntime(dir.path));
    } catch (const Halide::Error &error) {
      return emitError(loc) << "Halide failed to compile its runtime: " << error.what();
    }
    std::string library = pathIn(dir.path, "kernels.so");
    if (failed(link(loc, *objects, library, pathIn(dir.path, "link.log"))))
      return failure();
    auto bytes = llvm::MemoryBuffer::getFile(library);
    if (!bytes)
      return emitError(loc) << "cannot read the linked code object " << library;
    CodeObject object{"cpu", target(), "elf-shared-object", {}};
    object.bytes.assign((*bytes)->getBufferStart(), (*bytes)->getBufferEnd());
    return object;
  }

private:
  /// Kernels share one standalone Halide runtime, so they are compiled without their own.
  Halide::Target codeTarget() const { return halideTarget.with_feature(Halide::Target::NoRuntime); }

  bool isHost() const {
    Halide::Target host = hostTarget();
    return halideTarget.os == host.os && halideTarget.arch == host.arch &&
           halideTarget.bits == host.bits;
  }

  /// Halide's runtime for this target: the same bytes for every program, and most of
  /// the compile time of a small one, so it is built once and kept in
  /// $XDG_CACHE_HOME/kiln (or ~/.cache/kiln); without a cache it goes to `scratch`.
  std::string standaloneRuntime(llvm::StringRef scratch) const {
    llvm::SmallString<256> cache;
    if (const char *xdg = std::getenv("XDG_CACHE_HOME"); xdg && *xdg)
      cache = xdg;
    else if (const char *home = std::getenv("HOME"); home && *home)
      llvm::sys::path::append(cache, home, ".cache");
    if (!cache.empty()) {
      llvm::sys::path::append(cache, "kiln", "halide-runtime");
      if (!llvm::sys::fs::create_directories(cache)) {
        std::string cached = pathIn(cache, "halide14-" + halideTarget.to_string() + ".o");
        if (llvm::sys::fs::exists(cached))
          return cached;
        // Written under a unique name, then renamed: concurrent compiles never see a
        // partial object.
        std::string partial = cached + "." + std::to_string(::getpid()) + ".partial";
        Halide::compile_standalone_runtime(partial, halideTarget);
        if (!llvm::sys::fs::rename(partial, cached))
          return cached;
        llvm::sys::fs::remove(partial);
      }
    }
    std::string object = pathIn(scratch, "halide_runtime.o");
    Halide::compile_standalone_runtime(object, halideTarget);
    return object;
  }

  /// A host code object links libm (the kernels call expf & co.); a cross-compiled one
  /// is linked with lld alone and resolves libc/libm when loaded on its machine.
  LogicalResult link(Location loc, std::vector<std::string> objects, const std::string &output,
                     const std::string &logPath) {
    std::vector<std::string> args{"-shared", "-o", output};
    args.insert(args.end(), objects.begin(), objects.end());
    if (isHost()) {
      llvm::ErrorOr<std::string> cc = llvm::sys::findProgramByName("cc");
      if (!cc)
        cc = llvm::sys::findProgramByName("clang-22");
      if (!cc)
        return emitError(loc) << "no C compiler driver ('cc' or 'clang-22') on PATH to link "
                                 "the CPU code object";
      args.push_back("-lm");
      return runTool(loc, *cc, args, logPath);
    }
    llvm::ErrorOr<std::string> lld =
        llvm::sys::findProgramByName("ld.lld", {"/usr/lib/llvm-22/bin"});
    if (!lld)
      return emitError(loc) << "ld.lld (lld-22) is needed to link code for " << target();
    return runTool(loc, *lld, args, logPath);
  }

  /// Compiles each kernel into an object of its own in `directory`, `options.jobs` at
  /// a time, and returns their paths in kernel order. Halide's compiler may run in
  /// several threads on pipelines that share no Funcs: its IR's reference counts and
  /// unique-name counters are atomic, LLVM is initialized once (std::call_once), and
  /// every compile has an LLVMContext of its own. Each kernel was lowered on its own,
  /// under its own name, so kernels share no Funcs or parameters.
  FailureOr<std::vector<std::string>> compileKernels(Location loc, llvm::StringRef directory,
                                                     const CompileOptions &options) {
    size_t total = kernels.size();
    std::vector<std::string> objects(total), errors(total);
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
        std::string identity = useCache ? cacheIdentity(kernel) : "";
        std::optional<std::string> cached =
            useCache ? cachedObject(options.kernelCache, identity) : std::nullopt;
        if (cached) {
          objects[i] = *cached;
        } else {
          try {
            kernel.lowered.pipeline()
                .compile_to_module(kernel.lowered.arguments(), kernel.info.name, codeTarget(),
                                   Halide::LinkageType::ExternalPlusMetadata)
                .compile({{Halide::OutputFileType::object, objects[i]}});
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
    for (size_t i = 0; i < total; ++i)
      if (!errors[i].empty())
        return emitError(loc) << "Halide failed to compile kernel " << kernels[i].info.name
                              << ": " << errors[i];
    return objects;
  }

  /// A kernel as lowered, and what the artifact says of it.
  struct AddedKernel {
    halide::LoweredKernel lowered;
    KernelInfo info;
    std::string fingerprint;
  };

  /// What a cached object of `kernel` is filed under: everything its bytes depend on
  /// that a compiler build can vary.
  std::string cacheIdentity(const AddedKernel &kernel) const {
    return kernel.fingerprint + "\ntarget: " + codeTarget().to_string() +
           "\nname: " + kernel.info.name + "\n";
  }

  /// The cached object for `identity` in `cache`, if one is there under that whole
  /// identity (a hash names the files; the identity stored beside decides).
  static std::optional<std::string> cachedObject(llvm::StringRef cache,
                                                 const std::string &identity) {
    std::string stem = pathIn(cache, llvm::utohexstr(llvm::xxh3_64bits(identity)));
    auto stored = llvm::MemoryBuffer::getFile(stem + ".key");
    if (!stored || (*stored)->getBuffer() != identity || !llvm::sys::fs::exists(stem + ".o"))
      return std::nullopt;
    return stem + ".o";
  }

  /// Files `object` under `identity` in `cache`: written under unique names, then
  /// renamed, so that concurrent compiles never see a partial file. Best effort: a
  /// cache that cannot be written is no cache.
  static void storeObject(llvm::StringRef cache, const std::string &identity,
                          const std::string &object) {
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

  Halide::Target halideTarget;
  halide::LoweringOptions lowering;
  std::vector<AddedKernel> kernels;
  unsigned dispatchesAdded = 0;
  /// Kernels by the whole text of their fingerprint, so that equal hashes never merge
  /// different kernels.
  llvm::StringMap<unsigned> kernelByFingerprint;
};

} // namespace

bool handlesTarget(llvm::StringRef target) { return parseTarget(target).has_value(); }

std::unique_ptr<Backend> createCpuBackend(llvm::StringRef target, std::string &error,
                                          const NumericsOptions &numerics) {
  std::optional<Halide::Target> parsed = parseTarget(target);
  if (!parsed) {
    error = "'" + target.str() + "' is not a CPU target";
    return nullptr;
  }
  return std::make_unique<CpuBackend>(*parsed, numerics);
}

} // namespace kiln::cpu
