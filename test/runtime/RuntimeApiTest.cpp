// The C API end to end: loading (file and memory), introspection, sessions, running
// the TestKernels.c code object, profiling, and every error a caller can provoke.
#include "TestArtifacts.h"
#include "ApiHandles.h"
#include "TestGate.h"
#include "kiln/runtime.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <dlfcn.h>
#include <memory>
#include <thread>

using namespace kiln::artifact;

namespace {

const std::vector<uint8_t> &code() {
  static const std::vector<uint8_t> bytes = kiln::test::readFile(KILN_TEST_KERNELS_PATH);
  return bytes;
}

using kiln::test::Module;
using kiln::test::Runtime;
using kiln::test::Session;
using kiln::test::Status;

Runtime makeRuntime(int threads = 2) {
  kiln_runtime_options options;
  kiln_runtime_options_init(&options);
  options.num_threads = threads;
  kiln_runtime *runtime = nullptr;
  Status status(kiln_runtime_create(&options, &runtime));
  EXPECT_EQ(status, nullptr) << kiln_status_message(status.get());
  return Runtime(runtime);
}

// Loads `file` (copied); on failure returns null and the status in `error`.
Module load(kiln_runtime *runtime, const std::vector<uint8_t> &file, Status *error = nullptr) {
  kiln_module *module = nullptr;
  Status status(kiln_module_load_memory(runtime, file.data(), file.size(), KILN_LOAD_COPY,
                                        &module));
  if (error)
    *error = std::move(status);
  else
    EXPECT_EQ(status, nullptr) << kiln_status_message(status.get());
  return Module(module);
}

Session session(kiln_module *module, size_t entry = 0) {
  kiln_session *s = nullptr;
  Status status(kiln_session_create(module, entry, &s));
  EXPECT_EQ(status, nullptr) << kiln_status_message(status.get());
  return Session(s);
}

using kiln::test::message;

std::vector<uint8_t> addArtifact() { return kiln::test::makeAddArtifact(code()).serialize(); }

std::vector<uint8_t> singleKernel(const std::string &kernel, std::vector<TensorDesc> inputs,
                                  std::vector<TensorDesc> outputs) {
  return kiln::test::makeSingleKernelArtifact(code(), kernel, inputs, outputs).serialize();
}

const float kA[6] = {1, 2, 3, 4, 5, 6};
const float kB[6] = {0.5f, 0.25f, 0, -1, -2, 10};

void runAdd(kiln_session *s) {
  EXPECT_OK(kiln_session_set_input(s, 0, kA, sizeof kA));
  EXPECT_OK(kiln_session_set_input_by_name(s, "b", kB, sizeof kB));
  EXPECT_OK(kiln_session_run(s));
}

// Exact comparison: the test kernels do one f32 addition per element, and every input
// here is exactly representable, so sums are exact.
void expectSums(kiln_session *s) {
  float out[6];
  EXPECT_OK(kiln_session_copy_output(s, 0, out, sizeof out));
  for (int k = 0; k < 6; ++k)
    EXPECT_EQ(out[k], kA[k] + kB[k] + 100.0f + float(k)) << "element " << k;
}

} // namespace

TEST(RuntimeApi, null_status_is_ok) {
  EXPECT_EQ(kiln_status_code(nullptr), KILN_ERROR_NONE);
  EXPECT_STREQ(kiln_status_message(nullptr), "ok");
  kiln_status_free(nullptr);
}

TEST(RuntimeApi, dtype_sizes_and_names_follow_the_schema) {
  EXPECT_EQ(kiln_dtype_size(KILN_DTYPE_F32), 4u);
  EXPECT_EQ(kiln_dtype_size(KILN_DTYPE_BF16), 2u);
  EXPECT_EQ(kiln_dtype_size(KILN_DTYPE_U64), 8u);
  EXPECT_EQ(kiln_dtype_size(KILN_DTYPE_BOOL), 1u);
  EXPECT_EQ(kiln_dtype_size(KILN_DTYPE_COUNT), 0u);
  EXPECT_STREQ(kiln_dtype_name(KILN_DTYPE_I16), "i16");
  EXPECT_STREQ(kiln_dtype_name(KILN_DTYPE_BOOL), "bool");
  EXPECT_STREQ(kiln_dtype_name(KILN_DTYPE_COUNT), "invalid");
  EXPECT_EQ(int(KILN_DTYPE_BOOL), int(DType::Bool));
}

TEST(RuntimeApi, rejects_negative_thread_count) {
  kiln_runtime_options options;
  kiln_runtime_options_init(&options);
  options.num_threads = -1;
  kiln_runtime *runtime = nullptr;
  Status status(kiln_runtime_create(&options, &runtime));
  EXPECT_EQ(kiln_status_code(status.get()), KILN_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(runtime, nullptr);
}

// A runtime on `device` (NULL: the default); null and the status in `error` on failure.
Runtime runtimeOn(const char *device, Status *error) {
  kiln_runtime_options options;
  kiln_runtime_options_init(&options);
  options.device = device;
  kiln_runtime *runtime = nullptr;
  error->reset(kiln_runtime_create(&options, &runtime));
  return Runtime(runtime);
}

TEST(RuntimeApi, runs_on_the_cpu_by_default_and_by_name) {
  kiln_runtime_options options;
  kiln_runtime_options_init(&options);
  EXPECT_EQ(options.device, nullptr);
  for (const char *device : {static_cast<const char *>(nullptr), "cpu"}) {
    Status error;
    Runtime runtime = runtimeOn(device, &error);
    ASSERT_EQ(error, nullptr) << message(error);
    EXPECT_STREQ(kiln_runtime_device(runtime.get()), "cpu");
    Module module = load(runtime.get(), addArtifact());
    ASSERT_TRUE(module);
    Session s = session(module.get());
    runAdd(s.get());
    expectSums(s.get());
  }
  EXPECT_STREQ(kiln_runtime_device(nullptr), "");
}

TEST(RuntimeApi, rejects_an_unknown_device_naming_the_known_ones) {
  Status error;
  EXPECT_EQ(runtimeOn("bogus", &error), nullptr);
  EXPECT_EQ(kiln_status_code(error.get()), KILN_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(message(error), "unknown device \"bogus\" (the devices are cpu, cuda and metal)");
}

TEST(RuntimeApi, metal_is_unsupported_on_linux) {
  Status error;
  EXPECT_EQ(runtimeOn("metal", &error), nullptr);
  EXPECT_EQ(kiln_status_code(error.get()), KILN_ERROR_UNSUPPORTED);
  EXPECT_NE(message(error).find("device metal: Metal GPUs are reached only on macOS"),
            std::string::npos)
      << message(error);
}

// kiln-device-tests covers a driver (a fake one); this is the machine without one.
TEST(RuntimeApi, cuda_without_a_driver_is_unsupported) {
  if (void *driver = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL)) {
    dlclose(driver);
    GTEST_SKIP() << "this machine has a CUDA driver (libcuda.so.1 loads)";
  }
  Status error;
  EXPECT_EQ(runtimeOn("cuda", &error), nullptr);
  EXPECT_EQ(kiln_status_code(error.get()), KILN_ERROR_UNSUPPORTED);
  EXPECT_EQ(message(error).rfind("device cuda: no CUDA driver: ", 0), 0u) << message(error);
  EXPECT_NE(message(error).find("libcuda.so.1"), std::string::npos) << message(error);
}

TEST(RuntimeApi, cpu_refuses_an_artifact_with_code_for_other_devices_only) {
  ArtifactWriter writer = kiln::test::makeAddArtifact(code());
  writer.program().codeObjects[0].device = "cuda";
  writer.program().codeObjects[0].target = "x86-64-linux-cuda-cuda_capability_80";
  Runtime runtime = makeRuntime();
  Status error;
  EXPECT_EQ(load(runtime.get(), writer.serialize(), &error), nullptr);
  EXPECT_EQ(kiln_status_code(error.get()), KILN_ERROR_UNSUPPORTED);
  EXPECT_EQ(message(error),
            "the artifact has code for cuda only; compile it with --target=host to run on "
            "device cpu");
  writer.program().codeObjects[0].device = "metal";
  writer.program().codeObjects[0].format = "macho-dylib";
  EXPECT_EQ(load(runtime.get(), writer.serialize(), &error), nullptr);
  EXPECT_EQ(kiln_status_code(error.get()), KILN_ERROR_UNSUPPORTED);
  EXPECT_EQ(message(error),
            "the artifact has code for metal only (its metal code runs only on macOS); "
            "compile it with --target=host to run on device cpu");
}

TEST(RuntimeApi, cpu_loads_its_code_among_other_devices) {
  // The other devices' objects are not even ELF files: they are never loaded.
  std::vector<uint8_t> junk(64, 0);
  ArtifactWriter writer = kiln::test::makeAddArtifact(code());
  writer.addCodeObject("cuda", "x86-64-linux-cuda-cuda_capability_80", "elf-shared-object", junk);
  writer.addCodeObject("metal", "arm-64-osx-metal", "macho-dylib", junk);
  Runtime runtime = makeRuntime();
  Module module = load(runtime.get(), writer.serialize());
  ASSERT_TRUE(module);
  Session s = session(module.get());
  runAdd(s.get());
  expectSums(s.get());
}

TEST(RuntimeApi, introspects_entry_points_and_signatures) {
  Runtime runtime = makeRuntime();
  Module module = load(runtime.get(), addArtifact());
  ASSERT_TRUE(module);
  EXPECT_STREQ(kiln_module_target(module.get()), "x86-64-linux");
  ASSERT_EQ(kiln_module_entry_point_count(module.get()), 1u);
  EXPECT_STREQ(kiln_module_entry_point_name(module.get(), 0), "main");
  EXPECT_EQ(kiln_module_entry_point_name(module.get(), 1), nullptr);
  size_t index = 9;
  EXPECT_OK(kiln_module_find_entry_point(module.get(), "main", &index));
  EXPECT_EQ(index, 0u);
  Status missing(kiln_module_find_entry_point(module.get(), "nope", &index));
  EXPECT_EQ(kiln_status_code(missing.get()), KILN_ERROR_NOT_FOUND);

  ASSERT_EQ(kiln_module_input_count(module.get(), 0), 2u);
  ASSERT_EQ(kiln_module_output_count(module.get(), 0), 3u);
  EXPECT_EQ(kiln_module_input_count(module.get(), 5), 0u);
  kiln_tensor_info info;
  EXPECT_OK(kiln_module_input_info(module.get(), 0, 1, &info));
  EXPECT_STREQ(info.name, "b");
  EXPECT_EQ(info.dtype, KILN_DTYPE_F32);
  ASSERT_EQ(info.rank, 2u);
  EXPECT_EQ(info.shape[0], 2);
  EXPECT_EQ(info.shape[1], 3);
  EXPECT_EQ(info.byte_size, 24u);
  EXPECT_OK(kiln_module_output_info(module.get(), 0, 1, &info));
  EXPECT_STREQ(info.name, "sum_flat");
  ASSERT_EQ(info.rank, 1u);
  EXPECT_EQ(info.shape[0], 6);
  Status outOfRange(kiln_module_output_info(module.get(), 0, 3, &info));
  EXPECT_EQ(kiln_status_code(outOfRange.get()), KILN_ERROR_NOT_FOUND);
}

TEST(RuntimeApi, runs_dispatches_through_the_arena_and_weights) {
  Runtime runtime = makeRuntime();
  Module module = load(runtime.get(), addArtifact());
  Session s = session(module.get());
  runAdd(s.get());
  expectSums(s.get());
}

TEST(RuntimeApi, alias_output_views_the_bytes_of_its_target) {
  Runtime runtime = makeRuntime();
  Module module = load(runtime.get(), addArtifact());
  Session s = session(module.get());
  runAdd(s.get());
  const void *sum = nullptr, *flat = nullptr;
  size_t sumBytes = 0, flatBytes = 0;
  EXPECT_OK(kiln_session_output(s.get(), 0, &sum, &sumBytes));
  EXPECT_OK(kiln_session_output(s.get(), 1, &flat, &flatBytes));
  EXPECT_EQ(sum, flat);
  EXPECT_EQ(sumBytes, flatBytes);
}

TEST(RuntimeApi, weight_output_reads_the_weights_section) {
  Runtime runtime = makeRuntime();
  Module module = load(runtime.get(), addArtifact());
  Session s = session(module.get());
  runAdd(s.get());
  float bias[6];
  EXPECT_OK(kiln_session_copy_output(s.get(), 2, bias, sizeof bias));
  for (int k = 0; k < 6; ++k)
    EXPECT_EQ(bias[k], 100.0f + float(k));
}

TEST(RuntimeApi, rejects_wrong_input_size_naming_the_expected_shape) {
  Runtime runtime = makeRuntime();
  Module module = load(runtime.get(), addArtifact());
  Session s = session(module.get());
  Status status(kiln_session_set_input(s.get(), 0, kA, 16));
  EXPECT_EQ(kiln_status_code(status.get()), KILN_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(message(status),
            "input 0 (a) of entry point main is f32[2x3], 24 bytes; got 16 bytes");
  Status byName(kiln_session_set_input_by_name(s.get(), "c", kA, sizeof kA));
  EXPECT_EQ(kiln_status_code(byName.get()), KILN_ERROR_NOT_FOUND);
  Status index(kiln_session_set_input(s.get(), 2, kA, sizeof kA));
  EXPECT_EQ(kiln_status_code(index.get()), KILN_ERROR_NOT_FOUND);
}

TEST(RuntimeApi, run_requires_every_input) {
  Runtime runtime = makeRuntime();
  Module module = load(runtime.get(), addArtifact());
  Session s = session(module.get());
  EXPECT_OK(kiln_session_set_input(s.get(), 0, kA, sizeof kA));
  Status status(kiln_session_run(s.get()));
  EXPECT_EQ(kiln_status_code(status.get()), KILN_ERROR_FAILED_PRECONDITION);
  EXPECT_EQ(message(status), "input 1 (b) of entry point main has not been set");
}

TEST(RuntimeApi, outputs_need_a_successful_run) {
  Runtime runtime = makeRuntime();
  Module module = load(runtime.get(), addArtifact());
  Session s = session(module.get());
  const void *data = nullptr;
  size_t size = 0;
  Status status(kiln_session_output(s.get(), 0, &data, &size));
  EXPECT_EQ(kiln_status_code(status.get()), KILN_ERROR_FAILED_PRECONDITION);
}

TEST(RuntimeApi, copy_output_checks_the_destination_size) {
  Runtime runtime = makeRuntime();
  Module module = load(runtime.get(), addArtifact());
  Session s = session(module.get());
  runAdd(s.get());
  float small[2];
  Status status(kiln_session_copy_output(s.get(), 0, small, sizeof small));
  EXPECT_EQ(message(status), "output 0 (sum) is 24 bytes; dst holds 8");
}

TEST(RuntimeApi, loads_from_a_file_with_mmap) {
  std::string path = ::testing::TempDir() + "/runtime-api.kiln";
  ArtifactError err = kiln::test::makeAddArtifact(code()).writeFile(path);
  ASSERT_FALSE(err) << err.message;
  Runtime runtime = makeRuntime();
  kiln_module *module = nullptr;
  EXPECT_OK(kiln_module_load_file(runtime.get(), path.c_str(), &module));
  Module owned(module);
  Session s = session(module);
  runAdd(s.get());
  expectSums(s.get());
}

TEST(RuntimeApi, reports_missing_file) {
  Runtime runtime = makeRuntime();
  kiln_module *module = nullptr;
  Status status(kiln_module_load_file(runtime.get(), "/nonexistent/x.kiln", &module));
  EXPECT_EQ(kiln_status_code(status.get()), KILN_ERROR_IO);
  EXPECT_NE(message(status).find("cannot open /nonexistent/x.kiln"), std::string::npos);
}

TEST(RuntimeApi, reports_truncated_file_with_its_path) {
  std::vector<uint8_t> file = addArtifact();
  std::string path = ::testing::TempDir() + "/truncated.kiln";
  FILE *out = std::fopen(path.c_str(), "wb");
  ASSERT_NE(out, nullptr);
  std::fwrite(file.data(), 1, 1000, out);
  std::fclose(out);
  Runtime runtime = makeRuntime();
  kiln_module *module = nullptr;
  Status status(kiln_module_load_file(runtime.get(), path.c_str(), &module));
  EXPECT_EQ(kiln_status_code(status.get()), KILN_ERROR_INVALID_ARTIFACT);
  EXPECT_EQ(message(status).rfind(path + ": artifact truncated: section", 0), 0u)
      << message(status);
  EXPECT_EQ(module, nullptr);
}

TEST(RuntimeApi, borrows_aligned_memory_and_rejects_unaligned) {
  std::vector<uint8_t> file = addArtifact();
  void *aligned = nullptr;
  ASSERT_EQ(posix_memalign(&aligned, 64, file.size() + 1), 0);
  std::unique_ptr<void, void (*)(void *)> owner(aligned, std::free);
  std::memcpy(aligned, file.data(), file.size());
  Runtime runtime = makeRuntime();
  kiln_module *module = nullptr;
  EXPECT_OK(kiln_module_load_memory(runtime.get(), aligned, file.size(), KILN_LOAD_BORROW,
                                    &module));
  Module owned(module);
  Session s = session(module);
  runAdd(s.get());
  expectSums(s.get());

  auto *shifted = static_cast<uint8_t *>(aligned) + 1;
  std::memmove(shifted, aligned, file.size());
  kiln_module *unaligned = nullptr;
  Status status(kiln_module_load_memory(runtime.get(), shifted, file.size(), KILN_LOAD_BORROW,
                                        &unaligned));
  EXPECT_EQ(kiln_status_code(status.get()), KILN_ERROR_INVALID_ARGUMENT);
}

TEST(RuntimeApi, handles_may_be_released_in_any_order) {
  Runtime runtime = makeRuntime();
  Module module = load(runtime.get(), addArtifact());
  Session s = session(module.get());
  module.reset();
  runtime.reset();
  runAdd(s.get());
  expectSums(s.get());
}

TEST(RuntimeApi, passes_dimensions_innermost_first) {
  Runtime runtime = makeRuntime();
  Module module = load(runtime.get(), singleKernel("transpose", {{DType::F32, {2, 3}}},
                                                   {{DType::F32, {3, 2}}}));
  Session s = session(module.get());
  const float in[6] = {1, 2, 3, 4, 5, 6}; // [[1 2 3] [4 5 6]]
  EXPECT_OK(kiln_session_set_input(s.get(), 0, in, sizeof in));
  EXPECT_OK(kiln_session_run(s.get()));
  float out[6];
  EXPECT_OK(kiln_session_copy_output(s.get(), 0, out, sizeof out));
  const float expected[6] = {1, 4, 2, 5, 3, 6}; // [[1 4] [2 5] [3 6]]
  for (int k = 0; k < 6; ++k)
    EXPECT_EQ(out[k], expected[k]) << "element " << k;
}

TEST(RuntimeApi, maps_every_dtype_to_its_halide_type) {
  // {dtype, Halide type code (0 int, 1 uint, 2 float, 4 bfloat), bits}
  const struct {
    DType dtype;
    int32_t code, bits;
  } rows[] = {{DType::F32, 2, 32}, {DType::F64, 2, 64}, {DType::F16, 2, 16},
              {DType::BF16, 4, 16}, {DType::I8, 0, 8},  {DType::I16, 0, 16},
              {DType::I32, 0, 32}, {DType::I64, 0, 64}, {DType::U8, 1, 8},
              {DType::U16, 1, 16}, {DType::U32, 1, 32}, {DType::U64, 1, 64},
              {DType::Bool, 1, 1}};
  static_assert(sizeof rows / sizeof rows[0] == KILN_DTYPE_COUNT, "one row per dtype");
  Runtime runtime = makeRuntime();
  for (const auto &row : rows) {
    Module module = load(runtime.get(), singleKernel("describe", {{row.dtype, {4, 5}}},
                                                     {{DType::I32, {5}}}));
    ASSERT_TRUE(module);
    Session s = session(module.get());
    std::vector<uint8_t> zeros(20 * kiln_dtype_size(kiln_dtype(row.dtype)));
    EXPECT_OK(kiln_session_set_input(s.get(), 0, zeros.data(), zeros.size()));
    EXPECT_OK(kiln_session_run(s.get()));
    int32_t described[5];
    EXPECT_OK(kiln_session_copy_output(s.get(), 0, described, sizeof described));
    std::string name = kiln_dtype_name(kiln_dtype(row.dtype));
    EXPECT_EQ(described[0], row.code) << name;
    EXPECT_EQ(described[1], row.bits) << name;
    EXPECT_EQ(described[2], 2) << name;
    EXPECT_EQ(described[3], 5) << name << ": dim[0] is the innermost axis";
    EXPECT_EQ(described[4], 1) << name;
  }
}

TEST(RuntimeApi, gives_each_module_the_runtime_thread_count) {
  std::vector<uint8_t> file = singleKernel("threads", {}, {{DType::I32, {1}}});
  Runtime three = makeRuntime(3), five = makeRuntime(5);
  // Two loads of the same code object are separate objects with separate state.
  Module a = load(three.get(), file), b = load(five.get(), file);
  for (auto [module, expected] : {std::pair{a.get(), 3}, std::pair{b.get(), 5}}) {
    Session s = session(module);
    EXPECT_OK(kiln_session_run(s.get()));
    int32_t threads = 0;
    EXPECT_OK(kiln_session_copy_output(s.get(), 0, &threads, sizeof threads));
    EXPECT_EQ(threads, expected);
  }
}

TEST(RuntimeApi, reloads_code_objects_many_times) {
  std::vector<uint8_t> file = singleKernel("threads", {}, {{DType::I32, {1}}});
  for (int i = 0; i < 50; ++i) {
    Runtime runtime = makeRuntime(i + 1);
    Module module = load(runtime.get(), file);
    ASSERT_TRUE(module);
    Session s = session(module.get());
    EXPECT_OK(kiln_session_run(s.get()));
    int32_t threads = 0;
    EXPECT_OK(kiln_session_copy_output(s.get(), 0, &threads, sizeof threads));
    ASSERT_EQ(threads, i + 1) << "load " << i << " saw another load's code object";
  }
}

TEST(RuntimeApi, reports_kernel_failure_naming_the_kernel) {
  Runtime runtime = makeRuntime();
  Module module = load(runtime.get(), singleKernel("fail", {}, {{DType::F32, {1}}}));
  Session s = session(module.get());
  Status status(kiln_session_run(s.get()));
  EXPECT_EQ(kiln_status_code(status.get()), KILN_ERROR_KERNEL_FAILED);
  EXPECT_EQ(message(status),
            "entry point main: dispatch 0: kernel fail failed with error -3");
  const void *data = nullptr;
  size_t size = 0;
  Status output(kiln_session_output(s.get(), 0, &data, &size));
  EXPECT_EQ(kiln_status_code(output.get()), KILN_ERROR_FAILED_PRECONDITION);
}

TEST(RuntimeApi, reports_missing_kernel_symbol) {
  Runtime runtime = makeRuntime();
  Status status;
  Module module = load(runtime.get(), singleKernel("absent", {}, {{DType::F32, {1}}}), &status);
  EXPECT_FALSE(module);
  EXPECT_EQ(kiln_status_code(status.get()), KILN_ERROR_INVALID_ARTIFACT);
  EXPECT_EQ(message(status), "code object (section 2) has no symbol absent_argv for kernel 0");
}

// A forged program whose kernel takes fewer arguments than its code does (two kernels'
// names swapped has this effect): the argv function would read past the dispatch's
// argument list. The loader checks the count against the code's own metadata.
TEST(RuntimeApi, rejects_kernel_whose_argument_count_is_not_the_codes) {
  Runtime runtime = makeRuntime();
  Status status;
  // "add" takes three buffers (two inputs, one output); this program gives it two.
  Module module = load(runtime.get(), singleKernel("add", {{DType::F32, {4}}}, {{DType::F32, {4}}}),
                       &status);
  EXPECT_FALSE(module);
  EXPECT_EQ(kiln_status_code(status.get()), KILN_ERROR_INVALID_ARTIFACT);
  EXPECT_EQ(message(status),
            "kernel 0 (add) takes 3 arguments in code object (section 2), but the program gives it 2");
  // A kernel without Halide's metadata (compiled by a kiln before the check) is refused.
  Status old;
  module = load(runtime.get(), singleKernel("unchecked", {}, {{DType::F32, {1}}}), &old);
  EXPECT_FALSE(module);
  EXPECT_EQ(message(old), "code object (section 2) has no symbol unchecked_metadata for kernel 0 "
                          "(an artifact of a kiln before 2026-12-05: compile it again)");
}

TEST(RuntimeApi, rejects_code_object_that_is_not_elf) {
  ArtifactWriter writer;
  writer.addCodeObject("cpu", "x86-64-linux", "elf-shared-object", {1, 2, 3, 4, 5});
  writer.program().kernels = {{"add", 0}};
  Runtime runtime = makeRuntime();
  Status status;
  Module module = load(runtime.get(), writer.serialize(), &status);
  EXPECT_EQ(message(status), "code object (section 2) is not an ELF file");
}

TEST(RuntimeApi, rejects_code_for_another_architecture) {
  ArtifactWriter writer = kiln::test::makeAddArtifact(code());
  writer.program().codeObjects[0].target = "arm-64-linux";
  Runtime runtime = makeRuntime();
  Status status;
  Module module = load(runtime.get(), writer.serialize(), &status);
  EXPECT_EQ(kiln_status_code(status.get()), KILN_ERROR_UNSUPPORTED);
  EXPECT_NE(message(status).find("cannot run here"), std::string::npos);
}

TEST(RuntimeApi, checks_the_code_object_target_against_the_host) {
  Runtime runtime = makeRuntime();
  for (auto [target, runs] : {std::pair{"x86-64-linux-sse41-no_runtime", true},
                              std::pair{"host", true}, std::pair{"x86-64-windows", false},
                              std::pair{"x86", false}}) {
    ArtifactWriter writer = kiln::test::makeAddArtifact(code());
    writer.program().codeObjects[0].target = target;
    Status status;
    Module module = load(runtime.get(), writer.serialize(), &status);
    EXPECT_EQ(bool(module), runs) << target << ": " << message(status);
    if (!runs)
      EXPECT_EQ(kiln_status_code(status.get()), KILN_ERROR_UNSUPPORTED) << target;
  }
}

TEST(RuntimeApi, invalid_artifact_is_an_error_not_a_crash) {
  std::vector<uint8_t> file = addArtifact();
  file[file.size() / 2] ^= 0xff;
  Runtime runtime = makeRuntime();
  Status status;
  Module module = load(runtime.get(), file, &status);
  EXPECT_FALSE(module);
  EXPECT_EQ(kiln_status_code(status.get()), KILN_ERROR_INVALID_ARTIFACT);
}

TEST(RuntimeApi, null_arguments_are_errors) {
  Runtime runtime = makeRuntime();
  kiln_module *module = nullptr;
  Status a(kiln_module_load_memory(nullptr, "x", 1, KILN_LOAD_COPY, &module));
  Status b(kiln_module_load_memory(runtime.get(), nullptr, 10, KILN_LOAD_COPY, &module));
  Status c(kiln_session_run(nullptr));
  Status d(kiln_module_load_file(runtime.get(), nullptr, &module));
  for (const Status *s : {&a, &b, &c, &d})
    EXPECT_EQ(kiln_status_code(s->get()), KILN_ERROR_INVALID_ARGUMENT);
  kiln_module_release(nullptr);
  kiln_session_release(nullptr);
  kiln_runtime_release(nullptr);
}

TEST(RuntimeApi, sessions_of_one_module_run_concurrently) {
  Runtime runtime = makeRuntime();
  Module module = load(runtime.get(), addArtifact());
  auto work = [&] {
    Session s = session(module.get());
    for (int i = 0; i < 200; ++i) {
      runAdd(s.get());
      expectSums(s.get());
    }
  };
  std::thread first(work), second(work);
  first.join();
  second.join();
}

namespace {

// A module whose one dispatch is the `wait` kernel, a session of it, and the gate its
// kernel waits at.
struct GatedSession {
  Runtime runtime = makeRuntime();
  Module module = load(runtime.get(), singleKernel("wait", {{DType::U64, {1}}},
                                                   {{DType::I32, {1}}}));
  Session s = session(module.get());
  kiln_test_gate gate{};

  // Points `target`'s input at the gate.
  void aim(kiln_session *target) {
    uint64_t address = uint64_t(uintptr_t(&gate));
    EXPECT_OK(kiln_session_set_input(target, 0, &address, sizeof address));
  }
  // Starts a run of `runner` on another thread and returns once its kernel is running.
  std::thread startRun(kiln_session *runner, Status *result) {
    std::thread thread([=] { result->reset(kiln_session_run(runner)); });
    while (!__atomic_load_n(&gate.entered, __ATOMIC_ACQUIRE))
      std::this_thread::yield();
    return thread;
  }
  void release() { __atomic_store_n(&gate.released, 1, __ATOMIC_RELEASE); }
};

} // namespace

TEST(RuntimeApi, reports_a_session_used_from_two_threads_at_once) {
  GatedSession g;
  g.aim(g.s.get());
  Status first;
  std::thread runner = g.startRun(g.s.get(), &first);
  Status second(kiln_session_run(g.s.get()));
  uint64_t address = 0;
  Status input(kiln_session_set_input(g.s.get(), 0, &address, sizeof address));
  g.release();
  runner.join();
  EXPECT_EQ(first, nullptr) << message(first);
  const char *expected = "the session of entry point main is already running on another "
                         "thread (a run or set_input has not returned); use one session "
                         "per thread";
  EXPECT_EQ(kiln_status_code(second.get()), KILN_ERROR_FAILED_PRECONDITION);
  EXPECT_EQ(message(second), expected);
  EXPECT_EQ(kiln_status_code(input.get()), KILN_ERROR_FAILED_PRECONDITION);
  EXPECT_EQ(message(input), expected);
  // The rejected calls changed nothing: the session runs again, on the gate's address.
  EXPECT_OK(kiln_session_run(g.s.get()));
}

TEST(RuntimeApi, reports_sessions_sharing_state_used_from_two_threads_at_once) {
  GatedSession g;
  kiln_session *raw = nullptr;
  EXPECT_OK(kiln_session_create_sharing_state(g.module.get(), 0, g.s.get(), &raw));
  Session sibling(raw);
  g.aim(g.s.get());
  g.aim(sibling.get());
  Status first;
  std::thread runner = g.startRun(g.s.get(), &first);
  Status second(kiln_session_run(sibling.get()));
  g.release();
  runner.join();
  EXPECT_EQ(first, nullptr) << message(first);
  EXPECT_EQ(kiln_status_code(second.get()), KILN_ERROR_FAILED_PRECONDITION);
  EXPECT_EQ(message(second), "a session sharing state with this session of entry point "
                             "main is running on another thread; sessions sharing state "
                             "are used by one thread at a time");
  EXPECT_OK(kiln_session_run(sibling.get()));
}

// ---- profiling ----------------------------------------------------------------------

namespace {

uint64_t monotonicNs() {
  timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  return uint64_t(now.tv_sec) * 1000000000u + uint64_t(now.tv_nsec);
}

kiln_profile_summary summary(const kiln_session *s) {
  kiln_profile_summary out;
  Status status(kiln_session_profile_summary(s, &out));
  EXPECT_EQ(status, nullptr) << message(status);
  return out;
}

kiln_dispatch_profile dispatchProfile(const kiln_session *s, size_t dispatch) {
  kiln_dispatch_profile out{};
  Status status(kiln_session_dispatch_profile(s, dispatch, &out));
  EXPECT_EQ(status, nullptr) << message(status);
  return out;
}

std::vector<kiln_trace_event> traceEvents(const kiln_session *s) {
  size_t count = 0;
  Status sizing(kiln_session_trace_events(s, nullptr, 0, &count));
  EXPECT_EQ(sizing, nullptr) << message(sizing);
  std::vector<kiln_trace_event> events(count);
  Status copy(kiln_session_trace_events(s, events.data(), events.size(), &count));
  EXPECT_EQ(copy, nullptr) << message(copy);
  return events;
}

void startProfiling(kiln_session *s, size_t maxEvents = 1000) {
  kiln_profile_options options;
  kiln_profile_options_init(&options);
  EXPECT_EQ(options.max_trace_events, size_t(1) << 20);
  options.max_trace_events = maxEvents;
  EXPECT_OK(kiln_session_start_profiling(s, &options));
}

} // namespace

TEST(RuntimeApi, profile_is_empty_until_profiling_starts) {
  Runtime runtime = makeRuntime();
  Module module = load(runtime.get(), addArtifact());
  Session s = session(module.get());
  runAdd(s.get());
  kiln_profile_summary before = summary(s.get());
  EXPECT_EQ(before.runs, 0u);
  EXPECT_EQ(before.run_ns, 0u);
  EXPECT_EQ(before.kernel_ns, 0u);
  EXPECT_EQ(before.dispatch_count, 2u);
  EXPECT_EQ(before.trace_event_count, 0u);
  // What the artifact says about a dispatch is there without profiling: without the
  // compiler's estimates, no FLOPs and the bytes of its three f32[2x3] arguments.
  kiln_dispatch_profile add = dispatchProfile(s.get(), 1);
  EXPECT_STREQ(add.kernel, "add");
  EXPECT_EQ(add.kernel_index, 0u);
  EXPECT_STREQ(add.location, "");
  EXPECT_STREQ(add.summary, "");
  EXPECT_EQ(add.flops, 0u);
  EXPECT_EQ(add.bytes, 3u * 24u);
  EXPECT_EQ(add.calls, 0u);
  EXPECT_EQ(add.min_ns, 0u);
  EXPECT_TRUE(traceEvents(s.get()).empty());
}

TEST(RuntimeApi, profile_times_every_dispatch_of_every_run) {
  Runtime runtime = makeRuntime();
  Module module = load(runtime.get(), addArtifact());
  Session s = session(module.get());
  startProfiling(s.get());
  uint64_t before = monotonicNs();
  for (int run = 0; run < 3; ++run)
    runAdd(s.get());
  uint64_t after = monotonicNs();
  expectSums(s.get());

  kiln_profile_summary sum = summary(s.get());
  EXPECT_EQ(sum.runs, 3u);
  EXPECT_EQ(sum.trace_event_count, 6u);
  EXPECT_EQ(sum.dropped_trace_events, 0u);
  EXPECT_GE(sum.run_ns, sum.kernel_ns);
  EXPECT_LE(sum.run_ns, after - before);
  uint64_t kernelNs = 0;
  for (size_t d = 0; d < 2; ++d) {
    kiln_dispatch_profile p = dispatchProfile(s.get(), d);
    EXPECT_EQ(p.calls, 3u) << "dispatch " << d;
    EXPECT_LE(p.min_ns * 3, p.total_ns) << "dispatch " << d;
    kernelNs += p.total_ns;
  }
  EXPECT_EQ(kernelNs, sum.kernel_ns);

  // Events in run order on the caller's clock, one after the other.
  std::vector<kiln_trace_event> events = traceEvents(s.get());
  ASSERT_EQ(events.size(), 6u);
  uint64_t eventNs = 0;
  for (size_t i = 0; i < events.size(); ++i) {
    EXPECT_EQ(events[i].dispatch, i % 2) << "event " << i;
    EXPECT_GE(events[i].start_ns, i ? events[i - 1].start_ns + events[i - 1].duration_ns
                                    : before)
        << "event " << i;
    EXPECT_LE(events[i].start_ns + events[i].duration_ns, after) << "event " << i;
    eventNs += events[i].duration_ns;
  }
  EXPECT_EQ(eventNs, sum.kernel_ns);
}

TEST(RuntimeApi, profile_keeps_trace_events_up_to_the_limit) {
  Runtime runtime = makeRuntime();
  Module module = load(runtime.get(), addArtifact());
  Session s = session(module.get());
  startProfiling(s.get(), 3);
  for (int run = 0; run < 4; ++run)
    runAdd(s.get());
  kiln_profile_summary sum = summary(s.get());
  EXPECT_EQ(sum.trace_event_count, 3u);
  EXPECT_EQ(sum.dropped_trace_events, 5u);
  EXPECT_EQ(dispatchProfile(s.get(), 0).calls, 4u) << "totals count every call";
  // The capacity convention: a short array gets the first events and the full count.
  kiln_trace_event first[2];
  size_t count = 0;
  EXPECT_OK(kiln_session_trace_events(s.get(), first, 2, &count));
  EXPECT_EQ(count, 3u);
  EXPECT_EQ(first[1].dispatch, 1u);
  // No trace events at all: totals only.
  startProfiling(s.get(), 0);
  runAdd(s.get());
  EXPECT_EQ(summary(s.get()).trace_event_count, 0u);
  EXPECT_EQ(summary(s.get()).dropped_trace_events, 2u);
  EXPECT_EQ(dispatchProfile(s.get(), 1).calls, 1u);
}

TEST(RuntimeApi, stopping_keeps_the_profile_and_starting_clears_it) {
  Runtime runtime = makeRuntime();
  Module module = load(runtime.get(), addArtifact());
  Session s = session(module.get());
  EXPECT_OK(kiln_session_stop_profiling(s.get())); // before starting: nothing to stop
  EXPECT_OK(kiln_session_start_profiling(s.get(), nullptr));
  runAdd(s.get());
  EXPECT_OK(kiln_session_stop_profiling(s.get()));
  runAdd(s.get());
  EXPECT_EQ(summary(s.get()).runs, 1u);
  EXPECT_EQ(dispatchProfile(s.get(), 0).calls, 1u);
  EXPECT_EQ(traceEvents(s.get()).size(), 2u);
  startProfiling(s.get());
  EXPECT_EQ(summary(s.get()).runs, 0u);
  EXPECT_EQ(dispatchProfile(s.get(), 0).calls, 0u);
  EXPECT_TRUE(traceEvents(s.get()).empty());
}

TEST(RuntimeApi, profile_reports_the_compilers_estimates) {
  ArtifactWriter writer = kiln::test::makeAddArtifact(code());
  DispatchDesc &second = writer.program().entryPoints[0].dispatches[1];
  second.flops = 12;
  second.bytes = 40;
  second.location = "blk.0.ffn";
  second.summary = "map 2x3";
  Runtime runtime = makeRuntime();
  Module module = load(runtime.get(), writer.serialize());
  Session s = session(module.get());
  kiln_dispatch_profile p = dispatchProfile(s.get(), 1);
  EXPECT_EQ(p.flops, 12u);
  EXPECT_EQ(p.bytes, 40u);
  EXPECT_STREQ(p.location, "blk.0.ffn");
  EXPECT_STREQ(p.summary, "map 2x3");
}

TEST(RuntimeApi, profile_counts_a_failed_call_but_not_its_run) {
  Runtime runtime = makeRuntime();
  Module module = load(runtime.get(), singleKernel("fail", {}, {{DType::F32, {1}}}));
  Session s = session(module.get());
  startProfiling(s.get());
  Status status(kiln_session_run(s.get()));
  EXPECT_EQ(kiln_status_code(status.get()), KILN_ERROR_KERNEL_FAILED);
  EXPECT_EQ(summary(s.get()).runs, 0u);
  EXPECT_EQ(dispatchProfile(s.get(), 0).calls, 1u);
  EXPECT_EQ(traceEvents(s.get()).size(), 1u);
}

TEST(RuntimeApi, profile_calls_check_their_arguments) {
  Runtime runtime = makeRuntime();
  Module module = load(runtime.get(), addArtifact());
  Session s = session(module.get());
  kiln_dispatch_profile p;
  Status range(kiln_session_dispatch_profile(s.get(), 2, &p));
  EXPECT_EQ(kiln_status_code(range.get()), KILN_ERROR_NOT_FOUND);
  EXPECT_EQ(message(range), "entry point main has 2 dispatches; there is no dispatch 2");
  kiln_profile_options huge{SIZE_MAX};
  Status tooMany(kiln_session_start_profiling(s.get(), &huge));
  EXPECT_EQ(kiln_status_code(tooMany.get()), KILN_ERROR_INVALID_ARGUMENT);
  kiln_profile_summary sum;
  size_t count = 0;
  Status a(kiln_session_start_profiling(nullptr, nullptr));
  Status b(kiln_session_stop_profiling(nullptr));
  Status c(kiln_session_profile_summary(nullptr, &sum));
  Status d(kiln_session_profile_summary(s.get(), nullptr));
  Status e(kiln_session_dispatch_profile(s.get(), 0, nullptr));
  Status f(kiln_session_trace_events(s.get(), nullptr, 1, &count));
  Status g(kiln_session_trace_events(s.get(), nullptr, 0, nullptr));
  for (const Status *status : {&a, &b, &c, &d, &e, &f, &g})
    EXPECT_EQ(kiln_status_code(status->get()), KILN_ERROR_INVALID_ARGUMENT);
}
