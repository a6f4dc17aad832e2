// kiln's worker threads for the kernels' parallel loops (see TaskPool.h).
#include "TaskPool.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <utility>

namespace kiln::runtime {

namespace {

// How long a worker spins after a loop before it sleeps: longer than the gap between two
// parallel loops of one run, far shorter than between runs.
constexpr std::chrono::microseconds kSpin{50};
constexpr int kMaxThreads = 64;

int runInline(void *userContext, HalideTask task, int min, int size, uint8_t *closure) {
  for (int i = 0; i < size; ++i)
    if (int result = task(userContext, min + i, closure))
      return result;
  return 0;
}

void relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

// One parallel loop at a time. The caller publishes it, takes iterations itself, then
// closes it; workers that joined it before it closed take iterations too, and the
// caller waits only for those (a descheduled or sleeping worker never delays a loop).
// `state` packs the loop's generation, whether it is closed and how many joined, so
// that joining and closing are one atomic step each: a worker joins by compare-and-swap
// on the generation it saw, and reads the loop's fields only after it joined, while
// the caller waits for it.
class Pool {
public:
  explicit Pool(int workers) {
    for (int i = 0; i < workers; ++i)
      std::thread([this] { work(); }).detach();
  }

  int run(void *userContext, HalideTask task, int min, int size, uint8_t *closure) {
    bool idle = false;
    if (size <= 1 || !busy.compare_exchange_strong(idle, true, std::memory_order_acquire))
      return runInline(userContext, task, min, size, closure);
    loop = {userContext, task, min, size, closure};
    next.store(0, std::memory_order_relaxed);
    failure.store(0, std::memory_order_relaxed);
    finished.store(0, std::memory_order_relaxed);
    generation += 1;
    // seq_cst with the sleepers count: a worker about to sleep either sees this
    // generation or is seen sleeping (and woken).
    state.store(generation << kGenerationShift, std::memory_order_seq_cst);
    if (sleepers.load(std::memory_order_seq_cst) > 0) {
      std::lock_guard<std::mutex> lock(mutex);
      wake.notify_all();
    }
    execute();
    uint64_t joined = state.fetch_or(kClosed, std::memory_order_acq_rel) & kJoinedMask;
    while (finished.load(std::memory_order_acquire) != joined)
      relax();
    busy.store(false, std::memory_order_release);
    return failure.load(std::memory_order_relaxed);
  }

private:
  struct Loop {
    void *userContext;
    HalideTask task;
    int min, size;
    uint8_t *closure;
  };
  static constexpr int kGenerationShift = 32;
  static constexpr uint64_t kClosed = uint64_t(1) << 31, kJoinedMask = kClosed - 1;

  // Takes iterations of the current loop until none is left.
  void execute() {
    for (int i = next.fetch_add(1, std::memory_order_relaxed); i < loop.size;
         i = next.fetch_add(1, std::memory_order_relaxed)) {
      if (int result = loop.task(loop.userContext, loop.min + i, loop.closure)) {
        int none = 0;
        failure.compare_exchange_strong(none, result, std::memory_order_relaxed);
      }
    }
  }

  // Joins the loop of generation `seen` unless it has closed or moved on.
  bool join(uint64_t seen) {
    uint64_t s = state.load(std::memory_order_acquire);
    while ((s >> kGenerationShift) == seen && !(s & kClosed))
      if (state.compare_exchange_weak(s, s + 1, std::memory_order_acq_rel))
        return true;
    return false;
  }

  void work() {
    uint64_t seen = 0;
    auto generationNow = [&] { return state.load(std::memory_order_seq_cst) >> kGenerationShift; };
    for (;;) {
      uint64_t current = generationNow();
      auto until = std::chrono::steady_clock::now() + kSpin;
      for (int spin = 0; current == seen; ++spin) {
        relax();
        current = generationNow();
        if (spin % 64 == 63 && std::chrono::steady_clock::now() > until)
          break;
      }
      if (current == seen) {
        std::unique_lock<std::mutex> lock(mutex);
        sleepers.fetch_add(1, std::memory_order_seq_cst);
        wake.wait(lock, [&] { return generationNow() != seen; });
        sleepers.fetch_sub(1, std::memory_order_relaxed);
        current = generationNow();
      }
      seen = current;
      if (join(seen)) {
        execute();
        finished.fetch_add(1, std::memory_order_release);
      }
    }
  }

  Loop loop{};
  uint64_t generation = 0; // the caller's (under busy)
  std::atomic<bool> busy{false};
  std::atomic<uint64_t> state{0};
  std::atomic<int> next{0}, failure{0};
  std::atomic<uint64_t> finished{0};
  std::atomic<int> sleepers{0};
  std::mutex mutex;
  std::condition_variable wake;
};

// The pools, made on first use and never destroyed: their workers run until the
// process ends (detached, so exit does not wait for them).
Pool &poolOf(int threads) {
  static std::mutex made;
  static Pool *pools[kMaxThreads + 1] = {};
  std::lock_guard<std::mutex> lock(made);
  if (!pools[threads])
    pools[threads] = new Pool(threads - 1);
  return *pools[threads];
}

template <int Threads>
int parallelFor(void *userContext, HalideTask task, int min, int size, uint8_t *closure) {
  if (Threads == 1)
    return runInline(userContext, task, min, size, closure);
  static Pool &pool = poolOf(Threads);
  return pool.run(userContext, task, min, size, closure);
}

template <int... Threads>
constexpr std::array<DoParFor, sizeof...(Threads)> table(std::integer_sequence<int, Threads...>) {
  return {parallelFor<Threads + 1>...};
}

} // namespace

DoParFor parallelForWithThreads(int threads) {
  static constexpr auto entries = table(std::make_integer_sequence<int, kMaxThreads>());
  return entries[std::clamp(threads, 1, kMaxThreads) - 1];
}

} // namespace kiln::runtime
