// kiln-tune's candidate measurement against the real kiln-compile and kiln-run: a
// candidate that fails, computes something else or runs too long is a failed trial
// with its reason, never the tuner's failure.
#include "tools/kiln-tune/CandidateMeasurement.h"
#include "Npy.h"

#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Path.h"

#include <fstream>
#include <gtest/gtest.h>

using namespace kiln::tune;

namespace {

class CandidateMeasurementTest : public ::testing::Test {
protected:
  void SetUp() override {
    ASSERT_FALSE(llvm::sys::fs::createUniqueDirectory("kiln-measure-test", directory));
    // The example MLP's input, copied so that a test may change it.
    input = std::string(directory) + "/x.npy";
    ASSERT_FALSE(llvm::sys::fs::copy_file(KILN_SOURCE_DIR "/examples/models/mlp-input.npy", input));
  }
  void TearDown() override { llvm::sys::fs::remove_directories(directory); }

  MeasurementSetup setup(std::vector<std::string> compileArgs = {}) const {
    MeasurementSetup s;
    s.compiler = KILN_COMPILE_PATH;
    s.runner = KILN_RUN_PATH;
    s.model = KILN_SOURCE_DIR "/examples/models/mlp.onnx";
    s.compileArgs = std::move(compileArgs);
    s.inputArgs = {"--input", input};
    s.workDirectory = std::string(directory);
    s.warmup = 2;
    s.runs = 5;
    s.threads = 1;
    s.timeoutSeconds = 60;
    return s;
  }

  /// The input's last 16 values become 3: a run over it no longer matches the reference.
  void changeInput() const {
    std::fstream file(input, std::ios::in | std::ios::out | std::ios::binary);
    file.seekp(-4 * 16, std::ios::end);
    float threes[16];
    std::fill(std::begin(threes), std::end(threes), 3.0f);
    file.write(reinterpret_cast<const char *>(threes), sizeof threes);
  }

  llvm::SmallString<128> directory;
  std::string input;
};

TEST_F(CandidateMeasurementTest, the_default_schedule_times_every_dispatch_of_every_run) {
  CandidateMeasurement measurement(setup());
  Measurement m = measurement.measure("", /*writeReference=*/true);
  ASSERT_EQ(m.status, "ok") << m.detail;
  EXPECT_EQ(m.runNs.size(), 5u);
  // The MLP's six dispatches: two matmuls (with their epilogues) and the softmax's four.
  ASSERT_EQ(m.dispatchNs.size(), 6u);
  for (const auto &[dispatch, times] : m.dispatchNs) {
    EXPECT_EQ(times.size(), 5u) << "dispatch " << dispatch;
    EXPECT_GT(m.medianNs({dispatch}), 0) << "dispatch " << dispatch;
  }
  EXPECT_EQ(m.what[0], "matmul 1x128x64 +2");
  EXPECT_TRUE(m.referenceDispatchNs.empty()); // the reference has none of its own
  // Again, against the reference it wrote: the same outputs, and the reference's
  // artifact run beside it, run by run, with the same dispatches.
  Measurement again = measurement.measure("");
  ASSERT_EQ(again.status, "ok") << again.detail;
  ASSERT_EQ(again.referenceDispatchNs.size(), 6u);
  for (const auto &[dispatch, times] : again.referenceDispatchNs)
    EXPECT_EQ(times.size(), 5u) << "dispatch " << dispatch;
  EXPECT_GT(again.relativeToReference({0}), 0);
}

// A candidate's runs over the reference's runs beside them: the machine slowed both
// alike in the third run (a slow phase of a shared VM), which the ratio cancels.
TEST(MeasurementTest, relative_times_compare_each_run_with_the_reference_beside_it) {
  Measurement m;
  m.dispatchNs[0] = {8, 9, 24};
  m.dispatchNs[1] = {1, 1, 3};
  m.referenceDispatchNs[0] = {10, 12, 30};
  m.referenceDispatchNs[1] = {1, 1, 3};
  EXPECT_DOUBLE_EQ(m.medianNs({0}), 9);
  // 0.8, 0.75, 0.8: the candidate takes 0.8 of the reference's time.
  EXPECT_DOUBLE_EQ(m.relativeToReference({0}), 0.8);
  // A kernel of two dispatches: their sums, (9, 10, 27) over (11, 13, 33): 0.82, 0.77,
  // 0.82.
  EXPECT_DOUBLE_EQ(m.relativeToReference({0, 1}), 9.0 / 11.0);
  // Without reference times there is no ratio.
  m.referenceDispatchNs.clear();
  EXPECT_DOUBLE_EQ(m.relativeToReference({0}), 0);
}

TEST_F(CandidateMeasurementTest, outputs_that_differ_from_the_reference_are_a_mismatch) {
  CandidateMeasurement measurement(setup());
  ASSERT_EQ(measurement.measure("", true).status, "ok");
  // Other inputs stand for a schedule that computes something else.
  changeInput();
  Measurement m = measurement.measure("");
  EXPECT_EQ(m.status, "mismatch");
  EXPECT_NE(m.detail.find("probs"), std::string::npos) << m.detail;
}

// A candidate whose compile gives an artifact a reusing measure ran before is not run
// again: its measurement comes back. Changed inputs stand for "not run": run, the
// candidate would now mismatch.
TEST_F(CandidateMeasurementTest, an_artifact_measured_before_is_not_run_again) {
  CandidateMeasurement measurement(setup());
  ASSERT_EQ(measurement.measure("", true).status, "ok");
  Measurement first = measurement.measure("", false, /*reuse=*/true);
  ASSERT_EQ(first.status, "ok") << first.detail;
  EXPECT_FALSE(first.reused);
  changeInput();
  Measurement again = measurement.measure("", false, /*reuse=*/true);
  EXPECT_TRUE(again.reused);
  EXPECT_EQ(again.status, "ok");
  EXPECT_EQ(again.runNs, first.runNs);
  // Without reuse (a confirmation round) it runs, and the changed inputs show.
  EXPECT_EQ(measurement.measure("", false).status, "mismatch");
}

/// A .npy file of f32 zeros.
void writeZeros(const std::string &path, int rows, int columns) {
  std::vector<float> zeros(static_cast<size_t>(rows) * columns, 0.0f);
  ASSERT_FALSE(kiln::tools::writeNpyFile(path, KILN_DTYPE_F32, {rows, columns}, zeros.data(),
                                         zeros.size() * sizeof(float)));
}

TEST_F(CandidateMeasurementTest, a_candidate_whose_run_fails_is_a_crashed_trial) {
  // A run that stops with an error (here kiln-run refusing an input of the wrong shape;
  // in tuning, a kernel that fails) costs the trial as a crash, not as a mismatch.
  MeasurementSetup s = setup();
  s.model = KILN_SOURCE_DIR "/test/unit/Inputs/matmul-64x512x512.mlir";
  std::string a = std::string(directory) + "/a.npy", b = std::string(directory) + "/b.npy",
              wrong = std::string(directory) + "/wrong.npy";
  writeZeros(a, 64, 512);
  writeZeros(b, 512, 512);
  writeZeros(wrong, 512, 511);
  s.inputArgs = {"--input", a, "--input", wrong};
  CandidateMeasurement failing(s);
  Measurement m = failing.measure("", true);
  EXPECT_EQ(m.status, "crashed");
  EXPECT_NE(m.detail.find("the shapes differ"), std::string::npos) << m.detail;
  // The same model with inputs of its shapes runs.
  s.inputArgs = {"--input", a, "--input", b};
  CandidateMeasurement working(s);
  EXPECT_EQ(working.measure("", true).status, "ok");
}

TEST_F(CandidateMeasurementTest, an_unknown_knob_is_a_failed_compile) {
  CandidateMeasurement measurement(setup({"--schedule", "warp_size=32"}));
  Measurement m = measurement.measure("", true);
  EXPECT_EQ(m.status, "compile-failed");
  EXPECT_NE(m.detail.find("unknown schedule knob 'warp_size'"), std::string::npos) << m.detail;
}

TEST_F(CandidateMeasurementTest, a_run_past_the_timeout_is_killed_and_is_a_timeout) {
  MeasurementSetup s = setup();
  s.runs = 100000000; // minutes of runs
  s.timeoutSeconds = 2;
  CandidateMeasurement measurement(s);
  Measurement m = measurement.measure("", true);
  EXPECT_EQ(m.status, "timeout");
}

} // namespace
