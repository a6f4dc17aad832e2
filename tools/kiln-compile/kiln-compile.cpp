// kiln-compile: ahead-of-time compilation of a model file through kiln's pipeline.
#include "compiler/Pipelines.h"
#include "compiler/Registration.h"
#include "frontends/ModelImport.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/DialectRegistry.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Support/FileUtilities.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/ToolOutputFile.h"
#include "llvm/Support/WithColor.h"

using namespace mlir;
namespace cl = llvm::cl;

namespace {

enum class Emit { Mlir };

cl::OptionCategory category("kiln-compile options");
cl::opt<std::string> inputPath(cl::Positional, cl::Required, cl::desc("<model file>"),
                               cl::cat(category));
cl::opt<std::string> outputPath("o", cl::desc("Output file ('-' for stdout)"),
                                cl::value_desc("path"), cl::init("-"), cl::cat(category));
cl::opt<std::string> target("target", cl::desc("Target to compile for"),
                            cl::init("host"), cl::cat(category));
cl::opt<Emit> emit("emit", cl::desc("What to write"), cl::init(Emit::Mlir),
                   cl::values(clEnumValN(Emit::Mlir, "mlir",
                                         "kiln IR after the pipeline")),
                   cl::cat(category));
cl::opt<bool> printIrAfterAll("print-ir-after-all",
                              cl::desc("Print the IR after every pass (to stderr)"),
                              cl::cat(category));

int fail(const llvm::Twine &message) {
  llvm::WithColor::error(llvm::errs(), "kiln-compile") << message << "\n";
  return 1;
}

} // namespace

int main(int argc, char **argv) {
  llvm::InitLLVM init(argc, argv);
  cl::HideUnrelatedOptions(category);
  cl::ParseCommandLineOptions(
      argc, argv,
      "kiln-compile: compiles a model ahead of time\n\n"
      "  kiln-compile model.mlir --target=host -o out.mlir\n\n"
      "The input format follows the file's extension.\n");

  if (target != "host")
    return fail("unknown target '" + target + "'; known targets: host");

  DialectRegistry registry;
  kiln::registerDialects(registry);
  MLIRContext context(registry);
  llvm::SourceMgr sourceMgr;
  SourceMgrDiagnosticHandler diagnostics(sourceMgr, &context);
  OwningOpRef<ModuleOp> module = kiln::importModelFile(inputPath, context, sourceMgr);
  if (!module)
    return 1;

  std::string error;
  PassManager pm(&context);
  if (printIrAfterAll) {
    context.disableMultithreading();
    pm.enableIRPrinting(/*shouldPrintBeforePass=*/nullptr,
                        /*shouldPrintAfterPass=*/[](Pass *, Operation *) { return true; },
                        /*printModuleScope=*/true, /*printAfterOnlyOnChange=*/false);
  }
  kiln::buildDefaultPipeline(pm);
  if (failed(pm.run(*module)))
    return 1;

  std::unique_ptr<llvm::ToolOutputFile> output = openOutputFile(outputPath, &error);
  if (!output)
    return fail(error);
  module->print(output->os());
  output->keep();
  return 0;
}
