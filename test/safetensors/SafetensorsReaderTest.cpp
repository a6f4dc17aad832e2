// The safetensors reader: valid files (every listed dtype, metadata, empty tensors,
// sharded checkpoints) and every way a file can be wrong, each rejected with a message
// naming the tensor or key and the byte position.
#include "SafetensorsReader.h"
#include "SafetensorsTestWriter.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

using namespace kiln::safetensors;
using kiln::safetensors::test::safetensorsBytes;
using kiln::safetensors::test::smallData;
using kiln::safetensors::test::smallHeader;

namespace {

kiln::Result<std::unique_ptr<SafetensorsReader>> read(const std::vector<uint8_t> &bytes) {
  return SafetensorsReader::fromMemory(bytes.data(), bytes.size());
}

// The reader's error for a header and data, or "" when it accepts them.
std::string errorFor(const std::string &header, const std::vector<uint8_t> &data) {
  std::vector<uint8_t> bytes = safetensorsBytes(header, data);
  auto reader = read(bytes);
  return reader ? "" : reader.error();
}

std::string tensorHeader(const std::string &entry) { return "{\"t\":" + entry + "}"; }

class TempDir {
public:
  TempDir() {
    path = std::filesystem::temp_directory_path() /
           ("kiln-safetensors-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(path);
  }
  ~TempDir() { std::filesystem::remove_all(path); }
  std::string write(const std::string &name, const std::vector<uint8_t> &bytes) const {
    std::string file = (path / name).string();
    std::ofstream(file, std::ios::binary)
        .write(reinterpret_cast<const char *>(bytes.data()), std::streamsize(bytes.size()));
    return file;
  }
  std::string write(const std::string &name, const std::string &text) const {
    return write(name, std::vector<uint8_t>(text.begin(), text.end()));
  }
  std::filesystem::path path;
};

} // namespace

TEST(SafetensorsReader, reads_tensors_in_header_order_with_metadata) {
  std::vector<uint8_t> bytes = safetensorsBytes(smallHeader(), smallData());
  auto reader = read(bytes);
  ASSERT_TRUE(reader) << reader.error();
  const auto &tensors = (*reader)->tensors();
  ASSERT_EQ(tensors.size(), 4u);
  EXPECT_EQ(tensors[0].name, "matrix");
  EXPECT_STREQ(tensors[0].dtype->name, "F32");
  EXPECT_EQ(tensors[0].shape, (std::vector<uint64_t>{2, 3}));
  uint64_t dataOffset = 8 + smallHeader().size();
  EXPECT_EQ((*reader)->dataOffset(), dataOffset);
  EXPECT_EQ(tensors[0].fileOffset, dataOffset);
  EXPECT_EQ(tensors[0].byteSize, 24u);
  EXPECT_EQ(tensors[1].name, "vector");
  EXPECT_EQ(tensors[1].fileOffset, dataOffset + 24);
  EXPECT_EQ(tensors[1].data, bytes.data() + dataOffset + 24);
  EXPECT_EQ(tensors[1].data[0], 24);
  EXPECT_EQ(tensors[2].name, "scalar");
  EXPECT_TRUE(tensors[2].shape.empty());
  EXPECT_EQ(tensors[2].elementCount, 1u);
  EXPECT_EQ(tensors[3].name, "empty");
  EXPECT_EQ(tensors[3].elementCount, 0u);
  EXPECT_EQ(tensors[3].byteSize, 0u);

  ASSERT_NE((*reader)->findTensor("scalar"), nullptr);
  EXPECT_EQ((*reader)->findTensor("scalar")->byteSize, 8u);
  EXPECT_EQ((*reader)->findTensor("missing"), nullptr);
  EXPECT_EQ((*reader)->metadata().size(), 2u);
  EXPECT_EQ((*reader)->metadata().at("format"), "pt");
}

TEST(SafetensorsReader, reads_every_listed_dtype) {
  for (const DTypeInfo &dtype : dtypes()) {
    std::string header = tensorHeader("{\"dtype\":\"" + std::string(dtype.name) +
                                      "\",\"shape\":[3],\"data_offsets\":[0," +
                                      std::to_string(3 * dtype.bytes) + "]}");
    EXPECT_EQ(errorFor(header, std::vector<uint8_t>(3 * dtype.bytes)), "") << dtype.name;
    EXPECT_EQ(dtypeInfo(dtype.name), &dtype);
  }
  EXPECT_EQ(dtypeInfo("F32")->bytes, 4u);
  EXPECT_EQ(dtypeInfo("BF16")->bytes, 2u);
  EXPECT_EQ(dtypeInfo("F4"), nullptr);
}

TEST(SafetensorsReader, accepts_empty_tensors_whatever_their_other_dimensions) {
  EXPECT_EQ(errorFor(tensorHeader(R"({"dtype":"F64","shape":[5,0],"data_offsets":[0,0]})"), {}),
            "");
  EXPECT_EQ(errorFor(tensorHeader(R"({"dtype":"F64","shape":[0,18446744073709551615],)"
                                  R"("data_offsets":[0,0]})"),
                     {}),
            "");
}

TEST(SafetensorsReader, accepts_an_empty_header_object_and_trailing_spaces) {
  EXPECT_EQ(errorFor("{}", {}), "");
  // Writers pad the header with spaces to align the data section.
  EXPECT_EQ(errorFor(smallHeader() + "      ", smallData()), "");
}

TEST(SafetensorsReader, rejects_truncation_at_every_offset) {
  std::vector<uint8_t> bytes = safetensorsBytes(smallHeader(), smallData());
  for (size_t size = 0; size < bytes.size(); ++size) {
    auto reader = SafetensorsReader::fromMemory(bytes.data(), size);
    ASSERT_FALSE(reader) << "accepted a file cut to " << size << " bytes";
    EXPECT_FALSE(reader.error().empty());
  }
}

TEST(SafetensorsReader, rejects_a_header_size_past_the_end) {
  std::vector<uint8_t> bytes = safetensorsBytes(smallHeader(), smallData());
  bytes[0] = 0xff;
  bytes[1] = 0xff;
  auto reader = read(bytes);
  ASSERT_FALSE(reader);
  EXPECT_NE(reader.error().find("header size at byte 0"), std::string::npos) << reader.error();
  bytes[7] = 0x80; // beyond the format's limit
  reader = read(bytes);
  ASSERT_FALSE(reader);
  EXPECT_NE(reader.error().find("limit"), std::string::npos) << reader.error();
}

TEST(SafetensorsReader, rejects_malformed_json_naming_the_byte) {
  // The literal is found invalid at the closing brace: byte 8 + 9.
  std::string error = errorFor("{\"t\": tru}", {});
  EXPECT_NE(error.find("malformed JSON header at byte 17"), std::string::npos) << error;
  error = errorFor("[1, 2]", {});
  EXPECT_NE(error.find("must start with '{'"), std::string::npos) << error;
  error = errorFor("{\"a\":1} x", {});
  EXPECT_NE(error.find("malformed JSON header"), std::string::npos) << error;
  error = errorFor("{\"t\": \"\xff\"}", {});
  EXPECT_NE(error.find("malformed JSON header"), std::string::npos) << error;
}

TEST(SafetensorsReader, rejects_a_tensor_listed_twice) {
  std::string entry = "{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}";
  std::string error = errorFor("{\"t\":" + entry + ",\"t\":" + entry + "}", {1});
  EXPECT_NE(error.find("'t' twice"), std::string::npos) << error;
}

TEST(SafetensorsReader, rejects_malformed_entries_naming_the_tensor) {
  struct Case {
    std::string entry;
    std::string expected;
  } cases[] = {
      {"[]", "tensor 't': the entry must be an object"},
      {R"({"shape":[1],"data_offsets":[0,1]})", "tensor 't': 'dtype' is missing"},
      {R"({"dtype":"Q4","shape":[1],"data_offsets":[0,1]})", "tensor 't': unknown dtype 'Q4'"},
      {R"({"dtype":"U8","data_offsets":[0,1]})", "tensor 't': 'shape' is missing"},
      {R"({"dtype":"U8","shape":[-1],"data_offsets":[0,1]})",
       "tensor 't': shape[0] is not a non-negative integer"},
      {R"({"dtype":"U8","shape":[1.5],"data_offsets":[0,1]})",
       "tensor 't': shape[0] is not a non-negative integer"},
      {R"({"dtype":"U8","shape":[1]})", "tensor 't': 'data_offsets' must be"},
      {R"({"dtype":"U8","shape":[1],"data_offsets":[0]})", "tensor 't': 'data_offsets' must be"},
      {R"({"dtype":"U8","shape":[1],"data_offsets":[0,1],"extra":1})",
       "tensor 't': unknown key 'extra'"},
      {R"({"dtype":"U8","shape":[4294967296,4294967296,16],"data_offsets":[0,1]})",
       "tensor 't': its shape's element count overflows 64 bits"},
      {R"({"dtype":"F64","shape":[4294967295,4294967295],"data_offsets":[0,1]})",
       "tensor 't': its 18446744065119617025 F64 elements need more than the 1-byte data "
       "section"},
  };
  for (const Case &c : cases) {
    std::string error = errorFor(tensorHeader(c.entry), {1});
    EXPECT_NE(error.find(c.expected), std::string::npos) << c.entry << "\n -> " << error;
  }
}

TEST(SafetensorsReader, rejects_offsets_out_of_range_or_of_the_wrong_size) {
  std::string error = errorFor(
      tensorHeader(R"({"dtype":"F32","shape":[2],"data_offsets":[0,12]})"),
      std::vector<uint8_t>(8));
  EXPECT_NE(error.find("tensor 't': data_offsets [0, 12) is not a range inside the 8-byte "
                       "data section (file bytes [63, 71))"),
            std::string::npos)
      << error;
  error = errorFor(tensorHeader(R"({"dtype":"F32","shape":[2],"data_offsets":[8,0]})"),
                   std::vector<uint8_t>(8));
  EXPECT_NE(error.find("data_offsets [8, 0) is not a range"), std::string::npos) << error;
  error = errorFor(tensorHeader(R"({"dtype":"F32","shape":[3],"data_offsets":[0,8]})"),
                   std::vector<uint8_t>(16));
  EXPECT_NE(error.find("tensor 't': data_offsets [0, 8) hold 8 bytes, but 3 F32 elements "
                       "need 12"),
            std::string::npos)
      << error;
}

TEST(SafetensorsReader, rejects_overlaps_gaps_and_trailing_bytes) {
  std::string error = errorFor(
      R"({"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},)"
      R"("b":{"dtype":"U8","shape":[4],"data_offsets":[2,6]}})",
      std::vector<uint8_t>(6));
  EXPECT_NE(error.find("tensor 'b': data_offsets [2, 6) overlap tensor 'a'"), std::string::npos)
      << error;
  error = errorFor(R"({"a":{"dtype":"U8","shape":[2],"data_offsets":[2,4]}})",
                   std::vector<uint8_t>(4));
  EXPECT_NE(error.find("tensor 'a': data_offsets [2, 4) leave the bytes [0, 2)"),
            std::string::npos)
      << error;
  error = errorFor(R"({"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}})",
                   std::vector<uint8_t>(4));
  EXPECT_NE(error.find("trailing bytes"), std::string::npos) << error;
}

TEST(SafetensorsReader, rejects_metadata_that_is_not_strings) {
  std::string error = errorFor(R"({"__metadata__":{"n":1}})", {});
  EXPECT_NE(error.find("'__metadata__' key 'n' must be a string"), std::string::npos) << error;
  error = errorFor(R"({"__metadata__":[]})", {});
  EXPECT_NE(error.find("'__metadata__' must be an object"), std::string::npos) << error;
}

TEST(SafetensorsReader, opens_a_file_and_names_it_in_errors) {
  TempDir dir;
  std::string good = dir.write("good.safetensors", safetensorsBytes(smallHeader(), smallData()));
  auto reader = SafetensorsReader::open(good);
  ASSERT_TRUE(reader) << reader.error();
  EXPECT_EQ((*reader)->path(), good);
  EXPECT_EQ((*reader)->tensors().size(), 4u);

  std::string bad = dir.write("bad.safetensors", std::vector<uint8_t>{1, 2, 3});
  reader = SafetensorsReader::open(bad);
  ASSERT_FALSE(reader);
  EXPECT_NE(reader.error().find("in '" + bad + "'"), std::string::npos) << reader.error();
  reader = SafetensorsReader::open((dir.path / "missing.safetensors").string());
  ASSERT_FALSE(reader);
  EXPECT_NE(reader.error().find("cannot open"), std::string::npos) << reader.error();
  reader = SafetensorsReader::open(dir.write("empty.safetensors", std::vector<uint8_t>{}));
  ASSERT_FALSE(reader);
  EXPECT_NE(reader.error().find("too short"), std::string::npos) << reader.error();
}

TEST(SafetensorsCheckpoint, resolves_tensors_across_shards) {
  TempDir dir;
  dir.write("model-00001-of-00002.safetensors",
            safetensorsBytes(R"({"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}})", {7, 8}));
  dir.write("model-00002-of-00002.safetensors",
            safetensorsBytes(R"({"b":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},)"
                             R"("c":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}})",
                             {5, 6}));
  std::string index = dir.write(
      "model.safetensors.index.json",
      R"({"metadata":{"total_size":4},"weight_map":{"a":"model-00001-of-00002.safetensors",)"
      R"("b":"model-00002-of-00002.safetensors","c":"model-00002-of-00002.safetensors"}})");
  auto checkpoint = SafetensorsCheckpoint::open(index);
  ASSERT_TRUE(checkpoint) << checkpoint.error();
  EXPECT_EQ((*checkpoint)->files().size(), 2u);
  SafetensorsCheckpoint::Located c = (*checkpoint)->find("c");
  ASSERT_NE(c.tensor, nullptr);
  EXPECT_EQ(c.file->path(), (dir.path / "model-00002-of-00002.safetensors").string());
  EXPECT_EQ(c.tensor->data[0], 6);
  EXPECT_EQ(c.tensor->fileOffset, c.file->dataOffset() + 1);
  EXPECT_EQ((*checkpoint)->find("a").tensor->data[1], 8);
  EXPECT_EQ((*checkpoint)->find("z").tensor, nullptr);

  auto single = SafetensorsCheckpoint::open(
      (dir.path / "model-00001-of-00002.safetensors").string());
  ASSERT_TRUE(single) << single.error();
  EXPECT_NE(single->get()->find("a").tensor, nullptr);
}

TEST(SafetensorsCheckpoint, rejects_inconsistent_indexes) {
  TempDir dir;
  dir.write("one.safetensors",
            safetensorsBytes(R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},)"
                             R"("b":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}})",
                             {1, 2}));
  struct Case {
    std::string index;
    std::string expected;
  } cases[] = {
      {"not json", "is not a JSON object"},
      {R"({"metadata":{}})", "has no 'weight_map' object"},
      {R"({"weight_map":{"a":"one.safetensors","b":"two.safetensors"}})",
       "two.safetensors': No such file"},
      {R"({"weight_map":{"a":"one.safetensors","b":"../one.safetensors"}})",
       "which is not beside the index"},
      {R"({"weight_map":{"a":"one.safetensors","b":"one.safetensors","z":"one.safetensors"}})",
       "maps tensor 'z' to 'one.safetensors', which does not hold it"},
      {R"({"weight_map":{"a":"one.safetensors"}})", "tensor 'b' in '"},
      {R"({"weight_map":{"a":1}})", "weight_map entry 'a' is not a file name"},
  };
  for (const Case &c : cases) {
    std::string index = dir.write("model.safetensors.index.json", c.index);
    auto checkpoint = SafetensorsCheckpoint::open(index);
    ASSERT_FALSE(checkpoint) << c.index;
    EXPECT_NE(checkpoint.error().find(c.expected), std::string::npos)
        << c.index << "\n -> " << checkpoint.error();
  }
}
