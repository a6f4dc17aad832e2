// The embeddings part of the C API: texts -> tokens (the model's special tokens,
// truncated) -> @embed(input_ids, attention_mask, token_type_ids: i32[B, S]) ->
// embeddings: f32[B, D], B texts per run, each right-padded to S with its attention mask.
// Built on the module and session API, so it checks exactly what a caller would.
#include "ApiBoundary.h"

#include <algorithm>
#include <string>
#include <vector>

using kiln::cat;
using kiln::runtime::Error;
using kiln::runtime::error;
using kiln::runtime::guarded;
using kiln::runtime::nullArgument;
using kiln::runtime::takeStatus;

struct kiln_embedder {
  kiln_session *session = nullptr; // keeps the module alive
  const kiln_tokenizer *tokenizer = nullptr;
  size_t batch = 0, sequence = 0, dimension = 0;
  size_t maxLength = 0; // tokens kept per text, special tokens included; <= sequence
  size_t idsInput = 0, maskInput = 0, typesInput = 0;

  ~kiln_embedder() { kiln_session_release(session); }
};

namespace {

constexpr const char *kSignature =
    "@embed(input_ids, attention_mask, token_type_ids: i32[B, S]) -> embeddings: f32[B, D]";

// Fills the embedder's shape and input indices from the module's @embed, or says which
// part of the signature does not match.
Error bindSignature(const kiln_module *module, size_t entry, kiln_embedder &embedder) {
  const char *names[] = {"input_ids", "attention_mask", "token_type_ids"};
  size_t *indices[] = {&embedder.idsInput, &embedder.maskInput, &embedder.typesInput};
  bool found[] = {false, false, false};
  size_t inputs = kiln_module_input_count(module, entry);
  size_t outputs = kiln_module_output_count(module, entry);
  if (inputs != 3 || outputs != 1)
    return error(KILN_ERROR_INVALID_ARGUMENT, "@embed has ", inputs, " inputs and ", outputs,
                 " outputs; expected ", kSignature);
  for (size_t i = 0; i < inputs; ++i) {
    kiln_tensor_info info;
    if (Error err = takeStatus(kiln_module_input_info(module, entry, i, &info), "@embed"))
      return err;
    const std::string name = info.name;
    auto known = std::find(std::begin(names), std::end(names), name);
    if (known == std::end(names))
      return error(KILN_ERROR_INVALID_ARGUMENT, "@embed input ", i, " is '", name,
                   "'; expected ", kSignature);
    size_t k = size_t(known - std::begin(names));
    bool sameShape = info.rank == 2 && info.shape[0] > 0 && info.shape[1] > 0 &&
                     (!embedder.batch || (size_t(info.shape[0]) == embedder.batch &&
                                          size_t(info.shape[1]) == embedder.sequence));
    if (info.dtype != KILN_DTYPE_I32 || !sameShape || found[k])
      return error(KILN_ERROR_INVALID_ARGUMENT, "@embed input '", name,
                   "' is not a distinct i32[B, S] like the others; expected ", kSignature);
    embedder.batch = size_t(info.shape[0]);
    embedder.sequence = size_t(info.shape[1]);
    *indices[k] = i;
    found[k] = true;
  }
  kiln_tensor_info output;
  if (Error err = takeStatus(kiln_module_output_info(module, entry, 0, &output), "@embed"))
    return err;
  if (output.dtype != KILN_DTYPE_F32 || output.rank != 2 ||
      size_t(output.shape[0]) != embedder.batch || output.shape[1] <= 0)
    return error(KILN_ERROR_INVALID_ARGUMENT, "@embed output '", output.name,
                 "' is not f32[B, D] for the inputs' B = ", embedder.batch, "; expected ",
                 kSignature);
  embedder.dimension = size_t(output.shape[1]);
  return {};
}

// Runs texts [begin, begin + count) (count <= B) and copies their rows into `out`.
Error embedBatch(kiln_embedder &embedder, const char *const *texts, size_t begin, size_t count,
                 float *out) {
  const size_t s = embedder.sequence;
  std::vector<int32_t> ids(embedder.batch * s, 0), mask(ids.size(), 0), types(ids.size(), 0);
  kiln::llm::EncodeOptions encode;
  encode.addSpecialTokens = true;
  encode.truncate = true;
  encode.maxLength = embedder.maxLength;
  for (size_t row = 0; row < count; ++row) {
    std::vector<int32_t> tokens =
        embedder.tokenizer->tokenizer->encode(texts[begin + row], encode);
    // Truncation keeps maxLength (<= S); a tokenizer breaking that is a kiln bug.
    if (tokens.size() > embedder.maxLength)
      return error(KILN_ERROR_INTERNAL, "texts[", begin + row, "] gave ", tokens.size(),
                   " tokens after truncation to ", embedder.maxLength);
    std::copy(tokens.begin(), tokens.end(), ids.begin() + ptrdiff_t(row * s));
    std::fill_n(mask.begin() + ptrdiff_t(row * s), tokens.size(), 1);
  }
  const size_t bytes = ids.size() * sizeof(int32_t);
  kiln_session *session = embedder.session;
  if (Error err = takeStatus(kiln_session_set_input(session, embedder.idsInput, ids.data(), bytes),
                             "input_ids"))
    return err;
  if (Error err = takeStatus(
          kiln_session_set_input(session, embedder.maskInput, mask.data(), bytes),
          "attention_mask"))
    return err;
  if (Error err = takeStatus(
          kiln_session_set_input(session, embedder.typesInput, types.data(), bytes),
          "token_type_ids"))
    return err;
  if (Error err = takeStatus(kiln_session_run(session), "running @embed"))
    return err;
  const void *data = nullptr;
  size_t outputBytes = 0;
  if (Error err = takeStatus(kiln_session_output(session, 0, &data, &outputBytes), "@embed"))
    return err;
  const float *rows = static_cast<const float *>(data);
  std::copy(rows, rows + count * embedder.dimension, out + begin * embedder.dimension);
  return {};
}

} // namespace

extern "C" {

void kiln_embedder_options_init(kiln_embedder_options *options) {
  if (options)
    *options = {0};
}

kiln_status kiln_embedder_create(kiln_module *module, const kiln_tokenizer *tokenizer,
                                 const kiln_embedder_options *options,
                                 kiln_embedder **out_embedder) {
  return guarded([&]() -> Error {
    if (!module)
      return nullArgument("module");
    if (!tokenizer)
      return nullArgument("tokenizer");
    if (!out_embedder)
      return nullArgument("out_embedder");
    *out_embedder = nullptr;
    kiln_embedder_options o;
    kiln_embedder_options_init(&o);
    if (options)
      o = *options;
    size_t entry = 0;
    if (Error err = takeStatus(kiln_module_find_entry_point(module, "embed", &entry),
                               cat("not a sentence encoder (expected ", kSignature, ")")))
      return err;
    auto embedder = std::make_unique<kiln_embedder>();
    embedder->tokenizer = tokenizer;
    if (Error err = bindSignature(module, entry, *embedder))
      return err;
    if (o.max_length > embedder->sequence)
      return error(KILN_ERROR_INVALID_ARGUMENT, "max_length ", o.max_length, " exceeds the ",
                   embedder->sequence, " tokens per text @embed was compiled for");
    embedder->maxLength = o.max_length ? o.max_length : embedder->sequence;
    if (Error err = takeStatus(kiln_session_create(module, entry, &embedder->session),
                               "creating the @embed session"))
      return err;
    *out_embedder = embedder.release();
    return {};
  });
}

void kiln_embedder_release(kiln_embedder *embedder) { delete embedder; }

size_t kiln_embedder_dimension(const kiln_embedder *embedder) {
  return embedder ? embedder->dimension : 0;
}

size_t kiln_embedder_batch_size(const kiln_embedder *embedder) {
  return embedder ? embedder->batch : 0;
}

size_t kiln_embedder_max_length(const kiln_embedder *embedder) {
  return embedder ? embedder->maxLength : 0;
}

kiln_status kiln_embedder_embed(kiln_embedder *embedder, const char *const *texts, size_t count,
                                float *out, size_t out_count) {
  return guarded([&]() -> Error {
    if (!embedder)
      return nullArgument("embedder");
    if (!texts && count)
      return nullArgument("texts");
    if (!out && out_count)
      return nullArgument("out");
    // out_count == count * dimension, without the product wrapping around.
    if (out_count / embedder->dimension != count || out_count % embedder->dimension != 0)
      return error(KILN_ERROR_INVALID_ARGUMENT, "out_count is ", out_count,
                   "; expected count * dimension = ", count, " * ", embedder->dimension);
    // Every text is checked before the first run, so a bad one costs no work.
    for (size_t i = 0; i < count; ++i)
      if (!texts[i])
        return error(KILN_ERROR_INVALID_ARGUMENT, "texts[", i, "] is NULL");
    for (size_t begin = 0; begin < count; begin += embedder->batch)
      if (Error err = embedBatch(*embedder, texts, begin,
                                 std::min(embedder->batch, count - begin), out))
        return err;
    return {};
  });
}

} // extern "C"
