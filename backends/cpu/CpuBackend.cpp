// CPU code generation: each distinct dispatch becomes a Halide pipeline compiled ahead of
// time, in parallel; all kernels plus one Halide runtime are linked into a shared object
// the kiln runtime loads from memory (halide/AotBackend).
#include "backends/cpu/CpuBackend.h"

#include "backends/halide/AotBackend.h"
#include "backends/halide/KernelSchedule.h"

using namespace mlir;

namespace kiln::cpu {

namespace {

std::optional<Halide::Target> parseTarget(llvm::StringRef target) {
  if (target == "host")
    return halide::hostTarget();
  if (!Halide::Target::validate_target_string(target.str()))
    return std::nullopt;
  Halide::Target parsed(target.str());
  if (parsed.has_gpu_feature() || parsed.os == Halide::Target::NoOS)
    return std::nullopt;
  return parsed;
}

class CpuBackend : public halide::AotBackend {
public:
  CpuBackend(Halide::Target target, const NumericsOptions &numerics)
      : AotBackend("cpu", {target}, "elf-shared-object", loweringFor(target, numerics)) {}

  std::string describeScheduleSpace() const override {
    return halide::describeKnobs(halide::KernelSchedule::space());
  }

protected:
  FailureOr<Schedule> chooseSchedule(const halide::LoweredKernel &kernel,
                                     DispatchOp dispatch) override {
    halide::KernelSchedule schedule = halide::defaultSchedule(kernel, targets().front());
    if (auto chosen = dispatch->getAttrOfType<StringAttr>("kiln.schedule")) {
      std::string error = schedule.set(chosen.getValue());
      if (!error.empty())
        return dispatch.emitOpError("has kiln.schedule '") << chosen.getValue() << "': " << error;
    }
    Schedule chosen{schedule.str(), [schedule](halide::LoweredKernel &lowered) {
                      halide::applySchedule(lowered, schedule);
                    }};
    chosen.knobs = halide::KernelSchedule::knobsFor(kernel, halide::dispatchReduces(dispatch));
    return chosen;
  }

private:
  static halide::LoweringOptions loweringFor(const Halide::Target &target,
                                             const NumericsOptions &numerics) {
    halide::LoweringOptions lowering = halide::LoweringOptions::forTarget(target);
    lowering.int8Activations = numerics.int8Activations;
    return lowering;
  }
};

} // namespace

bool handlesTarget(llvm::StringRef target) { return parseTarget(target).has_value(); }

std::unique_ptr<Backend> createCpuBackend(llvm::StringRef target, std::string &error,
                                          const NumericsOptions &numerics) {
  std::optional<Halide::Target> parsed = parseTarget(target);
  if (!parsed) {
    error = "'" + target.str() + "' is not a CPU target";
    return nullptr;
  }
  return std::make_unique<CpuBackend>(*parsed, numerics);
}

} // namespace kiln::cpu
