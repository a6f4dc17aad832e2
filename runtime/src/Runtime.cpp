// The C API of runtime/include/kiln/runtime.h: statuses, runtimes (thread count,
// device), modules (validated artifact + loaded code object + its device) and sessions
// (arena, inputs, prepared kernel arguments, device memory, profiles). C++ inside; every
// entry point catches what C++ could throw.
#include "kiln/runtime.h"

#include "ApiBoundary.h"
#include "ArtifactReader.h"
#include "CodeObject.h"
#include "DTypeTable.h"
#include "Device.h"
#include "RuntimeError.h"
#include "Sampler.h"

#include <HalideRuntime.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <memory>
#include <mutex>
#include <new>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

using kiln::cat;
using kiln::runtime::Error;
using kiln::runtime::error;
using kiln::runtime::guarded;
using kiln::runtime::kOutOfMemory;
using kiln::runtime::nullArgument;
namespace artifact = kiln::artifact;

// ---- status (the object and the guard are in ApiBoundary.h) ------------------------

namespace {

// "f32[2x3]"
std::string describe(kiln_dtype dtype, const std::vector<int64_t> &shape) {
  std::string text = cat(kiln_dtype_name(dtype), "[");
  for (size_t i = 0; i < shape.size(); ++i)
    text += cat(i ? "x" : "", shape[i]);
  return text + "]";
}

// Copies min(size, capacity) items and reports the full size.
template <typename T>
void copyOut(const T *data, size_t size, T *out, size_t capacity, size_t *out_size) {
  if (out && capacity && size)
    std::memcpy(out, data, std::min(size, capacity) * sizeof(T));
  *out_size = size;
}

template <typename T> void retain(T *object) { object->refs.fetch_add(1); }
template <typename T> void release(T *object) {
  if (object && object->refs.fetch_sub(1) == 1)
    delete object;
}

} // namespace

extern "C" {

kiln_error kiln_status_code(kiln_status status) {
  return status ? status->code : KILN_ERROR_NONE;
}

const char *kiln_status_message(kiln_status status) {
  return status ? status->message : "ok";
}

void kiln_status_free(kiln_status status) {
  if (status != &kOutOfMemory)
    std::free(status);
}

size_t kiln_dtype_size(kiln_dtype dtype) {
  return unsigned(dtype) < KILN_DTYPE_COUNT ? kiln::runtime::kDTypes[dtype].bytes : 0;
}

const char *kiln_dtype_name(kiln_dtype dtype) {
  return unsigned(dtype) < KILN_DTYPE_COUNT ? kiln::runtime::kDTypes[dtype].name
                                            : "invalid";
}

} // extern "C"

// ---- runtime ----------------------------------------------------------------------

struct kiln_runtime {
  std::atomic<int> refs{1};
  int numThreads = 1;
  kiln::runtime::RuntimeDevice device;
  // The description with what the first module whose kernels call a library found of
  // it ("cuda: ... (sm_90), cuBLAS 130000"): written once, so that the strings
  // kiln_runtime_device hands out stay valid for the runtime's lifetime. (A mutex, not
  // std::call_once, whose thread-local state would make the library need ld.so.)
  std::mutex libraryNoteMutex;
  std::string describedWithLibrary;
  std::atomic<bool> hasLibraryNote{false};

  void noteLibrary(const std::string &note) {
    std::lock_guard<std::mutex> lock(libraryNoteMutex);
    if (hasLibraryNote.load(std::memory_order_relaxed))
      return;
    describedWithLibrary = cat(device.description, ", ", note);
    hasLibraryNote.store(true, std::memory_order_release);
  }
};

extern "C" {

void kiln_runtime_options_init(kiln_runtime_options *options) {
  if (options)
    *options = kiln_runtime_options{0, nullptr};
}

kiln_status kiln_runtime_create(const kiln_runtime_options *options,
                                kiln_runtime **out_runtime) {
  return guarded([&]() -> Error {
    if (!out_runtime)
      return nullArgument("out_runtime");
    kiln_runtime_options defaults;
    kiln_runtime_options_init(&defaults);
    if (!options)
      options = &defaults;
    if (options->num_threads < 0)
      return error(KILN_ERROR_INVALID_ARGUMENT, "num_threads is ", options->num_threads,
                   " (must be 0 for one per CPU, or positive)");
    kiln::runtime::RuntimeDevice device;
    if (auto err = kiln::runtime::findDevice(options->device, &device))
      return err;
    auto *runtime = new kiln_runtime;
    runtime->device = std::move(device);
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    runtime->numThreads = options->num_threads ? options->num_threads
                                               : int(cpus > 0 ? cpus : 1);
    *out_runtime = runtime;
    return {};
  });
}

void kiln_runtime_release(kiln_runtime *runtime) { release(runtime); }

const char *kiln_runtime_device(const kiln_runtime *runtime) {
  if (!runtime)
    return "";
  return runtime->hasLibraryNote.load(std::memory_order_acquire)
             ? runtime->describedWithLibrary.c_str()
             : runtime->device.description.c_str();
}

} // extern "C"

// ---- modules ----------------------------------------------------------------------

namespace {

// The artifact's bytes and how to give them back.
class ArtifactBytes {
public:
  enum class Owner { Borrowed, Malloc, Mmap };
  ArtifactBytes() = default;
  ArtifactBytes(const ArtifactBytes &) = delete;
  ArtifactBytes &operator=(const ArtifactBytes &) = delete;
  ~ArtifactBytes() {
    if (owner == Owner::Malloc)
      std::free(const_cast<uint8_t *>(data));
    else if (owner == Owner::Mmap)
      munmap(const_cast<uint8_t *>(data), size);
  }
  void assign(const uint8_t *bytes, size_t count, Owner how) {
    data = bytes;
    size = count;
    owner = how;
  }
  const uint8_t *data = nullptr;
  size_t size = 0;

private:
  Owner owner = Owner::Borrowed;
};

struct TensorInfo {
  const char *name;
  kiln_dtype dtype;
  std::vector<int64_t> shape;
  size_t bytes;
  uint32_t buffer;
};

struct EntryInfo {
  const char *name;
  std::vector<TensorInfo> inputs;
  std::vector<TensorInfo> outputs;
};

TensorInfo tensorInfo(const artifact::Program &program, const artifact::Value &value) {
  const artifact::Buffer &buffer = *program.buffers()->Get(value.buffer());
  const artifact::TensorType &type = *buffer.type();
  std::vector<int64_t> shape;
  if (type.shape())
    shape.assign(type.shape()->begin(), type.shape()->end());
  return TensorInfo{value.name()->c_str(), kiln_dtype(type.dtype()), std::move(shape),
                    size_t(buffer.size()), value.buffer()};
}

} // namespace

struct kiln_module {
  // Declaration order is destruction order reversed: the device (its memory) goes
  // before the code object that reaches it is unloaded, that before the bytes go, and
  // the runtime is released last.
  std::atomic<int> refs{1};
  std::unique_ptr<kiln_runtime, void (*)(kiln_runtime *)> runtime{nullptr,
                                                                  kiln_runtime_release};
  ArtifactBytes bytes;
  artifact::ArtifactView view;
  kiln::runtime::CodeObject code;
  std::unique_ptr<kiln::runtime::Device> device;
  // Per kernel, the library call its dispatches make instead of running it; null where
  // the kernel runs (no call, one this runtime does not know, or a device without it).
  std::vector<const artifact::LibraryCall *> libraryCalls;
  std::vector<EntryInfo> entries;

  Error load(kiln_runtime *owner) {
    retain(owner);
    runtime.reset(owner);
    if (auto err = artifact::validateArtifact(bytes.data, bytes.size, &view))
      return error(KILN_ERROR_INVALID_ARTIFACT, err.message);
    const artifact::CodeObjectBytes *chosen = nullptr;
    if (auto err = kiln::runtime::chooseCodeObject(view, owner->device, &chosen))
      return err;
    if (chosen)
      if (auto err = code.load(*view.program, *chosen, owner->numThreads))
        return err;
    const artifact::Program &program = *view.program;
    std::vector<const artifact::LibraryCall *> calls;
    if (program.kernels())
      for (const artifact::Kernel *kernel : *program.kernels())
        calls.push_back(artifact::knownLibraryCall(*kernel));
    if (chosen && owner->device.name != "cpu") {
      // Weights are only read, from the file mapping as on the CPU.
      kiln::runtime::HostRange weights{const_cast<uint8_t *>(view.weights.data),
                                       view.weights.size};
      bool callsCublas = std::any_of(calls.begin(), calls.end(),
                                     [](const artifact::LibraryCall *call) { return call; });
      if (auto err =
              kiln::runtime::halideDevice(owner->device, code, weights, callsCublas, &device))
        return err;
    } else {
      device = kiln::runtime::cpuDevice();
    }
    for (const artifact::LibraryCall *&call : calls)
      if (call && !device->runs(*call))
        call = nullptr;
    libraryCalls = std::move(calls);
    std::string note = device->libraryNote();
    if (!note.empty())
      owner->noteLibrary(note);
    if (program.entry_points())
      for (const artifact::EntryPoint *entry : *program.entry_points()) {
        EntryInfo info{entry->name()->c_str(), {}, {}};
        if (entry->inputs())
          for (const artifact::Value *v : *entry->inputs())
            info.inputs.push_back(tensorInfo(program, *v));
        if (entry->outputs())
          for (const artifact::Value *v : *entry->outputs())
            info.outputs.push_back(tensorInfo(program, *v));
        entries.push_back(std::move(info));
      }
    return {};
  }
};

namespace {

// Validates the module's bytes and loads its code; on success hands the module to the
// caller. `where` (a path, or empty) prefixes error messages.
Error finishLoad(std::unique_ptr<kiln_module> module, kiln_runtime *runtime,
                 const char *where, kiln_module **out_module) {
  Error err = module->load(runtime);
  if (err) {
    if (*where)
      err.message = cat(where, ": ", err.message);
    return err;
  }
  *out_module = module.release();
  return {};
}

const EntryInfo *findEntry(const kiln_module *module, size_t entry_point) {
  return module && entry_point < module->entries.size() ? &module->entries[entry_point]
                                                        : nullptr;
}

void fillInfo(const TensorInfo &info, kiln_tensor_info *out) {
  *out = kiln_tensor_info{info.name, info.dtype, info.shape.size(), info.shape.data(),
                          info.bytes};
}

Error tensorLookup(const kiln_module *module, size_t entry_point, size_t index, bool input,
                   kiln_tensor_info *out_info) {
  if (!module)
    return nullArgument("module");
  if (!out_info)
    return nullArgument("out_info");
  const EntryInfo *entry = findEntry(module, entry_point);
  if (!entry)
    return error(KILN_ERROR_NOT_FOUND, "entry point ", entry_point,
                 " does not exist (the module has ", module->entries.size(), ")");
  const std::vector<TensorInfo> &list = input ? entry->inputs : entry->outputs;
  if (index >= list.size())
    return error(KILN_ERROR_NOT_FOUND, "entry point ", entry->name, " has ", list.size(),
                 input ? " inputs" : " outputs", "; there is no number ", index);
  fillInfo(list[index], out_info);
  return {};
}

} // namespace

extern "C" {

kiln_status kiln_module_load_file(kiln_runtime *runtime, const char *path,
                                  kiln_module **out_module) {
  return guarded([&]() -> Error {
    if (!runtime)
      return nullArgument("runtime");
    if (!path)
      return nullArgument("path");
    if (!out_module)
      return nullArgument("out_module");
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
      return error(KILN_ERROR_IO, "cannot open ", path, ": ", std::strerror(errno));
    struct stat info;
    if (fstat(fd, &info) != 0 || !S_ISREG(info.st_mode)) {
      close(fd);
      return error(KILN_ERROR_IO, "cannot read ", path, ": not a regular file");
    }
    auto module = std::make_unique<kiln_module>();
    size_t size = size_t(info.st_size);
    void *map = size ? mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0) : nullptr;
    int mapErrno = errno;
    close(fd);
    if (map == MAP_FAILED)
      return error(KILN_ERROR_IO, "cannot map ", path, ": ", std::strerror(mapErrno));
    if (map)
      module->bytes.assign(static_cast<const uint8_t *>(map), size,
                           ArtifactBytes::Owner::Mmap);
    return finishLoad(std::move(module), runtime, path, out_module);
  });
}

kiln_status kiln_module_load_memory(kiln_runtime *runtime, const void *data,
                                    size_t byte_size, kiln_load_mode mode,
                                    kiln_module **out_module) {
  return guarded([&]() -> Error {
    if (!runtime)
      return nullArgument("runtime");
    if (!out_module)
      return nullArgument("out_module");
    if (!data && byte_size)
      return nullArgument("data");
    if (mode != KILN_LOAD_COPY && mode != KILN_LOAD_BORROW)
      return error(KILN_ERROR_INVALID_ARGUMENT, "unknown load mode ", int(mode));
    if (mode == KILN_LOAD_BORROW && reinterpret_cast<uintptr_t>(data) % 64 != 0)
      return error(KILN_ERROR_INVALID_ARGUMENT, "KILN_LOAD_BORROW needs 64-byte aligned data");
    auto module = std::make_unique<kiln_module>();
    const auto *bytes = static_cast<const uint8_t *>(data);
    if (mode == KILN_LOAD_BORROW || byte_size == 0) {
      module->bytes.assign(bytes, byte_size, ArtifactBytes::Owner::Borrowed);
    } else {
      // Exactly byte_size bytes (so sanitizers see any overread), 64-byte aligned like
      // a mapping so weights keep their alignment.
      void *copy = nullptr;
      if (posix_memalign(&copy, 64, byte_size) != 0)
        return error(KILN_ERROR_OUT_OF_MEMORY, "cannot copy the artifact's ", byte_size,
                     " bytes");
      std::memcpy(copy, bytes, byte_size);
      module->bytes.assign(static_cast<const uint8_t *>(copy), byte_size,
                           ArtifactBytes::Owner::Malloc);
    }
    return finishLoad(std::move(module), runtime, "", out_module);
  });
}

void kiln_module_release(kiln_module *module) { release(module); }

const char *kiln_module_target(const kiln_module *module) {
  return module && module->view.program->target() ? module->view.program->target()->c_str()
                                                  : "";
}

size_t kiln_module_entry_point_count(const kiln_module *module) {
  return module ? module->entries.size() : 0;
}

const char *kiln_module_entry_point_name(const kiln_module *module, size_t entry_point) {
  const EntryInfo *entry = findEntry(module, entry_point);
  return entry ? entry->name : nullptr;
}

kiln_status kiln_module_find_entry_point(const kiln_module *module, const char *name,
                                         size_t *out_entry_point) {
  return guarded([&]() -> Error {
    if (!module)
      return nullArgument("module");
    if (!name)
      return nullArgument("name");
    if (!out_entry_point)
      return nullArgument("out_entry_point");
    for (size_t i = 0; i < module->entries.size(); ++i)
      if (std::strcmp(module->entries[i].name, name) == 0) {
        *out_entry_point = i;
        return {};
      }
    return error(KILN_ERROR_NOT_FOUND, "the module has no entry point named \"", name, "\"");
  });
}

size_t kiln_module_input_count(const kiln_module *module, size_t entry_point) {
  const EntryInfo *entry = findEntry(module, entry_point);
  return entry ? entry->inputs.size() : 0;
}

size_t kiln_module_output_count(const kiln_module *module, size_t entry_point) {
  const EntryInfo *entry = findEntry(module, entry_point);
  return entry ? entry->outputs.size() : 0;
}

kiln_status kiln_module_input_info(const kiln_module *module, size_t entry_point,
                                   size_t input, kiln_tensor_info *out_info) {
  return guarded([&] { return tensorLookup(module, entry_point, input, true, out_info); });
}

kiln_status kiln_module_output_info(const kiln_module *module, size_t entry_point,
                                    size_t output, kiln_tensor_info *out_info) {
  return guarded([&] { return tensorLookup(module, entry_point, output, false, out_info); });
}

} // extern "C"

// ---- sessions ---------------------------------------------------------------------

// Persistent state (KV caches): one zero-filled mapping holding every state slot,
// shared by the sessions created with kiln_session_create_sharing_state.
struct StateBlock {
  uint8_t *memory = nullptr;
  size_t size = 0;
  std::vector<uint64_t> offsets;
  // Its copy on the module's device, the truth between runs (null on the CPU).
  std::unique_ptr<kiln::runtime::DeviceMemory> device;
  // The session inside a call that writes session memory (set_input, run), or null.
  // Sessions sharing a block are used by one thread at a time (runtime.h), so one flag
  // per block catches a session used from two threads and two sharing sessions alike.
  std::atomic<const kiln_session *> user{nullptr};
  ~StateBlock() {
    if (memory)
      munmap(memory, size);
  }
};

namespace {

uint64_t monotonicNs() {
  timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  return uint64_t(now.tv_sec) * 1000000000u + uint64_t(now.tv_nsec);
}

} // namespace

// What a session records while profiling: each dispatch's totals and, up to a limit, one
// event per call. The events' storage is reserved when profiling starts, so recording
// never reallocates in the middle of a run (untouched pages of it cost no memory).
struct SessionProfile {
  struct Totals {
    uint64_t calls = 0, totalNs = 0, minNs = UINT64_MAX;
  };
  std::vector<Totals> dispatches;
  std::vector<kiln_trace_event> events;
  size_t maxEvents = 0;
  uint64_t dropped = 0, runs = 0, runNs = 0, kernelNs = 0;

  void record(size_t dispatch, uint64_t start, uint64_t end) {
    uint64_t ns = end - start;
    Totals &totals = dispatches[dispatch];
    ++totals.calls;
    totals.totalNs += ns;
    totals.minNs = std::min(totals.minNs, ns);
    kernelNs += ns;
    if (events.size() < maxEvents)
      events.push_back(kiln_trace_event{dispatch, start, ns});
    else
      ++dropped;
  }
};

struct kiln_session {
  // The module outlives the state block, whose device memory its code object frees.
  std::atomic<int> refs{1};
  std::unique_ptr<kiln_module, void (*)(kiln_module *)> module{nullptr, kiln_module_release};
  std::shared_ptr<StateBlock> state;
  const EntryInfo *entry = nullptr;
  const artifact::EntryPoint *entryPoint = nullptr;

  // One anonymous mapping: the arena first, then each input, 64-byte aligned. mmap
  // rather than malloc: zero-filled, page aligned, and a huge arena_size fails cleanly.
  uint8_t *memory = nullptr;
  size_t memorySize = 0;
  std::vector<uint8_t *> inputs;
  std::vector<bool> inputSet;

  // halide_buffer_t per buffer id the entry uses (slot[id] indexes `buffers`), their
  // dimension arrays, and each dispatch's argv.
  std::vector<int32_t> slot;
  std::vector<halide_buffer_t> buffers;
  std::vector<halide_dimension_t> dims;
  std::vector<std::vector<void *>> argv;
  // On a GPU: the copy of `memory` there and the device memory protocol (Device.h);
  // both null on the CPU.
  std::unique_ptr<kiln::runtime::DeviceMemory> deviceMemory;
  std::unique_ptr<kiln::runtime::DeviceSession> device;
  bool hasRun = false;
  // Non-null once profiling was started; `profiling` says whether runs are timed now.
  std::unique_ptr<SessionProfile> profile;
  bool profiling = false;

  ~kiln_session() {
    if (memory)
      munmap(memory, memorySize);
  }

  uint8_t *host(uint32_t id) const {
    const artifact::ArtifactView &view = module->view;
    const artifact::Buffer &storage = *view.program->buffers()->Get(view.storage[id]);
    switch (storage.kind()) {
    case artifact::BufferKind::Input:
      return inputs[storage.index()];
    case artifact::BufferKind::Weight:
      return const_cast<uint8_t *>(view.weights.data) + storage.offset();
    case artifact::BufferKind::Arena:
      return memory + storage.offset();
    case artifact::BufferKind::State:
      return state->memory + state->offsets[storage.index()];
    case artifact::BufferKind::Alias:
      break; // storage is never an alias (validated)
    }
    return nullptr;
  }

  // The state slots, unless another session's are shared (`state` already set).
  Error allocateState() {
    if (state)
      return {};
    const std::vector<uint64_t> &sizes = module->view.stateSizes;
    auto block = std::make_shared<StateBlock>();
    uint64_t size = 0;
    for (uint64_t bytes : sizes) {
      size = (size + 63) / 64 * 64;
      block->offsets.push_back(size);
      if (__builtin_add_overflow(size, bytes, &size))
        return error(KILN_ERROR_OUT_OF_MEMORY, "the session's state size overflows");
    }
    if (size != 0) {
      void *map = mmap(nullptr, size_t(size), PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      if (map == MAP_FAILED)
        return error(KILN_ERROR_OUT_OF_MEMORY, "cannot allocate the session's ", size,
                     " bytes of state: ", std::strerror(errno));
      block->memory = static_cast<uint8_t *>(map);
      block->size = size_t(size);
    }
    // Zero on the device too: the zero pages are uploaded.
    if (auto err = module->device->mirror({block->memory, block->size}, &block->device))
      return err;
    state = std::move(block);
    return {};
  }

  Error allocate() {
    uint64_t size = module->view.program->arena_size();
    std::vector<uint64_t> offsets;
    for (const TensorInfo &input : entry->inputs) {
      size = (size + 63) / 64 * 64;
      offsets.push_back(size);
      if (__builtin_add_overflow(size, uint64_t(input.bytes), &size))
        return error(KILN_ERROR_OUT_OF_MEMORY, "the session's memory size overflows");
    }
    memorySize = size_t(size ? size : 1);
    void *map = mmap(nullptr, memorySize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                     -1, 0);
    if (map == MAP_FAILED)
      return error(KILN_ERROR_OUT_OF_MEMORY, "cannot allocate the session's ", size,
                   " bytes (arena ", module->view.program->arena_size(),
                   " + inputs): ", std::strerror(errno));
    memory = static_cast<uint8_t *>(map);
    for (uint64_t offset : offsets)
      inputs.push_back(memory + offset);
    inputSet.assign(inputs.size(), false);
    return module->device->mirror({memory, memorySize}, &deviceMemory);
  }

  // One halide_buffer_t per buffer the entry point uses (dimensions innermost first,
  // as Halide numbers them), and each dispatch's argv pointing at them.
  void prepareBuffers() {
    const artifact::Program &p = *module->view.program;
    std::vector<uint32_t> used;
    for (const TensorInfo &output : entry->outputs)
      used.push_back(output.buffer);
    if (entryPoint->dispatches())
      for (const artifact::Dispatch *d : *entryPoint->dispatches())
        used.insert(used.end(), d->args()->begin(), d->args()->end());
    slot.assign(p.buffers()->size(), -1);
    for (uint32_t id : used)
      if (slot[id] < 0) {
        slot[id] = int32_t(buffers.size());
        buffers.emplace_back();
      }
    // kMaxRank slots per buffer, zero past its rank (see ArtifactReader.h).
    dims.assign(buffers.size() * artifact::kMaxRank, halide_dimension_t{});
    halide_dimension_t *nextDim = dims.data();
    for (uint32_t id = 0; id < slot.size(); ++id) {
      if (slot[id] < 0)
        continue;
      const artifact::TensorType &type = *p.buffers()->Get(id)->type();
      const kiln::runtime::DTypeInfo &dtype = *kiln::runtime::findDType(type.dtype());
      int32_t rank = type.shape() ? int32_t(type.shape()->size()) : 0;
      halide_buffer_t &b = buffers[size_t(slot[id])];
      b = halide_buffer_t{};
      b.host = host(id);
      b.type = halide_type_t(dtype.halideCode, dtype.halideBits);
      b.dimensions = rank;
      b.dim = nextDim;
      int64_t stride = 1; // fits int32: validated by tensorByteSize
      for (int32_t d = 0; d < rank; ++d) {
        int64_t extent = type.shape()->Get(uint32_t(rank - 1 - d));
        nextDim[d] = halide_dimension_t(0, int32_t(extent), int32_t(stride));
        stride *= extent;
      }
      nextDim += artifact::kMaxRank;
    }
    if (entryPoint->dispatches())
      for (const artifact::Dispatch *d : *entryPoint->dispatches()) {
        std::vector<void *> args;
        for (uint32_t id : *d->args())
          args.push_back(&buffers[size_t(slot[id])]);
        argv.push_back(std::move(args));
      }
  }

  // Points the buffers at their device copies (nothing on the CPU).
  Error attachDevice() {
    kiln::runtime::SessionMemory layout;
    layout.buffers = &buffers;
    layout.mirrors = {deviceMemory.get(), state->device.get()};
    for (size_t i = 0; i < inputs.size(); ++i)
      layout.inputs.push_back({inputs[i], entry->inputs[i].bytes});
    for (const TensorInfo &output : entry->outputs)
      layout.outputs.push_back(size_t(slot[output.buffer]));
    return module->device->attach(layout, &device);
  }

  // Runs `body` (set_input, run) with this session's state block claimed, so that a
  // second thread calling in meanwhile gets an error instead of racing on the arena,
  // the inputs or the state.
  template <typename Body> Error exclusive(Body &&body) {
    const kiln_session *holder = nullptr;
    if (!state->user.compare_exchange_strong(holder, this, std::memory_order_acquire))
      return holder == this
                 ? error(KILN_ERROR_FAILED_PRECONDITION, "the session of entry point ",
                         entry->name, " is already running on another thread (a run or "
                         "set_input has not returned); use one session per thread")
                 : error(KILN_ERROR_FAILED_PRECONDITION, "a session sharing state with "
                         "this session of entry point ", entry->name, " is running on "
                         "another thread; sessions sharing state are used by one thread "
                         "at a time");
    struct Release {
      std::atomic<const kiln_session *> &user;
      ~Release() { user.store(nullptr, std::memory_order_release); }
    } release{state->user};
    return body();
  }

  Error setInput(size_t index, const void *data, size_t byte_size) {
    if (index >= entry->inputs.size())
      return error(KILN_ERROR_NOT_FOUND, "entry point ", entry->name, " has ",
                   entry->inputs.size(), " inputs; there is no input ", index);
    const TensorInfo &input = entry->inputs[index];
    if (byte_size != input.bytes)
      return error(KILN_ERROR_INVALID_ARGUMENT, "input ", index, " (", input.name,
                   ") of entry point ", entry->name, " is ", describe(input.dtype, input.shape),
                   ", ", input.bytes, " bytes; got ", byte_size, " bytes");
    if (!data && byte_size)
      return nullArgument("data");
    if (byte_size)
      std::memcpy(inputs[index], data, byte_size);
    inputSet[index] = true;
    return {};
  }

  Error run() {
    for (size_t i = 0; i < inputSet.size(); ++i)
      if (!inputSet[i])
        return error(KILN_ERROR_FAILED_PRECONDITION, "input ", i, " (",
                     entry->inputs[i].name, ") of entry point ", entry->name,
                     " has not been set");
    hasRun = false;
    const artifact::Program &p = *module->view.program;
    SessionProfile *timing = profiling ? profile.get() : nullptr;
    uint64_t runStart = timing ? monotonicNs() : 0, end = runStart;
    if (device)
      if (auto err = device->startRun())
        return error(err.code, "entry point ", entry->name, ": uploading the inputs: ",
                     err.message);
    for (size_t d = 0; d < argv.size(); ++d) {
      uint32_t kernel = entryPoint->dispatches()->Get(uint32_t(d))->kernel();
      if (device) {
        device->beforeDispatch(argv[d]);
      } else {
        // Kernels may set dirty flags; each call starts from clean buffers.
        for (void *arg : argv[d])
          static_cast<halide_buffer_t *>(arg)->flags = 0;
      }
      auto at = [&] {
        return cat("entry point ", entry->name, ": dispatch ", d, ": kernel ",
                   p.kernels()->Get(kernel)->name()->c_str());
      };
      // The kernel, or the library call its device makes instead (only a device
      // session makes one: libraryCalls is null on the CPU).
      const artifact::LibraryCall *library = module->libraryCalls[kernel];
      uint64_t start = timing ? monotonicNs() : 0;
      int result = 0;
      if (library) {
        if (auto err = device->callLibrary(*library, argv[d]))
          return error(err.code, at(), ": ", err.message);
      } else {
        result = module->code.kernel(kernel)(argv[d].data());
      }
      if (timing) {
        // GPU work runs after its launch returns: wait for it, so the time is its.
        if (device && result == 0)
          result = device->waitForKernel(argv[d]);
        end = monotonicNs();
        timing->record(d, start, end);
      }
      if (result != 0) {
        std::string why = kiln::runtime::takeKernelError();
        return error(KILN_ERROR_KERNEL_FAILED, at(), " failed with error ", result,
                     why.empty() ? "" : ": ", why);
      }
      if (device)
        if (auto err = device->afterDispatch(argv[d]))
          return error(err.code, at(), ": ", err.message);
    }
    if (device) {
      if (auto err = device->finishRun())
        return error(err.code, "entry point ", entry->name, ": downloading the outputs: ",
                     err.message);
      if (timing)
        end = monotonicNs();
    }
    if (timing) {
      ++timing->runs;
      timing->runNs += end - runStart;
    }
    hasRun = true;
    return {};
  }

  Error startProfiling(const kiln_profile_options &options) {
    auto fresh = std::make_unique<SessionProfile>();
    if (options.max_trace_events > fresh->events.max_size())
      return error(KILN_ERROR_INVALID_ARGUMENT, "max_trace_events is ",
                   options.max_trace_events, ", more than can be allocated");
    fresh->dispatches.resize(argv.size());
    fresh->maxEvents = options.max_trace_events;
    fresh->events.reserve(fresh->maxEvents);
    profile = std::move(fresh);
    profiling = true;
    return {};
  }

  void dispatchProfile(size_t d, kiln_dispatch_profile *out) const {
    const artifact::Program &p = *module->view.program;
    const artifact::Dispatch &dispatch = *entryPoint->dispatches()->Get(uint32_t(d));
    uint64_t bytes = dispatch.bytes();
    if (bytes == 0) {
      // Each storage buffer once: an alias and its target are the same bytes.
      std::vector<uint32_t> seen;
      for (uint32_t id : *dispatch.args()) {
        uint32_t storage = module->view.storage[id];
        if (std::find(seen.begin(), seen.end(), storage) == seen.end()) {
          seen.push_back(storage);
          bytes += p.buffers()->Get(storage)->size();
        }
      }
    }
    SessionProfile::Totals totals;
    if (profile)
      totals = profile->dispatches[d];
    *out = kiln_dispatch_profile{p.kernels()->Get(dispatch.kernel())->name()->c_str(),
                                 dispatch.kernel(),
                                 dispatch.location() ? dispatch.location()->c_str() : "",
                                 dispatch.summary() ? dispatch.summary()->c_str() : "",
                                 dispatch.flops(),
                                 bytes,
                                 totals.calls,
                                 totals.totalNs,
                                 totals.calls ? totals.minNs : 0};
  }

  Error output(size_t index, const void **data, size_t *size) const {
    if (index >= entry->outputs.size())
      return error(KILN_ERROR_NOT_FOUND, "entry point ", entry->name, " has ",
                   entry->outputs.size(), " outputs; there is no output ", index);
    if (!hasRun)
      return error(KILN_ERROR_FAILED_PRECONDITION,
                   "outputs are read after a successful kiln_session_run");
    *data = host(entry->outputs[index].buffer);
    *size = entry->outputs[index].bytes;
    return {};
  }
};

extern "C" {

kiln_status kiln_session_create(kiln_module *module, size_t entry_point,
                                kiln_session **out_session) {
  return kiln_session_create_sharing_state(module, entry_point, nullptr, out_session);
}

kiln_status kiln_session_create_sharing_state(kiln_module *module, size_t entry_point,
                                              kiln_session *state_owner,
                                              kiln_session **out_session) {
  return guarded([&]() -> Error {
    if (!module)
      return nullArgument("module");
    if (!out_session)
      return nullArgument("out_session");
    if (state_owner && state_owner->module.get() != module)
      return error(KILN_ERROR_INVALID_ARGUMENT,
                   "state_owner is a session of another module; state is shared only "
                   "between the entry points of one module");
    const EntryInfo *entry = findEntry(module, entry_point);
    if (!entry)
      return error(KILN_ERROR_NOT_FOUND, "entry point ", entry_point,
                   " does not exist (the module has ", module->entries.size(), ")");
    std::unique_ptr<kiln_session> session(new kiln_session);
    retain(module);
    session->module.reset(module);
    session->entry = entry;
    session->entryPoint = module->view.program->entry_points()->Get(uint32_t(entry_point));
    if (state_owner)
      session->state = state_owner->state;
    if (auto err = session->allocate())
      return err;
    if (auto err = session->allocateState())
      return err;
    session->prepareBuffers();
    if (auto err = session->attachDevice())
      return err;
    *out_session = session.release();
    return {};
  });
}

void kiln_session_release(kiln_session *session) { release(session); }

kiln_status kiln_session_set_input(kiln_session *session, size_t input, const void *data,
                                   size_t byte_size) {
  return guarded([&]() -> Error {
    if (!session)
      return nullArgument("session");
    return session->exclusive([&] { return session->setInput(input, data, byte_size); });
  });
}

kiln_status kiln_session_set_input_by_name(kiln_session *session, const char *name,
                                           const void *data, size_t byte_size) {
  return guarded([&]() -> Error {
    if (!session)
      return nullArgument("session");
    if (!name)
      return nullArgument("name");
    const std::vector<TensorInfo> &inputs = session->entry->inputs;
    for (size_t i = 0; i < inputs.size(); ++i)
      if (std::strcmp(inputs[i].name, name) == 0)
        return session->exclusive([&] { return session->setInput(i, data, byte_size); });
    return error(KILN_ERROR_NOT_FOUND, "entry point ", session->entry->name,
                 " has no input named \"", name, "\"");
  });
}

kiln_status kiln_session_run(kiln_session *session) {
  return guarded([&]() -> Error {
    if (!session)
      return nullArgument("session");
    return session->exclusive([&] { return session->run(); });
  });
}

kiln_status kiln_session_output(kiln_session *session, size_t output,
                                const void **out_data, size_t *out_byte_size) {
  return guarded([&]() -> Error {
    if (!session)
      return nullArgument("session");
    if (!out_data || !out_byte_size)
      return nullArgument(!out_data ? "out_data" : "out_byte_size");
    return session->output(output, out_data, out_byte_size);
  });
}

kiln_status kiln_session_copy_output(kiln_session *session, size_t output, void *dst,
                                     size_t dst_byte_size) {
  return guarded([&]() -> Error {
    if (!session)
      return nullArgument("session");
    const void *data = nullptr;
    size_t size = 0;
    if (auto err = session->output(output, &data, &size))
      return err;
    if (dst_byte_size != size)
      return error(KILN_ERROR_INVALID_ARGUMENT, "output ", output, " (",
                   session->entry->outputs[output].name, ") is ", size, " bytes; dst holds ",
                   dst_byte_size);
    if (!dst && size)
      return nullArgument("dst");
    if (size)
      std::memcpy(dst, data, size);
    return {};
  });
}

} // extern "C"

// ---- profiling ----------------------------------------------------------------------

extern "C" {

void kiln_profile_options_init(kiln_profile_options *options) {
  if (options)
    *options = kiln_profile_options{size_t(1) << 20};
}

kiln_status kiln_session_start_profiling(kiln_session *session,
                                         const kiln_profile_options *options) {
  return guarded([&]() -> Error {
    if (!session)
      return nullArgument("session");
    kiln_profile_options defaults;
    kiln_profile_options_init(&defaults);
    return session->startProfiling(options ? *options : defaults);
  });
}

kiln_status kiln_session_stop_profiling(kiln_session *session) {
  return guarded([&]() -> Error {
    if (!session)
      return nullArgument("session");
    session->profiling = false;
    return {};
  });
}

kiln_status kiln_session_profile_summary(const kiln_session *session,
                                         kiln_profile_summary *out_summary) {
  return guarded([&]() -> Error {
    if (!session)
      return nullArgument("session");
    if (!out_summary)
      return nullArgument("out_summary");
    kiln_profile_summary summary{};
    summary.dispatch_count = session->argv.size();
    if (const SessionProfile *profile = session->profile.get()) {
      summary.runs = profile->runs;
      summary.run_ns = profile->runNs;
      summary.kernel_ns = profile->kernelNs;
      summary.trace_event_count = profile->events.size();
      summary.dropped_trace_events = profile->dropped;
    }
    *out_summary = summary;
    return {};
  });
}

kiln_status kiln_session_dispatch_profile(const kiln_session *session, size_t dispatch,
                                          kiln_dispatch_profile *out_profile) {
  return guarded([&]() -> Error {
    if (!session)
      return nullArgument("session");
    if (!out_profile)
      return nullArgument("out_profile");
    if (dispatch >= session->argv.size())
      return error(KILN_ERROR_NOT_FOUND, "entry point ", session->entry->name, " has ",
                   session->argv.size(), " dispatches; there is no dispatch ", dispatch);
    session->dispatchProfile(dispatch, out_profile);
    return {};
  });
}

kiln_status kiln_session_trace_events(const kiln_session *session, kiln_trace_event *events,
                                      size_t capacity, size_t *out_count) {
  return guarded([&]() -> Error {
    if (!session)
      return nullArgument("session");
    if (!events && capacity)
      return nullArgument("events");
    if (!out_count)
      return nullArgument("out_count");
    const SessionProfile *profile = session->profile.get();
    copyOut(profile ? profile->events.data() : nullptr, profile ? profile->events.size() : 0,
            events, capacity, out_count);
    return {};
  });
}

} // extern "C"

// ---- language models ---------------------------------------------------------------

struct kiln_sampler {
  kiln::llm::Sampler sampler;
};

extern "C" {

kiln_status kiln_tokenizer_load(const char *path, kiln_tokenizer **out_tokenizer) {
  return guarded([&]() -> Error {
    if (!path)
      return nullArgument("path");
    if (!out_tokenizer)
      return nullArgument("out_tokenizer");
    auto tokenizer = kiln::llm::Tokenizer::fromFile(path);
    if (!tokenizer)
      return error(KILN_ERROR_UNSUPPORTED, tokenizer.error());
    *out_tokenizer = new kiln_tokenizer{std::move(*tokenizer)};
    return {};
  });
}

void kiln_tokenizer_release(kiln_tokenizer *tokenizer) { delete tokenizer; }

kiln_status kiln_tokenizer_encode(const kiln_tokenizer *tokenizer, const char *text,
                                  size_t text_size, int add_bos, int32_t *ids, size_t capacity,
                                  size_t *out_count) {
  return guarded([&]() -> Error {
    if (!tokenizer)
      return nullArgument("tokenizer");
    if (!text && text_size)
      return nullArgument("text");
    if (!out_count)
      return nullArgument("out_count");
    std::vector<int32_t> encoded =
        tokenizer->tokenizer->encode(std::string_view(text ? text : "", text_size), add_bos != 0);
    copyOut(encoded.data(), encoded.size(), ids, capacity, out_count);
    return {};
  });
}

void kiln_tokenizer_encode_options_init(kiln_tokenizer_encode_options *options) {
  if (options)
    *options = {0, 0, 0, 0};
}

kiln_status kiln_tokenizer_encode_with_options(const kiln_tokenizer *tokenizer, const char *text,
                                               size_t text_size,
                                               const kiln_tokenizer_encode_options *options,
                                               int32_t *ids, size_t capacity, size_t *out_count) {
  return guarded([&]() -> Error {
    if (!tokenizer)
      return nullArgument("tokenizer");
    if (!text && text_size)
      return nullArgument("text");
    if (!out_count)
      return nullArgument("out_count");
    kiln::llm::EncodeOptions encodeOptions;
    if (options) {
      encodeOptions.addSpecialTokens = options->add_special_tokens != 0;
      encodeOptions.parseSpecial = options->parse_special != 0;
      encodeOptions.truncate = options->truncate != 0;
      encodeOptions.maxLength = options->max_length;
    }
    std::vector<int32_t> encoded =
        tokenizer->tokenizer->encode(std::string_view(text ? text : "", text_size), encodeOptions);
    copyOut(encoded.data(), encoded.size(), ids, capacity, out_count);
    return {};
  });
}

size_t kiln_tokenizer_default_max_length(const kiln_tokenizer *tokenizer) {
  return tokenizer ? tokenizer->tokenizer->defaultMaxLength() : 0;
}

kiln_status kiln_tokenizer_decode(const kiln_tokenizer *tokenizer, const int32_t *ids,
                                  size_t count, char *text, size_t capacity, size_t *out_size) {
  return guarded([&]() -> Error {
    if (!tokenizer)
      return nullArgument("tokenizer");
    if (!ids && count)
      return nullArgument("ids");
    if (!out_size)
      return nullArgument("out_size");
    auto decoded = tokenizer->tokenizer->decode(std::vector<int32_t>(ids, ids + count));
    if (!decoded)
      return error(KILN_ERROR_INVALID_ARGUMENT, decoded.error());
    copyOut(decoded->data(), decoded->size(), text, capacity, out_size);
    return {};
  });
}

int32_t kiln_tokenizer_eos(const kiln_tokenizer *tokenizer) {
  return tokenizer ? tokenizer->tokenizer->vocabulary().eos : -1;
}

void kiln_sampler_options_init(kiln_sampler_options *options) {
  if (!options)
    return;
  kiln::llm::SamplerOptions defaults;
  *options = {defaults.temperature, defaults.topK, defaults.topP, defaults.minP,
              defaults.repetitionPenalty, defaults.repetitionWindow, defaults.seed};
}

kiln_status kiln_sampler_create(const kiln_sampler_options *options, kiln_sampler **out_sampler) {
  return guarded([&]() -> Error {
    if (!out_sampler)
      return nullArgument("out_sampler");
    kiln_sampler_options o;
    kiln_sampler_options_init(&o);
    if (options)
      o = *options;
    kiln::llm::SamplerOptions s;
    s.temperature = o.temperature;
    s.topK = o.top_k;
    s.topP = o.top_p;
    s.minP = o.min_p;
    s.repetitionPenalty = o.repetition_penalty;
    s.repetitionWindow = o.repetition_window;
    s.seed = o.seed;
    *out_sampler = new kiln_sampler{kiln::llm::Sampler(s)};
    return {};
  });
}

void kiln_sampler_release(kiln_sampler *sampler) { delete sampler; }

kiln_status kiln_sampler_sample(kiln_sampler *sampler, const float *logits, size_t vocab_size,
                                const int32_t *history, size_t history_size,
                                int32_t *out_token) {
  return guarded([&]() -> Error {
    if (!sampler)
      return nullArgument("sampler");
    if (!logits || vocab_size == 0)
      return error(KILN_ERROR_INVALID_ARGUMENT, "no logits to sample from");
    if (!history && history_size)
      return nullArgument("history");
    if (!out_token)
      return nullArgument("out_token");
    std::vector<int32_t> tokens(history, history + history_size);
    *out_token = sampler->sampler.sample(logits, vocab_size, tokens);
    return {};
  });
}

} // extern "C"
