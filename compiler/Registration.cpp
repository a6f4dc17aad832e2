// Registers the dialects kiln IR uses and every kiln pass and pipeline.
#include "compiler/Registration.h"

#include "compiler/Passes.h"
#include "compiler/Pipelines.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Linalg/Passes.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/DialectRegistry.h"
#include "mlir/Transforms/Passes.h"

void kiln::registerDialects(mlir::DialectRegistry &registry) {
  registry.insert<KilnDialect, mlir::arith::ArithDialect, mlir::func::FuncDialect,
                  mlir::linalg::LinalgDialect, mlir::math::MathDialect,
                  mlir::tensor::TensorDialect>();
}

void kiln::registerPasses() {
  registerKilnPasses();
  registerPipelines();
  mlir::registerTransformsPasses();
  mlir::registerLinalgPasses();
}
