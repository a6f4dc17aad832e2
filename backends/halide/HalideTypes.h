// Mapping between MLIR element types and Halide types.
#ifndef KILN_BACKENDS_HALIDE_HALIDETYPES_H
#define KILN_BACKENDS_HALIDE_HALIDETYPES_H

#include "mlir/IR/Types.h"

#include <Halide.h>
#include <optional>

namespace kiln::halide {

/// The Halide type holding values of `type` (signless integers as signed; i1 as
/// Halide's bool; index as 32-bit, the width of Halide's loop variables), or nothing
/// for types Halide cannot hold.
std::optional<Halide::Type> toHalideType(mlir::Type type);

} // namespace kiln::halide

#endif // KILN_BACKENDS_HALIDE_HALIDETYPES_H
