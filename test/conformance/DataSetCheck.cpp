// Feeding ONNX test data to a compiled model through the runtime's C API.
#include "DataSetCheck.h"

#include "EntryPointSignature.h"
#include "OnnxTestData.h"
#include "RuntimeHandles.h"
#include "TensorComparison.h"

#include <vector>

namespace kiln::conformance {

namespace {

using tools::formatTensorType;

// ONNX's own backend tests compare with rtol 1e-3; atol 1e-5 (ONNX uses 1e-7) leaves
// room for results near zero from f32 kernels that reassociate sums, where a relative
// bound says nothing.
constexpr tools::Tolerance kTolerance{1e-3, 1e-5};

TestResult fail(const std::string &reason) { return {TestStatus::Fail, reason}; }

// The suite's bfloat16 tensors are stored as their uint16 bit patterns (numpy has no
// bfloat16); read such data as the bf16 the model declares.
void relabelBFloat16(TestTensor &data, const tools::TensorSlot &slot) {
  if (slot.dtype == KILN_DTYPE_BF16 && data.dtype == KILN_DTYPE_U16)
    data.dtype = KILN_DTYPE_BF16;
}

} // namespace

TestResult checkDataSets(const std::string &artifactPath, const std::string &testDirectory,
                         int numThreads) {
  tools::Expected<std::vector<DataSet>> dataSets = readDataSets(testDirectory);
  if (!dataSets)
    return fail("test data: " + dataSets.error().message);
  tools::Expected<tools::RuntimeHandle> runtime = tools::createRuntime(numThreads);
  if (!runtime)
    return fail(runtime.error().message);
  tools::Expected<tools::ModuleHandle> module = tools::loadModule(runtime->get(), artifactPath);
  if (!module)
    return fail(module.error().message);
  tools::Expected<tools::EntryPointSignature> signature =
      tools::readEntryPointSignature(module->get(), 0);
  if (!signature)
    return fail(signature.error().message);
  const std::vector<tools::TensorSlot> &inputSlots = signature->inputs;
  const std::vector<tools::TensorSlot> &outputSlots = signature->outputs;
  tools::Expected<tools::SessionHandle> session = tools::createSession(module->get(), 0);
  if (!session)
    return fail(session.error().message);

  for (DataSet &dataSet : *dataSets) {
    for (size_t i = 0; i < dataSet.inputs.size() && i < inputSlots.size(); ++i)
      relabelBFloat16(dataSet.inputs[i], inputSlots[i]);
    for (size_t i = 0; i < dataSet.outputs.size() && i < outputSlots.size(); ++i)
      relabelBFloat16(dataSet.outputs[i], outputSlots[i]);
    // Name the data set only when there are several to tell apart.
    std::string where = dataSets->size() > 1 ? dataSet.name + ": " : "";
    if (dataSet.inputs.size() != inputSlots.size())
      return fail(where + "the data set has " + std::to_string(dataSet.inputs.size()) +
                  " inputs but the entry point takes " + std::to_string(inputSlots.size()) +
                  " (" + tools::formatSlots(inputSlots) + ")");
    for (size_t i = 0; i < inputSlots.size(); ++i) {
      const TestTensor &input = dataSet.inputs[i];
      const tools::TensorSlot &slot = inputSlots[i];
      if (!tools::acceptsDType(slot.dtype, input.dtype) || input.shape != slot.shape)
        return fail(where + "input " + std::to_string(i) + " ('" + slot.name + "') is " +
                    slot.type() + " but the test data is " +
                    formatTensorType(input.dtype, input.shape));
      if (tools::MaybeError error = tools::statusError(
              kiln_session_set_input(session->get(), i, input.bytes.data(), input.bytes.size()),
              where + "setting input '" + slot.name + "'"))
        return fail(error->message);
    }
    if (tools::MaybeError error =
            tools::statusError(kiln_session_run(session->get()), where + "the run failed"))
      return fail(error->message);

    if (dataSet.outputs.size() != outputSlots.size())
      return fail(where + "the data set expects " + std::to_string(dataSet.outputs.size()) +
                  " outputs but the entry point has " + std::to_string(outputSlots.size()) +
                  " (" + tools::formatSlots(outputSlots) + ")");
    for (size_t i = 0; i < outputSlots.size(); ++i) {
      const TestTensor &expected = dataSet.outputs[i];
      const tools::TensorSlot &slot = outputSlots[i];
      if (!tools::acceptsDType(slot.dtype, expected.dtype) || expected.shape != slot.shape)
        return fail(where + "output " + std::to_string(i) + " ('" + slot.name + "') is " +
                    slot.type() + " but the expected data is " +
                    formatTensorType(expected.dtype, expected.shape));
      const void *data = nullptr;
      size_t byteSize = 0;
      if (tools::MaybeError error =
              tools::statusError(kiln_session_output(session->get(), i, &data, &byteSize),
                                 where + "reading output '" + slot.name + "'"))
        return fail(error->message);
      tools::ComparisonResult comparison =
          tools::compareTensors({slot.dtype, slot.shape, data},
                                {expected.dtype, expected.shape, expected.bytes.data()},
                                kTolerance);
      if (!comparison.matches())
        return fail(where + "numerical mismatch in output '" + slot.name + "' at index " +
                    std::to_string(comparison.worstIndex) + " " +
                    tools::formatMultiIndex(slot.shape, comparison.worstIndex) + ": got " +
                    comparison.worstGot + " expected " + comparison.worstExpected + " (" +
                    std::to_string(comparison.mismatchCount) + " of " +
                    std::to_string(comparison.elementCount) + " elements differ)");
    }
  }
  return {TestStatus::Pass, ""};
}

} // namespace kiln::conformance
