// The canonical text that identifies a kernel (see KernelFingerprint.h).
#include "backends/KernelFingerprint.h"

#include "mlir/IR/AsmState.h"
#include "mlir/IR/BuiltinAttributes.h"
#include "llvm/Support/raw_ostream.h"

#include <limits>

using namespace mlir;

namespace kiln {

namespace {
/// Where a dispatch's results go in the arena: the program's business, not the kernel's.
constexpr llvm::StringLiteral kArenaOffsets = "kiln.arena_offsets";
/// The knobs asked for; the fingerprint holds the schedule they resolve to instead.
constexpr llvm::StringLiteral kSchedule = "kiln.schedule";

std::string structure(DispatchOp dispatch) {
  // Every flag set explicitly: the defaults follow --mlir-print-* options when a tool
  // registers them, and eliding a large constant would make different kernels equal.
  OpPrintingFlags flags;
  flags.printGenericOpForm()
      .useLocalScope()
      .enableDebugInfo(false)
      .elideLargeElementsAttrs(std::numeric_limits<int64_t>::max())
      .printNameLocAsPrefix(false)
      .printUniqueSSAIDs(false)
      .printValueUsers(false);
  std::string text;
  llvm::raw_string_ostream os(text);
  // The body alone: its block arguments stand for the inputs, in order, whatever the
  // dispatch is given.
  AsmState state(dispatch, flags);
  dispatch.getBody().front().print(os, state);
  os << "results:";
  for (Type type : dispatch.getResultTypes()) {
    os << " ";
    type.print(os, state);
  }
  os << "\nattributes:";
  for (NamedAttribute attr : dispatch->getAttrs())
    if (attr.getName() != kArenaOffsets && attr.getName() != kSchedule) {
      os << " " << attr.getName().getValue() << "=";
      attr.getValue().print(os, state);
    }
  os << "\n";
  return text;
}
} // namespace

std::string kernelFingerprint(DispatchOp dispatch, llvm::StringRef schedule) {
  return structure(dispatch) + "schedule: " + schedule.str() + "\n";
}

std::string tuningKey(DispatchOp dispatch) { return structure(dispatch); }

} // namespace kiln
