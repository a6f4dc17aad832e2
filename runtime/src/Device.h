// The device a runtime runs kernels on: the CPU, whose kernels use the host memory a
// session maps, or a GPU reached through the Halide runtime inside the code object,
// whose kernels use device memory mirroring that host memory.
#ifndef KILN_RUNTIME_DEVICE_H
#define KILN_RUNTIME_DEVICE_H

#include "ArtifactReader.h"
#include "CodeObject.h"
#include "RuntimeError.h"

#include <HalideRuntime.h>

#include <memory>
#include <string>
#include <vector>

namespace kiln::runtime {

// The device named in kiln_runtime_options.device, as found at kiln_runtime_create.
struct RuntimeDevice {
  std::string name = "cpu";        // the code objects' `device`: "cpu" or "cuda"
  std::string description = "cpu"; // for people: "cuda: NVIDIA H200 (sm_90)"
  std::string model;               // the GPU's name: "NVIDIA H200"
  int ordinal = 0;                 // which CUDA device (HL_GPU_DEVICE's numbering)
  int capability = 0;              // CUDA compute capability, major * 10 + minor
  bool cublas = true;              // false when KILN_CUBLAS=0: library GEMMs run as kernels
};

// Checks `name` (NULL means the CPU) and finds that device. For cuda: the driver,
// dlopen'ed (the runtime never links it), the GPU Halide's runtime would pick
// (HL_GPU_DEVICE, else the one with the most multiprocessors), and KILN_CUBLAS.
Error findDevice(const char *name, RuntimeDevice *out);

// The artifact's code object for `device`, or null when the program has no kernels.
// Of several CUDA objects, the one for the newest architecture the GPU runs (its
// PTX is compiled for newer GPUs by the driver). UNSUPPORTED, naming what the artifact
// has, when none fits.
Error chooseCodeObject(const artifact::ArtifactView &view, const RuntimeDevice &device,
                       const artifact::CodeObjectBytes **out);

// Host bytes that device memory mirrors.
struct HostRange {
  uint8_t *data = nullptr;
  uint64_t size = 0;
};

// Device memory mirroring a HostRange (a session's memory, a state block); freed
// when destroyed. Its module's Device must outlive it.
class DeviceMemory {
public:
  virtual ~DeviceMemory() = default;
};

// A session's buffers, as its device needs them.
struct SessionMemory {
  std::vector<halide_buffer_t> *buffers = nullptr; // one per buffer the entry point uses
  std::vector<const DeviceMemory *> mirrors;       // the session's memory and state block
  std::vector<HostRange> inputs;                   // the entry point's inputs
  std::vector<size_t> outputs;                     // its outputs: indices into *buffers
};

// The device memory protocol of one session on a GPU. Between dispatches the device
// copy of every buffer is the truth: a run uploads the inputs, each dispatch starts
// with its arguments marked device-dirty (so a stage Halide runs on the host copies
// them in first), whatever such a stage wrote is copied back after it, and the
// outputs are downloaded after the last dispatch. Weights are the same bytes on both
// sides and are never copied after the first upload.
class DeviceSession {
public:
  virtual ~DeviceSession() = default;
  virtual Error startRun() = 0;
  virtual void beforeDispatch(const std::vector<void *> &args) = 0;
  // Waits for the kernel just launched (launches are asynchronous), so that a
  // profile times it; a non-zero Halide error code if it failed.
  virtual int waitForKernel(const std::vector<void *> &args) = 0;
  // Does a kernel's library call (one its Device runs) on the dispatch's arguments,
  // in place of the kernel; waitForKernel waits for it as for a kernel.
  virtual Error callLibrary(const artifact::LibraryCall &call,
                            const std::vector<void *> &args) = 0;
  virtual Error afterDispatch(const std::vector<void *> &args) = 0;
  virtual Error finishRun() = 0;
};

// A loaded module's device. The CPU's does nothing: its sessions have no
// DeviceSession and run exactly as before devices existed.
class Device {
public:
  virtual ~Device() = default;
  // Device memory mirroring `host`, its bytes copied there; null on the CPU.
  virtual Error mirror(HostRange host, std::unique_ptr<DeviceMemory> *out) = 0;
  // Points every buffer at its bytes' device copy (in the module's weights or one of
  // the mirrors) for the session's lifetime; null on the CPU.
  virtual Error attach(const SessionMemory &memory, std::unique_ptr<DeviceSession> *out) = 0;
  // Whether a dispatch of a kernel with this (known) library call makes the call
  // through its DeviceSession instead of running the kernel.
  virtual bool runs(const artifact::LibraryCall &) const { return false; }
  // What the device found of the library its module's calls need, for people: "cuBLAS
  // 130000", or why the kernels run instead; empty when the module calls none.
  virtual std::string libraryNote() const { return {}; }
};

std::unique_ptr<Device> cpuDevice();

// The device of a loaded GPU code object, through the Halide runtime functions it
// exports. `weights` is the module's weights section, uploaded at the first attach.
// With `callsCublas` (the program has cublas.gemm calls) on cuda, unless KILN_CUBLAS=0:
// cuBLAS, dlopen'ed once per process, and a handle in Halide's CUDA context, made now;
// where either fails, the device runs no library call and its note says why.
Error halideDevice(const RuntimeDevice &device, const CodeObject &code, HostRange weights,
                   bool callsCublas, std::unique_ptr<Device> *out);

} // namespace kiln::runtime

#endif // KILN_RUNTIME_DEVICE_H
