// Devices: finding the one a runtime asks for (the CUDA driver through dlopen), choosing
// the code object for it, the device memory protocol of sessions on a GPU, through
// the Halide runtime that a GPU code object carries (HalideRuntime.h), and the library
// calls a CUDA device makes through cuBLAS (also dlopen'ed) in Halide's context.
#include "Device.h"

#include "CublasApi.h"

#include <HalideRuntimeCuda.h>

#include <algorithm>
#include <cstdlib>
#include <dlfcn.h>
#include <mutex>
#include <string_view>

namespace kiln::runtime {
namespace {

struct Symbol {
  const char *name;
  void **slot;
};

// Looks every symbol up in a dlopen'ed library; the first one missing, or null.
const char *resolve(void *library, std::initializer_list<Symbol> symbols) {
  for (const Symbol &symbol : symbols) {
    *symbol.slot = dlsym(library, symbol.name);
    if (!*symbol.slot)
      return symbol.name;
  }
  return nullptr;
}

// The first of `names` dlopen loads with `flags`, or null with the first failure's
// message in `error`.
void *openFirst(std::initializer_list<const char *> names, int flags, std::string &error) {
  for (const char *name : names) {
    if (void *handle = dlopen(name, flags)) {
      error.clear();
      return handle;
    }
    const char *why = dlerror();
    if (error.empty())
      error = why ? why : cat("cannot load ", name);
  }
  return nullptr;
}

// ---- the CUDA driver ----------------------------------------------------------------

// The driver API functions the probe calls (cuda.h: CUresult and CUdevice are ints).
struct CudaDriver {
  void *handle = nullptr;
  std::string error; // why it could not be loaded
  int (*init)(unsigned flags) = nullptr;
  int (*deviceCount)(int *count) = nullptr;
  int (*device)(int *device, int ordinal) = nullptr;
  int (*attribute)(int *value, int attribute, int device) = nullptr;
  int (*name)(char *name, int length, int device) = nullptr;
};

// CUdevice_attribute values.
constexpr int kMultiprocessorCount = 16;
constexpr int kComputeCapabilityMajor = 75;
constexpr int kComputeCapabilityMinor = 76;

// Loaded once per process and never unloaded, RTLD_GLOBAL: the Halide runtime in a CUDA
// code object looks the driver's functions up in the process before it tries to
// dlopen "libcuda.so" itself, a name that only the driver's development files install.
const CudaDriver &cudaDriver() {
  static const CudaDriver driver = [] {
    CudaDriver d;
    d.handle = openFirst({"libcuda.so.1", "libcuda.so"}, RTLD_NOW | RTLD_GLOBAL, d.error);
    if (!d.handle)
      return d;
    const char *missing = resolve(
        d.handle, {{"cuInit", reinterpret_cast<void **>(&d.init)},
                   {"cuDeviceGetCount", reinterpret_cast<void **>(&d.deviceCount)},
                   {"cuDeviceGet", reinterpret_cast<void **>(&d.device)},
                   {"cuDeviceGetAttribute", reinterpret_cast<void **>(&d.attribute)},
                   {"cuDeviceGetName", reinterpret_cast<void **>(&d.name)}});
    if (missing) {
      d.error = cat("the driver library has no ", missing);
      d.handle = nullptr;
      return d;
    }
    d.error.clear();
    return d;
  }();
  return driver;
}

// The GPU Halide's CUDA runtime picks: HL_GPU_DEVICE when set (and not -1), else the
// only one, else the one with the most multiprocessors (the last of equals).
Error chooseCudaOrdinal(const CudaDriver &driver, int count, int *ordinal) {
  const char *chosen = std::getenv("HL_GPU_DEVICE");
  if (chosen && *chosen) {
    char *end = nullptr;
    long value = std::strtol(chosen, &end, 10);
    if (*end || value < -1 || value >= count)
      return error(KILN_ERROR_UNSUPPORTED, "device cuda: HL_GPU_DEVICE is \"", chosen,
                   "\" but the CUDA devices are numbered 0 to ", count - 1);
    if (value >= 0) {
      *ordinal = int(value);
      return {};
    }
  }
  *ordinal = 0;
  if (count == 1)
    return {};
  int most = 0;
  for (int i = 0; i < count; ++i) {
    int device = 0, multiprocessors = 0;
    if (driver.device(&device, i) == 0 &&
        driver.attribute(&multiprocessors, kMultiprocessorCount, device) == 0 &&
        multiprocessors >= most) {
      *ordinal = i;
      most = multiprocessors;
    }
  }
  return {};
}

Error findCuda(RuntimeDevice *out) {
  const CudaDriver &driver = cudaDriver();
  if (!driver.handle)
    return error(KILN_ERROR_UNSUPPORTED, "device cuda: no CUDA driver: ", driver.error);
  if (int result = driver.init(0))
    return error(KILN_ERROR_UNSUPPORTED, "device cuda: cuInit failed with CUDA error ", result);
  int count = 0;
  if (int result = driver.deviceCount(&count))
    return error(KILN_ERROR_UNSUPPORTED, "device cuda: cuDeviceGetCount failed with CUDA error ",
                 result);
  if (count <= 0)
    return error(KILN_ERROR_UNSUPPORTED,
                 "device cuda: no CUDA device (cuDeviceGetCount returned 0)");
  RuntimeDevice found;
  found.name = "cuda";
  if (auto err = chooseCudaOrdinal(driver, count, &found.ordinal))
    return err;
  int device = 0, major = 0, minor = 0;
  char model[256] = {};
  int result = driver.device(&device, found.ordinal);
  if (!result)
    result = driver.attribute(&major, kComputeCapabilityMajor, device);
  if (!result)
    result = driver.attribute(&minor, kComputeCapabilityMinor, device);
  if (!result)
    result = driver.name(model, int(sizeof model) - 1, device);
  if (result)
    return error(KILN_ERROR_UNSUPPORTED, "device cuda: cannot query CUDA device ",
                 found.ordinal, ": CUDA error ", result);
  found.model = model;
  found.capability = major * 10 + minor;
  const char *cublas = std::getenv("KILN_CUBLAS");
  found.cublas = !(cublas && std::string_view(cublas) == "0");
  found.description = cat("cuda: ", found.model, " (sm_", found.capability,
                          count > 1 ? cat(", device ", found.ordinal, " of ", count) : "", ")");
  *out = std::move(found);
  return {};
}

// ---- code objects -------------------------------------------------------------------

std::string_view targetOf(const artifact::CodeObjectBytes &code) {
  return code.object->target() ? code.object->target()->string_view() : std::string_view();
}

// The architecture a CUDA code object was compiled for, from its Halide target's
// cuda_capability_NN feature (Halide's default without one is sm_20).
int cudaCapability(std::string_view target) {
  constexpr std::string_view feature = "cuda_capability_";
  for (size_t at = target.find(feature); at != std::string_view::npos;
       at = target.find(feature, at + 1)) {
    if (at != 0 && target[at - 1] != '-')
      continue;
    int capability = 0;
    size_t i = at + feature.size();
    for (; i < target.size() && target[i] >= '0' && target[i] <= '9' && capability < 1000; ++i)
      capability = capability * 10 + (target[i] - '0');
    if (i > at + feature.size() && (i == target.size() || target[i] == '-'))
      return capability;
  }
  return 20;
}

// "cpu and cuda", the devices the artifact has code for, each once.
std::string devicesOf(const artifact::ArtifactView &view) {
  std::vector<std::string> devices;
  for (const artifact::CodeObjectBytes &code : view.code) {
    std::string device = code.object->device() ? code.object->device()->str() : "";
    if (std::find(devices.begin(), devices.end(), device) == devices.end())
      devices.push_back(device);
  }
  std::string text;
  for (size_t i = 0; i < devices.size(); ++i)
    text += cat(i == 0 ? "" : i + 1 == devices.size() ? " and " : ", ", devices[i]);
  return text;
}

// ---- a GPU through Halide's runtime ---------------------------------------------------

// The Halide runtime functions of a GPU code object (HalideRuntime.h), and its device's
// interface (halide_<device>_device_interface()).
struct HalideApi {
  const halide_device_interface_t *interface = nullptr;
  int (*malloc)(void *, halide_buffer_t *, const halide_device_interface_t *) = nullptr;
  int (*free)(void *, halide_buffer_t *) = nullptr;
  int (*wrap)(void *, halide_buffer_t *, uint64_t, const halide_device_interface_t *) = nullptr;
  int (*detach)(void *, halide_buffer_t *) = nullptr;
  int (*copyToDevice)(void *, halide_buffer_t *, const halide_device_interface_t *) = nullptr;
  int (*copyToHost)(void *, halide_buffer_t *) = nullptr;
  int (*sync)(void *, halide_buffer_t *) = nullptr;
  void (*release)(void *, const halide_device_interface_t *) = nullptr;
};

// A failed Halide runtime call, with the message its error handler recorded.
Error halideFailure(kiln_error code, const std::string &what, int result) {
  std::string why = takeKernelError();
  return error(code, what, " failed with Halide error ", result, why.empty() ? "" : ": ", why);
}

// ---- cuBLAS --------------------------------------------------------------------------

// cuBLAS's functions (CublasApi.h), and the driver's that make a context current.
struct CublasLibrary {
  void *handle = nullptr;
  std::string error; // why it could not be loaded
  cublas::CreateFn create = nullptr;
  cublas::DestroyFn destroy = nullptr;
  cublas::SetStreamFn setStream = nullptr;
  cublas::GemmStridedBatchedExFn gemm = nullptr;
  cublas::GetVersionFn version = nullptr; // optional: for the device's description
  int (*pushContext)(void *context) = nullptr;  // cuCtxPushCurrent_v2
  int (*popContext)(void **context) = nullptr;  // cuCtxPopCurrent_v2
};

// Loaded by the first module whose kernels call it, once per process and never
// unloaded; RTLD_LOCAL, as only the runtime looks its functions up.
const CublasLibrary &cublasLibrary() {
  static const CublasLibrary library = [] {
    CublasLibrary l;
    l.handle = openFirst({"libcublas.so.13", "libcublas.so.12", "libcublas.so"},
                         RTLD_NOW | RTLD_LOCAL, l.error);
    if (!l.handle)
      return l;
    l.version = reinterpret_cast<cublas::GetVersionFn>(dlsym(l.handle, "cublasGetVersion_v2"));
    if (const char *missing = resolve(
            l.handle, {{"cublasCreate_v2", reinterpret_cast<void **>(&l.create)},
                       {"cublasDestroy_v2", reinterpret_cast<void **>(&l.destroy)},
                       {"cublasSetStream_v2", reinterpret_cast<void **>(&l.setStream)},
                       {"cublasGemmStridedBatchedEx", reinterpret_cast<void **>(&l.gemm)}}))
      l.error = cat("the cuBLAS library has no ", missing);
    else if (const char *missing = resolve(
                 cudaDriver().handle,
                 {{"cuCtxPushCurrent_v2", reinterpret_cast<void **>(&l.pushContext)},
                  {"cuCtxPopCurrent_v2", reinterpret_cast<void **>(&l.popContext)}}))
      l.error = cat("the driver library has no ", missing);
    if (!l.error.empty())
      l.handle = nullptr;
    return l;
  }();
  return library;
}

Error cublasCheck(const char *function, int status) {
  return status == cublas::kStatusSuccess
             ? Error{}
             : error(KILN_ERROR_KERNEL_FAILED, function, " failed with cuBLAS status ", status);
}

// One module's cuBLAS: a handle made in the Halide CUDA context its kernels run in,
// and calls made there on Halide's stream, so they are ordered with Halide's launches
// and copies, and a Halide device sync waits for them. cuBLAS works in the calling
// thread's current context; Halide's is made current around each use. Sessions of a
// module may run on different threads and share the handle: a mutex serializes its use.
class CublasGemm {
public:
  ~CublasGemm() {
    if (handle)
      (void)inContext(
          [&](void *) { return cublasCheck("cublasDestroy_v2", library->destroy(handle)); });
  }

  // Empty when the device makes its calls; else why not, for the device's description.
  std::string start(const RuntimeDevice &device, const CodeObject &code) {
    if (!device.cublas)
      return "cuBLAS off (KILN_CUBLAS=0)";
    library = &cublasLibrary();
    if (!library->handle)
      return cat("no cuBLAS (", library->error, ")");
    acquire = reinterpret_cast<halide_cuda_acquire_context_t>(
        code.symbol("halide_cuda_acquire_context"));
    release = reinterpret_cast<halide_cuda_release_context_t>(
        code.symbol("halide_cuda_release_context"));
    getStream = reinterpret_cast<halide_cuda_get_stream_t>(code.symbol("halide_cuda_get_stream"));
    if (!acquire || !release || !getStream)
      return "no cuBLAS (the code object lacks Halide's CUDA context functions)";
    void *created = nullptr;
    if (Error err = inContext(
            [&](void *) { return cublasCheck("cublasCreate_v2", library->create(&created)); }))
      return cat("no cuBLAS (", err.message, ")");
    handle = created;
    int version = 0;
    if (library->version && library->version(handle, &version) == cublas::kStatusSuccess)
      note = cat("cuBLAS ", version);
    else
      note = "cuBLAS";
    return {};
  }

  bool ready() const { return handle != nullptr; }
  std::string note;

  // Row-major C = A op(B), each of `batch`, as cuBLAS's column-major GEMM: a row-major
  // matrix is its transpose in column-major order, so it computes C^T = op(B)^T A^T with
  // cuBLAS's "A" our B (op T when B is stored n x k) and its "B" our A.
  Error gemm(const artifact::LibraryCall &call, const std::vector<void *> &args) {
    auto address = [&](uint32_t position) {
      return reinterpret_cast<void *>(
          uintptr_t(static_cast<halide_buffer_t *>(args[position])->device));
    };
    // Every size fits an int and every stride a long long (validateArtifact).
    int m = int(call.m()), n = int(call.n()), k = int(call.k());
    bool transposeB = call.transpose_b();
    bool tf32 = call.compute() && call.compute()->string_view() == "tf32";
    int compute = tf32 ? cublas::kCompute32FFastTF32 : cublas::kCompute32F;
    const float one = 1, zero = 0; // host scalars: cuBLAS's default pointer mode
    std::lock_guard<std::mutex> lock(mutex);
    return inContext([&](void *stream) {
      if (Error err = cublasCheck("cublasSetStream_v2", library->setStream(handle, stream)))
        return err;
      return cublasCheck(
          "cublasGemmStridedBatchedEx",
          library->gemm(handle, transposeB ? cublas::kOpT : cublas::kOpN, cublas::kOpN, n, m, k,
                        &one, address(call.b()), cublas::kR32F, transposeB ? k : n,
                        (long long)call.b_batch_stride(), address(call.a()), cublas::kR32F, k,
                        (long long)call.a_batch_stride(), &zero, address(call.c()),
                        cublas::kR32F, n, (long long)m * n, int(call.batch()), compute,
                        cublas::kGemmDefault));
    });
  }

private:
  // Runs `body(stream)` with Halide's context (created if need be) current on this
  // thread; Halide's acquire holds its context lock until the release.
  template <typename Body> Error inContext(Body &&body) {
    void *context = nullptr;
    if (int result = acquire(nullptr, &context, true))
      return halideFailure(KILN_ERROR_KERNEL_FAILED, "acquiring Halide's CUDA context", result);
    Error err;
    if (int result = library->pushContext(context)) {
      err = error(KILN_ERROR_KERNEL_FAILED, "cuCtxPushCurrent failed with CUDA error ", result);
    } else {
      void *stream = nullptr;
      if (int result = getStream(nullptr, context, &stream))
        err = halideFailure(KILN_ERROR_KERNEL_FAILED, "getting Halide's CUDA stream", result);
      else
        err = body(stream);
      void *popped = nullptr;
      library->popContext(&popped);
    }
    release(nullptr);
    return err;
  }

  const CublasLibrary *library = nullptr;
  halide_cuda_acquire_context_t acquire = nullptr;
  halide_cuda_release_context_t release = nullptr;
  halide_cuda_get_stream_t getStream = nullptr;
  void *handle = nullptr;
  std::mutex mutex;
};

// The bytes a session's buffer spans: dense, innermost dimension first.
uint64_t byteSize(const halide_buffer_t &buffer) {
  uint64_t bytes = buffer.type.bytes();
  for (int d = 0; d < buffer.dimensions; ++d)
    bytes *= uint64_t(buffer.dim[d].extent);
  return bytes;
}

// Device memory from halide_device_malloc mirroring a HostRange. Halide sizes a buffer
// by its int32 extents, so the allocation is described as rows of 1 MiB (the last row
// rounded up): any size fits. On CUDA the buffer's `device` is the CUdeviceptr, so a
// buffer at byte `offset` of the host range is at device + offset.
class Storage final : public DeviceMemory {
public:
  Storage(const HalideApi &api, HostRange host) : api(api), host(host) {}
  ~Storage() override {
    if (buffer.device)
      api.free(nullptr, &buffer);
  }

  Error allocate(const std::string &device) {
    constexpr int32_t kRow = 1 << 20;
    rows[0] = halide_dimension_t(0, kRow, 1);
    rows[1] = halide_dimension_t(0, int32_t((host.size + kRow - 1) / kRow), kRow);
    buffer.type = halide_type_t(halide_type_uint, 8);
    buffer.dimensions = 2;
    buffer.dim = rows;
    if (int result = api.malloc(nullptr, &buffer, api.interface))
      return halideFailure(KILN_ERROR_OUT_OF_MEMORY,
                           cat("allocating ", host.size, " bytes on device ", device), result);
    return {};
  }

  bool holds(const uint8_t *data, uint64_t bytes) const {
    return data >= host.data && bytes <= host.size &&
           uint64_t(data - host.data) <= host.size - bytes;
  }
  uint64_t address(const uint8_t *data) const { return buffer.device + uint64_t(data - host.data); }

  const HalideApi &api;
  const HostRange host;

private:
  halide_dimension_t rows[2];
  halide_buffer_t buffer{};
};

// Host bytes and their device copy.
struct Span {
  uint8_t *host;
  uint64_t address;
  uint64_t bytes;
};

class HalideDevice;

class HalideSession final : public DeviceSession {
public:
  HalideSession(const HalideDevice &device, std::vector<halide_buffer_t> &buffers)
      : device(device), buffers(buffers), startFlags(buffers.size(), 0),
        bytes(buffers.size(), 0) {}
  ~HalideSession() override;

  Error startRun() override;
  void beforeDispatch(const std::vector<void *> &args) override {
    for (void *arg : args)
      buffer(arg).flags = startFlags[index(arg)];
  }
  int waitForKernel(const std::vector<void *> &args) override;
  Error callLibrary(const artifact::LibraryCall &call, const std::vector<void *> &args) override;
  Error afterDispatch(const std::vector<void *> &args) override;
  Error finishRun() override;

private:
  friend class HalideDevice;
  static halide_buffer_t &buffer(void *arg) { return *static_cast<halide_buffer_t *>(arg); }
  size_t index(void *arg) const {
    return size_t(static_cast<halide_buffer_t *>(arg) - buffers.data());
  }

  const HalideDevice &device;
  std::vector<halide_buffer_t> &buffers;
  // What a dispatch starts each buffer with: device-dirty, but for weights (the same
  // on both sides) and empty buffers, which are clean.
  std::vector<uint64_t> startFlags;
  std::vector<uint64_t> bytes;
  std::vector<Span> inputs, outputs;
};

class HalideDevice final : public Device {
public:
  HalideDevice(std::string name, const HalideApi &api, HostRange weights,
               std::unique_ptr<CublasGemm> cublas)
      : name(std::move(name)), api(api), cublas(std::move(cublas)), weightsHost(weights) {}
  ~HalideDevice() override {
    // The module's sessions, their state blocks and so their storages are gone; this
    // destroys the cuBLAS handle and frees the weights, then Halide's context and
    // compiled kernels.
    cublas.reset();
    weights.reset();
    api.release(nullptr, api.interface);
  }

  bool runs(const artifact::LibraryCall &) const override { return cublas && cublas->ready(); }
  std::string libraryNote() const override { return cublas ? cublas->note : std::string(); }

  Error mirror(HostRange host, std::unique_ptr<DeviceMemory> *out) override {
    out->reset();
    if (host.size == 0)
      return {};
    auto storage = std::make_unique<Storage>(api, host);
    if (auto err = storage->allocate(name))
      return err;
    if (auto err = copy(Span{host.data, storage->address(host.data), host.size}, true))
      return err;
    *out = std::move(storage);
    return {};
  }

  Error attach(const SessionMemory &memory, std::unique_ptr<DeviceSession> *out) override {
    const Storage *constant = nullptr;
    if (auto err = uploadWeights(&constant))
      return err;
    std::vector<const Storage *> storages{constant};
    for (const DeviceMemory *mirror : memory.mirrors)
      storages.push_back(static_cast<const Storage *>(mirror));
    auto find = [&](const uint8_t *data, uint64_t bytes) -> const Storage * {
      for (const Storage *storage : storages)
        if (storage && storage->holds(data, bytes))
          return storage;
      return nullptr;
    };
    std::vector<halide_buffer_t> &buffers = *memory.buffers;
    auto session = std::make_unique<HalideSession>(*this, buffers);
    for (size_t i = 0; i < buffers.size(); ++i) {
      halide_buffer_t &b = buffers[i];
      session->bytes[i] = byteSize(b);
      if (session->bytes[i] == 0)
        continue;
      const Storage *storage = find(b.host, session->bytes[i]);
      if (!storage)
        return error(KILN_ERROR_INTERNAL, "a buffer of ", session->bytes[i],
                     " bytes lies outside the memory mirrored on device ", name);
      if (int result = api.wrap(nullptr, &b, storage->address(b.host), api.interface))
        return halideFailure(KILN_ERROR_KERNEL_FAILED,
                             cat("pointing a buffer at its memory on device ", name), result);
      if (storage != constant)
        session->startFlags[i] = halide_buffer_flag_device_dirty;
    }
    for (const HostRange &input : memory.inputs)
      if (const Storage *storage = find(input.data, input.size); storage && input.size)
        session->inputs.push_back(Span{input.data, storage->address(input.data), input.size});
    for (size_t i : memory.outputs) {
      // Weights are current on the host; an alias and its target are downloaded once.
      Span output{buffers[i].host, buffers[i].device, session->bytes[i]};
      bool listed = std::any_of(session->outputs.begin(), session->outputs.end(),
                                [&](const Span &o) { return o.host == output.host; });
      if (session->startFlags[i] && !listed)
        session->outputs.push_back(output);
    }
    *out = std::move(session);
    return {};
  }

  // Copies host to device (or back), through a uint8 buffer over the bytes wrapped at
  // their device address, in pieces within Halide's int32 extents.
  Error copy(const Span &span, bool toDevice) const {
    constexpr uint64_t kPiece = uint64_t(1) << 30;
    for (uint64_t done = 0; done < span.bytes; done += kPiece) {
      uint64_t size = std::min(kPiece, span.bytes - done);
      halide_dimension_t extent(0, int32_t(size), 1);
      halide_buffer_t piece{};
      piece.host = span.host + done;
      piece.type = halide_type_t(halide_type_uint, 8);
      piece.dimensions = 1;
      piece.dim = &extent;
      int result = api.wrap(nullptr, &piece, span.address + done, api.interface);
      if (result == 0) {
        piece.flags = toDevice ? halide_buffer_flag_host_dirty : halide_buffer_flag_device_dirty;
        result = toDevice ? api.copyToDevice(nullptr, &piece, api.interface)
                          : api.copyToHost(nullptr, &piece);
        piece.flags = 0;
        api.detach(nullptr, &piece);
      }
      if (result)
        return halideFailure(KILN_ERROR_KERNEL_FAILED,
                             cat("copying ", size, " bytes ", toDevice ? "to" : "from",
                                 " device ", name),
                             result);
    }
    return {};
  }

  const std::string name;
  const HalideApi api;
  // Null when the program calls no cuBLAS.
  std::unique_ptr<CublasGemm> cublas;

private:
  // The weights' mirror, uploaded by the first attach; null without weights.
  Error uploadWeights(const Storage **out) {
    std::lock_guard<std::mutex> lock(weightsMutex);
    if (!weightsUploaded) {
      if (auto err = mirror(weightsHost, &weights))
        return err;
      weightsUploaded = true;
    }
    *out = static_cast<const Storage *>(weights.get());
    return {};
  }

  const HostRange weightsHost;
  std::mutex weightsMutex;
  bool weightsUploaded = false;
  std::unique_ptr<DeviceMemory> weights;
};

HalideSession::~HalideSession() {
  for (halide_buffer_t &b : buffers)
    if (b.device) {
      b.flags = 0;
      device.api.detach(nullptr, &b);
    }
}

Error HalideSession::startRun() {
  for (const Span &input : inputs)
    if (auto err = device.copy(input, true))
      return err;
  return {};
}

int HalideSession::waitForKernel(const std::vector<void *> &args) {
  for (void *arg : args)
    if (buffer(arg).device)
      return device.api.sync(nullptr, &buffer(arg));
  return 0;
}

Error HalideSession::callLibrary(const artifact::LibraryCall &call,
                                 const std::vector<void *> &args) {
  return device.cublas->gemm(call, args);
}

Error HalideSession::afterDispatch(const std::vector<void *> &args) {
  for (void *arg : args) {
    halide_buffer_t &b = buffer(arg);
    if (!(b.flags & halide_buffer_flag_host_dirty))
      continue;
    // A stage Halide ran on the host wrote it: the device copy must stay the truth.
    b.flags &= ~uint64_t(halide_buffer_flag_host_dirty);
    if (b.device)
      if (auto err = device.copy(Span{b.host, b.device, bytes[index(arg)]}, true))
        return err;
  }
  return {};
}

Error HalideSession::finishRun() {
  for (const Span &output : outputs)
    if (auto err = device.copy(output, false))
      return err;
  return {};
}

class CpuDevice final : public Device {
public:
  Error mirror(HostRange, std::unique_ptr<DeviceMemory> *out) override {
    out->reset();
    return {};
  }
  Error attach(const SessionMemory &, std::unique_ptr<DeviceSession> *out) override {
    out->reset();
    return {};
  }
};

} // namespace

Error findDevice(const char *name, RuntimeDevice *out) {
  std::string_view device = name ? name : "cpu";
  if (device == "cpu") {
    *out = RuntimeDevice{};
    return {};
  }
  if (device == "cuda")
    return findCuda(out);
  if (device == "metal")
    return error(KILN_ERROR_UNSUPPORTED,
                 "device metal: Metal GPUs are reached only on macOS, and this runtime "
                 "runs on Linux");
  return error(KILN_ERROR_INVALID_ARGUMENT, "unknown device \"", std::string(device),
               "\" (the devices are cpu, cuda and metal)");
}

Error chooseCodeObject(const artifact::ArtifactView &view, const RuntimeDevice &device,
                       const artifact::CodeObjectBytes **out) {
  *out = nullptr;
  std::vector<const artifact::CodeObjectBytes *> candidates = view.codeFor(device.name);
  if (device.name == "cuda") {
    int best = -1;
    for (const artifact::CodeObjectBytes *code : candidates) {
      int capability = cudaCapability(targetOf(*code));
      if (capability <= device.capability && capability > best) {
        best = capability;
        *out = code;
      }
    }
  } else if (!candidates.empty()) {
    *out = candidates.front();
  }
  bool hasKernels = view.program->kernels() && view.program->kernels()->size() > 0;
  if (*out || !hasKernels)
    return {};
  if (!candidates.empty()) {
    std::string architectures;
    for (const artifact::CodeObjectBytes *code : candidates)
      architectures +=
          cat(architectures.empty() ? "" : ", ", "sm_", cudaCapability(targetOf(*code)));
    return error(KILN_ERROR_UNSUPPORTED, "the artifact has cuda code for ", architectures,
                 " only and this GPU is sm_", device.capability, " (", device.model,
                 "); compile it with --target=cuda-sm_", device.capability, " to run on it");
  }
  std::string metal = view.codeFor("metal").empty() ? "" : " (its metal code runs only on macOS)";
  return error(KILN_ERROR_UNSUPPORTED, "the artifact has code for ", devicesOf(view), " only",
               metal, "; compile it with --target=", device.name == "cpu" ? "host" : device.name,
               " to run on device ", device.name);
}

std::unique_ptr<Device> cpuDevice() { return std::make_unique<CpuDevice>(); }

Error halideDevice(const RuntimeDevice &device, const CodeObject &code, HostRange weights,
                   bool callsCublas, std::unique_ptr<Device> *out) {
  HalideApi api;
  std::string interfaceSymbol = cat("halide_", device.name, "_device_interface");
  const halide_device_interface_t *(*interface)() = nullptr;
  const Symbol symbols[] = {
      {interfaceSymbol.c_str(), reinterpret_cast<void **>(&interface)},
      {"halide_device_malloc", reinterpret_cast<void **>(&api.malloc)},
      {"halide_device_free", reinterpret_cast<void **>(&api.free)},
      {"halide_device_wrap_native", reinterpret_cast<void **>(&api.wrap)},
      {"halide_device_detach_native", reinterpret_cast<void **>(&api.detach)},
      {"halide_copy_to_device", reinterpret_cast<void **>(&api.copyToDevice)},
      {"halide_copy_to_host", reinterpret_cast<void **>(&api.copyToHost)},
      {"halide_device_sync", reinterpret_cast<void **>(&api.sync)},
      {"halide_device_release", reinterpret_cast<void **>(&api.release)},
  };
  for (const Symbol &symbol : symbols) {
    *symbol.slot = code.symbol(symbol.name);
    if (!*symbol.slot)
      return error(KILN_ERROR_INVALID_ARTIFACT, "the ", device.name, " code object has no symbol ",
                   symbol.name, " (it lacks Halide's ", device.name, " runtime)");
  }
  api.interface = interface();
  if (!api.interface)
    return error(KILN_ERROR_INVALID_ARTIFACT, "the ", device.name, " code object's ",
                 interfaceSymbol, "() returned null");
  // The GPU the runtime described is the one the kernels run on, whatever Halide's own
  // choice would be.
  if (auto setDevice = reinterpret_cast<void (*)(int)>(code.symbol("halide_set_gpu_device")))
    setDevice(device.ordinal);
  std::unique_ptr<CublasGemm> cublas;
  if (callsCublas && device.name == "cuda") {
    cublas = std::make_unique<CublasGemm>();
    std::string why = cublas->start(device, code);
    if (!why.empty())
      cublas->note = cat(why, ": library GEMMs run as Halide kernels");
  }
  *out = std::make_unique<HalideDevice>(device.name, api, weights, std::move(cublas));
  return {};
}

} // namespace kiln::runtime
