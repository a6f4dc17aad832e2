// Halide 14 JIT-compiles and runs a kernel in a process that also holds MLIR 22 with
// the kiln dialect loaded: the two LLVMs (14 and 22) must coexist for the backend.
#include "dialects/Kiln/KilnDialect.h"

#include "mlir/IR/MLIRContext.h"

#include <Halide.h>
#include <gtest/gtest.h>

namespace {

TEST(HalideToolchain, jit_kernel_runs_beside_mlir) {
  mlir::MLIRContext context;
  context.loadDialect<kiln::KilnDialect>();
  ASSERT_NE(context.getLoadedDialect("kiln"), nullptr);

  // out(x, y) = sum_k a(k, y) * b(x, k): a 64x64 matmul with a vectorized schedule.
  constexpr int n = 64;
  Halide::Buffer<float> a(n, n), b(n, n);
  for (int y = 0; y < n; ++y)
    for (int x = 0; x < n; ++x) {
      a(x, y) = static_cast<float>((x + 2 * y) % 7) - 3.0f;
      b(x, y) = static_cast<float>((3 * x + y) % 5) - 2.0f;
    }
  Halide::Var x("x"), y("y");
  Halide::RDom k(0, n);
  Halide::Func out("out");
  out(x, y) = 0.0f;
  out(x, y) += a(k, y) * b(x, k);
  out.vectorize(x, 8).parallel(y);
  Halide::Buffer<float> result = out.realize({n, n}, Halide::get_jit_target_from_environment());

  // Small integers: every product and sum is exact in f32, so compare exactly.
  for (int y = 0; y < n; ++y)
    for (int x = 0; x < n; ++x) {
      float expected = 0.0f;
      for (int i = 0; i < n; ++i)
        expected += a(i, y) * b(x, i);
      ASSERT_EQ(result(x, y), expected) << "at (" << x << ", " << y << ")";
    }
}

TEST(HalideToolchain, reports_errors_as_exceptions) {
  Halide::Func f("f");
  Halide::Var x("x");
  f(x) = x;
  // Vectorizing a variable the function does not have is a schedule error, which
  // Halide reports by throwing (so LLVM's -fno-exceptions must stay off this code).
  EXPECT_THROW(f.vectorize(Halide::Var("nope"), 8), Halide::CompileError);
}

} // namespace
