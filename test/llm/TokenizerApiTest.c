/* The C API's tokenizer loading and encode options, from C: a WordPiece tokenizer.json
 * written here (loaded as a file and as a directory), its post-processor's [CLS] ...
 * [SEP], truncation from the file and from the caller, decoding, a GGUF vocabulary with
 * add_special_tokens (BOS), and an unsupported tokenizer.json's error message. The
 * expected ids follow from the tiny vocabulary by hand. */
#include "CheckStatus.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *const kTokenizerJson =
    "{\"version\": \"1.0\",\n"
    " \"truncation\": {\"max_length\": 5, \"strategy\": \"LongestFirst\", \"stride\": 0,"
    " \"direction\": \"Right\"},\n"
    " \"padding\": null,\n"
    " \"added_tokens\": [{\"id\": 0, \"content\": \"[PAD]\", \"special\": true},\n"
    "   {\"id\": 1, \"content\": \"[UNK]\", \"special\": true},\n"
    "   {\"id\": 2, \"content\": \"[CLS]\", \"special\": true},\n"
    "   {\"id\": 3, \"content\": \"[SEP]\", \"special\": true}],\n"
    " \"normalizer\": {\"type\": \"BertNormalizer\", \"clean_text\": true,"
    " \"handle_chinese_chars\": true, \"strip_accents\": null, \"lowercase\": true},\n"
    " \"pre_tokenizer\": {\"type\": \"BertPreTokenizer\"},\n"
    " \"post_processor\": {\"type\": \"BertProcessing\", \"sep\": [\"[SEP]\", 3],"
    " \"cls\": [\"[CLS]\", 2]},\n"
    " \"decoder\": {\"type\": \"WordPiece\", \"prefix\": \"##\", \"cleanup\": true},\n"
    " \"model\": {\"type\": \"WordPiece\", \"unk_token\": \"[UNK]\","
    " \"continuing_subword_prefix\": \"##\", \"max_input_chars_per_word\": 100,\n"
    "   \"vocab\": {\"[PAD]\": 0, \"[UNK]\": 1, \"[CLS]\": 2, \"[SEP]\": 3, \"hello\": 4,"
    " \"world\": 5, \"!\": 6, \"play\": 7, \"##ing\": 8}}}\n";

static int writeFile(const char *path, const char *text) {
  FILE *file = fopen(path, "wb");
  if (!file)
    return 0;
  size_t size = strlen(text);
  int ok = fwrite(text, 1, size, file) == size;
  return fclose(file) == 0 && ok;
}

/* Encodes `text` and compares with `expected`; returns the number of failures. */
static int expectIds(const kiln_tokenizer *tokenizer, const char *text,
                     const kiln_tokenizer_encode_options *options, const int32_t *expected,
                     size_t expectedCount, const char *what) {
  int32_t ids[32];
  size_t count = 0;
  kiln_status status =
      kiln_tokenizer_encode_with_options(tokenizer, text, strlen(text), options, ids, 32, &count);
  if (status) {
    fprintf(stderr, "%s: %s\n", what, kiln_status_message(status));
    kiln_status_free(status);
    return 1;
  }
  if (count != expectedCount || memcmp(ids, expected, count * sizeof *ids) != 0) {
    fprintf(stderr, "%s: got %zu ids:", what, count);
    for (size_t i = 0; i < count && i < 32; ++i)
      fprintf(stderr, " %d", ids[i]);
    fprintf(stderr, "\n");
    return 1;
  }
  return 0;
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s ggml-vocab-llama-spm.gguf\n", argv[0]);
    return 2;
  }
  char directory[] = "/tmp/kiln-tokenizer-api-XXXXXX";
  if (!mkdtemp(directory)) {
    perror("mkdtemp");
    return 1;
  }
  char jsonPath[256], badPath[256];
  snprintf(jsonPath, sizeof jsonPath, "%s/tokenizer.json", directory);
  snprintf(badPath, sizeof badPath, "%s/bad.json", directory);
  if (!writeFile(jsonPath, kTokenizerJson) ||
      !writeFile(badPath, "{\"model\": {\"type\": \"Unigram\", \"vocab\": []}}")) {
    perror("writing tokenizer.json");
    return 1;
  }

  int failures = 0;
  kiln_tokenizer *fromDirectory, *fromFile, *gguf;
  CHECK(kiln_tokenizer_load(directory, &fromDirectory));
  CHECK(kiln_tokenizer_load(jsonPath, &fromFile));
  CHECK(kiln_tokenizer_load(argv[1], &gguf));

  /* "," is not in the vocabulary ([UNK]); "playing" is play ##ing; accents are stripped
   * and text lower-cased; "[SEP]" in the text is the added token. */
  const char *text = "H\xc3\xa9llo, playing World! [SEP]";
  const int32_t plain[] = {4, 1, 7, 8, 5, 6, 3};
  const int32_t special[] = {2, 4, 1, 7, 8, 5, 6, 3, 3};
  const int32_t fileTruncated[] = {2, 4, 1, 7, 3};
  const int32_t callerTruncated[] = {2, 4, 3};
  const int32_t truncatedWithoutSpecial[] = {4, 1, 7, 8, 5};
  kiln_tokenizer_encode_options options;
  kiln_tokenizer_encode_options_init(&options);
  failures += expectIds(fromDirectory, text, &options, plain, 7, "plain (directory)");
  failures += expectIds(fromFile, text, NULL, plain, 7, "plain (file, NULL options)");
  options.add_special_tokens = 1;
  failures += expectIds(fromFile, text, &options, special, 9, "special tokens");
  options.truncate = 1;
  failures += expectIds(fromFile, text, &options, fileTruncated, 5, "the file's max_length");
  options.max_length = 3;
  failures += expectIds(fromFile, text, &options, callerTruncated, 3, "max_length 3");
  options.add_special_tokens = 0;
  options.max_length = 0;
  failures += expectIds(fromFile, text, &options, truncatedWithoutSpecial, 5,
                        "truncation without special tokens");
  if (kiln_tokenizer_default_max_length(fromFile) != 5) {
    fprintf(stderr, "default max length %zu, expected 5\n",
            kiln_tokenizer_default_max_length(fromFile));
    ++failures;
  }

  char decoded[64];
  size_t size = 0;
  CHECK(kiln_tokenizer_decode(fromFile, special, 9, decoded, sizeof decoded, &size));
  const char *expectedText = "hello playing world!";
  if (size != strlen(expectedText) || memcmp(decoded, expectedText, size) != 0) {
    fprintf(stderr, "decode gave '%.*s'\n", (int)size, decoded);
    ++failures;
  }

  /* GGUF: add_special_tokens adds BOS (tokenizer.ggml.add_bos_token), as llama.cpp. */
  const int32_t llama[] = {1, 15043, 29892, 3186, 29991};
  kiln_tokenizer_encode_options_init(&options);
  options.add_special_tokens = 1;
  failures += expectIds(gguf, "Hello, world!", &options, llama, 5, "GGUF with BOS");
  options.truncate = 1;
  options.max_length = 2;
  failures += expectIds(gguf, "Hello, world!", &options, llama, 2, "GGUF truncated to 2");

  kiln_tokenizer *bad = NULL;
  kiln_status status = kiln_tokenizer_load(badPath, &bad);
  if (!status ||
      !strstr(kiln_status_message(status), "bad.json: model.type 'Unigram' is not supported")) {
    fprintf(stderr, "loading bad.json: %s\n", status ? kiln_status_message(status) : "succeeded");
    ++failures;
  }
  kiln_status_free(status);

  kiln_tokenizer_release(fromDirectory);
  kiln_tokenizer_release(fromFile);
  kiln_tokenizer_release(gguf);
  unlink(jsonPath);
  unlink(badPath);
  rmdir(directory);
  if (failures)
    fprintf(stderr, "%d failures\n", failures);
  else
    printf("tokenizer C API: all checks passed\n");
  return failures ? 1 : 0;
}
