// The compilation pipeline: reads top to bottom like the design brief's pass list.
#include "compiler/Pipelines.h"

#include "compiler/Passes.h"

#include "mlir/Pass/PassManager.h"
#include "mlir/Pass/PassRegistry.h"
#include "mlir/Transforms/Passes.h"

using namespace mlir;

void kiln::buildDefaultPipeline(OpPassManager &pm) {
  // Canonicalize and fold what the frontend produced.
  pm.addPass(createCanonicalizerPass());
  pm.addPass(createCSEPass());
  // Form kernels: one kiln.dispatch per kernel op. (Decomposition, quantization, fusion,
  // memory planning and schedule selection slot in around this step.)
  pm.addNestedPass<func::FuncOp>(createFormDispatches());
  pm.addPass(createCanonicalizerPass());
}

void kiln::registerPipelines() {
  PassPipelineRegistration<>("kiln-default-pipeline",
                             "kiln's default compilation pipeline (what kiln-compile runs)",
                             buildDefaultPipeline);
}
