// ModelDirectory: a Hugging Face model directory as the transformers library lays it
// out — config.json (architecture and hyperparameters), the weights as one
// model.safetensors or shards listed by model.safetensors.index.json, and optional
// side files (1_Pooling/config.json of sentence-transformers, tokenizer.json). Plain
// C++17, no LLVM, shared by the compiler's frontend and the runtime-free tools.
#ifndef KILN_FRONTENDS_SAFETENSORS_MODELDIRECTORY_H
#define KILN_FRONTENDS_SAFETENSORS_MODELDIRECTORY_H

#include "SafetensorsReader.h"

#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace kiln::safetensors {

// A JSON object read from a file, with typed lookups whose errors name the file and
// the key.
class JsonObject {
public:
  static Result<JsonObject> read(const std::string &path);

  const std::string &path() const { return filePath; }
  bool has(const std::string &key) const;
  // A missing key gives `fallback` when one is given, else an error; a key of another
  // type is always an error. getInt accepts integers only, getFloat any number.
  Result<int64_t> getInt(const std::string &key,
                         std::optional<int64_t> fallback = std::nullopt) const;
  Result<double> getFloat(const std::string &key,
                          std::optional<double> fallback = std::nullopt) const;
  Result<bool> getBool(const std::string &key, std::optional<bool> fallback = std::nullopt) const;
  Result<std::string> getString(const std::string &key,
                                std::optional<std::string> fallback = std::nullopt) const;
  Result<std::vector<std::string>> getStringArray(const std::string &key) const;

  ~JsonObject();
  JsonObject(JsonObject &&) noexcept;
  JsonObject &operator=(JsonObject &&) noexcept;

private:
  JsonObject();
  struct Value;
  std::string filePath;
  std::unique_ptr<Value> value;
};

class ModelDirectory {
public:
  // `path` is the directory, its config.json, its model.safetensors or its
  // model.safetensors.index.json; the directory must hold config.json and the weights
  // (the index when present, else model.safetensors).
  static Result<std::unique_ptr<ModelDirectory>> open(const std::string &path);

  // The directory, ending in '/'.
  const std::string &directory() const { return root; }
  const JsonObject &config() const { return configJson; }
  const SafetensorsCheckpoint &checkpoint() const { return *weights; }
  // The file the weights were opened from (model.safetensors or the index).
  const std::string &checkpointPath() const { return weightsPath; }
  // `relative` inside the directory, when such a file exists.
  std::optional<std::string> file(const std::string &relative) const;

private:
  ModelDirectory(std::string root, JsonObject config)
      : root(std::move(root)), configJson(std::move(config)) {}
  std::string root;
  JsonObject configJson;
  std::string weightsPath;
  std::unique_ptr<SafetensorsCheckpoint> weights;
};

} // namespace kiln::safetensors

#endif // KILN_FRONTENDS_SAFETENSORS_MODELDIRECTORY_H
