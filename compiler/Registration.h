// Registers everything a kiln tool needs: the dialects kiln IR uses and kiln's passes.
#ifndef KILN_COMPILER_REGISTRATION_H
#define KILN_COMPILER_REGISTRATION_H

namespace mlir {
class DialectRegistry;
} // namespace mlir

namespace kiln {

/// The kiln dialect and the upstream dialects kiln IR is written in.
void registerDialects(mlir::DialectRegistry &registry);

/// kiln's passes and pipelines plus the upstream passes they build on.
void registerPasses();

} // namespace kiln

#endif // KILN_COMPILER_REGISTRATION_H
