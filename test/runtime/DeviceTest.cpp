// The cuda device through the C API, without a GPU: ctest runs this with a fake CUDA
// driver first on LD_LIBRARY_PATH (FakeCudaDriver.c) and the artifacts carry a fake
// CUDA code object (TestGpuKernels.c) whose "device memory" is host memory of its own.
// Finding the device, choosing the code object for its architecture, the device
// memory protocol (weights, inputs, outputs, aliases, state and host stages), and
// library GEMMs through a fake cuBLAS (FakeCublas.c, beside the fake driver).
#include "TestArtifacts.h"
#include "ApiHandles.h"
#include "FakeCuda.h"
#include "Text.h"
#include "kiln/runtime.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <dlfcn.h>
#include <memory>

using namespace kiln::artifact;

namespace {

const std::vector<uint8_t> &gpuCode() {
  static const std::vector<uint8_t> bytes = kiln::test::readFile(KILN_TEST_GPU_KERNELS_PATH);
  return bytes;
}

constexpr const char *kSm80 = "x86-64-linux-cuda-cuda_capability_80";

using kiln::test::Module;
using kiln::test::Runtime;
using kiln::test::Session;
using kiln::test::Status;

using kiln::test::message;

class Device : public ::testing::Test {
protected:
  void SetUp() override {
    for (const char *name :
         {"KILN_FAKE_CUDA_DEVICES", "KILN_FAKE_CUDA_INIT_ERROR", "HL_GPU_DEVICE", "KILN_CUBLAS",
          "KILN_FAKE_CUBLAS_STATUS", "KILN_FAKE_CUBLAS_CREATE_STATUS"})
      unsetenv(name);
    void *driver = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
    bool fake = driver && dlsym(driver, "kiln_fake_cuda_driver");
    if (driver)
      dlclose(driver);
    ASSERT_TRUE(fake) << "libcuda.so.1 is not the fake driver; run this through ctest, "
                         "which puts it first on LD_LIBRARY_PATH";
  }

  // A cuda runtime; null and the status in `error` when it cannot be created.
  static Runtime cuda(Status *error = nullptr) {
    kiln_runtime_options options;
    kiln_runtime_options_init(&options);
    options.num_threads = 2;
    options.device = "cuda";
    kiln_runtime *runtime = nullptr;
    Status status(kiln_runtime_create(&options, &runtime));
    if (error)
      *error = std::move(status);
    else
      EXPECT_EQ(status, nullptr) << kiln_status_message(status.get());
    return Runtime(runtime);
  }

  static Module load(kiln_runtime *runtime, const std::vector<uint8_t> &file,
                     Status *error = nullptr) {
    kiln_module *module = nullptr;
    Status status(kiln_module_load_memory(runtime, file.data(), file.size(), KILN_LOAD_COPY,
                                          &module));
    if (error)
      *error = std::move(status);
    else
      EXPECT_EQ(status, nullptr) << kiln_status_message(status.get());
    return Module(module);
  }

  static Session session(kiln_module *module, size_t entry = 0, kiln_session *sharing = nullptr) {
    kiln_session *s = nullptr;
    Status status(kiln_session_create_sharing_state(module, entry, sharing, &s));
    EXPECT_EQ(status, nullptr) << kiln_status_message(status.get());
    return Session(s);
  }
};

// The runtime tests' add artifact (TestArtifacts.h) with the fake CUDA code object:
// sum = (a + b) + bias through the arena, a flat alias of sum, and the weight bias.
ArtifactWriter addOnGpu() {
  ArtifactWriter writer = kiln::test::makeAddArtifact(gpuCode());
  writer.program().codeObjects[0].device = "cuda";
  writer.program().codeObjects[0].target = kSm80;
  return writer;
}

// The add artifact with its two dispatches' kernels named: "add" runs on the GPU,
// "host_add" on the host.
std::vector<uint8_t> addWith(const std::string &first, const std::string &second) {
  ArtifactWriter writer = addOnGpu();
  ProgramDesc &p = writer.program();
  p.kernels = {{first, 3}};
  if (second != first)
    p.kernels.push_back({second, 3});
  p.entryPoints[0].dispatches[1].kernel = uint32_t(p.kernels.size() - 1);
  return writer.serialize();
}

// Runs the add artifact's session with inputs `a` and `b` and checks all three outputs.
// Exact: one f32 addition per element of exactly representable values.
void expectAddRuns(kiln_session *s, const float (&a)[6], const float (&b)[6]) {
  EXPECT_OK(kiln_session_set_input(s, 0, a, sizeof a));
  EXPECT_OK(kiln_session_set_input(s, 1, b, sizeof b));
  EXPECT_OK(kiln_session_run(s));
  float sum[6], flat[6], bias[6];
  EXPECT_OK(kiln_session_copy_output(s, 0, sum, sizeof sum));
  EXPECT_OK(kiln_session_copy_output(s, 1, flat, sizeof flat));
  EXPECT_OK(kiln_session_copy_output(s, 2, bias, sizeof bias));
  for (int k = 0; k < 6; ++k) {
    EXPECT_EQ(sum[k], a[k] + b[k] + 100.0f + float(k)) << "element " << k;
    EXPECT_EQ(flat[k], sum[k]) << "element " << k;
    EXPECT_EQ(bias[k], 100.0f + float(k)) << "element " << k;
  }
}

const float kA[6] = {1, 2, 3, 4, 5, 6};
const float kB[6] = {0.5f, 0.25f, 0, -1, -2, 10};
const float kC[6] = {-8, 16, 0.75f, 3, 1, 0};

// A counter in persistent state: "step" adds 1 to each of its f32[4] on the GPU, in
// place; "peek" has no dispatch and returns it as it is.
std::vector<uint8_t> counterOnGpu() {
  ArtifactWriter writer;
  writer.addCodeObject("cuda", kSm80, "elf-shared-object", gpuCode());
  ProgramDesc &p = writer.program();
  p.target = kSm80;
  p.compilerVersion = "kiln-test";
  TensorDesc type{DType::F32, {4}};
  p.buffers = {BufferDesc{type, BufferKind::State, 0, 0, byteSize(type)}};
  p.kernels = {{"increment", 2}};
  p.entryPoints = {EntryPointDesc{"step", {}, {{"count", 0}}, {{0, {0, 0}}}},
                   EntryPointDesc{"peek", {}, {{"count", 0}}, {}}};
  return writer.serialize();
}

float count(kiln_session *s) {
  float out[4];
  Status status(kiln_session_run(s));
  EXPECT_EQ(status, nullptr) << message(status);
  status.reset(kiln_session_copy_output(s, 0, out, sizeof out));
  EXPECT_EQ(status, nullptr) << message(status);
  for (int k = 1; k < 4; ++k)
    EXPECT_EQ(out[k], out[0]);
  return out[0];
}

} // namespace

TEST_F(Device, describes_the_gpu_it_found) {
  Runtime runtime = cuda();
  EXPECT_STREQ(kiln_runtime_device(runtime.get()), "cuda: kiln fake GPU 0 (sm_80)");
}

TEST_F(Device, picks_the_gpu_with_the_most_multiprocessors_unless_told) {
  setenv("KILN_FAKE_CUDA_DEVICES", "3", 1);
  Runtime most = cuda();
  EXPECT_STREQ(kiln_runtime_device(most.get()), "cuda: kiln fake GPU 2 (sm_90, device 2 of 3)");
  setenv("HL_GPU_DEVICE", "1", 1);
  Runtime chosen = cuda();
  EXPECT_STREQ(kiln_runtime_device(chosen.get()), "cuda: kiln fake GPU 1 (sm_86, device 1 of 3)");
  setenv("HL_GPU_DEVICE", "3", 1);
  Status error;
  EXPECT_EQ(cuda(&error), nullptr);
  EXPECT_EQ(kiln_status_code(error.get()), KILN_ERROR_UNSUPPORTED);
  EXPECT_EQ(message(error),
            "device cuda: HL_GPU_DEVICE is \"3\" but the CUDA devices are numbered 0 to 2");
}

TEST_F(Device, reports_a_driver_without_gpus) {
  setenv("KILN_FAKE_CUDA_DEVICES", "0", 1);
  Status error;
  EXPECT_EQ(cuda(&error), nullptr);
  EXPECT_EQ(kiln_status_code(error.get()), KILN_ERROR_UNSUPPORTED);
  EXPECT_EQ(message(error), "device cuda: no CUDA device (cuDeviceGetCount returned 0)");
}

TEST_F(Device, reports_a_failed_cuinit) {
  setenv("KILN_FAKE_CUDA_INIT_ERROR", "100", 1);
  Status error;
  EXPECT_EQ(cuda(&error), nullptr);
  EXPECT_EQ(kiln_status_code(error.get()), KILN_ERROR_UNSUPPORTED);
  EXPECT_EQ(message(error), "device cuda: cuInit failed with CUDA error 100");
}

TEST_F(Device, refuses_an_artifact_without_cuda_code) {
  ArtifactWriter writer = addOnGpu();
  writer.program().codeObjects[0].device = "cpu";
  writer.program().codeObjects[0].target = "x86-64-linux";
  Runtime runtime = cuda();
  Status error;
  EXPECT_EQ(load(runtime.get(), writer.serialize(), &error), nullptr);
  EXPECT_EQ(kiln_status_code(error.get()), KILN_ERROR_UNSUPPORTED);
  EXPECT_EQ(message(error),
            "the artifact has code for cpu only; compile it with --target=cuda to run on "
            "device cuda");
}

TEST_F(Device, refuses_cuda_code_only_for_newer_gpus) {
  ArtifactWriter writer = addOnGpu();
  writer.program().codeObjects[0].target = "x86-64-linux-cuda-cuda_capability_86";
  writer.addCodeObject("cuda", "x86-64-linux-cuda-cuda_capability_90", "elf-shared-object",
                       gpuCode());
  Runtime runtime = cuda();
  Status error;
  EXPECT_EQ(load(runtime.get(), writer.serialize(), &error), nullptr);
  EXPECT_EQ(kiln_status_code(error.get()), KILN_ERROR_UNSUPPORTED);
  EXPECT_EQ(message(error),
            "the artifact has cuda code for sm_86, sm_90 only and this GPU is sm_80 (kiln "
            "fake GPU 0); compile it with --target=cuda-sm_80 to run on it");
}

TEST_F(Device, chooses_the_newest_architecture_the_gpu_runs) {
  // The code objects that must not be chosen are not ELF files: loading one fails.
  std::vector<uint8_t> junk(64, 0);
  ArtifactWriter writer = addOnGpu();
  writer.program().codeObjects[0].target = "x86-64-linux-cuda-cuda_capability_75";
  writer.addCodeObject("cuda", "x86-64-linux-cuda-cuda_capability_90", "elf-shared-object", junk);
  writer.addCodeObject("cuda", "x86-64-linux-cuda-cuda_capability_70", "elf-shared-object", junk);
  writer.addCodeObject("cpu", "x86-64-linux", "elf-shared-object", junk);
  Runtime runtime = cuda();
  Module module = load(runtime.get(), writer.serialize());
  ASSERT_TRUE(module);
  Session s = session(module.get());
  expectAddRuns(s.get(), kA, kB);
}

TEST_F(Device, runs_on_device_memory_uploading_weights_and_inputs) {
  Runtime runtime = cuda();
  Module module = load(runtime.get(), addOnGpu().serialize());
  ASSERT_TRUE(module);
  Session s = session(module.get());
  expectAddRuns(s.get(), kA, kB);
  // Each run uploads the inputs as they are now.
  expectAddRuns(s.get(), kC, kA);
  // A second session shares the module's weights on the device.
  Session other = session(module.get());
  expectAddRuns(other.get(), kB, kC);
  expectAddRuns(s.get(), kA, kB);
}

TEST_F(Device, copies_what_host_stages_write_back_to_the_device) {
  Runtime runtime = cuda();
  for (auto [first, second] : {std::pair{"host_add", "add"}, std::pair{"add", "host_add"},
                               std::pair{"host_add", "host_add"}}) {
    SCOPED_TRACE(std::string(first) + " then " + second);
    Module module = load(runtime.get(), addWith(first, second));
    ASSERT_TRUE(module);
    Session s = session(module.get());
    expectAddRuns(s.get(), kA, kB);
    expectAddRuns(s.get(), kC, kB);
  }
}

TEST_F(Device, keeps_state_on_the_device_zeroed_at_creation_and_shared) {
  Runtime runtime = cuda();
  Module module = load(runtime.get(), counterOnGpu());
  ASSERT_TRUE(module);
  Session step = session(module.get(), 0);
  EXPECT_EQ(count(step.get()), 1.0f);
  EXPECT_EQ(count(step.get()), 2.0f);
  Session peek = session(module.get(), 1, step.get());
  EXPECT_EQ(count(peek.get()), 2.0f);
  EXPECT_EQ(count(step.get()), 3.0f);
  EXPECT_EQ(count(peek.get()), 3.0f);
  Session fresh = session(module.get(), 0);
  EXPECT_EQ(count(fresh.get()), 1.0f);
  // Released in any order: the module's device outlives the state it shares.
  step.reset();
  module.reset();
  EXPECT_EQ(count(peek.get()), 3.0f);
}

TEST_F(Device, profiles_device_dispatches) {
  Runtime runtime = cuda();
  Module module = load(runtime.get(), addOnGpu().serialize());
  ASSERT_TRUE(module);
  Session s = session(module.get());
  EXPECT_OK(kiln_session_start_profiling(s.get(), nullptr));
  expectAddRuns(s.get(), kA, kB);
  kiln_profile_summary summary;
  EXPECT_OK(kiln_session_profile_summary(s.get(), &summary));
  EXPECT_EQ(summary.runs, 1u);
  EXPECT_EQ(summary.trace_event_count, 2u);
  EXPECT_GE(summary.run_ns, summary.kernel_ns);
}

// ---- library GEMMs ------------------------------------------------------------------

namespace {

const std::vector<uint8_t> &cpuCode() {
  static const std::vector<uint8_t> bytes = kiln::test::readFile(KILN_TEST_KERNELS_PATH);
  return bytes;
}

// A GEMM kernel with a cublas.gemm library call: C[p] = A[p] . op(B[p]) for p < batch,
// B one matrix for every p when shared, stored n x k when transposed.
struct Gemm {
  uint32_t batch, m, n, k;
  bool sharedB, transposeB;
  const char *compute;
};

const Gemm kGemms[] = {
    {1, 3, 4, 5, false, false, "f32"}, // plain
    {3, 2, 4, 5, true, false, "f32"},  // batched, one B for the batch (a shared weight)
    {2, 3, 2, 4, false, true, "f32"},  // batched, B transposed
    {1, 2, 3, 4, true, true, "tf32"},  // TF32 requested
};

std::string describe(const Gemm &g) {
  return kiln::cat(g.batch, "x", g.m, "x", g.n, "x", g.k, g.sharedB ? " shared B" : "",
             g.transposeB ? " B^T" : "", " ", g.compute);
}

std::vector<int64_t> matrices(uint32_t batch, uint32_t rows, uint32_t columns) {
  if (batch > 1)
    return {batch, rows, columns};
  return {rows, columns};
}

// The kernel "matmul" (or "matmul_bt") of the CPU or the fake CUDA code object, which
// computes the same as the call, plainly row-major (TestMatmul.h).
std::vector<uint8_t> gemmArtifact(const Gemm &g, bool onGpu,
                                  std::string function = std::string(kCublasGemm)) {
  TensorDesc a{DType::F32, matrices(g.batch, g.m, g.k)};
  TensorDesc b{DType::F32, g.transposeB ? matrices(g.sharedB ? 1 : g.batch, g.n, g.k)
                                        : matrices(g.sharedB ? 1 : g.batch, g.k, g.n)};
  TensorDesc c{DType::F32, matrices(g.batch, g.m, g.n)};
  ArtifactWriter writer = kiln::test::makeSingleKernelArtifact(
      onGpu ? gpuCode() : cpuCode(), g.transposeB ? "matmul_bt" : "matmul", {a, b}, {c});
  if (onGpu) {
    writer.program().codeObjects[0].device = "cuda";
    writer.program().codeObjects[0].target = kSm80;
  }
  writer.program().kernels[0].library =
      LibraryCallDesc{function, 0, 1, 2, g.batch, g.m, g.n, g.k, uint64_t(g.m) * g.k,
                      g.sharedB ? 0 : uint64_t(g.k) * g.n, g.transposeB, g.compute};
  return writer.serialize();
}

// Small integers: every product and sum is exact in f32, and every input in TF32, so
// all ways of computing a GEMM agree exactly.
std::vector<float> values(size_t count, int step, int modulus) {
  std::vector<float> out(count);
  for (size_t i = 0; i < count; ++i)
    out[i] = float(int(i * size_t(step) % size_t(modulus)) - modulus / 2);
  return out;
}

// The fake cuBLAS's record of its GEMM calls (FakeCublas.c).
class Cublas {
public:
  Cublas() : library(dlopen("libcublas.so.13", RTLD_NOW | RTLD_LOCAL)) {}
  ~Cublas() {
    if (library)
      dlclose(library);
  }
  bool fake() const { return library && dlsym(library, "kiln_fake_cublas"); }
  void reset() const { function<void (*)()>("kiln_fake_cublas_reset")(); }
  int calls(kiln_fake_cublas_call *last = nullptr) const {
    return function<int (*)(kiln_fake_cublas_call *)>("kiln_fake_cublas_calls")(last);
  }
  int handles() const { return function<int (*)()>("kiln_fake_cublas_handles")(); }

private:
  template <typename F> F function(const char *name) const {
    return reinterpret_cast<F>(dlsym(library, name));
  }
  void *library;
};

} // namespace

class DeviceCublas : public Device {
protected:
  void SetUp() override {
    Device::SetUp();
    ASSERT_TRUE(cublas.fake()) << "libcublas.so.13 is not the fake cuBLAS; run this through "
                                  "ctest, which puts it first on LD_LIBRARY_PATH";
    cublas.reset();
  }

  static Runtime cpu() {
    kiln_runtime *runtime = nullptr;
    Status status(kiln_runtime_create(nullptr, &runtime));
    EXPECT_EQ(status, nullptr) << message(status);
    return Runtime(runtime);
  }

  // C after one run of `file` (the GEMM `g`), or empty when a step fails; the run's
  // failure goes to `runFailure` when given.
  static std::vector<float> run(kiln_runtime *runtime, const std::vector<uint8_t> &file,
                                const Gemm &g, Status *runFailure = nullptr) {
    Module module = load(runtime, file);
    if (!module)
      return {};
    Session s = session(module.get());
    std::vector<float> a = values(size_t(g.batch) * g.m * g.k, 7, 11);
    std::vector<float> b = values(size_t(g.sharedB ? 1 : g.batch) * g.k * g.n, 5, 9);
    std::vector<float> c(size_t(g.batch) * g.m * g.n);
    auto ok = [](kiln_status raw) {
      Status status(raw);
      EXPECT_EQ(status, nullptr) << message(status);
      return !status;
    };
    if (!ok(kiln_session_set_input(s.get(), 0, a.data(), a.size() * sizeof(float))) ||
        !ok(kiln_session_set_input(s.get(), 1, b.data(), b.size() * sizeof(float))))
      return {};
    if (runFailure) {
      runFailure->reset(kiln_session_run(s.get()));
      if (*runFailure)
        return {};
    } else if (!ok(kiln_session_run(s.get()))) {
      return {};
    }
    if (!ok(kiln_session_copy_output(s.get(), 0, c.data(), c.size() * sizeof(float))))
      return {};
    return c;
  }

  Cublas cublas;
};

TEST_F(DeviceCublas, runs_library_gemms_through_cublas_in_halides_context) {
  Runtime host = cpu();
  Runtime runtime = cuda();
  for (const Gemm &g : kGemms) {
    SCOPED_TRACE(describe(g));
    std::vector<float> expected = run(host.get(), gemmArtifact(g, false), g);
    ASSERT_FALSE(expected.empty());
    cublas.reset();
    EXPECT_EQ(run(runtime.get(), gemmArtifact(g, true), g), expected);
    EXPECT_EQ(cublas.calls(), 1) << "one call per dispatch";
    EXPECT_EQ(cublas.handles(), 0) << "the module's handle is destroyed with it";
    // Row-major C = A op(B) is column-major C^T = op(B)^T A^T.
    kiln_fake_cublas_call call{};
    cublas.calls(&call);
    EXPECT_EQ(call.transa, g.transposeB ? 1 : 0);
    EXPECT_EQ(call.transb, 0);
    EXPECT_EQ(call.m, int(g.n));
    EXPECT_EQ(call.n, int(g.m));
    EXPECT_EQ(call.k, int(g.k));
    EXPECT_EQ(call.lda, int(g.transposeB ? g.k : g.n));
    EXPECT_EQ(call.ldb, int(g.k));
    EXPECT_EQ(call.ldc, int(g.n));
    EXPECT_EQ(call.stride_a, g.sharedB ? 0 : g.k * g.n);
    EXPECT_EQ(call.stride_b, g.m * g.k);
    EXPECT_EQ(call.stride_c, g.m * g.n);
    EXPECT_EQ(call.batch, int(g.batch));
    EXPECT_EQ(call.compute_type, std::string(g.compute) == "tf32" ? 77 : 68);
  }
  EXPECT_STREQ(kiln_runtime_device(runtime.get()), "cuda: kiln fake GPU 0 (sm_80), cuBLAS 130000");
}

TEST_F(DeviceCublas, runs_the_kernels_when_kiln_cublas_is_0) {
  setenv("KILN_CUBLAS", "0", 1);
  Runtime host = cpu();
  Runtime runtime = cuda();
  EXPECT_STREQ(kiln_runtime_device(runtime.get()), "cuda: kiln fake GPU 0 (sm_80)")
      << "no module has needed cuBLAS yet";
  for (const Gemm &g : kGemms) {
    SCOPED_TRACE(describe(g));
    std::vector<float> expected = run(host.get(), gemmArtifact(g, false), g);
    ASSERT_FALSE(expected.empty());
    EXPECT_EQ(run(runtime.get(), gemmArtifact(g, true), g), expected);
  }
  EXPECT_EQ(cublas.calls(), 0);
  EXPECT_STREQ(kiln_runtime_device(runtime.get()),
               "cuda: kiln fake GPU 0 (sm_80), cuBLAS off (KILN_CUBLAS=0): library GEMMs run "
               "as Halide kernels");
}

TEST_F(DeviceCublas, runs_the_kernels_when_no_cublas_handle_can_be_made) {
  setenv("KILN_FAKE_CUBLAS_CREATE_STATUS", "3", 1);
  Runtime host = cpu();
  Runtime runtime = cuda();
  const Gemm &g = kGemms[1];
  std::vector<float> expected = run(host.get(), gemmArtifact(g, false), g);
  ASSERT_FALSE(expected.empty());
  EXPECT_EQ(run(runtime.get(), gemmArtifact(g, true), g), expected);
  EXPECT_EQ(cublas.calls(), 0);
  EXPECT_STREQ(kiln_runtime_device(runtime.get()),
               "cuda: kiln fake GPU 0 (sm_80), no cuBLAS (cublasCreate_v2 failed with cuBLAS "
               "status 3): library GEMMs run as Halide kernels");
}

TEST_F(DeviceCublas, reports_a_failed_cublas_call) {
  setenv("KILN_FAKE_CUBLAS_STATUS", "13", 1); // CUBLAS_STATUS_EXECUTION_FAILED
  Runtime runtime = cuda();
  Status failure;
  EXPECT_TRUE(run(runtime.get(), gemmArtifact(kGemms[0], true), kGemms[0], &failure).empty());
  EXPECT_EQ(kiln_status_code(failure.get()), KILN_ERROR_KERNEL_FAILED);
  EXPECT_EQ(message(failure), "entry point main: dispatch 0: kernel matmul: "
                              "cublasGemmStridedBatchedEx failed with cuBLAS status 13");
}

TEST_F(DeviceCublas, profiles_library_dispatches) {
  Runtime runtime = cuda();
  Module module = load(runtime.get(), gemmArtifact(kGemms[1], true));
  ASSERT_TRUE(module);
  Session s = session(module.get());
  std::vector<float> a(3 * 2 * 5, 1.0f), b(5 * 4, 1.0f);
  EXPECT_OK(kiln_session_set_input(s.get(), 0, a.data(), a.size() * sizeof(float)));
  EXPECT_OK(kiln_session_set_input(s.get(), 1, b.data(), b.size() * sizeof(float)));
  EXPECT_OK(kiln_session_start_profiling(s.get(), nullptr));
  EXPECT_OK(kiln_session_run(s.get()));
  EXPECT_EQ(cublas.calls(), 1);
  kiln_dispatch_profile profile;
  EXPECT_OK(kiln_session_dispatch_profile(s.get(), 0, &profile));
  EXPECT_STREQ(profile.kernel, "matmul");
  EXPECT_EQ(profile.calls, 1u);
  kiln_profile_summary summary;
  EXPECT_OK(kiln_session_profile_summary(s.get(), &summary));
  EXPECT_EQ(summary.trace_event_count, 1u);
  EXPECT_EQ(summary.kernel_ns, profile.total_ns);
}

// 2x2 . 2x2 by hand: A = [[-5, 2], [-2, 5]], B = [[-4, 1], [-3, 2]] (values()).
const Gemm kSmall{1, 2, 2, 2, false, false, "f32"};
const std::vector<float> kSmallProduct{14, -1, -7, 8};

TEST_F(DeviceCublas, cpu_runs_the_kernels_of_library_calls) {
  Runtime runtime = cpu();
  EXPECT_EQ(run(runtime.get(), gemmArtifact(kSmall, false), kSmall), kSmallProduct);
  EXPECT_EQ(cublas.calls(), 0);
  EXPECT_STREQ(kiln_runtime_device(runtime.get()), "cpu");
}

TEST_F(DeviceCublas, runs_the_kernels_of_library_calls_it_does_not_know) {
  Runtime runtime = cuda();
  EXPECT_EQ(run(runtime.get(), gemmArtifact(kSmall, true, "rocblas.gemm"), kSmall),
            kSmallProduct);
  EXPECT_EQ(cublas.calls(), 0);
  EXPECT_STREQ(kiln_runtime_device(runtime.get()), "cuda: kiln fake GPU 0 (sm_80)");
}
