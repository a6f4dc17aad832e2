// The cuda device through the C API, without a GPU: ctest runs this with a fake CUDA
// driver first on LD_LIBRARY_PATH (FakeCudaDriver.c) and the artifacts carry a fake
// CUDA code object (TestGpuKernels.c) whose "device memory" is host memory of its own.
// Finding the device, choosing the code object for its architecture, and the device
// memory protocol: weights, inputs, outputs, aliases, state and host stages.
#include "TestArtifacts.h"
#include "ApiHandles.h"
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
         {"KILN_FAKE_CUDA_DEVICES", "KILN_FAKE_CUDA_INIT_ERROR", "HL_GPU_DEVICE"})
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
