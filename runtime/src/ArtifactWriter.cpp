// Serialization of a .kiln artifact: program section (flatbuffers), weights section,
// code sections, then the header and section table with their checksums.
#include "ArtifactWriter.h"

#include "DTypeTable.h"
#include "Text.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace kiln::artifact {
namespace {

// Sections are always written in this order: program (0), weights (1, possibly
// empty), then one per code object.
constexpr uint32_t kFirstCodeSection = 2;

uint64_t alignUp(uint64_t value, uint64_t alignment) {
  return (value + alignment - 1) / alignment * alignment;
}

flatbuffers::Offset<TensorType> build(flatbuffers::FlatBufferBuilder &fbb,
                                      const TensorDesc &type) {
  return CreateTensorTypeDirect(fbb, type.dtype, &type.shape);
}

flatbuffers::Offset<flatbuffers::Vector<flatbuffers::Offset<Value>>>
build(flatbuffers::FlatBufferBuilder &fbb, const std::vector<ValueDesc> &values) {
  std::vector<flatbuffers::Offset<Value>> out;
  for (const ValueDesc &v : values)
    out.push_back(CreateValueDirect(fbb, v.name.c_str(), v.buffer));
  return fbb.CreateVector(out);
}

ArtifactError systemError(const std::string &what, const std::string &path) {
  return ArtifactError{cat("cannot ", what, " ", path, ": ", std::strerror(errno))};
}

} // namespace

uint64_t byteSize(const TensorDesc &type) {
  const runtime::DTypeInfo *dtype = runtime::findDType(type.dtype);
  if (!dtype)
    return 0;
  uint64_t elements = 1;
  for (int64_t extent : type.shape)
    elements *= uint64_t(extent);
  return elements * dtype->bytes;
}

uint64_t ArtifactWriter::addWeights(const void *data, size_t size) {
  uint64_t offset = alignUp(weights.size(), kWeightAlignment);
  weights.resize(offset);
  const auto *bytes = static_cast<const uint8_t *>(data);
  weights.insert(weights.end(), bytes, bytes + size);
  return offset;
}

uint32_t ArtifactWriter::addCodeObject(std::string device, std::string target,
                                       std::string format, std::vector<uint8_t> bytes) {
  uint32_t section = kFirstCodeSection + uint32_t(codeSections.size());
  codeSections.push_back(std::move(bytes));
  programDesc.codeObjects.push_back(
      CodeObjectDesc{std::move(device), std::move(target), std::move(format), section});
  return section;
}

std::vector<uint8_t> serializeProgram(const ProgramDesc &p) {
  flatbuffers::FlatBufferBuilder fbb;
  std::vector<flatbuffers::Offset<Buffer>> buffers;
  for (const BufferDesc &b : p.buffers)
    buffers.push_back(CreateBuffer(fbb, build(fbb, b.type), b.kind, b.index, b.offset, b.size));
  std::vector<flatbuffers::Offset<Kernel>> kernels;
  for (const KernelDesc &k : p.kernels) {
    const LibraryCallDesc &l = k.library;
    auto library = l.function.empty()
                       ? 0
                       : CreateLibraryCallDirect(fbb, l.function.c_str(), l.a, l.b, l.c, l.batch,
                                                 l.m, l.n, l.k, l.aBatchStride, l.bBatchStride,
                                                 l.transposeB, l.compute.c_str());
    kernels.push_back(CreateKernelDirect(fbb, k.name.c_str(), k.numArgs, library));
  }
  std::vector<flatbuffers::Offset<EntryPoint>> entries;
  for (const EntryPointDesc &e : p.entryPoints) {
    std::vector<flatbuffers::Offset<Dispatch>> dispatches;
    for (const DispatchDesc &d : e.dispatches)
      dispatches.push_back(CreateDispatch(
          fbb, d.kernel, fbb.CreateVector(d.args), d.flops, d.bytes,
          d.location.empty() ? 0 : fbb.CreateString(d.location),
          d.summary.empty() ? 0 : fbb.CreateString(d.summary)));
    auto inputs = build(fbb, e.inputs);
    auto outputs = build(fbb, e.outputs);
    entries.push_back(CreateEntryPoint(fbb, fbb.CreateString(e.name), inputs, outputs,
                                       fbb.CreateVector(dispatches)));
  }
  std::vector<flatbuffers::Offset<CodeObject>> codeObjects;
  for (const CodeObjectDesc &c : p.codeObjects)
    codeObjects.push_back(CreateCodeObjectDirect(fbb, c.device.c_str(), c.target.c_str(),
                                                 c.format.c_str(), c.section));
  fbb.Finish(CreateProgramDirect(fbb, p.compilerVersion.c_str(), p.target.c_str(),
                                 p.arenaSize, p.arenaAlignment, &buffers, &kernels,
                                 &entries, &codeObjects),
             ProgramIdentifier());
  return std::vector<uint8_t>(fbb.GetBufferPointer(), fbb.GetBufferPointer() + fbb.GetSize());
}

std::vector<uint8_t> ArtifactWriter::serialize() const {
  std::vector<uint8_t> program = serializeProgram(programDesc);
  std::vector<const std::vector<uint8_t> *> contents = {&program, &weights};
  std::vector<uint32_t> kinds = {uint32_t(SectionKind::Program),
                                 uint32_t(SectionKind::Weights)};
  for (const std::vector<uint8_t> &code : codeSections) {
    contents.push_back(&code);
    kinds.push_back(uint32_t(SectionKind::Code));
  }

  FileHeader header{};
  std::memcpy(header.magic, kMagic, sizeof kMagic);
  header.format_version = kFormatVersion;
  header.section_count = uint32_t(contents.size());
  std::strncpy(header.target, programDesc.target.c_str(), sizeof header.target - 1);

  std::vector<SectionEntry> table(contents.size());
  uint64_t offset = sizeof(FileHeader) + table.size() * sizeof(SectionEntry);
  for (size_t i = 0; i < contents.size(); ++i) {
    offset = alignUp(offset, kSectionAlignment);
    table[i] = SectionEntry{kinds[i], 0, offset, contents[i]->size(),
                            checksum(contents[i]->data(), contents[i]->size())};
    offset += contents[i]->size();
  }
  header.file_size = offset;

  std::vector<uint8_t> file(offset, 0);
  std::memcpy(file.data(), &header, sizeof header);
  std::memcpy(file.data() + sizeof header, table.data(), table.size() * sizeof(SectionEntry));
  for (size_t i = 0; i < contents.size(); ++i)
    if (!contents[i]->empty())
      std::memcpy(file.data() + table[i].offset, contents[i]->data(), contents[i]->size());
  // The header checksum covers header and table with the checksum field zero (as now).
  header.header_checksum =
      checksum(file.data(), sizeof header + table.size() * sizeof(SectionEntry));
  std::memcpy(file.data(), &header, sizeof header);
  return file;
}

ArtifactError ArtifactWriter::writeFile(const std::string &path) const {
  std::vector<uint8_t> file = serialize();
  if (auto err = validateArtifact(file.data(), file.size(), nullptr))
    return ArtifactError{cat("refusing to write an invalid artifact to ", path, ": ",
                             err.message)};
  std::string temp = path + ".tmp.XXXXXX";
  int fd = mkstemp(temp.data());
  if (fd < 0)
    return systemError("create a temporary file for", path);
  const uint8_t *data = file.data();
  size_t left = file.size();
  while (left > 0) {
    ssize_t written = ::write(fd, data, left);
    if (written < 0 && errno == EINTR)
      continue;
    if (written <= 0) {
      ArtifactError err = systemError("write", temp);
      ::close(fd);
      ::unlink(temp.c_str());
      return err;
    }
    data += written;
    left -= size_t(written);
  }
  if (::fchmod(fd, 0644) != 0 || ::fsync(fd) != 0) {
    ArtifactError err = systemError("finish writing", temp);
    ::close(fd);
    ::unlink(temp.c_str());
    return err;
  }
  ::close(fd);
  if (std::rename(temp.c_str(), path.c_str()) != 0) {
    ArtifactError err = systemError("rename the temporary file to", path);
    ::unlink(temp.c_str());
    return err;
  }
  return {};
}

} // namespace kiln::artifact
