/* The C API's tokenizer and sampler: encode and decode with the LLaMA vocabulary given
 * on the command line (ids from llama.cpp, as in the tokenizer conformance data),
 * the capacity convention, greedy and seeded sampling. */
#include "CheckStatus.h"

#include <stdio.h>
#include <string.h>

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s ggml-vocab-llama-spm.gguf\n", argv[0]);
    return 2;
  }
  kiln_tokenizer *tokenizer;
  CHECK(kiln_tokenizer_load(argv[1], &tokenizer));
  const char *text = "Hello, world!";
  const int32_t expected[] = {1, 15043, 29892, 3186, 29991};
  size_t count = 0;
  CHECK(kiln_tokenizer_encode(tokenizer, text, strlen(text), 1, NULL, 0, &count));
  int32_t ids[8];
  CHECK(kiln_tokenizer_encode(tokenizer, text, strlen(text), 1, ids, 8, &count));
  int failures = 0;
  if (count != 5 || memcmp(ids, expected, sizeof expected) != 0) {
    fprintf(stderr, "encode gave %zu ids\n", count);
    ++failures;
  }
  char decoded[64];
  size_t size = 0;
  CHECK(kiln_tokenizer_decode(tokenizer, ids, count, decoded, sizeof decoded, &size));
  if (size != strlen(text) || memcmp(decoded, text, size) != 0) {
    fprintf(stderr, "decode gave '%.*s'\n", (int)size, decoded);
    ++failures;
  }
  int32_t bad = 1 << 30;
  kiln_status status = kiln_tokenizer_decode(tokenizer, &bad, 1, decoded, sizeof decoded, &size);
  if (!status) {
    fprintf(stderr, "decoding an id outside the vocabulary did not fail\n");
    ++failures;
  }
  kiln_status_free(status);

  kiln_sampler_options options;
  kiln_sampler_options_init(&options);
  options.temperature = 0;
  kiln_sampler *greedy, *hot1, *hot2;
  CHECK(kiln_sampler_create(&options, &greedy));
  float logits[4] = {0.1f, 2.0f, 1.0f, -3.0f};
  int32_t token = -1;
  CHECK(kiln_sampler_sample(greedy, logits, 4, NULL, 0, &token));
  if (token != 1) {
    fprintf(stderr, "greedy picked %d\n", token);
    ++failures;
  }
  options.temperature = 2.0f;
  options.top_k = 0;
  options.top_p = 1.0f;
  options.min_p = 0.0f;
  options.seed = 99;
  CHECK(kiln_sampler_create(&options, &hot1));
  CHECK(kiln_sampler_create(&options, &hot2));
  for (int i = 0; i < 32; ++i) {
    int32_t a, b;
    CHECK(kiln_sampler_sample(hot1, logits, 4, ids, count, &a));
    CHECK(kiln_sampler_sample(hot2, logits, 4, ids, count, &b));
    if (a != b) {
      fprintf(stderr, "draw %d: the same seed gave %d and %d\n", i, a, b);
      ++failures;
    }
  }
  kiln_sampler_release(hot2);
  kiln_sampler_release(hot1);
  kiln_sampler_release(greedy);
  kiln_tokenizer_release(tokenizer);
  printf(failures ? "FAIL\n" : "1 passed, 0 failed\n");
  return failures != 0;
}
