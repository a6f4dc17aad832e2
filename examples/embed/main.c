/* Runs a compiled .kiln artifact through the kiln runtime's C API:
 *   kiln-embed ARTIFACT [INPUT.bin ...]
 * Prints the first entry point's signature, fills each input from the matching raw
 * file (or a deterministic pattern when none is given), runs, and prints the first
 * values of every output. */
#include <kiln/runtime.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { kShown = 8 };

/* Prints the status (if any), frees it, and says whether it was an error. */
static int failed(kiln_status status, const char *what) {
  if (!status)
    return 0;
  fprintf(stderr, "kiln-embed: %s: %s\n", what, kiln_status_message(status));
  kiln_status_free(status);
  return 1;
}

static void print_info(const char *role, size_t index, const kiln_tensor_info *info) {
  printf("  %s %zu %s: %s[", role, index, info->name, kiln_dtype_name(info->dtype));
  for (size_t d = 0; d < info->rank; ++d)
    printf("%s%lld", d ? "x" : "", (long long)info->shape[d]);
  printf("] (%zu bytes)\n", info->byte_size);
}

/* IEEE half precision <-> float, for f16 inputs and outputs. */
static float half_to_float(uint16_t h) {
  int exponent = (h >> 10) & 0x1f, mantissa = h & 0x3ff;
  float value = exponent == 0    ? ldexpf((float)mantissa, -24)
                : exponent == 31 ? (mantissa ? NAN : INFINITY)
                                 : ldexpf((float)(mantissa | 0x400), exponent - 25);
  return (h & 0x8000) ? -value : value;
}

/* Exact for the pattern's values (small multiples of 1/4). */
static uint16_t float_to_half(float f) {
  if (f == 0.0f)
    return 0;
  int exponent;
  float fraction = frexpf(f, &exponent); /* f = fraction * 2^exponent, fraction in [0.5, 1) */
  return (uint16_t)((exponent + 14) << 10 | ((int)ldexpf(fraction, 11) & 0x3ff));
}

/* Element k of a buffer of `dtype`, as a double. */
static double element(kiln_dtype dtype, const void *data, size_t k) {
  const unsigned char *p = (const unsigned char *)data + k * kiln_dtype_size(dtype);
  switch (dtype) {
#define READ(code, type)                                                                  \
  case code: {                                                                            \
    type v;                                                                               \
    memcpy(&v, p, sizeof v);                                                              \
    return (double)v;                                                                     \
  }
    READ(KILN_DTYPE_F32, float)
    READ(KILN_DTYPE_F64, double)
    READ(KILN_DTYPE_I8, int8_t)
    READ(KILN_DTYPE_I16, int16_t)
    READ(KILN_DTYPE_I32, int32_t)
    READ(KILN_DTYPE_I64, int64_t)
    READ(KILN_DTYPE_U8, uint8_t)
    READ(KILN_DTYPE_U16, uint16_t)
    READ(KILN_DTYPE_U32, uint32_t)
    READ(KILN_DTYPE_U64, uint64_t)
    READ(KILN_DTYPE_BOOL, uint8_t)
#undef READ
  case KILN_DTYPE_F16: {
    uint16_t h;
    memcpy(&h, p, sizeof h);
    return half_to_float(h);
  }
  case KILN_DTYPE_BF16: {
    uint16_t b;
    memcpy(&b, p, sizeof b);
    uint32_t bits = (uint32_t)b << 16;
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
  }
  default:
    return 0.0;
  }
}

/* The pattern input element k gets without a file: (k % 13) / 4 for floating-point
 * dtypes (exact in all of them), k % 13 for integers, k % 2 for bool. */
static void fill_pattern(kiln_dtype dtype, void *data, size_t count) {
  unsigned char *p = data;
  for (size_t k = 0; k < count; ++k, p += kiln_dtype_size(dtype)) {
    double v = (double)(k % 13) / 4.0;
    switch (dtype) {
    case KILN_DTYPE_F32: {
      float f = (float)v;
      memcpy(p, &f, sizeof f);
      break;
    }
    case KILN_DTYPE_F64:
      memcpy(p, &v, sizeof v);
      break;
    case KILN_DTYPE_BF16: {
      float f = (float)v;
      uint32_t bits;
      memcpy(&bits, &f, sizeof bits);
      uint16_t b = (uint16_t)(bits >> 16); /* exact: v has at most 4 significant bits */
      memcpy(p, &b, sizeof b);
      break;
    }
    case KILN_DTYPE_F16: {
      uint16_t h = float_to_half((float)v);
      memcpy(p, &h, sizeof h);
      break;
    }
    case KILN_DTYPE_BOOL:
      *p = (unsigned char)(k % 2);
      break;
    default: { /* integers */
      uint64_t i = k % 13;
      memcpy(p, &i, kiln_dtype_size(dtype)); /* little-endian */
      break;
    }
    }
  }
}

static int read_file(const char *path, void *data, size_t size) {
  FILE *in = fopen(path, "rb");
  if (!in) {
    fprintf(stderr, "kiln-embed: cannot open %s\n", path);
    return 1;
  }
  size_t got = fread(data, 1, size, in);
  int extra = fgetc(in) != EOF;
  fclose(in);
  if (got != size || extra) {
    fprintf(stderr, "kiln-embed: %s must hold exactly %zu bytes\n", path, size);
    return 1;
  }
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s ARTIFACT [INPUT.bin ...]\n", argv[0]);
    return 2;
  }
  int rc = 1;
  kiln_runtime *runtime = NULL;
  kiln_module *module = NULL;
  kiln_session *session = NULL;
  void *buffer = NULL;
  if (failed(kiln_runtime_create(NULL, &runtime), "creating the runtime") ||
      failed(kiln_module_load_file(runtime, argv[1], &module), "loading"))
    goto done;
  if (kiln_module_entry_point_count(module) == 0) {
    fprintf(stderr, "kiln-embed: %s has no entry points\n", argv[1]);
    goto done;
  }

  size_t inputs = kiln_module_input_count(module, 0);
  size_t outputs = kiln_module_output_count(module, 0);
  printf("entry point %s (target %s)\n", kiln_module_entry_point_name(module, 0),
         kiln_module_target(module));
  kiln_tensor_info info;
  for (size_t i = 0; i < inputs; ++i) {
    if (failed(kiln_module_input_info(module, 0, i, &info), "input info"))
      goto done;
    print_info("input", i, &info);
  }
  for (size_t i = 0; i < outputs; ++i) {
    if (failed(kiln_module_output_info(module, 0, i, &info), "output info"))
      goto done;
    print_info("output", i, &info);
  }
  if (argc > 2 && (size_t)(argc - 2) != inputs) {
    fprintf(stderr, "kiln-embed: %zu input files given, the entry point takes %zu\n",
            (size_t)(argc - 2), inputs);
    goto done;
  }

  if (failed(kiln_session_create(module, 0, &session), "creating a session"))
    goto done;
  for (size_t i = 0; i < inputs; ++i) {
    if (failed(kiln_module_input_info(module, 0, i, &info), "input info"))
      goto done;
    free(buffer);
    buffer = malloc(info.byte_size ? info.byte_size : 1);
    if (!buffer)
      goto done;
    if (argc > 2) {
      if (read_file(argv[2 + i], buffer, info.byte_size))
        goto done;
    } else {
      fill_pattern(info.dtype, buffer, info.byte_size / kiln_dtype_size(info.dtype));
    }
    if (failed(kiln_session_set_input(session, i, buffer, info.byte_size), "setting an input"))
      goto done;
  }
  if (failed(kiln_session_run(session), "running"))
    goto done;

  for (size_t i = 0; i < outputs; ++i) {
    const void *data;
    size_t size;
    if (failed(kiln_module_output_info(module, 0, i, &info), "output info") ||
        failed(kiln_session_output(session, i, &data, &size), "reading an output"))
      goto done;
    size_t count = size / kiln_dtype_size(info.dtype);
    printf("%s:", info.name);
    for (size_t k = 0; k < count && k < kShown; ++k)
      printf(" %g", element(info.dtype, data, k));
    printf("%s\n", count > kShown ? " ..." : "");
  }
  rc = 0;

done:
  free(buffer);
  kiln_session_release(session);
  kiln_module_release(module);
  kiln_runtime_release(runtime);
  return rc;
}
