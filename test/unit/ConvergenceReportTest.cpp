// kiln-tune --report's GA-vs-random figures, from trials with known times: the trials
// each search needed to reach the other's final best, and which kernels count.
#include "tools/kiln-tune/ConvergenceReport.h"

#include "llvm/Support/FileSystem.h"

#include <fstream>
#include <gtest/gtest.h>
#include <sstream>

using namespace kiln;

namespace {

class ConvergenceReportTest : public ::testing::Test {
protected:
  void SetUp() override {
    ASSERT_FALSE(llvm::sys::fs::createUniqueDirectory("kiln-report-test", directory));
  }
  void TearDown() override { llvm::sys::fs::remove_directories(directory); }

  /// One search session's trials of kernel `kernel`, times in nanoseconds in order.
  void add(const std::string &kernel, const std::string &search, std::vector<double> times) {
    for (double t : times) {
      tuning::Trial trial;
      trial.key = {"results: tensor<" + kernel + "xf32>", "x86-64-linux-avx2", "test"};
      trial.schedule = "tile_rows=" + std::to_string(trials.size());
      trial.status = "ok";
      trial.timeNs = t;
      trial.search = search;
      trial.session = search + "-session";
      trial.model = "model.onnx";
      trials.push_back(trial);
    }
  }

  /// The page kiln-tune --report writes for the trials added.
  std::string page() {
    auto path = kiln::tune::writeConvergenceReport(trials, std::string(directory));
    EXPECT_TRUE(static_cast<bool>(path));
    if (!path) {
      llvm::consumeError(path.takeError());
      return "";
    }
    std::ifstream in(*path);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
  }

  llvm::SmallString<128> directory;
  std::vector<tuning::Trial> trials;
};

/// Whether `html` holds `text`; the page on failure.
::testing::AssertionResult contains(const std::string &html, const std::string &text) {
  if (html.find(text) != std::string::npos)
    return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "no '" << text << "' in:\n" << html;
}

TEST_F(ConvergenceReportTest, counts_the_trials_each_search_needed_to_reach_the_others_best) {
  // Random search: 1.25x at its third of four trials. The GA: 1.25x at its second trial
  // (half of random's four), 1.43x at its third, which random search never reached.
  add("64x64", "random", {100, 90, 80, 95});
  add("64x64", "ga", {100, 80, 70});
  std::string html = page();
  EXPECT_TRUE(contains(html, "<td>1.43x</td><td>-</td><td>1.25x</td><td>2</td><td>4</td>"
                             "<td>not reached</td><td>3</td>"));
  EXPECT_TRUE(contains(html, "On the median kernel the genetic algorithm reached random search's "
                             "final best in 50% of random search's trials (over the 1 kernel "));
  EXPECT_TRUE(contains(html, "On the median kernel random search did not reach the genetic "
                             "algorithm's final best (over the 1 kernel "));
}

TEST_F(ConvergenceReportTest, gives_the_median_over_the_kernels) {
  // The GA reaches random search's final best in 1, 0.5 and 1.5 times random's trials.
  add("8x8", "random", {100, 80});
  add("8x8", "ga", {100, 80});
  add("16x16", "random", {100, 90, 80, 70});
  add("16x16", "ga", {100, 70});
  add("24x24", "random", {100, 50});
  add("24x24", "ga", {100, 90, 50});
  std::string html = page();
  EXPECT_TRUE(contains(html, "On the median kernel the genetic algorithm reached random search's "
                             "final best in 100% of random search's trials (over the 3 kernels "));
}

TEST_F(ConvergenceReportTest, leaves_out_kernels_where_the_other_search_found_under_two_percent) {
  // Random search found 1.01x: every search "reaches" that at once, so the kernel says
  // nothing about the GA; the GA's 2x counts for the reverse figure.
  add("64x64", "random", {100, 99, 100});
  add("64x64", "ga", {100, 50});
  // Neither found anything here.
  add("32x32", "random", {100, 100});
  add("32x32", "ga", {100, 101});
  std::string html = page();
  EXPECT_TRUE(contains(html, "Random search found no speed-up of 2% or more on any kernel: nothing "
                             "to compare the genetic algorithm with."));
  EXPECT_TRUE(contains(html, "On the median kernel random search did not reach the genetic "
                             "algorithm's final best (over the 1 kernel "));
  trials.clear();
  add("32x32", "random", {100, 100});
  add("32x32", "ga", {100, 101});
  html = page();
  EXPECT_TRUE(contains(html, "The genetic algorithm found no speed-up of 2% or more on any kernel: "
                             "nothing to compare random search with."));
}

} // namespace
