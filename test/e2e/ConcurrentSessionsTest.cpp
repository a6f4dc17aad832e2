// One module shared by many threads, one session each (what runtime.h promises is
// safe): every output of every run is bitwise equal to a single-thread run's. Inputs are
// seeded pseudo-random values, so nothing expected comes from kiln itself.
//
// usage: kiln-concurrent-sessions-test MODEL.kiln THREADS RUNS
#include "kiln/runtime.h"

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace {

using Bytes = std::vector<uint8_t>;

struct Status {
  kiln_status status;
  ~Status() { kiln_status_free(status); }
};

bool ok(kiln_status status, const char *what) {
  Status owned{status};
  if (status)
    std::fprintf(stderr, "%s: %s\n", what, kiln_status_message(status));
  return !status;
}

// Input `index`'s bytes: floats in [-1, 1), integers in [0, 7) (valid token ids and
// positions for any model), other types from the same generator's bytes.
Bytes makeInput(const kiln_tensor_info &info, uint64_t index) {
  Bytes bytes(info.byte_size);
  uint64_t state = 0x9e3779b97f4a7c15ull * (index + 1);
  auto next = [&] { // xorshift64*
    state ^= state >> 12, state ^= state << 25, state ^= state >> 27;
    return state * 0x2545f4914f6cdd1dull;
  };
  size_t count = info.byte_size / kiln_dtype_size(info.dtype);
  for (size_t i = 0; i < count; ++i) {
    uint64_t r = next();
    if (info.dtype == KILN_DTYPE_F32) {
      float v = float(int64_t(r >> 40) - (int64_t(1) << 23)) / float(1 << 23);
      std::memcpy(bytes.data() + 4 * i, &v, 4);
    } else if (info.dtype == KILN_DTYPE_I32) {
      int32_t v = int32_t(r % 7);
      std::memcpy(bytes.data() + 4 * i, &v, 4);
    } else if (info.dtype == KILN_DTYPE_I64) {
      int64_t v = int64_t(r % 7);
      std::memcpy(bytes.data() + 8 * i, &v, 8);
    } else {
      size_t size = kiln_dtype_size(info.dtype);
      std::memcpy(bytes.data() + size * i, &r, size);
    }
  }
  return bytes;
}

struct Model {
  kiln_module *module;
  std::vector<Bytes> inputs;
  size_t outputs;
};

// Sets the inputs, runs `runs` times and compares every output with `expected` (or
// fills `expected` on the first run when it is empty). Returns the runs that differed.
size_t runSession(const Model &model, size_t runs, std::vector<Bytes> &expected,
                  const char *who) {
  kiln_session *session = nullptr;
  if (!ok(kiln_session_create(model.module, 0, &session), "kiln_session_create"))
    return runs;
  std::unique_ptr<kiln_session, void (*)(kiln_session *)> owner(session,
                                                                 kiln_session_release);
  size_t mismatches = 0;
  for (size_t run = 0; run < runs; ++run) {
    for (size_t i = 0; i < model.inputs.size(); ++i)
      if (!ok(kiln_session_set_input(session, i, model.inputs[i].data(),
                                     model.inputs[i].size()),
              "kiln_session_set_input"))
        return runs;
    if (!ok(kiln_session_run(session), "kiln_session_run"))
      return runs;
    bool differs = false;
    for (size_t o = 0; o < model.outputs; ++o) {
      const void *data = nullptr;
      size_t size = 0;
      if (!ok(kiln_session_output(session, o, &data, &size), "kiln_session_output"))
        return runs;
      if (expected.size() == o) {
        expected.emplace_back(static_cast<const uint8_t *>(data),
                              static_cast<const uint8_t *>(data) + size);
      } else if (size != expected[o].size() || std::memcmp(data, expected[o].data(), size)) {
        if (mismatches == 0 && !differs)
          std::fprintf(stderr, "%s, run %zu: output %zu differs from the single-thread run\n",
                       who, run, o);
        differs = true;
      }
    }
    mismatches += differs;
  }
  return mismatches;
}

} // namespace

int main(int argc, char **argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: %s MODEL.kiln THREADS RUNS\n", argv[0]);
    return 2;
  }
  size_t threads = std::strtoul(argv[2], nullptr, 10), runs = std::strtoul(argv[3], nullptr, 10);
  kiln_runtime *runtime = nullptr;
  Model model{};
  if (!ok(kiln_runtime_create(nullptr, &runtime), "kiln_runtime_create") ||
      !ok(kiln_module_load_file(runtime, argv[1], &model.module), "kiln_module_load_file"))
    return 1;
  for (size_t i = 0; i < kiln_module_input_count(model.module, 0); ++i) {
    kiln_tensor_info info;
    if (!ok(kiln_module_input_info(model.module, 0, i, &info), "kiln_module_input_info"))
      return 1;
    model.inputs.push_back(makeInput(info, i));
  }
  model.outputs = kiln_module_output_count(model.module, 0);

  std::vector<Bytes> reference;
  if (runSession(model, 1, reference, "the single-thread run") != 0)
    return 1;
  // Every thread starts its runs at once, so that they overlap from the first.
  std::atomic<size_t> waiting{threads}, mismatches{0};
  std::vector<std::thread> workers;
  for (size_t t = 0; t < threads; ++t)
    workers.emplace_back([&, t] {
      std::string who = "thread " + std::to_string(t);
      --waiting;
      while (waiting.load() != 0)
        std::this_thread::yield();
      std::vector<Bytes> expected = reference;
      mismatches += runSession(model, runs, expected, who.c_str());
    });
  for (std::thread &worker : workers)
    worker.join();
  kiln_module_release(model.module);
  kiln_runtime_release(runtime);
  if (mismatches != 0) {
    std::printf("FAIL: %zu of %zu runs had an output unlike the single-thread run\n",
                mismatches.load(), threads * runs);
    return 1;
  }
  std::printf("%zu threads x %zu runs: every output equals the single-thread run\n",
              threads, runs);
  return 0;
}
