// kiln-select-schedules: the schedule of each dispatch's kernel, recorded in the IR.
#include "compiler/Passes.h"

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
    if (schedule.empty())
      return;
    StringAttr text = StringAttr::get(&getContext(), schedule);
    getOperation().walk([&](DispatchOp dispatch) { dispatch->setAttr("kiln.schedule", text); });
  }
};

} // namespace
