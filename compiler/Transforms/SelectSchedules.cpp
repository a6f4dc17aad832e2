// kiln-select-schedules: the schedule of each dispatch's kernel, recorded in the IR:
// given knobs, or the tuning database's best for the kernel.
#include "backends/KernelFingerprint.h"
#include "compiler/CompilerVersion.h"
#include "compiler/Passes.h"
#include "compiler/Tuning/TuningDatabase.h"

namespace kiln {
#define GEN_PASS_DEF_SELECTSCHEDULES
#include "compiler/Passes.h.inc"
} // namespace kiln

using namespace mlir;
using namespace kiln;

namespace {

struct SelectSchedulesPass : kiln::impl::SelectSchedulesBase<SelectSchedulesPass> {
  using SelectSchedulesBase::SelectSchedulesBase;

  void runOnOperation() override {
    if (!schedule.empty()) {
      StringAttr text = StringAttr::get(&getContext(), schedule);
      getOperation().walk([&](DispatchOp dispatch) { dispatch->setAttr("kiln.schedule", text); });
      return;
    }
    if (tuningDb.empty())
      return;
    if (target.empty()) {
      getOperation().emitError("kiln-select-schedules: tuning-db needs the target it keys on");
      return signalPassFailure();
    }
    auto opened = tuning::TuningDatabase::openForReading(tuningDb);
    if (!opened) {
      getOperation().emitError(llvm::toString(opened.takeError()));
      return signalPassFailure();
    }
    if (!*opened)
      return;
    WalkResult result = getOperation().walk([&](DispatchOp dispatch) {
      auto best = (*opened)->best({tuningKey(dispatch), target, kCompilerVersion});
      if (!best) {
        dispatch.emitError(llvm::toString(best.takeError()));
        return WalkResult::interrupt();
      }
      if (*best)
        dispatch->setAttr("kiln.schedule", StringAttr::get(&getContext(), (*best)->schedule));
      return WalkResult::advance();
    });
    if (result.wasInterrupted())
      signalPassFailure();
  }
};

} // namespace
