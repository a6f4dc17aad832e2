// libFuzzer target for the artifact loader: any bytes must load or fail with a status,
// never crash. Each input is tried as given (exercising the layout and checksum
// checks) and with its program and weights checksums recomputed, so mutations reach
// the flatbuffers verifier and the program checks behind the checksums. Code sections
// are never resealed, and since libFuzzer can still forge a checksum from comparison
// feedback, this build never dlopens a code object (KILN_FUZZING_BUILD): a mutated ELF
// would test the system's dynamic loader, not kiln.
#include "ArtifactFormat.h"
#include "ArtifactReader.h"
#include "kiln/runtime.h"

#include <cstring>
#include <vector>

using namespace kiln::artifact;

namespace {

kiln_runtime *runtime() {
  static kiln_runtime *shared = [] {
    kiln_runtime_options options;
    kiln_runtime_options_init(&options);
    options.num_threads = 1;
    kiln_runtime *r = nullptr;
    kiln_status_free(kiln_runtime_create(&options, &r));
    return r;
  }();
  return shared;
}

void load(const uint8_t *data, size_t size) {
  kiln_module *module = nullptr;
  kiln_status status = kiln_module_load_memory(runtime(), data, size, KILN_LOAD_COPY, &module);
  if (status) {
    // Every failure carries a message.
    if (!kiln_status_message(status)[0])
      __builtin_trap();
    kiln_status_free(status);
    return;
  }
  for (size_t e = 0; e < kiln_module_entry_point_count(module); ++e) {
    kiln_session *session = nullptr;
    kiln_status_free(kiln_session_create(module, e, &session));
    kiln_session_release(session);
  }
  kiln_module_release(module);
}

// Recomputes the checksums of in-file program and weights sections, then the header's.
bool resealed(const uint8_t *data, size_t size, std::vector<uint8_t> &out) {
  if (size < sizeof(FileHeader))
    return false;
  out.assign(data, data + size);
  FileHeader header;
  std::memcpy(&header, out.data(), sizeof header);
  uint64_t tableEnd = sizeof header + uint64_t(header.section_count) * sizeof(SectionEntry);
  if (tableEnd > size)
    return false;
  for (uint32_t i = 0; i < header.section_count; ++i) {
    SectionEntry entry;
    uint8_t *at = out.data() + sizeof header + i * sizeof(SectionEntry);
    std::memcpy(&entry, at, sizeof entry);
    if (entry.kind == uint32_t(SectionKind::Code) || entry.offset > size ||
        entry.size > size - entry.offset)
      continue;
    entry.checksum = checksum(out.data() + entry.offset, entry.size);
    std::memcpy(at, &entry, sizeof entry);
  }
  header.header_checksum = 0;
  std::memcpy(out.data(), &header, sizeof header);
  header.header_checksum = checksum(out.data(), tableEnd);
  std::memcpy(out.data(), &header, sizeof header);
  return true;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  load(data, size);
  std::vector<uint8_t> fixed;
  if (resealed(data, size, fixed))
    load(fixed.data(), fixed.size());
  return 0;
}
