// The outcome of one conformance test, shared by the compile step, the data-set check
// and the runner that reports it.
#ifndef KILN_CONFORMANCE_TESTRESULT_H
#define KILN_CONFORMANCE_TESTRESULT_H

#include <string>

namespace kiln::conformance {

enum class TestStatus { Pass, Fail, Unsupported };

struct TestResult {
  TestStatus status;
  std::string reason; // empty for a pass
};

inline const char *testStatusName(TestStatus status) {
  switch (status) {
  case TestStatus::Pass: return "pass";
  case TestStatus::Fail: return "fail";
  case TestStatus::Unsupported: return "unsupported";
  }
  return "fail";
}

} // namespace kiln::conformance

#endif // KILN_CONFORMANCE_TESTRESULT_H
