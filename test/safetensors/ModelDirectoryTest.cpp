// ModelDirectory and JsonObject: finding config.json and the checkpoint from any of the
// accepted paths, and typed config lookups whose errors name the file and key.
#include "ModelDirectory.h"
#include "SafetensorsTestWriter.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <unistd.h>

using namespace kiln::safetensors;
using kiln::safetensors::test::safetensorsBytes;
using kiln::safetensors::test::smallData;
using kiln::safetensors::test::smallHeader;

namespace {

class ModelDirectoryTest : public ::testing::Test {
protected:
  void SetUp() override {
    root = std::filesystem::temp_directory_path() /
           ("kiln-model-dir-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(root);
  }
  void TearDown() override { std::filesystem::remove_all(root); }
  std::string write(const std::string &name, const std::string &text) {
    std::filesystem::create_directories((root / name).parent_path());
    std::ofstream(root / name, std::ios::binary) << text;
    return (root / name).string();
  }
  void writeWeights(const std::string &name) {
    std::vector<uint8_t> bytes = safetensorsBytes(smallHeader(), smallData());
    write(name, std::string(bytes.begin(), bytes.end()));
  }
  std::filesystem::path root;
};

} // namespace

TEST_F(ModelDirectoryTest, opens_from_the_directory_config_or_weights) {
  write("config.json", R"({"model_type":"bert","hidden_size":384})");
  writeWeights("model.safetensors");
  for (const std::string &path : {root.string(), root.string() + "/", (root / "config.json").string(),
                                  (root / "model.safetensors").string()}) {
    auto model = ModelDirectory::open(path);
    ASSERT_TRUE(model) << path << ": " << model.error();
    EXPECT_EQ((*model)->directory(), root.string() + "/");
    EXPECT_EQ(*(*model)->config().getInt("hidden_size"), 384);
    EXPECT_NE((*model)->checkpoint().find("matrix").tensor, nullptr);
    EXPECT_FALSE((*model)->file("1_Pooling/config.json"));
  }
}

TEST_F(ModelDirectoryTest, prefers_the_shard_index) {
  write("config.json", "{}");
  writeWeights("model-00001-of-00001.safetensors");
  write("model.safetensors.index.json",
        R"({"weight_map":{"matrix":"model-00001-of-00001.safetensors",)"
        R"("vector":"model-00001-of-00001.safetensors","scalar":"model-00001-of-00001.safetensors",)"
        R"("empty":"model-00001-of-00001.safetensors"}})");
  auto model = ModelDirectory::open(root.string());
  ASSERT_TRUE(model) << model.error();
  EXPECT_EQ((*model)->checkpointPath(), (root / "model.safetensors.index.json").string());
  EXPECT_NE((*model)->checkpoint().find("scalar").tensor, nullptr);
}

TEST_F(ModelDirectoryTest, rejects_missing_files_naming_them) {
  auto model = ModelDirectory::open((root / "nothing").string());
  ASSERT_FALSE(model);
  EXPECT_NE(model.error().find("cannot open"), std::string::npos) << model.error();
  model = ModelDirectory::open(root.string());
  ASSERT_FALSE(model);
  EXPECT_NE(model.error().find("config.json"), std::string::npos) << model.error();
  write("config.json", "{}");
  model = ModelDirectory::open(root.string());
  ASSERT_FALSE(model);
  EXPECT_NE(model.error().find("model.safetensors"), std::string::npos) << model.error();
  write("notes.txt", "");
  model = ModelDirectory::open((root / "notes.txt").string());
  ASSERT_FALSE(model);
  EXPECT_NE(model.error().find("is not a model directory"), std::string::npos) << model.error();
}

TEST_F(ModelDirectoryTest, typed_lookups_name_the_file_and_key) {
  std::string path = write("config.json", R"({"n":3,"x":0.5,"s":"gelu","b":true,)"
                                          R"("list":["A","B"],"mixed":["A",1],"none":null})");
  auto config = JsonObject::read(path);
  ASSERT_TRUE(config) << config.error();
  EXPECT_EQ(*config->getInt("n"), 3);
  EXPECT_EQ(*config->getFloat("n"), 3.0);
  EXPECT_EQ(*config->getFloat("x"), 0.5);
  EXPECT_EQ(*config->getString("s"), "gelu");
  EXPECT_TRUE(*config->getBool("b"));
  EXPECT_EQ(*config->getStringArray("list"), (std::vector<std::string>{"A", "B"}));
  EXPECT_EQ(*config->getInt("absent", 7), 7);
  EXPECT_EQ(*config->getInt("none", 9), 9);
  EXPECT_TRUE(config->has("n"));
  EXPECT_FALSE(config->has("absent"));

  auto error = config->getInt("x");
  ASSERT_FALSE(error);
  EXPECT_EQ(error.error(), path + ": key 'x' is number, expected an integer");
  error = config->getInt("absent");
  ASSERT_FALSE(error);
  EXPECT_EQ(error.error(), path + ": key 'absent' is missing");
  auto strings = config->getStringArray("mixed");
  ASSERT_FALSE(strings);
  EXPECT_EQ(strings.error(), path + ": key 'mixed' is array, expected an array of strings");
  EXPECT_FALSE(config->getString("n", std::string("x")));

  auto bad = JsonObject::read(write("bad.json", "{"));
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().find("is not valid JSON"), std::string::npos) << bad.error();
  auto array = JsonObject::read(write("array.json", "[]"));
  ASSERT_FALSE(array);
  EXPECT_NE(array.error().find("is not a JSON object"), std::string::npos) << array.error();
}
