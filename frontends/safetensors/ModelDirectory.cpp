// Locates a Hugging Face model directory's files and reads its JSON configuration.
#include "ModelDirectory.h"

#include <nlohmann/json.hpp>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <sys/stat.h>

namespace kiln::safetensors {

struct JsonObject::Value {
  nlohmann::json json;
};

JsonObject::JsonObject() : value(std::make_unique<Value>()) {}
JsonObject::~JsonObject() = default;
JsonObject::JsonObject(JsonObject &&) noexcept = default;
JsonObject &JsonObject::operator=(JsonObject &&) noexcept = default;

Result<JsonObject> JsonObject::read(const std::string &path) {
  std::ifstream stream(path, std::ios::binary);
  if (!stream)
    return Error{"cannot open '" + path + "'"};
  std::stringstream text;
  text << stream.rdbuf();
  JsonObject object;
  object.filePath = path;
  try {
    object.value->json = nlohmann::json::parse(text.str());
  } catch (const nlohmann::json::exception &error) {
    return Error{"'" + path + "' is not valid JSON: " + error.what()};
  }
  if (!object.value->json.is_object())
    return Error{"'" + path + "' is not a JSON object"};
  return object;
}

bool JsonObject::has(const std::string &key) const { return value->json.contains(key); }

namespace {

Error missing(const std::string &path, const std::string &key) {
  return Error{path + ": key '" + key + "' is missing"};
}

Error wrongType(const std::string &path, const std::string &key, const nlohmann::json &found,
                const char *expected) {
  return Error{path + ": key '" + key + "' is " + found.type_name() + ", expected " + expected};
}

} // namespace

Result<int64_t> JsonObject::getInt(const std::string &key, std::optional<int64_t> fallback) const {
  auto it = value->json.find(key);
  if (it == value->json.end() || (it->is_null() && fallback))
    return fallback ? Result<int64_t>(*fallback) : missing(filePath, key);
  if (it->is_number_unsigned() && it->get<uint64_t>() > uint64_t(INT64_MAX))
    return Error{filePath + ": key '" + key + "' is too large"};
  if (!it->is_number_integer())
    return wrongType(filePath, key, *it, "an integer");
  return it->get<int64_t>();
}

Result<double> JsonObject::getFloat(const std::string &key, std::optional<double> fallback) const {
  auto it = value->json.find(key);
  if (it == value->json.end() || (it->is_null() && fallback))
    return fallback ? Result<double>(*fallback) : missing(filePath, key);
  if (!it->is_number())
    return wrongType(filePath, key, *it, "a number");
  return it->get<double>();
}

Result<bool> JsonObject::getBool(const std::string &key, std::optional<bool> fallback) const {
  auto it = value->json.find(key);
  if (it == value->json.end() || (it->is_null() && fallback))
    return fallback ? Result<bool>(*fallback) : missing(filePath, key);
  if (!it->is_boolean())
    return wrongType(filePath, key, *it, "a boolean");
  return it->get<bool>();
}

Result<std::string> JsonObject::getString(const std::string &key,
                                          std::optional<std::string> fallback) const {
  auto it = value->json.find(key);
  if (it == value->json.end() || (it->is_null() && fallback))
    return fallback ? Result<std::string>(*fallback) : missing(filePath, key);
  if (!it->is_string())
    return wrongType(filePath, key, *it, "a string");
  return it->get<std::string>();
}

Result<std::vector<std::string>> JsonObject::getStringArray(const std::string &key) const {
  auto it = value->json.find(key);
  if (it == value->json.end())
    return missing(filePath, key);
  std::vector<std::string> strings;
  if (it->is_array())
    for (const nlohmann::json &element : *it) {
      if (!element.is_string())
        break;
      strings.push_back(element.get<std::string>());
    }
  if (!it->is_array() || strings.size() != it->size())
    return wrongType(filePath, key, *it, "an array of strings");
  return strings;
}

namespace {

bool isDirectory(const std::string &path) {
  struct stat info;
  return stat(path.c_str(), &info) == 0 && S_ISDIR(info.st_mode);
}

bool isFile(const std::string &path) {
  struct stat info;
  return stat(path.c_str(), &info) == 0 && S_ISREG(info.st_mode);
}

bool endsWith(const std::string &text, const std::string &suffix) {
  return text.size() >= suffix.size() &&
         text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

} // namespace

Result<std::unique_ptr<ModelDirectory>> ModelDirectory::open(const std::string &path) {
  std::string root;
  std::string weights;
  struct stat info;
  if (stat(path.c_str(), &info) != 0)
    return Error{"cannot open '" + path + "': " + std::strerror(errno)};
  if (isDirectory(path)) {
    root = endsWith(path, "/") ? path : path + "/";
  } else {
    size_t slash = path.rfind('/');
    root = slash == std::string::npos ? "./" : path.substr(0, slash + 1);
    std::string name = slash == std::string::npos ? path : path.substr(slash + 1);
    if (endsWith(name, ".safetensors") || endsWith(name, ".safetensors.index.json"))
      weights = path;
    else if (name != "config.json")
      return Error{"'" + path + "' is not a model directory, config.json or .safetensors file"};
  }
  Result<JsonObject> config = JsonObject::read(root + "config.json");
  if (!config)
    return Error{config.error() + " (a Hugging Face model directory needs config.json)"};
  if (weights.empty()) {
    weights = root + "model.safetensors.index.json";
    if (!isFile(weights))
      weights = root + "model.safetensors";
  }
  Result<std::unique_ptr<SafetensorsCheckpoint>> checkpoint = SafetensorsCheckpoint::open(weights);
  if (!checkpoint)
    return checkpoint.takeError();
  std::unique_ptr<ModelDirectory> directory(new ModelDirectory(root, std::move(*config)));
  directory->weightsPath = weights;
  directory->weights = std::move(*checkpoint);
  return directory;
}

std::optional<std::string> ModelDirectory::file(const std::string &relative) const {
  std::string path = root + relative;
  if (!isFile(path))
    return std::nullopt;
  return path;
}

} // namespace kiln::safetensors
