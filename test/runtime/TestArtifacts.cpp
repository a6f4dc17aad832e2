// Builders for the runtime tests' artifacts (see TestArtifacts.h).
#include "TestArtifacts.h"

#include <cstring>
#include <fstream>
#include <iterator>

namespace kiln::test {

using namespace kiln::artifact;

namespace {

constexpr const char *kTarget = "x86-64-linux";

TensorDesc f32(std::vector<int64_t> shape) { return TensorDesc{DType::F32, std::move(shape)}; }

BufferDesc buffer(TensorDesc type, BufferKind kind, uint32_t index, uint64_t offset) {
  uint64_t size = byteSize(type);
  return BufferDesc{std::move(type), kind, index, offset, size};
}

void addCode(ArtifactWriter &writer, const std::vector<uint8_t> &code) {
  writer.addCodeObject("cpu", kTarget, "elf-shared-object", code);
  writer.program().target = kTarget;
  writer.program().compilerVersion = "kiln-test";
}

} // namespace

std::vector<uint8_t> readFile(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), {});
}

ArtifactWriter makeAddArtifact(const std::vector<uint8_t> &code) {
  ArtifactWriter writer;
  float bias[6];
  for (int k = 0; k < 6; ++k)
    bias[k] = 100.0f + float(k);
  uint64_t biasOffset = writer.addWeights(bias, sizeof bias);
  addCode(writer, code);
  ProgramDesc &p = writer.program();
  p.arenaSize = 128;
  p.buffers = {
      buffer(f32({2, 3}), BufferKind::Input, 0, 0),         // 0: a
      buffer(f32({2, 3}), BufferKind::Input, 1, 0),         // 1: b
      buffer(f32({2, 3}), BufferKind::Arena, 0, 0),         // 2: a + b
      buffer(f32({2, 3}), BufferKind::Weight, 0, biasOffset), // 3: bias
      buffer(f32({2, 3}), BufferKind::Arena, 0, 64),        // 4: sum
      buffer(f32({6}), BufferKind::Alias, 4, 0),            // 5: sum, flat
  };
  p.kernels = {{"add", 3}, {"scale2", 2}};
  p.entryPoints = {EntryPointDesc{"main",
                                  {{"a", 0}, {"b", 1}},
                                  {{"sum", 4}, {"sum_flat", 5}, {"bias", 3}},
                                  {{0, {0, 1, 2}}, {0, {2, 3, 4}}}}};
  return writer;
}

ArtifactWriter makeSingleKernelArtifact(const std::vector<uint8_t> &code,
                                        const std::string &kernel,
                                        const std::vector<TensorDesc> &inputs,
                                        const std::vector<TensorDesc> &outputs) {
  ArtifactWriter writer;
  addCode(writer, code);
  ProgramDesc &p = writer.program();
  EntryPointDesc entry{"main", {}, {}, {{0, {}}}};
  for (const TensorDesc &type : inputs) {
    uint32_t id = uint32_t(p.buffers.size());
    p.buffers.push_back(buffer(type, BufferKind::Input, uint32_t(entry.inputs.size()), 0));
    entry.inputs.push_back({"in" + std::to_string(entry.inputs.size()), id});
    entry.dispatches[0].args.push_back(id);
  }
  for (const TensorDesc &type : outputs) {
    uint32_t id = uint32_t(p.buffers.size());
    p.buffers.push_back(buffer(type, BufferKind::Arena, 0, p.arenaSize));
    p.arenaSize += (p.buffers.back().size + 63) / 64 * 64;
    entry.outputs.push_back({"out" + std::to_string(entry.outputs.size()), id});
    entry.dispatches[0].args.push_back(id);
  }
  p.kernels = {{kernel, uint32_t(inputs.size() + outputs.size())}};
  p.entryPoints = {std::move(entry)};
  return writer;
}

void reseal(std::vector<uint8_t> &file) {
  FileHeader header;
  std::memcpy(&header, file.data(), sizeof header);
  uint64_t tableEnd = sizeof header + uint64_t(header.section_count) * sizeof(SectionEntry);
  if (tableEnd > file.size())
    return; // nothing to checksum: the loader reports the truncated section table first
  for (uint32_t i = 0; i < header.section_count; ++i) {
    SectionEntry entry;
    uint8_t *at = file.data() + sizeof header + i * sizeof(SectionEntry);
    std::memcpy(&entry, at, sizeof entry);
    if (entry.offset > file.size() || entry.size > file.size() - entry.offset)
      continue; // nothing to checksum: the test wants the out-of-file section reported
    entry.checksum = checksum(file.data() + entry.offset, entry.size);
    std::memcpy(at, &entry, sizeof entry);
  }
  header.header_checksum = 0;
  std::memcpy(file.data(), &header, sizeof header);
  header.header_checksum = checksum(file.data(), tableEnd);
  std::memcpy(file.data(), &header, sizeof header);
}

} // namespace kiln::test
