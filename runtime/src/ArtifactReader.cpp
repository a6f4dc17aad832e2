// Validation of a .kiln artifact: layout, checksums, then the program's contents, in
// that order, so each step may rely on what the previous ones established.
#include "ArtifactReader.h"

#include "DTypeTable.h"
#include "Text.h"

#include <algorithm>
#include <cstring>
#include <iterator>
#include <limits>
#include <string_view>
#include <unordered_map>

#define XXH_INLINE_ALL
#include <xxhash.h>

namespace kiln::artifact {
namespace {

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "the .kiln layout is little-endian and read in place");

// Halide addresses every dimension with int32 strides; arena alignment beyond a page
// would need more than the page alignment sessions get from mmap.
constexpr uint64_t kMaxStride = std::numeric_limits<int32_t>::max();
constexpr uint32_t kMaxArenaAlignment = 4096;

// The devices whose code objects this reader checks, and the format of each: the CPU
// and CUDA objects are host shared objects (a CUDA one embeds its kernels' PTX), a
// Metal one a macOS dylib.
struct DeviceFormat {
  std::string_view device, format;
};
constexpr DeviceFormat kDeviceFormats[] = {
    {"cpu", "elf-shared-object"},
    {"cuda", "elf-shared-object"},
    {"metal", "macho-dylib"},
};

template <typename... Parts> ArtifactError fail(const Parts &...parts) {
  return ArtifactError{cat(parts...)};
}

std::string sectionName(size_t index, uint32_t kind) {
  return cat("section ", index, " (", sectionKindName(kind), ")");
}

std::string_view str(const flatbuffers::String *s) {
  return s ? std::string_view(s->c_str(), s->size()) : std::string_view();
}

template <typename T> uint32_t count(const flatbuffers::Vector<T> *v) {
  return v ? v->size() : 0;
}

bool isIdentifier(std::string_view name) {
  if (name.empty() || (name[0] >= '0' && name[0] <= '9'))
    return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '_';
  });
}

// Well-formed UTF-8 without control characters (C0, DEL, C1): text that tools print to
// terminals must not carry escape sequences.
bool isPrintableUtf8(std::string_view text) {
  for (size_t i = 0; i < text.size();) {
    auto byte = [&](size_t k) { return uint8_t(text[k]); };
    uint8_t lead = byte(i);
    size_t length = lead < 0x80 ? 1 : lead >= 0xc2 && lead < 0xe0 ? 2
                                  : lead >= 0xe0 && lead < 0xf0   ? 3
                                  : lead >= 0xf0 && lead < 0xf5   ? 4
                                                                  : 0;
    if (length == 0 || i + length > text.size())
      return false;
    uint32_t code = length == 1 ? lead : lead & (0x7f >> length);
    for (size_t k = 1; k < length; ++k) {
      if ((byte(i + k) & 0xc0) != 0x80)
        return false;
      code = code << 6 | (byte(i + k) & 0x3f);
    }
    static const uint32_t kSmallest[] = {0, 0, 0x80, 0x800, 0x10000};
    if (code < kSmallest[length] || code > 0x10ffff || (code >= 0xd800 && code < 0xe000) ||
        code < 0x20 || (code >= 0x7f && code < 0xa0))
      return false;
    i += length;
  }
  return true;
}

// The header, the section table and every section's bounds and checksum. Fills the
// program, weights and code section ranges.
struct Sections {
  const uint8_t *file = nullptr;
  ByteRange program;
  ByteRange weights;
  std::vector<SectionEntry> entries;
};

ArtifactError validateLayout(const uint8_t *data, size_t size, Sections &out) {
  out.file = data;
  if (size < sizeof(FileHeader))
    return fail("artifact truncated: the file has ", size, " bytes but the header needs ",
                sizeof(FileHeader));
  FileHeader header;
  std::memcpy(&header, data, sizeof header);
  if (std::memcmp(header.magic, kMagic, sizeof kMagic) != 0)
    return fail("not a kiln artifact: the file does not start with the magic \"KILNART\"");
  if (header.format_version != kFormatVersion)
    return fail("unsupported artifact format version ", header.format_version,
                " (this runtime reads version ", kFormatVersion, ")");
  uint64_t tableEnd =
      sizeof(FileHeader) + uint64_t(header.section_count) * sizeof(SectionEntry);
  if (tableEnd > size)
    return fail("artifact truncated: the section table (", header.section_count,
                " entries) ends at byte ", tableEnd, " but the file has ", size, " bytes");

  std::vector<uint8_t> covered(data, data + tableEnd);
  std::memset(covered.data() + offsetof(FileHeader, header_checksum), 0, sizeof(uint64_t));
  uint64_t headerSum = checksum(covered.data(), covered.size());
  if (headerSum != header.header_checksum)
    return fail("artifact header checksum mismatch: stored ", hex(header.header_checksum),
                ", computed ", hex(headerSum), " (the header or section table is corrupt)");

  out.entries.resize(header.section_count);
  if (header.section_count)
    std::memcpy(out.entries.data(), data + sizeof(FileHeader),
                out.entries.size() * sizeof(SectionEntry));
  for (size_t i = 0; i < out.entries.size(); ++i) {
    const SectionEntry &s = out.entries[i];
    std::string name = sectionName(i, s.kind);
    if (s.kind < uint32_t(SectionKind::Program) || s.kind > uint32_t(SectionKind::Code))
      return fail("section ", i, " has unknown kind ", s.kind);
    if (s.flags != 0)
      return fail(name, " has unsupported flags ", hex(s.flags));
    if (s.offset % kSectionAlignment != 0)
      return fail(name, " starts at byte ", s.offset, ", which is not a multiple of ",
                  kSectionAlignment);
    if (s.offset < tableEnd)
      return fail(name, " starts at byte ", s.offset,
                  ", inside the header and section table (which end at byte ", tableEnd,
                  ")");
    if (s.size > size || s.offset > size - s.size)
      return fail("artifact truncated: ", name, " ends at byte ",
                  s.offset + std::min<uint64_t>(s.size, UINT64_MAX - s.offset),
                  " but the file has ", size, " bytes");
  }
  if (header.file_size > size)
    return fail("artifact truncated: the header says the file has ", header.file_size,
                " bytes but it has ", size);
  if (header.file_size < size)
    return fail("artifact has ", size, " bytes but its header says ", header.file_size,
                " (trailing bytes)");

  std::vector<size_t> order(out.entries.size());
  for (size_t i = 0; i < order.size(); ++i)
    order[i] = i;
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return out.entries[a].offset < out.entries[b].offset;
  });
  for (size_t i = 1; i < order.size(); ++i) {
    const SectionEntry &prev = out.entries[order[i - 1]], &next = out.entries[order[i]];
    if (prev.offset + prev.size > next.offset)
      return fail(sectionName(order[i - 1], prev.kind), " and ",
                  sectionName(order[i], next.kind), " overlap");
  }
  // No checksum covers the padding between sections; requiring zeros there means no
  // byte of the file can change unnoticed.
  uint64_t cursor = tableEnd;
  for (size_t i = 0; i <= order.size(); ++i) {
    uint64_t next = i < order.size() ? out.entries[order[i]].offset : size;
    for (uint64_t at = cursor; at < next; ++at)
      if (data[at] != 0)
        return fail("byte ", at, " (padding outside any section) is not zero");
    if (i < order.size())
      cursor = out.entries[order[i]].offset + out.entries[order[i]].size;
  }

  for (size_t i = 0; i < out.entries.size(); ++i) {
    const SectionEntry &s = out.entries[i];
    uint64_t sum = checksum(data + s.offset, s.size);
    if (sum != s.checksum)
      return fail(sectionName(i, s.kind), " checksum mismatch: stored ", hex(s.checksum),
                  ", computed ", hex(sum), " (the section is corrupt)");
    ByteRange range{data + s.offset, s.size};
    if (s.kind == uint32_t(SectionKind::Program)) {
      if (out.program.data)
        return fail("artifact has more than one program section (", i, ")");
      out.program = range;
    } else if (s.kind == uint32_t(SectionKind::Weights)) {
      if (out.weights.data)
        return fail("artifact has more than one weights section (", i, ")");
      out.weights = range;
    }
  }
  if (!out.program.data)
    return fail("artifact has no program section");
  return {};
}

// Everything in the program that refers to something else: buffers to sections, the
// arena and each other; dispatches to kernels and buffers; entry points to buffers;
// code objects to sections.
class ProgramValidator {
public:
  ProgramValidator(const Program &program, const Sections &sections, ArtifactView &view)
      : program(program), sections(sections), view(view) {}

  ArtifactError run() {
    uint32_t alignment = program.arena_alignment();
    if (alignment == 0 || alignment > kMaxArenaAlignment || (alignment & (alignment - 1)))
      return fail("program: arena_alignment ", alignment,
                  " is not a power of two between 1 and ", kMaxArenaAlignment);
    if (auto err = validateBuffers())
      return err;
    if (auto err = validateAliases())
      return err;
    if (auto err = validateKernels())
      return err;
    for (uint32_t i = 0; i < count(program.entry_points()); ++i)
      if (auto err = validateEntryPoint(i, *program.entry_points()->Get(i)))
        return err;
    return validateCodeObjects();
  }

private:
  const Buffer &buffer(uint32_t id) const { return *program.buffers()->Get(id); }

  ArtifactError validateBuffers() {
    uint32_t n = count(program.buffers());
    for (uint32_t i = 0; i < n; ++i) {
      const Buffer &b = buffer(i);
      uint64_t bytes = 0;
      if (auto err = tensorByteSize(b.type(), &bytes))
        return fail("buffer ", i, ": ", err.message);
      if (b.size() != bytes)
        return fail("buffer ", i, ": size is ", b.size(), " bytes but its type needs ",
                    bytes);
      if (b.kind() > BufferKind::MAX)
        return fail("buffer ", i, ": unknown kind ", unsigned(b.kind()));
      switch (b.kind()) {
      case BufferKind::Input:
        break; // checked against each entry point that uses it
      case BufferKind::Weight:
        if (b.offset() % kWeightAlignment != 0)
          return fail("buffer ", i, ": weight offset ", b.offset(),
                      " is not a multiple of ", kWeightAlignment);
        if (b.offset() > sections.weights.size || b.size() > sections.weights.size - b.offset())
          return fail("buffer ", i, ": weight bytes [", b.offset(), ", ",
                      b.offset() + std::min(b.size(), UINT64_MAX - b.offset()),
                      ") lie outside the weights section (", sections.weights.size,
                      " bytes)");
        break;
      case BufferKind::Arena:
        if (b.offset() % program.arena_alignment() != 0)
          return fail("buffer ", i, ": arena offset ", b.offset(), " is not a multiple of ",
                      program.arena_alignment());
        if (b.offset() > program.arena_size() || b.size() > program.arena_size() - b.offset())
          return fail("buffer ", i, ": arena bytes [", b.offset(), ", ",
                      b.offset() + std::min(b.size(), UINT64_MAX - b.offset()),
                      ") lie outside the arena (", program.arena_size(), " bytes)");
        break;
      case BufferKind::State:
        if (b.index() >= n)
          return fail("buffer ", i, ": state slot ", b.index(), " is out of range (",
                      n, " buffers)");
        if (view.stateSizes.size() <= b.index())
          view.stateSizes.resize(b.index() + 1, 0);
        if (view.stateSizes[b.index()] != 0 && view.stateSizes[b.index()] != b.size())
          return fail("buffer ", i, ": state slot ", b.index(), " has ", b.size(),
                      " bytes here but ", view.stateSizes[b.index()], " elsewhere");
        view.stateSizes[b.index()] = b.size();
        break;
      case BufferKind::Alias:
        if (b.index() >= n)
          return fail("buffer ", i, ": aliases buffer ", b.index(), " but there are only ",
                      n, " buffers");
        if (buffer(b.index()).size() != b.size())
          return fail("buffer ", i, ": has ", b.size(), " bytes but aliases buffer ",
                      b.index(), " of ", buffer(b.index()).size(), " bytes");
        break;
      }
    }
    return {};
  }

  // Resolves alias chains to the buffer holding the bytes; a chain longer than the
  // buffer count must loop.
  ArtifactError validateAliases() {
    uint32_t n = count(program.buffers());
    view.storage.resize(n);
    for (uint32_t i = 0; i < n; ++i) {
      uint32_t id = i;
      for (uint32_t steps = 0; buffer(id).kind() == BufferKind::Alias; ++steps) {
        if (steps == n)
          return fail("buffer ", i, ": its alias chain loops");
        id = buffer(id).index();
      }
      view.storage[i] = id;
    }
    return {};
  }

  ArtifactError validateKernels() {
    std::unordered_map<std::string_view, uint32_t> byName;
    for (uint32_t i = 0; i < count(program.kernels()); ++i) {
      const Kernel &k = *program.kernels()->Get(i);
      if (!isIdentifier(str(k.name())))
        return fail("kernel ", i, ": name \"", std::string(str(k.name())),
                    "\" is not a C identifier");
      // The name is what binds a kernel to its code: two kernels of one name would run
      // one kernel's code on the other's arguments.
      auto [known, isNew] = byName.try_emplace(str(k.name()), i);
      if (!isNew)
        return fail("kernel ", i, ": the name \"", std::string(str(k.name())),
                    "\" is also kernel ", known->second, "'s");
      if (const LibraryCall *call = knownLibraryCall(k))
        if (auto err = validateLibraryCall(k, *call))
          return fail("kernel ", i, " (", std::string(str(k.name())), "): library call ",
                      std::string(kCublasGemm), ": ", err.message);
    }
    return {};
  }

  // The fields of a cublas.gemm call, as cuBLAS takes them: sizes as int, batch strides
  // as long long.
  static ArtifactError validateLibraryCall(const Kernel &kernel, const LibraryCall &call) {
    constexpr uint32_t kMaxInt = std::numeric_limits<int32_t>::max();
    constexpr uint64_t kMaxLongLong = std::numeric_limits<int64_t>::max();
    const std::pair<const char *, uint32_t> positions[] = {
        {"a", call.a()}, {"b", call.b()}, {"c", call.c()}};
    for (auto [name, position] : positions)
      if (position >= kernel.num_args())
        return fail(name, " is argument ", position, " but the kernel takes ",
                    kernel.num_args());
    if (call.c() == call.a() || call.c() == call.b())
      return fail("c is argument ", call.c(), ", which is also ",
                  call.c() == call.a() ? "a" : "b", " (cuBLAS does not write its inputs)");
    const std::pair<const char *, uint32_t> sizes[] = {
        {"batch", call.batch()}, {"m", call.m()}, {"n", call.n()}, {"k", call.k()}};
    for (auto [name, size] : sizes)
      if (size < 1 || size > kMaxInt)
        return fail(name, " is ", size, " (must be 1 to ", kMaxInt, ", cuBLAS's int)");
    const std::pair<const char *, uint64_t> strides[] = {
        {"a_batch_stride", call.a_batch_stride()}, {"b_batch_stride", call.b_batch_stride()}};
    for (auto [name, stride] : strides)
      if (stride > kMaxLongLong)
        return fail(name, " is ", stride, ", more than cuBLAS's long long");
    std::string_view compute = str(call.compute());
    if (compute != "f32" && compute != "tf32")
      return fail("unknown compute \"", std::string(compute), "\" (expected f32 or tf32)");
    return {};
  }

  // The buffers a dispatch gives a cublas.gemm call: f32, C exactly batch dense m x n
  // matrices, A and B at least as long as the call reads, C apart from both.
  ArtifactError validateLibraryOperands(const LibraryCall &call, const Dispatch &dispatch) {
    struct Operand {
      const char *name;
      uint32_t position;
      uint64_t stride, rows, columns;
    };
    const Operand operands[] = {
        {"A", call.a(), call.a_batch_stride(), call.m(), call.k()},
        {"B", call.b(), call.b_batch_stride(), call.k(), call.n()},
        {"C", call.c(), uint64_t(call.m()) * call.n(), call.m(), call.n()},
    };
    for (const Operand &o : operands) {
      uint32_t id = dispatch.args()->Get(o.position);
      const Buffer &b = buffer(id);
      std::string which = cat("its ", o.name, " (argument ", o.position, ", buffer ", id, ")");
      if (b.type()->dtype() != DType::F32)
        return fail(which, " is ", runtime::findDType(b.type()->dtype())->name,
                    ", not f32");
      // ((batch - 1) * stride + rows * columns) * 4 bytes; each size < 2^31.
      uint64_t elements = 0, bytes = 0;
      if (__builtin_mul_overflow(uint64_t(call.batch() - 1), o.stride, &elements) ||
          __builtin_add_overflow(elements, o.rows * o.columns, &elements) ||
          __builtin_mul_overflow(elements, uint64_t(4), &bytes))
        return fail(which, " would span more bytes than a 64-bit size holds");
      bool exact = o.position == call.c();
      if (exact ? b.size() != bytes : b.size() < bytes)
        return fail(which, " has ", b.size(), " bytes but the call ",
                    exact ? "writes " : "reads ", bytes);
    }
    uint32_t c = view.storage[dispatch.args()->Get(call.c())];
    if (c == view.storage[dispatch.args()->Get(call.a())] ||
        c == view.storage[dispatch.args()->Get(call.b())])
      return fail("its C (buffer ", dispatch.args()->Get(call.c()),
                  ") is the bytes of its A or B (cuBLAS does not write its inputs)");
    return {};
  }

  // `id` as used by entry point `entry`: in range, and an Input buffer's storage must
  // be one of the entry's inputs, with its byte size.
  ArtifactError validateUse(const std::string &where, const EntryPoint &entry, uint32_t id) {
    uint32_t n = count(program.buffers());
    if (id >= n)
      return fail(where, " names buffer ", id, " but there are only ", n, " buffers");
    const Buffer &storage = buffer(view.storage[id]);
    if (storage.kind() != BufferKind::Input)
      return {};
    uint32_t inputs = count(entry.inputs());
    if (storage.index() >= inputs)
      return fail(where, " reads entry input ", storage.index(), " (via buffer ", id,
                  ") but the entry point has ", inputs, " inputs");
    const Buffer &input = buffer(entry.inputs()->Get(storage.index())->buffer());
    if (storage.size() != input.size())
      return fail(where, " uses buffer ", view.storage[id], " of ", storage.size(),
                  " bytes as entry input ", storage.index(), ", which has ", input.size());
    return {};
  }

  ArtifactError validateEntryPoint(uint32_t e, const EntryPoint &entry) {
    std::string name(str(entry.name()));
    std::string where = cat("entry point ", e, " (", name, ")");
    if (name.empty())
      return fail("entry point ", e, ": has no name");
    for (uint32_t j = 0; j < e; ++j)
      if (str(program.entry_points()->Get(j)->name()) == name)
        return fail(where, ": the name is also entry point ", j, "'s");
    uint32_t n = count(program.buffers());
    for (uint32_t i = 0; i < count(entry.inputs()); ++i) {
      const Value &v = *entry.inputs()->Get(i);
      std::string vname(str(v.name()));
      if (vname.empty())
        return fail(where, ": input ", i, " has no name");
      for (uint32_t j = 0; j < i; ++j)
        if (str(entry.inputs()->Get(j)->name()) == vname)
          return fail(where, ": inputs ", j, " and ", i, " are both named \"", vname, "\"");
      if (v.buffer() >= n)
        return fail(where, ": input ", i, " names buffer ", v.buffer(),
                    " but there are only ", n, " buffers");
      const Buffer &b = buffer(v.buffer());
      if (b.kind() != BufferKind::Input || b.index() != i)
        return fail(where, ": input ", i, " (", vname, ") is buffer ", v.buffer(),
                    ", which is not an Input buffer with index ", i);
    }
    for (uint32_t i = 0; i < count(entry.outputs()); ++i) {
      const Value &v = *entry.outputs()->Get(i);
      if (str(v.name()).empty())
        return fail(where, ": output ", i, " has no name");
      if (auto err = validateUse(cat(where, ": output ", i), entry, v.buffer()))
        return err;
    }
    uint32_t kernels = count(program.kernels());
    for (uint32_t d = 0; d < count(entry.dispatches()); ++d) {
      const Dispatch &dispatch = *entry.dispatches()->Get(d);
      std::string at = cat(where, ": dispatch ", d);
      if (dispatch.kernel() >= kernels)
        return fail(at, " names kernel ", dispatch.kernel(), " but there are only ",
                    kernels, " kernels");
      const Kernel &k = *program.kernels()->Get(dispatch.kernel());
      if (count(dispatch.args()) != k.num_args())
        return fail(at, " passes ", count(dispatch.args()), " arguments to kernel ",
                    dispatch.kernel(), " (", std::string(str(k.name())), "), which takes ",
                    k.num_args());
      for (uint32_t a = 0; a < count(dispatch.args()); ++a)
        if (auto err = validateUse(cat(at, " argument ", a), entry, dispatch.args()->Get(a)))
          return err;
      // Arguments are inputs, then outputs, and a kernel has at least one output, so
      // the last one is written: never a weight, which lies in the module's read-only
      // bytes. (The program does not say how many outputs a kernel has, so earlier
      // outputs are not checked.)
      if (uint32_t args = count(dispatch.args())) {
        uint32_t last = dispatch.args()->Get(args - 1);
        if (buffer(view.storage[last]).kind() == BufferKind::Weight)
          return fail(at, " writes its last argument, buffer ", last,
                      ", which is a weight (weights are read-only)");
      }
      if (const LibraryCall *call = knownLibraryCall(k))
        if (auto err = validateLibraryOperands(*call, dispatch))
          return fail(at, ": kernel ", dispatch.kernel(), " (", std::string(str(k.name())),
                      ") calls ", std::string(kCublasGemm), ": ", err.message);
      if (!isPrintableUtf8(str(dispatch.location())))
        return fail(at, ": its location is not printable UTF-8");
      if (!isPrintableUtf8(str(dispatch.summary())))
        return fail(at, ": its summary is not printable UTF-8");
    }
    return {};
  }

  ArtifactError validateCodeObjects() {
    for (uint32_t i = 0; i < count(program.code_objects()); ++i) {
      const CodeObject &c = *program.code_objects()->Get(i);
      std::string device(str(c.device()));
      std::string where = cat("code object ", i, " (", device, ")");
      if (c.section() >= sections.entries.size())
        return fail(where, ": names section ", c.section(), " but there are only ",
                    sections.entries.size(), " sections");
      const SectionEntry &s = sections.entries[c.section()];
      if (s.kind != uint32_t(SectionKind::Code))
        return fail(where, ": names ", sectionName(c.section(), s.kind),
                    ", which is not a code section");
      // A device this reader does not know is another runtime's business: kept, but
      // its format is not checked.
      auto known = std::find_if(std::begin(kDeviceFormats), std::end(kDeviceFormats),
                                [&](const DeviceFormat &row) { return row.device == device; });
      if (known != std::end(kDeviceFormats) && str(c.format()) != known->format)
        return fail(where, ": unsupported format \"", std::string(str(c.format())),
                    "\" (expected \"", known->format, "\")");
      // One object per device, but for cuda: one per GPU architecture.
      if (device == "cpu" && !view.codeFor("cpu").empty())
        return fail(where, ": the artifact has more than one cpu code object");
      view.code.push_back(CodeObjectBytes{&c, ByteRange{sections.file + s.offset, s.size}});
    }
    uint32_t kernels = count(program.kernels());
    if (kernels && view.code.empty())
      return fail("program has ", kernels, " kernels but no code object");
    return {};
  }

  const Program &program;
  const Sections &sections;
  ArtifactView &view;
};

} // namespace

std::vector<const CodeObjectBytes *> ArtifactView::codeFor(std::string_view device) const {
  std::vector<const CodeObjectBytes *> found;
  for (const CodeObjectBytes &c : code)
    if (str(c.object->device()) == device)
      found.push_back(&c);
  return found;
}

const LibraryCall *knownLibraryCall(const Kernel &kernel) {
  const LibraryCall *call = kernel.library();
  return call && str(call->function()) == kCublasGemm ? call : nullptr;
}

uint64_t checksum(const void *data, size_t size) { return XXH64(data, size, 0); }

const char *sectionKindName(uint32_t kind) {
  switch (kind) {
  case uint32_t(SectionKind::Program):
    return "program";
  case uint32_t(SectionKind::Weights):
    return "weights";
  case uint32_t(SectionKind::Code):
    return "code";
  }
  return "unknown";
}

ArtifactError tensorByteSize(const TensorType *type, uint64_t *bytes) {
  if (!type)
    return fail("has no type");
  const runtime::DTypeInfo *dtype = runtime::findDType(type->dtype());
  if (!dtype)
    return fail("unknown dtype ", unsigned(type->dtype()));
  // Innermost first, as Halide strides run: each stride is the product of the extents
  // inside it.
  uint64_t elements = 1;
  uint32_t rank = count(type->shape());
  if (rank > kMaxRank)
    return fail("has ", rank, " dimensions, more than the ", kMaxRank, " supported");
  for (uint32_t i = rank; i-- > 0;) {
    int64_t extent = type->shape()->Get(i);
    if (extent < 0 || extent > int64_t(kMaxStride))
      return fail("dimension ", i, " has extent ", extent, " (must be 0 to ", kMaxStride,
                  ")");
    if (elements > kMaxStride)
      return fail("dimension ", i, " has a stride of ", elements,
                  " elements, more than a Halide buffer can address (", kMaxStride, ")");
    elements *= uint64_t(extent); // < 2^31 * 2^31: no overflow
  }
  if (__builtin_mul_overflow(elements, uint64_t(dtype->bytes), bytes))
    return fail("byte size overflows");
  return {};
}

ArtifactError validateArtifact(const uint8_t *data, size_t size, ArtifactView *view) {
  Sections sections;
  if (auto err = validateLayout(data, size, sections))
    return err;
  // flatbuffers' Verifier asserts on buffers of 2 GiB or more.
  if (sections.program.size >= FLATBUFFERS_MAX_BUFFER_SIZE)
    return fail("program section is ", sections.program.size,
                " bytes, more than flatbuffers can address");
  flatbuffers::Verifier verifier(sections.program.data, sections.program.size);
  if (!VerifyProgramBuffer(verifier))
    return fail("program section is not a valid kiln program (flatbuffers verification "
                "failed: corrupt, or written by an incompatible compiler)");
  ArtifactView local;
  local.program = GetProgram(sections.program.data);
  local.weights = sections.weights;
  if (auto err = ProgramValidator(*local.program, sections, local).run())
    return err;
  if (view)
    *view = std::move(local);
  return {};
}

} // namespace kiln::artifact
