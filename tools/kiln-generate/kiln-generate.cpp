// kiln-generate: streams a completion of a prompt from a language model, compiling a
// GGUF model once into a cached artifact, then reports prompt and generation tokens/s.
#include "GgufReader.h"
#include "HostFiles.h"
#include "ProfileReport.h"
#include "Sampler.h"
#include "Tokenizer.h"
#include "kiln/runtime.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

namespace fs = std::filesystem;
using namespace kiln;
using Clock = std::chrono::steady_clock;

namespace {

constexpr const char *kUsage =
    "usage: kiln-generate MODEL [options]\n"
    "\n"
    "Streams a completion of a prompt. MODEL is a GGUF file or a Hugging Face model\n"
    "directory (config.json, safetensors, tokenizer.json), compiled once with\n"
    "kiln-compile into a cache keyed by the model's content, the context length, the\n"
    "compiler and the tuning database's state (so later runs start at once, and\n"
    "schedules kiln-tune records later are compiled in; a cached artifact that no longer loads is\n"
    "compiled again, and runs started together compile it once), or a .kiln artifact\n"
    "with --vocab. Control tokens written in the prompt (\"<start_of_turn>\") are parsed\n"
    "as tokens.\n"
    "\n"
    "  -p, --prompt TEXT     the prompt (default: empty)\n"
    "  -n N                  tokens to generate (default 32)\n"
    "  --ctx N               the most prompt + generated tokens (the KV cache's rows,\n"
    "                        but for sliding-window layers' ring buffers; default 256)\n"
    "  --batch N             prompt tokens per prefill pass (default 32)\n"
    "  --full-window-caches  sliding-window layers (Gemma 3) keep --ctx cache rows, not a\n"
    "                        ring buffer of window + --batch - 1 (same tokens, more\n"
    "                        memory; kiln-compile --full-window-caches)\n"
    "  --activations A       int8 (default) or f32: a decode step's products with\n"
    "                        Q8_0/Q4_0/Q5_0/Q4_K/Q6_K weights over activations rounded to\n"
    "                        8 bits, as llama.cpp does (integer dot products), or kept in\n"
    "                        f32 (closest to the exact result, slower); kiln-compile\n"
    "                        --activations\n"
    "  --seed S              sampling seed (default 0); the same seed gives the same tokens\n"
    "  --temp T              temperature; 0 = greedy (default 0.8)\n"
    "  --top-k K             (default 40; 0 = off)\n"
    "  --top-p P             (default 0.95; 1 = off)\n"
    "  --min-p P             (default 0.05; 0 = off)\n"
    "  --repeat-penalty R    (default 1 = off, as llama.cpp)\n"
    "  --threads N           kernel threads (default: one per CPU)\n"
    "  --device D            where the kernels run: cpu (default) or cuda (an NVIDIA GPU;\n"
    "                        a model is then compiled with --target=cuda, an artifact\n"
    "                        must have been)\n"
    "  --vocab FILE          the tokenizer (a GGUF file, tokenizer.json or a model\n"
    "                        directory), when MODEL is a .kiln artifact\n"
    "  --cache-dir DIR       compiled models (default $XDG_CACHE_HOME/kiln/models or\n"
    "                        ~/.cache/kiln/models); compiling a model there removes\n"
    "                        what other kiln builds compiled of it with these options\n"
    "  --stats-json FILE     write the artifact's path, the prompt's and generated token\n"
    "                        ids, load/compile time and tokens/s as JSON\n"
    "  --profile             time every kernel call: print a table per kernel for prefill\n"
    "                        and decode (to stderr) and write a Chrome trace (Perfetto)\n"
    "  --trace FILE.json     where --profile writes the trace (default kiln-trace.json);\n"
    "                        implies --profile\n"
    "\n"
    "The model is compiled with a KV cache: the prompt is evaluated --batch tokens at a\n"
    "time, then each new token costs one single-token pass.\n";

struct Options {
  std::string model, prompt, vocab, cacheDir, statsJson, tracePath, device = "cpu";
  int tokens = 32, ctx = 256, batch = 32, threads = 0;
  bool profile = false;
  bool fullWindowCaches = false;
  std::string activations = "int8";
  llm::SamplerOptions sampling;
};

[[noreturn]] void die(const std::string &message, int code = 1) {
  std::fprintf(stderr, "kiln-generate: %s\n", message.c_str());
  std::exit(code);
}

void check(kiln_status status, const std::string &what) {
  if (!status)
    return;
  std::string message = what + ": " + kiln_status_message(status);
  kiln_status_free(status);
  die(message);
}

void check(const tools::MaybeError &error) {
  if (error)
    die(error->message);
}

double number(const std::string &option, const char *value) {
  char *end = nullptr;
  double n = std::strtod(value, &end);
  if (!*value || *end)
    die(option + " expects a number, got '" + value + "'", 2);
  return n;
}

Options parse(int argc, char **argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    auto value = [&]() -> const char * {
      if (i + 1 >= argc)
        die(arg + " needs a value", 2);
      return argv[++i];
    };
    if (arg == "-h" || arg == "--help") {
      std::fputs(kUsage, stdout);
      std::exit(0);
    } else if (arg == "-p" || arg == "--prompt") {
      o.prompt = value();
    } else if (arg == "-n") {
      o.tokens = static_cast<int>(number(arg, value()));
    } else if (arg == "--ctx") {
      o.ctx = static_cast<int>(number(arg, value()));
    } else if (arg == "--batch") {
      o.batch = static_cast<int>(number(arg, value()));
    } else if (arg == "--full-window-caches") {
      o.fullWindowCaches = true;
    } else if (arg == "--activations") {
      o.activations = value();
      if (o.activations != "int8" && o.activations != "f32")
        die("--activations takes int8 or f32, got '" + o.activations + "'");
    } else if (arg == "--seed") {
      o.sampling.seed = static_cast<uint64_t>(number(arg, value()));
    } else if (arg == "--temp") {
      o.sampling.temperature = static_cast<float>(number(arg, value()));
    } else if (arg == "--top-k") {
      o.sampling.topK = static_cast<int32_t>(number(arg, value()));
    } else if (arg == "--top-p") {
      o.sampling.topP = static_cast<float>(number(arg, value()));
    } else if (arg == "--min-p") {
      o.sampling.minP = static_cast<float>(number(arg, value()));
    } else if (arg == "--repeat-penalty") {
      o.sampling.repetitionPenalty = static_cast<float>(number(arg, value()));
    } else if (arg == "--threads") {
      o.threads = static_cast<int>(number(arg, value()));
    } else if (arg == "--device") {
      o.device = value();
    } else if (arg == "--vocab") {
      o.vocab = value();
    } else if (arg == "--cache-dir") {
      o.cacheDir = value();
    } else if (arg == "--stats-json") {
      o.statsJson = value();
    } else if (arg == "--profile") {
      o.profile = true;
    } else if (arg == "--trace") {
      o.profile = true;
      o.tracePath = value();
    } else if (!arg.empty() && arg[0] == '-') {
      die("unknown option '" + arg + "' (see --help)", 2);
    } else if (o.model.empty()) {
      o.model = arg;
    } else {
      die("more than one model given: '" + o.model + "' and '" + arg + "'", 2);
    }
  }
  if (o.model.empty())
    die("no model given (see --help)", 2);
  if (o.tokens < 0 || o.ctx < 1 || o.batch < 1 || o.batch > o.ctx)
    die("-n must be >= 0, --ctx >= 1 and 1 <= --batch <= --ctx", 2);
  if (o.profile && o.tracePath.empty())
    o.tracePath = "kiln-trace.json";
  return o;
}

/// The content key of a model: the hash of a GGUF file, or for a Hugging Face model
/// directory one hash over its config.json and weight files.
tools::Expected<std::string> modelKey(const std::string &model) {
  if (!fs::is_directory(model))
    return tools::hashFile(model);
  std::vector<std::string> files;
  for (const fs::directory_entry &entry : fs::directory_iterator(model)) {
    std::string name = entry.path().filename().string();
    if (name == "config.json" || entry.path().extension() == ".safetensors" ||
        name == "model.safetensors.index.json")
      files.push_back(entry.path().string());
  }
  std::sort(files.begin(), files.end());
  return tools::hashFiles(files);
}

/// The cached KV-cache artifact for a GGUF model or a Hugging Face model directory,
/// compiling it first when it is not there yet (or `runtime` cannot load it).
tools::CachedArtifact compiledModel(const Options &o, kiln_runtime *runtime) {
  tools::Expected<std::string> key = modelKey(o.model);
  if (!key)
    die(key.error().message);
  std::string ctx = std::to_string(o.ctx), batch = std::to_string(o.batch);
  std::vector<std::string> args{o.model, "--kv-cache", "--ctx", ctx, "--seq-len", batch};
  std::string variant = *key + "-kv" + ctx + "x" + batch;
  args.push_back("--activations=" + o.activations);
  if (o.activations != "int8")
    variant += "-" + o.activations;
  if (o.fullWindowCaches) {
    args.push_back("--full-window-caches");
    variant += "-fullwindow";
  }
  if (o.device != "cpu") {
    args.push_back("--target=" + o.device);
    variant += "-" + o.device;
  }
  tools::Expected<tools::CachedArtifact> compiled =
      tools::compileIntoCache("kiln-generate", o.model, o.cacheDir, variant, args, runtime);
  if (!compiled)
    die(compiled.error().message);
  return *compiled;
}

} // namespace

int main(int argc, char **argv) {
  Options o = parse(argc, argv);
  auto loadStart = Clock::now();
  // First, so that a missing device is reported before a compile.
  kiln_runtime_options runtimeOptions;
  kiln_runtime_options_init(&runtimeOptions);
  runtimeOptions.num_threads = o.threads;
  runtimeOptions.device = o.device.c_str();
  kiln_runtime *runtime = nullptr;
  check(kiln_runtime_create(&runtimeOptions, &runtime), "creating the runtime");
  bool isArtifact = fs::path(o.model).extension() == ".kiln";
  std::string vocabPath = isArtifact ? o.vocab : o.model;
  if (vocabPath.empty())
    die("a .kiln artifact needs --vocab FILE.gguf (or a tokenizer.json) for its tokenizer", 2);
  auto tokenizer = llm::Tokenizer::fromFile(vocabPath);
  if (!tokenizer)
    die(vocabPath + ": " + tokenizer.error());

  tools::CachedArtifact compiled =
      isArtifact ? tools::CachedArtifact{o.model} : compiledModel(o, runtime);
  const std::string &artifact = compiled.path;
  double compileSeconds = compiled.compileSeconds;

  kiln_module *module = nullptr;
  check(kiln_module_load_file(runtime, artifact.c_str(), &module), artifact);
  // A KV-cache model: @prefill (a batch of tokens) and @decode (one token) over one
  // persistent cache.
  size_t prefillEntry = 0, decodeEntry = 0;
  check(kiln_module_find_entry_point(module, "prefill", &prefillEntry),
        artifact + " is not a KV-cache language model");
  check(kiln_module_find_entry_point(module, "decode", &decodeEntry),
        artifact + " is not a KV-cache language model");
  kiln_tensor_info batchInfo, rowInfo{}, logitsInfo;
  check(kiln_module_input_info(module, prefillEntry, 0, &batchInfo), "prefill input 0");
  check(kiln_module_output_info(module, prefillEntry, 0, &logitsInfo), "prefill output 0");
  size_t rowInput = 0;
  for (size_t i = 0; i < kiln_module_input_count(module, prefillEntry); ++i) {
    check(kiln_module_input_info(module, prefillEntry, i, &rowInfo), "prefill input");
    if (std::string(rowInfo.name) == "logits_row") {
      rowInput = i;
      break;
    }
  }
  if (rowInput == 0 || batchInfo.dtype != KILN_DTYPE_I32 || batchInfo.rank != 1 ||
      rowInfo.rank != 1 || rowInfo.dtype != KILN_DTYPE_I64 || logitsInfo.rank != 2 ||
      logitsInfo.shape[0] != 1 || logitsInfo.dtype != KILN_DTYPE_F32)
    die(artifact + " is not a language model (expected prefill(tokens: i32[N], positions: "
                   "i64[N], logits_row: i64[1], caches...) -> logits: f32[1, vocab])");
  size_t batch = static_cast<size_t>(batchInfo.shape[0]);
  size_t vocab = static_cast<size_t>(logitsInfo.shape[1]);
  size_t ctx = static_cast<size_t>(o.ctx);
  kiln_session *prefill = nullptr, *decode = nullptr;
  check(kiln_session_create(module, prefillEntry, &prefill), "creating the prefill session");
  check(kiln_session_create_sharing_state(module, decodeEntry, prefill, &decode),
        "creating the decode session");
  double loadSeconds =
      std::chrono::duration<double>(Clock::now() - loadStart).count() - compileSeconds;
  tools::ProfileReport profile;
  if (o.profile) {
    check(tools::startProfiling(prefill));
    check(tools::startProfiling(decode));
  }
  // A span on the profile's `track` from `startNs` to now (nothing without --profile).
  auto span = [&](const char *track, const std::string &name, uint64_t startNs) {
    if (o.profile)
      profile.addSpan(track, name, startNs, tools::monotonicNanoseconds());
  };

  // As llama.cpp's tools: the model's BOS, and control tokens written in the prompt
  // ("<start_of_turn>") are tokens, not text.
  llm::EncodeOptions encoding;
  encoding.addSpecialTokens = true;
  encoding.parseSpecial = true;
  std::vector<llm::TokenId> tokens = (*tokenizer)->encode(o.prompt, encoding);
  if (tokens.empty())
    die("the prompt encodes to no tokens and the vocabulary has no BOS token");
  if (tokens.size() >= ctx)
    die("the prompt has " + std::to_string(tokens.size()) + " tokens but the context holds " +
        std::to_string(ctx) + " (raise --ctx)");
  size_t promptTokens = tokens.size();
  std::fputs(o.prompt.c_str(), stdout);
  std::fflush(stdout);

  // Prefill in batches; padding after the prompt writes cache rows that decoding
  // overwrites before any query can see them (attention masks rows past its position).
  auto start = Clock::now();
  std::vector<float> lastLogits(vocab);
  for (size_t begin = 0; begin < tokens.size(); begin += batch) {
    uint64_t batchStart = tools::monotonicNanoseconds();
    std::vector<int32_t> ids(batch, 0);
    std::vector<int64_t> positions(batch);
    size_t count = std::min(batch, tokens.size() - begin);
    for (size_t i = 0; i < batch; ++i) {
      ids[i] = i < count ? tokens[begin + i] : 0;
      positions[i] = static_cast<int64_t>(std::min(begin + i, ctx - 1));
    }
    check(kiln_session_set_input(prefill, 0, ids.data(), ids.size() * 4), "tokens");
    check(kiln_session_set_input(prefill, 1, positions.data(), positions.size() * 8), "positions");
    int64_t lastRow = static_cast<int64_t>(count - 1);
    check(kiln_session_set_input(prefill, rowInput, &lastRow, 8), "logits_row");
    check(kiln_session_run(prefill), "prefill");
    const void *data = nullptr;
    size_t bytes = 0;
    check(kiln_session_output(prefill, 0, &data, &bytes), "logits");
    std::copy(static_cast<const float *>(data), static_cast<const float *>(data) + vocab,
              lastLogits.begin());
    span("prefill", "prompt tokens " + std::to_string(begin) + "-" +
                        std::to_string(begin + count - 1),
         batchStart);
  }
  double promptSeconds = std::chrono::duration<double>(Clock::now() - start).count();

  llm::Sampler sampler(o.sampling);
  std::vector<llm::TokenId> generated;
  std::string printed;
  start = Clock::now();
  for (int step = 0; step < o.tokens; ++step) {
    uint64_t sampleStart = tools::monotonicNanoseconds();
    llm::TokenId next = sampler.sample(lastLogits.data(), vocab, tokens);
    if (next == (*tokenizer)->vocabulary().eos)
      break;
    tokens.push_back(next);
    generated.push_back(next);
    auto text = (*tokenizer)->decode(generated);
    if (text && text->size() > printed.size()) {
      std::fputs(text->c_str() + printed.size(), stdout);
      std::fflush(stdout);
      printed = *text;
    }
    span("decode", "sample + print", sampleStart);
    if (step + 1 == o.tokens || tokens.size() >= ctx)
      break;
    uint64_t decodeStart = tools::monotonicNanoseconds();
    int32_t id = next;
    int64_t position = static_cast<int64_t>(tokens.size() - 1);
    check(kiln_session_set_input(decode, 0, &id, 4), "token");
    check(kiln_session_set_input(decode, 1, &position, 8), "position");
    check(kiln_session_run(decode), "decode");
    const void *data = nullptr;
    size_t bytes = 0;
    check(kiln_session_output(decode, 0, &data, &bytes), "logits");
    std::copy(static_cast<const float *>(data), static_cast<const float *>(data) + vocab,
              lastLogits.begin());
    span("decode", "token " + std::to_string(tokens.size() - promptTokens), decodeStart);
  }
  double generationSeconds = std::chrono::duration<double>(Clock::now() - start).count();
  std::fputs("\n", stdout);
  // Prefill yields the first token's logits; each later token costs one decode pass.
  size_t genTokens = generated.empty() ? 0 : generated.size() - 1;
  double promptRate = promptSeconds > 0 ? promptTokens / promptSeconds : 0;
  double genRate = generationSeconds > 0 ? genTokens / generationSeconds : 0;
  std::fprintf(stderr,
               "kiln-generate: prompt %zu tokens in %.3f s (%.1f tokens/s), generated %zu "
               "tokens in %.3f s (%.2f tokens/s); load %.3f s, compile %.3f s\n",
               promptTokens, promptSeconds, promptRate, genTokens, generationSeconds, genRate,
               loadSeconds, compileSeconds);
  if (o.profile) {
    check(profile.addSession(prefill, "prefill"));
    check(profile.addSession(decode, "decode"));
    std::fprintf(stderr, "kiln-generate: profile:\n%s", profile.table().c_str());
    check(profile.writeChromeTrace(o.tracePath, "kiln-generate"));
    std::fprintf(stderr, "kiln-generate: trace: %s (open it in https://ui.perfetto.dev)\n",
                 o.tracePath.c_str());
  }
  if (!o.statsJson.empty()) {
    nlohmann::json stats = {{"artifact", artifact},
                            {"prompt_tokens", promptTokens},
                            {"prompt_token_ids", std::vector<llm::TokenId>(
                                                     tokens.begin(), tokens.begin() + promptTokens)},
                            {"prompt_seconds", promptSeconds},
                            {"prompt_tokens_per_second", promptRate},
                            {"generated_tokens", genTokens},
                            {"generation_seconds", generationSeconds},
                            {"generation_tokens_per_second", genRate},
                            {"load_seconds", loadSeconds},
                            {"compile_seconds", compileSeconds},
                            {"tokens", generated}};
    std::ofstream json(o.statsJson);
    json << stats.dump() << "\n";
    if (!json)
      die("cannot write " + o.statsJson);
  }
  kiln_session_release(decode);
  kiln_session_release(prefill);
  kiln_module_release(module);
  kiln_runtime_release(runtime);
  return 0;
}
