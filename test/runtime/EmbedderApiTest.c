/* The embeddings part of the C API, from C, on all-MiniLM-L6-v2 compiled with a batch
 * of 4 (embedder_api_test.py compiles it and checks the vectors this writes against
 * numpy): more texts than the batch, unit length, a paraphrase closer than an unrelated
 * pair, the same vector for a text alone or in any batch position, max_length, and
 * errors for NULLs, wrong sizes and a module without "embed".
 *
 * usage: kiln-embedder-c-api-test MINILM.kiln TOKENIZER_DIR NO_EMBED.kiln OUT_PREFIX
 * writes OUT_PREFIX.txt (the texts, one a line) and OUT_PREFIX.f32 (their embeddings
 * with the default options, then with max_length 8, row after row). */
#include "CheckStatus.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *const kTexts[] = {
    "A man is playing a guitar.",
    "Someone is playing the guitar.",
    "The stock market fell sharply on Tuesday amid fears of rising interest rates.",
    "Cats sleep for up to sixteen hours a day.",
    "Paris is the capital of France.",
    "",
    ("It was the best of times, it was the worst of times, it was the age of wisdom, it was "
     "the age of foolishness, it was the epoch of belief, it was the epoch of incredulity."),
    "Emoji: \xF0\x9F\x99\x82 and accents: caf\xC3\xA9, na\xC3\xAFve.",
    "What is the airspeed velocity of an unladen swallow?",
    "A",
};
enum { kCount = sizeof kTexts / sizeof kTexts[0] };

static int failures = 0;

static void fail(const char *what) {
  fprintf(stderr, "FAIL: %s\n", what);
  ++failures;
}

/* `status` must be an error whose message contains `needle`; frees it. */
static void expectError(kiln_status status, const char *needle, const char *what) {
  if (!status) {
    fprintf(stderr, "FAIL: %s succeeded\n", what);
    ++failures;
    return;
  }
  if (!strstr(kiln_status_message(status), needle)) {
    fprintf(stderr, "FAIL: %s: message '%s' does not mention '%s'\n", what,
            kiln_status_message(status), needle);
    ++failures;
  }
  kiln_status_free(status);
}

static double dot(const float *a, const float *b, size_t n) {
  double sum = 0;
  for (size_t i = 0; i < n; ++i)
    sum += (double)a[i] * b[i];
  return sum;
}

static float maxDifference(const float *a, const float *b, size_t n) {
  float worst = 0;
  for (size_t i = 0; i < n; ++i)
    worst = fmaxf(worst, fabsf(a[i] - b[i]));
  return worst;
}

static int writeOutputs(const char *prefix, const float *rows, size_t count) {
  char path[4096];
  snprintf(path, sizeof path, "%s.txt", prefix);
  FILE *texts = fopen(path, "w");
  if (!texts)
    return 0;
  for (size_t i = 0; i < kCount; ++i)
    fprintf(texts, "%s\n", kTexts[i]);
  fclose(texts);
  snprintf(path, sizeof path, "%s.f32", prefix);
  FILE *vectors = fopen(path, "wb");
  if (!vectors)
    return 0;
  size_t written = fwrite(rows, sizeof(float), count, vectors);
  return fclose(vectors) == 0 && written == count;
}

int main(int argc, char **argv) {
  if (argc != 5) {
    fprintf(stderr, "usage: %s MINILM.kiln TOKENIZER_DIR NO_EMBED.kiln OUT_PREFIX\n", argv[0]);
    return 2;
  }
  kiln_runtime *runtime;
  kiln_module *module, *noEmbed;
  kiln_tokenizer *tokenizer;
  CHECK(kiln_runtime_create(NULL, &runtime));
  CHECK(kiln_module_load_file(runtime, argv[1], &module));
  CHECK(kiln_module_load_file(runtime, argv[3], &noEmbed));
  CHECK(kiln_tokenizer_load(argv[2], &tokenizer));

  kiln_embedder *embedder;
  CHECK(kiln_embedder_create(module, tokenizer, NULL, &embedder));
  const size_t dim = kiln_embedder_dimension(embedder);
  if (dim != 384 || kiln_embedder_batch_size(embedder) != 4 ||
      kiln_embedder_max_length(embedder) != 32) {
    fprintf(stderr, "dimension %zu, batch %zu, max length %zu; expected 384, 4, 32\n", dim,
            kiln_embedder_batch_size(embedder), kiln_embedder_max_length(embedder));
    return 1;
  }

  /* Ten texts through a batch of four: two full runs and a half-padded one. */
  float *all = malloc(2 * kCount * dim * sizeof(float));
  float *one = malloc(dim * sizeof(float));
  float *reversed = malloc(kCount * dim * sizeof(float));
  if (!all || !one || !reversed)
    return 1;
  CHECK(kiln_embedder_embed(embedder, kTexts, kCount, all, kCount * dim));
  for (size_t i = 0; i < kCount; ++i) {
    double norm = sqrt(dot(all + i * dim, all + i * dim, dim));
    if (fabs(norm - 1) > 1e-4) {
      fprintf(stderr, "FAIL: text %zu has norm %.6f\n", i, norm);
      ++failures;
    }
  }
  double paraphrase = dot(all, all + dim, dim), unrelated = dot(all, all + 2 * dim, dim);
  printf("cosine: paraphrase %.4f, unrelated %.4f\n", paraphrase, unrelated);
  if (!(paraphrase > unrelated + 0.3))
    fail("the paraphrase pair is not clearly closer than the unrelated pair");

  /* A text's vector does not depend on its batch, its row or the padding around it:
   * alone (three padding rows), and in reverse order (other rows, other neighbours). */
  const char *reversedTexts[kCount];
  for (size_t i = 0; i < kCount; ++i)
    reversedTexts[i] = kTexts[kCount - 1 - i];
  CHECK(kiln_embedder_embed(embedder, reversedTexts, kCount, reversed, kCount * dim));
  for (size_t i = 0; i < kCount; ++i) {
    CHECK(kiln_embedder_embed(embedder, kTexts + i, 1, one, dim));
    float alone = maxDifference(one, all + i * dim, dim);
    float moved = maxDifference(reversed + (kCount - 1 - i) * dim, all + i * dim, dim);
    if (alone > 1e-5f || moved > 1e-5f) {
      fprintf(stderr, "FAIL: text %zu differs by %g alone, %g in another row\n", i, alone,
              moved);
      ++failures;
    }
  }
  CHECK(kiln_embedder_embed(embedder, NULL, 0, NULL, 0));

  /* max_length 8: the long texts change, the short ones ("A": [CLS] a [SEP]) do not. */
  kiln_embedder_options options;
  kiln_embedder_options_init(&options);
  if (options.max_length != 0)
    fail("kiln_embedder_options_init does not default max_length to 0");
  options.max_length = 8;
  kiln_embedder *short8;
  CHECK(kiln_embedder_create(module, tokenizer, &options, &short8));
  float *truncated = all + kCount * dim;
  CHECK(kiln_embedder_embed(short8, kTexts, kCount, truncated, kCount * dim));
  if (kiln_embedder_max_length(short8) != 8)
    fail("kiln_embedder_max_length is not the option's 8");
  if (maxDifference(truncated + 9 * dim, all + 9 * dim, dim) > 1e-5f)
    fail("max_length 8 changed the 3-token text");
  if (maxDifference(truncated + 6 * dim, all + 6 * dim, dim) < 1e-3f)
    fail("max_length 8 did not change the long text");
  kiln_embedder_release(short8);
  options.max_length = 33;
  kiln_embedder *tooLong = NULL;
  expectError(kiln_embedder_create(module, tokenizer, &options, &tooLong), "33 exceeds the 32",
              "max_length above S");
  if (tooLong)
    fail("a failed create set *out_embedder");

  /* Errors, never crashes. */
  kiln_embedder *other = NULL;
  expectError(kiln_embedder_create(NULL, tokenizer, NULL, &other), "module is NULL",
              "create without a module");
  expectError(kiln_embedder_create(module, NULL, NULL, &other), "tokenizer is NULL",
              "create without a tokenizer");
  expectError(kiln_embedder_create(module, tokenizer, NULL, NULL), "out_embedder is NULL",
              "create without out_embedder");
  expectError(kiln_embedder_create(noEmbed, tokenizer, NULL, &other), "embed",
              "create on a module without @embed");
  if (other)
    fail("a failed create set *out_embedder");
  expectError(kiln_embedder_embed(NULL, kTexts, 1, one, dim), "embedder is NULL",
              "embed without an embedder");
  expectError(kiln_embedder_embed(embedder, NULL, 1, one, dim), "texts is NULL",
              "embed without texts");
  expectError(kiln_embedder_embed(embedder, kTexts, 1, NULL, dim), "out is NULL",
              "embed without out");
  expectError(kiln_embedder_embed(embedder, kTexts, 2, reversed, 2 * dim - 1),
              "out_count is 767", "embed with one float too few");
  expectError(kiln_embedder_embed(embedder, kTexts, 2, reversed, 3 * dim), "out_count is",
              "embed with a row too many");
  expectError(kiln_embedder_embed(embedder, kTexts, 0, reversed, dim), "out_count is",
              "embed of no texts into a row");
  const char *withNull[] = {"fine", "also fine", NULL};
  expectError(kiln_embedder_embed(embedder, withNull, 3, reversed, 3 * dim), "texts[2] is NULL",
              "embed with a NULL text");
  if (kiln_embedder_dimension(NULL) || kiln_embedder_batch_size(NULL) ||
      kiln_embedder_max_length(NULL))
    fail("a NULL embedder's sizes are not 0");
  kiln_embedder_options_init(NULL);
  kiln_embedder_release(NULL);

  /* The embedder keeps the module alive. */
  kiln_module_release(module);
  CHECK(kiln_embedder_embed(embedder, kTexts, 1, one, dim));
  if (maxDifference(one, all, dim) > 1e-5f)
    fail("the embedder gave another vector after the module's release");

  if (!writeOutputs(argv[4], all, 2 * kCount * dim))
    fail("cannot write the outputs");
  kiln_embedder_release(embedder);
  kiln_module_release(noEmbed);
  kiln_tokenizer_release(tokenizer);
  kiln_runtime_release(runtime);
  free(all);
  free(one);
  free(reversed);
  printf("%s\n", failures ? "FAILED" : "ok");
  return failures ? 1 : 0;
}
