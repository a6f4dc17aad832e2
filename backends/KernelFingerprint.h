// A kernel's identity by content, so that identical dispatches (the same matmul in every
// layer of a model) compile once and the tuning database can key on what a kernel is.
#ifndef KILN_BACKENDS_KERNELFINGERPRINT_H
#define KILN_BACKENDS_KERNELFINGERPRINT_H

#include "dialects/Kiln/KilnDialect.h"

#include <string>

namespace kiln {

/// The canonical text of `dispatch` compiled with `schedule`: its body in MLIR's generic
/// form (ops, types, attributes, constants in full) with values numbered within the
/// region and no locations, the dispatch's own attributes but its memory plan and its
/// requested schedule (`kiln.schedule`: what counts is the schedule it resolves to), and
/// the schedule. Which values the dispatch reads (weights, activations, by name or by
/// offset) is not part of it: those are the kernel's arguments. Two dispatches with equal
/// fingerprints compute the same function of their arguments the same way, so they may
/// share one kernel; compare the whole text, never only a hash of it.
std::string kernelFingerprint(DispatchOp dispatch, llvm::StringRef schedule);

/// What the tuning database keys a kernel on: kernelFingerprint without the schedule
/// (the structure a schedule is searched for: ops, shapes, dtypes, no names).
std::string tuningKey(DispatchOp dispatch);

} // namespace kiln

#endif // KILN_BACKENDS_KERNELFINGERPRINT_H
