// Metal code generation through Halide's Metal backend (see MetalBackend.h). The MSL of
// each kernel is compiled by the Metal framework when the kernel first runs; kiln keeps
// it compilable by construction (Halide writes it from the same IR as every target) and
// checks its kernel signatures and buffer bindings textually on Linux.
#include "backends/metal/MetalBackend.h"

#include "backends/halide/AotBackend.h"

#include "mlir/IR/Diagnostics.h"
#include "llvm/Support/Program.h"

using namespace mlir;

namespace kiln::metal {

namespace {

class MetalBackend : public halide::GpuAotBackend {
public:
  MetalBackend()
      : GpuAotBackend("metal", {Halide::Target("arm-64-osx-metal")}, "macho-dylib",
                      halide::LoweringOptions::forTarget(Halide::Target("arm-64-osx-metal"))) {}

protected:
  /// A Mach-O dylib linked without Apple's SDK: libSystem's and the Objective-C
  /// runtime's symbols (Halide's Metal runtime calls objc_msgSend and loads the Metal
  /// framework with dlopen) are bound when the library is loaded on macOS.
  LogicalResult link(Location loc, const Halide::Target &target,
                     const std::vector<std::string> &objects, const std::string &output,
                     const std::string &logPath) override {
    llvm::ErrorOr<std::string> lld =
        llvm::sys::findProgramByName("ld64.lld", {"/usr/lib/llvm-22/bin"});
    if (!lld)
      return emitError(loc) << "ld64.lld (lld-22) is needed to link code for "
                            << target.to_string();
    std::vector<std::string> args{"-dylib",           "-arch",      "arm64",
                                  "-platform_version", "macos",     "12.0",
                                  "12.0",             "-undefined", "dynamic_lookup",
                                  "-o",               output};
    args.insert(args.end(), objects.begin(), objects.end());
    return runTool(loc, "linking the metal code object", *lld, args, logPath);
  }
};

} // namespace

bool handlesTarget(llvm::StringRef target) { return target == "metal"; }

std::unique_ptr<Backend> createMetalBackend(llvm::StringRef target, std::string &error,
                                            const NumericsOptions &) {
  if (!handlesTarget(target)) {
    error = "'" + target.str() + "' is not a Metal target";
    return nullptr;
  }
  return std::make_unique<MetalBackend>();
}

} // namespace kiln::metal
