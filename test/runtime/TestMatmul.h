/* The test code objects' GEMM kernels, written plainly row-major: for each batch b,
 * C[b] (m x n) = A[b] (m x k) . op(B[b]), op(B) = B (k x n) or, transposed, B^T with B
 * stored n x k. Shapes come from the buffers, dense, innermost dimension first as the
 * runtime builds them: C is m x n with an optional outer batch dimension; A and B have
 * one too, or are one matrix for every batch. */
#ifndef KILN_TEST_RUNTIME_TESTMATMUL_H
#define KILN_TEST_RUNTIME_TESTMATMUL_H

#include <HalideRuntime.h>

#include <stdint.h>

/* x, y, z: the data of a, b and c. 0, or -1 when the shapes do not fit together. */
static int kiln_test_matmul(const struct halide_buffer_t *a, const struct halide_buffer_t *b,
                            const struct halide_buffer_t *c, int transpose_b, const float *x,
                            const float *y, float *z) {
  if (c->dimensions < 2 || c->dimensions > 3 || a->dimensions < 2 ||
      a->dimensions > c->dimensions || b->dimensions < 2 || b->dimensions > c->dimensions)
    return -1;
  int32_t batch = c->dimensions == 3 ? c->dim[2].extent : 1;
  int32_t m = c->dim[1].extent, n = c->dim[0].extent, k = a->dim[0].extent;
  int32_t b_rows = transpose_b ? n : k, b_columns = transpose_b ? k : n;
  if (a->dim[1].extent != m || b->dim[1].extent != b_rows || b->dim[0].extent != b_columns ||
      (a->dimensions == 3 && a->dim[2].extent != batch) ||
      (b->dimensions == 3 && b->dim[2].extent != batch))
    return -1;
  for (int32_t p = 0; p < batch; ++p) {
    const float *ap = x + (a->dimensions == 3 ? (int64_t)p * m * k : 0);
    const float *bp = y + (b->dimensions == 3 ? (int64_t)p * k * n : 0);
    float *cp = z + (int64_t)p * m * n;
    for (int32_t i = 0; i < m; ++i)
      for (int32_t j = 0; j < n; ++j) {
        float sum = 0;
        for (int32_t l = 0; l < k; ++l)
          sum += ap[i * k + l] * (transpose_b ? bp[j * k + l] : bp[l * n + j]);
        cp[i * n + j] = sum;
      }
  }
  return 0;
}

#endif /* KILN_TEST_RUNTIME_TESTMATMUL_H */
