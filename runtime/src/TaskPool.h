// The kernels' parallel loops (Halide's halide_do_par_for), run by kiln's own worker
// threads instead of Halide's pool.
//
// A decode step of a language model is ~200 parallel loops a few microseconds apart.
// Halide's workers go to sleep between them, and waking a sleeping thread costs about
// as much as a small loop takes, so small products ran slower on two threads than on
// one. kiln's workers spin for a while after each loop (a run's next loop usually comes
// before that ends), then sleep until the next.
#ifndef KILN_RUNTIME_TASKPOOL_H
#define KILN_RUNTIME_TASKPOOL_H

#include <cstdint>

namespace kiln::runtime {

// Halide's task signature: runs iteration `index` of a parallel loop.
using HalideTask = int (*)(void *userContext, int index, uint8_t *closure);
// Halide's halide_do_par_for signature.
using DoParFor = int (*)(void *userContext, HalideTask task, int min, int size,
                         uint8_t *closure);

// The halide_do_par_for replacement that runs loops on `threads` threads (the caller
// and threads - 1 workers shared by every code object that asks for that many; one
// thread runs loops inline). A loop started while the pool is busy (another session's,
// or a loop inside a loop) runs inline on its caller.
DoParFor parallelForWithThreads(int threads);

} // namespace kiln::runtime

#endif // KILN_RUNTIME_TASKPOOL_H
