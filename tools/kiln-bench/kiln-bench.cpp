// kiln-bench machine: measures what this CPU can do at most — the memory read bandwidth
// and the fp32 FMA peak, at each thread count — so that benchmarks can report a
// kernel's speed as a fraction of the machine's limit, in the same run.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <immintrin.h>
#include <nlohmann/json.hpp>

namespace {

using Clock = std::chrono::steady_clock;

constexpr const char *kUsage =
    "usage: kiln-bench machine [--threads N[,N...]] [--megabytes M] [--repeat R]\n"
    "\n"
    "Prints this CPU (name and the vector features kiln's kernels use), its memory read\n"
    "bandwidth (a streaming sum over an M MiB buffer, default 1024, each thread its own\n"
    "slice) and its fp32 FMA peak (independent fused multiply-adds at the widest vector\n"
    "width the CPU has), for each thread count (default: 1 and all CPUs), best of R runs\n"
    "(default 5). One line per figure, then the same as JSON on the last line.\n";

[[noreturn]] void die(const std::string &message, int code = 1) {
  std::fprintf(stderr, "kiln-bench: %s\n", message.c_str());
  std::exit(code);
}

std::string cpuName() {
  std::ifstream cpuinfo("/proc/cpuinfo");
  std::string line;
  while (std::getline(cpuinfo, line))
    if (line.rfind("model name", 0) == 0) {
      size_t colon = line.find(':');
      return colon == std::string::npos ? line : line.substr(colon + 2);
    }
  return "unknown CPU";
}

enum class Isa { Avx512, Avx2, Generic };

Isa widestIsa() {
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f"))
    return Isa::Avx512;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
    return Isa::Avx2;
  return Isa::Generic;
}

std::string features() {
  std::string list;
  auto add = [&](const char *name, bool present) {
    if (present)
      list += (list.empty() ? "" : " ") + std::string(name);
  };
  __builtin_cpu_init();
  add("avx2", __builtin_cpu_supports("avx2"));
  add("fma", __builtin_cpu_supports("fma"));
  add("f16c", __builtin_cpu_supports("f16c"));
  add("avx512f", __builtin_cpu_supports("avx512f"));
  add("avx512bw", __builtin_cpu_supports("avx512bw"));
  add("avx512vl", __builtin_cpu_supports("avx512vl"));
  add("avx512vnni", __builtin_cpu_supports("avx512vnni"));
  add("avx512bf16", __builtin_cpu_supports("avx512bf16"));
  add("avx512fp16", __builtin_cpu_supports("avx512fp16"));
  add("avxvnni", __builtin_cpu_supports("avxvnni"));
  return list.empty() ? "none of avx2/fma/avx512" : list;
}

// The FMA loops: kAccumulators independent accumulators hide the FMA latency (4-5
// cycles) on two FMA ports; `iterations` x kAccumulators FMAs of `lanes` floats each =
// 2 x kAccumulators x lanes FLOP per iteration. 12, not 16: with AVX2's 16 vector
// registers, 16 accumulators and the two constants spilled to the stack, and the
// store-to-load chains held the loop to ~60% of the peak (57 GFLOP/s a core on an AMD
// EPYC whose GEMMs reached 70).
constexpr int kAccumulators = 12;
__attribute__((target("avx512f"))) float fmaAvx512(int64_t iterations) {
  __m512 acc[kAccumulators];
  for (int i = 0; i < kAccumulators; ++i)
    acc[i] = _mm512_set1_ps(float(i) * 1e-3f);
  const __m512 a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-7f);
  for (int64_t n = 0; n < iterations; ++n)
    for (int i = 0; i < kAccumulators; ++i)
      acc[i] = _mm512_fmadd_ps(acc[i], a, b);
  __m512 sum = acc[0];
  for (int i = 1; i < kAccumulators; ++i)
    sum = _mm512_add_ps(sum, acc[i]);
  return _mm512_reduce_add_ps(sum);
}

__attribute__((target("avx2,fma"))) float fmaAvx2(int64_t iterations) {
  __m256 acc[kAccumulators];
  for (int i = 0; i < kAccumulators; ++i)
    acc[i] = _mm256_set1_ps(float(i) * 1e-3f);
  const __m256 a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-7f);
  for (int64_t n = 0; n < iterations; ++n)
    for (int i = 0; i < kAccumulators; ++i)
      acc[i] = _mm256_fmadd_ps(acc[i], a, b);
  __m256 sum = acc[0];
  for (int i = 1; i < kAccumulators; ++i)
    sum = _mm256_add_ps(sum, acc[i]);
  float lanes[8];
  _mm256_storeu_ps(lanes, sum);
  float total = 0;
  for (float v : lanes)
    total += v;
  return total;
}

float fmaGeneric(int64_t iterations) {
  float acc[kAccumulators];
  for (int i = 0; i < kAccumulators; ++i)
    acc[i] = float(i) * 1e-3f;
  for (int64_t n = 0; n < iterations; ++n)
    for (int i = 0; i < kAccumulators; ++i)
      acc[i] = acc[i] * 0.999999f + 1e-7f;
  float total = 0;
  for (float v : acc)
    total += v;
  return total;
}

int lanesOf(Isa isa) { return isa == Isa::Avx512 ? 16 : isa == Isa::Avx2 ? 8 : 1; }

float runFma(Isa isa, int64_t iterations) {
  switch (isa) {
  case Isa::Avx512:
    return fmaAvx512(iterations);
  case Isa::Avx2:
    return fmaAvx2(iterations);
  case Isa::Generic:
    return fmaGeneric(iterations);
  }
  return 0;
}

// The read loop: eight independent vector sums over the thread's slice.
__attribute__((target("avx2"))) float sumAvx2(const float *data, size_t count) {
  __m256 acc[8];
  for (auto &a : acc)
    a = _mm256_setzero_ps();
  size_t i = 0;
  for (; i + 64 <= count; i += 64)
    for (int j = 0; j < 8; ++j)
      acc[j] = _mm256_add_ps(acc[j], _mm256_load_ps(data + i + 8 * j));
  __m256 sum = acc[0];
  for (int j = 1; j < 8; ++j)
    sum = _mm256_add_ps(sum, acc[j]);
  float lanes[8];
  _mm256_storeu_ps(lanes, sum);
  float total = 0;
  for (float v : lanes)
    total += v;
  for (; i < count; ++i)
    total += data[i];
  return total;
}

float sumGeneric(const float *data, size_t count) {
  float acc[8] = {};
  size_t i = 0;
  for (; i + 8 <= count; i += 8)
    for (int j = 0; j < 8; ++j)
      acc[j] += data[i + j];
  float total = 0;
  for (float v : acc)
    total += v;
  for (; i < count; ++i)
    total += data[i];
  return total;
}

/// Runs `work(thread)` on `threads` threads started together; returns the seconds from
/// the common start to the last thread's end.
template <typename Work> double timeThreads(int threads, Work work) {
  std::atomic<int> ready{0};
  std::atomic<bool> go{false};
  std::vector<std::thread> pool;
  std::vector<Clock::time_point> ends(static_cast<size_t>(threads));
  for (int t = 0; t < threads; ++t)
    pool.emplace_back([&, t] {
      ready.fetch_add(1);
      while (!go.load(std::memory_order_acquire))
        ;
      work(t);
      ends[size_t(t)] = Clock::now();
    });
  while (ready.load() < threads)
    ;
  Clock::time_point start = Clock::now();
  go.store(true, std::memory_order_release);
  for (std::thread &t : pool)
    t.join();
  Clock::time_point end = *std::max_element(ends.begin(), ends.end());
  return std::chrono::duration<double>(end - start).count();
}

volatile float sink; // keeps the measured loops' results alive

struct Figures {
  int threads;
  double readGBs, fmaGflops;
};

Figures measure(int threads, const float *buffer, size_t count, Isa isa, int repeat) {
  bool avx2 = __builtin_cpu_supports("avx2");
  double bestRead = 0, bestFma = 0;
  size_t slice = count / size_t(threads) / 64 * 64;
  constexpr int64_t kFmaIterations = 50'000'000;
  for (int r = 0; r < repeat; ++r) {
    double seconds = timeThreads(threads, [&](int t) {
      const float *begin = buffer + size_t(t) * slice;
      sink = avx2 ? sumAvx2(begin, slice) : sumGeneric(begin, slice);
    });
    bestRead = std::max(bestRead, double(slice) * threads * sizeof(float) / seconds / 1e9);
    seconds = timeThreads(threads, [&](int) { sink = runFma(isa, kFmaIterations); });
    double flop = 2.0 * kAccumulators * lanesOf(isa) * double(kFmaIterations) * threads;
    bestFma = std::max(bestFma, flop / seconds / 1e9);
  }
  return {threads, bestRead, bestFma};
}

std::vector<int> parseThreads(const std::string &text) {
  std::vector<int> counts;
  size_t start = 0;
  while (start <= text.size()) {
    size_t comma = text.find(',', start);
    std::string item = text.substr(start, comma == std::string::npos ? std::string::npos
                                                                      : comma - start);
    char *end = nullptr;
    long value = std::strtol(item.c_str(), &end, 10);
    if (item.empty() || *end || value < 1 || value > 1024)
      die("--threads takes thread counts from 1 to 1024 separated by commas, got '" + text +
              "'",
          2);
    counts.push_back(int(value));
    if (comma == std::string::npos)
      break;
    start = comma + 1;
  }
  return counts;
}

long positiveNumber(const std::string &option, const std::string &text, long most) {
  char *end = nullptr;
  long value = std::strtol(text.c_str(), &end, 10);
  if (text.empty() || *end || value < 1 || value > most)
    die(option + " takes a number from 1 to " + std::to_string(most) + ", got '" + text + "'",
        2);
  return value;
}

} // namespace

int main(int argc, char **argv) {
  if (argc < 2 || std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "-h") == 0) {
    std::fputs(kUsage, argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  if (std::strcmp(argv[1], "machine") != 0)
    die(std::string("unknown command '") + argv[1] + "' (see --help)", 2);
  unsigned cpus = std::max(1u, std::thread::hardware_concurrency());
  std::vector<int> threads{1};
  if (cpus > 1)
    threads.push_back(int(cpus));
  long megabytes = 1024, repeat = 5;
  for (int i = 2; i < argc; ++i) {
    std::string arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc)
        die("option " + arg + " needs a value", 2);
      return argv[++i];
    };
    if (arg == "--threads")
      threads = parseThreads(value());
    else if (arg == "--megabytes")
      megabytes = positiveNumber(arg, value(), 1 << 20);
    else if (arg == "--repeat")
      repeat = positiveNumber(arg, value(), 1000);
    else
      die("unknown option '" + arg + "' (see --help)", 2);
  }

  size_t count = static_cast<size_t>(megabytes) * 1024 * 1024 / sizeof(float);
  std::unique_ptr<float, decltype(&std::free)> buffer(
      static_cast<float *>(std::aligned_alloc(64, count * sizeof(float))), &std::free);
  if (!buffer)
    die("cannot allocate " + std::to_string(megabytes) + " MiB");
  for (size_t i = 0; i < count; ++i) // touches every page, so no run pays page faults
    buffer.get()[i] = float(i % 7) * 0.5f;

  Isa isa = widestIsa();
  const char *isaName = isa == Isa::Avx512 ? "avx512" : isa == Isa::Avx2 ? "avx2" : "scalar";
  std::string name = cpuName(), featureList = features();
  std::printf("cpu: %s (%u logical CPUs; %s)\n", name.c_str(), cpus, featureList.c_str());
  nlohmann::json json = {{"cpu", name},         {"logical_cpus", cpus},
                         {"features", featureList}, {"fma_isa", isaName},
                         {"buffer_mib", megabytes}, {"threads", nlohmann::json::array()}};
  for (int count : threads) {
    Figures f = measure(count, buffer.get(), size_t(megabytes) * 1024 * 1024 / sizeof(float),
                        isa, int(repeat));
    std::printf("%d thread%s: read bandwidth %.1f GB/s, fp32 FMA peak %.1f GFLOP/s (%s)\n",
                f.threads, f.threads == 1 ? "" : "s", f.readGBs, f.fmaGflops, isaName);
    json["threads"].push_back(
        {{"threads", f.threads}, {"read_gb_per_s", f.readGBs}, {"fma_gflop_per_s", f.fmaGflops}});
  }
  std::printf("%s\n", json.dump().c_str());
  return 0;
}
