/* kiln's runtime C API: load a compiled .kiln artifact, inspect its entry points, and
 * run them. C11; no exceptions, no C++ types cross this boundary.
 *
 * Objects and ownership
 *   kiln_runtime  process-level settings (thread count, device). Immutable once created.
 *   kiln_module   a loaded, validated artifact: program, weights (zero-copy when loaded
 *                 from a file) and the code object for the runtime's device. Immutable;
 *                 share it freely across threads.
 *   kiln_session  one entry point's working memory (arena, inputs). Use a session from
 *                 one thread at a time; create one session per concurrent caller.
 *                 kiln_session_run or kiln_session_set_input called while another
 *                 thread's run or set_input on the same session (or on a session
 *                 sharing its state) has not returned fails with
 *                 KILN_ERROR_FAILED_PRECONDITION and changes nothing.
 *   Outputs depend only on the artifact and the inputs: the same bytes from any number
 *   of concurrent sessions and at any thread count (docs/determinism.md).
 * Every handle returned through an `out_*` pointer belongs to the caller, who releases
 * it with the matching kiln_*_release. Releasing drops the caller's reference only:
 * a module keeps its runtime alive and a session keeps its module alive, so handles
 * may be released in any order. kiln_*_release(NULL) does nothing.
 *
 * Errors
 *   Every fallible call returns a kiln_status: NULL means success; otherwise the caller
 *   owns the status and frees it with kiln_status_free. On failure `out_*` parameters
 *   are left untouched. Bad input (a corrupt artifact, a wrong input size) is always
 *   reported as a status, never by aborting. */
#ifndef KILN_RUNTIME_H
#define KILN_RUNTIME_H

#include <stddef.h>
#include <stdint.h>

#if defined(KILN_RUNTIME_BUILDING)
#define KILN_API __attribute__((visibility("default")))
#else
#define KILN_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ---- status ------------------------------------------------------------------- */

typedef enum kiln_error {
  KILN_ERROR_NONE = 0,           /* only reported for a NULL (success) status */
  KILN_ERROR_INVALID_ARGUMENT,   /* a bad parameter: NULL handle, wrong byte size, ... */
  KILN_ERROR_NOT_FOUND,          /* no entry point / input with that name or index */
  KILN_ERROR_INVALID_ARTIFACT,   /* the artifact is truncated, corrupt or inconsistent */
  KILN_ERROR_UNSUPPORTED,        /* a valid artifact this runtime or host cannot run */
  KILN_ERROR_IO,                 /* the file could not be opened, read or mapped */
  KILN_ERROR_OUT_OF_MEMORY,
  KILN_ERROR_FAILED_PRECONDITION,/* e.g. running before every input was set */
  KILN_ERROR_KERNEL_FAILED,      /* a kernel returned a non-zero error code */
  KILN_ERROR_INTERNAL
} kiln_error;

typedef struct kiln_status_object *kiln_status;

/* The status's code; KILN_ERROR_NONE for NULL. */
KILN_API kiln_error kiln_status_code(kiln_status status);
/* The status's message, owned by the status (valid until kiln_status_free); "ok" for
 * NULL. */
KILN_API const char *kiln_status_message(kiln_status status);
/* Frees a status; NULL is fine. */
KILN_API void kiln_status_free(kiln_status status);

/* ---- element types -------------------------------------------------------------- */

/* Mirrors kiln.artifact.DType in runtime/schema/artifact.fbs (same numbering). */
typedef enum kiln_dtype {
  KILN_DTYPE_F32 = 0,
  KILN_DTYPE_F64,
  KILN_DTYPE_F16,
  KILN_DTYPE_BF16,
  KILN_DTYPE_I8,
  KILN_DTYPE_I16,
  KILN_DTYPE_I32,
  KILN_DTYPE_I64,
  KILN_DTYPE_U8,
  KILN_DTYPE_U16,
  KILN_DTYPE_U32,
  KILN_DTYPE_U64,
  KILN_DTYPE_BOOL, /* one byte per element, 0 or 1 */
  KILN_DTYPE_COUNT
} kiln_dtype;

/* Bytes per element; 0 for a value outside the enum. */
KILN_API size_t kiln_dtype_size(kiln_dtype dtype);
/* "f32", "bf16", "i64", "bool", ...; "invalid" for a value outside the enum. A static
 * string. */
KILN_API const char *kiln_dtype_name(kiln_dtype dtype);

/* ---- runtime -------------------------------------------------------------------- */

typedef struct kiln_runtime kiln_runtime;
typedef struct kiln_module kiln_module;
typedef struct kiln_session kiln_session;

typedef struct kiln_runtime_options {
  /* Worker threads for the kernels of every module loaded by this runtime; 0 means
   * one per online CPU. */
  int32_t num_threads;
  /* The device that runs the kernels: NULL or "cpu", the host CPU; "cuda", an NVIDIA
   * GPU (HL_GPU_DEVICE picks one of several, as in Halide) through the CUDA driver,
   * which the runtime loads when asked (libkiln_runtime.so does not link it). Modules
   * then need code for that device (kiln-compile --target=cuda). "metal" is reserved:
   * KILN_ERROR_UNSUPPORTED on Linux. An unknown name is KILN_ERROR_INVALID_ARGUMENT. */
  const char *device;
} kiln_runtime_options;

/* Fills `options` with the defaults. Always start from it: options structs grow at
 * their end between minor versions (0.2 added `device`), and the library's soname
 * carries the minor version until 1.0. */
KILN_API void kiln_runtime_options_init(kiln_runtime_options *options);

/* `options` may be NULL (defaults); it is read during the call only. A device that is
 * not there (no CUDA driver, no GPU) is KILN_ERROR_UNSUPPORTED, saying why. */
KILN_API kiln_status kiln_runtime_create(const kiln_runtime_options *options,
                                         kiln_runtime **out_runtime);
KILN_API void kiln_runtime_release(kiln_runtime *runtime);
/* The runtime's device, for people: "cpu", or e.g. "cuda: NVIDIA H200 (sm_90)". Owned
 * by the runtime; "" for NULL. */
KILN_API const char *kiln_runtime_device(const kiln_runtime *runtime);

/* ---- modules -------------------------------------------------------------------- */

/* Maps the file read-only and validates all of it (checksums included); weights are
 * used in place from the mapping (on a GPU, copied there at the first session). The
 * file must not be modified or truncated while the module is alive. An artifact
 * without code for the runtime's device is KILN_ERROR_UNSUPPORTED, naming the devices
 * it has code for. */
KILN_API kiln_status kiln_module_load_file(kiln_runtime *runtime, const char *path,
                                           kiln_module **out_module);

typedef enum kiln_load_mode {
  /* The module copies the bytes; the caller may free them when the call returns. */
  KILN_LOAD_COPY = 0,
  /* The module uses the bytes in place (zero-copy weights). They must start at a
   * 64-byte aligned address, stay unmodified and outlive the module and every
   * session created from it. */
  KILN_LOAD_BORROW = 1
} kiln_load_mode;

KILN_API kiln_status kiln_module_load_memory(kiln_runtime *runtime, const void *data,
                                             size_t byte_size, kiln_load_mode mode,
                                             kiln_module **out_module);
KILN_API void kiln_module_release(kiln_module *module);

/* Strings returned below are owned by the module and live as long as it does. */
KILN_API const char *kiln_module_target(const kiln_module *module);
KILN_API size_t kiln_module_entry_point_count(const kiln_module *module);
/* NULL when `entry_point` is out of range. */
KILN_API const char *kiln_module_entry_point_name(const kiln_module *module,
                                                  size_t entry_point);
KILN_API kiln_status kiln_module_find_entry_point(const kiln_module *module,
                                                  const char *name,
                                                  size_t *out_entry_point);
/* 0 when `entry_point` is out of range. */
KILN_API size_t kiln_module_input_count(const kiln_module *module, size_t entry_point);
KILN_API size_t kiln_module_output_count(const kiln_module *module, size_t entry_point);

/* One input or output of an entry point. `name` and `shape` are owned by the module. */
typedef struct kiln_tensor_info {
  const char *name;
  kiln_dtype dtype;
  size_t rank;
  const int64_t *shape; /* `rank` extents, outermost first (row-major) */
  size_t byte_size;     /* product(shape) * kiln_dtype_size(dtype) */
} kiln_tensor_info;

KILN_API kiln_status kiln_module_input_info(const kiln_module *module, size_t entry_point,
                                            size_t input, kiln_tensor_info *out_info);
KILN_API kiln_status kiln_module_output_info(const kiln_module *module,
                                             size_t entry_point, size_t output,
                                             kiln_tensor_info *out_info);

/* ---- sessions ------------------------------------------------------------------- */

/* Allocates the entry point's arena and input buffers (zero-filled). */
KILN_API kiln_status kiln_session_create(kiln_module *module, size_t entry_point,
                                         kiln_session **out_session);
KILN_API void kiln_session_release(kiln_session *session);

/* Like kiln_session_create, but the new session shares `state_owner`'s persistent
 * state (a language model's KV cache), so that e.g. a "prefill" and a "decode" entry
 * point of one module work on the same cache. `state_owner` must be a session of the
 * same module (or NULL: then this is kiln_session_create). The state lives as long as
 * any session sharing it; sessions sharing state are used by one thread at a time. */
KILN_API kiln_status kiln_session_create_sharing_state(kiln_module *module,
                                                       size_t entry_point,
                                                       kiln_session *state_owner,
                                                       kiln_session **out_session);

/* Copies `byte_size` bytes (dense, row-major) into input `input`; `byte_size` must
 * equal the input's byte size. The session does not keep `data`. */
KILN_API kiln_status kiln_session_set_input(kiln_session *session, size_t input,
                                            const void *data, size_t byte_size);
KILN_API kiln_status kiln_session_set_input_by_name(kiln_session *session,
                                                    const char *name, const void *data,
                                                    size_t byte_size);

/* Runs the entry point's kernels in order. Every input must have been set (inputs
 * keep their values across runs). */
KILN_API kiln_status kiln_session_run(kiln_session *session);

/* The bytes of output `output` from the last successful run, owned by the session:
 * valid until the session's next run or set_input, or its release. */
KILN_API kiln_status kiln_session_output(kiln_session *session, size_t output,
                                         const void **out_data, size_t *out_byte_size);
/* Copies output `output` into `dst`, which must hold exactly its byte size. */
KILN_API kiln_status kiln_session_copy_output(kiln_session *session, size_t output,
                                              void *dst, size_t dst_byte_size);

/* ---- profiling ------------------------------------------------------------------ */

/* A session can time every dispatch (one kernel call) of its runs. Off by default; off,
 * a run costs one branch per dispatch more than it would without this API. On, each
 * dispatch is timed with two CLOCK_MONOTONIC reads (tens of nanoseconds), added to that
 * dispatch's totals and, up to a limit, kept as a trace event. */

typedef struct kiln_profile_options {
  /* The most trace events kept; later dispatches still count in the totals and in
   * kiln_profile_summary.dropped_trace_events. 0 keeps none (totals only). */
  size_t max_trace_events;
} kiln_profile_options;

/* Fills the defaults: max_trace_events 1048576 (24 MiB of events). */
KILN_API void kiln_profile_options_init(kiln_profile_options *options);

/* Discards what was recorded before and times the session's runs from now on.
 * `options` may be NULL (the defaults); it is read during the call only. */
KILN_API kiln_status kiln_session_start_profiling(kiln_session *session,
                                                  const kiln_profile_options *options);
/* Stops timing; what was recorded stays readable until the next start or the
 * session's release. Stopping a session that is not profiling does nothing. */
KILN_API kiln_status kiln_session_stop_profiling(kiln_session *session);

typedef struct kiln_profile_summary {
  uint64_t runs;                 /* successful kiln_session_run calls while profiling */
  uint64_t run_ns;               /* their time, first dispatch's start to last one's end */
  uint64_t kernel_ns;            /* time inside kernels, every dispatch call summed */
  size_t dispatch_count;         /* the entry point's dispatches (profiled or not) */
  size_t trace_event_count;      /* events kiln_session_trace_events returns */
  uint64_t dropped_trace_events; /* calls beyond max_trace_events */
} kiln_profile_summary;

/* What the session recorded since profiling was last started (zeros if never). run_ns
 * minus kernel_ns is the runtime's own time between kernels (argument set-up, the
 * timer reads); launch costs inside a kernel call (Halide's argument checks, waking
 * its thread pool) count as kernel time. */
KILN_API kiln_status kiln_session_profile_summary(const kiln_session *session,
                                                  kiln_profile_summary *out_summary);

/* One dispatch of the session's entry point. Strings are owned by the module. */
typedef struct kiln_dispatch_profile {
  const char *kernel;   /* the kernel's name; dispatches may share a kernel */
  size_t kernel_index;  /* the kernel's index in the module */
  const char *location; /* where in the model it comes from ("blk.3.attn"), or "" */
  const char *summary;  /* what it computes ("matmul 1x1024x640 q4_k +2": the op doing
                         * most arithmetic, its loops, the weights' type, ops fused in),
                         * or "" */
  uint64_t flops;       /* arithmetic operations per call, as the compiler counted them;
                         * 0 when the artifact does not say */
  uint64_t bytes;       /* memory traffic per call: the compiler's estimate, or (when the
                         * artifact has none) the sizes of its argument buffers */
  uint64_t calls;       /* calls timed (including one that failed) */
  uint64_t total_ns;    /* their summed time */
  uint64_t min_ns;      /* the fastest call; 0 without calls */
} kiln_dispatch_profile;

/* Dispatch `dispatch` (0 .. dispatch_count - 1, in run order) of the session. */
KILN_API kiln_status kiln_session_dispatch_profile(const kiln_session *session,
                                                   size_t dispatch,
                                                   kiln_dispatch_profile *out_profile);

/* One timed dispatch call. */
typedef struct kiln_trace_event {
  size_t dispatch;      /* index for kiln_session_dispatch_profile */
  uint64_t start_ns;    /* CLOCK_MONOTONIC, in nanoseconds: comparable across sessions
                         * and with the caller's own clock_gettime(CLOCK_MONOTONIC) */
  uint64_t duration_ns;
} kiln_trace_event;

/* Copies min(count, capacity) trace events, oldest first, to `events` and the full
 * count to `*out_count`: call with capacity 0 to learn the size. */
KILN_API kiln_status kiln_session_trace_events(const kiln_session *session,
                                               kiln_trace_event *events, size_t capacity,
                                               size_t *out_count);

/* ---- language models: tokenizer and sampler ------------------------------------ */

typedef struct kiln_tokenizer kiln_tokenizer;

/* Builds a tokenizer from `path`, which is one of:
 *  - a GGUF file (a model or a vocabulary-only file): the tokenizer its tokenizer.ggml.*
 *    metadata describes (SentencePiece BPE, byte-level BPE or WordPiece);
 *  - a Hugging Face tokenizer.json (BPE with byte fallback or byte-level pre-tokenizer,
 *    WordPiece), or a directory holding tokenizer.json (its tokenizer_config.json, when
 *    present, names BOS and EOS).
 * Files starting with the GGUF magic are read as GGUF, anything else as JSON. Errors name
 * the file and the key or JSON path at fault. Release the tokenizer with
 * kiln_tokenizer_release. */
KILN_API kiln_status kiln_tokenizer_load(const char *path, kiln_tokenizer **out_tokenizer);
KILN_API void kiln_tokenizer_release(kiln_tokenizer *tokenizer);
/* The token ids of `text` (UTF-8, `text_size` bytes), BOS first when `add_bos` is
 * non-zero. Writes min(count, capacity) ids to `ids` and the full count to
 * `*out_count`: call with capacity 0 to learn the size. */
KILN_API kiln_status kiln_tokenizer_encode(const kiln_tokenizer *tokenizer, const char *text,
                                           size_t text_size, int add_bos, int32_t *ids,
                                           size_t capacity, size_t *out_count);

/* How kiln_tokenizer_encode_with_options encodes; kiln_tokenizer_encode_options_init
 * fills the defaults (all off: the text's ids only). */
typedef struct kiln_tokenizer_encode_options {
  /* Non-zero: add the tokenizer's special tokens around the text's ids: for GGUF, BOS
   * (and EOS) as tokenizer.ggml.add_bos_token (add_eos_token) says; for tokenizer.json,
   * its post_processor's tokens (e.g. [CLS] ... [SEP], or <s> ...). */
  int add_special_tokens;
  /* Non-zero: GGUF control-token text in the input (e.g. "<start_of_turn>") becomes
   * that token (llama.cpp's parse_special). User-defined GGUF tokens and tokenizer.json's
   * added_tokens are always recognized. */
  int parse_special;
  /* Non-zero: keep at most `max_length` ids, special tokens included, cutting the text's
   * ids from the end (from the start when tokenizer.json's truncation.direction is
   * Left). `max_length` 0 takes tokenizer.json's truncation.max_length (no limit when the
   * file has none). Pass the model's context length here (e.g. max_position_embeddings). */
  int truncate;
  size_t max_length;
} kiln_tokenizer_encode_options;

KILN_API void kiln_tokenizer_encode_options_init(kiln_tokenizer_encode_options *options);
/* As kiln_tokenizer_encode, with `options` (NULL: the defaults). */
KILN_API kiln_status kiln_tokenizer_encode_with_options(
    const kiln_tokenizer *tokenizer, const char *text, size_t text_size,
    const kiln_tokenizer_encode_options *options, int32_t *ids, size_t capacity,
    size_t *out_count);
/* tokenizer.json's truncation.max_length, or 0 when the tokenizer has none. */
KILN_API size_t kiln_tokenizer_default_max_length(const kiln_tokenizer *tokenizer);
/* The text of `count` ids (control tokens give none), UTF-8 without a terminating NUL,
 * with the same capacity convention in bytes. An id outside the vocabulary is an error. */
KILN_API kiln_status kiln_tokenizer_decode(const kiln_tokenizer *tokenizer, const int32_t *ids,
                                           size_t count, char *text, size_t capacity,
                                           size_t *out_size);
/* The end-of-sequence token, or -1 when the vocabulary has none. */
KILN_API int32_t kiln_tokenizer_eos(const kiln_tokenizer *tokenizer);

typedef struct kiln_sampler_options {
  float temperature;          /* <= 0: greedy */
  int32_t top_k;              /* 0: off */
  float top_p;                /* 1: off */
  float min_p;                /* 0: off */
  float repetition_penalty;   /* 1: off */
  int32_t repetition_window;  /* latest tokens the penalty looks at */
  uint64_t seed;              /* the same seed, logits and history give the same token */
} kiln_sampler_options;

/* Fills `options` with the defaults (temperature 0.8, top-k 40, top-p 0.95, min-p 0.05,
 * no repetition penalty (1; window 64 tokens), seed 0). */
KILN_API void kiln_sampler_options_init(kiln_sampler_options *options);

typedef struct kiln_sampler kiln_sampler;
KILN_API kiln_status kiln_sampler_create(const kiln_sampler_options *options,
                                         kiln_sampler **out_sampler);
KILN_API void kiln_sampler_release(kiln_sampler *sampler);
/* The next token from `vocab_size` logits and the `history_size` tokens so far. */
KILN_API kiln_status kiln_sampler_sample(kiln_sampler *sampler, const float *logits,
                                         size_t vocab_size, const int32_t *history,
                                         size_t history_size, int32_t *out_token);

/* ---- sentence embeddings ------------------------------------------------------- */

/* Embeds texts with a compiled sentence encoder: a module whose entry point "embed" is
 *   embed(input_ids, attention_mask, token_type_ids: i32[B, S]) -> embeddings: f32[B, D]
 * (inputs in any order, found by name), as kiln-compile builds it from a Hugging Face
 * BERT model directory (e.g. all-MiniLM-L6-v2: mean-pooled, L2-normalized). Each text is
 * tokenized with the tokenizer's special tokens (e.g. [CLS] ... [SEP]) and truncated to
 * the maximum length; texts run B at a time, each right-padded to S with zeros, its
 * attention mask 1 over its tokens and 0 over the padding, token types 0. An embedder
 * is used by one thread at a time; several embedders may share a module. */
typedef struct kiln_embedder kiln_embedder;

typedef struct kiln_embedder_options {
  /* Tokens kept per text, special tokens included: 1 .. S, or 0 for S. */
  size_t max_length;
} kiln_embedder_options;

/* Fills the defaults (max_length 0: the module's S). */
KILN_API void kiln_embedder_options_init(kiln_embedder_options *options);

/* Checks `module`'s "embed" entry point against the signature above (the error says which
 * part differs) and opens a session on it; the embedder keeps `module` alive (release the
 * module whenever). `tokenizer` is borrowed: it must be the model's (e.g. its
 * tokenizer.json) and outlive the embedder. `options` may be NULL (the defaults);
 * max_length above S is an error. Release the embedder with kiln_embedder_release. */
KILN_API kiln_status kiln_embedder_create(kiln_module *module, const kiln_tokenizer *tokenizer,
                                          const kiln_embedder_options *options,
                                          kiln_embedder **out_embedder);
KILN_API void kiln_embedder_release(kiln_embedder *embedder);
/* D, the floats per embedding (0 for NULL). */
KILN_API size_t kiln_embedder_dimension(const kiln_embedder *embedder);
/* B, the texts per run of the entry point (0 for NULL). */
KILN_API size_t kiln_embedder_batch_size(const kiln_embedder *embedder);
/* The tokens kept per text: the options' max_length, or S (0 for NULL). */
KILN_API size_t kiln_embedder_max_length(const kiln_embedder *embedder);

/* Writes the embeddings of `count` NUL-terminated UTF-8 `texts` to `out`, row after row:
 * `out_count` must be count * kiln_embedder_dimension(embedder). Any count works (runs
 * of B; 0 writes nothing). Texts longer than the maximum length are truncated, not an
 * error. On an error the contents of `out` are unspecified. */
KILN_API kiln_status kiln_embedder_embed(kiln_embedder *embedder, const char *const *texts,
                                         size_t count, float *out, size_t out_count);

#ifdef __cplusplus
}
#endif

#endif /* KILN_RUNTIME_H */
