// GgufReader tests: every metadata value type in v2 and v3 files, alignment and tensor
// placement, typed lookups, every validation error (with the byte offset it names),
// truncation at every offset and single-byte flips, and the real vocabulary files.
#include "GgufReader.h"
#include "GgufTestWriter.h"

#include "kiln/quant_formats.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <unistd.h>

using namespace kiln;
using namespace kiln::gguf;
using namespace kiln::gguf::test;

namespace {

constexpr uint32_t kU8 = 0, kI8 = 1, kU16 = 2, kI16 = 3, kU32 = 4, kI32 = 5, kF32 = 6,
                   kBool = 7, kString = 8, kArray = 9, kU64 = 10, kI64 = 11, kF64 = 12;
constexpr uint32_t kGgmlF32 = 0, kGgmlQ8_0 = 8;

// The reader borrows `bytes`, which must outlive it.
Result<std::unique_ptr<GgufReader>> read(const std::vector<uint8_t> &bytes) {
  return GgufReader::fromMemory(bytes.data(), bytes.size());
}

// Expects `bytes` to be rejected with a message containing each of `parts`.
void expectRejected(const std::vector<uint8_t> &bytes, std::initializer_list<const char *> parts) {
  auto reader = read(bytes);
  ASSERT_FALSE(reader) << "accepted a file that should fail";
  for (const char *part : parts)
    EXPECT_NE(reader.error().find(part), std::string::npos)
        << "message: " << reader.error() << "\nexpected to contain: " << part;
}

std::vector<MetadataSpec> everyValueType() {
  GgufBytes nested;
  nested.put<uint32_t>(kU16).put<uint64_t>(2).put<uint16_t>(7).put<uint16_t>(8);
  nested.put<uint32_t>(kU16).put<uint64_t>(0);
  return {
      {"t.u8", kU8, scalarPayload<uint8_t>(200)},
      {"t.i8", kI8, scalarPayload<int8_t>(-100)},
      {"t.u16", kU16, scalarPayload<uint16_t>(60000)},
      {"t.i16", kI16, scalarPayload<int16_t>(-30000)},
      {"t.u32", kU32, scalarPayload<uint32_t>(4000000000u)},
      {"t.i32", kI32, scalarPayload<int32_t>(-2000000000)},
      {"t.f32", kF32, scalarPayload<float>(1.5f)},
      {"t.bool", kBool, scalarPayload<uint8_t>(1)},
      {"t.string", kString, stringPayload("héllo")},
      {"t.u64", kU64, scalarPayload<uint64_t>(18000000000000000000ull)},
      {"t.i64", kI64, scalarPayload<int64_t>(-9000000000000000000ll)},
      {"t.f64", kF64, scalarPayload<double>(-2.25)},
      {"t.strings", kArray, stringArrayPayload({"a", "", "ccc"})},
      {"t.floats", kArray, arrayPayload(kF32, 2, GgufBytes().put(0.5f).put(-1.0f))},
      {"t.ints", kArray, arrayPayload(kI32, 3, GgufBytes().put(1).put(-2).put(3))},
      {"t.nested", kArray, arrayPayload(kArray, 2, nested)},
      {"t.empty", kArray, arrayPayload(kBool, 0, GgufBytes())},
  };
}

std::vector<uint8_t> fileWithTensors(uint32_t version = 3) {
  // q8_0: 64 elements = 2 blocks of 34 bytes; f32: 2 x 3 = 24 bytes.
  return writeGguf({{"general.architecture", kString, stringPayload("llama")}},
                   {{"blk.0.weight", {64}, kGgmlQ8_0, 0}, {"norm", {3, 2}, kGgmlF32, 96}},
                   96 + 24, version);
}

class ReadsEveryValueType : public ::testing::TestWithParam<uint32_t> {};

TEST_P(ReadsEveryValueType, in_each_supported_version) {
  // The reader borrows the bytes: they outlive it.
  std::vector<uint8_t> bytes = writeGguf(everyValueType(), {}, 0, GetParam());
  auto reader = read(bytes);
  ASSERT_TRUE(reader) << reader.error();
  const GgufReader &r = **reader;
  EXPECT_EQ(r.version(), GetParam());
  EXPECT_EQ(r.metadata().size(), everyValueType().size());
  EXPECT_EQ(*r.getUInt("t.u8"), 200u);
  EXPECT_EQ(*r.getInt("t.i8"), -100);
  EXPECT_EQ(*r.getUInt("t.u16"), 60000u);
  EXPECT_EQ(*r.getInt("t.i16"), -30000);
  EXPECT_EQ(*r.getUInt("t.u32"), 4000000000u);
  EXPECT_EQ(*r.getInt("t.i32"), -2000000000);
  EXPECT_EQ(*r.getFloat("t.f32"), 1.5);
  EXPECT_TRUE(*r.getBool("t.bool"));
  EXPECT_EQ(*r.getString("t.string"), "héllo");
  EXPECT_EQ(*r.getUInt("t.u64"), 18000000000000000000ull);
  EXPECT_EQ(*r.getInt("t.i64"), -9000000000000000000ll);
  EXPECT_EQ(*r.getFloat("t.f64"), -2.25);
  EXPECT_EQ(*r.getStringArray("t.strings"), (std::vector<std::string_view>{"a", "", "ccc"}));
  EXPECT_EQ(*r.getFloatArray("t.floats"), (std::vector<float>{0.5f, -1.0f}));
  EXPECT_EQ(*r.getIntArray("t.ints"), (std::vector<int64_t>{1, -2, 3}));
  const MetadataValue *nested = r.find("t.nested");
  ASSERT_NE(nested, nullptr);
  ASSERT_EQ(nested->arrayLength, 2u);
  EXPECT_EQ(nested->elementType, ValueType::Array);
  EXPECT_EQ(nested->elements[0].elementType, ValueType::UInt16);
  EXPECT_EQ(nested->element(0).element(1).integer, 8u);
  EXPECT_EQ(nested->element(1).arrayLength, 0u);
  EXPECT_EQ(r.find("t.empty")->arrayLength, 0u);
  EXPECT_EQ(r.metadata()[0].key, "t.u8");
  EXPECT_EQ(r.alignment(), 32u);
  EXPECT_TRUE(r.tensors().empty());
}

INSTANTIATE_TEST_SUITE_P(Versions, ReadsEveryValueType, ::testing::Values(2u, 3u));

TEST(GgufReader, typed_lookups_name_the_key_on_error) {
  std::vector<uint8_t> bytes = writeGguf(everyValueType());
  auto reader = read(bytes);
  ASSERT_TRUE(reader) << reader.error();
  const GgufReader &r = **reader;
  EXPECT_NE(r.getString("no.such.key").error().find("'no.such.key' is missing"), std::string::npos);
  EXPECT_NE(r.getString("t.u8").error().find("'t.u8' is uint8, expected string"), std::string::npos);
  EXPECT_NE(r.getUInt("t.i8").error().find("'t.i8' is negative"), std::string::npos);
  EXPECT_NE(r.getInt("t.u64").error().find("does not fit int64"), std::string::npos);
  EXPECT_NE(r.getFloat("t.bool").error().find("expected float32 or float64"), std::string::npos);
  EXPECT_NE(r.getBool("t.string").error().find("expected bool"), std::string::npos);
  EXPECT_NE(r.getStringArray("t.ints").error().find("array of int32, expected array of string"),
            std::string::npos);
  EXPECT_FALSE(r.getFloatArray("t.strings"));
  EXPECT_FALSE(r.getIntArray("t.floats"));
}

TEST(GgufReader, locates_tensors_in_the_aligned_data_section) {
  for (uint32_t version : {2u, 3u}) {
    std::vector<uint8_t> bytes = fileWithTensors(version);
    auto reader = read(bytes);
    ASSERT_TRUE(reader) << reader.error();
    const GgufReader &r = **reader;
    EXPECT_EQ(r.dataOffset() % 32, 0u);
    EXPECT_EQ(r.dataOffset() + 96 + 24, bytes.size());
    const TensorInfo *q = r.findTensor("blk.0.weight");
    ASSERT_NE(q, nullptr);
    EXPECT_EQ(std::string(q->type->name), "Q8_0");
    EXPECT_EQ(q->type->kilnQuantScheme, KILN_QUANT_Q8_0);
    EXPECT_EQ(q->elementCount, 64u);
    EXPECT_EQ(q->byteSize, 68u);
    EXPECT_EQ(q->fileOffset, r.dataOffset());
    EXPECT_EQ(q->data, bytes.data() + r.dataOffset());
    const TensorInfo *norm = r.findTensor("norm");
    ASSERT_NE(norm, nullptr);
    EXPECT_EQ(norm->dims, (std::vector<uint64_t>{3, 2}));
    EXPECT_EQ(norm->byteSize, 24u);
    EXPECT_EQ(norm->fileOffset, r.dataOffset() + 96);
    EXPECT_EQ(norm->data[0], 96);
    EXPECT_EQ(r.findTensor("missing"), nullptr);
  }
}

TEST(GgufReader, honours_general_alignment) {
  std::vector<uint8_t> bytes = writeGguf({{"general.alignment", kU32, scalarPayload<uint32_t>(256)}},
                                         {{"a", {4}, kGgmlF32, 0}, {"b", {4}, kGgmlF32, 256}},
                                         256 + 16, 3, 256);
  auto reader = read(bytes);
  ASSERT_TRUE(reader) << reader.error();
  EXPECT_EQ((*reader)->alignment(), 256u);
  EXPECT_EQ((*reader)->dataOffset(), 256u);
  EXPECT_EQ((*reader)->findTensor("b")->fileOffset, 512u);
}

TEST(GgufReader, rejects_bad_magic) {
  std::vector<uint8_t> bytes = writeGguf(everyValueType());
  bytes[0] = 'X';
  expectRejected(bytes, {"bad magic", "byte offset 0"});
}

TEST(GgufReader, rejects_unsupported_versions) {
  expectRejected(writeGguf({}, {}, 0, 1), {"unsupported version 1", "byte offset 4"});
  expectRejected(writeGguf({}, {}, 0, 4), {"unsupported version 4"});
  expectRejected(writeGguf({}, {}, 0, 0x03000000), {"big-endian"});
}

TEST(GgufReader, rejects_truncation_at_every_offset) {
  for (const std::vector<uint8_t> &full : {writeGguf(everyValueType()), fileWithTensors()}) {
    ASSERT_TRUE(read(full));
    for (size_t length = 0; length < full.size(); ++length) {
      std::vector<uint8_t> prefix(full.begin(), full.begin() + length);
      auto reader = read(prefix);
      EXPECT_FALSE(reader) << "accepted a prefix of " << length << " bytes";
      if (!reader)
        EXPECT_NE(reader.error().find("byte offset"), std::string::npos) << reader.error();
    }
  }
}

TEST(GgufReader, survives_every_single_byte_flip) {
  std::vector<uint8_t> full = fileWithTensors();
  for (size_t at = 0; at < full.size(); ++at)
    for (uint8_t flip : {0x01, 0x80, 0xff}) {
      std::vector<uint8_t> bytes = full;
      bytes[at] ^= flip;
      auto reader = read(bytes);
      if (!reader)
        EXPECT_FALSE(reader.error().empty());
    }
}

TEST(GgufReader, rejects_counts_that_cannot_fit) {
  GgufBytes header;
  header.bytes = {'G', 'G', 'U', 'F'};
  header.put<uint32_t>(3).put<uint64_t>(0).put<uint64_t>(1ull << 62);
  expectRejected(header.bytes, {"metadata count", "cannot fit", "byte offset 16"});
  GgufBytes tensors;
  tensors.bytes = {'G', 'G', 'U', 'F'};
  tensors.put<uint32_t>(3).put<uint64_t>(~0ull).put<uint64_t>(0);
  expectRejected(tensors.bytes, {"tensor count", "byte offset 8"});
  expectRejected(writeGguf({{"k", kArray, arrayPayload(kU64, 1ull << 61, GgufBytes())}}),
                 {"metadata key 'k'", "array of", "cannot fit"});
}

TEST(GgufReader, rejects_string_lengths_past_the_end) {
  GgufBytes huge;
  huge.put<uint64_t>(~0ull);
  expectRejected(writeGguf({{"k", kString, huge}}), {"metadata key 'k'", "string length", "runs past"});
  std::vector<uint8_t> bytes = writeGguf({{"key", kU8, scalarPayload<uint8_t>(1)}});
  bytes[24] = 200; // the key's length
  expectRejected(bytes, {"metadata entry 0", "metadata key length 200", "byte offset 24"});
  GgufBytes element;
  element.putString("ok").put<uint64_t>(1000);
  expectRejected(writeGguf({{"tokens", kArray, arrayPayload(kString, 2, element)}}),
                 {"metadata key 'tokens': array element 1: string length 1000"});
}

TEST(GgufReader, rejects_invalid_value_types) {
  expectRejected(writeGguf({{"k", 13, scalarPayload<uint8_t>(0)}}),
                 {"metadata key 'k'", "invalid value type 13"});
  expectRejected(writeGguf({{"k", kArray, arrayPayload(99, 0, GgufBytes())}}),
                 {"metadata key 'k'", "invalid array element type 99"});
  expectRejected(writeGguf({{"k", kBool, scalarPayload<uint8_t>(2)}}), {"bool value 2"});
  expectRejected(writeGguf({{"k", kArray, arrayPayload(kBool, 2, GgufBytes().put<uint8_t>(1).put<uint8_t>(5))}}),
                 {"metadata key 'k'", "array element 1: bool value 5"});
}

TEST(GgufReader, rejects_arrays_nested_too_deep) {
  GgufBytes payload = arrayPayload(kU8, 0, GgufBytes());
  for (int depth = 1; depth < 9; ++depth)
    payload = arrayPayload(kArray, 1, payload);
  expectRejected(writeGguf({{"deep", kArray, payload}}), {"metadata key 'deep'", "nested deeper"});
}

TEST(GgufReader, rejects_duplicate_keys_and_tensor_names) {
  expectRejected(writeGguf({{"k", kU8, scalarPayload<uint8_t>(1)}, {"k", kU8, scalarPayload<uint8_t>(2)}}),
                 {"duplicate metadata key 'k'"});
  expectRejected(writeGguf({}, {{"t", {4}, kGgmlF32, 0}, {"t", {4}, kGgmlF32, 32}}, 64),
                 {"duplicate tensor 't'"});
  expectRejected(writeGguf({{"", kU8, scalarPayload<uint8_t>(1)}}), {"empty key"});
}

TEST(GgufReader, rejects_bad_tensor_shapes_and_types) {
  expectRejected(writeGguf({}, {{"t", {1, 1, 1, 1, 1}, kGgmlF32, 0}}, 32),
                 {"tensor 't'", "n_dims 5 exceeds 4"});
  expectRejected(writeGguf({}, {{"t", {4, 0}, kGgmlF32, 0}}, 32), {"tensor 't'", "dimension 1 is zero"});
  expectRejected(writeGguf({}, {{"t", {1ull << 40, 1ull << 40}, kGgmlF32, 0}}, 32),
                 {"tensor 't'", "overflows"});
  expectRejected(writeGguf({}, {{"t", {4}, 4, 0}}, 32), {"tensor 't'", "unknown ggml type 4"});
  expectRejected(writeGguf({}, {{"t", {4}, 1000, 0}}, 32), {"unknown ggml type 1000"});
  expectRejected(writeGguf({}, {{"t", {48}, kGgmlQ8_0, 0}}, 64),
                 {"tensor 't'", "not a multiple of Q8_0's block of 32"});
  expectRejected(writeGguf({}, {{"t", {1ull << 60}, kGgmlF32, 0}}, 32), {"tensor 't'", "runs past"});
}

TEST(GgufReader, rejects_tensor_data_out_of_range_misaligned_or_overlapping) {
  expectRejected(writeGguf({}, {{"t", {4}, kGgmlF32, 8}}, 64), {"tensor 't'", "not a multiple of the alignment 32"});
  expectRejected(writeGguf({}, {{"t", {16}, kGgmlF32, 32}}, 64), {"tensor 't'", "runs past the end"});
  expectRejected(writeGguf({}, {{"t", {4}, kGgmlF32, ~0ull - 31}}, 64), {"tensor 't'", "runs past"});
  expectRejected(writeGguf({}, {{"a", {16}, kGgmlF32, 0}, {"b", {4}, kGgmlF32, 32}}, 64),
                 {"tensor 'b' overlaps the data of tensor 'a'"});
}

TEST(GgufReader, rejects_bad_general_alignment) {
  expectRejected(writeGguf({{"general.alignment", kU32, scalarPayload<uint32_t>(48)}}),
                 {"'general.alignment' is 48, not a power of two"});
  expectRejected(writeGguf({{"general.alignment", kU32, scalarPayload<uint32_t>(0)}}),
                 {"not a power of two"});
  expectRejected(writeGguf({{"general.alignment", kU64, scalarPayload<uint64_t>(32)}}),
                 {"'general.alignment' must be uint32"});
}

TEST(GgufReader, open_reports_unreadable_files) {
  auto missing = GgufReader::open("/nonexistent/model.gguf");
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().find("cannot open '/nonexistent/model.gguf'"), std::string::npos);
  EXPECT_FALSE(GgufReader::open("/"));

  std::string path = ::testing::TempDir() + "kiln-gguf-" + std::to_string(getpid()) + ".gguf";
  std::ofstream(path, std::ios::binary).close();
  auto empty = GgufReader::open(path);
  ASSERT_FALSE(empty);
  EXPECT_NE(empty.error().find("is empty"), std::string::npos);

  std::vector<uint8_t> bytes = fileWithTensors();
  std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char *>(bytes.data()), bytes.size());
  auto mapped = GgufReader::open(path);
  ASSERT_TRUE(mapped) << mapped.error();
  EXPECT_EQ((*mapped)->findTensor("norm")->data[4], 100);

  bytes.resize(bytes.size() - 1);
  std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char *>(bytes.data()), bytes.size());
  auto truncated = GgufReader::open(path);
  ASSERT_FALSE(truncated);
  EXPECT_NE(truncated.error().find(path), std::string::npos);
  std::remove(path.c_str());
}

TEST(GgufReader, ggml_type_table_agrees_with_kiln_quant_formats) {
  int mapped = 0;
  for (const GgmlTypeInfo &row : ggmlTypes()) {
    EXPECT_EQ(ggmlTypeInfo(row.id), &row);
    if (row.kilnQuantScheme < 0)
      continue;
    ++mapped;
    const kiln_quant_format &format = kiln_quant_formats[row.kilnQuantScheme];
    EXPECT_EQ(int32_t(row.blockElements), format.block_elements) << row.name;
    EXPECT_EQ(int32_t(row.blockBytes), format.block_bytes) << row.name;
  }
  EXPECT_EQ(mapped, 7); // Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q6_K
  EXPECT_EQ(ggmlTypeInfo(4), nullptr);
  EXPECT_EQ(std::string(ggmlTypeInfo(30)->name), "BF16");
}

// The vocabulary files of the tokenizer conformance data (llama.cpp's models/).
class RealVocabularyFile : public ::testing::TestWithParam<const char *> {};

TEST_P(RealVocabularyFile, has_the_known_tokenizer_keys) {
  std::string path = std::string(KILN_TOKENIZER_DATA_DIR) + "/ggml-vocab-" + GetParam() + ".gguf";
  if (access(path.c_str(), R_OK) != 0)
    GTEST_SKIP() << path << " is absent";
  auto reader = GgufReader::open(path);
  ASSERT_TRUE(reader) << reader.error();
  const GgufReader &r = **reader;
  auto tokens = r.getStringArray("tokenizer.ggml.tokens");
  ASSERT_TRUE(tokens) << tokens.error();
  EXPECT_TRUE(r.getString("tokenizer.ggml.model"));
  std::string name = GetParam();
  if (name == "llama-spm") {
    EXPECT_EQ(*r.getString("tokenizer.ggml.model"), "llama");
    EXPECT_EQ(tokens->size(), 32000u);
    EXPECT_EQ((*tokens)[29871], "\xe2\x96\x81"); // "▁"
    EXPECT_EQ(r.getFloatArray("tokenizer.ggml.scores")->size(), 32000u);
    EXPECT_EQ(*r.getUInt("tokenizer.ggml.bos_token_id"), 1u);
    EXPECT_EQ(*r.getUInt("tokenizer.ggml.eos_token_id"), 2u);
  } else if (name == "gpt-2") {
    EXPECT_EQ(*r.getString("tokenizer.ggml.model"), "gpt2");
    EXPECT_EQ(tokens->size(), 50257u);
    EXPECT_EQ((*tokens)[15496], "Hello");
    EXPECT_EQ(r.getStringArray("tokenizer.ggml.merges")->size(), 50000u);
  } else {
    EXPECT_EQ(*r.getString("tokenizer.ggml.model"), "bert");
    EXPECT_EQ(tokens->size(), 30522u);
    EXPECT_EQ((*tokens)[100], "[UNK]");
  }
  EXPECT_TRUE(r.tensors().empty());
}

INSTANTIATE_TEST_SUITE_P(Files, RealVocabularyFile,
                         ::testing::Values("llama-spm", "gpt-2", "bert-bge"));

} // namespace
