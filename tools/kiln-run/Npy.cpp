// .npy reading and writing; the format is specified in NumPy's NEP 1
// (numpy.lib.format): magic "\x93NUMPY", major and minor version, a little-endian
// header length (2 bytes in 1.0, 4 in 2.0/3.0), then a Python dict literal with the
// keys 'descr', 'fortran_order' and 'shape', padded with spaces and ended by '\n'.
#include "Npy.h"
#include "TensorComparison.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>
#include <limits>
#include <optional>

namespace kiln::tools {

namespace {

constexpr char kMagic[] = "\x93NUMPY";
constexpr size_t kMagicSize = 6;
// NumPy aligns the data to 64 bytes so it can be memory-mapped for any dtype.
constexpr size_t kHeaderAlignment = 64;

// Every .npy dtype spelling kiln understands. The first row of a dtype is the one
// written; the others are accepted spellings NumPy also produces.
struct NpyDTypeRow {
  const char *descr;
  kiln_dtype dtype;
};
constexpr NpyDTypeRow kNpyDTypes[] = {
    {"<f4", KILN_DTYPE_F32}, {"<f8", KILN_DTYPE_F64}, {"<f2", KILN_DTYPE_F16},
    {"|i1", KILN_DTYPE_I8},  {"<i1", KILN_DTYPE_I8},  {"<i2", KILN_DTYPE_I16},
    {"<i4", KILN_DTYPE_I32}, {"<i8", KILN_DTYPE_I64}, {"|u1", KILN_DTYPE_U8},
    {"<u1", KILN_DTYPE_U8},  {"<u2", KILN_DTYPE_U16}, {"<u4", KILN_DTYPE_U32},
    {"<u8", KILN_DTYPE_U64}, {"|b1", KILN_DTYPE_BOOL},
};

std::optional<kiln_dtype> dtypeForDescr(const std::string &descr) {
  for (const NpyDTypeRow &row : kNpyDTypes)
    if (descr == row.descr)
      return row.dtype;
  return std::nullopt;
}

const char *descrForDType(kiln_dtype dtype) {
  for (const NpyDTypeRow &row : kNpyDTypes)
    if (row.dtype == dtype)
      return row.descr;
  return nullptr;
}

// The header dict after parsing; every key must appear exactly once.
struct NpyHeader {
  std::optional<std::string> descr;
  std::optional<bool> fortranOrder;
  std::optional<std::vector<int64_t>> shape;
};

// A recursive-descent parser for the subset of Python literal syntax NumPy writes.
class NpyHeaderParser {
public:
  explicit NpyHeaderParser(const std::string &text) : text(text) {}

  Expected<NpyHeader> parse() {
    NpyHeader header;
    skipSpaces();
    if (!consume('{'))
      return fail("expected '{' at the start of the header dict");
    while (true) {
      skipSpaces();
      if (consume('}'))
        break;
      Expected<std::string> key = parseString();
      if (!key)
        return key.error();
      skipSpaces();
      if (!consume(':'))
        return fail("expected ':' after key '" + *key + "'");
      skipSpaces();
      if (MaybeError error = parseValue(*key, header))
        return *error;
      skipSpaces();
      if (consume('}'))
        break;
      if (!consume(','))
        return fail("expected ',' or '}' after the value of '" + *key + "'");
    }
    // NumPy pads with spaces and ends the header with a newline.
    for (; pos < text.size(); ++pos)
      if (text[pos] != ' ' && text[pos] != '\n' && text[pos] != '\t' && text[pos] != '\r')
        return fail("unexpected text after the header dict");
    if (!header.descr)
      return Error{"the header has no 'descr' key"};
    if (!header.fortranOrder)
      return Error{"the header has no 'fortran_order' key"};
    if (!header.shape)
      return Error{"the header has no 'shape' key"};
    return header;
  }

private:
  Error fail(const std::string &what) const {
    return Error{"malformed header at byte " + std::to_string(pos) + ": " + what};
  }

  void skipSpaces() {
    while (pos < text.size() && (text[pos] == ' ' || text[pos] == '\t'))
      ++pos;
  }

  bool consume(char c) {
    if (pos < text.size() && text[pos] == c) {
      ++pos;
      return true;
    }
    return false;
  }

  bool consumeWord(const char *word) {
    size_t length = std::strlen(word);
    if (text.compare(pos, length, word) != 0)
      return false;
    pos += length;
    return true;
  }

  Expected<std::string> parseString() {
    if (pos >= text.size() || (text[pos] != '\'' && text[pos] != '"'))
      return fail("expected a quoted key or string");
    char quote = text[pos++];
    size_t end = text.find(quote, pos);
    if (end == std::string::npos)
      return fail("unterminated string");
    std::string value = text.substr(pos, end - pos);
    pos = end + 1;
    return value;
  }

  MaybeError parseValue(const std::string &key, NpyHeader &header) {
    if (key == "descr") {
      if (header.descr)
        return fail("duplicate key 'descr'");
      if (pos < text.size() && text[pos] == '[')
        return Error{"structured dtypes (a list 'descr') are not supported"};
      Expected<std::string> descr = parseString();
      if (!descr)
        return descr.error();
      header.descr = *descr;
      return std::nullopt;
    }
    if (key == "fortran_order") {
      if (header.fortranOrder)
        return fail("duplicate key 'fortran_order'");
      if (consumeWord("True"))
        header.fortranOrder = true;
      else if (consumeWord("False"))
        header.fortranOrder = false;
      else
        return fail("'fortran_order' must be True or False");
      return std::nullopt;
    }
    if (key == "shape") {
      if (header.shape)
        return fail("duplicate key 'shape'");
      Expected<std::vector<int64_t>> shape = parseShape();
      if (!shape)
        return shape.error();
      header.shape = *shape;
      return std::nullopt;
    }
    return fail("unknown key '" + key + "' (expected 'descr', 'fortran_order', 'shape')");
  }

  // "()", "(3,)", "(2, 3)" or "(2, 3,)".
  Expected<std::vector<int64_t>> parseShape() {
    if (!consume('('))
      return fail("'shape' must be a tuple");
    std::vector<int64_t> shape;
    while (true) {
      skipSpaces();
      if (consume(')'))
        break;
      size_t start = pos;
      int64_t extent = 0;
      while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') {
        int digit = text[pos++] - '0';
        if (extent > (std::numeric_limits<int64_t>::max() - digit) / 10)
          return fail("a 'shape' extent is too large");
        extent = extent * 10 + digit;
      }
      if (pos == start)
        return fail("'shape' extents must be non-negative integers");
      // Python also writes "3L" for longs in files from Python 2.
      consume('L');
      shape.push_back(extent);
      skipSpaces();
      if (consume(')')) {
        if (shape.size() == 1)
          return fail("a one-element 'shape' tuple needs a trailing comma, as in (3,)");
        break;
      }
      if (!consume(','))
        return fail("expected ',' or ')' in 'shape'");
    }
    return shape;
  }

  const std::string &text;
  size_t pos = 0;
};

uint32_t readLittleEndian(const uint8_t *bytes, size_t width) {
  uint32_t value = 0;
  for (size_t i = 0; i < width; ++i)
    value |= static_cast<uint32_t>(bytes[i]) << (8 * i);
  return value;
}

Expected<NpyArray> parseNpy(const std::vector<uint8_t> &bytes) {
  if (bytes.size() < kMagicSize + 2 || std::memcmp(bytes.data(), kMagic, kMagicSize) != 0)
    return Error{"not a .npy file (no \\x93NUMPY magic)"};
  uint8_t major = bytes[6], minor = bytes[7];
  if (major < 1 || major > 3 || minor != 0)
    return Error{"unsupported .npy format version " + std::to_string(major) + "." +
                 std::to_string(minor) + " (kiln reads 1.0, 2.0 and 3.0)"};
  size_t lengthWidth = major == 1 ? 2 : 4;
  size_t headerStart = kMagicSize + 2 + lengthWidth;
  if (bytes.size() < headerStart)
    return Error{"truncated: the file ends inside the header length"};
  size_t headerLength = readLittleEndian(bytes.data() + kMagicSize + 2, lengthWidth);
  if (bytes.size() - headerStart < headerLength)
    return Error{"truncated: the header declares " + std::to_string(headerLength) +
                 " bytes but only " + std::to_string(bytes.size() - headerStart) +
                 " follow"};
  std::string headerText(bytes.begin() + headerStart,
                         bytes.begin() + headerStart + headerLength);
  Expected<NpyHeader> header = NpyHeaderParser(headerText).parse();
  if (!header)
    return header.error();

  const std::string &descr = *header->descr;
  std::optional<kiln_dtype> dtype = dtypeForDescr(descr);
  if (!dtype) {
    if (!descr.empty() && descr[0] == '>')
      return Error{"big-endian dtype '" + descr +
                   "' is not supported (kiln reads little-endian data)"};
    return Error{"unsupported dtype '" + descr + "' (kiln reads " + supportedNpyDTypes() + ")"};
  }
  if (*header->fortranOrder)
    return Error{"fortran_order is True; kiln reads only C-order arrays "
                 "(save with numpy.ascontiguousarray)"};

  const std::vector<int64_t> &shape = *header->shape;
  size_t elementBytes = kiln_dtype_size(*dtype);
  size_t dataBytes = elementBytes;
  for (int64_t extent : shape) {
    if (extent != 0 && dataBytes > std::numeric_limits<size_t>::max() / static_cast<size_t>(extent))
      return Error{"the shape's byte size overflows"};
    dataBytes *= static_cast<size_t>(extent);
  }
  size_t dataStart = headerStart + headerLength;
  size_t available = bytes.size() - dataStart;
  std::string type = formatTensorType(*dtype, shape);
  if (available < dataBytes)
    return Error{"truncated: " + type + " needs " + std::to_string(dataBytes) +
                 " data bytes but the file has " + std::to_string(available)};
  if (available > dataBytes)
    return Error{std::to_string(available - dataBytes) + " unexpected bytes after the " +
                 std::to_string(dataBytes) + " data bytes of " + type};

  NpyArray array{*dtype, shape, {}};
  array.data.assign(bytes.begin() + dataStart, bytes.end());
  return array;
}

} // namespace

std::string supportedNpyDTypes() {
  std::string list;
  for (const NpyDTypeRow &row : kNpyDTypes)
    list += (list.empty() ? "" : " ") + std::string(row.descr);
  return list;
}

Expected<NpyArray> readNpyFile(const std::string &path) {
  std::ifstream file(path, std::ios::binary);
  if (!file)
    return Error{"cannot open '" + path + "': " + std::strerror(errno)};
  std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(file)),
                             std::istreambuf_iterator<char>());
  if (file.bad())
    return Error{"cannot read '" + path + "': " + std::strerror(errno)};
  Expected<NpyArray> array = parseNpy(bytes);
  if (!array)
    return Error{"'" + path + "': " + array.error().message};
  return array;
}

MaybeError writeNpyFile(const std::string &path, kiln_dtype dtype,
                        const std::vector<int64_t> &shape, const void *data, size_t byteSize) {
  const char *descr = descrForDType(dtype);
  if (!descr)
    return Error{"cannot write '" + path + "': " + kiln_dtype_name(dtype) +
                 " has no .npy dtype"};
  std::string dict = std::string("{'descr': '") + descr + "', 'fortran_order': False, 'shape': (";
  for (size_t i = 0; i < shape.size(); ++i)
    dict += (i ? ", " : "") + std::to_string(shape[i]);
  dict += shape.size() == 1 ? ",), }" : "), }";

  // Version 1.0 stores the header length in 2 bytes; larger headers need 2.0.
  uint8_t major = dict.size() + kHeaderAlignment < 0xffff ? 1 : 2;
  size_t lengthWidth = major == 1 ? 2 : 4;
  size_t prefix = kMagicSize + 2 + lengthWidth;
  size_t padded = (prefix + dict.size() + 1 + kHeaderAlignment - 1) / kHeaderAlignment *
                  kHeaderAlignment;
  std::string header = dict + std::string(padded - prefix - dict.size() - 1, ' ') + "\n";

  std::string bytes(kMagic, kMagicSize);
  bytes += static_cast<char>(major);
  bytes += '\0';
  for (size_t i = 0; i < lengthWidth; ++i)
    bytes += static_cast<char>((header.size() >> (8 * i)) & 0xff);
  bytes += header;

  std::ofstream file(path, std::ios::binary | std::ios::trunc);
  if (!file)
    return Error{"cannot create '" + path + "': " + std::strerror(errno)};
  file.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  file.write(static_cast<const char *>(data), static_cast<std::streamsize>(byteSize));
  file.close();
  if (!file)
    return Error{"cannot write '" + path + "': " + std::strerror(errno)};
  return std::nullopt;
}

} // namespace kiln::tools
