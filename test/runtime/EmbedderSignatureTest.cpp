// kiln_embedder_create's checks of the @embed signature, on artifacts written here around
// the TestKernels.c code object (its `fail` kernel stands in for the encoder, so a
// well-formed @embed also shows how a failing run reaches the caller). The real model is
// EmbedderApiTest.c's.
#include "TestArtifacts.h"
#include "kiln/runtime.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <memory>
#include <string>
#include <unistd.h>

using namespace kiln::artifact;

namespace {

struct StatusFree {
  void operator()(kiln_status_object *s) const { kiln_status_free(s); }
};
using Status = std::unique_ptr<kiln_status_object, StatusFree>;

std::string message(const Status &status) {
  return status ? kiln_status_message(status.get()) : "(no error)";
}

struct Tensor {
  std::string name;
  TensorDesc type;
};

TensorDesc i32(std::vector<int64_t> shape) { return TensorDesc{DType::I32, std::move(shape)}; }
TensorDesc f32(std::vector<int64_t> shape) { return TensorDesc{DType::F32, std::move(shape)}; }

// A module, a tokenizer (a two-letter BPE tokenizer.json) and a runtime for one test.
class EmbedderSignature : public ::testing::Test {
protected:
  void SetUp() override {
    ASSERT_EQ(kiln_runtime_create(nullptr, &runtime), nullptr);
    tokenizerPath = ::testing::TempDir() + "embedder-tokenizer-" + std::to_string(getpid()) +
                    ".json";
    std::ofstream(tokenizerPath)
        << R"({"model": {"type": "BPE", "vocab": {"a": 0, "b": 1}, "merges": []}})";
    Status status(kiln_tokenizer_load(tokenizerPath.c_str(), &tokenizer));
    ASSERT_EQ(status, nullptr) << message(status);
  }
  void TearDown() override {
    kiln_module_release(module);
    kiln_tokenizer_release(tokenizer);
    kiln_runtime_release(runtime);
    std::remove(tokenizerPath.c_str());
  }

  // Loads (in place of the last one) an artifact whose entry point "embed" has these
  // inputs and outputs.
  void load(const std::vector<Tensor> &inputs, const std::vector<Tensor> &outputs) {
    std::vector<TensorDesc> inputTypes, outputTypes;
    for (const Tensor &t : inputs)
      inputTypes.push_back(t.type);
    for (const Tensor &t : outputs)
      outputTypes.push_back(t.type);
    auto writer = kiln::test::makeSingleKernelArtifact(kiln::test::readFile(KILN_TEST_KERNELS_PATH),
                                                       "fail" + std::to_string(inputs.size() + outputs.size()),
                                                       inputTypes, outputTypes);
    EntryPointDesc &entry = writer.program().entryPoints[0];
    entry.name = "embed";
    for (size_t i = 0; i < inputs.size(); ++i)
      entry.inputs[i].name = inputs[i].name;
    for (size_t i = 0; i < outputs.size(); ++i)
      entry.outputs[i].name = outputs[i].name;
    std::vector<uint8_t> file = writer.serialize();
    kiln_module_release(module);
    module = nullptr;
    Status status(
        kiln_module_load_memory(runtime, file.data(), file.size(), KILN_LOAD_COPY, &module));
    ASSERT_EQ(status, nullptr) << message(status);
  }

  std::string createError() {
    kiln_embedder *embedder = nullptr;
    Status status(kiln_embedder_create(module, tokenizer, nullptr, &embedder));
    EXPECT_EQ(embedder, nullptr);
    kiln_embedder_release(embedder);
    return message(status);
  }

  kiln_runtime *runtime = nullptr;
  kiln_module *module = nullptr;
  kiln_tokenizer *tokenizer = nullptr;
  std::string tokenizerPath;
};

const std::vector<Tensor> kOutput = {{"embeddings", f32({2, 3})}};

TEST_F(EmbedderSignature, accepts_inputs_in_any_order_and_reports_failed_runs) {
  load({{"token_type_ids", i32({2, 4})}, {"input_ids", i32({2, 4})},
        {"attention_mask", i32({2, 4})}},
       kOutput);
  kiln_embedder_options options;
  kiln_embedder_options_init(&options);
  options.max_length = 5;
  kiln_embedder *embedder = nullptr;
  Status tooLong(kiln_embedder_create(module, tokenizer, &options, &embedder));
  EXPECT_EQ(message(tooLong),
            "max_length 5 exceeds the 4 tokens per text @embed was compiled for");
  Status created(kiln_embedder_create(module, tokenizer, nullptr, &embedder));
  ASSERT_EQ(created, nullptr) << message(created);
  EXPECT_EQ(kiln_embedder_dimension(embedder), 3u);
  EXPECT_EQ(kiln_embedder_batch_size(embedder), 2u);
  EXPECT_EQ(kiln_embedder_max_length(embedder), 4u);
  EXPECT_EQ(Status(kiln_embedder_embed(embedder, nullptr, 0, nullptr, 0)), nullptr);
  const char *texts[] = {"ab"};
  float out[3];
  Status failed(kiln_embedder_embed(embedder, texts, 1, out, 3));
  EXPECT_EQ(kiln_status_code(failed.get()), KILN_ERROR_KERNEL_FAILED) << message(failed);
  EXPECT_NE(message(failed).find("running @embed: "), std::string::npos) << message(failed);
  kiln_embedder_release(embedder);
}

TEST_F(EmbedderSignature, rejects_another_input_name) {
  load({{"input_ids", i32({2, 4})}, {"mask", i32({2, 4})}, {"token_type_ids", i32({2, 4})}},
       kOutput);
  EXPECT_EQ(createError().rfind("@embed input 1 is 'mask'; expected @embed(input_ids, "
                                "attention_mask, token_type_ids: i32[B, S])",
                                0),
            0u);
}

// (Two inputs of one name cannot reach the embedder: the loader rejects the artifact.)
TEST_F(EmbedderSignature, rejects_a_wrong_dtype_or_a_different_shape) {
  load({{"input_ids", i32({2, 4})}, {"attention_mask", f32({2, 4})},
        {"token_type_ids", i32({2, 4})}},
       kOutput);
  EXPECT_EQ(createError().rfind("@embed input 'attention_mask' is not a distinct i32[B, S]", 0),
            0u);
  load({{"input_ids", i32({2, 4})}, {"attention_mask", i32({2, 4})},
        {"token_type_ids", i32({2, 5})}},
       kOutput);
  EXPECT_EQ(createError().rfind("@embed input 'token_type_ids' is not a distinct i32[B, S]", 0),
            0u);
}

TEST_F(EmbedderSignature, rejects_an_output_that_is_not_f32_batch_by_dimension) {
  load({{"input_ids", i32({2, 4})}, {"attention_mask", i32({2, 4})},
        {"token_type_ids", i32({2, 4})}},
       {{"embeddings", f32({3, 3})}});
  EXPECT_EQ(createError().rfind("@embed output 'embeddings' is not f32[B, D] for the inputs' "
                                "B = 2",
                                0),
            0u);
}

TEST_F(EmbedderSignature, rejects_other_input_and_output_counts) {
  load({{"input_ids", i32({2, 4})}, {"attention_mask", i32({2, 4})}}, kOutput);
  EXPECT_EQ(createError().rfind("@embed has 2 inputs and 1 outputs; expected @embed(", 0), 0u);
}

} // namespace
