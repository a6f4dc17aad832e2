// validateArtifact: every layout and program check rejects what it must, with a
// message that says what is wrong; the writer's output passes.
#include "TestArtifacts.h"

#include <gtest/gtest.h>

#include <cstring>
#include <functional>

using namespace kiln::artifact;
using kiln::test::makeAddArtifact;
using kiln::test::reseal;

namespace {

const std::vector<uint8_t> &code() {
  static const std::vector<uint8_t> bytes = kiln::test::readFile(KILN_TEST_KERNELS_PATH);
  return bytes;
}

std::string validate(const std::vector<uint8_t> &file) {
  return validateArtifact(file.data(), file.size(), nullptr).message;
}

// The error for the add artifact after `edit` changes its program description.
std::string programError(const std::function<void(ProgramDesc &)> &edit) {
  ArtifactWriter writer = makeAddArtifact(code());
  edit(writer.program());
  return validate(writer.serialize());
}

FileHeader header(const std::vector<uint8_t> &file) {
  FileHeader h;
  std::memcpy(&h, file.data(), sizeof h);
  return h;
}

SectionEntry section(const std::vector<uint8_t> &file, uint32_t i) {
  SectionEntry s;
  std::memcpy(&s, file.data() + sizeof(FileHeader) + i * sizeof(SectionEntry), sizeof s);
  return s;
}

void setSection(std::vector<uint8_t> &file, uint32_t i, const SectionEntry &s) {
  std::memcpy(file.data() + sizeof(FileHeader) + i * sizeof(SectionEntry), &s, sizeof s);
}

std::vector<uint8_t> validFile() { return makeAddArtifact(code()).serialize(); }

} // namespace

TEST(ArtifactValidation, accepts_writer_output) {
  std::vector<uint8_t> file = validFile();
  ArtifactView view;
  ArtifactError err = validateArtifact(file.data(), file.size(), &view);
  ASSERT_FALSE(err) << err.message;
  ASSERT_NE(view.program, nullptr);
  EXPECT_EQ(view.weights.size, 24u);
  ASSERT_EQ(view.codeFor("cpu").size(), 1u);
  EXPECT_EQ(view.codeFor("cpu")[0]->bytes.size, code().size());
  EXPECT_EQ(view.storage[5], 4u) << "the alias resolves to its target";
}

TEST(ArtifactValidation, rejects_truncated_header) {
  std::vector<uint8_t> file = validFile();
  EXPECT_EQ(validateArtifact(file.data(), 10, nullptr).message,
            "artifact truncated: the file has 10 bytes but the header needs 64");
  EXPECT_EQ(validateArtifact(nullptr, 0, nullptr).message,
            "artifact truncated: the file has 0 bytes but the header needs 64");
}

TEST(ArtifactValidation, rejects_truncation_at_every_offset) {
  std::vector<uint8_t> file = validFile();
  for (size_t cut = 0; cut < file.size(); ++cut) {
    std::string err = validateArtifact(file.data(), cut, nullptr).message;
    ASSERT_NE(err.find("truncated"), std::string::npos) << "cut at " << cut << ": " << err;
  }
}

TEST(ArtifactValidation, names_the_truncated_section) {
  std::vector<uint8_t> file = validFile();
  SectionEntry weights = section(file, 1);
  size_t cut = weights.offset + 1;
  EXPECT_EQ(validateArtifact(file.data(), cut, nullptr).message,
            "artifact truncated: section 1 (weights) ends at byte " +
                std::to_string(weights.offset + weights.size) + " but the file has " +
                std::to_string(cut) + " bytes");
}

TEST(ArtifactValidation, rejects_every_single_flipped_byte) {
  std::vector<uint8_t> file = validFile();
  for (size_t i = 0; i < file.size(); ++i) {
    file[i] ^= 0x20;
    ASSERT_FALSE(validate(file).empty()) << "flipping byte " << i << " went unnoticed";
    file[i] ^= 0x20;
  }
}

TEST(ArtifactValidation, reports_section_checksum_mismatch) {
  std::vector<uint8_t> file = validFile();
  file[section(file, 2).offset + 100] ^= 1;
  EXPECT_NE(validate(file).find("section 2 (code) checksum mismatch"), std::string::npos)
      << validate(file);
}

TEST(ArtifactValidation, reports_header_checksum_mismatch) {
  std::vector<uint8_t> file = validFile();
  file[offsetof(FileHeader, target)] ^= 1;
  EXPECT_NE(validate(file).find("header checksum mismatch"), std::string::npos);
}

TEST(ArtifactValidation, rejects_wrong_magic) {
  std::vector<uint8_t> file = validFile();
  file[0] = 'X';
  EXPECT_NE(validate(file).find("not a kiln artifact"), std::string::npos);
}

TEST(ArtifactValidation, rejects_unsupported_format_version) {
  std::vector<uint8_t> file = validFile();
  FileHeader h = header(file);
  h.format_version = 2;
  std::memcpy(file.data(), &h, sizeof h);
  EXPECT_EQ(validate(file),
            "unsupported artifact format version 2 (this runtime reads version 1)");
}

TEST(ArtifactValidation, rejects_section_table_past_end_of_file) {
  std::vector<uint8_t> file = validFile();
  FileHeader h = header(file);
  // One entry more than the whole file holds (the fixture's size varies by build: a
  // sanitized code object is larger).
  h.section_count = uint32_t(file.size() / sizeof(SectionEntry) + 1);
  std::memcpy(file.data(), &h, sizeof h);
  EXPECT_NE(validate(file).find("artifact truncated: the section table (" +
                                std::to_string(h.section_count) + " entries)"),
            std::string::npos);
}

TEST(ArtifactValidation, rejects_section_beyond_file) {
  std::vector<uint8_t> file = validFile();
  SectionEntry s = section(file, 1);
  s.offset = uint64_t(1) << 62;
  setSection(file, 1, s);
  reseal(file);
  EXPECT_NE(validate(file).find("section 1 (weights) ends at byte"), std::string::npos)
      << validate(file);
}

TEST(ArtifactValidation, rejects_section_size_overflow) {
  std::vector<uint8_t> file = validFile();
  SectionEntry s = section(file, 1);
  s.size = UINT64_MAX;
  setSection(file, 1, s);
  reseal(file);
  EXPECT_NE(validate(file).find("truncated: section 1 (weights)"), std::string::npos)
      << validate(file);
}

TEST(ArtifactValidation, rejects_misaligned_section) {
  std::vector<uint8_t> file = validFile();
  SectionEntry s = section(file, 1);
  s.offset += 8;
  setSection(file, 1, s);
  reseal(file);
  EXPECT_NE(validate(file).find("not a multiple of 64"), std::string::npos);
}

TEST(ArtifactValidation, rejects_overlapping_sections) {
  std::vector<uint8_t> file = validFile();
  SectionEntry weights = section(file, 1);
  SectionEntry code = section(file, 2);
  code.offset = weights.offset;
  setSection(file, 2, code);
  reseal(file);
  EXPECT_NE(validate(file).find("overlap"), std::string::npos) << validate(file);
}

TEST(ArtifactValidation, rejects_section_inside_the_header) {
  std::vector<uint8_t> file = validFile();
  SectionEntry s = section(file, 1);
  s.offset = 0;
  setSection(file, 1, s);
  reseal(file);
  EXPECT_NE(validate(file).find("inside the header"), std::string::npos);
}

TEST(ArtifactValidation, rejects_unknown_section_kind) {
  std::vector<uint8_t> file = validFile();
  SectionEntry s = section(file, 1);
  s.kind = 9;
  setSection(file, 1, s);
  reseal(file);
  EXPECT_EQ(validate(file), "section 1 has unknown kind 9");
}

TEST(ArtifactValidation, rejects_trailing_bytes) {
  std::vector<uint8_t> file = validFile();
  file.resize(file.size() + 64);
  EXPECT_NE(validate(file).find("trailing bytes"), std::string::npos);
}

TEST(ArtifactValidation, rejects_program_that_fails_flatbuffers_verification) {
  std::vector<uint8_t> file = validFile();
  SectionEntry program = section(file, 0);
  std::memset(file.data() + program.offset, 0xff, 8);
  reseal(file);
  EXPECT_NE(validate(file).find("flatbuffers verification failed"), std::string::npos);
}

TEST(ArtifactValidation, rejects_buffer_size_not_matching_its_type) {
  EXPECT_EQ(programError([](ProgramDesc &p) { p.buffers[2].size = 20; }),
            "buffer 2: size is 20 bytes but its type needs 24");
}

TEST(ArtifactValidation, rejects_unknown_dtype) {
  EXPECT_EQ(programError([](ProgramDesc &p) { p.buffers[2].type.dtype = DType(77); }),
            "buffer 2: unknown dtype 77");
}

TEST(ArtifactValidation, rejects_negative_extent) {
  EXPECT_NE(programError([](ProgramDesc &p) { p.buffers[2].type.shape = {-1, 3}; })
                .find("buffer 2: dimension 0 has extent -1"),
            std::string::npos);
}

TEST(ArtifactValidation, rejects_strides_beyond_int32) {
  EXPECT_NE(programError([](ProgramDesc &p) {
              p.buffers[2].type.shape = {4, 1 << 20, 1 << 20};
            }).find("more than a Halide buffer can address"),
            std::string::npos);
}

TEST(ArtifactValidation, rejects_rank_above_the_limit) {
  EXPECT_EQ(programError([](ProgramDesc &p) {
              p.buffers[2].type.shape.assign(kMaxRank + 1, 1);
            }),
            "buffer 2: has 17 dimensions, more than the 16 supported");
}

TEST(ArtifactValidation, rejects_weight_outside_weights_section) {
  EXPECT_EQ(programError([](ProgramDesc &p) { p.buffers[3].offset = 64; }),
            "buffer 3: weight bytes [64, 88) lie outside the weights section (24 bytes)");
}

TEST(ArtifactValidation, rejects_weight_offset_overflow) {
  EXPECT_NE(programError([](ProgramDesc &p) { p.buffers[3].offset = UINT64_MAX - 63; })
                .find("lie outside the weights section"),
            std::string::npos);
}

TEST(ArtifactValidation, rejects_misaligned_weight) {
  EXPECT_EQ(programError([](ProgramDesc &p) { p.buffers[3].offset = 4; }),
            "buffer 3: weight offset 4 is not a multiple of 64");
}

TEST(ArtifactValidation, rejects_arena_buffer_past_arena_size) {
  EXPECT_EQ(programError([](ProgramDesc &p) { p.arenaSize = 80; }),
            "buffer 4: arena bytes [64, 88) lie outside the arena (80 bytes)");
}

TEST(ArtifactValidation, rejects_misaligned_arena_offset) {
  EXPECT_EQ(programError([](ProgramDesc &p) { p.buffers[4].offset = 32; }),
            "buffer 4: arena offset 32 is not a multiple of 64");
}

TEST(ArtifactValidation, rejects_arena_alignment_not_a_power_of_two) {
  EXPECT_NE(programError([](ProgramDesc &p) { p.arenaAlignment = 48; })
                .find("arena_alignment 48 is not a power of two"),
            std::string::npos);
}

TEST(ArtifactValidation, rejects_alias_of_missing_buffer) {
  EXPECT_EQ(programError([](ProgramDesc &p) { p.buffers[5].index = 99; }),
            "buffer 5: aliases buffer 99 but there are only 6 buffers");
}

TEST(ArtifactValidation, rejects_alias_of_different_byte_size) {
  EXPECT_EQ(programError([](ProgramDesc &p) {
              p.buffers[5].type.shape = {5};
              p.buffers[5].size = 20;
            }),
            "buffer 5: has 20 bytes but aliases buffer 4 of 24 bytes");
}

TEST(ArtifactValidation, rejects_alias_cycle) {
  EXPECT_EQ(programError([](ProgramDesc &p) {
              p.buffers[4] = p.buffers[5];
              p.buffers[4].index = 5;
              p.buffers[5].index = 4;
            }),
            "buffer 4: its alias chain loops");
}

TEST(ArtifactValidation, rejects_unknown_buffer_kind) {
  EXPECT_EQ(programError([](ProgramDesc &p) { p.buffers[2].kind = BufferKind(9); }),
            "buffer 2: unknown kind 9");
}

TEST(ArtifactValidation, rejects_dispatch_with_bad_kernel_index) {
  EXPECT_EQ(programError([](ProgramDesc &p) { p.entryPoints[0].dispatches[1].kernel = 7; }),
            "entry point 0 (main): dispatch 1 names kernel 7 but there are only 2 kernels");
}

TEST(ArtifactValidation, rejects_dispatch_argument_out_of_range) {
  EXPECT_EQ(
      programError([](ProgramDesc &p) { p.entryPoints[0].dispatches[0].args[2] = 6; }),
      "entry point 0 (main): dispatch 0 argument 2 names buffer 6 but there are only 6 "
      "buffers");
}

TEST(ArtifactValidation, rejects_dispatch_argument_count_mismatch) {
  EXPECT_EQ(
      programError([](ProgramDesc &p) { p.entryPoints[0].dispatches[0].args.pop_back(); }),
      "entry point 0 (main): dispatch 0 passes 2 arguments to kernel 0 (add), which takes 3");
}

TEST(ArtifactValidation, rejects_dispatch_writing_a_weight) {
  EXPECT_EQ(
      programError([](ProgramDesc &p) { p.entryPoints[0].dispatches[1].args[2] = 3; }),
      "entry point 0 (main): dispatch 1 writes its last argument, buffer 3, which is a "
      "weight (weights are read-only)");
}

TEST(ArtifactValidation, accepts_printable_utf8_dispatch_locations) {
  EXPECT_EQ(programError([](ProgramDesc &p) {
              p.entryPoints[0].dispatches[0].location = "blk.0.ffn_up";
              p.entryPoints[0].dispatches[1].location = "caf\xc3\xa9 \xe2\x86\x92 \xf0\x9f\x94\xa5";
              p.entryPoints[0].dispatches[1].summary = "matmul 1x1024x640 q4_k +2";
            }),
            "");
}

TEST(ArtifactValidation, rejects_dispatch_text_with_control_characters_or_bad_utf8) {
  // An escape sequence, DEL, a C1 control (U+0085), a NUL inside the string, a lone
  // continuation byte, an overlong '/', a surrogate, a truncated sequence.
  for (std::string location :
       {std::string("\x1b[2J"), std::string("a\x7f"), std::string("\xc2\x85"),
        std::string("a\0b", 3), std::string("\x80"), std::string("\xc0\xaf"),
        std::string("\xed\xa0\x80"), std::string("\xe2\x86")})
    EXPECT_EQ(programError([&](ProgramDesc &p) {
                p.entryPoints[0].dispatches[1].location = location;
              }),
              "entry point 0 (main): dispatch 1: its location is not printable UTF-8")
        << "location bytes: " << ::testing::PrintToString(location);
  EXPECT_EQ(programError([](ProgramDesc &p) {
              p.entryPoints[0].dispatches[0].summary = "matmul\n";
            }),
            "entry point 0 (main): dispatch 0: its summary is not printable UTF-8");
}

TEST(ArtifactValidation, rejects_input_buffer_beyond_entry_inputs) {
  EXPECT_EQ(programError([](ProgramDesc &p) { p.entryPoints[0].inputs.pop_back(); }),
            "entry point 0 (main): dispatch 0 argument 1 reads entry input 1 (via buffer 1) "
            "but the entry point has 1 inputs");
}

TEST(ArtifactValidation, rejects_entry_input_that_is_not_its_input_buffer) {
  EXPECT_EQ(programError([](ProgramDesc &p) { p.entryPoints[0].inputs[1].buffer = 0; }),
            "entry point 0 (main): input 1 (b) is buffer 0, which is not an Input buffer "
            "with index 1");
}

TEST(ArtifactValidation, rejects_entry_output_out_of_range) {
  EXPECT_EQ(programError([](ProgramDesc &p) { p.entryPoints[0].outputs[0].buffer = 40; }),
            "entry point 0 (main): output 0 names buffer 40 but there are only 6 buffers");
}

TEST(ArtifactValidation, rejects_duplicate_input_names) {
  EXPECT_EQ(programError([](ProgramDesc &p) { p.entryPoints[0].inputs[1].name = "a"; }),
            "entry point 0 (main): inputs 0 and 1 are both named \"a\"");
}

TEST(ArtifactValidation, rejects_duplicate_entry_point_names) {
  EXPECT_EQ(programError([](ProgramDesc &p) { p.entryPoints.push_back(p.entryPoints[0]); }),
            "entry point 1 (main): the name is also entry point 0's");
}

TEST(ArtifactValidation, rejects_kernel_name_that_is_not_an_identifier) {
  EXPECT_EQ(programError([](ProgramDesc &p) { p.kernels[1].name = "scale-2"; }),
            "kernel 1: name \"scale-2\" is not a C identifier");
}

TEST(ArtifactValidation, rejects_two_kernels_of_one_name) {
  EXPECT_EQ(programError([](ProgramDesc &p) { p.kernels[1].name = p.kernels[0].name; }),
            "kernel 1: the name \"add\" is also kernel 0's");
}

TEST(ArtifactValidation, rejects_code_object_section_out_of_range) {
  EXPECT_EQ(programError([](ProgramDesc &p) { p.codeObjects[0].section = 3; }),
            "code object 0 (cpu): names section 3 but there are only 3 sections");
}

TEST(ArtifactValidation, rejects_code_object_naming_a_non_code_section) {
  EXPECT_EQ(programError([](ProgramDesc &p) { p.codeObjects[0].section = 1; }),
            "code object 0 (cpu): names section 1 (weights), which is not a code section");
}

TEST(ArtifactValidation, rejects_kernels_without_code_object) {
  EXPECT_EQ(programError([](ProgramDesc &p) { p.codeObjects.clear(); }),
            "program has 2 kernels but no code object");
}

TEST(ArtifactValidation, accepts_kernels_with_code_for_another_device_only) {
  ArtifactWriter writer = makeAddArtifact(code());
  writer.program().codeObjects[0].device = "cuda";
  std::vector<uint8_t> file = writer.serialize();
  ArtifactView view;
  ArtifactError err = validateArtifact(file.data(), file.size(), &view);
  ASSERT_FALSE(err) << err.message;
  EXPECT_TRUE(view.codeFor("cpu").empty());
  ASSERT_EQ(view.codeFor("cuda").size(), 1u);
  EXPECT_EQ(view.codeFor("cuda")[0]->bytes.size, code().size());
}

TEST(ArtifactValidation, keeps_a_cuda_code_object_per_architecture) {
  ArtifactWriter writer = makeAddArtifact(code());
  writer.addCodeObject("cuda", "x86-64-linux-cuda-cuda_capability_80", "elf-shared-object", code());
  writer.addCodeObject("cuda", "x86-64-linux-cuda-cuda_capability_86", "elf-shared-object", code());
  std::vector<uint8_t> file = writer.serialize();
  ArtifactView view;
  ArtifactError err = validateArtifact(file.data(), file.size(), &view);
  ASSERT_FALSE(err) << err.message;
  EXPECT_EQ(view.code.size(), 3u);
  ASSERT_EQ(view.codeFor("cuda").size(), 2u);
  EXPECT_EQ(view.codeFor("cuda")[1]->object->target()->str(),
            "x86-64-linux-cuda-cuda_capability_86");
}

TEST(ArtifactValidation, rejects_two_cpu_code_objects) {
  ArtifactWriter writer = makeAddArtifact(code());
  writer.addCodeObject("cpu", "x86-64-linux", "elf-shared-object", code());
  EXPECT_EQ(validate(writer.serialize()),
            "code object 1 (cpu): the artifact has more than one cpu code object");
}

TEST(ArtifactValidation, checks_each_known_devices_code_format) {
  EXPECT_EQ(programError([](ProgramDesc &p) {
              p.codeObjects[0].device = "cuda";
              p.codeObjects[0].format = "macho-dylib";
            }),
            "code object 0 (cuda): unsupported format \"macho-dylib\" (expected "
            "\"elf-shared-object\")");
  EXPECT_EQ(programError([](ProgramDesc &p) { p.codeObjects[0].device = "metal"; }),
            "code object 0 (metal): unsupported format \"elf-shared-object\" (expected "
            "\"macho-dylib\")");
  EXPECT_EQ(programError([](ProgramDesc &p) {
              p.codeObjects[0].device = "metal";
              p.codeObjects[0].format = "macho-dylib";
            }),
            "");
}

TEST(ArtifactValidation, leaves_an_unknown_devices_code_format_to_its_runtime) {
  EXPECT_EQ(programError([](ProgramDesc &p) {
              p.codeObjects[0].device = "vulkan";
              p.codeObjects[0].format = "spir-v";
            }),
            "");
}

TEST(ArtifactValidation, rejects_unsupported_code_object_format) {
  EXPECT_EQ(programError([](ProgramDesc &p) { p.codeObjects[0].format = "mach-o"; }),
            "code object 0 (cpu): unsupported format \"mach-o\" (expected "
            "\"elf-shared-object\")");
}

TEST(ArtifactWriter, aligns_weights_to_64_bytes) {
  ArtifactWriter writer;
  uint8_t bytes[3] = {1, 2, 3};
  EXPECT_EQ(writer.addWeights(bytes, 3), 0u);
  EXPECT_EQ(writer.addWeights(bytes, 3), 64u);
  EXPECT_EQ(writer.addWeights(bytes, 0), 128u);
}

TEST(ArtifactWriter, refuses_to_write_an_invalid_artifact) {
  ArtifactWriter writer = makeAddArtifact(code());
  writer.program().buffers[3].offset = 64;
  std::string path = ::testing::TempDir() + "/invalid.kiln";
  ArtifactError err = writer.writeFile(path);
  EXPECT_NE(err.message.find("refusing to write an invalid artifact"), std::string::npos);
  EXPECT_TRUE(kiln::test::readFile(path).empty());
}

TEST(ArtifactWriter, writes_the_serialized_bytes) {
  ArtifactWriter writer = makeAddArtifact(code());
  std::string path = ::testing::TempDir() + "/add.kiln";
  ArtifactError err = writer.writeFile(path);
  ASSERT_FALSE(err) << err.message;
  EXPECT_EQ(kiln::test::readFile(path), writer.serialize());
}

// ---- library calls ------------------------------------------------------------------

namespace {

// The add artifact's kernel "add" as a cublas.gemm of C (2x3) = A (2x1) . B (1x3): its
// dispatches' f32[2x3] buffers (24 bytes) hold A's 8 and B's 12 bytes, and C exactly.
LibraryCallDesc gemmCall() {
  return LibraryCallDesc{std::string(kCublasGemm), 0, 1, 2, 1, 2, 3, 1, 2, 3, false, "f32"};
}

std::string libraryCallError(const std::function<void(LibraryCallDesc &)> &edit) {
  return programError([&](ProgramDesc &p) {
    p.kernels[0].library = gemmCall();
    edit(p.kernels[0].library);
  });
}

} // namespace

TEST(ArtifactValidation, accepts_a_library_call_and_ignores_unknown_functions) {
  EXPECT_EQ(libraryCallError([](LibraryCallDesc &) {}), "");
  EXPECT_EQ(libraryCallError([](LibraryCallDesc &call) {
              call = LibraryCallDesc{"rocblas.gemm", 7, 7, 7, 0, 0, 0, 0, 0, 0, false, "f8"};
            }),
            "")
      << "a newer compiler's call: the kernel runs";
  std::vector<uint8_t> file = validFile();
  ArtifactView view;
  ASSERT_FALSE(validateArtifact(file.data(), file.size(), &view));
  EXPECT_EQ(knownLibraryCall(*view.program->kernels()->Get(0)), nullptr);
}

TEST(ArtifactValidation, rejects_library_call_fields_cublas_cannot_take) {
  const std::string at = "kernel 0 (add): library call cublas.gemm: ";
  EXPECT_EQ(libraryCallError([](LibraryCallDesc &call) { call.c = 3; }),
            at + "c is argument 3 but the kernel takes 3");
  EXPECT_EQ(libraryCallError([](LibraryCallDesc &call) { call.c = 0; }),
            at + "c is argument 0, which is also a (cuBLAS does not write its inputs)");
  EXPECT_EQ(libraryCallError([](LibraryCallDesc &call) { call.m = 0; }),
            at + "m is 0 (must be 1 to 2147483647, cuBLAS's int)");
  EXPECT_EQ(libraryCallError([](LibraryCallDesc &call) { call.batch = 1u << 31; }),
            at + "batch is 2147483648 (must be 1 to 2147483647, cuBLAS's int)");
  EXPECT_EQ(libraryCallError([](LibraryCallDesc &call) { call.bBatchStride = UINT64_MAX; }),
            at + "b_batch_stride is 18446744073709551615, more than cuBLAS's long long");
  EXPECT_EQ(libraryCallError([](LibraryCallDesc &call) { call.compute = "f16"; }),
            at + "unknown compute \"f16\" (expected f32 or tf32)");
}

TEST(ArtifactValidation, rejects_library_call_operands_that_do_not_fit) {
  const std::string at = "entry point 0 (main): dispatch 0: kernel 0 (add) calls cublas.gemm: ";
  EXPECT_EQ(libraryCallError([](LibraryCallDesc &call) { call.n = 2; }),
            at + "its C (argument 2, buffer 2) has 24 bytes but the call writes 16");
  EXPECT_EQ(libraryCallError([](LibraryCallDesc &call) {
              call = LibraryCallDesc{std::string(kCublasGemm), 0, 1, 2, 2, 1, 3, 1, 6, 0};
            }),
            at + "its A (argument 0, buffer 0) has 24 bytes but the call reads 28");
  EXPECT_EQ(libraryCallError([](LibraryCallDesc &call) {
              call = LibraryCallDesc{std::string(kCublasGemm), 0, 1, 2, 2, 1, 3, 1, 1, 1ull << 62};
            }),
            at + "its B (argument 1, buffer 1) would span more bytes than a 64-bit size holds");
  EXPECT_EQ(programError([](ProgramDesc &p) {
              p.kernels[0].library = gemmCall();
              p.buffers[0].type.dtype = DType::I32;
            }),
            at + "its A (argument 0, buffer 0) is i32, not f32");
  EXPECT_EQ(programError([](ProgramDesc &p) {
              p.kernels[0].library = gemmCall();
              p.entryPoints[0].dispatches[0].args = {0, 1, 5};
              p.entryPoints[0].dispatches[1].args = {2, 3, 4};
              p.buffers[5] = BufferDesc{TensorDesc{DType::F32, {6}}, BufferKind::Alias, 0, 0, 24};
            }),
            at + "its C (buffer 5) is the bytes of its A or B (cuBLAS does not write its inputs)");
}
