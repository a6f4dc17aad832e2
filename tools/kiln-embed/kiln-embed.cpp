// kiln-embed: sentence embeddings from a compiled encoder. A Hugging Face model
// directory is compiled once into a cache keyed by its files' content; the runtime's
// kiln_embedder tokenizes the texts with its tokenizer.json, batches them with padding
// and runs them through @embed.
#include "HostFiles.h"
#include "ModelDirectory.h"
#include "Npy.h"
#include "kiln/runtime.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>
// Header-only xxHash, as in HostFiles.cpp.

namespace fs = std::filesystem;
using namespace kiln;

namespace {

constexpr const char *kUsage =
    "usage: kiln-embed MODEL TEXT... [options]\n"
    "\n"
    "Prints one L2-normalized embedding per TEXT (abbreviated) or writes them all to a\n"
    ".npy file. MODEL is a Hugging Face sentence-encoder directory (config.json,\n"
    "model.safetensors, tokenizer.json; e.g. all-MiniLM-L6-v2), compiled once with\n"
    "kiln-compile into a cache keyed by its files' content, the batch, the length and the\n"
    "compiler (a cached artifact that no longer loads is compiled again, and runs\n"
    "started together compile it once); or a .kiln artifact compiled from one, with\n"
    "--tokenizer.\n"
    "\n"
    "  -o FILE.npy          write the embeddings as f32[texts, dim] instead of printing\n"
    "  --similarity         also print the cosine-similarity matrix of the texts\n"
    "  --batch N            texts per forward pass (default 8; an artifact's own otherwise)\n"
    "  --max-length N       tokens per text, [CLS] and [SEP] included; longer texts are\n"
    "                       truncated (default 128, capped by the model's positions)\n"
    "  --threads N          kernel threads (default: one per CPU)\n"
    "  --device D           where the kernels run: cpu (default) or cuda (an NVIDIA GPU;\n"
    "                       a model directory is then compiled with --target=cuda, an\n"
    "                       artifact must have been)\n"
    "  --tokenizer PATH     tokenizer.json (or its directory), when MODEL is an artifact\n"
    "  --cache-dir DIR      compiled models (default $XDG_CACHE_HOME/kiln/models or\n"
    "                       ~/.cache/kiln/models); compiling a model there removes what\n"
    "                       other kiln builds compiled of it with these options\n";

struct Options {
  std::string model, output, tokenizer, cacheDir, device = "cpu";
  std::vector<std::string> texts;
  bool similarity = false;
  long batch = 0, maxLength = 0, threads = 0;
};

[[noreturn]] void die(const std::string &message, int code = 1) {
  std::fprintf(stderr, "kiln-embed: %s\n", message.c_str());
  std::exit(code);
}

void check(kiln_status status, const std::string &what) {
  if (!status)
    return;
  std::string message = what + ": " + kiln_status_message(status);
  kiln_status_free(status);
  die(message);
}

long count(const std::string &option, const char *value, long minimum) {
  char *end = nullptr;
  long n = std::strtol(value, &end, 10);
  if (!*value || *end || n < minimum)
    die(option + " expects an integer >= " + std::to_string(minimum) + ", got '" + value + "'",
        2);
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
    } else if (arg == "-o") {
      o.output = value();
    } else if (arg == "--similarity") {
      o.similarity = true;
    } else if (arg == "--batch") {
      o.batch = count(arg, value(), 1);
    } else if (arg == "--max-length") {
      o.maxLength = count(arg, value(), 2);
    } else if (arg == "--threads") {
      o.threads = count(arg, value(), 0);
    } else if (arg == "--device") {
      o.device = value();
    } else if (arg == "--tokenizer") {
      o.tokenizer = value();
    } else if (arg == "--cache-dir") {
      o.cacheDir = value();
    } else if (arg == "--") {
      o.texts.insert(o.texts.end(), argv + i + 1, argv + argc);
      break;
    } else if (!arg.empty() && arg[0] == '-') {
      die("unknown option '" + arg + "' (see --help)", 2);
    } else if (o.model.empty()) {
      o.model = arg;
    } else {
      o.texts.push_back(arg);
    }
  }
  if (o.model.empty())
    die("no model given (see --help)", 2);
  if (o.texts.empty())
    die("no text given (see --help)", 2);
  return o;
}

/// The cached artifact for a model directory, compiling it first when it is not there
/// (or when `runtime` cannot load it).
std::string compiledModel(const Options &o, const safetensors::ModelDirectory &model,
                          kiln_runtime *runtime) {
  // Every file the importer reads decides the artifact.
  std::vector<std::string> inputs{model.config().path()};
  for (const auto &file : model.checkpoint().files())
    inputs.push_back(file->path());
  if (std::optional<std::string> pooling = model.file("1_Pooling/config.json"))
    inputs.push_back(*pooling);
  tools::Expected<std::string> key = tools::hashFiles(inputs);
  if (!key)
    die(key.error().message);
  std::string batch = std::to_string(o.batch ? o.batch : 8);
  std::string length = std::to_string(o.maxLength);
  std::string name = "embed-" + *key + "-" + batch + "x" + length;
  std::vector<std::string> args{model.directory(), "--batch", batch, "--seq-len", length};
  if (o.device != "cpu") {
    name += "-" + o.device;
    args.push_back("--target=" + o.device);
  }
  tools::Expected<tools::CachedArtifact> compiled =
      tools::compileIntoCache("kiln-embed", o.model, o.cacheDir, name, args, runtime);
  if (!compiled)
    die(compiled.error().message);
  return compiled->path;
}

/// "[0.0123, -0.0456, 0.0789, ..., 0.0012] (384 values)"
std::string abbreviate(const float *values, size_t size) {
  std::string text = "[";
  char number[32];
  for (size_t i = 0; i < size; ++i) {
    if (size > 8 && i == 4) {
      text += "..., ";
      i = size - 3;
    }
    std::snprintf(number, sizeof number, "%.4f", values[i]);
    text += number + std::string(i + 1 < size ? ", " : "");
  }
  return text + "] (" + std::to_string(size) + " values)";
}

} // namespace

int main(int argc, char **argv) {
  Options o = parse(argc, argv);
  // First, so that a missing device is reported before a compile.
  kiln_runtime_options runtimeOptions;
  kiln_runtime_options_init(&runtimeOptions);
  runtimeOptions.num_threads = int32_t(o.threads);
  runtimeOptions.device = o.device.c_str();
  kiln_runtime *runtime = nullptr;
  check(kiln_runtime_create(&runtimeOptions, &runtime), "creating the runtime");
  bool isArtifact = fs::path(o.model).extension() == ".kiln";
  std::string artifact = o.model, tokenizerPath = o.tokenizer;
  if (!isArtifact) {
    auto model = safetensors::ModelDirectory::open(o.model);
    if (!model)
      die(model.error());
    if (!o.maxLength) {
      // The importer's default length, spelled out so the cache key is explicit.
      auto positions = (*model)->config().getInt("max_position_embeddings", 512);
      if (!positions)
        die(positions.error());
      o.maxLength = std::min<long>(*positions, 128);
    }
    artifact = compiledModel(o, **model, runtime);
    if (tokenizerPath.empty())
      tokenizerPath = (*model)->directory() + "tokenizer.json";
  } else if (tokenizerPath.empty()) {
    die("a .kiln artifact needs --tokenizer PATH (its tokenizer.json)", 2);
  } else if (o.batch) {
    die("--batch applies when compiling a model directory; an artifact has its own", 2);
  }
  kiln_tokenizer *tokenizer = nullptr;
  check(kiln_tokenizer_load(tokenizerPath.c_str(), &tokenizer), "loading the tokenizer");

  kiln_module *module = nullptr;
  check(kiln_module_load_file(runtime, artifact.c_str(), &module), artifact);
  kiln_embedder_options embedderOptions;
  kiln_embedder_options_init(&embedderOptions);
  embedderOptions.max_length = size_t(o.maxLength);
  kiln_embedder *embedder = nullptr;
  check(kiln_embedder_create(module, tokenizer, &embedderOptions, &embedder), artifact);

  std::vector<const char *> texts;
  for (const std::string &text : o.texts)
    texts.push_back(text.c_str());
  size_t dim = kiln_embedder_dimension(embedder);
  std::vector<float> embeddings(texts.size() * dim);
  check(kiln_embedder_embed(embedder, texts.data(), texts.size(), embeddings.data(),
                            embeddings.size()),
        "embedding the texts");

  if (!o.output.empty()) {
    std::vector<int64_t> shape{int64_t(o.texts.size()), int64_t(dim)};
    if (tools::MaybeError error = tools::writeNpyFile(o.output, KILN_DTYPE_F32, shape,
                                                      embeddings.data(),
                                                      embeddings.size() * sizeof(float)))
      die(error->message);
  } else {
    for (size_t i = 0; i < o.texts.size(); ++i)
      std::printf("%zu: %s\n", i, abbreviate(embeddings.data() + i * dim, dim).c_str());
  }
  if (o.similarity) {
    // Cosines of the vectors as computed (unit length already, up to rounding).
    std::vector<double> norms(o.texts.size());
    for (size_t i = 0; i < o.texts.size(); ++i) {
      double sum = 0;
      for (size_t k = 0; k < dim; ++k)
        sum += double(embeddings[i * dim + k]) * embeddings[i * dim + k];
      norms[i] = std::max(std::sqrt(sum), 1e-12);
    }
    std::printf("cosine similarity:\n");
    for (size_t i = 0; i < o.texts.size(); ++i) {
      for (size_t j = 0; j < o.texts.size(); ++j) {
        double dot = 0;
        for (size_t k = 0; k < dim; ++k)
          dot += double(embeddings[i * dim + k]) * embeddings[j * dim + k];
        std::printf("%s%7.4f", j ? " " : "", dot / (norms[i] * norms[j]));
      }
      std::printf("\n");
    }
  }
  kiln_embedder_release(embedder);
  kiln_module_release(module);
  kiln_runtime_release(runtime);
  kiln_tokenizer_release(tokenizer);
  return 0;
}
