// The compilation pipeline: reads top to bottom like the design brief's pass list.
#include "compiler/Pipelines.h"

#include "compiler/Passes.h"

#include "mlir/Dialect/Linalg/Passes.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Pass/PassRegistry.h"
#include "mlir/Transforms/Passes.h"

using namespace mlir;

void kiln::buildDefaultPipeline(OpPassManager &pm, const PipelineOptions &options) {
  // Canonicalize and fold what the frontend produced.
  pm.addPass(createCanonicalizerPass());
  pm.addPass(createCSEPass());
  // Weight layouts are chosen at compile time (the artifact stores them transposed).
  pm.addNestedPass<func::FuncOp>(createFoldWeightLayouts());
  // Quantize float weights (optional) into the packed forms the kernels read, then
  // choose their interleaved layouts like a GGUF file's.
  if (!options.quantize.empty()) {
    QuantizeWeightsOptions quantize;
    quantize.scheme = options.quantize;
    quantize.keepFloat = options.keepFloat;
    pm.addNestedPass<func::FuncOp>(createQuantizeWeights(quantize));
    if (!options.awqActivations.empty()) {
      AwqScaleOptions awq;
      awq.activations = options.awqActivations;
      awq.modelDir = options.modelDirectory;
      awq.steps = options.awqSteps;
      pm.addNestedPass<func::FuncOp>(createAwqScale(awq));
    }
  }
  if (options.returnProductInputs)
    pm.addNestedPass<func::FuncOp>(createReturnProductInputs());
  pm.addNestedPass<func::FuncOp>(createInterleaveWeights());
  // Decompose: elementwise arith/math on tensors and every named linalg op become
  // linalg.generic, the one form the backends translate.
  pm.addNestedPass<func::FuncOp>(createConvertElementwiseToLinalgPass());
  pm.addNestedPass<func::FuncOp>(createLinalgGeneralizeNamedOpsPass());
  // Form kernels, then fuse elementwise chains into one kernel each.
  pm.addNestedPass<func::FuncOp>(createFormDispatches());
  pm.addPass(createCanonicalizerPass());
  pm.addNestedPass<func::FuncOp>(createFuseElementwise());
  // GEMMs a GPU library computes better stay apart from their epilogues.
  if (!options.library.empty()) {
    MarkLibraryProductsOptions library;
    library.library = options.library;
    pm.addNestedPass<func::FuncOp>(createMarkLibraryProducts(library));
  }
  pm.addNestedPass<func::FuncOp>(createFuseEpilogues());
  pm.addPass(createCanonicalizerPass());
  // Plan memory over the final dispatch order, then record the schedules chosen.
  pm.addNestedPass<func::FuncOp>(createPlanMemory());
  SelectSchedulesOptions selection;
  selection.schedule = options.schedule;
  selection.tuningDb = options.tuningDatabase;
  selection.target = options.target;
  pm.addNestedPass<func::FuncOp>(createSelectSchedules(selection));
}

std::string kiln::gemmLibraryFor(const std::string &backendName) {
  return backendName == "cuda" ? "cublas" : "";
}

void kiln::registerPipelines() {
  PassPipelineRegistration<>("kiln-default-pipeline",
                             "kiln's default compilation pipeline (what kiln-compile runs)",
                             [](OpPassManager &pm) { buildDefaultPipeline(pm); });
}
