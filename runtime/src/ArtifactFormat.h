// The byte layout of a .kiln file around its flatbuffers program: header, section
// table, and the section kinds. Shared by the writer (compiler side) and the reader
// (runtime); plain C++ with no dependencies so the runtime can include it.
//
//   offset 0   FileHeader (64 bytes)
//   64         SectionEntry[section_count] (32 bytes each)
//   ...        sections, each starting at a multiple of 64 bytes
//
// All integers are little-endian. Checksums are XXH64 (seed 0) of the bytes they cover;
// the header checksum covers the header and the section table with the
// header_checksum field itself set to zero.
#ifndef KILN_RUNTIME_ARTIFACTFORMAT_H
#define KILN_RUNTIME_ARTIFACTFORMAT_H

#include <cstdint>

namespace kiln::artifact {

constexpr char kMagic[8] = {'K', 'I', 'L', 'N', 'A', 'R', 'T', '\0'};
constexpr uint32_t kFormatVersion = 1;
constexpr uint64_t kSectionAlignment = 64;
constexpr uint64_t kWeightAlignment = 64;

enum class SectionKind : uint32_t {
  Program = 1, // the flatbuffers Program (runtime/schema/artifact.fbs)
  Weights = 2, // weight bytes; Buffer.offset values index into it
  Code = 3,    // a code object; CodeObject.section names it
};

struct FileHeader {
  char magic[8];
  uint32_t format_version;
  uint32_t section_count;
  uint64_t file_size;
  char target[24]; // NUL-terminated, informational (the program's target is authoritative)
  uint64_t header_checksum;
  uint64_t reserved;
};
static_assert(sizeof(FileHeader) == 64);

struct SectionEntry {
  uint32_t kind;
  uint32_t flags; // 0 today
  uint64_t offset;
  uint64_t size;
  uint64_t checksum;
};
static_assert(sizeof(SectionEntry) == 32);

} // namespace kiln::artifact

#endif // KILN_RUNTIME_ARTIFACTFORMAT_H
