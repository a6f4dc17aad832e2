// The kiln dialect: registration, and the !kiln.quant element type.
#include "dialects/Kiln/KilnDialect.h"

#include "kiln/quant_formats.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/DialectImplementation.h"
#include "llvm/ADT/TypeSwitch.h"

using namespace mlir;
using namespace kiln;

#include "dialects/Kiln/KilnDialect.cpp.inc"
#include "dialects/Kiln/KilnEnums.cpp.inc"

#define GET_ATTRDEF_CLASSES
#include "dialects/Kiln/KilnAttrs.cpp.inc"

#define GET_TYPEDEF_CLASSES
#include "dialects/Kiln/KilnTypes.cpp.inc"

// QuantScheme is ODS's mirror of the C table; keep their numbering identical.
static_assert(static_cast<int>(QuantScheme::q8_0) == KILN_QUANT_Q8_0);
static_assert(static_cast<int>(QuantScheme::q4_0) == KILN_QUANT_Q4_0);
static_assert(static_cast<int>(QuantScheme::q4_k) == KILN_QUANT_Q4_K);
static_assert(static_cast<int>(QuantScheme::q6_k) == KILN_QUANT_Q6_K);
static_assert(static_cast<int>(QuantScheme::int8) == KILN_QUANT_INT8);
static_assert(static_cast<int>(QuantScheme::int4) == KILN_QUANT_INT4);
static_assert(static_cast<int>(QuantScheme::q5_0) == KILN_QUANT_Q5_0);
static_assert(static_cast<int>(QuantScheme::q5_1) == KILN_QUANT_Q5_1);
static_assert(static_cast<int>(QuantScheme::q4_0x16) == KILN_QUANT_Q4_0X16);
static_assert(static_cast<int>(QuantScheme::q8_0x16) == KILN_QUANT_Q8_0X16);
static_assert(static_cast<int>(QuantScheme::q5_0x16) == KILN_QUANT_Q5_0X16);
static_assert(static_cast<int>(QuantScheme::q4_kx16) == KILN_QUANT_Q4_KX16);
static_assert(static_cast<int>(QuantScheme::q6_kx16) == KILN_QUANT_Q6_KX16);
static_assert(static_cast<int>(QuantScheme::q4_1) == KILN_QUANT_Q4_1);

void KilnDialect::initialize() {
  addOperations<
#define GET_OP_LIST
#include "dialects/Kiln/KilnOps.cpp.inc"
      >();
  addTypes<
#define GET_TYPEDEF_LIST
#include "dialects/Kiln/KilnTypes.cpp.inc"
      >();
  addAttributes<
#define GET_ATTRDEF_LIST
#include "dialects/Kiln/KilnAttrs.cpp.inc"
      >();
}

Operation *KilnDialect::materializeConstant(OpBuilder &builder, Attribute value, Type type,
                                            Location loc) {
  return arith::ConstantOp::materialize(builder, value, type, loc);
}

//===----------------------------------------------------------------------===//
// QuantType
//===----------------------------------------------------------------------===//

static const kiln_quant_format &formatOf(QuantScheme scheme) {
  return kiln_quant_formats[static_cast<int>(scheme)];
}

bool QuantType::isGroupWise() const { return formatOf(getScheme()).block_elements == 0; }

int64_t QuantType::getBlockElements() const {
  return isGroupWise() ? getGroupSize() : formatOf(getScheme()).block_elements;
}

int64_t QuantType::getPackedBytes(int64_t elements) const {
  if (isGroupWise() && elements % getGroupSize() != 0)
    return -1;
  return kiln_quant_packed_bytes(static_cast<kiln_quant_scheme>(getScheme()), elements);
}

int64_t QuantType::getInterleave() const { return formatOf(getScheme()).interleave; }

std::optional<QuantScheme> QuantType::interleaved(QuantScheme scheme) {
  switch (scheme) {
  case QuantScheme::q4_0:
    return QuantScheme::q4_0x16;
  case QuantScheme::q8_0:
    return QuantScheme::q8_0x16;
  case QuantScheme::q5_0:
    return QuantScheme::q5_0x16;
  case QuantScheme::q4_k:
    return QuantScheme::q4_kx16;
  case QuantScheme::q6_k:
    return QuantScheme::q6_kx16;
  default:
    return std::nullopt;
  }
}

SmallVector<int64_t> QuantType::getPackedShape(ArrayRef<int64_t> shape) const {
  SmallVector<int64_t> packed(shape);
  if (!packed.empty())
    packed.back() = getPackedBytes(packed.back()) * getInterleave();
  if (packed.size() >= 2 && !ShapedType::isDynamic(packed[packed.size() - 2]))
    packed[packed.size() - 2] /= getInterleave();
  return packed;
}

LogicalResult QuantType::verify(function_ref<InFlightDiagnostic()> emitError,
                                QuantScheme scheme, int64_t groupSize) {
  StringRef name = stringifyQuantScheme(scheme);
  if (formatOf(scheme).block_elements != 0) {
    if (groupSize != 0)
      return emitError() << name << " has a fixed block size of "
                         << formatOf(scheme).block_elements
                         << " elements; it takes no group size";
    return success();
  }
  if (groupSize <= 0)
    return emitError() << "group-wise scheme " << name
                       << " needs a positive group size, got " << groupSize;
  return success();
}

// !kiln.quant<q4_0> or !kiln.quant<int4, group = 128>
Type QuantType::parse(AsmParser &parser) {
  SMLoc loc = parser.getCurrentLocation();
  StringRef keyword;
  if (parser.parseLess() || parser.parseKeyword(&keyword))
    return {};
  std::optional<QuantScheme> scheme = symbolizeQuantScheme(keyword);
  if (!scheme) {
    InFlightDiagnostic diag = parser.emitError(loc)
                              << "unknown quantization scheme '" << keyword
                              << "'; expected one of ";
    for (int s = 0; s < KILN_QUANT_SCHEME_COUNT; ++s)
      diag << (s ? ", " : "") << kiln_quant_formats[s].name;
    return {};
  }
  int64_t groupSize = 0;
  if (succeeded(parser.parseOptionalComma())) {
    if (parser.parseKeyword("group") || parser.parseEqual() || parser.parseInteger(groupSize))
      return {};
  }
  if (parser.parseGreater())
    return {};
  return getChecked([&] { return parser.emitError(loc); }, parser.getContext(), *scheme,
                    groupSize);
}

void QuantType::print(AsmPrinter &printer) const {
  printer << "<" << stringifyQuantScheme(getScheme());
  if (getGroupSize() != 0)
    printer << ", group = " << getGroupSize();
  printer << ">";
}
